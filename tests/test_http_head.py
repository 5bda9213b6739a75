"""The lean lane's request-head parser (coordinator/http/head.py) and its response framing: which
requests it serves itself, which it hands to aiohttp, and that it never misreads a byte stream."""

from __future__ import annotations

import http.client
import io

from hypothesis import given
from hypothesis import strategies as st

from coordinator.http import head
from coordinator.http.lean import response

MAX = 1_048_576
BODY = b'{"query": "INSERT INTO t (a) VALUES (1)"}'
WRK = (b"POST /query HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nContent-Type: application/json\r\n"
       b"Content-Length: %d\r\n\r\n" % len(BODY)) + BODY


def request(*fields: bytes, line: bytes = b"POST /query HTTP/1.1", body: bytes = BODY) -> bytes:
    return line + b"\r\n" + b"".join(f + b"\r\n" for f in fields) + b"\r\n" + body


def test_a_wrk_request_is_served_with_its_body_located() -> None:
    h = head.parse(WRK, MAX)
    assert isinstance(h, head.Head)
    assert (h.path, h.content_type, h.close) == ("/query", "application/json", False)
    assert WRK[h.body_start:h.end] == BODY and h.end == len(WRK)


def test_the_next_pipelined_request_starts_where_this_one_ends() -> None:
    stream = WRK + request(b"Content-Length: 2", line=b"POST /transaction HTTP/1.1", body=b"{}")
    first = head.parse(stream, MAX)
    assert isinstance(first, head.Head)
    second = head.parse(stream[first.end:], MAX)
    assert isinstance(second, head.Head) and second.path == "/transaction"
    assert stream[first.end:][second.body_start:second.end] == b"{}"


def test_connection_close_in_any_case_and_among_other_tokens() -> None:
    for value in (b"close", b"Close", b"keep-alive, CLOSE"):
        h = head.parse(request(b"Connection: " + value, b"Content-Length: %d" % len(BODY)), MAX)
        assert isinstance(h, head.Head) and h.close, value
    h = head.parse(request(b"connection: keep-alive", b"content-length: %d" % len(BODY)), MAX)
    assert isinstance(h, head.Head) and not h.close


def test_every_prefix_of_a_served_request_waits_for_more() -> None:
    end_of_head = WRK.index(b"\r\n\r\n") + 4
    for n in range(end_of_head):
        assert head.parse(WRK[:n], MAX) is head.INCOMPLETE, WRK[:n]
    # with the head complete the verdict is final; the lane waits for the body by its length
    assert isinstance(head.parse(WRK[:end_of_head], MAX), head.Head)


NOT_OURS = {
    "another method": request(line=b"GET /query HTTP/1.1"),
    "a lower-case method": request(b"Content-Length: 40", line=b"post /query HTTP/1.1"),
    "another path": request(b"Content-Length: 40", line=b"POST /status HTTP/1.1"),
    "a query string": request(b"Content-Length: 40", line=b"POST /query?x=1 HTTP/1.1"),
    "HTTP/1.0": request(b"Content-Length: 40", line=b"POST /query HTTP/1.0"),
    "two spaces in the request line": request(b"Content-Length: 40", line=b"POST  /query HTTP/1.1"),
    "a chunked body": request(b"Transfer-Encoding: chunked"),
    "a length and chunked": request(b"Content-Length: 40", b"Transfer-Encoding: chunked"),
    "Expect: 100-continue": request(b"Content-Length: 40", b"Expect: 100-continue"),
    "a CORS Origin": request(b"Content-Length: 40", b"Origin: http://x"),
    "an Upgrade": request(b"Content-Length: 40", b"Connection: Upgrade", b"Upgrade: websocket"),
    "no length": request(b"Host: x"),
    "two lengths": request(b"Content-Length: 40", b"Content-Length: 40"),
    "a signed length": request(b"Content-Length: +40"),
    "a non-numeric length": request(b"Content-Length: 4O"),
    "two content types": request(b"Content-Length: 40", b"Content-Type: a/b", b"Content-Type: c/d"),
    "a body over the limit": request(b"Content-Length: %d" % (MAX + 1)),
    "an obs-folded field": request(b"Content-Length: 40", b"X-A: 1", b" continued"),
    "a space before the colon": request(b"Content-Length : 40"),
    "a bare LF": b"POST /query HTTP/1.1\r\nContent-Length: 40\nX: 1\r\n\r\n" + BODY,
    "a control character": request(b"Content-Length: 40", b"X-A: a\x01b"),
    "a non-ASCII field": request(b"Content-Length: 40", "X-A: é".encode()),
    "a field without a colon": request(b"Content-Length: 40", b"garbage"),
    "a head beyond the limit": request(b"Content-Length: 40", b"X-A: " + b"a" * head.MAX_HEAD),
}


def test_everything_outside_the_subset_is_handed_to_aiohttp() -> None:
    for what, raw in NOT_OURS.items():
        assert head.parse(raw, MAX) is head.NOT_OURS, what


def test_a_head_that_never_ends_is_handed_over_at_the_limit() -> None:
    endless = b"POST /query HTTP/1.1\r\n" + b"X-A: b\r\n" * 2000
    assert head.parse(endless[:head.MAX_HEAD], MAX) is head.INCOMPLETE
    assert head.parse(endless, MAX) is head.NOT_OURS


def test_media_type_as_aiohttp_reads_it() -> None:
    assert head.media_type("application/json; charset=utf-8") == "application/json"
    assert head.media_type(" Text/Plain ") == "text/plain"
    assert head.media_type("") == "application/octet-stream"


@given(st.binary(max_size=300))
def test_any_bytes_get_a_verdict_and_a_served_head_is_consistent(raw: bytes) -> None:
    for data in (raw, b"POST /query HTTP/1.1\r\n" + raw):
        v = head.parse(data, 64)
        assert v is head.INCOMPLETE or v is head.NOT_OURS or isinstance(v, head.Head)
        if isinstance(v, head.Head):
            assert data[v.body_start - 4:v.body_start] == b"\r\n\r\n"
            assert 0 <= v.end - v.body_start <= 64
            assert b"\r\n\r\n" not in data[:v.body_start - 4]


@given(st.lists(st.sampled_from([b"Host: h", b"Accept: */*", b"Connection: keep-alive", b"X-Y:z",
                                 b"Content-Type: application/json", b"User-Agent: a b/1"]), max_size=6),
       st.binary(max_size=80))
def test_any_well_formed_request_is_served_with_its_exact_body(fields: list[bytes], body: bytes) -> None:
    if fields.count(b"Content-Type: application/json") > 1:
        return
    raw = request(*fields, b"Content-Length: %d" % len(body), body=body) + b"NEXT"
    h = head.parse(raw, MAX)
    assert isinstance(h, head.Head)
    assert raw[h.body_start:h.end] == body and raw[h.end:] == b"NEXT"


class _Sock:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def makefile(self, _mode: str) -> io.BytesIO:
        return io.BytesIO(self.data)


def _read(raw: bytes) -> http.client.HTTPResponse:
    resp = http.client.HTTPResponse(_Sock(raw))  # type: ignore[arg-type]
    resp.begin()
    return resp


def test_a_response_reads_back_as_aiohttp_would_have_sent_it() -> None:
    resp = _read(response(200, b'{"a":1}', b"Wed, 02 Dec 2026 03:03:36 GMT", close=False))
    assert (resp.status, resp.reason, resp.version) == (200, "OK", 11)
    assert resp.getheader("Content-Type") == "application/json"
    assert resp.getheader("Date") == "Wed, 02 Dec 2026 03:03:36 GMT"
    assert resp.getheader("Server", "").startswith("Python/3.11 aiohttp/")
    assert resp.getheader("Connection") is None and not resp.will_close
    assert resp.read() == b'{"a":1}'


def test_an_error_response_and_one_that_closes() -> None:
    resp = _read(response(503, b"{}", b"d", close=True))
    assert (resp.status, resp.reason) == (503, "Service Unavailable")
    assert resp.will_close and resp.read() == b"{}"
