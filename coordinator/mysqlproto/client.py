"""The client side of the handshake, for the front end's own connections to its servers.

The MySQL front end relays reads (and learns prepared-statement metadata) over raw
protocol connections to the replicas, so a result set travels from the server to the
client as the server produced it — exact column definitions, flags and values, no
decoding and re-encoding in Python. This module builds what such a connection sends:
parsing the server's HandshakeV10 and building a HandshakeResponse41 with
mysql_native_password. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import constants as c
from .errors import ProtocolError
from .handshake import native_response
from .wire import Reader, fixed_int, lenenc_bytes, nul_bytes


@dataclass(frozen=True)
class ServerHandshake:
    protocol: int
    server_version: str
    connection_id: int
    scramble: bytes  # 20 bytes
    capabilities: int
    charset: int
    status: int
    auth_plugin: str


def parse_server_handshake(payload: bytes) -> ServerHandshake:
    if not payload:
        raise ProtocolError("empty handshake packet")
    if payload[0] == 0xFF:
        raise ProtocolError("the server refused the connection: " + payload[9:].decode("utf-8", "replace"))
    r = Reader(payload)
    protocol = r.uint(1)
    if protocol != 10:
        raise ProtocolError(f"unsupported handshake protocol {protocol}")
    version = r.nul_bytes().decode("utf-8", "replace")
    conn_id = r.uint(4)
    part1 = r.fixed(8)
    r.uint(1)  # filler
    caps = r.uint(2)
    charset = r.uint(1)
    status = r.uint(2)
    caps |= r.uint(2) << 16
    auth_len = r.uint(1)
    r.fixed(10)  # reserved (MariaDB puts its extended capabilities in the last 4)
    part2 = b""
    if caps & c.CLIENT_SECURE_CONNECTION:
        part2 = r.fixed(max(13, auth_len - 8))
        part2 = part2[:-1] if part2.endswith(b"\x00") else part2
    plugin = ""
    if caps & c.CLIENT_PLUGIN_AUTH:
        rest = r.rest()
        plugin = rest.split(b"\x00", 1)[0].decode("ascii", "replace")
    return ServerHandshake(protocol, version, conn_id, (part1 + part2)[:20], caps, charset, status, plugin)


def build_handshake_response(server: ServerHandshake, user: str, password: str, database: str | None,
                             capabilities: int, charset: int = c.CHARSET_UTF8MB4_GENERAL_CI,
                             max_packet: int = 1 << 24) -> bytes:
    """HandshakeResponse41 with mysql_native_password (``capabilities``: what we ask for;
    only flags the server offers are kept)."""
    caps = capabilities & server.capabilities | c.CLIENT_PROTOCOL_41
    if database:
        caps |= c.CLIENT_CONNECT_WITH_DB
    caps |= c.CLIENT_SECURE_CONNECTION | c.CLIENT_PLUGIN_AUTH
    auth = native_response(password, server.scramble) if password else b""
    out = [fixed_int(caps, 4), fixed_int(max_packet, 4), fixed_int(charset, 1), b"\x00" * 23,
           nul_bytes(user.encode())]
    if caps & c.CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA:
        out.append(lenenc_bytes(auth))
    else:
        out.append(fixed_int(len(auth), 1) + auth)
    if database:
        out.append(nul_bytes(database.encode()))
    out.append(nul_bytes(c.NATIVE_PASSWORD_PLUGIN.encode()))
    return b"".join(out)


def auth_switch_reply(payload: bytes, password: str) -> bytes:
    """The answer to an AuthSwitchRequest (0xFE, plugin name, new scramble) for
    mysql_native_password; other plugins are refused."""
    r = Reader(payload)
    r.uint(1)
    plugin = r.nul_bytes().decode("ascii", "replace")
    if plugin != c.NATIVE_PASSWORD_PLUGIN:
        raise ProtocolError(f"the server asked for auth plugin {plugin!r}; only mysql_native_password is supported")
    scramble = r.rest()
    scramble = scramble[:-1] if scramble.endswith(b"\x00") else scramble
    return native_response(password, scramble[:20]) if password else b""
