"""Fault-injecting TCP proxy that sits in front of one local ``mariadbd``.

Why it exists: without Docker or netem we still want *network* faults that behave like the real
thing, so the coordinator's failure handling is exercised honestly. One proxy process runs per
node (never the parent of its ``mariadbd``, so a proxy crash cannot take the server down) and
listens on the node's public port, forwarding to the server's private port.

Faults, all switchable at run time over a unix control socket (JSON lines, acked once in effect):

* ``delay``: every chunk flowing server→client is delivered ``ms`` after it arrived, like netem on
  the server's egress. Chunks are scheduled individually, so order and throughput are preserved and
  pipelined traffic is not serialised one round trip at a time.
* ``partition``: nothing is forwarded either way; data is held (not dropped, as TCP would
  retransmit after the cable is reconnected) and reading is paused to bound memory. New
  connections are accepted but not connected upstream, so clients see timeouts, not refusals.
* ``heal``: clears both and releases everything held.
* ``close`` / ``open``: stop/start listening and drop every connection, which is what clients see
  when the server behind a container is stopped (ECONNREFUSED at once).

The fault state is persisted to a JSON file after every change (before the ack), so status tools
can read it without talking to the proxy and a restarted proxy resumes it.

The data path is asyncio Protocols (``data_received`` → ``transport.write`` on the peer) with
pause/resume-reading flow control and TCP_NODELAY, on uvloop when available, so an idle proxy adds
only a few tens of microseconds per round trip.

Run: ``python -m coordinator.faultproxy --port 3307 --upstream-port 13307 --control ctl.sock
--state faults.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import sys
import time
from collections import deque
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, cast

log = logging.getLogger("faultproxy")

# Bytes held per direction (delay queue or partition hold) before the source stops being read.
HOLD_LIMIT = 1 << 20
# Deadlines use time.monotonic(): uvloop's loop.time() is libuv's cached millisecond clock, and its
# timers may fire up to ~1 ms early. Aim a little late and re-check, so a delayed chunk is never
# delivered before its deadline (a fault must never be milder than asked).
TIMER_MARGIN = 0.001
UPSTREAM_CONNECT_TIMEOUT = 10.0


@dataclass
class Faults:
    """The persisted fault state of one proxy."""

    delay_ms: int = 0
    partitioned: bool = False
    listening: bool = True

    @classmethod
    def load(cls, path: Path) -> "Faults":
        try:
            raw = json.loads(path.read_text())
        except (OSError, ValueError):
            return cls()
        return cls(
            delay_ms=int(raw.get("delay_ms", 0)),
            partitioned=bool(raw.get("partitioned", False)),
            listening=bool(raw.get("listening", True)),
        )

    def save(self, path: Path) -> None:
        write_json_atomic(path, asdict(self))


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """Write JSON so that readers never see a half-written file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


def set_nodelay(transport: asyncio.BaseTransport) -> None:
    sock = transport.get_extra_info("socket")
    if sock is None:
        return
    with contextlib.suppress(OSError, AttributeError):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class Reader:
    """Pause/resume reading on a transport for several independent reasons."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.reasons: set[str] = set()

    def attach(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        if self.reasons:
            self._call("pause_reading")

    def pause(self, why: str) -> None:
        first = not self.reasons
        self.reasons.add(why)
        if first:
            self._call("pause_reading")

    def resume(self, why: str) -> None:
        if why not in self.reasons:
            return
        self.reasons.discard(why)
        if not self.reasons:
            self._call("resume_reading")

    def _call(self, method: str) -> None:
        t = self.transport
        if t is None or t.is_closing():
            return
        with contextlib.suppress(RuntimeError, AttributeError):
            getattr(t, method)()


class Pipe:
    """One direction of a link: src reader → dst transport, with optional delay and hold."""

    def __init__(self, proxy: "Proxy", src: Reader, delayed: bool) -> None:
        self.proxy = proxy
        self.src = src
        self.delayed = delayed
        self.dst: asyncio.Transport | None = None
        self.queue: deque[tuple[float, bytes]] = deque()
        self.queued = 0
        self.last_deadline = 0.0
        self.timer: asyncio.TimerHandle | None = None
        self.close_when_drained = False

    def delay_s(self) -> float:
        return self.proxy.faults.delay_ms / 1000.0 if self.delayed else 0.0

    def feed(self, data: bytes) -> None:
        delay = self.delay_s()
        if self.dst is not None and not self.queue and not delay and not self.proxy.faults.partitioned:
            self.dst.write(data)
            return
        deadline = max(time.monotonic() + delay, self.last_deadline)
        self.last_deadline = deadline
        self.queue.append((deadline, data))
        self.queued += len(data)
        if self.queued > HOLD_LIMIT:
            self.src.pause("hold")
        self.kick()

    def kick(self) -> None:
        """Make sure a timer is pending for the head of the queue (unless held)."""
        if self.timer is not None or not self.queue or self.dst is None:
            return
        if self.proxy.faults.partitioned:
            return
        wait = max(0.0, self.queue[0][0] - time.monotonic())
        self.timer = self.proxy.loop.call_later(wait + TIMER_MARGIN, self.flush)

    def flush(self) -> None:
        self.timer = None
        if self.dst is None or self.proxy.faults.partitioned:
            return
        now = time.monotonic()
        while self.queue and self.queue[0][0] <= now:
            _, data = self.queue.popleft()
            self.queued -= len(data)
            self.dst.write(data)
        if self.queued <= HOLD_LIMIT // 2:
            self.src.resume("hold")
        if not self.queue and self.close_when_drained:
            self.dst.close()
            return
        self.kick()

    def release(self) -> None:
        """Deliver everything queued now (heal: drop the delay, release held data)."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.queue = deque((0.0, data) for _, data in self.queue)
        self.last_deadline = 0.0
        self.kick()

    def hold(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def finish(self) -> None:
        """The source closed: close dst once everything queued is delivered."""
        if self.dst is None:
            return
        if self.queue:
            self.close_when_drained = True
        else:
            self.dst.close()

    def drop(self) -> None:
        self.hold()
        self.queue.clear()
        self.queued = 0


class Link:
    """A client connection and its upstream connection."""

    def __init__(self, proxy: "Proxy") -> None:
        self.proxy = proxy
        self.client_reader = Reader()
        self.upstream_reader = Reader()
        self.c2s = Pipe(proxy, self.client_reader, delayed=False)
        self.s2c = Pipe(proxy, self.upstream_reader, delayed=True)
        self.client: asyncio.Transport | None = None
        self.upstream: asyncio.Transport | None = None
        self.connecting = False
        self.closed = False

    def pipes(self) -> tuple[Pipe, Pipe]:
        return self.c2s, self.s2c

    def readers(self) -> tuple[Reader, Reader]:
        return self.client_reader, self.upstream_reader

    def start_upstream(self) -> None:
        if self.connecting or self.upstream is not None or self.closed:
            return
        self.connecting = True
        self.proxy.loop.create_task(self._connect())

    async def _connect(self) -> None:
        p = self.proxy
        try:
            transport, _ = await asyncio.wait_for(
                p.loop.create_connection(lambda: UpstreamProtocol(self), p.upstream_host, p.upstream_port),
                UPSTREAM_CONNECT_TIMEOUT,
            )
        except (OSError, asyncio.TimeoutError) as exc:
            log.info("upstream connect failed: %s", exc)
            self.abort()
            return
        finally:
            self.connecting = False
        if self.closed:
            transport.abort()

    def upstream_made(self, transport: asyncio.Transport) -> None:
        if self.closed or self.client is None:
            transport.abort()
            return
        set_nodelay(transport)
        self.upstream = transport
        self.upstream_reader.attach(transport)
        self.c2s.dst = transport
        self.s2c.dst = self.client
        if self.proxy.faults.partitioned:
            self.upstream_reader.pause("partition")
        self.c2s.kick()

    def client_lost(self) -> None:
        self.client = None
        self.s2c.dst = None
        self.s2c.drop()
        if self.upstream is not None:
            self.c2s.finish()
        self._forget()

    def upstream_lost(self) -> None:
        self.upstream = None
        self.c2s.dst = None
        self.c2s.drop()
        if self.client is not None:
            self.s2c.finish()
        self._forget()

    def abort(self) -> None:
        """Drop both sides at once (server stopped, upstream unreachable)."""
        self.closed = True
        for pipe in self.pipes():
            pipe.drop()
        for t in (self.client, self.upstream):
            if t is not None:
                t.abort()
        self._forget()

    def _forget(self) -> None:
        if self.client is None and self.upstream is None:
            self.closed = True
        if self.closed:
            self.proxy.links.discard(self)


class ClientProtocol(asyncio.Protocol):
    def __init__(self, proxy: "Proxy") -> None:
        self.link = Link(proxy)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # uvloop's transports don't subclass it
        link = self.link
        proxy = link.proxy
        set_nodelay(transport)
        link.client = transport
        link.client_reader.attach(transport)
        proxy.links.add(link)
        if proxy.faults.partitioned:
            link.client_reader.pause("partition")
            return  # connected upstream on heal
        link.start_upstream()

    def data_received(self, data: bytes) -> None:
        self.link.c2s.feed(data)

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.link.client_lost()

    def pause_writing(self) -> None:
        self.link.upstream_reader.pause("dst")

    def resume_writing(self) -> None:
        self.link.upstream_reader.resume("dst")


class UpstreamProtocol(asyncio.Protocol):
    def __init__(self, link: Link) -> None:
        self.link = link

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.link.upstream_made(cast(asyncio.Transport, transport))

    def data_received(self, data: bytes) -> None:
        self.link.s2c.feed(data)

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.link.upstream_lost()

    def pause_writing(self) -> None:
        self.link.client_reader.pause("dst")

    def resume_writing(self) -> None:
        self.link.client_reader.resume("dst")


class Proxy:
    """Listener, links and the fault switches of one proxy process."""

    def __init__(
        self,
        host: str,
        port: int,
        upstream_host: str,
        upstream_port: int,
        state_path: Path,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.host = host
        self.port = port
        self.upstream_host = upstream_host
        self.upstream_port = upstream_port
        self.state_path = state_path
        self.loop = loop
        self.faults = Faults.load(state_path)
        self.links: set[Link] = set()
        self.server: asyncio.AbstractServer | None = None

    async def listen(self) -> None:
        if self.server is not None:
            return
        self.server = await self.loop.create_server(
            lambda: ClientProtocol(self), self.host, self.port, reuse_address=True, backlog=1024
        )

    async def unlisten(self) -> None:
        server, self.server = self.server, None
        if server is not None:
            server.close()
        for link in list(self.links):
            link.abort()
        if server is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(server.wait_closed(), 2.0)

    async def apply_listening(self) -> None:
        if self.faults.listening:
            await self.listen()
        else:
            await self.unlisten()

    def set_delay(self, ms: int) -> None:
        self.faults.delay_ms = max(0, int(ms))
        if self.faults.delay_ms == 0:
            for link in list(self.links):
                link.s2c.release()

    def partition(self) -> None:
        self.faults.partitioned = True
        for link in list(self.links):
            for reader in link.readers():
                reader.pause("partition")
            for pipe in link.pipes():
                pipe.hold()

    def heal(self) -> None:
        self.faults.delay_ms = 0
        self.faults.partitioned = False
        for link in list(self.links):
            for reader in link.readers():
                reader.resume("partition")
            for pipe in link.pipes():
                pipe.release()
            if link.upstream is None:
                link.start_upstream()

    def save(self) -> None:
        self.faults.save(self.state_path)

    def status(self) -> dict[str, Any]:
        return {**asdict(self.faults), "connections": len(self.links), "pid": os.getpid()}

    async def command(self, msg: dict[str, Any]) -> dict[str, Any]:
        cmd = msg.get("cmd")
        handlers: dict[str, Callable[[], Any]] = {
            "ping": lambda: None,
            "status": lambda: None,
            "delay": lambda: self.set_delay(int(msg.get("ms", 0))),
            "partition": self.partition,
            "heal": self.heal,
        }
        if cmd in handlers:
            handlers[cmd]()
        elif cmd in ("open", "close"):
            self.faults.listening = cmd == "open"
            await self.apply_listening()
        else:
            return {"ok": False, "error": f"unknown command {cmd!r}"}
        if cmd not in ("ping", "status"):
            self.save()
        return {"ok": True, **self.status()}


async def serve_control(proxy: Proxy, path: Path) -> asyncio.AbstractServer:
    """JSON-line control channel; each reply is sent after the command took effect."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                try:
                    reply = await proxy.command(json.loads(line))
                except Exception as exc:  # a bad command must not kill the proxy
                    reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
                writer.write(json.dumps(reply).encode() + b"\n")
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    return await asyncio.start_unix_server(handle, str(path))


async def run(args: argparse.Namespace) -> int:
    loop = asyncio.get_running_loop()
    proxy = Proxy(args.host, args.port, args.upstream_host, args.upstream_port, Path(args.state), loop)
    try:
        await proxy.apply_listening()
    except OSError as exc:
        log.error("cannot listen on %s:%s: %s", args.host, args.port, exc)
        return 2
    proxy.save()
    control_path = Path(args.control)
    control = await serve_control(proxy, control_path)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log.info("proxy %s listening on %s:%s -> %s:%s", args.name, args.host, args.port,
             args.upstream_host, args.upstream_port)
    await stop.wait()
    control.close()
    with contextlib.suppress(FileNotFoundError):
        control_path.unlink()
    if proxy.server is not None:
        proxy.server.close()
    for link in list(proxy.links):
        link.abort()
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m coordinator.faultproxy", description=__doc__.split("\n")[0])
    p.add_argument("--host", default="127.0.0.1", help="listen address")
    p.add_argument("--port", type=int, required=True, help="public (listen) port")
    p.add_argument("--upstream-host", default="127.0.0.1")
    p.add_argument("--upstream-port", type=int, required=True)
    p.add_argument("--control", required=True, help="unix socket path for the control channel")
    p.add_argument("--state", required=True, help="JSON file holding the fault state")
    p.add_argument("--name", default="proxy", help="node name, for logs")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s faultproxy[%(process)d] %(levelname)s %(message)s")
    try:
        import uvloop
    except ImportError:
        return asyncio.run(run(args))
    return uvloop.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
