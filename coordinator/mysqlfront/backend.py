"""Raw protocol connections from the front end to a replica's server, and their pool.

Reads from MySQL clients are relayed: the client's statement text goes to the chosen
server as a COM_QUERY and the server's result packets come back to the client as they
arrive — only the status flags of the final packet are rewritten to the session's — so
column definitions, flags and values are exactly the server's, and nothing is decoded
and re-encoded in Python. The same connections answer COM_STMT_PREPARE with the
server's own parameter and column metadata.

A connection whose round trip failed or timed out is closed, never reused (its
protocol state is unknown); a server error leaves it usable.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from .. import mysqlio
from ..errors import Cause, ReplicaDown
from ..mysqlproto import constants as c
from ..mysqlproto.client import auth_switch_reply, build_handshake_response, parse_server_handshake
from ..mysqlproto.columns import ColumnDefinition, parse_column_definition
from ..mysqlproto.framing import frame
from ..mysqlproto.results import parse_err, parse_ok
from ..mysqlproto.wire import read_lenenc_uint

CLIENT_CAPS = (c.CLIENT_LONG_PASSWORD | c.CLIENT_LONG_FLAG | c.CLIENT_PROTOCOL_41 | c.CLIENT_TRANSACTIONS
               | c.CLIENT_SECURE_CONNECTION | c.CLIENT_MULTI_RESULTS | c.CLIENT_PS_MULTI_RESULTS
               | c.CLIENT_PLUGIN_AUTH | c.CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA)


class ServerError(Exception):
    """The server answered ERR (the connection stays usable)."""

    def __init__(self, errno: int, sqlstate: str, message: str) -> None:
        super().__init__(f"({errno}) {message}")
        self.errno, self.sqlstate, self.message = errno, sqlstate, message


@dataclass
class Relayed:
    """How a relayed statement ended."""

    kind: str  # "ok" | "rows" | "err"
    affected: int = 0
    insert_id: int = 0
    warnings: int = 0
    columns: int = 0


@dataclass(frozen=True)
class Prepared:
    params: list[ColumnDefinition]
    columns: list[ColumnDefinition]


class Backend:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, deprecate_eof: bool,
                 version: str, thread_id: int, found_rows: bool = False) -> None:
        self.reader, self.writer = reader, writer
        self.deprecate_eof = deprecate_eof
        self.found_rows = found_rows  # OK packets count matched rows (CLIENT_FOUND_ROWS)
        self.version = version
        self.thread_id = thread_id
        self.broken = False
        self.key: tuple[str, bool] = ("", deprecate_eof)  # the pool it belongs to

    @classmethod
    async def connect(cls, ep: mysqlio.Endpoint, database: str, deprecate_eof: bool, init: str = "",
                      extra_caps: int = 0) -> "Backend":
        try:
            async with asyncio.timeout(ep.connect_timeout_s):
                reader, writer = await asyncio.open_connection(ep.host, ep.port)
                try:
                    seq, greeting = await _read(reader)
                    hs = parse_server_handshake(greeting)
                    caps = CLIENT_CAPS | extra_caps | (c.CLIENT_DEPRECATE_EOF if deprecate_eof else 0)
                    resp = build_handshake_response(hs, ep.user, ep.password, database, caps)
                    writer.write(frame(seq + 1, resp)[0])
                    seq, answer = await _read(reader)
                    if answer[:1] == b"\xfe":  # AuthSwitchRequest
                        writer.write(frame(seq + 1, auth_switch_reply(answer, ep.password))[0])
                        seq, answer = await _read(reader)
                    if answer[:1] == b"\xff":
                        e = parse_err(answer)
                        raise ReplicaDown(f"{ep.host}:{ep.port} refused the login: ({e.errno}) {e.message}",
                                          Cause.IO)
                    negotiated = caps & hs.capabilities
                    if init:  # session settings (read-only, statement time limit)
                        writer.write(frame(0, bytes([c.COM_QUERY]) + init.encode())[0])
                        _, answer = await _read(reader)
                        if answer[:1] == b"\xff":
                            e = parse_err(answer)
                            raise ReplicaDown(f"{ep.host}:{ep.port} refused {init!r}: {e.message}", Cause.IO)
                except BaseException:
                    writer.close()
                    raise
        except (OSError, TimeoutError, asyncio.IncompleteReadError) as exc:
            raise ReplicaDown(f"cannot connect to {ep.host}:{ep.port}: {exc or type(exc).__name__}",
                              mysqlio.cause_of(exc)) from None
        except ValueError as exc:  # ProtocolError
            raise ReplicaDown(f"{ep.host}:{ep.port}: {exc}", Cause.IO) from None
        return cls(reader, writer, bool(negotiated & c.CLIENT_DEPRECATE_EOF), hs.server_version, hs.connection_id,
                   bool(negotiated & c.CLIENT_FOUND_ROWS))

    def close(self) -> None:
        self.broken = True
        self.writer.close()

    async def _round(self, timeout_s: float, work: Callable[[], object]) -> object:
        try:
            async with asyncio.timeout(timeout_s):
                return await work()  # type: ignore[misc]
        except ServerError:
            raise
        except BaseException as exc:
            self.close()
            if isinstance(exc, (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError)):
                raise ReplicaDown(f"server connection failed: {exc or type(exc).__name__}",
                                  mysqlio.cause_of(exc)) from None
            raise

    async def relay(self, command: bytes, sink: Callable[[bytes, bool], None], timeout_s: float) -> Relayed:
        """Send one command packet and pass every response payload to ``sink(payload,
        last)``; ``last`` marks the packet that ends the response."""
        async def work() -> Relayed:
            self.writer.write(frame(0, command)[0])
            _, first = await _read(self.reader)
            head = first[0]
            if head == 0x00:
                ok = parse_ok(first)
                sink(first, True)
                return Relayed("ok", ok.affected_rows, ok.last_insert_id, ok.warnings)
            if head == 0xFF:
                sink(first, True)
                return Relayed("err")
            if head == 0xFB:
                raise ValueError("the server asked for a LOCAL INFILE, which the front end never allows")
            ncols, _ = read_lenenc_uint(first, 0)
            sink(first, False)
            for _i in range(ncols):
                sink((await _read(self.reader))[1], False)
            if not self.deprecate_eof:
                sink((await _read(self.reader))[1], False)
            while True:
                _, pkt = await _read(self.reader)
                if pkt[0] == 0xFE and len(pkt) < 0xFFFFFF:
                    sink(pkt, True)
                    return Relayed("rows", columns=ncols)
                if pkt[0] == 0xFF:
                    sink(pkt, True)
                    return Relayed("err")
                sink(pkt, False)

        result = await self._round(timeout_s, work)
        assert isinstance(result, Relayed)
        return result

    async def query(self, sql: str, timeout_s: float) -> Relayed:
        """One statement of our own (no client waiting on its packets); ERR raises ServerError."""
        err: list[bytes] = []

        def sink(pkt: bytes, last: bool) -> None:
            if last and pkt[:1] == b"\xff":
                err.append(pkt)

        out = await self.relay(bytes([c.COM_QUERY]) + sql.encode("utf-8", "surrogateescape"), sink, timeout_s)
        if err:
            e = parse_err(err[0])
            raise ServerError(e.errno, e.sqlstate, e.message)
        return out

    async def relay_until_eof(self, command: bytes, sink: Callable[[bytes, bool], None], timeout_s: float) -> None:
        """COM_FIELD_LIST: column definitions until an EOF (or an ERR)."""
        async def work() -> None:
            self.writer.write(frame(0, command)[0])
            while True:
                _, pkt = await _read(self.reader)
                end = pkt[0] == 0xFF or (pkt[0] == 0xFE and len(pkt) < 9)
                sink(pkt, end)
                if end:
                    return

        await self._round(timeout_s, work)

    async def prepare(self, sql: bytes, timeout_s: float, write: bool = False) -> Prepared:
        """The server's metadata for a statement (then the server-side statement is closed).

        Pool connections are read-only sessions, and MariaDB refuses even to prepare a write in
        one (1792), so a write is prepared inside READ WRITE … READ ONLY; the connection goes
        back to the pool only if the READ ONLY came back OK (otherwise it is closed)."""
        async def command(text: bytes) -> None:
            self.writer.write(frame(0, bytes([c.COM_QUERY]) + text)[0])
            _, answer = await _read(self.reader)
            if answer[:1] != b"\x00":
                raise ValueError(f"the server refused {text.decode()!r}")

        async def work() -> Prepared:
            if not write:
                return await metadata()
            await command(b"SET SESSION TRANSACTION READ WRITE")
            try:
                return await metadata()
            finally:
                try:
                    await command(b"SET SESSION TRANSACTION READ ONLY")
                except BaseException:
                    self.close()
                    raise

        async def metadata() -> Prepared:
            self.writer.write(frame(0, bytes([c.COM_STMT_PREPARE]) + sql)[0])
            _, first = await _read(self.reader)
            if first[0] == 0xFF:
                e = parse_err(first)
                raise ServerError(e.errno, e.sqlstate, e.message)
            stmt_id = int.from_bytes(first[1:5], "little")
            ncols = int.from_bytes(first[5:7], "little")
            nparams = int.from_bytes(first[7:9], "little")
            params = [parse_column_definition((await _read(self.reader))[1]) for _ in range(nparams)]
            if nparams and not self.deprecate_eof:
                await _read(self.reader)
            cols = [parse_column_definition((await _read(self.reader))[1]) for _ in range(ncols)]
            if ncols and not self.deprecate_eof:
                await _read(self.reader)
            self.writer.write(frame(0, bytes([c.COM_STMT_CLOSE]) + stmt_id.to_bytes(4, "little"))[0])
            return Prepared(params, cols)

        result = await self._round(timeout_s, work)
        assert isinstance(result, Prepared)
        return result


async def _read(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """One logical packet (continuations of 16 MiB payloads joined)."""
    parts = []
    while True:
        head = await reader.readexactly(4)
        size = int.from_bytes(head[:3], "little")
        parts.append(await reader.readexactly(size))
        if size < 0xFFFFFF:
            return head[3], b"".join(parts)


class BackendPool:
    """Idle raw connections per (replica, result format); bounded; failures never reused."""

    def __init__(self, endpoint: Callable[[str], mysqlio.Endpoint], database: str, size: int, init: str) -> None:
        self.endpoint = endpoint
        self.database = database
        self.size = size
        self.init = init
        self._idle: dict[tuple[str, bool], list[Backend]] = {}
        self._sems: dict[tuple[str, bool], asyncio.Semaphore] = {}
        self.versions: dict[str, str] = {}

    async def acquire(self, rid: str, deprecate_eof: bool, timeout_s: float) -> Backend:
        key = (rid, deprecate_eof)
        sem = self._sems.setdefault(key, asyncio.Semaphore(self.size))
        try:
            async with asyncio.timeout(timeout_s):
                await sem.acquire()
        except TimeoutError:
            raise ReplicaDown(f"no free connection to {rid} within {timeout_s:g}s", Cause.TIMEOUT) from None
        idle = self._idle.setdefault(key, [])
        try:
            b = idle.pop() if idle else await Backend.connect(self.endpoint(rid), self.database, deprecate_eof,
                                                             self.init)
        except BaseException:
            sem.release()
            raise
        b.key = key
        self.versions[rid] = b.version
        return b

    def release(self, b: Backend) -> None:
        if not b.broken:
            self._idle.setdefault(b.key, []).append(b)
        self._sems[b.key].release()

    def close(self) -> None:
        for conns in self._idle.values():
            for b in conns:
                b.close()
        self._idle.clear()
