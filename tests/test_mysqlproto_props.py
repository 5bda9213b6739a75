"""Property tests (hypothesis) of ``coordinator.mysqlproto``.

Encoders on the client side are independent of the codec: asyncmy's own
``pack_binary_params`` (the real driver's COM_STMT_EXECUTE encoder) and small test-only
encoders written here from the protocol description with ``struct``.
"""

from __future__ import annotations

import datetime
import hashlib
import struct
from collections.abc import Callable
from typing import Any

from asyncmy.protocol import pack_binary_params
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coordinator.mysqlproto import binary, handshake, results, values, wire
from coordinator.mysqlproto import constants as c
from coordinator.mysqlproto.columns import column
from coordinator.mysqlproto.errors import ProtocolError
from coordinator.mysqlproto.framing import MAX_CHUNK, Packet, PacketReader, frame

# --- length-encoded integers and strings ----------------------------------------------------


@settings(deadline=None)  # the machine may be busy with other suites: no per-example deadline
@given(st.integers(0, 2**64 - 1), st.binary(max_size=8), st.binary(max_size=8))
def test_lenenc_int_round_trip(value: int, prefix: bytes, suffix: bytes) -> None:
    enc = wire.lenenc_int(value)
    assert len(enc) == (1 if value < 251 else 3 if value < 2**16 else 4 if value < 2**24 else 9)
    assert wire.read_lenenc_int(prefix + enc + suffix, len(prefix)) == (value, len(prefix) + len(enc))
    for cut in range(len(enc)):
        try:
            wire.read_lenenc_int(enc[:cut], 0)
        except ProtocolError:
            continue
        raise AssertionError(f"prefix {enc[:cut]!r} decoded")


@settings(deadline=None)  # the machine may be busy with other suites: no per-example deadline
@given(st.one_of(st.binary(max_size=300), st.integers(0, 70000).map(lambda n: b"z" * n)), st.binary(max_size=4))
def test_lenenc_bytes_round_trip(value: bytes, suffix: bytes) -> None:
    enc = wire.lenenc_bytes(value)
    assert wire.read_lenenc_bytes(enc + suffix, 0) == (value, len(enc))
    for cut in sorted({0, 1, 2, 3, len(enc) // 2, len(enc) - 1}):
        if cut < len(enc):
            try:
                wire.read_lenenc_bytes(enc[:cut], 0)
            except ProtocolError:
                continue
            raise AssertionError("truncated string decoded")


# --- framing -------------------------------------------------------------------------------

def _expected(seq: int, payload: bytes) -> Packet:
    fragments = len(payload) // MAX_CHUNK + 1
    return Packet((seq + fragments - 1) & 0xFF, payload)


def _feed_in_chunks(stream: bytes, cuts: list[int], reader: PacketReader) -> list[Packet]:
    got: list[Packet] = []
    view = memoryview(stream)
    start = 0
    for cut in sorted({min(max(x, 0), len(stream)) for x in cuts} | {len(stream)}):
        reader.feed(bytes(view[start:cut]))
        got += list(reader)
        start = cut
    return got


@settings(deadline=None)  # the machine may be busy with other suites: no per-example deadline
@given(st.lists(st.tuples(st.integers(0, 255), st.binary(max_size=300)), max_size=20), st.data())
def test_framing_random_chunks(packets: list[tuple[int, bytes]], data: st.DataObject) -> None:
    stream = b"".join(frame(seq, payload)[0] for seq, payload in packets)
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=40))
    reader = PacketReader()
    assert _feed_in_chunks(stream, cuts, reader) == [_expected(s, p) for s, p in packets]
    assert reader.buffered == 0 and not reader.in_packet


_SIZES = [0, 3, MAX_CHUNK - 1, MAX_CHUNK, MAX_CHUNK + 1, 2 * MAX_CHUNK]


def _payload(tag: int, size: int) -> bytes:
    pattern = bytes((tag,)) + bytes(range(256)) * (size // 256 + 1)
    return pattern[:size]


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(st.tuples(st.integers(0, 255), st.sampled_from(_SIZES)), min_size=1, max_size=3), st.data())
def test_framing_payloads_around_16mib(spec: list[tuple[int, int]], data: st.DataObject) -> None:
    """Payloads of 0xFFFFFF +- 1 and 2 * 0xFFFFFF bytes, with cuts inside and around every header."""
    packets = [(seq, _payload(i, size)) for i, (seq, size) in enumerate(spec)]
    frames = [frame(seq, payload)[0] for seq, payload in packets]
    stream = b"".join(frames)
    headers, pos = [], 0
    while pos < len(stream):
        headers.append(pos)
        pos += 4 + int.from_bytes(stream[pos:pos + 3], "little")
    deltas = data.draw(st.lists(st.integers(-3, 5), min_size=len(headers), max_size=len(headers)))
    extra = data.draw(st.lists(st.integers(0, len(stream)), max_size=5))
    reader = PacketReader(max_payload=2 * MAX_CHUNK)
    got = _feed_in_chunks(stream, [h + d for h, d in zip(headers, deltas, strict=True)] + extra, reader)
    assert got == [_expected(s, p) for s, p in packets]


# --- COM_STMT_EXECUTE: asyncmy's encoder against our decoder --------------------------------

_datetimes = st.datetimes(min_value=datetime.datetime(1, 1, 1), max_value=datetime.datetime(9999, 12, 31, 23, 59))
_py_params = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**63), 2**64 - 1), st.floats(allow_nan=False),
    st.text(max_size=40), st.binary(max_size=40), _datetimes, st.dates(),
    st.timedeltas(min_value=datetime.timedelta(days=-40000), max_value=datetime.timedelta(days=40000)),
    st.times(), st.decimals(allow_nan=False, allow_infinity=False, places=4),
)


def _as_decoded(v: Any) -> Any:
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, datetime.time):
        return datetime.timedelta(hours=v.hour, minutes=v.minute, seconds=v.second, microseconds=v.microsecond)
    return v


@settings(deadline=None)  # the machine may be busy with other suites: no per-example deadline
@given(st.lists(_py_params, min_size=1, max_size=12), st.integers(0, 2**32 - 1))
def test_execute_from_asyncmy_encoder(params: list[Any], stmt_id: int) -> None:
    payload = b"\x17" + stmt_id.to_bytes(4, "little") + b"\x00\x01\x00\x00\x00"
    payload += pack_binary_params(tuple(params), "utf8")
    ex = binary.parse_stmt_execute(payload, len(params))
    assert ex.statement_id == stmt_id and ex.new_params_bound
    assert list(ex.values) == [_as_decoded(v) for v in params]
    state = binary.StatementParams(len(params))
    assert state.parse_execute(payload).values == ex.values
    assert state.bound_types == ex.types


# --- COM_STMT_EXECUTE: a test-only client encoder, every parameter type -------------------

def _len(b: bytes) -> bytes:
    return wire.lenenc_bytes(b)


def _dt_bytes(d: datetime.datetime, form: int) -> bytes:
    ymd = struct.pack("<HBB", d.year, d.month, d.day)
    body = {0: b"", 4: ymd, 7: ymd + bytes((d.hour, d.minute, d.second)),
            11: ymd + bytes((d.hour, d.minute, d.second)) + struct.pack("<I", d.microsecond)}[form]
    return bytes((form,)) + body


def _int_param(type_: int, fmt: str, lo: int, hi: int, unsigned: bool) -> st.SearchStrategy[Any]:
    return st.integers(lo, hi).map(lambda v: (type_, unsigned, struct.pack(fmt, v), v))


def _dt_param(draw: Callable[..., Any]) -> Any:
    d = draw(_datetimes)
    form = draw(st.sampled_from([4, 7, 11]))
    type_ = draw(st.sampled_from([c.MYSQL_TYPE_DATETIME, c.MYSQL_TYPE_TIMESTAMP, c.MYSQL_TYPE_DATE]))
    trimmed = d.replace(microsecond=d.microsecond if form == 11 else 0)
    if form == 4:
        trimmed = trimmed.replace(hour=0, minute=0, second=0)
    expected: Any = trimmed
    if type_ == c.MYSQL_TYPE_DATE and form == 4:
        expected = trimmed.date()
    elif type_ == c.MYSQL_TYPE_DATE and trimmed.time() == datetime.time(0):
        expected = trimmed.date()
    return (type_, False, _dt_bytes(d, form), expected)


@st.composite
def _typed_param(draw: Callable[..., Any]) -> Any:
    kind = draw(st.integers(0, 9))
    if kind == 0:
        unsigned = draw(st.booleans())
        spec = draw(st.sampled_from([(c.MYSQL_TYPE_TINY, "b", 8), (c.MYSQL_TYPE_SHORT, "h", 16),
                                     (c.MYSQL_TYPE_YEAR, "h", 16), (c.MYSQL_TYPE_LONG, "i", 32),
                                     (c.MYSQL_TYPE_INT24, "i", 32), (c.MYSQL_TYPE_LONGLONG, "q", 64)]))
        type_, fmt, bits = spec
        lo, hi = (0, 2**bits - 1) if unsigned else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
        return draw(_int_param(type_, "<" + (fmt.upper() if unsigned else fmt), lo, hi, unsigned))
    if kind == 1:
        f = draw(st.floats(width=32, allow_nan=False))
        return (c.MYSQL_TYPE_FLOAT, False, struct.pack("<f", f), f)
    if kind == 2:
        f = draw(st.floats(allow_nan=False))
        return (c.MYSQL_TYPE_DOUBLE, False, struct.pack("<d", f), f)
    if kind == 3:
        d = draw(st.decimals(allow_nan=False, allow_infinity=False))
        return (draw(st.sampled_from([c.MYSQL_TYPE_DECIMAL, c.MYSQL_TYPE_NEWDECIMAL])), False,
                _len(str(d).encode()), d)
    if kind == 4:
        return _dt_param(draw)
    if kind == 5:
        td = draw(st.timedeltas(min_value=datetime.timedelta(days=-9999), max_value=datetime.timedelta(days=9999)))
        neg = td < datetime.timedelta(0)
        mag = -td if neg else td
        hms = bytes((mag.seconds // 3600, mag.seconds // 60 % 60, mag.seconds % 60))
        body = bytes((1 if neg else 0,)) + struct.pack("<I", mag.days) + hms
        if mag.microseconds or draw(st.booleans()):
            return (c.MYSQL_TYPE_TIME, False, b"\x0c" + body + struct.pack("<I", mag.microseconds), td)
        return (c.MYSQL_TYPE_TIME, False, b"\x08" + body, td)
    if kind == 6:
        text = draw(st.text(max_size=300))
        type_ = draw(st.sampled_from(sorted(c.TEXT_TYPES)))
        return (type_, False, _len(text.encode()), text)
    if kind == 7:
        blob = draw(st.binary(max_size=300))
        return (draw(st.sampled_from(sorted(c.BLOB_TYPES))), False, _len(blob), blob)
    if kind == 8:  # zero date: not a Python date, decoded as MySQL's text
        type_ = draw(st.sampled_from([c.MYSQL_TYPE_DATETIME, c.MYSQL_TYPE_DATE]))
        return (type_, False, b"\x00", "0000-00-00" if type_ == c.MYSQL_TYPE_DATE else "0000-00-00 00:00:00")
    return (draw(st.sampled_from([c.MYSQL_TYPE_LONG, c.MYSQL_TYPE_VAR_STRING, c.MYSQL_TYPE_NULL])), False, None, None)


def _client_execute(stmt_id: int, params: list[Any], send_types: bool) -> bytes:
    """COM_STMT_EXECUTE as a client builds it: bitmap, bound flag, types, non-NULL values."""
    n = len(params)
    bitmap = bytearray((n + 7) // 8)
    for i, (_, _, raw, _) in enumerate(params):
        if raw is None:
            bitmap[i // 8] |= 1 << (i % 8)
    out = b"\x17" + struct.pack("<IBI", stmt_id, 0, 1) + bytes(bitmap) + (b"\x01" if send_types else b"\x00")
    if send_types:
        out += b"".join(bytes((t, 0x80 if u else 0)) for t, u, _, _ in params)
    return out + b"".join(raw for _, _, raw, _ in params if raw is not None)


@settings(deadline=None)  # the machine may be busy with other suites: no per-example deadline
@given(st.lists(_typed_param(), min_size=1, max_size=20), st.booleans())
def test_execute_every_type(params: list[Any], second_without_types: bool) -> None:
    state = binary.StatementParams(len(params))
    ex = state.parse_execute(_client_execute(9, params, True))
    assert list(ex.values) == [p[3] for p in params]
    assert [(t.type, t.unsigned) for t in ex.types] == [(p[0], p[1]) for p in params]
    if second_without_types:
        again = state.parse_execute(_client_execute(9, params, False))
        assert again.values == ex.values and not again.new_params_bound


# --- binary rows: encode, then decode -------------------------------------------------------

@st.composite
def _column_and_value(draw: Callable[..., Any]) -> Any:
    type_, unsigned, _, value = draw(_typed_param())
    if type_ in c.TEXT_TYPES:
        col = column("v", type_)
    elif type_ == c.MYSQL_TYPE_BIT:
        col = column("v", c.MYSQL_TYPE_BLOB)
    else:
        col = column("v", type_, unsigned=unsigned)
    return col, value


@settings(deadline=None)  # the machine may be busy with other suites: no per-example deadline
@given(st.lists(_column_and_value(), min_size=1, max_size=20))
def test_binary_row_round_trip(pairs: list[Any]) -> None:
    cols = [col for col, _ in pairs]
    row = [v for _, v in pairs]
    decoded = binary.parse_binary_row(binary.binary_row(cols, row), cols)
    assert decoded == row


# --- text result sets: a test-only client reader --------------------------------------------

def _read_text_resultset(packets: list[bytes], deprecate_eof: bool) -> tuple[int, list[list[bytes | None]], int]:
    count, _ = wire.read_lenenc_uint(packets[0], 0)
    pos = 1 + count + (0 if deprecate_eof else 1)
    rows = []
    for payload in packets[pos:-1]:
        cells, off = [], 0
        while off < len(payload):
            cell, off = wire.read_lenenc_bytes(payload, off)
            cells.append(cell)
        rows.append(cells)
    last = packets[-1]
    status = results.parse_ok(last).status if deprecate_eof else results.parse_eof(last)[1]
    return count, rows, status


_cells = st.one_of(st.none(), st.integers(), st.floats(allow_nan=False, allow_infinity=False), st.text(),
                   st.binary(), st.decimals(allow_nan=False, allow_infinity=False), _datetimes, st.dates(),
                   st.timedeltas())


@settings(deadline=None)  # the machine may be busy with other suites: no per-example deadline
@given(st.integers(1, 5).flatmap(lambda n: st.lists(st.lists(_cells, min_size=n, max_size=n), max_size=6)
                                  .map(lambda rows: (n, rows))), st.booleans(), st.booleans())
def test_text_resultset(shape: tuple[int, list[list[Any]]], deprecate_eof: bool, more: bool) -> None:
    n, rows = shape
    cols = [column(f"c{i}", c.MYSQL_TYPE_VAR_STRING) for i in range(n)]
    caps = c.CLIENT_DEPRECATE_EOF if deprecate_eof else 0
    packets = results.text_resultset(cols, rows, capabilities=caps, status=c.SERVER_STATUS_IN_TRANS,
                                     more_results=more)
    count, got, status = _read_text_resultset(packets, deprecate_eof)
    assert count == n and got == [[values.text_cell(v) for v in row] for row in rows]
    assert status == c.SERVER_STATUS_IN_TRANS | (c.SERVER_MORE_RESULTS_EXISTS if more else 0)


@settings(deadline=None)  # the machine may be busy with other suites: no per-example deadline
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_format_double_round_trips(x: float) -> None:
    text = values.format_double(x)
    assert float(text) == x and "+" not in text and ("e" in text) == (x != 0 and not 1e-15 <= abs(x) < 1e15)


# --- authentication ------------------------------------------------------------------------

@settings(deadline=None)  # the machine may be busy with other suites: no per-example deadline
@given(st.text(min_size=1, max_size=40), st.text(min_size=1, max_size=40), st.binary(min_size=20, max_size=20))
def test_native_password(password: str, other: str, raw_scramble: bytes) -> None:
    scramble = handshake.make_scramble(raw_scramble)
    sha1 = hashlib.sha1
    stage1 = sha1(password.encode()).digest()
    response = bytes(a ^ b for a, b in zip(stage1, sha1(scramble + sha1(stage1).digest()).digest(), strict=True))
    assert handshake.native_response(password, scramble) == response
    assert handshake.verify_native(scramble, response, handshake.native_hash(password))
    if other != password:
        assert not handshake.verify_native(scramble, handshake.native_response(other, scramble),
                                           handshake.native_hash(password))


_names = st.text(st.characters(blacklist_characters="\x00", blacklist_categories=["Cs"]), max_size=30)


@settings(deadline=None)  # the machine may be busy with other suites: no per-example deadline
@given(_names, st.binary(max_size=255), st.one_of(st.none(), _names.filter(bool)),
       st.dictionaries(_names, _names, max_size=5), st.booleans(), st.booleans())
def test_handshake_response_round_trip(user: str, auth: bytes, db: str | None, attrs: dict[str, str],
                                       lenenc_auth: bool, with_plugin: bool) -> None:
    """A HandshakeResponse41 built the way drivers build it, parsed back."""
    caps = c.CLIENT_PROTOCOL_41 | c.CLIENT_SECURE_CONNECTION | c.CLIENT_CONNECT_ATTRS | c.CLIENT_LONG_PASSWORD
    caps |= (c.CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA if lenenc_auth else 0) | (c.CLIENT_CONNECT_WITH_DB if db else 0)
    caps |= c.CLIENT_PLUGIN_AUTH if with_plugin else 0
    out = struct.pack("<IIB", caps, 1 << 24, c.CHARSET_UTF8MB4_GENERAL_CI) + bytes(23) + user.encode() + b"\x00"
    out += wire.lenenc_bytes(auth) if lenenc_auth else bytes((len(auth),)) + auth
    if db:
        out += db.encode() + b"\x00"
    if with_plugin:
        out += b"mysql_native_password\x00"
    out += wire.lenenc_bytes(b"".join(wire.lenenc_bytes(k.encode()) + wire.lenenc_bytes(v.encode())
                                      for k, v in attrs.items()))
    resp = handshake.parse_handshake_response(out)
    assert (resp.user, resp.auth_response, resp.database, resp.attributes) == (user, auth, db, attrs)
    assert resp.auth_plugin == ("mysql_native_password" if with_plugin else None)
    assert resp.capabilities == caps == resp.effective_capabilities


@settings(deadline=None)  # the machine may be busy with other suites: no per-example deadline
@given(st.integers(0, 2**32 - 1), st.binary(min_size=20, max_size=20), st.integers(0, 0xFFFF))
def test_handshake_parsed_by_a_client_reader(conn_id: int, raw: bytes, status: int) -> None:
    """Reading HandshakeV10 the way asyncmy/PyMySQL do gives back every field."""
    scramble = handshake.make_scramble(raw)
    hello = handshake.build_handshake(conn_id, scramble, status_flags=status)
    end = hello.index(b"\x00", 1)
    assert hello[0] == 10 and hello[1:end] == handshake.DEFAULT_SERVER_VERSION.encode()
    i = end + 1
    assert struct.unpack("<I", hello[i:i + 4])[0] == conn_id
    salt = hello[i + 4:i + 12]
    lo, charset, got_status, hi, salt_len = struct.unpack("<HBHHB", hello[i + 13:i + 21])
    assert (lo | hi << 16, charset, got_status, salt_len) == (c.DEFAULT_SERVER_CAPABILITIES, 45, status, 21)
    rest = hello[i + 31:]
    assert salt + rest[:12] == scramble and rest[12:] == b"\x00mysql_native_password\x00"
