"""Exceptions of the MySQL wire-protocol codec.

Kept in their own module so that every codec module (and the server that will use them)
can catch one base class: a ``ProtocolError`` always means "the peer sent bytes that are
not the packet we expected", which a server answers by closing the connection (MySQL
itself answers a malformed packet with ER_MALFORMED_PACKET / ER_HANDSHAKE_ERROR and
hangs up), never by guessing.
"""

from __future__ import annotations


class ProtocolError(ValueError):
    """Malformed or truncated protocol data (the message says which field and where)."""


class PacketTooLarge(ProtocolError):
    """A logical packet is larger than the reader's configured maximum.

    Raised as soon as a packet header announces a length that would push the logical
    payload over the limit, before its bytes are buffered, so a peer cannot make the
    server hold an arbitrarily large payload. The matching server answer is
    ER_NET_PACKET_TOO_LARGE (1153, SQLSTATE 08S01) followed by closing the connection:
    the stream cannot be resynchronised after a skipped packet.
    """

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"packet of at least {size} bytes is larger than the limit of {limit} bytes")
        self.size = size
        self.limit = limit


class OutOfOrder(ProtocolError):
    """A packet's sequence id is not the one the conversation expects (MySQL answers ER_NET_PACKETS_OUT_OF_ORDER,
    1156 / 08S01, and hangs up). Checked on the header, before the payload is waited for: a
    stranger's bytes (an HTTP request, a TLS hello) fail at once instead of holding the
    connection while the server waits for a "packet" of millions of bytes."""

    def __init__(self, seq: int, expected: int) -> None:
        super().__init__(f"packet has sequence id {seq}, expected {expected}")
        self.seq = seq
        self.expected = expected
