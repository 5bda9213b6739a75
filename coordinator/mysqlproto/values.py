"""Python values <-> MySQL text forms (text-protocol cells, temporal literals).

A driver (asyncmy, PyMySQL) hands the front end Python objects; a text result row needs
the bytes MariaDB itself would have sent. The formats below were checked against
MariaDB 10.11's output: DOUBLE prints the shortest round-trip digits and switches to
``1e15`` / ``1e-16`` style outside 1e-15 <= |x| < 1e15; DATETIME prints microseconds only
when the column has them (here: when they are non-zero); TIME may exceed 24 hours and be
negative (``-838:59:59``).

Temporal values MySQL allows but Python cannot hold (``0000-00-00``, ``2024-02-00``) are
carried as ``DateTimeParts`` / their text, never silently turned into NULL.
"""

from __future__ import annotations

import datetime
import re
from decimal import Decimal
from typing import NamedTuple, TypeAlias

#: What the codec accepts / produces as a column or parameter value.
Value: TypeAlias = (
    None | bool | int | float | Decimal | str | bytes | datetime.datetime | datetime.date | datetime.time
    | datetime.timedelta
)


class DateTimeParts(NamedTuple):
    """A DATE/DATETIME/TIMESTAMP as its fields, including values Python rejects (zero dates)."""

    year: int = 0
    month: int = 0
    day: int = 0
    hour: int = 0
    minute: int = 0
    second: int = 0
    microsecond: int = 0

    def to_python(self, date_only: bool) -> datetime.date | datetime.datetime | str:
        """A ``date``/``datetime`` when Python can represent it, else MySQL's text form."""
        try:
            if date_only and not (self.hour or self.minute or self.second or self.microsecond):
                return datetime.date(self.year, self.month, self.day)
            return datetime.datetime(self.year, self.month, self.day, self.hour, self.minute, self.second,
                                     self.microsecond)
        except ValueError:
            return self.text(date_only)

    def text(self, date_only: bool = False) -> str:
        day = f"{self.year:04d}-{self.month:02d}-{self.day:02d}"
        if date_only and not (self.hour or self.minute or self.second or self.microsecond):
            return day
        frac = f".{self.microsecond:06d}" if self.microsecond else ""
        return f"{day} {self.hour:02d}:{self.minute:02d}:{self.second:02d}{frac}"


class TimeParts(NamedTuple):
    """A TIME as the binary protocol carries it: sign, days, h:m:s, microseconds."""

    negative: bool = False
    days: int = 0
    hours: int = 0
    minutes: int = 0
    seconds: int = 0
    microseconds: int = 0

    def to_timedelta(self) -> datetime.timedelta:
        td = datetime.timedelta(days=self.days, hours=self.hours, minutes=self.minutes, seconds=self.seconds,
                                microseconds=self.microseconds)
        return -td if self.negative else td


def datetime_parts(value: datetime.date | DateTimeParts | str | bytes) -> DateTimeParts:
    """Fields of a date/datetime, or of its MySQL text (``YYYY-MM-DD[ HH:MM:SS[.ffffff]]``)."""
    if isinstance(value, DateTimeParts):
        return value
    if isinstance(value, datetime.datetime):
        return DateTimeParts(value.year, value.month, value.day, value.hour, value.minute, value.second,
                             value.microsecond)
    if isinstance(value, datetime.date):
        return DateTimeParts(value.year, value.month, value.day)
    text = value.decode("ascii") if isinstance(value, bytes) else value
    m = _DATETIME_RE.match(text.strip())
    if not m:
        raise ValueError(f"not a DATE/DATETIME value: {text!r}")
    y, mo, d, h, mi, s, frac = m.groups()
    return DateTimeParts(int(y), int(mo), int(d), int(h or 0), int(mi or 0), int(s or 0), _micro(frac))


def time_parts(value: datetime.timedelta | datetime.time | TimeParts | str | bytes) -> TimeParts:
    """Fields of a TIME from a timedelta (any sign/size), a time of day, or MySQL text."""
    if isinstance(value, TimeParts):
        return value
    if isinstance(value, datetime.timedelta):
        total = (value.days * 86400 + value.seconds) * 1_000_000 + value.microseconds
        negative = total < 0
        total = abs(total)
        whole, micro = divmod(total, 1_000_000)
        n_days, whole = divmod(whole, 86400)
        return TimeParts(negative, n_days, whole // 3600, whole // 60 % 60, whole % 60, micro)
    if isinstance(value, datetime.time):
        return TimeParts(False, 0, value.hour, value.minute, value.second, value.microsecond)
    text = value.decode("ascii") if isinstance(value, bytes) else value
    m = _TIME_RE.match(text.strip())
    if not m:
        raise ValueError(f"not a TIME value: {text!r}")
    sign, days, hrs, mins, secs, frac = m.groups()
    days_i, hours = divmod(int(days or 0) * 24 + int(hrs), 24)
    return TimeParts(sign == "-", days_i, hours, int(mins), int(secs or 0), _micro(frac))


_DATETIME_RE = re.compile(r"^(\d{1,4})-(\d{1,2})-(\d{1,2})(?:[ T](\d{1,2}):(\d{1,2}):(\d{1,2})(?:\.(\d{0,6}))?)?$")
_TIME_RE = re.compile(r"^(-)?(?:(\d+) )?(\d+):(\d{1,2})(?::(\d{1,2})(?:\.(\d{0,6}))?)?$")


def _micro(frac: str | None) -> int:
    return int((frac or "").ljust(6, "0")) if frac else 0


def format_double(value: float) -> str:
    """DOUBLE as MariaDB prints it: shortest round-trip digits, exponent outside [-15, 15)."""
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"{value} has no MySQL representation")
    if value == 0:
        return "0"
    d = Decimal(repr(value)).normalize()
    sign, digits, exp = d.as_tuple()
    assert isinstance(exp, int)
    sci = len(digits) + exp - 1
    prefix = "-" if sign else ""
    if -15 <= sci < 15:
        return prefix + format(abs(d), "f")
    mantissa = str(digits[0]) + ("." + "".join(map(str, digits[1:])) if len(digits) > 1 else "")
    return f"{prefix}{mantissa}e{sci}"


def format_timedelta(value: datetime.timedelta) -> str:
    p = time_parts(value)
    hours = p.days * 24 + p.hours
    frac = f".{p.microseconds:06d}" if p.microseconds else ""
    return f"{'-' if p.negative else ''}{hours:02d}:{p.minutes:02d}:{p.seconds:02d}{frac}"


def text_value(value: Value) -> str | bytes | None:
    """The MySQL text form of a Python value (bytes stay bytes, None stays None)."""
    if value is None or isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return format_double(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"{value} has no MySQL representation")
        return format(value, "f")
    if isinstance(value, datetime.datetime):
        return datetime_parts(value).text()
    if isinstance(value, datetime.date):
        return datetime_parts(value).text(date_only=True)
    if isinstance(value, datetime.time):
        frac = f".{value.microsecond:06d}" if value.microsecond else ""
        return f"{value.hour:02d}:{value.minute:02d}:{value.second:02d}{frac}"
    if isinstance(value, datetime.timedelta):
        return format_timedelta(value)
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    raise TypeError(f"no MySQL text form for {type(value).__name__}")


def text_cell(value: Value, encoding: str = "utf-8") -> bytes | None:
    """A text-protocol cell: the value's text in the connection encoding, None for NULL."""
    text = text_value(value)
    if text is None or isinstance(text, bytes):
        return text
    return text.encode(encoding)
