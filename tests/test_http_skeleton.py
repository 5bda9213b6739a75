"""The six-port HTTP contract (README, "The HTTP contract") against the real local cluster: health shapes,
JSON errors everywhere (404, 405, 400 invalid JSON, 413), metrics, Cabinet, admin mode and
events, and a start with one replica down."""

from __future__ import annotations

import contextlib
from typing import Any

import aiohttp
import pytest

from devcluster.cluster import LocalCluster
from tests.conftest import Running, make_config, start_coordinator, wait_for, wipe

pytestmark = pytest.mark.mariadb

PORTS = ("gateway", "timestamp_odd", "timestamp_even", "metrics", "cabinet", "seer")
METRIC_FIELDS = {"replica_id", "latency_ms", "replication_lag", "uptime_seconds", "crash_count", "is_healthy",
                 "is_master", "last_updated", "applied_timestamp", "lag_ms", "weight"}


def assert_error(status: int, body: dict[str, Any], want_status: int, code: str | None = None) -> None:
    assert status == want_status, (status, body)
    assert body["success"] is False
    assert isinstance(body["error"], str) and body["error"]
    assert body["detail"] == body["error"]
    assert isinstance(body["code"], str) and body["code"]
    if code is not None:
        assert body["code"] == code, body


async def raw(run: Running, method: str, path: str, port: str = "gateway", data: bytes | None = None,
              headers: dict[str, str] | None = None) -> tuple[int, str, dict[str, Any]]:
    async with run.session.request(method, run.url(port, path), data=data, headers=headers) as resp:
        ctype = resp.headers.get("Content-Type", "")
        assert ctype.startswith("application/json"), (resp.status, ctype, await resp.text())
        return resp.status, ctype, await resp.json()


async def test_health_on_all_six_ports(fresh: Running) -> None:
    services = {}
    for port in PORTS:
        st, body = await fresh.get("/health", port)
        assert st == 200, (port, body)
        extra = {"server_id", "current_counter"} if port.startswith("timestamp") else set()
        assert set(body) == {"status", "service"} | extra, body
        assert body["status"] == "healthy"
        assert isinstance(body["service"], str) and body["service"]
        services[port] = body["service"]
    assert services["gateway"] == "coordinator"
    assert len(set(services.values())) == len(PORTS), services


async def test_unknown_path_is_json_404_on_every_port(fresh: Running) -> None:
    for port in PORTS:
        st, _, body = await raw(fresh, "GET", "/no/such/thing", port)
        assert_error(st, body, 404)
    st, _, body = await raw(fresh, "POST", "/nope", data=b"{}", headers={"Content-Type": "application/json"})
    assert_error(st, body, 404)


async def test_wrong_method_is_json_405(fresh: Running) -> None:
    st, _, body = await raw(fresh, "GET", "/query")
    assert_error(st, body, 405)
    st, _, body = await raw(fresh, "DELETE", "/status")
    assert_error(st, body, 405)
    st, _, body = await raw(fresh, "POST", "/health", port="metrics", data=b"{}")
    assert_error(st, body, 405)
    st, _, body = await raw(fresh, "GET", "/select-quorum", port="cabinet")
    assert_error(st, body, 405)


@pytest.mark.parametrize("payload", [b"{not json", b'{"query": "SELECT 1",}', b"\xff\xfe", b'{"query": '])
async def test_invalid_json_on_query(fresh: Running, payload: bytes) -> None:
    st, _, body = await raw(fresh, "POST", "/query", data=payload, headers={"Content-Type": "application/json"})
    assert_error(st, body, 400, "invalid_json")


async def test_json_that_is_not_an_object(fresh: Running) -> None:
    st, _, body = await raw(fresh, "POST", "/query", data=b'["SELECT 1"]', headers={"Content-Type": "application/json"})
    assert_error(st, body, 400)


async def test_metrics_unknown_replica(fresh: Running) -> None:
    st, _, body = await raw(fresh, "GET", "/metrics/nope", port="metrics")
    assert_error(st, body, 404)
    assert "nope" in body["error"]
    st, one = await fresh.get("/metrics/replica-2", "metrics")
    assert st == 200 and one["replica_id"] == "replica-2"
    st, by_name = await fresh.get("/metrics/mysql-replica-2", "metrics")
    assert st == 200 and by_name["replica_id"] == "replica-2"


async def test_select_quorum_shape(fresh: Running) -> None:
    st, body = await fresh.post("/select-quorum", {"operation": "write"}, port="cabinet")
    assert st == 200, body
    ids = {r.id for r in fresh.cfg.replicas}
    leader = fresh.cfg.initial_leader.id
    assert body["mode"] == "cabinet"
    assert body["failure_threshold"] == 1
    assert body["total_replicas"] == 4
    assert body["quorum"][0] == leader
    assert body["quorum_size"] == len(body["quorum"]) == 2  # t + 1
    assert set(body["quorum"]) <= ids and len(set(body["quorum"])) == 2
    weights = body["weights"]
    assert set(weights) == ids
    assert body["threshold"] == pytest.approx(sum(weights.values()) / 2)
    # the cabinet holds the highest weights, the leader the very highest
    ranked = sorted(weights, key=weights.__getitem__, reverse=True)
    assert set(ranked[:2]) == set(body["quorum"])
    assert weights[leader] == max(weights.values())
    # the cabinet alone is above the threshold; any single node is not (t = 1)
    assert sum(weights[r] for r in body["quorum"]) > body["threshold"]
    assert all(w <= body["threshold"] for w in weights.values())
    st2, body2 = await fresh.post("/select-quorum", {}, port="cabinet")
    assert st2 == 200 and body2["quorum"][0] == leader
    st3, _, bad = await raw(fresh, "POST", "/select-quorum", "cabinet", data=b'{"operation": "delete"}',
                            headers={"Content-Type": "application/json"})
    assert_error(st3, bad, 400)


async def test_metrics_shape(fresh: Running) -> None:
    st, w = await fresh.write("INSERT INTO users (name, email) VALUES ('m', 'm@example.com')")
    assert st == 200, w

    async def all_applied() -> bool:
        _, body = await fresh.get("/metrics", "metrics")
        return all(r["applied_timestamp"] >= w["timestamp"] for r in body["replicas"])

    await wait_for(all_applied, 15, "every replica to apply the write")
    st, body = await fresh.get("/metrics", "metrics")
    assert st == 200
    assert isinstance(body["master_timestamp"], int) and body["master_timestamp"] >= w["timestamp"]
    reps = body["replicas"]
    assert sorted(r["replica_id"] for r in reps) == sorted(r.id for r in fresh.cfg.replicas)
    for r in reps:
        assert METRIC_FIELDS <= set(r), METRIC_FIELDS - set(r)
        assert r["is_healthy"] is True
        assert r["is_master"] is (r["replica_id"] == fresh.cfg.initial_leader.id)
        assert isinstance(r["weight"], float) and r["weight"] > 0
        assert isinstance(r["crash_count"], int) and r["crash_count"] >= 0
        assert isinstance(r["replication_lag"], int) and r["replication_lag"] >= 0
        assert isinstance(r["uptime_seconds"], (int, float)) and r["uptime_seconds"] >= 0
        assert isinstance(r["last_updated"], (int, float))
        assert isinstance(r["applied_timestamp"], int) and r["applied_timestamp"] >= w["timestamp"]
        assert isinstance(r["latency_ms"], float) and r["latency_ms"] > 0  # the poll round trip, leader too
    assert sum(r["is_master"] for r in reps) == 1


async def test_replication_mode_admin(fresh: Running) -> None:
    for bad in ({"mode": "raft"}, {"mode": ""}, {"mode": 3}, {}):
        st, body = await fresh.post("/admin/replication-mode", bad)
        assert_error(st, body, 400)
        st, status = await fresh.get("/status")
        assert status["mode"] == "cabinet"
    st, body = await fresh.post("/admin/replication-mode", {"mode": "majority"})
    assert st == 200 and body["success"] is True and body["mode"] == "majority" and body["previous"] == "cabinet"
    _, status = await fresh.get("/status")
    assert status["mode"] == "majority"
    _, q = await fresh.post("/select-quorum", {"operation": "write"}, port="cabinet")
    assert q["mode"] == "majority"
    st, w = await fresh.write("INSERT INTO users (name, email) VALUES ('maj', 'maj@example.com')")
    assert st == 200 and w["quorum"]["mode"] == "majority"
    st, _ = await fresh.post("/admin/replication-mode", {"mode": "cabinet"})
    assert st == 200
    _, status = await fresh.get("/status")
    assert status["mode"] == "cabinet"
    _, ev = await fresh.get("/admin/events?kind=mode")
    assert [(e["old"], e["new"]) for e in ev["events"]] == [("cabinet", "majority"), ("majority", "cabinet")]


async def test_admin_events_list_epoch(fresh: Running) -> None:
    st, body = await fresh.get("/admin/events")
    assert st == 200
    events = body["events"]
    assert events, body
    ids = [e["id"] for e in events]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    epochs = [e for e in events if e["kind"] == "epoch"]
    assert len(epochs) == 1, events
    _, status = await fresh.get("/status")
    assert epochs[0]["epoch"] == status["epoch"] >= 1
    assert isinstance(epochs[0]["message"], str) and isinstance(epochs[0]["time"], float)
    _, only = await fresh.get("/admin/events?kind=epoch")
    assert [e["id"] for e in only["events"]] == [epochs[0]["id"]]
    _, later = await fresh.get(f"/admin/events?since={ids[-1]}")
    assert later["events"] == [] or all(e["id"] > ids[-1] for e in later["events"])
    st, bad = await fresh.get("/admin/events?since=abc")
    assert_error(st, bad, 400)


# --- coordinators of our own ------------------------------------------------------------------


async def test_body_over_limit_is_json_413(cluster: LocalCluster, http: aiohttp.ClientSession) -> None:
    cluster.heal()
    await wipe(cluster)
    run = await start_coordinator(make_config(cluster, coordinator={"max_body_bytes": 1000}), http)
    try:
        small = {"query": "SELECT %s AS v", "params": ["x" * 500]}
        st, body = await run.post("/query", small)
        assert st == 200 and body["data"] == [{"v": "x" * 500}], body
        big = {"query": "SELECT %s AS v", "params": ["x" * 5000]}
        st, body = await run.post("/query", big)
        assert_error(st, body, 413)
        st, body = await run.post("/transaction", {"statements": [{"query": "DELETE FROM users WHERE name = %s",
                                                                   "params": ["y" * 2000]}]})
        assert_error(st, body, 413)
        st, body = await run.post("/select-quorum", {"operation": "write", "pad": "z" * 2000}, port="cabinet")
        assert_error(st, body, 413)
        st, _ = await run.get("/health")
        assert st == 200  # still serving
    finally:
        await run.stop()


async def test_start_with_one_replica_down(cluster: LocalCluster, http: aiohttp.ClientSession) -> None:
    cluster.heal()
    await wipe(cluster)
    run: Running | None = None
    cluster.stop("replica-2")
    try:
        cfg = make_config(cluster)
        run = await start_coordinator(cfg, http)
        st, w = await run.write("INSERT INTO users (name, email) VALUES ('down', 'down@example.com')")
        assert st == 200 and w["success"] is True, w
        st, w2 = await run.post("/transaction", {"statements": [
            {"query": "INSERT INTO products (name, price) VALUES ('a', 1.5)"},
            {"query": "UPDATE products SET stock = 3 WHERE name = 'a'"},
        ]})
        assert st == 200 and w2["timestamp"] > w["timestamp"], w2
        st, rd = await run.post("/query", {"query": "SELECT stock FROM products WHERE name = 'a'"})
        assert st == 200 and rd["data"] == [{"stock": 3}]
        run_ = run

        async def others_healthy() -> bool:
            _, body = await run_.get("/metrics", "metrics")
            return all(r["is_healthy"] for r in body["replicas"] if r["replica_id"] != "replica-2")

        await wait_for(others_healthy, 15, "the three running replicas to be healthy")
        st, body = await run.get("/metrics", "metrics")
        assert st == 200
        by_id = {r["replica_id"]: r for r in body["replicas"]}
        assert by_id["replica-2"]["is_healthy"] is False
        assert by_id["replica-2"]["is_master"] is False
        assert by_id["replica-2"]["applied_timestamp"] < w2["timestamp"]
        st, one = await run.get("/metrics/replica-2", "metrics")
        assert st == 200 and one["is_healthy"] is False
        # the down node is not in the cabinet
        _, q = await run.post("/select-quorum", {"operation": "write"}, port="cabinet")
        assert "replica-2" not in q["quorum"]
        for port in PORTS:
            st, h = await run.get("/health", port)
            assert st == 200 and h["status"] == "healthy"
    finally:
        if run is not None:
            with contextlib.suppress(Exception):
                await run.stop()
        cluster.start("replica-2")
