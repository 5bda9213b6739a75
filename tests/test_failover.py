"""Failover, switchover, rejoin, catch-up and rebuild against the real cluster,
with a write load running where it matters (invariants I1, I2)."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.conftest import Running, direct, make_config, start_coordinator, table_digest, wait_for

pytestmark = pytest.mark.mariadb


class Load:
    """Concurrent unique inserts; records every acknowledged row and the longest gap
    between two successful writes (the client-visible unavailability)."""

    def __init__(self, run: Running, clients: int = 8, tag: str = "l") -> None:
        self.run, self.clients, self.tag = run, clients, tag
        self.acked: list[str] = []
        self.errors: list[tuple[int, str]] = []
        self.last_ok = time.monotonic()
        self.max_gap_s = 0.0
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def _client(self, k: int) -> None:
        i = 0
        while not self._stop.is_set():
            i += 1
            email = f"{self.tag}{k}-{i}@x"
            st, body = await self.run.write("INSERT INTO users (name, email) VALUES ('load', %s)", [email])
            now = time.monotonic()
            if st == 200:
                self.max_gap_s = max(self.max_gap_s, now - self.last_ok)
                self.last_ok = now
                self.acked.append(email)
            else:
                self.errors.append((st, body.get("code", "")))
                await asyncio.sleep(0.01)

    def start(self) -> None:
        self.last_ok = time.monotonic()
        self._tasks = [asyncio.create_task(self._client(k)) for k in range(self.clients)]

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)


async def converged_identical(cluster, run: Running, timeout: float = 60) -> dict:
    r = run.coord.replicator

    async def ok() -> bool:
        return all(rs.available and rs.applied_ts >= r.log.last_ts for rs in r.replicas.values())

    await wait_for(ok, timeout, "every replica available and caught up")
    d = {rid: await table_digest(cluster, rid) for rid in r.replicas}
    first = next(iter(d.values()))
    assert all(v == first for v in d.values()), "replicas differ"
    return first


def assert_all_present(data: dict, emails: list[str]) -> None:
    present = {row[2] for row in data["users"]}
    lost = [e for e in emails if e not in present]
    assert not lost, f"{len(lost)} acknowledged writes lost, e.g. {lost[:3]}"
    assert len(present) == len(data["users"]), "duplicate rows"


async def test_kill_leader_under_load_fails_over_and_rejoins(cluster, fresh: Running) -> None:
    run = fresh
    load = Load(run)
    load.start()
    await asyncio.sleep(2.0)
    cluster.kill("replica-4")
    killed = time.monotonic()
    try:
        async def new_leader() -> bool:
            return run.coord.replicator.leader_id != "replica-4"

        await wait_for(new_leader, 10, "a new leader")
        await asyncio.sleep(3.0)
    finally:
        await load.stop()
        gap = load.max_gap_s
        print(f"\nkill -9 of the leader: client-visible write gap {gap * 1000:.0f} ms "
              f"(failover {run.coord.failover.last_election['timings'] if run.coord.failover.last_election else None})")
        cluster.start("replica-4")
    st, s = await run.get("/status")
    assert s["current_master"] != "mysql-replica-4" and s["master_is_original"] is False
    assert len(load.acked) > 100
    assert gap < 5.0
    st, ev = await run.get("/admin/events?kind=failover")
    assert ev["events"] and "timings" in ev["events"][-1]
    data = await converged_identical(cluster, run)
    assert_all_present(data, load.acked)
    assert run.coord.replicator.replicas["replica-4"].applied_ts == run.coord.replicator.log.last_ts
    assert time.monotonic() - killed < 60


async def test_pause_leader_fails_over_by_timeout_and_old_leader_rejoins(cluster, fresh: Running) -> None:
    run = fresh
    load = Load(run, tag="p")
    load.start()
    await asyncio.sleep(1.5)
    cluster.pause("replica-4")
    try:
        async def new_leader() -> bool:
            return run.coord.replicator.leader_id != "replica-4"

        await wait_for(new_leader, 10, "failover after SIGSTOP")
        await asyncio.sleep(2.0)
    finally:
        await load.stop()
        cluster.resume("replica-4")
    print(f"\nSIGSTOP of the leader: client-visible write gap {load.max_gap_s * 1000:.0f} ms")
    assert load.max_gap_s < 5.0
    data = await converged_identical(cluster, run)
    assert_all_present(data, load.acked)


async def test_partitioned_follower_beyond_memory_log_catches_up(cluster, http) -> None:
    from tests.conftest import wipe
    await wipe(cluster)
    cfg = make_config(cluster, replication={"memory_log_entries": 50, "write_timeout_s": 5.0},
                      mysql={"query_timeout_s": 1.0})
    run = await start_coordinator(cfg, http)
    try:
        cluster.partition("replica-2")
        for i in range(200):
            st, _ = await run.write("INSERT INTO users (name, email) VALUES ('c', %s)", [f"cu{i}@x"])
            assert st == 200
        assert run.coord.replicator.log.floor_ts > run.coord.replicator.replicas["replica-2"].applied_ts
        cluster.heal("replica-2")
        data = await converged_identical(cluster, run)
        assert len(data["users"]) == 200
        kinds = {e["kind"] for e in run.coord.events.recent(500)}
        assert kinds & {"catchup_peer", "rebuild_done"}
    finally:
        cluster.heal()
        await run.stop()


async def test_diverged_follower_is_rebuilt_and_readmitted(cluster, fresh: Running) -> None:
    run = fresh
    st, _ = await run.write("INSERT INTO users (name, email) VALUES ('x', 'div0@x')")
    assert st == 200
    await converged_identical(cluster, run)
    # behind the coordinator's back: replica-3 already has the row the next write inserts
    await direct(cluster, "replica-3", "INSERT INTO users (name, email) VALUES ('x', 'div1@x')")
    st, _ = await run.write("INSERT INTO users (name, email) VALUES ('x', 'div1@x')")
    assert st == 200

    async def diverged_seen() -> bool:
        return any(e["kind"] == "replica_diverged" for e in run.coord.events.recent(200))

    await wait_for(diverged_seen, 10, "replica-3 marked diverged")
    for i in range(20):
        st, _ = await run.write("INSERT INTO users (name, email) VALUES ('x', %s)", [f"div{i + 2}@x"])
        assert st == 200

    async def rebuilt() -> bool:
        return any(e["kind"] == "rebuild_done" and e.get("replica") == "replica-3"
                   for e in run.coord.events.recent(500))

    await wait_for(rebuilt, 30, "replica-3 rebuilt")
    data = await converged_identical(cluster, run)
    assert len(data["users"]) == 22
    assert not run.coord.replicator.replicas["replica-3"].diverged


async def test_seer_avoids_a_slow_candidate_and_explains(cluster, fresh: Running) -> None:
    run = fresh
    cluster.delay("replica-1", 80)
    try:
        for i in range(30):  # let latencies be measured
            await run.write("INSERT INTO users (name, email) VALUES ('s', %s)", [f"seer{i}@x"])
        await asyncio.sleep(1.0)
        st, body = await run.post("/elect-leader", {"exclude_replicas": ["replica-4"]}, port="seer")
        assert st == 200, body
        assert body["leader_id"] not in ("replica-1", "replica-4")
        cands = {c["id"]: c for c in body["candidates"]}
        assert cands["replica-4"]["eligible"] is False and cands["replica-4"]["reason"] == "excluded"
        assert cands["replica-1"]["eligible"] is True
        assert cands["replica-1"]["predicted_commit_ms"] > cands[body["leader_id"]]["predicted_commit_ms"]
        st, none = await run.post("/elect-leader", {"exclude_replicas": ["replica-1", "replica-2", "replica-3",
                                                                         "replica-4"]}, port="seer")
        assert st == 503 and none["success"] is False
    finally:
        cluster.heal("replica-1")


async def test_trigger_failover_to_named_replica_under_load(cluster, fresh: Running) -> None:
    run = fresh
    load = Load(run, tag="t")
    load.start()
    await asyncio.sleep(1.5)
    try:
        st, body = await run.post("/admin/trigger-failover", {"new_leader": "replica-2"})
        assert st == 200, body
        assert body["new_master"] == "mysql-replica-2" and body["old_master"] == "mysql-replica-4"
        await asyncio.sleep(1.5)
    finally:
        await load.stop()
    print(f"\nplanned switchover: client-visible write gap {load.max_gap_s * 1000:.0f} ms")
    assert load.max_gap_s < 1.0
    assert not [e for e in load.errors if e[0] != 503]
    data = await converged_identical(cluster, run)
    assert_all_present(data, load.acked)
    st, bad = await run.post("/admin/trigger-failover", {"new_leader": "replica-2"})
    assert st == 409


async def test_stop_and_start_master(cluster, fresh: Running) -> None:
    run = fresh
    st, body = await run.post("/admin/stop-master", {})
    try:
        assert st == 200, body
        assert body["old_master"] == "mysql-replica-4" and body["new_master"] != "mysql-replica-4"
        assert body["election_details"]["leader_id"] == body["new_leader_id"]
        for i in range(10):
            st, _ = await run.write("INSERT INTO users (name, email) VALUES ('m', %s)", [f"sm{i}@x"])
            assert st == 200
    finally:
        st2, started = await run.post("/admin/start-master", {})
    assert st2 == 200, started
    assert started["started"] == "mysql-replica-4" and started["role"] == "follower" and started["caught_up"]
    await converged_identical(cluster, run)
