"""The HTTP contract keeps its types in every state (the old system's clients format and
sort these fields): every read-only endpoint of :8000–:8005 checked against its schema
(``tests/contract.py``) before the first poll, healthy, with a follower down, paused and
partitioned, while a replica is rebuilt, during and right after a failover, with the
leader stopped, and with the coordinator fenced; the admin POSTs checked as they act."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from typing import Any

import aiohttp
import pytest

from coordinator.http.server import serve
from coordinator.service import Coordinator
from tests import contract
from tests.conftest import Running, direct, make_config, start_coordinator, wait_for, wipe

pytestmark = pytest.mark.mariadb


def old_client_prints(metrics: dict[str, Any], election: dict[str, Any] | None) -> list[str]:
    """What the old system's stress script and dashboard do with these fields."""
    lines = []
    for m in sorted(metrics["replicas"], key=lambda m: m["latency_ms"]):
        lines.append(f"{m['replica_id']}: latency {m['latency_ms']:.2f} ms, uptime {m['uptime_seconds']:.2f} s, "
                     f"lagging {m['replication_lag'] > 0}")
    if election is not None:
        lines.append(f"leader {election['leader_id']} score {election['score']:.2f}")
    return lines


class Prober:
    """Hits every read-only endpoint; records problems and which states were seen."""

    def __init__(self, coord: Coordinator, session: aiohttp.ClientSession) -> None:
        self.coord, self.session = coord, session
        self.problems: list[str] = []
        self.seen: Counter[str] = Counter()
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    def url(self, port: str, path: str) -> str:
        return f"http://127.0.0.1:{getattr(self.coord.cfg.ports, port)}{path}"

    async def _one(self, ep: contract.Endpoint) -> tuple[int, Any]:
        kwargs = {"json": ep.body} if ep.method == "POST" else {}
        async with self.session.request(ep.method, self.url(ep.port, ep.path), **kwargs) as r:
            return r.status, await r.json()

    async def round(self, state: str) -> None:
        answers = await asyncio.gather(*(self._one(ep) for ep in contract.READ_ONLY))
        for ep, (status, body) in zip(contract.READ_ONLY, answers):
            self.problems += [f"[{state}] {p}" for p in contract.check_response(ep, status, body)]
        by_path = {(ep.port, ep.path): (st, b) for ep, (st, b) in zip(contract.READ_ONLY, answers)}
        st, election = by_path[("seer", "/elect-leader")]
        if not self.problems:
            old_client_prints(by_path[("metrics", "/metrics")][1], election if st == 200 else None)
        self.seen[state] += 1

    async def rounds(self, state: str, n: int = 3) -> None:
        for _ in range(n):
            await self.round(state)

    def _label(self) -> str:
        r = self.coord.replicator
        if r.fenced:
            return "fenced"
        if self.coord.failover.busy:
            return "failover"
        if any(rs.rebuilding for rs in r.replicas.values()):
            return "rebuilding"
        return "background"

    async def _loop(self) -> None:
        while not self._stop.is_set():
            await self.round(self._label())
            await asyncio.sleep(0.005)

    @contextlib.asynccontextmanager
    async def background(self) -> Any:
        self._stop.clear()
        self._task = asyncio.create_task(self._loop())
        try:
            yield
        finally:
            self._stop.set()
            await self._task

    def assert_clean(self) -> None:
        assert not self.problems, "\n".join(self.problems[:20])


async def post(session: aiohttp.ClientSession, url: str, body: Any) -> tuple[int, Any]:
    async with session.post(url, json=body) as r:
        return r.status, await r.json()


def assert_shape(schema: dict[str, Any], status: int, body: Any, what: str) -> None:
    assert status == 200, (what, status, body)
    problems = contract.check(schema, body)
    assert not problems, (what, problems)


async def test_contract_types_in_every_state(cluster, http: aiohttp.ClientSession) -> None:  # noqa: PLR0915
    cluster.heal()
    await wipe(cluster)
    cfg = make_config(cluster)
    coord = Coordinator(cfg)
    runners = await serve(coord)
    probe = Prober(coord, http)
    run = Running(coord, cfg, runners, http)
    second: Running | None = None
    r = coord.replicator
    trackers = coord.replicator.health

    async def healthy(*rids: str) -> None:
        async def ok() -> bool:
            return all(r.replicas[x].available and r.replicas[x].applied_ts >= r.commit_ts for x in rids)
        await wait_for(ok, 60, f"{rids} available and caught up")

    async def down(rid: str) -> None:
        async def ok() -> bool:
            return not trackers[rid].healthy
        await wait_for(ok, 10, f"{rid} seen down")

    try:
        # 1. the HTTP ports answer before the coordinator's first poll
        await probe.rounds("startup", 2)
        assert not any(t.healthy for t in trackers.values())
        await coord.start()
        await asyncio.wait_for(coord.ready.wait(), 30)
        await wait_for(lambda: _tables(run), 30, "demo tables")
        await probe.rounds("healthy")

        # 2. a follower killed, paused, partitioned
        await asyncio.to_thread(cluster.kill, "replica-1")
        await down("replica-1")
        await probe.rounds("replica_killed")
        await asyncio.to_thread(cluster.start, "replica-1")
        await healthy("replica-1")
        await asyncio.to_thread(cluster.pause, "replica-2")
        await down("replica-2")
        await probe.rounds("replica_paused")
        await asyncio.to_thread(cluster.resume, "replica-2")
        await healthy("replica-2")
        await asyncio.to_thread(cluster.partition, "replica-3")
        await down("replica-3")
        await probe.rounds("replica_partitioned")
        await asyncio.to_thread(cluster.heal, "replica-3")
        await healthy("replica-3")

        # 3. a replica being rebuilt (diverged on purpose, rebuild slowed by a delay)
        rows = ",".join(f"('p{i}', {i % 97}.5)" for i in range(500))
        for _ in range(12):
            st, body = await run.write(f"INSERT INTO products (name, price) VALUES {rows}")
            assert st == 200, body
        await healthy("replica-1", "replica-2", "replica-3")
        await direct(cluster, "replica-3", "INSERT INTO users (name, email) VALUES ('x', 'contract@x')")
        await asyncio.to_thread(cluster.delay, "replica-3", 30)
        async with probe.background():
            st, _ = await run.write("INSERT INTO users (name, email) VALUES ('x', 'contract@x')")
            assert st == 200

            async def rebuilt() -> bool:
                return any(e["kind"] == "rebuild_done" for e in coord.events.recent(500))
            await wait_for(rebuilt, 60, "replica-3 rebuilt")
        await asyncio.to_thread(cluster.heal, "replica-3")
        assert probe.seen["rebuilding"] >= 1, probe.seen
        await healthy("replica-3")

        # 4. during and right after a failover (the leader hangs: SIGSTOP)
        old = r.leader_id
        for rid in r.replicas:  # a slower failover, so rounds run while it is under way
            if rid != old:
                await asyncio.to_thread(cluster.delay, rid, 60)
        async with probe.background():
            await asyncio.to_thread(cluster.pause, old)

            async def moved() -> bool:
                return r.leader_id != old and not coord.failover.busy
            await wait_for(moved, 30, "failover away from the paused leader")
        assert probe.seen["failover"] >= 1, probe.seen
        await asyncio.to_thread(cluster.heal)
        await probe.rounds("after_failover")
        await asyncio.to_thread(cluster.resume, old)
        await healthy(*r.replicas)

        # 5. the leader stopped through the admin API, then started again
        st, body = await post(http, run.url("gateway", "/admin/stop-master"), {})
        assert_shape(contract.FAILOVER, st, body, "stop-master")
        stopped = coord.failover.stopped_master
        assert stopped and body["new_leader_id"] != stopped
        await probe.rounds("leader_stopped")
        st, body = await post(http, run.url("gateway", "/admin/start-master"), {})
        assert_shape(contract.START_MASTER, st, body, "start-master")
        await healthy(*r.replicas)

        # 6. a planned switchover back to the original leader
        st, body = await post(http, run.url("gateway", "/admin/trigger-failover"), {"new_leader": "replica-4"})
        assert_shape(contract.FAILOVER, st, body, "trigger-failover")
        assert body["new_leader_id"] == "replica-4" and body["election_details"]["leader_id"] == "replica-4"
        st, body = await post(http, run.url("gateway", "/admin/trigger-failover"), {})
        assert_shape(contract.FAILOVER, st, body, "trigger-failover (SEER's choice)")

        # 7. fenced off by a second coordinator on the same replicas
        second = await start_coordinator(make_config(cluster), http)
        st, body = await run.write("INSERT INTO users (name, email) VALUES ('stale', 'stale@x')")
        assert st == 503
        await wait_for(lambda: _true(r.fenced), 10, "first coordinator fenced")
        await probe.rounds("fenced")
    finally:
        cluster.heal()
        if second is not None:
            with contextlib.suppress(Exception):
                await second.stop()
        with contextlib.suppress(Exception):
            await run.stop()
    print(dict(probe.seen))
    probe.assert_clean()
    for state in ("startup", "healthy", "replica_killed", "replica_paused", "replica_partitioned", "rebuilding",
                  "failover", "after_failover", "leader_stopped", "fenced"):
        assert probe.seen[state], (state, probe.seen)


async def _tables(run: Running) -> bool:
    st, _ = await run.post("/query", {"query": "SELECT COUNT(*) FROM products"})
    return st == 200


async def _true(value: bool) -> bool:
    return value
