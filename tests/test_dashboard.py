"""The dashboard's HTTP side: the page and its static files, and the shape of the push stream."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import aiohttp
import orjson
import pymysql
import pytest

from tests.conftest import Running, wait_for

pytestmark = pytest.mark.mariadb


async def read_messages(resp: aiohttp.ClientResponse, until: Any, timeout: float = 10) -> list[tuple[str, Any]]:
    """Parse ``event:``/``data:`` blocks until ``until(messages)`` is true."""
    messages: list[tuple[str, Any]] = []
    event, data = "message", []
    deadline = time.monotonic() + timeout
    while not until(messages):
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"stream did not deliver in {timeout}s; got {[m[0] for m in messages]}")
        raw = await asyncio.wait_for(resp.content.readline(), left)
        if not raw:
            raise AssertionError("stream ended early")
        line = raw.decode().rstrip("\n")
        if line == "":
            if data:
                messages.append((event, orjson.loads("\n".join(data))))
            event, data = "message", []
        elif line.startswith(":") or line.startswith("retry:"):
            continue
        elif line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())
    return messages


async def test_index_serves_the_app(fresh: Running) -> None:
    async with fresh.session.get(fresh.url(path="/")) as resp:
        assert resp.status == 200
        assert resp.content_type == "text/html"
        html = await resp.text()
        etag = resp.headers["ETag"]
        assert "no-cache" in resp.headers["Cache-Control"]
    assert "/static/app.js" in html and "/static/style.css" in html and 'id="replicas"' in html
    async with fresh.session.get(fresh.url(path="/"), headers={"If-None-Match": etag}) as resp:
        assert resp.status == 304


@pytest.mark.parametrize("name,ctype", [("app.js", "text/javascript"), ("charts.js", "text/javascript"),
                                        ("style.css", "text/css"), ("index.html", "text/html")])
async def test_static_files_have_content_types(fresh: Running, name: str, ctype: str) -> None:
    async with fresh.session.get(fresh.url(path=f"/static/{name}")) as resp:
        assert resp.status == 200
        assert resp.content_type == ctype
        assert resp.charset == "utf-8"
        assert len(await resp.read()) > 100


@pytest.mark.parametrize("path", ["/static/nope.js", "/static/..%2Fdashboard.py", "/static/app.py"])
async def test_unknown_static_files_are_json_404(fresh: Running, path: str) -> None:
    async with fresh.session.get(fresh.url(path=path)) as resp:
        assert resp.status == 404
        body = await resp.json()
        assert body["success"] is False and body["code"] == "not_found"


async def test_stream_first_messages_have_the_documented_shape(fresh: Running) -> None:
    st, body = await fresh.write("INSERT INTO users (name, email) VALUES ('dash', 'dash-shape@example.com')")
    assert st == 200, body
    async with fresh.session.get(fresh.url(path="/dashboard/stream")) as resp:
        assert resp.status == 200
        assert resp.content_type == "text/event-stream"
        assert "no-cache" in resp.headers["Cache-Control"]
        msgs = await read_messages(resp, lambda m: sum(1 for k, _ in m if k == "snapshot") >= 2)

    kinds = [k for k, _ in msgs]
    assert kinds[0] == "hello"
    hello = msgs[0][1]
    assert isinstance(hello["history"], list)
    assert hello["sample_s"] > 0
    assert set(hello["controls"]) >= {"replica", "fault", "failover", "stop_master", "start_master", "mode", "reset"}
    for c in hello["controls"].values():
        assert isinstance(c["enabled"], bool) and isinstance(c["reason"], str)
        assert c["enabled"] or c["reason"]  # a disabled control always says why
    assert hello["controls"]["mode"]["enabled"] and hello["controls"]["reset"]["enabled"]
    assert hello["controls"]["transactions"]["enabled"]  # the open-transactions panel may poll its endpoint

    # recent events come before the first snapshot, oldest first
    first_snap = kinds.index("snapshot")
    events = [d for k, d in msgs[:first_snap] if k == "event"]
    assert events, "recent events are sent on connect"
    for e in events:
        assert isinstance(e["id"], int) and isinstance(e["kind"], str) and isinstance(e["message"], str)
        assert isinstance(e["time"], float)
    assert [e["id"] for e in events] == sorted(e["id"] for e in events)
    assert "epoch" in {e["kind"] for e in events}

    snaps = [d for k, d in msgs if k == "snapshot"]
    for snap in snaps:
        assert {"time", "status", "replicas", "quorum", "chart"} <= set(snap)
        assert snap["status"]["current_master"] == "mysql-replica-4"
        assert snap["status"]["commit_timestamp"] >= body["timestamp"]
        assert len(snap["replicas"]) == 4
        assert sum(1 for r in snap["replicas"] if r["is_master"]) == 1
        for r in snap["replicas"]:
            assert {"replica_id", "name", "is_healthy", "applied_timestamp", "replication_lag", "weight"} <= set(r)
        assert snap["quorum"]["mode"] == "cabinet"
        point = snap["chart"]
        assert {"t", "commit_timestamp", "writes_per_s", "latency_ms_p50", "latency_ms_p99", "lag", "lag_ms"} <= set(point)
        assert set(point["lag"]) == {r["replica_id"] for r in snap["replicas"]}
    assert snaps[1]["time"] > snaps[0]["time"]


async def test_stream_pushes_new_events_and_snapshots_twice_a_second(fresh: Running) -> None:
    async with fresh.session.get(fresh.url(path="/dashboard/stream")) as resp:
        await read_messages(resp, lambda m: any(k == "snapshot" for k, _ in m))
        started = time.monotonic()
        st, _ = await fresh.post("/admin/replication-mode", {"mode": "majority"})
        assert st == 200
        msgs = await read_messages(resp, lambda m: any(k == "event" and d["kind"] == "mode" for k, d in m)
                                   and sum(1 for k, _ in m if k == "snapshot") >= 3)
        elapsed = time.monotonic() - started
    mode_event = next(d for k, d in msgs if k == "event" and d["kind"] == "mode")
    assert "majority" in mode_event["message"]
    assert elapsed < 5  # three snapshots at ~0.5 s, not a 5-second poll
    assert [d for k, d in msgs if k == "snapshot"][-1]["status"]["mode"] == "majority"
    await fresh.post("/admin/replication-mode", {"mode": "cabinet"})


async def test_history_is_sent_on_connect_and_rates_follow_commits(fresh: Running) -> None:
    for i in range(20):
        st, _ = await fresh.write("INSERT INTO users (name, email) VALUES (%s, %s)", [f"h{i}", f"hist-{i}@example.com"])
        assert st == 200
    await asyncio.sleep(1.2)
    async with fresh.session.get(fresh.url(path="/dashboard/stream")) as resp:
        msgs = await read_messages(resp, lambda m: any(k == "snapshot" for k, _ in m))
    history = msgs[0][1]["history"]
    assert len(history) >= 2
    assert [p["t"] for p in history] == sorted(p["t"] for p in history)
    assert any(p["writes_per_s"] > 0 for p in history)
    assert all(p["writes_per_s"] >= 0 for p in history)


async def test_disconnecting_the_client_unsubscribes(fresh: Running) -> None:
    subs = fresh.coord.events._subscribers
    before = len(subs)
    async with aiohttp.ClientSession() as s:
        resp = await s.get(fresh.url(path="/dashboard/stream"))
        await read_messages(resp, lambda m: any(k == "snapshot" for k, _ in m))
        assert len(subs) == before + 1
        resp.close()

    async def released() -> bool:
        return len(subs) == before

    await wait_for(released, 5, "the stream to unsubscribe after the client left")


async def test_open_streams_do_not_hold_up_shutdown(fresh: Running) -> None:
    subs = fresh.coord.events._subscribers
    before = len(subs)
    async with aiohttp.ClientSession() as s:
        resp = await s.get(fresh.url(path="/dashboard/stream"))
        await read_messages(resp, lambda m: any(k == "snapshot" for k, _ in m))
        started = time.monotonic()
        for runner in fresh.runners:
            await runner.shutdown()
        assert time.monotonic() - started < 3
        tail = await asyncio.wait_for(resp.content.read(), 5)  # the server ended the stream
        assert isinstance(tail, bytes)
        resp.close()
    assert len(subs) == before


# --- the open-transactions panel's endpoint, with real transactions on the MySQL port (PyMySQL in threads:
# the coordinator serves from this test's event loop)


def mysql_connect(run: Running) -> pymysql.connections.Connection:
    return pymysql.connect(host="127.0.0.1", port=run.cfg.ports.mysql, user="root", password="", database="testdb",
                           autocommit=True, connect_timeout=5, read_timeout=30, write_timeout=30)


def run_sql(conn: pymysql.connections.Connection, *statements: str) -> None:
    with conn.cursor() as cur:
        for statement in statements:
            cur.execute(statement)
            cur.fetchall()


async def test_transactions_endpoint_lists_an_open_transaction_until_commit(fresh: Running) -> None:
    body = await fresh.open_transactions()
    assert body["transactions"] == [] and body["pinned_connections"] == 0
    assert body["max_pinned"] == fresh.cfg.transactions.max_pinned
    assert body["idle_timeout_s"] == fresh.cfg.transactions.idle_timeout_s
    conn = await asyncio.to_thread(mysql_connect, fresh)
    try:
        await asyncio.to_thread(run_sql, conn, "BEGIN",
                                "INSERT INTO users (name, email) VALUES ('txn', 'dash-txn@example.com')")
        await asyncio.sleep(0.3)
        body = await fresh.open_transactions()
        [t] = body["transactions"]
        assert t["session"] == conn.thread_id()  # the connection id the client sees
        assert t["user"] == "root" and t["host"]
        assert t["statements"] == 1 and t["writes"] == 1 and not t["read_only"]
        assert t["pinned_to"] == "replica-4" and t["pinned_name"] == "mysql-replica-4"
        assert t["state"] == "idle" and t["command"] == "Sleep" and not t["committing"]
        assert t["age_s"] >= 0.2
        assert body["pinned_connections"] == 1
        session = next(x for x in (await fresh.get("/admin/sessions"))[1]["sessions"] if x["id"] == t["session"])
        assert session["in_transaction"] and session["transaction_statements"] == 1

        await asyncio.to_thread(conn.commit)
        body = await fresh.open_transactions()
        assert body["transactions"] == [] and body["pinned_connections"] == 0
    finally:
        conn.close()
    st, r = await fresh.post("/query", {"query": "SELECT COUNT(*) AS n FROM users WHERE email = 'dash-txn@example.com'"})
    assert st == 200 and r["data"][0]["n"] == 1  # committed, through the quorum


async def test_transactions_endpoint_shows_one_waiting_for_a_lock_as_running(fresh: Running) -> None:
    st, w = await fresh.write("INSERT INTO users (name, email) VALUES ('lock', 'dash-lock@example.com')")
    assert st == 200, w
    holder, waiter = await asyncio.to_thread(mysql_connect, fresh), await asyncio.to_thread(mysql_connect, fresh)
    lock = "SELECT id FROM users WHERE email = 'dash-lock@example.com' FOR UPDATE"
    waiting: asyncio.Task[None] | None = None
    try:
        await asyncio.to_thread(run_sql, holder, "BEGIN", lock)
        waiting = asyncio.create_task(asyncio.to_thread(run_sql, waiter, "BEGIN", lock))

        async def blocked() -> bool:
            txns = {t["session"]: t for t in (await fresh.open_transactions())["transactions"]}
            return txns.get(waiter.thread_id(), {}).get("state") == "running"

        await wait_for(blocked, 10, "the waiting transaction listed as running")
        txns = {t["session"]: t for t in (await fresh.open_transactions())["transactions"]}
        assert txns[holder.thread_id()]["state"] == "idle"
        assert txns[waiter.thread_id()]["command"] == "Query"
        assert (await fresh.open_transactions())["pinned_connections"] == 2
        await asyncio.to_thread(holder.rollback)
        await asyncio.wait_for(waiting, 10)  # the lock passed to the waiter
        await asyncio.to_thread(waiter.rollback)
        assert (await fresh.open_transactions())["transactions"] == []
    finally:
        holder.close()  # the server rolls back what it held: a waiter still blocked gets through
        if waiting is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(waiting, 10)
        waiter.close()


def test_latency_quantiles_from_histogram_buckets() -> None:
    from coordinator.http.dashboard import _hist_quantile, _percentile

    inf = float("inf")
    # 8 writes in (2.5, 5] ms, 2 in (5, 10] ms; cumulative counts per upper bound in seconds
    buckets = [(0.001, 0.0), (0.0025, 0.0), (0.005, 8.0), (0.01, 10.0), (inf, 10.0)]
    assert 2.5 < _hist_quantile(buckets, 0.5) <= 5.0
    assert 5.0 < _hist_quantile(buckets, 0.99) <= 10.0
    assert _hist_quantile([(0.01, 0.0), (inf, 3.0)], 0.5) == 10.0  # beyond the last bound: its lower edge
    assert _percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.0
    assert _percentile([1.0, 2.0, 3.0, 4.0], 0.99) == 4.0
    assert _percentile([7.0], 0.5) == 7.0
