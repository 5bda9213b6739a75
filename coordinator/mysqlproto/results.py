"""Generic response packets (OK, ERR, EOF) and the text-protocol result set.

Builders return payloads (``bytes``) or lists of payloads in wire order; framing and
sequence ids are the caller's (``framing.PacketWriter``), so a server can send a whole
response in one write.

Deviation from MySQL's documentation, on purpose: the OK packet's info string is sent
length-encoded, as MariaDB 10.11 and MySQL servers actually send it (captured: ``00 02 00
02 00 00 00 28 "Rows matched: 4  Changed: 2  Warnings: 0"`` to a client without
CLIENT_SESSION_TRACK). Connector/C's ``ma_read_ok_packet`` always reads it with
``net_field_length``; a string<EOF> there would be misread. PyMySQL and mysql2 read the
rest of the packet, so their ``info`` starts with the length byte, as with real servers.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from coordinator.mysqlproto import constants as c
from coordinator.mysqlproto.columns import ColumnDefinition
from coordinator.mysqlproto.errors import ProtocolError
from coordinator.mysqlproto.values import Value, text_cell
from coordinator.mysqlproto.wire import Reader, fixed_int, lenenc_bytes, lenenc_int

OK_HEADER = 0x00
EOF_HEADER = 0xFE
ERR_HEADER = 0xFF
#: Connector/C keeps error messages in a 512-byte buffer (MYSQL_ERRMSG_SIZE).
MAX_ERROR_MESSAGE = 512


def ok_packet(
    affected_rows: int = 0,
    last_insert_id: int = 0,
    status: int = c.SERVER_STATUS_AUTOCOMMIT,
    warnings: int = 0,
    info: str = "",
    *,
    header: int = OK_HEADER,
) -> bytes:
    """OK_Packet (4.1 layout). ``header=0xFE`` gives the end-of-result-set OK of DEPRECATE_EOF.

    ``info`` is e.g. "Rows matched: 1  Changed: 1  Warnings: 0" (UPDATE) or
    "Records: 2  Duplicates: 0  Warnings: 0" (multi-row INSERT): with CLIENT_FOUND_ROWS
    ``affected_rows`` is the matched count and this string still carries both.
    """
    out = bytearray((header,))
    out += lenenc_int(affected_rows)
    out += lenenc_int(last_insert_id)
    out += fixed_int(status, 2)
    out += fixed_int(min(warnings, 0xFFFF), 2)
    if info:
        out += lenenc_bytes(info.encode("utf-8"))
    return bytes(out)


def eof_packet(status: int = c.SERVER_STATUS_AUTOCOMMIT, warnings: int = 0) -> bytes:
    """EOF_Packet: 0xFE, warnings int<2>, status int<2> (note: warnings come first)."""
    return bytes((EOF_HEADER,)) + fixed_int(min(warnings, 0xFFFF), 2) + fixed_int(status, 2)


def end_of_rows(status: int, capabilities: int, warnings: int = 0) -> bytes:
    """What ends a result set (or COM_FIELD_LIST / COM_SET_OPTION): EOF, or a 0xFE OK under DEPRECATE_EOF."""
    if capabilities & c.CLIENT_DEPRECATE_EOF:
        return ok_packet(0, 0, status, warnings, header=EOF_HEADER)
    return eof_packet(status, warnings)


def err_packet(errno: int, message: str, sqlstate: str | None = None) -> bytes:
    """ERR_Packet: 0xFF, errno int<2>, '#', SQLSTATE (5 chars), message.

    ``sqlstate`` defaults from ``constants.SQLSTATE_BY_ERRNO`` (else HY000). Client error
    numbers (2000-2999, 5000-5999) are refused: Connector/C treats such an ERR as
    malformed. The message is cut to 512 bytes on a character boundary.
    """
    if not 0 < errno <= 0xFFFE or 2000 <= errno <= 2999 or 5000 <= errno <= 5999:
        raise ValueError(f"{errno} is not a server error number")
    state = sqlstate if sqlstate is not None else c.SQLSTATE_BY_ERRNO.get(errno, "HY000")
    if len(state) != 5 or not state.isascii() or not state.isalnum():
        raise ValueError(f"bad SQLSTATE {state!r}")
    msg = message.encode("utf-8", "replace")[:MAX_ERROR_MESSAGE].decode("utf-8", "ignore").encode("utf-8")
    return bytes((ERR_HEADER,)) + fixed_int(errno, 2) + b"#" + state.encode("ascii") + msg


@dataclass(frozen=True)
class OkPacket:
    affected_rows: int
    last_insert_id: int
    status: int
    warnings: int
    info: str


@dataclass(frozen=True)
class ErrPacket:
    errno: int
    sqlstate: str
    message: str


def parse_ok(payload: bytes) -> OkPacket:
    """Decode an OK packet (header 0x00, or 0xFE at the end of a DEPRECATE_EOF result set)."""
    r = Reader(payload)
    header = r.uint(1, "OK header")
    if header not in (OK_HEADER, EOF_HEADER):
        raise ProtocolError(f"not an OK packet (header 0x{header:02x})")
    affected = r.lenenc_int("affected rows")
    last_id = r.lenenc_int("last insert id")
    status = r.uint(2, "status flags")
    warnings = r.uint(2, "warnings")
    info = r.lenenc_bytes("info").decode("utf-8", "replace") if r.remaining else ""
    return OkPacket(affected, last_id, status, warnings, info)


def parse_err(payload: bytes) -> ErrPacket:
    r = Reader(payload)
    if r.uint(1, "ERR header") != ERR_HEADER:
        raise ProtocolError("not an ERR packet")
    errno = r.uint(2, "error number")
    state = "HY000"
    if r.remaining and payload[r.pos] == ord("#"):
        r.pos += 1
        state = r.fixed(5, "SQLSTATE").decode("ascii", "replace")
    return ErrPacket(errno, state, r.rest().decode("utf-8", "replace"))


def parse_eof(payload: bytes) -> tuple[int, int]:
    """``(warnings, status)`` of an EOF packet."""
    r = Reader(payload)
    if r.uint(1, "EOF header") != EOF_HEADER or len(payload) != 5:
        raise ProtocolError("not an EOF packet")
    warnings = r.uint(2, "warnings")
    return warnings, r.uint(2, "status flags")


def is_eof_or_final_ok(payload: bytes) -> bool:
    """True for an EOF or a 0xFE-header OK: a 0xFE first byte in a packet under 16 MiB."""
    return bool(payload) and payload[0] == EOF_HEADER and len(payload) < 0xFFFFFF


# --- text protocol --------------------------------------------------------------------------

def text_row(cells: Iterable[bytes | None]) -> bytes:
    """ProtocolText::ResultsetRow: each cell a string<lenenc>, NULL as the single byte 0xFB."""
    out = bytearray()
    for cell in cells:
        out += b"\xfb" if cell is None else lenenc_bytes(cell)
    return bytes(out)


def text_row_values(values: Iterable[Value], encoding: str = "utf-8") -> bytes:
    """A text row from Python values (bytes are sent as they are; see ``values.text_cell``)."""
    return text_row(text_cell(v, encoding) for v in values)


def text_resultset(
    columns: Sequence[ColumnDefinition],
    rows: Iterable[Sequence[Value]],
    *,
    capabilities: int,
    status: int = c.SERVER_STATUS_AUTOCOMMIT,
    warnings: int = 0,
    more_results: bool = False,
    encoding: str = "utf-8",
) -> list[bytes]:
    """The packets of a COM_QUERY result set, in order.

    column count, column definitions, EOF (unless DEPRECATE_EOF), one packet per row, and
    EOF / 0xFE-OK. ``more_results`` adds SERVER_MORE_RESULTS_EXISTS to the status of both
    EOFs, as MariaDB does for every result but the last of a multi-statement query.
    ``rows`` may hold Python values or raw text cells (bytes) relayed from a backend.
    """
    if not columns:
        raise ValueError("a result set needs at least one column (send an OK packet instead)")
    if more_results:
        status |= c.SERVER_MORE_RESULTS_EXISTS
    packets = [lenenc_int(len(columns))]
    packets += [col.encode(encoding) for col in columns]
    if not capabilities & c.CLIENT_DEPRECATE_EOF:
        packets.append(eof_packet(status, 0))
    for row in rows:
        if len(row) != len(columns):
            raise ValueError(f"row has {len(row)} values for {len(columns)} columns")
        packets.append(text_row_values(row, encoding))
    packets.append(end_of_rows(status, capabilities, warnings))
    return packets


def field_list_response(
    columns: Sequence[ColumnDefinition],
    *,
    capabilities: int,
    status: int = c.SERVER_STATUS_AUTOCOMMIT,
    defaults: Sequence[bytes | None] | None = None,
    encoding: str = "utf-8",
) -> list[bytes]:
    """COM_FIELD_LIST answer: definitions with their defaults (no column count), then EOF.

    The mariadb CLI sends COM_FIELD_LIST for tab completion ("auto-rehash") unless -A.
    """
    defs = defaults if defaults is not None else [None] * len(columns)
    packets = [col.encode_field_list(d, encoding) for col, d in zip(columns, defs, strict=True)]
    packets.append(end_of_rows(status, capabilities))
    return packets
