"""Parsing of text-protocol command packets (the first packet of every client request).

Each command payload starts with its command byte (``constants.COM_*``); ``command_of``
tells which parser applies. Which answer each command expects:

* COM_QUERY, COM_STMT_PREPARE: result set(s) / OK / ERR (prepare: ``binary.prepare_ok``);
* COM_INIT_DB, COM_PING, COM_RESET_CONNECTION, COM_PROCESS_KILL: OK or ERR;
* COM_FIELD_LIST: ``results.field_list_response`` or ERR;
* COM_SET_OPTION: ``results.end_of_rows`` (an EOF, not an OK) or ERR;
* COM_STATISTICS: one packet holding a plain status string;
* COM_QUIT, COM_STMT_CLOSE, COM_STMT_SEND_LONG_DATA: nothing;
* COM_CHANGE_USER: like a new handshake (AuthSwitchRequest, then OK or ERR);
* anything unsupported: ERR 1047 ER_UNKNOWN_COM_ERROR (08S01), as MySQL answers.

SQL text is decoded with ``surrogateescape``: queries may carry raw bytes that are not
valid in the connection charset (PyMySQL sends blobs as ``_binary'…'`` literals), and
``text.encode(encoding, "surrogateescape")`` gives back exactly the bytes the client sent.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from coordinator.mysqlproto import constants as c
from coordinator.mysqlproto.errors import ProtocolError
from coordinator.mysqlproto.handshake import parse_connect_attributes
from coordinator.mysqlproto.wire import Reader


def command_of(payload: bytes) -> int:
    if not payload:
        raise ProtocolError("empty command packet")
    return payload[0]


def _body(payload: bytes, command: int, name: str) -> bytes:
    if command_of(payload) != command:
        raise ProtocolError(f"not a {name} packet")
    return payload[1:]


def parse_query(payload: bytes, encoding: str = "utf-8") -> str:
    """COM_QUERY: the SQL text (string<EOF>); may hold several statements with MULTI_STATEMENTS."""
    return _body(payload, c.COM_QUERY, "COM_QUERY").decode(encoding, "surrogateescape")


def parse_stmt_prepare(payload: bytes, encoding: str = "utf-8") -> str:
    """COM_STMT_PREPARE: the SQL text with ``?`` placeholders."""
    return _body(payload, c.COM_STMT_PREPARE, "COM_STMT_PREPARE").decode(encoding, "surrogateescape")


def parse_init_db(payload: bytes, encoding: str = "utf-8") -> str:
    """COM_INIT_DB (the CLI's ``use db``): the schema name."""
    return _body(payload, c.COM_INIT_DB, "COM_INIT_DB").decode(encoding, "surrogateescape")


def parse_field_list(payload: bytes, encoding: str = "utf-8") -> tuple[str, str]:
    """COM_FIELD_LIST: ``(table, wildcard)``; the wildcard is a LIKE pattern, often empty."""
    r = Reader(_body(payload, c.COM_FIELD_LIST, "COM_FIELD_LIST"))
    table = r.nul_bytes("table name").decode(encoding, "surrogateescape")
    return table, r.rest().decode(encoding, "surrogateescape")


def parse_set_option(payload: bytes) -> int:
    """COM_SET_OPTION: MYSQL_OPTION_MULTI_STATEMENTS_ON (0) or _OFF (1)."""
    return Reader(_body(payload, c.COM_SET_OPTION, "COM_SET_OPTION")).uint(2, "option")


def parse_process_kill(payload: bytes) -> int:
    """COM_PROCESS_KILL: the connection id to kill."""
    return Reader(_body(payload, c.COM_PROCESS_KILL, "COM_PROCESS_KILL")).uint(4, "connection id")


@dataclass(frozen=True)
class ChangeUser:
    user: str
    auth_response: bytes
    database: str | None
    charset: int | None
    auth_plugin: str | None
    attributes: dict[str, str] = field(default_factory=dict)


def parse_change_user(payload: bytes, capabilities: int, encoding: str = "utf-8") -> ChangeUser:
    """COM_CHANGE_USER (connection pools re-authenticating); ``capabilities`` as negotiated.

    The auth length is one byte under SECURE_CONNECTION even for clients that use
    length-encoded auth data in the handshake, per MySQL's page_protocol_com_change_user.
    """
    r = Reader(_body(payload, c.COM_CHANGE_USER, "COM_CHANGE_USER"))
    user = r.nul_bytes("user name").decode(encoding, "surrogateescape")
    if capabilities & c.CLIENT_SECURE_CONNECTION:
        auth = r.fixed(r.uint(1, "auth response length"), "auth response")
    else:
        auth = r.nul_bytes("auth response")
    database = r.nul_bytes("database").decode(encoding, "surrogateescape") if r.remaining else None
    charset = r.uint(2, "charset") if r.remaining else None
    plugin = None
    if capabilities & c.CLIENT_PLUGIN_AUTH and r.remaining:
        plugin = r.nul_bytes("auth plugin name").decode("ascii", "replace")
    attributes: dict[str, str] = {}
    if capabilities & c.CLIENT_CONNECT_ATTRS and r.remaining:
        attributes = parse_connect_attributes(r.lenenc_bytes("connect attributes"))
    return ChangeUser(user, auth, database or None, charset, plugin, attributes)
