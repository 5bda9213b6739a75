"""The fault proxy's data path: client and upstream connections and the pipes between them.

Why asyncio Protocols (``data_received`` → ``transport.write`` on the peer) rather than streams:
an idle proxy must add only a few tens of microseconds per round trip, so data is forwarded the
moment it arrives, with pause/resume-reading flow control and TCP_NODELAY. Faults are applied
per chunk: a :class:`Pipe` either writes through, schedules the chunk for later (delay) or holds
it (partition). The fault switches themselves live on the :class:`~devcluster.faultproxy.Proxy`,
which this module only reads (``proxy.faults``) and registers links with (``proxy.links``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections import deque
from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    from devcluster.faultproxy import Proxy

log = logging.getLogger("faultproxy")

# Bytes held per direction (delay queue or partition hold) before the source stops being read.
HOLD_LIMIT = 1 << 20
# Deadlines use time.monotonic(): uvloop's loop.time() is libuv's cached millisecond clock, and its
# timers may fire up to ~1 ms early. Aim a little late and re-check, so a delayed chunk is never
# delivered before its deadline (a fault must never be milder than asked).
TIMER_MARGIN = 0.001
UPSTREAM_CONNECT_TIMEOUT = 10.0


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
