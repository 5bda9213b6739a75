"""The user-facing scripts against a real coordinator process and the session cluster:
scripts/stress.py, scripts/reset.py and scripts/bench.py (issue 6)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from tests.conftest import CoordinatorProcess, config_data, direct, wait_for, wipe

pytestmark = pytest.mark.mariadb

ROOT = Path(__file__).resolve().parent.parent


async def run_script(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, *args]
    return await asyncio.to_thread(subprocess.run, cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def coord(cluster, tmp_path_factory) -> AsyncIterator[CoordinatorProcess]:  # noqa: ANN001
    cluster.heal()
    await wipe(cluster)
    data = config_data(cluster, replication={"write_timeout_s": 5.0})
    proc = CoordinatorProcess(data, tmp_path_factory.mktemp("scripts"))
    proc.start()
    try:
        async with aiohttp.ClientSession() as s:
            await proc.wait_ready(s, timeout=60)
        yield proc
    finally:
        proc.terminate()
        cluster.heal()


def args_for(proc: CoordinatorProcess) -> list[str]:
    return ["--config", str(proc.path)]


async def metrics(proc: CoordinatorProcess) -> dict[str, Any]:
    url = f"http://127.0.0.1:{proc.data['ports']['metrics']}/metrics"
    async with aiohttp.ClientSession() as s, s.get(url) as r:
        body = await r.json()
    return {x["replica_id"]: x for x in body["replicas"]}


async def test_stress_all_runs_unattended_and_every_check_passes(coord, tmp_path) -> None:  # noqa: ANN001
    out = tmp_path / "stress.json"
    res = await run_script("scripts/stress.py", "--scenario", "all", "--writes", "60", "--clients", "8",
                           "--duration", "2", "--json", str(out), *args_for(coord))
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]
    report = json.loads(out.read_text())
    scenarios = {c["scenario"] for c in report["checks"]}
    assert {"concurrent", "performance", "lag", "compare", "failover"} <= scenarios
    assert all(c["ok"] is not False for c in report["checks"])
    assert "✗" not in res.stdout
    for line in ("All writes received unique, ordered timestamps", "Quorum achieved for all writes",
                 "All replicas updated", "SEER elected", "No acknowledged write lost", "left the cabinet"):
        assert line in res.stdout, line
    fig = report["figures"]
    assert fig["concurrent"]["successful"] == 60
    assert fig["performance"]["latency_client"]["p99_ms"] >= fig["performance"]["latency_client"]["p50_ms"] > 0
    assert len(fig["compare"]["cells"]) == 6
    assert fig["failover"]["new_master"] != fig["failover"]["old_master"]
    # the scenario put everything back: mode restored, no fault left, every replica healthy
    m = await metrics(coord)
    assert all(x["is_healthy"] for x in m.values())


async def test_concurrent_reports_a_replica_that_lost_rows(cluster, coord) -> None:  # noqa: ANN001
    # behind the coordinator's back, replica-2 stores every stress row under another email:
    # the rows the coordinator acknowledged are not there, though it applied every entry
    await direct(cluster, "replica-2", "DROP TRIGGER IF EXISTS lose_rows")
    await direct(cluster, "replica-2", "CREATE TRIGGER lose_rows BEFORE INSERT ON users FOR EACH ROW "
                 "IF NEW.email LIKE '%@stress.local' THEN SET NEW.email = CONCAT('lost-', NEW.email); END IF")
    try:
        res = await run_script("scripts/stress.py", "--scenario", "concurrent", "--writes", "20", "--clients", "4",
                               "--settle", "2", *args_for(coord))
    finally:
        await direct(cluster, "replica-2", "DROP TRIGGER IF EXISTS lose_rows")
    assert res.returncode != 0, res.stdout
    assert "✗ All replicas updated" in res.stdout
    assert "mysql-replica-2 lacks 20 acknowledged rows" in res.stdout
    assert "✓ Successful: 20/20" in res.stdout  # the other checks still pass: only the broken one fails


async def test_reset_empties_every_replica_and_restarts_timestamps(cluster, coord) -> None:  # noqa: ANN001
    # populated by the tests above (and one more row to be sure)
    async with aiohttp.ClientSession() as s:
        async with s.post(coord.url + "/query", json={"query": "INSERT INTO products (name, price) VALUES ('p', 1)"}) as r:
            assert r.status == 200
    res = await run_script("scripts/reset.py", *args_for(coord))
    assert res.returncode == 0, res.stdout + res.stderr
    assert "✗" not in res.stdout
    assert "the next write gets timestamp 1" in res.stdout
    for name in cluster.node_names():
        for table in ("users", "products"):
            assert (await direct(cluster, name, f"SELECT COUNT(*) FROM {table}"))[0][0] == 0, (name, table)
    async with aiohttp.ClientSession() as s:
        async with s.post(coord.url + "/query",
                          json={"query": "INSERT INTO users (name, email) VALUES ('a', 'first@x')"}) as r:
            body = await r.json()
    assert body["timestamp"] == 1, body


async def test_reset_with_a_replica_down_names_it(cluster, coord) -> None:  # noqa: ANN001
    cluster.stop("replica-2")
    try:
        async def seen_down() -> bool:
            return not (await metrics(coord))["replica-2"]["is_healthy"]

        await wait_for(seen_down, 15, "replica-2 reported down")
        res = await run_script("scripts/reset.py", *args_for(coord))
        assert res.returncode == 2, res.stdout
        assert "✗ mysql-replica-2 is down" in res.stdout
        assert "scripts/cluster.py start replica-2" in res.stdout
    finally:
        cluster.start("replica-2")

    async def back() -> bool:
        return (await metrics(coord))["replica-2"]["is_healthy"]

    await wait_for(back, 30, "replica-2 healthy again")


def test_stress_without_coordinator_exits_non_zero(tmp_path) -> None:  # noqa: ANN001
    res = subprocess.run([sys.executable, "scripts/stress.py", "--scenario", "concurrent", "--url",
                          "http://127.0.0.1:9", "--metrics-url", "http://127.0.0.1:9"], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert res.returncode != 0
    assert "python -m coordinator" in res.stdout


