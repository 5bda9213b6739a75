"""Which requests the gateway's lean lane serves itself: a strict, small HTTP/1.1 subset.

The lane (``lean``) answers only the requests the write path lives on — ``POST /query`` and
``POST /transaction`` over HTTP/1.1 keep-alive with a ``Content-Length`` body — and hands every
other connection, as it stands, to aiohttp. So this parser never has to be lenient: anything
outside the subset (another method or path, a query string, HTTP/1.0, chunked bodies,
``Expect``, ``Upgrade``, an ``Origin`` that CORS must answer, an obs-folded, non-ASCII or
duplicated length header, an oversized head or body) is :data:`NOT_OURS`, and aiohttp's full
parser answers it — including its JSON 400/413 for what is malformed. Pure: bytes in, a
verdict out; it keeps no state.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

MAX_HEAD: Final = 8190  # aiohttp's max_line_size / max_field_size: a longer head is never ours
PATHS: Final = (b"/query", b"/transaction")

_REQUEST_LINE = re.compile(rb"POST (/query|/transaction) HTTP/1\.1")
# RFC 9110 field-name token, then a value of visible ASCII, spaces and tabs (no obs-fold, no controls)
_FIELD = re.compile(rb"([!#$%&'*+\-.^_`|~0-9A-Za-z]+):[ \t]*([\x20-\x7e\t]*?)[ \t]*")
_HANDED_OVER: Final = frozenset({b"transfer-encoding", b"expect", b"upgrade", b"origin", b"te", b"trailer"})


@dataclass(frozen=True, slots=True)
class Head:
    """A request the lane serves: its path, where its body lies in the buffer, its
    ``Content-Type`` (as sent), and whether the client asked to close after the answer."""

    path: str
    body_start: int
    end: int
    content_type: str
    close: bool


class _Verdict:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


INCOMPLETE: Final = _Verdict("INCOMPLETE")  # not enough bytes yet to decide
NOT_OURS: Final = _Verdict("NOT_OURS")  # aiohttp takes the connection from here


def parse(buf: bytes | bytearray, max_body: int) -> Head | _Verdict:
    """The head at the start of ``buf``: a :class:`Head`, :data:`INCOMPLETE` or :data:`NOT_OURS`."""
    if not buf.startswith(b"POST /"[: len(buf)]):
        return NOT_OURS
    end = buf.find(b"\r\n\r\n", 0, MAX_HEAD + 4)
    if end < 0:
        return NOT_OURS if len(buf) >= MAX_HEAD + 4 else INCOMPLETE
    lines = bytes(buf[:end]).split(b"\r\n")
    m = _REQUEST_LINE.fullmatch(lines[0])
    if m is None:
        return NOT_OURS
    length = -1
    ctype = b""
    close = False
    for line in lines[1:]:
        f = _FIELD.fullmatch(line)
        if f is None:
            return NOT_OURS
        name, value = f.group(1).lower(), f.group(2)
        if name == b"content-length":
            if length >= 0 or not value.isdigit() or len(value) > 18:
                return NOT_OURS
            length = int(value)
        elif name in _HANDED_OVER:
            return NOT_OURS
        elif name == b"connection":
            tokens = {t.strip().lower() for t in value.split(b",")}
            if b"upgrade" in tokens:
                return NOT_OURS
            close = close or b"close" in tokens
        elif name == b"content-type":
            if ctype:
                return NOT_OURS
            ctype = value
    if length < 0 or length > max_body:
        return NOT_OURS
    start = end + 4
    return Head(m.group(1).decode(), start, start + length, ctype.decode(), close)


def media_type(content_type: str) -> str:
    """``application/json; charset=utf-8`` → ``application/json``, as aiohttp's ``content_type``
    reads it (``application/octet-stream`` when absent)."""
    media = content_type.split(";", 1)[0].strip().lower()
    return media or "application/octet-stream"
