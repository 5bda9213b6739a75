"""The gateway port's lean lane: ``POST /query`` and ``POST /transaction`` without aiohttp's stack.

Why: under wrk at 64 clients aiohttp's request handling (protocol, parser objects, request,
middleware, routing, response, writer) was a fifth of the coordinator's CPU samples, and
HTTP cost ~230 µs more CPU per write than the MySQL port for the same write. The lane is an
``asyncio.Protocol`` that reads the request head itself (``head``), calls the same handler
body as the aiohttp route (``gateway.answer``: same JSON, same errors, same request
metrics) and writes one prebuilt response.

It serves only the strict subset ``head`` accepts. The first request outside it — a GET
of the dashboard, a chunked body, a malformed head, HTTP/1.0 — hands the connection, with
every byte not yet consumed, to aiohttp's own protocol (``transport.set_protocol``), which
serves it from then on exactly as if it had accepted it. Requests on one connection are
answered one at a time and in order, as aiohttp does; a client that disconnects does not
cancel its write (aiohttp's ``handler_cancellation`` is off too), it only loses the answer.

Who owns what: a :class:`LeanLane` owns its listening socket and the connections still in
the lane; a handed-over connection is aiohttp's (``runner``) and is closed by its cleanup.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from email.utils import formatdate
from http import HTTPStatus
from typing import Any, cast

import aiohttp
from aiohttp.tcp_helpers import tcp_nodelay

from ..service import Coordinator
from . import gateway, head

KEEPALIVE_S = 75.0  # aiohttp's keepalive_timeout: an idle keep-alive connection is closed after it
PENDING_CAP = 1 << 20  # unconsumed bytes beyond the body limit at which the lane stops reading
_SERVER = f"Python/3.11 aiohttp/{aiohttp.__version__}".encode()
_REASONS = {s.value: s.phrase.encode() for s in HTTPStatus}


class _Date:
    """The ``Date`` header value, formatted once a second."""

    def __init__(self) -> None:
        self.second = -1
        self.value = b""

    def now(self) -> bytes:
        second = int(time.time())
        if second != self.second:
            self.second, self.value = second, formatdate(second, usegmt=True).encode()
        return self.value


def response(status: int, body: bytes, date: bytes, close: bool) -> bytes:
    """One HTTP/1.1 response with a JSON body, headed as aiohttp heads ``json_response``'s."""
    return b"".join((
        b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nDate: %s\r\nServer: %s\r\n"
        % (status, _REASONS.get(status, b"Unknown"), len(body), date, _SERVER),
        b"Connection: close\r\n\r\n" if close else b"\r\n", body))


class LeanConnection(asyncio.Protocol):
    """One client connection while it stays in the lane. Its ``task`` answers the current
    request; the bytes after it wait in ``pending`` until that answer is written."""

    def __init__(self, lane: LeanLane) -> None:
        self.lane = lane
        self.transport: asyncio.Transport | None = None
        self.pending = bytearray()
        self.task: asyncio.Task[None] | None = None
        self.closed = False
        self.reading = True
        self.writable: asyncio.Event | None = None  # set while the transport accepts writes
        self.idle_since: float | None = None  # loop time it last fell idle; None while a request runs

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not asyncio.Transport subclasses
        tcp_nodelay(self.transport, True)
        self.lane.connections.add(self)
        self.idle_since = self.lane.loop.time()

    def data_received(self, data: bytes) -> None:
        self.pending += data
        if self.task is None:
            self.idle_since = self.lane.loop.time()  # a slow upload is not idle
            self._next()
        elif self.reading and len(self.pending) > self.lane.max_body + PENDING_CAP:
            self.reading = False
            cast(asyncio.Transport, self.transport).pause_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.lane.connections.discard(self)
        if self.writable is not None:
            self.writable.set()  # a task waiting to write learns it never will

    def pause_writing(self) -> None:
        if self.writable is None:
            self.writable = asyncio.Event()
        self.writable.clear()

    def resume_writing(self) -> None:
        if self.writable is not None:
            self.writable.set()

    def _next(self) -> None:
        """Start answering the next complete request, or hand the connection over."""
        if self.closed:
            return
        verdict = head.parse(self.pending, self.lane.max_body)
        if verdict is head.INCOMPLETE:
            return
        if not isinstance(verdict, head.Head):
            self._hand_over()
            return
        if len(self.pending) < verdict.end:
            return  # the body is still on its way
        self.idle_since = None
        body = bytes(self.pending[verdict.body_start:verdict.end])
        del self.pending[:verdict.end]
        self.task = asyncio.create_task(self._answer(verdict, body), name="http-lean")

    async def _answer(self, h: head.Head, body: bytes) -> None:
        started = time.perf_counter()
        status, payload = await gateway.answer(self.lane.coord, h.path, body, head.media_type(h.content_type),
                                               started)
        if self.closed:
            return
        transport = cast(asyncio.Transport, self.transport)
        transport.write(response(status, payload, self.lane.date.now(), h.close))
        if h.close:
            transport.close()
            return
        if self.writable is not None and not self.writable.is_set():
            # a large result: the client reads it before its next request — within the keep-alive
            # timeout, as an idle connection gets; one that stops reading is closed
            try:
                await asyncio.wait_for(self.writable.wait(), self.lane.keepalive_s)
            except asyncio.TimeoutError:
                transport.abort()
                return
        self.task = None
        if not self.reading and not self.closed:
            self.reading = True
            transport.resume_reading()
        self._next()
        if self.task is None:
            self.idle_since = self.lane.loop.time()

    def _hand_over(self) -> None:
        """aiohttp takes the connection and the bytes not yet consumed; the lane forgets it."""
        transport = cast(asyncio.Transport, self.transport)
        self.closed = True
        self.lane.connections.discard(self)
        if not self.reading:
            self.reading = True
            transport.resume_reading()
        protocol = self.lane.aiohttp_protocol()
        transport.set_protocol(protocol)
        protocol.connection_made(transport)
        if self.writable is not None and not self.writable.is_set():
            protocol.pause_writing()
        if self.pending:
            protocol.data_received(bytes(self.pending))
        self.pending.clear()

    def shut(self) -> None:
        """Close the connection (idle timeout, shutdown)."""
        if self.transport is not None and not self.closed:
            self.transport.close()


class LeanLane:
    """The gateway's listening socket: connections start in the lane; aiohttp's protocol
    (``aiohttp_protocol``, a factory from the gateway's ``AppRunner``) gets the ones it hands over."""

    def __init__(self, coord: Coordinator, aiohttp_protocol: Callable[[], Any]) -> None:
        self.coord = coord
        self.aiohttp_protocol = aiohttp_protocol
        self.max_body = coord.cfg.coordinator.max_body_bytes
        self.date = _Date()
        self.keepalive_s = KEEPALIVE_S
        self.connections: set[LeanConnection] = set()
        self.server: asyncio.Server | None = None
        self.loop = asyncio.get_running_loop()
        self._sweeper: asyncio.TimerHandle | None = None

    async def start(self, host: str, port: int) -> None:
        self.server = await self.loop.create_server(
            lambda: LeanConnection(self), host, port, reuse_address=True, backlog=1024)
        self._sweep()

    def keepalive(self, seconds: float) -> None:
        """Close keep-alive connections idle for ``seconds`` from now on."""
        self.keepalive_s = seconds
        self._sweep()

    def _sweep(self) -> None:
        """Close keep-alive connections idle for ``keepalive_s``: one timer for the lane, checked
        four times per period, rather than a timer re-armed on every request."""
        cutoff = self.loop.time() - self.keepalive_s
        for conn in [c for c in self.connections if c.idle_since is not None and c.idle_since <= cutoff]:
            conn.shut()
        if self._sweeper is not None:
            self._sweeper.cancel()
        self._sweeper = self.loop.call_later(self.keepalive_s / 4, self._sweep)

    async def cleanup(self) -> None:
        """As ``web.AppRunner.cleanup``: shut down (the lane holds nothing else)."""
        await self.shutdown()

    async def shutdown(self, timeout: float = 10.0) -> None:
        """Stop accepting; close idle connections; give answers under way ``timeout`` to finish."""
        if self._sweeper is not None:
            self._sweeper.cancel()
        if self.server is not None:
            self.server.close()
        deadline = time.monotonic() + timeout
        while self.connections and time.monotonic() < deadline:
            for conn in list(self.connections):
                if conn.task is None:
                    conn.shut()
            if self.connections:
                await asyncio.sleep(0.05)
        for conn in list(self.connections):
            if conn.task is not None:
                conn.task.cancel()
            conn.shut()
        with contextlib.suppress(Exception):
            if self.server is not None:
                await asyncio.wait_for(self.server.wait_closed(), 1.0)
