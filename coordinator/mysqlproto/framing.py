"""Packet framing: 3-byte little-endian length + 1-byte sequence id, then the payload.

A payload of 0xFFFFFF bytes or more is sent as several physical packets: every one but
the last carries exactly 0xFFFFFF bytes, and a payload whose length is a multiple of
0xFFFFFF ends with an empty packet (so the receiver knows it is over). Sequence ids
count up by one per physical packet, wrapping at 256, and restart at 0 with each new
command from the client.

``PacketReader`` is incremental because TCP delivers arbitrary chunks: a header may be
split across reads (a classic bug in Python MySQL servers), and one read may hold many
packets (pipelining clients such as mysql2 and Connector/C's batched COM_STMT_CLOSE).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import NamedTuple

from coordinator.mysqlproto.errors import OutOfOrder, PacketTooLarge, ProtocolError

MAX_CHUNK = 0xFFFFFF
HEADER_SIZE = 4
#: MySQL 8's default max_allowed_packet; MariaDB 10.11 defaults to 16 MiB.
DEFAULT_MAX_PAYLOAD = 64 * 1024 * 1024
_COMPACT_AT = 1 << 16


class Packet(NamedTuple):
    """One logical packet.

    ``sequence_id`` is that of the *last* physical packet it was made of (the only one for
    payloads under 16 MiB), so a reply always starts at ``sequence_id + 1``.
    """

    sequence_id: int
    payload: bytes


class PacketReader:
    """Reassembles logical packets from a byte stream fed in arbitrary pieces.

    ``feed(data)`` then iterate (or call ``next_packet()`` until it returns None).
    ``max_payload`` caps a logical payload; going over raises ``PacketTooLarge`` as soon
    as a header announces it, and the reader must then be discarded with the connection.
    ``expect``, when set, is the sequence id the next logical packet must start with (the
    server sets 1 for the login, 0 for commands); another raises ``OutOfOrder`` on its header.
    """

    def __init__(self, max_payload: int = DEFAULT_MAX_PAYLOAD) -> None:
        if max_payload < 0:
            raise ValueError("max_payload must be >= 0")
        self.max_payload = max_payload
        self._buf = bytearray()
        self._pos = 0
        self._parts: list[bytes] = []  # 0xFFFFFF-byte fragments of a payload still being read
        self._size = 0  # total bytes in _parts
        self._last_seq = 0
        self.expect: int | None = None

    def feed(self, data: bytes) -> None:
        self._buf += data

    @property
    def buffered(self) -> int:
        """Bytes received but not yet returned as part of a complete logical packet."""
        return len(self._buf) - self._pos + self._size

    @property
    def in_packet(self) -> bool:
        """True while a packet has been started but not completed (e.g. for idle timeouts)."""
        return self.buffered > 0

    def next_packet(self) -> Packet | None:
        """The next complete logical packet, or None until more bytes are fed."""
        while True:
            avail = len(self._buf) - self._pos
            if avail < HEADER_SIZE:
                self._compact()
                return None
            pos = self._pos
            length = int.from_bytes(self._buf[pos:pos + 3], "little")
            seq = self._buf[pos + 3]
            expected = (self._last_seq + 1) & 0xFF
            if self._parts and seq != expected:
                raise ProtocolError(f"packet continuation has sequence id {seq}, expected {expected}")
            if not self._parts and self.expect is not None and seq != self.expect:
                raise OutOfOrder(seq, self.expect)
            if self._size + length > self.max_payload:
                raise PacketTooLarge(self._size + length, self.max_payload)
            if avail < HEADER_SIZE + length:
                self._compact()
                return None
            start = pos + HEADER_SIZE
            with memoryview(self._buf) as view:  # one copy, and no export left to block resizing
                chunk = bytes(view[start:start + length])
            self._pos = start + length
            self._last_seq = seq
            if length == MAX_CHUNK:
                self._parts.append(chunk)
                self._size += length
                continue
            if self._parts:
                self._parts.append(chunk)
                chunk = b"".join(self._parts)
                self._parts = []
                self._size = 0
            return Packet(seq, chunk)

    def __iter__(self) -> Iterator[Packet]:
        """Yields every complete packet buffered now; iterate again after the next feed."""
        while (packet := self.next_packet()) is not None:
            yield packet

    def _compact(self) -> None:
        if self._pos == len(self._buf):
            self._buf.clear()
            self._pos = 0
        elif self._pos >= _COMPACT_AT and self._pos * 2 >= len(self._buf):
            del self._buf[:self._pos]
            self._pos = 0


def frame(sequence_id: int, payload: bytes) -> tuple[bytes, int]:
    """Frame one logical payload; returns ``(wire_bytes, next_sequence_id)``.

    Payloads of 0xFFFFFF bytes or more are split; one whose length is a multiple of
    0xFFFFFF (including 0xFFFFFF itself) is followed by an empty packet.
    """
    if not 0 <= sequence_id <= 0xFF:
        raise ValueError(f"sequence id {sequence_id} out of range")
    view = memoryview(payload)
    out = bytearray()
    pos = 0
    while True:
        chunk = view[pos:pos + MAX_CHUNK]
        out += len(chunk).to_bytes(3, "little")
        out.append(sequence_id)
        out += chunk
        sequence_id = (sequence_id + 1) & 0xFF
        pos += len(chunk)
        if len(chunk) < MAX_CHUNK:
            return bytes(out), sequence_id


class PacketWriter:
    """Tracks the sequence id across the packets of one response.

    Typical use: on a command packet with sequence id ``s`` create ``PacketWriter(s + 1)``
    (or ``reset``) and frame every packet of the answer through it.
    """

    def __init__(self, sequence_id: int = 0) -> None:
        self.sequence_id = sequence_id & 0xFF

    def reset(self, sequence_id: int = 0) -> None:
        self.sequence_id = sequence_id & 0xFF

    def frame(self, payload: bytes) -> bytes:
        data, self.sequence_id = frame(self.sequence_id, payload)
        return data

    def frame_all(self, payloads: Iterable[bytes]) -> bytes:
        return b"".join(self.frame(p) for p in payloads)
