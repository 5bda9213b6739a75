"""Binary-protocol value encoding (result rows) and decoding (COM_STMT_EXECUTE parameters).

Per MySQL's page_protocol_binary_resultset (ProtocolBinary::*) and MariaDB's "binary
protocol" pages, checked against bytes from MariaDB 10.11 / Connector/C 3.3 / asyncmy:

* TINY 1 byte, SHORT and YEAR 2, LONG and INT24 4, LONGLONG 8, little-endian; signedness
  from UNSIGNED_FLAG (columns) or the 0x80 parameter flag;
* FLOAT 4 / DOUBLE 8 bytes IEEE 754 little-endian;
* DATE/DATETIME/TIMESTAMP: a length byte 0, 4 (y m d), 7 (+ h m s) or 11 (+ microseconds);
  TIME: 0, 8 (sign, days int<4>, h m s) or 12 (+ microseconds). Encoders use the shortest
  form, as the server does; decoders accept any length the way MySQL's
  ``set_param_datetime`` does (fields present from 4 / 7 / 11 bytes on);
* everything else (DECIMAL text, strings, blobs, JSON, BIT, GEOMETRY) is a string<lenenc>.

Decoded parameter values: int, float, ``Decimal`` for DECIMAL/NEWDECIMAL (exact; the
client sent text), ``str`` for character types in the connection's encoding (``bytes``
when the encoding is None, i.e. binary, or when the bytes do not decode), ``bytes`` for
blob/BIT/GEOMETRY types, ``date``/``datetime`` (or MySQL's text for dates Python cannot
hold, such as ``0000-00-00``), ``timedelta`` for TIME, ``None`` for NULL.
"""

from __future__ import annotations

import datetime
import struct
from decimal import Decimal, InvalidOperation
from typing import cast

from coordinator.mysqlproto import constants as c
from coordinator.mysqlproto.errors import ProtocolError
from coordinator.mysqlproto.values import DateTimeParts, TimeParts, Value, datetime_parts, text_value, time_parts
from coordinator.mysqlproto.wire import lenenc_bytes, read_fixed_bytes, read_fixed_int, read_lenenc_nonnull

_INT_SIZE = {c.MYSQL_TYPE_TINY: 1, c.MYSQL_TYPE_SHORT: 2, c.MYSQL_TYPE_YEAR: 2, c.MYSQL_TYPE_LONG: 4,
             c.MYSQL_TYPE_INT24: 4, c.MYSQL_TYPE_LONGLONG: 8}
_DATE_ONLY = (c.MYSQL_TYPE_DATE, c.MYSQL_TYPE_NEWDATE)


# --- decoding (parameters) -------------------------------------------------------------------

def decode_binary_value(
    data: bytes, pos: int, type_: int, unsigned: bool, encoding: str | None = "utf-8"
) -> tuple[Value, int]:
    """Decode one non-NULL binary value of ``type_`` at ``pos``; returns (value, new pos)."""
    if type_ in _INT_SIZE:
        size = _INT_SIZE[type_]
        raw, end = read_fixed_bytes(data, pos, size, "integer value")
        return int.from_bytes(raw, "little", signed=not unsigned), end
    if type_ == c.MYSQL_TYPE_DOUBLE:
        raw, end = read_fixed_bytes(data, pos, 8, "DOUBLE value")
        return struct.unpack("<d", raw)[0], end
    if type_ == c.MYSQL_TYPE_FLOAT:
        raw, end = read_fixed_bytes(data, pos, 4, "FLOAT value")
        return struct.unpack("<f", raw)[0], end
    if type_ == c.MYSQL_TYPE_NULL:
        return None, pos
    if type_ in c.DATETIME_TYPES:
        parts, end = _read_datetime(data, pos)
        return parts.to_python(date_only=type_ in _DATE_ONLY), end
    if type_ in c.TIME_TYPES:
        tparts, end = _read_time(data, pos)
        return tparts.to_timedelta(), end
    if type_ in c.DECIMAL_TYPES:
        raw, end = read_lenenc_nonnull(data, pos, "DECIMAL value")
        try:
            number = Decimal(raw.decode("ascii"))
        except (InvalidOperation, UnicodeDecodeError):
            number = Decimal("NaN")
        if not number.is_finite():
            raise ProtocolError(f"bad DECIMAL value {raw!r}")
        return number, end
    if type_ in c.TEXT_TYPES:
        raw, end = read_lenenc_nonnull(data, pos, "string value")
        if encoding is None:
            return raw, end
        try:
            return raw.decode(encoding), end
        except UnicodeDecodeError:
            return raw, end
    if type_ in c.BLOB_TYPES:
        return read_lenenc_nonnull(data, pos, "blob value")
    raise ProtocolError(f"unknown parameter type {type_}")


def _read_datetime(data: bytes, pos: int) -> tuple[DateTimeParts, int]:
    length, pos = read_fixed_int(data, pos, 1, "DATETIME length")
    raw, end = read_fixed_bytes(data, pos, length, "DATETIME value")
    if length < 4:
        return DateTimeParts(), end
    year = int.from_bytes(raw[0:2], "little")
    hms = (raw[4], raw[5], raw[6]) if length >= 7 else (0, 0, 0)
    micro = int.from_bytes(raw[7:11], "little") if length >= 11 else 0
    return DateTimeParts(year, raw[2], raw[3], *hms, micro), end


def _read_time(data: bytes, pos: int) -> tuple[TimeParts, int]:
    length, pos = read_fixed_int(data, pos, 1, "TIME length")
    raw, end = read_fixed_bytes(data, pos, length, "TIME value")
    if length < 8:
        return TimeParts(), end
    micro = int.from_bytes(raw[8:12], "little") if length >= 12 else 0
    return TimeParts(raw[0] == 1, int.from_bytes(raw[1:5], "little"), raw[5], raw[6], raw[7], micro), end


# --- encoding (result rows) ----------------------------------------------------------------

def _to_int(value: object) -> int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, Decimal) and value == value.to_integral_value():
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, (Decimal, float)):
        raise ValueError(f"{value!r} is not an integer")
    if isinstance(value, (str, bytes)):
        return int(value)
    raise TypeError(f"cannot send {type(value).__name__} as an integer")


def _to_float(value: object) -> float:
    if isinstance(value, (int, float, Decimal)):
        return float(value)
    if isinstance(value, (str, bytes)):
        return float(value)
    raise TypeError(f"cannot send {type(value).__name__} as a float")


def encode_datetime(value: object) -> bytes:
    """A DATE/DATETIME/TIMESTAMP in its shortest binary form (length byte included)."""
    if not isinstance(value, (datetime.date, DateTimeParts, str, bytes)):
        raise TypeError(f"cannot send {type(value).__name__} as a DATETIME")
    p = datetime_parts(value)
    ymd = p.year.to_bytes(2, "little") + bytes((p.month, p.day))
    if p.microsecond:
        return b"\x0b" + ymd + bytes((p.hour, p.minute, p.second)) + p.microsecond.to_bytes(4, "little")
    if p.hour or p.minute or p.second:
        return b"\x07" + ymd + bytes((p.hour, p.minute, p.second))
    if p.year or p.month or p.day:
        return b"\x04" + ymd
    return b"\x00"


def encode_time(value: object) -> bytes:
    """A TIME in its shortest binary form (length byte included)."""
    if not isinstance(value, (datetime.timedelta, datetime.time, TimeParts, str, bytes)):
        raise TypeError(f"cannot send {type(value).__name__} as a TIME")
    p = time_parts(value)
    body = bytes((1 if p.negative else 0,)) + p.days.to_bytes(4, "little") + bytes((p.hours, p.minutes, p.seconds))
    if p.microseconds:
        return b"\x0c" + body + p.microseconds.to_bytes(4, "little")
    if p.days or p.hours or p.minutes or p.seconds:
        return b"\x08" + body
    return b"\x00"


def _to_bytes(value: object, encoding: str) -> bytes:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    text = text_value(cast(Value, value))
    return text if isinstance(text, bytes) else (text or "").encode(encoding)


def encode_binary_value(type_: int, unsigned: bool, value: object, encoding: str = "utf-8", length: int = 0) -> bytes:
    """Encode one non-NULL value for a column of ``type_`` (``length``: BIT columns' bits).

    Accepts the Python type that matches the column, and also the text form a backend
    sent over the text protocol (str/bytes), so a text result can be re-sent as binary.
    """
    if type_ in _INT_SIZE:
        size = _INT_SIZE[type_]
        number = _to_int(value)
        try:
            return number.to_bytes(size, "little", signed=not unsigned)
        except OverflowError:
            kind = "unsigned" if unsigned else "signed"
            raise ValueError(f"{number} does not fit a {kind} {size}-byte integer column") from None
    if type_ == c.MYSQL_TYPE_DOUBLE:
        return struct.pack("<d", _to_float(value))
    if type_ == c.MYSQL_TYPE_FLOAT:
        return struct.pack("<f", _to_float(value))
    if type_ in c.DATETIME_TYPES:
        return encode_datetime(value)
    if type_ in c.TIME_TYPES:
        return encode_time(value)
    if type_ == c.MYSQL_TYPE_BIT and isinstance(value, int):
        return lenenc_bytes(value.to_bytes(max(1, (length + 7) // 8), "big"))
    if type_ == c.MYSQL_TYPE_NULL:
        raise ValueError("a NULL-type column can only hold NULL")
    return lenenc_bytes(_to_bytes(value, encoding))
