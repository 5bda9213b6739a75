"""The gateway's lean lane (coordinator/http/lean.py) against a real coordinator and cluster, over raw
sockets: pipelined writes answered in order, a connection handed to aiohttp mid-stream, bytes arriving
one at a time, chunked and malformed requests, Connection: close, a client that hangs up before its
answer (the write still commits), large answers under flow control, the keep-alive timeout."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest

from coordinator.http.lean import LeanLane
from tests.conftest import Running, wait_for

pytestmark = pytest.mark.mariadb


def lane(run: Running) -> LeanLane:
    return next(r for r in run.runners if isinstance(r, LeanLane))


def in_lane(run: Running, writer: asyncio.StreamWriter) -> bool:
    """Whether the lane (not aiohttp) holds the connection whose client end is ``writer``."""
    me = writer.get_extra_info("sockname")
    return any(c.transport is not None and c.transport.get_extra_info("peername") == me
               for c in lane(run).connections)


def post(path: str, body: Any, *headers: str) -> bytes:
    raw = json.dumps(body).encode()
    fields = "".join(h + "\r\n" for h in ("Host: x", "Content-Type: application/json", *headers))
    return f"POST {path} HTTP/1.1\r\n{fields}Content-Length: {len(raw)}\r\n\r\n".encode() + raw


@contextlib.asynccontextmanager
async def connect(run: Running) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    reader, writer = await asyncio.open_connection("127.0.0.1", run.cfg.ports.gateway, limit=1 << 24)
    try:
        yield reader, writer
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


async def answer(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], Any]:
    """One HTTP/1.1 response with a Content-Length or chunked body: status, headers, JSON body."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
    if headers.get("transfer-encoding") == "chunked":
        body = b""
        while size := int((await reader.readuntil(b"\r\n")).strip(), 16):
            body += (await reader.readexactly(size + 2))[:-2]
        await reader.readexactly(2)
    else:
        body = await asyncio.wait_for(reader.readexactly(int(headers["content-length"])), 30)
    return status, headers, json.loads(body)


async def test_pipelined_writes_are_answered_in_order_by_the_lane(fresh: Running) -> None:
    assert (await fresh.write("CREATE TABLE lane (id INT PRIMARY KEY)"))[0] == 200
    async with connect(fresh) as (reader, writer):
        writer.write(b"".join(post("/query", {"query": f"INSERT INTO lane VALUES ({i})"}) for i in range(5)))
        got = [await answer(reader) for _ in range(5)]
        assert in_lane(fresh, writer)
    assert [st for st, _, _ in got] == [200] * 5, got
    stamps = [body["timestamp"] for _, _, body in got]
    assert stamps == sorted(stamps) and len(set(stamps)) == 5
    for _, headers, body in got:
        assert headers["content-type"] == "application/json" and "date" in headers
        assert headers["server"].startswith("Python/3.11 aiohttp/") and body["rows_affected"] == 1
    st, body = await fresh.post("/query", {"query": "SELECT COUNT(*) AS n FROM lane"})
    assert body["data"] == [{"n": 5}], body


async def test_a_request_outside_the_lane_hands_the_connection_to_aiohttp(fresh: Running) -> None:
    async with connect(fresh) as (reader, writer):
        writer.write(post("/query", {"query": "SELECT 1 AS one"}))
        st, _, body = await answer(reader)
        assert st == 200 and body["data"] == [{"one": 1}]
        assert in_lane(fresh, writer)
        # a GET pipelined behind a lane request: aiohttp takes over after the first answer
        writer.write(post("/query", {"query": "SELECT 2 AS two"}) + b"GET /status HTTP/1.1\r\nHost: x\r\n\r\n"
                     + post("/query", {"query": "SELECT 3 AS three"}))
        first, status, third = [await answer(reader) for _ in range(3)]
        assert first[2]["data"] == [{"two": 2}]
        assert status[0] == 200 and "commit_timestamp" in status[2], status
        assert third[2]["data"] == [{"three": 3}]  # served by aiohttp's route: same answer
        assert not in_lane(fresh, writer)


async def test_bytes_arriving_one_at_a_time(fresh: Running) -> None:
    async with connect(fresh) as (reader, writer):
        for b in post("/query", {"query": "SELECT 'slow' AS s"}):
            writer.write(bytes([b]))
            await writer.drain()
            await asyncio.sleep(0.001)
        st, _, body = await answer(reader)
    assert st == 200 and body["data"] == [{"s": "slow"}]


async def test_chunked_and_malformed_requests_get_aiohttps_answers(fresh: Running) -> None:
    assert (await fresh.write("CREATE TABLE lane (id INT PRIMARY KEY)"))[0] == 200
    raw = json.dumps({"query": "INSERT INTO lane VALUES (7)"}).encode()
    async with connect(fresh) as (reader, writer):
        writer.write(b"POST /query HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n" + b"%x\r\n" % len(raw) + raw + b"\r\n0\r\n\r\n")
        st, _, body = await answer(reader)
        assert st == 200 and body["rows_affected"] == 1, body
    async with connect(fresh) as (reader, writer):
        writer.write(b"POST /query HTTP/1.1\r\nHost: x\r\nContent-Length: 4O\r\n\r\n{}")
        st, _, body = await answer(reader)
        assert st == 400 and body["success"] is False and body["code"] == "bad_request", body
    big = fresh.cfg.coordinator.max_body_bytes + 1
    async with connect(fresh) as (reader, writer):
        writer.write(f"POST /query HTTP/1.1\r\nHost: x\r\nContent-Length: {big}\r\n\r\n".encode() + b" " * big)
        st, _, body = await answer(reader)
        assert st == 413 and body["code"] == "body_too_large", body


async def test_bad_json_on_the_lane_is_a_json_error_and_the_connection_lives_on(fresh: Running) -> None:
    async with connect(fresh) as (reader, writer):
        writer.write(b"POST /query HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n{nope")
        writer.write(b"POST /query HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        writer.write(post("/transaction", {"statements": []}))
        writer.write(post("/query", {"query": "SELECT 1 AS one"}))
        got = [await answer(reader) for _ in range(4)]
    assert [(st, body.get("code")) for st, _, body in got[:3]] == [
        (400, "invalid_json"), (400, "empty_body"), (400, "empty_transaction")], got
    assert got[3][0] == 200 and got[3][2]["data"] == [{"one": 1}]
    async with fresh.session.get(fresh.url("gateway", "/metrics")) as resp:
        text = await resp.text()
    assert 'endpoint="/query",status="400"' in text and 'endpoint="/transaction",status="400"' in text


async def test_connection_close_is_honoured(fresh: Running) -> None:
    async with connect(fresh) as (reader, writer):
        writer.write(post("/query", {"query": "SELECT 1 AS one"}, "Connection: close"))
        st, headers, _ = await answer(reader)
        assert st == 200 and headers["connection"] == "close"
        assert await asyncio.wait_for(reader.read(), 10) == b""


async def test_a_client_that_hangs_up_before_its_answer_does_not_cancel_the_write(fresh: Running) -> None:
    assert (await fresh.write("CREATE TABLE lane (id INT PRIMARY KEY)"))[0] == 200
    async with connect(fresh) as (_reader, writer):
        writer.write(post("/query", {"query": "INSERT INTO lane VALUES (42)"}))
        await writer.drain()
        await wait_for(lambda: asyncio.sleep(0, in_lane(fresh, writer)), 10, "the lane to take the connection")
        gone = writer.get_extra_info("sockname")
    # the answer has nowhere to go; the write commits all the same

    async def committed() -> bool:
        st, body = await fresh.post("/query", {"query": "SELECT id FROM lane"})
        return st == 200 and body["data"] == [{"id": 42}]

    await wait_for(committed, 20, "the abandoned write")

    async def forgotten() -> bool:
        return all(c.transport is None or c.transport.get_extra_info("peername") != gone
                   for c in lane(fresh).connections)

    await wait_for(forgotten, 10, "the lane to forget the connection")


async def test_large_answers_under_flow_control_arrive_whole_and_in_order(fresh: Running) -> None:
    size = 4_000_000
    async with connect(fresh) as (reader, writer):
        writer.write(b"".join(post("/query", {"query": f"SELECT REPEAT('{c}', {size}) AS r"}) for c in "ab"))
        await asyncio.sleep(1.0)  # the client reads nothing meanwhile: the coordinator's writes pause
        first, second = await answer(reader), await answer(reader)
    assert first[2]["data"] == [{"r": "a" * size}] and second[2]["data"] == [{"r": "b" * size}]


async def test_an_idle_keepalive_connection_is_closed(fresh: Running) -> None:
    lane(fresh).keepalive(0.4)
    async with connect(fresh) as (reader, writer):
        writer.write(post("/query", {"query": "SELECT 1 AS one"}))
        assert (await answer(reader))[0] == 200
        assert await asyncio.wait_for(reader.read(), 10) == b""  # closed by the lane's sweep


async def test_a_client_that_stops_reading_a_large_answer_is_closed(fresh: Running) -> None:
    """The answer waits for the client to read it (flow control) only as long as an idle connection may
    stay open: a client that never reads does not hold its connection and the answer's memory for ever."""
    lane(fresh).keepalive(1.0)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # small: the answer cannot hide in buffers
    sock.connect(("127.0.0.1", fresh.cfg.ports.gateway))
    reader, writer = await asyncio.open_connection(sock=sock)
    try:
        writer.write(post("/query", {"query": "SELECT REPEAT('x', 4000000) AS r"}))
        await wait_for(lambda: asyncio.sleep(0, in_lane(fresh, writer)), 10, "the lane to take the request")
        await wait_for(lambda: asyncio.sleep(0, not in_lane(fresh, writer)), 15, "the lane to give up on the reader")
    finally:
        writer.close()
