"""Basic data types of the MySQL protocol: fixed and length-encoded integers and strings.

Every decoder takes ``(data, offset)`` and returns ``(value, new_offset)`` so packet
parsers stay simple loops over one immutable ``bytes``; every one raises ``ProtocolError``
naming what was truncated instead of an ``IndexError`` or a silently short value, because
a short read in this protocol means a framing bug or a hostile peer, never a default.

Length-encoded integers (MySQL "int<lenenc>", MariaDB "int<lenenc>"): a first byte below
0xFB is the value; 0xFC, 0xFD and 0xFE introduce 2, 3 and 8 little-endian bytes; 0xFB is
the NULL marker of text rows (decoded here as ``None``); 0xFF never starts one (it is the
ERR packet header).
"""

from __future__ import annotations

from coordinator.mysqlproto.errors import ProtocolError

NULL_MARKER = 0xFB
MAX_UINT64 = (1 << 64) - 1


# --- fixed-length integers -------------------------------------------------------------------

def fixed_int(value: int, size: int) -> bytes:
    """``int<size>`` little-endian, unsigned; ValueError when it does not fit."""
    if value < 0 or value >= 1 << (8 * size):
        raise ValueError(f"{value} does not fit in int<{size}>")
    return value.to_bytes(size, "little")


def read_fixed_int(data: bytes, offset: int, size: int, what: str = "int") -> tuple[int, int]:
    end = offset + size
    if end > len(data):
        raise ProtocolError(f"truncated {what}: need {size} bytes at offset {offset}, have {len(data) - offset}")
    return int.from_bytes(data[offset:end], "little"), end


# --- length-encoded integers -----------------------------------------------------------------

def lenenc_int(value: int) -> bytes:
    """Shortest length-encoded form of ``value`` (0 <= value < 2**64)."""
    if value < 0 or value > MAX_UINT64:
        raise ValueError(f"{value} is not a valid length-encoded integer")
    if value < 0xFB:
        return bytes((value,))
    if value < 1 << 16:
        return b"\xfc" + value.to_bytes(2, "little")
    if value < 1 << 24:
        return b"\xfd" + value.to_bytes(3, "little")
    return b"\xfe" + value.to_bytes(8, "little")


def read_lenenc_int(data: bytes, offset: int, what: str = "length-encoded integer") -> tuple[int | None, int]:
    """Decode a length-encoded integer; ``None`` for the 0xFB NULL marker."""
    if offset >= len(data):
        raise ProtocolError(f"truncated {what}: no byte at offset {offset}")
    first = data[offset]
    if first < 0xFB:
        return first, offset + 1
    if first == NULL_MARKER:
        return None, offset + 1
    if first == 0xFF:
        raise ProtocolError(f"invalid {what}: 0xFF at offset {offset}")
    size = {0xFC: 2, 0xFD: 3, 0xFE: 8}[first]
    return read_fixed_int(data, offset + 1, size, what)


def read_lenenc_uint(data: bytes, offset: int, what: str = "length-encoded integer") -> tuple[int, int]:
    """Like ``read_lenenc_int`` where NULL is not allowed (counts, lengths, row ids)."""
    value, offset2 = read_lenenc_int(data, offset, what)
    if value is None:
        raise ProtocolError(f"unexpected NULL marker for {what} at offset {offset}")
    return value, offset2


# --- strings -----------------------------------------------------------------------------------

def lenenc_bytes(value: bytes) -> bytes:
    """``string<lenenc>``: length-encoded length then the bytes."""
    return lenenc_int(len(value)) + value


def lenenc_str(value: str, encoding: str = "utf-8") -> bytes:
    return lenenc_bytes(value.encode(encoding))


def read_lenenc_bytes(data: bytes, offset: int, what: str = "length-encoded string") -> tuple[bytes | None, int]:
    """Decode a ``string<lenenc>``; ``None`` for the NULL marker (text-row NULL)."""
    length, pos = read_lenenc_int(data, offset, what)
    if length is None:
        return None, pos
    end = pos + length
    if end > len(data):
        raise ProtocolError(f"truncated {what}: {length} bytes announced at offset {offset}, have {len(data) - pos}")
    return data[pos:end], end


def read_lenenc_nonnull(data: bytes, offset: int, what: str = "length-encoded string") -> tuple[bytes, int]:
    value, pos = read_lenenc_bytes(data, offset, what)
    if value is None:
        raise ProtocolError(f"unexpected NULL marker for {what} at offset {offset}")
    return value, pos


def nul_bytes(value: bytes) -> bytes:
    """``string<NUL>``; a value containing NUL cannot be represented."""
    if b"\x00" in value:
        raise ValueError("a NUL-terminated string cannot contain NUL")
    return value + b"\x00"


def read_nul_bytes(data: bytes, offset: int, what: str = "NUL-terminated string") -> tuple[bytes, int]:
    end = data.find(b"\x00", offset)
    if end < 0:
        raise ProtocolError(f"unterminated {what} at offset {offset}")
    return data[offset:end], end + 1


def read_fixed_bytes(data: bytes, offset: int, size: int, what: str = "bytes") -> tuple[bytes, int]:
    end = offset + size
    if end > len(data):
        raise ProtocolError(f"truncated {what}: need {size} bytes at offset {offset}, have {len(data) - offset}")
    return data[offset:end], end


class Reader:
    """A cursor over one payload, for parsers that read field after field.

    Each method names the field it reads so a truncated packet's error says which field
    was missing (e.g. "truncated statement id").
    """

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes, pos: int = 0) -> None:
        self.data = data
        self.pos = pos

    @property
    def remaining(self) -> int:
        return len(self.data) - self.pos

    def uint(self, size: int, what: str = "int") -> int:
        value, self.pos = read_fixed_int(self.data, self.pos, size, what)
        return value

    def lenenc_int(self, what: str = "length-encoded integer") -> int:
        value, self.pos = read_lenenc_uint(self.data, self.pos, what)
        return value

    def lenenc_bytes(self, what: str = "length-encoded string") -> bytes:
        value, self.pos = read_lenenc_nonnull(self.data, self.pos, what)
        return value

    def nul_bytes(self, what: str = "NUL-terminated string") -> bytes:
        value, self.pos = read_nul_bytes(self.data, self.pos, what)
        return value

    def fixed(self, size: int, what: str = "bytes") -> bytes:
        value, self.pos = read_fixed_bytes(self.data, self.pos, size, what)
        return value

    def rest(self) -> bytes:
        value = self.data[self.pos:]
        self.pos = len(self.data)
        return value
