"""A multi-statement round trip's results, read straight off asyncmy's receive buffer.

Why not asyncmy's cursor: a leader batch is one COM_QUERY of many statements, and the server
answers each with its own OK packet. Through ``Cursor.nextset`` every result costs a chain of
coroutines, a ``MySQLResult`` and a packet wrapper — measured on this project's machine at about
20 µs of the coordinator's CPU per result, most of a leader batch's client-side cost (see README,
Performance). Here an OK packet is parsed in place (a few µs); the data is usually already in the
buffer, so a batch of results is read in one pass. A result set (``INSERT … RETURNING``) or a
``LOCAL INFILE`` request is handed back to asyncmy's own reader, packet sequence intact.

What this relies on, in the pinned asyncmy (``pyproject.toml``): the connection's receive-buffer
state (``_proto.buffer`` / ``pos`` / ``length``), ``_fill_buffer``, ``_execute_command``,
``_next_seq_id`` and ``MySQLResult``. ``tests/test_multiresult.py`` runs both readers on the same
round trips against a real server and compares every field, so an asyncmy upgrade that moves
these fails there first.

Who owns what: the caller owns the connection for the round trip (``mysqlio.run``); timeouts and
dropping a connection in doubt stay there.
"""

from __future__ import annotations

from typing import Any

from asyncmy.connection import MySQLResult
from asyncmy.constants.COMMAND import COM_QUERY
from asyncmy.errors import InternalError, MySQLError, OperationalError
from asyncmy.protocol import MysqlPacket

MORE_RESULTS = 0x0008  # SERVER_MORE_RESULTS_EXISTS
_MAX_PACKET = 0xFFFFFF
_MATCHED = b"Rows matched: "


class ServerError(Exception):
    """The server's ERR packet for the statement at ``position``; ``results`` are those before it."""

    def __init__(self, errno: int, message: str, position: int, results: list[tuple[Any, ...]]) -> None:
        super().__init__(errno, message)
        self.errno = errno
        self.message = message
        self.position = position
        self.results = results


def _lenenc(buf: bytearray, i: int) -> tuple[int, int]:
    b = buf[i]
    if b < 0xFB:
        return b, i + 1
    if b == 0xFC:
        return buf[i + 1] | buf[i + 2] << 8, i + 3
    if b == 0xFD:
        return buf[i + 1] | buf[i + 2] << 8 | buf[i + 3] << 16, i + 4
    return int.from_bytes(buf[i + 1:i + 9], "little"), i + 9


def _matched(info: bytes) -> int:
    """"Rows matched: N" of an UPDATE's info string, or -1."""
    i = info.find(_MATCHED)
    if i < 0:
        return -1
    j = i + len(_MATCHED)
    end = info.find(b" ", j)
    return int(info[j:end if end >= 0 else len(info)])


async def _packet(conn: Any) -> tuple[bytearray, int, int]:
    """The next packet, left in the receive buffer: (buffer, start of payload, payload length).
    The caller must consume it (``proto.pos``) before the next await."""
    proto = conn._proto
    if proto.length - proto.pos < 4:
        await conn._fill_buffer(4)
    buf, pos = proto.buffer, proto.pos
    n = buf[pos] | buf[pos + 1] << 8 | buf[pos + 2] << 16
    seq = buf[pos + 3]
    if seq != conn._next_seq_id:
        if seq == 0:  # MariaDB's ERR with sequence 0: the server is shutting down
            raise OperationalError(2013, "Lost connection to MySQL server during query")
        raise InternalError(f"Packet sequence number wrong - got {seq} expected {conn._next_seq_id}")
    if n >= _MAX_PACKET:  # a result split over 16 MB packets: never an OK or ERR packet
        raise InternalError("multi-packet result in a statement batch")
    conn._next_seq_id = (seq + 1) & 0xFF
    proto.pos = pos + 4
    if proto.length - proto.pos < n:
        await conn._fill_buffer(n)
    return proto.buffer, proto.pos, n


async def run(conn: Any, sql: str) -> list[tuple[Any, ...]]:
    """Send ``sql`` (one or more statements) and read every result: per result (rows affected,
    insert id, rows matched or -1, warnings, (column names, rows) or None) — what
    ``mysqlio.run`` returns. Raises ServerError at the failing statement (the server stops
    there), asyncmy's errors on a broken connection."""
    conn._result = None
    # raw bytes inside a literal arrive as surrogate escapes (batchsql._sql_cell); asyncmy's own
    # query() sends them back as the exact bytes the same way
    await conn._execute_command(COM_QUERY, sql.encode(conn._encoding, "surrogateescape"))
    proto = conn._proto
    results: list[tuple[Any, ...]] = []
    while True:
        buf, pos, n = await _packet(conn)
        end = pos + n
        head = buf[pos]
        if head == 0x00:
            affected, i = _lenenc(buf, pos + 1)
            insert_id, i = _lenenc(buf, i)
            status = buf[i] | buf[i + 1] << 8
            warnings = buf[i + 2] | buf[i + 3] << 8
            matched = _matched(bytes(buf[i + 4:end])) if end > i + 4 else -1
            proto.pos = end
            conn.server_status = status
            results.append((affected, insert_id, matched, warnings, None))
            if not status & MORE_RESULTS:
                return results
            continue
        if head == 0xFF:
            errno = buf[pos + 1] | buf[pos + 2] << 8
            i = pos + 3 + (6 if buf[pos + 3] == 0x23 else 0)  # '#' and the SQLSTATE
            message = bytes(buf[i:end]).decode("utf-8", "replace")
            proto.pos = end
            raise ServerError(errno, message, len(results), results)
        # a result set (or LOCAL INFILE): asyncmy's reader takes it from its first packet
        first = MysqlPacket(bytes(buf[pos:end]), conn._encoding)
        proto.pos = end
        res: Any = MySQLResult(conn)
        try:
            if head == 0xFB:
                await res._read_load_local_packet(first)
            else:
                await res._read_result_packet(first)
        except MySQLError as exc:  # an ERR packet in place of the rows: this statement failed
            errno = exc.args[0] if exc.args and isinstance(exc.args[0], int) else 0
            if errno == 0 or 2000 <= errno < 3000:
                raise  # the connection broke: not the statement's error
            raise ServerError(errno, str(exc.args[1]) if len(exc.args) > 1 else str(exc), len(results),
                              results) from None
        data = None
        if res.description:
            data = ([d[0] for d in res.description], list(res.rows or ()))
        results.append((res.affected_rows, res.insert_id or 0,
                        _matched(res.message) if res.message else -1, res.warning_count, data))
        conn.server_status = res.server_status or conn.server_status
        if not res.has_next:
            return results
