"""Prepared statements: COM_STMT_* requests and the binary-protocol responses.

Wire layouts (MySQL page_protocol_com_stmt_*, MariaDB "3-binary-protocol" pages), as
captured from MariaDB 10.11 with Connector/C 3.3 (what sysbench uses) and asyncmy:

* COM_STMT_PREPARE answer: ``00 id<4> columns<2> params<2> 00 warnings<2>``, then the
  parameter definitions and the column definitions, each group followed by an EOF unless
  CLIENT_DEPRECATE_EOF. The column count is what sysbench uses to call a statement a read.
  To refuse a statement send ERR 1295 (ER_UNSUPPORTED_PS): sysbench then emulates it.
* COM_STMT_EXECUTE: ``17 id<4> flags<1> iterations<4>`` and, with parameters, a NULL
  bitmap of (n+7)/8 bytes, a new-params-bound byte, types (2 bytes each: type, 0x80 for
  unsigned) when it is 1, then the non-NULL values. Types are sent once and reused by
  later executions (Connector/C sends new-params-bound 0 on re-execution), and a
  parameter that got COM_STMT_SEND_LONG_DATA has no value in the packet at all.
* Binary result row: ``00``, a NULL bitmap of (n+9)/8 bytes whose first two bits are
  unused (column i is bit i+2), then the non-NULL values.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from coordinator.mysqlproto import constants as c
from coordinator.mysqlproto.binvalues import decode_binary_value, encode_binary_value
from coordinator.mysqlproto.columns import ColumnDefinition
from coordinator.mysqlproto.errors import ProtocolError
from coordinator.mysqlproto.results import end_of_rows, eof_packet
from coordinator.mysqlproto.values import Value
from coordinator.mysqlproto.wire import Reader, fixed_int, lenenc_int

#: MariaDB's definition of a "?" parameter in the prepare answer (type NULL, binary).
PARAM_DEFINITION = ColumnDefinition("?", c.MYSQL_TYPE_NULL, c.CHARSET_BINARY, 0, c.BINARY_FLAG, 0)
#: MariaDB >= 10.2: COM_STMT_EXECUTE with this id means "the statement prepared last".
LAST_PREPARED_STATEMENT_ID = 0xFFFFFFFF


def prepare_ok(
    statement_id: int,
    columns: Sequence[ColumnDefinition],
    params: Sequence[ColumnDefinition] | int,
    *,
    capabilities: int,
    warnings: int = 0,
    status: int = c.SERVER_STATUS_AUTOCOMMIT,
    encoding: str = "utf-8",
) -> list[bytes]:
    """The packets answering COM_STMT_PREPARE (``params`` may be just the count)."""
    param_defs = [PARAM_DEFINITION] * params if isinstance(params, int) else list(params)
    first = b"\x00" + fixed_int(statement_id, 4) + fixed_int(len(columns), 2) + fixed_int(len(param_defs), 2)
    packets = [first + b"\x00" + fixed_int(min(warnings, 0xFFFF), 2)]
    for group in (param_defs, columns):
        if group:
            packets += [col.encode(encoding) for col in group]
            if not capabilities & c.CLIENT_DEPRECATE_EOF:
                packets.append(eof_packet(status))
    return packets


class ParamType(NamedTuple):
    type: int
    unsigned: bool = False


@dataclass(frozen=True)
class StmtExecute:
    statement_id: int
    flags: int  # cursor type; a front end without cursors may ignore it and send rows
    iteration_count: int
    new_params_bound: bool
    types: tuple[ParamType, ...]
    values: tuple[Value, ...]


def _stmt_id(payload: bytes, command: int, name: str) -> Reader:
    r = Reader(payload)
    if r.uint(1, "command") != command:
        raise ProtocolError(f"not a {name} packet")
    return r


def peek_statement_id(payload: bytes) -> int:
    """The statement id of a COM_STMT_EXECUTE / SEND_LONG_DATA / CLOSE / RESET / FETCH packet.

    Needed before parsing an execute, whose layout depends on that statement's parameter
    count and previously bound types.
    """
    r = Reader(payload)
    r.uint(1, "command")
    return r.uint(4, "statement id")


def parse_stmt_execute(
    payload: bytes,
    param_count: int,
    bound_types: Sequence[ParamType] | None = None,
    long_data: Mapping[int, bytes] | None = None,
    encoding: str | None = "utf-8",
) -> StmtExecute:
    """Decode COM_STMT_EXECUTE for a statement with ``param_count`` parameters.

    ``bound_types`` are the types from the previous execution (required when the client
    does not resend them); ``long_data`` the COM_STMT_SEND_LONG_DATA bytes per parameter
    index, which take the place of (and win over the NULL bit of) those parameters: they
    decode as str for character types and as bytes otherwise. See ``binvalues`` for the
    Python type of each value.
    """
    r = _stmt_id(payload, c.COM_STMT_EXECUTE, "COM_STMT_EXECUTE")
    statement_id = r.uint(4, "statement id")
    flags = r.uint(1, "flags")
    iterations = r.uint(4, "iteration count")
    if param_count == 0:
        return StmtExecute(statement_id, flags, iterations, False, (), ())
    null_bitmap = r.fixed((param_count + 7) // 8, "NULL bitmap")
    new_bound = r.uint(1, "new-params-bound flag") == 1
    if new_bound:
        raw_types = r.fixed(2 * param_count, "parameter types")
        types = tuple(ParamType(raw_types[2 * i], bool(raw_types[2 * i + 1] & c.PARAM_UNSIGNED))
                      for i in range(param_count))
    elif bound_types is not None and len(bound_types) == param_count:
        types = tuple(bound_types)
    else:
        raise ProtocolError("COM_STMT_EXECUTE without parameter types, and none were bound before")
    pending = long_data or {}
    values: list[Value] = []
    for i, ptype in enumerate(types):
        if i in pending:
            values.append(_long_data_value(pending[i], ptype.type, encoding))
        elif null_bitmap[i // 8] & (1 << (i % 8)) or ptype.type == c.MYSQL_TYPE_NULL:
            values.append(None)
        else:
            value, r.pos = decode_binary_value(r.data, r.pos, ptype.type, ptype.unsigned, encoding)
            values.append(value)
    return StmtExecute(statement_id, flags, iterations, new_bound, types, tuple(values))


def _long_data_value(data: bytes, type_: int, encoding: str | None) -> Value:
    if type_ in c.TEXT_TYPES and encoding is not None:
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            return data
    return data


@dataclass(frozen=True)
class SendLongData:
    statement_id: int
    param_id: int
    data: bytes


def parse_send_long_data(payload: bytes) -> SendLongData:
    """COM_STMT_SEND_LONG_DATA: ``18 id<4> param<2> data<EOF>``; the server never answers it."""
    r = _stmt_id(payload, c.COM_STMT_SEND_LONG_DATA, "COM_STMT_SEND_LONG_DATA")
    statement_id = r.uint(4, "statement id")
    return SendLongData(statement_id, r.uint(2, "parameter id"), r.rest())


def parse_stmt_close(payload: bytes) -> int:
    """COM_STMT_CLOSE: the statement id. The server sends no answer at all."""
    return _stmt_id(payload, c.COM_STMT_CLOSE, "COM_STMT_CLOSE").uint(4, "statement id")


def parse_stmt_reset(payload: bytes) -> int:
    """COM_STMT_RESET: the statement id; answer OK (or ERR 1243) after dropping its long data."""
    return _stmt_id(payload, c.COM_STMT_RESET, "COM_STMT_RESET").uint(4, "statement id")


def parse_stmt_fetch(payload: bytes) -> tuple[int, int]:
    """COM_STMT_FETCH: ``(statement id, number of rows)``."""
    r = _stmt_id(payload, c.COM_STMT_FETCH, "COM_STMT_FETCH")
    statement_id = r.uint(4, "statement id")
    return statement_id, r.uint(4, "row count")


class StatementParams:
    """Per-statement parameter state a server keeps between COM_STMT_* packets.

    Holds the parameter count, the types bound by the last execution and the long data
    received since; ``parse_execute`` uses and then updates them exactly as MySQL does
    (long data is consumed by an execution and dropped by COM_STMT_RESET).
    """

    def __init__(self, param_count: int) -> None:
        self.param_count = param_count
        self.bound_types: tuple[ParamType, ...] | None = None
        self.long_data: dict[int, bytearray] = {}

    def add_long_data(self, chunk: SendLongData) -> None:
        """Append a chunk; an out-of-range parameter id is an error for the next execute."""
        if not 0 <= chunk.param_id < self.param_count:
            raise ProtocolError(f"long data for parameter {chunk.param_id} of {self.param_count}")
        self.long_data.setdefault(chunk.param_id, bytearray()).extend(chunk.data)

    def parse_execute(self, payload: bytes, encoding: str | None = "utf-8") -> StmtExecute:
        long_data = {i: bytes(b) for i, b in self.long_data.items()}
        execute = parse_stmt_execute(payload, self.param_count, self.bound_types, long_data, encoding)
        if self.param_count:
            self.bound_types = execute.types
        self.long_data.clear()
        return execute

    def reset(self) -> None:
        self.long_data.clear()


# --- binary result sets --------------------------------------------------------------------

def binary_row(columns: Sequence[ColumnDefinition], values: Sequence[object], encoding: str = "utf-8") -> bytes:
    """ProtocolBinary::ResultsetRow for ``values`` typed by ``columns`` (None is NULL)."""
    if len(values) != len(columns):
        raise ValueError(f"row has {len(values)} values for {len(columns)} columns")
    bitmap = bytearray((len(columns) + 9) // 8)
    body = bytearray()
    for i, (col, value) in enumerate(zip(columns, values, strict=True)):
        if value is None:
            bitmap[(i + 2) // 8] |= 1 << ((i + 2) % 8)
        else:
            body += encode_binary_value(col.type, col.unsigned, value, encoding, col.length)
    return b"\x00" + bytes(bitmap) + bytes(body)


def parse_binary_row(payload: bytes, columns: Sequence[ColumnDefinition]) -> list[Value]:
    """Decode a binary row (for tests and for relaying a backend's binary results).

    Character columns decode with their own charset (binary charset 63 stays bytes).
    """
    r = Reader(payload)
    if r.uint(1, "row header") != 0:
        raise ProtocolError("not a binary result row")
    bitmap = r.fixed((len(columns) + 9) // 8, "NULL bitmap")
    row: list[Value] = []
    for i, col in enumerate(columns):
        if bitmap[(i + 2) // 8] & (1 << ((i + 2) % 8)):
            row.append(None)
            continue
        value, r.pos = decode_binary_value(r.data, r.pos, col.type, col.unsigned, c.python_encoding(col.charset))
        row.append(value)
    return row


def binary_resultset(
    columns: Sequence[ColumnDefinition],
    rows: Iterable[Sequence[object]],
    *,
    capabilities: int,
    status: int = c.SERVER_STATUS_AUTOCOMMIT,
    warnings: int = 0,
    more_results: bool = False,
    encoding: str = "utf-8",
) -> list[bytes]:
    """The packets of a COM_STMT_EXECUTE result set (same frame as the text one, binary rows)."""
    if not columns:
        raise ValueError("a result set needs at least one column (send an OK packet instead)")
    if more_results:
        status |= c.SERVER_MORE_RESULTS_EXISTS
    packets = [lenenc_int(len(columns))] + [col.encode(encoding) for col in columns]
    if not capabilities & c.CLIENT_DEPRECATE_EOF:
        packets.append(eof_packet(status))
    packets += [binary_row(columns, row, encoding) for row in rows]
    packets.append(end_of_rows(status, capabilities, warnings))
    return packets
