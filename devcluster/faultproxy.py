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
can read it without talking to the proxy and a restarted proxy resumes it. The wire format of the
control channel and the fault state are defined once, in :mod:`devcluster.protocol`, shared with
the client side in :mod:`devcluster.node`.

The data path (:mod:`devcluster.links`) is asyncio Protocols (``data_received`` →
``transport.write`` on the peer) with pause/resume-reading flow control and TCP_NODELAY, on uvloop
when available, so an idle proxy adds only a few tens of microseconds per round trip.

Run: ``python -m devcluster.faultproxy --port 3307 --upstream-port 13307 --control ctl.sock
--state faults.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any, Callable

from devcluster import protocol
from devcluster.links import ClientProtocol, Link
from devcluster.protocol import Faults

log = logging.getLogger("faultproxy")


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
        return {**self.faults.to_dict(), "connections": len(self.links), "pid": os.getpid()}

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
            return protocol.error_reply(f"unknown command {cmd!r}")
        if cmd in protocol.MUTATING:
            self.save()
        return protocol.ok_reply(**self.status())


async def serve_control(proxy: Proxy, path: Path) -> asyncio.AbstractServer:
    """JSON-line control channel; each reply is sent after the command took effect."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                try:
                    reply = await proxy.command(protocol.decode(line))
                except Exception as exc:  # a bad command must not kill the proxy
                    reply = protocol.error_reply(f"{type(exc).__name__}: {exc}")
                writer.write(protocol.encode(reply))
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    # The socket file appears only once the server listens: bound under a temporary name, then
    # renamed into place. Between bind() and listen() a client that saw the file (waiting for it is
    # how the cluster and the tests know the proxy is up) would be refused.
    bound = path.with_name(path.name + ".new")  # within short_path's margin for sun_path
    for p in (path, bound):
        with contextlib.suppress(FileNotFoundError):
            p.unlink()
    server = await asyncio.start_unix_server(handle, str(bound))
    os.replace(bound, path)
    return server


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
    p = argparse.ArgumentParser(prog="python -m devcluster.faultproxy", description=__doc__.split("\n")[0])
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
