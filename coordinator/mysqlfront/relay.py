"""Passing a server's response on to a client: as it is (text protocol), or as binary rows.

Relayed text results are the server's packets unchanged except the status flags of the
packets that end a result (EOF / OK), which become the session's (autocommit, open
transaction, more results of a multi-statement query). A prepared statement's result is
fetched as text and each row re-encoded as a binary row from the server's own column
definitions (``binvalues`` accepts the text form of every type).
"""

from __future__ import annotations

from collections.abc import Callable

from ..mysqlproto.binary import binary_row
from ..mysqlproto.columns import ColumnDefinition, parse_column_definition
from ..mysqlproto.wire import read_lenenc_bytes, read_lenenc_uint


def with_status(payload: bytes, status: int) -> bytes:
    """An EOF or OK packet with its status flags replaced."""
    head = payload[0]
    flags = status.to_bytes(2, "little")
    if head == 0xFE and len(payload) < 9:  # EOF: 0xFE, warnings int<2>, status int<2>
        return payload[:3] + flags + payload[5:]
    if head in (0x00, 0xFE):  # OK: header, affected rows, last insert id, status int<2>, …
        _, p = read_lenenc_uint(payload, 1)
        _, p = read_lenenc_uint(payload, p)
        return payload[:p] + flags + payload[p + 2:]
    return payload


def warnings_of(payload: bytes) -> int:
    """The warning count of an EOF or OK packet (0 for anything else)."""
    head = payload[0]
    if head == 0xFE and len(payload) < 9:
        return int.from_bytes(payload[1:3], "little")
    if head in (0x00, 0xFE):
        _, p = read_lenenc_uint(payload, 1)
        _, p = read_lenenc_uint(payload, p)
        return int.from_bytes(payload[p + 2:p + 4], "little")
    return 0


def text_cells(payload: bytes, ncols: int) -> list[bytes | None]:
    cells: list[bytes | None] = []
    p = 0
    for _ in range(ncols):
        v, p = read_lenenc_bytes(payload, p)
        cells.append(v)
    return cells


class TextSink:
    """Forwards a text response, rewriting the status of the packets that end it."""

    def __init__(self, send: Callable[[bytes], None], status: int, deprecate_eof: bool) -> None:
        self.send = send
        self.status = status
        self.deprecate_eof = deprecate_eof
        self.warnings = 0
        self._ncols = -1
        self._seen = 0

    def __call__(self, payload: bytes, last: bool) -> None:
        if last:
            self.warnings = warnings_of(payload)
            self.send(with_status(payload, self.status) if payload[0] != 0xFF else payload)
            return
        if self._ncols < 0:
            self._ncols, _ = read_lenenc_uint(payload, 0)
        elif self._seen == self._ncols and not self.deprecate_eof and payload[0] == 0xFE and len(payload) < 9:
            payload = with_status(payload, self.status)  # the EOF after the column definitions
        self._seen += 1
        self.send(payload)


class BinarySink:
    """Turns a text result set into the binary one a COM_STMT_EXECUTE expects."""

    def __init__(self, send: Callable[[bytes], None], status: int, deprecate_eof: bool) -> None:
        self.send = send
        self.status = status
        self.deprecate_eof = deprecate_eof
        self.warnings = 0
        self.columns: list[ColumnDefinition] = []
        self._ncols = -1
        self._defs_done = False

    def __call__(self, payload: bytes, last: bool) -> None:
        if last:
            self.warnings = warnings_of(payload)
            self.send(with_status(payload, self.status) if payload[0] != 0xFF else payload)
            return
        if self._ncols < 0:
            self._ncols, _ = read_lenenc_uint(payload, 0)
            self.send(payload)
            return
        if not self._defs_done:
            if len(self.columns) < self._ncols:
                self.columns.append(parse_column_definition(payload))
                self.send(payload)
                if len(self.columns) == self._ncols and self.deprecate_eof:
                    self._defs_done = True
                return
            self._defs_done = True  # the EOF after the definitions
            self.send(with_status(payload, self.status))
            return
        self.send(binary_row(self.columns, text_cells(payload, self._ncols)))

