"""Shared fixtures: the session's local MariaDB cluster and in-process coordinators on it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import asyncmy
import pytest
import pytest_asyncio
from hypothesis import settings as hypothesis_settings

from coordinator import config as cfgmod
from coordinator.http.server import serve
from coordinator.service import Coordinator
from devcluster.cluster import LocalCluster
from tests.clusterfixtures import cluster, free_port  # noqa: F401  (re-exported fixture)

SCHEMA = "_coordinator"


def make_config(cl: LocalCluster, **sections: dict[str, Any]) -> cfgmod.Config:
    """A config for ``cl`` (through the fault proxies) with HTTP on free ports."""
    return cfgmod.from_dict(config_data(cl, **sections), "<test>", env={})


def config_data(cl: LocalCluster, **sections: dict[str, Any]) -> dict[str, Any]:
    names = cl.node_names()
    leader = names[-1]
    replicas = []
    for name in [leader] + names[:-1]:
        host, port = cl.address(name)
        replicas.append({"id": name, "name": f"mysql-{name}", "host": host, "port": port, "leader": name == leader})
    data: dict[str, Any] = {
        "replicas": replicas,
        "ports": {k: free_port() for k in ("gateway", "timestamp_odd", "timestamp_even", "metrics", "cabinet", "seer",
                                           "mysql")},
        "coordinator": {"log_level": "warning"},
        "mysql": {"connect_timeout_s": 1.0, "query_timeout_s": 3.0},
        "replication": {"write_timeout_s": 5.0},
        "control": {"backend": "local", "cluster_dir": str(cl.directory)},
    }
    for section, values in sections.items():
        data.setdefault(section, {}).update(values)
    return data


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return repr(v)


def to_toml(data: dict[str, Any]) -> str:
    lines = []
    for section, values in data.items():
        if section == "replicas":
            continue
        lines.append(f"[{section}]")
        lines += [f"{k} = {_toml_value(v)}" for k, v in values.items()]
    for rep in data["replicas"]:
        lines.append("[[replicas]]")
        lines += [f"{k} = {_toml_value(v)}" for k, v in rep.items()]
    return "\n".join(lines) + "\n"


class CoordinatorProcess:
    """The coordinator as a real process (for kill -9 and two-coordinator tests)."""

    def __init__(self, data: dict[str, Any], directory: Any) -> None:
        self.data = data
        self.path = directory / f"coord-{data['ports']['gateway']}.toml"
        self.path.write_text(to_toml(data))
        self.log = directory / f"coord-{data['ports']['gateway']}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.data['ports']['gateway']}"

    def start(self) -> None:
        out = open(self.log, "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "coordinator", "--config", str(self.path)],
                                     stdout=out, stderr=subprocess.STDOUT, cwd=Path(__file__).resolve().parent.parent)

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def terminate(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    async def wait_ready(self, session: aiohttp.ClientSession, timeout: float = 30) -> None:
        async def ready() -> bool:
            try:
                async with session.get(self.url + "/status") as st:
                    if st.status != 200 or not (await st.json()).get("ready"):
                        return False
                async with session.post(self.url + "/query", json={"query": "SELECT COUNT(*) FROM products"}) as r:
                    return r.status == 200
            except (aiohttp.ClientError, ValueError):
                return False

        await wait_for(ready, timeout, f"coordinator on {self.url} (log {self.log})", interval=0.1)


async def direct(cl: LocalCluster, name: str, sql: str, db: str | None = "testdb") -> list[tuple[Any, ...]]:
    """Run one query on a replica's server directly (bypassing its fault proxy)."""
    host, port = cl.address(name, direct=True)
    conn = await asyncio.wait_for(asyncmy.connect(host=host, port=port, user="root", password="", db=db,
                                                  autocommit=True), 5)
    try:
        async with conn.cursor() as cur:
            await asyncio.wait_for(cur.execute(sql), 30)
            return list(await cur.fetchall())
    finally:
        conn.close()


async def wipe(cl: LocalCluster) -> None:
    for name in cl.node_names():
        await direct(cl, name, f"DROP DATABASE IF EXISTS testdb; DROP DATABASE IF EXISTS {SCHEMA}; "
                     "CREATE DATABASE testdb", db=None)


async def wait_for(cond: Callable[[], Awaitable[bool]], timeout: float, what: str, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if await cond():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(interval)


async def table_digest(cl: LocalCluster, name: str) -> dict[str, Any]:
    """Contents of every testdb table, ordered, as comparable data."""
    out = {}
    for (table,) in await direct(cl, name, "SHOW TABLES"):
        out[table] = await direct(cl, name, f"SELECT * FROM `{table}` ORDER BY 1")
    return out


@dataclass
class Running:
    coord: Coordinator
    cfg: cfgmod.Config
    runners: list[Any]
    session: aiohttp.ClientSession

    def url(self, port_name: str = "gateway", path: str = "") -> str:
        return f"http://127.0.0.1:{getattr(self.cfg.ports, port_name)}{path}"

    async def post(self, path: str, body: Any, port: str = "gateway") -> tuple[int, dict[str, Any]]:
        async with self.session.post(self.url(port, path), json=body) as resp:
            return resp.status, await resp.json()

    async def get(self, path: str, port: str = "gateway") -> tuple[int, dict[str, Any]]:
        async with self.session.get(self.url(port, path)) as resp:
            return resp.status, await resp.json()

    async def open_transactions(self) -> dict[str, Any]:
        """GET /admin/transactions: the open interactive transactions and pinned connections."""
        st, body = await self.get("/admin/transactions")
        assert st == 200, body
        return body

    async def write(self, sql: str, params: Any = None) -> tuple[int, dict[str, Any]]:
        return await self.post("/query", {"query": sql, **({"params": params} if params is not None else {})})

    async def stop(self) -> None:
        await self.coord.stop()
        for r in reversed(self.runners):
            await r.cleanup()


async def start_coordinator(cfg: cfgmod.Config, session: aiohttp.ClientSession, wait_tables: bool = True) -> Running:
    coord = Coordinator(cfg)
    runners = await serve(coord)
    await coord.start()
    run = Running(coord, cfg, runners, session)
    await asyncio.wait_for(coord.ready.wait(), 30)

    async def tables_ready() -> bool:
        st, body = await run.post("/query", {"query": "SELECT COUNT(*) AS n FROM products"})
        return st == 200

    if wait_tables:
        await wait_for(tables_ready, 30, "demo tables")
    return run


@pytest_asyncio.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as s:
        yield s


@pytest_asyncio.fixture
async def fresh(cluster: LocalCluster, http: aiohttp.ClientSession) -> AsyncIterator[Running]:  # noqa: F811
    """A coordinator on a wiped session cluster; stopped (and faults healed) afterwards."""
    cluster.heal()
    await wipe(cluster)
    run = await start_coordinator(make_config(cluster), http)
    try:
        yield run
    finally:
        cluster.heal()
        with contextlib.suppress(Exception):
            await run.stop()


# No per-example deadline: the property tests run beside the server tests (scripts/test.sh), whose load
# would make a wall-clock limit flaky; each test bounds its work by max_examples instead.
hypothesis_settings.register_profile("suite", deadline=None)
hypothesis_settings.load_profile("suite")

SERVERS = "servers"  # the xdist group of every test that runs real servers: one worker runs them, in order


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that use MariaDB are marked ``mariadb`` and grouped: under ``-n 2 --dist loadgroup``
    (scripts/test.sh) one worker runs all of them one at a time, as without xdist (they share the
    session cluster, and the machine has two cores), while the other runs the pure tests (core,
    simulation, properties) beside them."""
    for item in items:
        if "cluster" in getattr(item, "fixturenames", ()) or "fresh" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.mariadb)
        if item.get_closest_marker("mariadb") is not None:
            item.add_marker(pytest.mark.xdist_group(SERVERS))
    # the bench runs last, when the pure tests on the other worker are long done: its figures (all
    # 1,024 clients connected at once, say) are about the machine's speed
    items.sort(key=lambda item: item.path.name == "test_bench_quick.py")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Under xdist, a worker running a pure test lowers its own CPU priority, so the servers, the
    coordinator and the load generators of the other worker's tests (some of them timing-sensitive)
    come first; a worker about to run a server test takes normal priority back (before its fixtures
    start servers, which inherit it). Only as root, who can take it back; elsewhere it is left alone."""
    if not os.environ.get("PYTEST_XDIST_WORKER") or os.geteuid() != 0:
        return
    nice = 0 if item.get_closest_marker("mariadb") is not None else 10
    with contextlib.suppress(OSError):
        if os.getpriority(os.PRIO_PROCESS, 0) != nice:
            os.setpriority(os.PRIO_PROCESS, 0, nice)


def _forbidden_skip(rep: pytest.TestReport | pytest.CollectReport) -> str | None:
    """Under the test command (QC_NO_SKIPS=1, set by scripts/test.sh, which installs every tool)
    the reason of a skip that must fail; None when skips are allowed or the report is no skip.
    Only a skip whose reason starts with "environment:" (something no install can provide) stays."""
    if os.environ.get("QC_NO_SKIPS") != "1" or not rep.skipped or hasattr(rep, "wasxfail"):
        return None
    reason = rep.longrepr[2] if isinstance(rep.longrepr, tuple) else str(rep.longrepr)
    if reason.removeprefix("Skipped: ").startswith("environment:"):
        return None
    return reason


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """A skipped test is a failure under the test command: a missing client must not turn its
    tests into a silent pass (see ``_forbidden_skip``)."""
    outcome = yield
    rep = outcome.get_result()
    reason = _forbidden_skip(rep)
    if reason is not None:
        rep.outcome = "failed"
        rep.longrepr = f"skipped under the test command, which installs everything it needs: {reason}"


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Any:
    """The same for a skip while collecting (``pytest.skip(..., allow_module_level=True)``, e.g. in
    tests/browser.py, or ``pytest.importorskip`` at module level): it never reaches
    ``pytest_runtest_makereport``, and would drop the whole module with exit status 0. Under the
    test command it becomes a collection error instead (pytest then exits non-zero)."""
    outcome = yield
    rep = outcome.get_result()
    reason = _forbidden_skip(rep)
    if reason is not None:
        rep.outcome = "failed"
        rep.longrepr = (f"{collector.nodeid or collector.path}: module skipped while collecting, under the test "
                        f"command, which installs everything it needs: {reason}")
