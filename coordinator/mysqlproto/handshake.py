"""Connection phase: HandshakeV10, HandshakeResponse41, SSLRequest, AuthSwitch, native auth.

The server speaks first with HandshakeV10 (sequence id 0); the client answers with a
HandshakeResponse41 (or a 32-byte SSLRequest when it wants TLS); the server may switch the
client to another auth plugin with an AuthSwitchRequest; the exchange ends with an OK or
ERR packet. Layouts follow MySQL's page_protocol_connection_phase_packets_* and MariaDB's
"1-connecting" protocol pages, and were checked against bytes captured from MariaDB 10.11
with the Debian ``mariadb`` CLI (Connector/C 3.3), asyncmy and libmariadb.

Only ``mysql_native_password`` is implemented. MySQL 8 clients that open with
``caching_sha2_password`` are switched to it, as MariaDB itself does.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field

from coordinator.mysqlproto import constants as c
from coordinator.mysqlproto.errors import ProtocolError
from coordinator.mysqlproto.wire import Reader, fixed_int, nul_bytes, read_lenenc_nonnull

PROTOCOL_VERSION = 10
SCRAMBLE_LENGTH = 20
#: "5.5.5-" makes MySQL-era clients (and replication code) accept a 10.x version; MariaDB
#: servers send it and MariaDB clients strip it.
DEFAULT_SERVER_VERSION = "5.5.5-10.11.19-MariaDB-coordinator"
SSL_REQUEST_LENGTH = 32


def make_scramble(random_bytes: bytes) -> bytes:
    """Turn 20 random bytes from the caller into a scramble safe for every client.

    Like MySQL's ``generate_user_salt``: 7-bit values with no NUL (part 2 of the scramble
    is NUL-terminated in the handshake and some clients stop at the first NUL) and no
    ``$``. The randomness itself is the caller's (``secrets.token_bytes(20)``).
    """
    if len(random_bytes) != SCRAMBLE_LENGTH:
        raise ValueError(f"need {SCRAMBLE_LENGTH} random bytes, got {len(random_bytes)}")
    out = bytearray(b & 0x7F for b in random_bytes)
    for i, b in enumerate(out):
        if b in (0x00, 0x24):
            out[i] = b + 1
    return bytes(out)


def build_handshake(
    connection_id: int,
    scramble: bytes,
    *,
    server_version: str = DEFAULT_SERVER_VERSION,
    capabilities: int = c.DEFAULT_SERVER_CAPABILITIES,
    charset: int = c.CHARSET_UTF8MB4_GENERAL_CI,
    status_flags: int = c.SERVER_STATUS_AUTOCOMMIT,
    auth_plugin: str = c.NATIVE_PASSWORD_PLUGIN,
) -> bytes:
    """HandshakeV10 payload.

    ``status_flags`` matters: PyMySQL/asyncmy send ``SET AUTOCOMMIT = 0`` only when it
    says autocommit is on. The 10 reserved bytes stay zero, which tells MariaDB clients
    there are no MariaDB extended capabilities.
    """
    if len(scramble) != SCRAMBLE_LENGTH or 0 in scramble:
        raise ValueError("scramble must be 20 bytes without NUL (see make_scramble)")
    out = bytearray((PROTOCOL_VERSION,))
    out += nul_bytes(server_version.encode("ascii"))
    out += fixed_int(connection_id & 0xFFFFFFFF, 4)
    out += scramble[:8] + b"\x00"
    out += fixed_int(capabilities & 0xFFFF, 2)
    out += fixed_int(charset & 0xFF, 1)
    out += fixed_int(status_flags, 2)
    out += fixed_int((capabilities >> 16) & 0xFFFF, 2)
    out.append(SCRAMBLE_LENGTH + 1 if capabilities & c.CLIENT_PLUGIN_AUTH else 0)
    out += bytes(10)
    if capabilities & c.CLIENT_SECURE_CONNECTION:
        out += scramble[8:] + b"\x00"  # MAX(13, len - 8) bytes: 12 + the NUL
    if capabilities & c.CLIENT_PLUGIN_AUTH:
        out += nul_bytes(auth_plugin.encode("ascii"))
    return bytes(out)


@dataclass(frozen=True)
class HandshakeResponse:
    """A parsed HandshakeResponse41.

    ``capabilities`` is what the client sent; ``effective_capabilities`` is that ANDed with
    what the server announced, which is what the rest of the session must go by.
    ``user`` and ``database`` are decoded with the client's charset (surrogateescape, so
    undecodable bytes survive a round trip instead of being replaced).
    """

    capabilities: int
    effective_capabilities: int
    max_packet_size: int
    charset: int
    user: str
    auth_response: bytes
    database: str | None
    auth_plugin: str | None
    attributes: dict[str, str] = field(default_factory=dict)
    #: MariaDB clients put their extended capabilities in the filler; informational only.
    mariadb_capabilities: int = 0


def is_ssl_request(payload: bytes) -> bool:
    """True for an SSLRequest: the first 32 bytes of a HandshakeResponse41 with CLIENT_SSL.

    The server cannot answer it in-protocol (the client starts a TLS handshake right after
    it); refuse by closing the connection, optionally after an ERR packet. Not announcing
    CLIENT_SSL makes well-behaved clients fail on their side before sending one.
    """
    if len(payload) != SSL_REQUEST_LENGTH:
        return False
    return bool(int.from_bytes(payload[:4], "little") & c.CLIENT_SSL)


def _decode(raw: bytes, charset: int) -> str:
    return raw.decode(c.python_encoding(charset) or "utf-8", "surrogateescape")


def parse_handshake_response(
    payload: bytes, server_capabilities: int = c.DEFAULT_SERVER_CAPABILITIES
) -> HandshakeResponse:
    """Parse HandshakeResponse41.

    Optional trailing fields (database, plugin name, attributes) are read only when both
    sides have the capability *and* bytes remain, like MySQL's own parser: drivers decide
    what to send from the server's flags, and some send their flags loosely.
    """
    r = Reader(payload)
    caps = r.uint(4, "client capabilities")
    if not caps & c.CLIENT_PROTOCOL_41:
        raise ProtocolError("pre-4.1 HandshakeResponse320 is not supported")
    eff = caps & server_capabilities
    max_packet = r.uint(4, "max packet size")
    charset = r.uint(1, "charset")
    filler = r.fixed(23, "filler")
    mariadb_caps = 0 if caps & c.CLIENT_LONG_PASSWORD else int.from_bytes(filler[19:], "little")
    if r.remaining == 0 and caps & c.CLIENT_SSL:
        raise ProtocolError("SSLRequest received, TLS is not supported")
    user = _decode(r.nul_bytes("user name"), charset)
    if eff & c.CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA:
        auth = r.lenenc_bytes("auth response")
    elif eff & c.CLIENT_SECURE_CONNECTION:
        auth = r.fixed(r.uint(1, "auth response length"), "auth response")
    else:
        auth = r.nul_bytes("auth response")
    database = None
    if eff & c.CLIENT_CONNECT_WITH_DB and r.remaining:
        database = _decode(r.nul_bytes("database"), charset)
    plugin = None
    if eff & c.CLIENT_PLUGIN_AUTH and r.remaining:
        plugin = r.nul_bytes("auth plugin name").decode("ascii", "replace")
    attributes: dict[str, str] = {}
    if eff & c.CLIENT_CONNECT_ATTRS and r.remaining:
        attributes = parse_connect_attributes(r.lenenc_bytes("connect attributes"))
    return HandshakeResponse(caps, eff, max_packet, charset, user, auth, database, plugin, attributes, mariadb_caps)


def parse_connect_attributes(data: bytes) -> dict[str, str]:
    """Key/value pairs of ``string<lenenc>``; later duplicates win."""
    attrs: dict[str, str] = {}
    pos = 0
    while pos < len(data):
        key, pos = read_lenenc_nonnull(data, pos, "attribute name")
        value, pos = read_lenenc_nonnull(data, pos, "attribute value")
        attrs[key.decode("utf-8", "replace")] = value.decode("utf-8", "replace")
    return attrs


def auth_switch_request(scramble: bytes, plugin: str = c.NATIVE_PASSWORD_PLUGIN) -> bytes:
    """AuthSwitchRequest: 0xFE, plugin name NUL, plugin data.

    For mysql_native_password the data is the scramble plus a NUL, byte for byte what
    MariaDB sends (clients use the first 20 bytes). Send it when the client's plugin is
    not ours, e.g. MySQL 8 clients opening with caching_sha2_password.
    """
    return b"\xfe" + nul_bytes(plugin.encode("ascii")) + scramble + b"\x00"


def parse_auth_switch_response(payload: bytes) -> bytes:
    """The client's answer to an AuthSwitchRequest is the raw auth data, nothing else."""
    return payload


def needs_auth_switch(response: HandshakeResponse, plugin: str = c.NATIVE_PASSWORD_PLUGIN) -> bool:
    """True when the client authenticated for another plugin than ``plugin``.

    A client without CLIENT_PLUGIN_AUTH (or that named no plugin) used native auth.
    """
    return bool(response.auth_plugin) and response.auth_plugin != plugin


# --- mysql_native_password ----------------------------------------------------------------

def _sha1(data: bytes) -> bytes:
    return hashlib.sha1(data).digest()


def native_hash(password: str | bytes) -> bytes:
    """SHA1(SHA1(password)): what the server stores (``mysql.user.authentication_string``).

    An empty password has no hash (b"") and is checked by an empty response instead.
    """
    raw = password.encode("utf-8") if isinstance(password, str) else password
    return _sha1(_sha1(raw)) if raw else b""


def hash_from_mysql_string(value: str) -> bytes:
    """The stored hash from MySQL's text form ``*6BB4…`` (as PASSWORD() prints it); "" -> b""."""
    if value == "":
        return b""
    if len(value) != 41 or value[0] != "*":
        raise ValueError("expected '*' followed by 40 hex digits")
    return bytes.fromhex(value[1:])


def mysql_string_from_hash(stored: bytes) -> str:
    return "*" + stored.hex().upper() if stored else ""


def native_response(password: str | bytes, scramble: bytes) -> bytes:
    """Client side: SHA1(pw) XOR SHA1(scramble + SHA1(SHA1(pw))); b"" for no password.

    The server never needs this; it is here for tests and tools that act as a client.
    """
    raw = password.encode("utf-8") if isinstance(password, str) else password
    if not raw:
        return b""
    stage1 = _sha1(raw)
    mask = _sha1(scramble[:SCRAMBLE_LENGTH] + _sha1(stage1))
    return bytes(a ^ b for a, b in zip(stage1, mask, strict=True))


def verify_native(scramble: bytes, client_response: bytes, stored: bytes) -> bool:
    """Check a mysql_native_password response against the stored SHA1(SHA1(pw)).

    XORing the response with SHA1(scramble + stored) gives back SHA1(pw) if the client
    knew the password; its SHA1 must then equal ``stored``. With no password stored, only
    an empty response passes (and an empty response never passes a real password).
    """
    if not stored:
        return client_response == b""
    if len(client_response) != SCRAMBLE_LENGTH or len(stored) != SCRAMBLE_LENGTH:
        return False
    mask = _sha1(scramble[:SCRAMBLE_LENGTH] + stored)
    candidate = bytes(a ^ b for a, b in zip(client_response, mask, strict=True))
    return hmac.compare_digest(_sha1(candidate), stored)
