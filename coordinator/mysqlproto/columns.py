"""Column Definition 41 packets, and sensible definitions for computed columns.

A column definition is what lets a client decode a cell: its ``type`` picks the binary
encoding, ``flags & UNSIGNED_FLAG`` the signedness, ``charset`` 63 (binary) tells str from
bytes (PyMySQL/asyncmy return bytes for binary-charset strings), and ``decimals`` makes
Connector/C print binary FLOAT/DOUBLE with fixed decimals unless it is NOT_FIXED_DEC.
The defaults in ``column()`` copy what MariaDB 10.11 sends for a computed expression of
that type (captured: ``SELECT 1`` is LONG, length 1, flags NOT_NULL|BINARY, charset 63).

Layout (MySQL page_protocol_com_query_response_text_resultset_column_definition, MariaDB
"result set" page): lenenc catalog "def", schema, table, org_table, name, org_name,
lenenc 0x0C, charset int<2>, length int<4>, type int<1>, flags int<2>, decimals int<1>,
two filler bytes; COM_FIELD_LIST answers add a lenenc default value (0xFB for NULL).
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass, replace
from decimal import Decimal

from coordinator.mysqlproto import constants as c
from coordinator.mysqlproto.values import Value
from coordinator.mysqlproto.wire import Reader, fixed_int, lenenc_bytes, read_lenenc_bytes


@dataclass(frozen=True)
class ColumnDefinition:
    name: str
    type: int
    charset: int = c.CHARSET_BINARY
    length: int = 0
    flags: int = 0
    decimals: int = 0
    schema: str = ""
    table: str = ""
    org_table: str = ""
    org_name: str = ""
    catalog: str = "def"

    @property
    def unsigned(self) -> bool:
        return bool(self.flags & c.UNSIGNED_FLAG)

    def encode(self, encoding: str = "utf-8") -> bytes:
        """The Column Definition 41 payload (names encoded in the connection's encoding)."""
        out = bytearray()
        for text in (self.catalog, self.schema, self.table, self.org_table, self.name, self.org_name):
            out += lenenc_bytes(text.encode(encoding))
        out.append(0x0C)
        out += fixed_int(self.charset, 2)
        out += fixed_int(min(self.length, 0xFFFFFFFF), 4)
        out += fixed_int(self.type, 1)
        out += fixed_int(self.flags, 2)
        out += fixed_int(self.decimals, 1)
        out += b"\x00\x00"
        return bytes(out)

    def encode_field_list(self, default: bytes | None = None, encoding: str = "utf-8") -> bytes:
        """The COM_FIELD_LIST form: the definition then the column default (0xFB for NULL)."""
        return self.encode(encoding) + (b"\xfb" if default is None else lenenc_bytes(default))


def parse_column_definition(payload: bytes, encoding: str = "utf-8") -> ColumnDefinition:
    """Decode a Column Definition 41 (e.g. one relayed from a backend)."""
    r = Reader(payload)
    texts = [r.lenenc_bytes(what).decode(encoding, "surrogateescape")
             for what in ("catalog", "schema", "table", "org_table", "name", "org_name")]
    r.lenenc_int("fixed-fields length")
    charset = r.uint(2, "charset")
    length = r.uint(4, "column length")
    type_ = r.uint(1, "column type")
    flags = r.uint(2, "column flags")
    decimals = r.uint(1, "decimals")
    catalog, schema, table, org_table, name, org_name = texts
    return ColumnDefinition(name, type_, charset, length, flags, decimals, schema, table, org_table, org_name, catalog)


def parse_field_list_default(payload: bytes) -> bytes | None:
    """The default value after a COM_FIELD_LIST column definition (None: NULL or absent)."""
    r = Reader(payload)
    for what in ("catalog", "schema", "table", "org_table", "name", "org_name"):
        r.lenenc_bytes(what)
    r.fixed(r.lenenc_int("fixed-fields length"), "fixed fields")
    if not r.remaining:
        return None
    value, _ = read_lenenc_bytes(r.data, r.pos, "default value")
    return value


_INT_LENGTH = {c.MYSQL_TYPE_TINY: 4, c.MYSQL_TYPE_SHORT: 6, c.MYSQL_TYPE_INT24: 9, c.MYSQL_TYPE_LONG: 11,
               c.MYSQL_TYPE_LONGLONG: 20, c.MYSQL_TYPE_YEAR: 4}
_BLOB_LENGTH = {c.MYSQL_TYPE_TINY_BLOB: 255, c.MYSQL_TYPE_BLOB: 65535, c.MYSQL_TYPE_MEDIUM_BLOB: 16777215,
                c.MYSQL_TYPE_LONG_BLOB: 4294967295, c.MYSQL_TYPE_GEOMETRY: 4294967295}


def column(
    name: str,
    type_: int,
    *,
    unsigned: bool = False,
    nullable: bool = True,
    length: int | None = None,
    decimals: int | None = None,
    charset: int | None = None,
    flags: int = 0,
    table: str = "",
    schema: str = "",
) -> ColumnDefinition:
    """A column definition with MariaDB's defaults for ``type_``.

    ``decimals`` is the scale for DECIMAL and the fractional-second digits for temporal
    types; for FLOAT/DOUBLE it defaults to NOT_FIXED_DEC. Text columns default to
    utf8mb4 and a length of 255 characters (4 bytes each).
    """
    fl = flags | (0 if nullable else c.NOT_NULL_FLAG) | (c.UNSIGNED_FLAG if unsigned else 0)
    cs = c.CHARSET_BINARY
    dec = 0
    if type_ in _INT_LENGTH:
        size = _INT_LENGTH[type_] - (1 if unsigned and type_ != c.MYSQL_TYPE_LONGLONG else 0)
        fl |= c.BINARY_FLAG
    elif type_ in (c.MYSQL_TYPE_FLOAT, c.MYSQL_TYPE_DOUBLE):
        size, dec = (12 if type_ == c.MYSQL_TYPE_FLOAT else 22), c.NOT_FIXED_DEC
        fl |= c.BINARY_FLAG
    elif type_ in c.DECIMAL_TYPES:
        dec = decimals or 0
        size = 65 + (1 if dec else 0) + (0 if unsigned else 1)
        fl |= c.BINARY_FLAG
    elif type_ in c.DATETIME_TYPES or type_ in c.TIME_TYPES:
        dec = decimals or 0
        base = 10 if type_ in (c.MYSQL_TYPE_DATE, c.MYSQL_TYPE_NEWDATE) or type_ in c.TIME_TYPES else 19
        size = base + (dec + 1 if dec else 0)
        fl |= c.BINARY_FLAG
    elif type_ in _BLOB_LENGTH:
        size = _BLOB_LENGTH[type_]
        fl |= c.BLOB_FLAG | c.BINARY_FLAG
    elif type_ == c.MYSQL_TYPE_BIT:
        size = 1
        fl |= c.UNSIGNED_FLAG
    elif type_ == c.MYSQL_TYPE_NULL:
        size = 0
        fl |= c.BINARY_FLAG
    else:  # character types
        cs = c.CHARSET_UTF8MB4_GENERAL_CI
        size = 255 * 4
    if decimals is not None:
        dec = decimals
    return ColumnDefinition(
        name, type_, charset if charset is not None else cs, size if length is None else length, fl, dec,
        schema=schema, table=table, org_table=table,
    )


def infer_column(name: str, sample: Value) -> ColumnDefinition:
    """A computed column for values like ``sample`` (the first non-NULL value of the column).

    int -> LONGLONG (unsigned when >= 2**63), float -> DOUBLE, Decimal -> NEWDECIMAL with
    its scale, str -> VAR_STRING utf8mb4, bytes -> BLOB binary, datetime -> DATETIME(6 when
    it has microseconds), date -> DATE, time/timedelta -> TIME, None -> NULL.
    """
    if sample is None:
        return column(name, c.MYSQL_TYPE_NULL)
    if isinstance(sample, bool):
        return column(name, c.MYSQL_TYPE_TINY)
    if isinstance(sample, int):
        return column(name, c.MYSQL_TYPE_LONGLONG, unsigned=sample >= 1 << 63)
    if isinstance(sample, float):
        return column(name, c.MYSQL_TYPE_DOUBLE)
    if isinstance(sample, Decimal):
        exp = sample.as_tuple().exponent
        return column(name, c.MYSQL_TYPE_NEWDECIMAL, decimals=-exp if isinstance(exp, int) and exp < 0 else 0)
    if isinstance(sample, str):
        return column(name, c.MYSQL_TYPE_VAR_STRING)
    if isinstance(sample, (bytes, bytearray, memoryview)):
        return column(name, c.MYSQL_TYPE_BLOB)
    if isinstance(sample, datetime.datetime):
        return column(name, c.MYSQL_TYPE_DATETIME, decimals=6 if sample.microsecond else 0)
    if isinstance(sample, datetime.date):
        return column(name, c.MYSQL_TYPE_DATE)
    if isinstance(sample, (datetime.time, datetime.timedelta)):
        micro = sample.microsecond if isinstance(sample, datetime.time) else sample.microseconds
        return column(name, c.MYSQL_TYPE_TIME, decimals=6 if micro else 0)
    raise TypeError(f"cannot infer a MySQL column type for {type(sample).__name__}")


def infer_columns(names: Sequence[str], rows: Sequence[Sequence[Value]]) -> list[ColumnDefinition]:
    """Columns for a result given as Python rows: the first non-NULL value decides each type."""
    columns = []
    for i, name in enumerate(names):
        sample = next((row[i] for row in rows if row[i] is not None), None)
        col = infer_column(name, sample)
        if all(row[i] is not None for row in rows) and rows:
            col = replace(col, flags=col.flags | c.NOT_NULL_FLAG)
        columns.append(col)
    return columns
