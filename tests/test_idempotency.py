"""Idempotent retries: a write with a request_id applies at most once, and a retry
returns the original outcome — from memory, concurrently, and after a restart."""

from __future__ import annotations

import asyncio

import pytest

from tests.conftest import Running, direct, make_config, start_coordinator

pytestmark = pytest.mark.mariadb


async def _count(cluster, email: str) -> int:
    return (await direct(cluster, "replica-4", f"SELECT COUNT(*) FROM users WHERE email = '{email}'"))[0][0]


async def test_retry_returns_the_original_outcome(cluster, fresh: Running) -> None:
    run = fresh
    body = {"query": "INSERT INTO users (name, email) VALUES ('i', 'idem1@x')", "request_id": "req-1"}
    st, first = await run.post("/query", body)
    assert st == 200 and "replayed" not in first
    st, again = await run.post("/query", body)
    assert st == 200 and again["replayed"] is True
    assert (again["timestamp"], again["last_insert_id"], again["rows_affected"]) == \
        (first["timestamp"], first["last_insert_id"], first["rows_affected"])
    assert await _count(cluster, "idem1@x") == 1


async def test_concurrent_duplicates_apply_once(cluster, fresh: Running) -> None:
    run = fresh
    body = {"query": "INSERT INTO users (name, email) VALUES ('i', 'idem2@x')", "request_id": "req-2"}
    results = await asyncio.gather(*(run.post("/query", body) for _ in range(10)))
    assert all(st == 200 for st, _ in results), results
    assert len({b["timestamp"] for _, b in results}) == 1
    assert await _count(cluster, "idem2@x") == 1


async def test_refused_write_is_refused_again_and_transactions_are_keyed(cluster, fresh: Running) -> None:
    run = fresh
    await run.write("INSERT INTO users (name, email) VALUES ('i', 'taken@x')")
    body = {"query": "INSERT INTO users (name, email) VALUES ('i', 'taken@x')", "request_id": "req-dup"}
    st1, b1 = await run.post("/query", body)
    await run.write("DELETE FROM users WHERE email = 'taken@x'")
    st2, b2 = await run.post("/query", body)  # the original outcome, even though it would now succeed
    assert st1 == st2 == 409 and b1["errno"] == b2["errno"] == 1062
    assert await _count(cluster, "taken@x") == 0
    txn = {"statements": [{"query": "INSERT INTO users (name, email) VALUES ('t', 'idem-t@x')"}],
           "request_id": "req-txn"}
    st, t1 = await run.post("/transaction", txn)
    st, t2 = await run.post("/transaction", txn)
    assert st == 200 and t1["timestamp"] == t2["timestamp"] and t2["replayed"] is True
    assert await _count(cluster, "idem-t@x") == 1


async def test_retry_after_coordinator_restart(cluster, fresh: Running, http) -> None:
    run = fresh
    body = {"query": "INSERT INTO users (name, email) VALUES ('i', 'idem3@x')", "request_id": "req-3"}
    st, first = await run.post("/query", body)
    assert st == 200
    await run.stop()
    run2 = await start_coordinator(make_config(cluster), http)
    try:
        st, again = await run2.post("/query", body)
        assert st == 200, again
        assert again["replayed"] is True and again["timestamp"] == first["timestamp"]
        assert again["last_insert_id"] == first["last_insert_id"]
        assert await _count(cluster, "idem3@x") == 1
        st, bad = await run2.post("/query", {**body, "request_id": "x" * 300})
        assert st == 400 and bad["code"] == "bad_field"
    finally:
        await run2.stop()
