"""A pure codec for the MySQL/MariaDB client/server protocol, server side.

No sockets, no asyncio: bytes in, Python objects out, and back. A front end feeds what it
reads into ``PacketReader``, dispatches each payload on its command byte, and frames the
payloads these modules build with ``PacketWriter``. Modules:

* ``constants``  capability/status flags, command bytes, column types/flags, charsets, errors
* ``wire``       length-encoded integers and strings, NUL strings, fixed ints, ``Reader``
* ``framing``    ``PacketReader`` (incremental, >= 16 MiB reassembly), ``frame``, ``PacketWriter``
* ``handshake``  HandshakeV10, HandshakeResponse41, SSLRequest, AuthSwitch, mysql_native_password
* ``commands``   COM_QUERY / INIT_DB / FIELD_LIST / SET_OPTION / CHANGE_USER … parsing
* ``columns``    Column Definition 41, defaults for computed columns, inference from values
* ``results``    OK / ERR / EOF packets, text rows and text result sets, COM_FIELD_LIST answer
* ``values``     Python values <-> MySQL text (cells, temporal literals)
* ``binvalues``  binary-protocol values
* ``binary``     COM_STMT_* parsing, prepare answer, binary rows and result sets
"""

from coordinator.mysqlproto.binary import (
    ParamType,
    StatementParams,
    StmtExecute,
    binary_resultset,
    binary_row,
    parse_stmt_execute,
    peek_statement_id,
    prepare_ok,
)
from coordinator.mysqlproto.columns import ColumnDefinition, column, infer_column, infer_columns
from coordinator.mysqlproto.errors import PacketTooLarge, ProtocolError
from coordinator.mysqlproto.framing import Packet, PacketReader, PacketWriter, frame
from coordinator.mysqlproto.handshake import (
    HandshakeResponse,
    auth_switch_request,
    build_handshake,
    is_ssl_request,
    make_scramble,
    native_hash,
    parse_handshake_response,
    verify_native,
)
from coordinator.mysqlproto.results import end_of_rows, eof_packet, err_packet, ok_packet, text_resultset

__all__ = [
    "ColumnDefinition",
    "HandshakeResponse",
    "Packet",
    "PacketReader",
    "PacketTooLarge",
    "PacketWriter",
    "ParamType",
    "ProtocolError",
    "StatementParams",
    "StmtExecute",
    "auth_switch_request",
    "binary_resultset",
    "binary_row",
    "build_handshake",
    "column",
    "end_of_rows",
    "eof_packet",
    "err_packet",
    "frame",
    "infer_column",
    "infer_columns",
    "is_ssl_request",
    "make_scramble",
    "native_hash",
    "ok_packet",
    "parse_handshake_response",
    "parse_stmt_execute",
    "peek_statement_id",
    "prepare_ok",
    "text_resultset",
    "verify_native",
]
