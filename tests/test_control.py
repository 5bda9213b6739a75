"""Tests for the control backends (coordinator/control.py).

Why these tests: the admin endpoints are only as trustworthy as the faults they cause. The Docker
backend is checked by the exact commands it would run (no Docker engine needed), ``none`` by the
quality of its refusal, and the local backend against a real MariaDB cluster, from a client's
point of view (refused connections, working SELECTs, measurable delay). Every cluster test leaves
the shared session cluster running and healed, because other modules use it afterwards.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import asyncmy
import pytest

from coordinator.config import ReplicaConfig
from coordinator.control import ControlError, DockerControl, LocalControl, NoControl
from devcluster.cluster import LocalCluster

# the session `cluster` fixture comes from tests/conftest.py

REPLICAS = tuple(
    ReplicaConfig(id=f"replica-{i}", name=f"mysql-replica-{i}", host="127.0.0.1", port=3306 + (i % 4),
                  leader=i == 4)
    for i in (4, 1, 2, 3)
)
F = "/x/docker-compose.mysql.yml"
DC = ["docker", "compose", "-f", F]


class FakeRunner:
    """Records every argv; answers with a fixed (code, stdout, stderr) or raises."""

    def __init__(self, result: tuple[int, str, str] = (0, "", ""), exc: BaseException | None = None) -> None:
        self.calls: list[tuple[list[str], float]] = []
        self.result, self.exc = result, exc

    async def __call__(self, argv: list[str], timeout_s: float) -> tuple[int, str, str]:
        self.calls.append((argv, timeout_s))
        if self.exc is not None:
            raise self.exc
        return self.result


def docker(runner: FakeRunner, found: bool = True) -> DockerControl:
    return DockerControl(F, REPLICAS, runner=runner, which=lambda _n: "/usr/bin/docker" if found else None)


# --------------------------------------------------------------------------- docker


async def test_docker_process_commands() -> None:
    run = FakeRunner()
    dc = docker(run)
    assert dc.available and dc.reason == "" and dc.name == "docker"
    out = await dc.stop("replica-2")
    assert out == {"replica": "replica-2", "service": "mysql-replica-2", "action": "stop", "backend": "docker"}
    await dc.start("replica-2")
    await dc.kill("mysql-replica-3")  # instance names are accepted too
    await dc.pause("replica-1")
    await dc.resume("replica-1")
    assert [argv for argv, _t in run.calls] == [
        DC + ["stop", "mysql-replica-2"],
        DC + ["start", "mysql-replica-2"],
        DC + ["kill", "-s", "SIGKILL", "mysql-replica-3"],
        DC + ["pause", "mysql-replica-1"],
        DC + ["unpause", "mysql-replica-1"],
    ]
    assert all(t > 0 for _a, t in run.calls)


async def test_docker_fault_commands() -> None:
    run = FakeRunner()
    dc = docker(run)
    tc = DC + ["exec", "-T", "mysql-replica-2", "tc", "qdisc"]
    out = await dc.fault("replica-2", delay_ms=50)
    assert out["faults"] == {"delay_ms": 50, "partitioned": False}
    await dc.fault("replica-2", delay_ms=0)
    await dc.fault("replica-2", partition=True)
    assert (await dc.faults())["replica-2"] == {"delay_ms": 0, "partitioned": True}
    await dc.fault("replica-2")
    assert [argv for argv, _t in run.calls] == [
        tc + ["replace", "dev", "eth0", "root", "netem", "delay", "50ms"],
        tc + ["del", "dev", "eth0", "root"],
        tc + ["replace", "dev", "eth0", "root", "netem", "loss", "100%"],
        tc + ["del", "dev", "eth0", "root"],
    ]
    assert all(f == {"delay_ms": 0, "partitioned": False} for f in (await dc.faults()).values())


async def test_docker_partition_heal_restores_delay() -> None:
    run = FakeRunner()
    dc = docker(run)
    await dc.fault("replica-1", delay_ms=30)
    await dc.fault("replica-1", partition=True)
    await dc.fault("replica-1", partition=False)
    assert run.calls[-1][0][-3:] == ["netem", "delay", "30ms"]


async def test_docker_heal_without_qdisc_is_fine() -> None:
    dc = docker(FakeRunner((2, "", "Error: Cannot delete qdisc with handle of zero.\n")))
    out = await dc.fault("replica-1")
    assert out["faults"] == {"delay_ms": 0, "partitioned": False}


async def test_docker_nonzero_exit() -> None:
    dc = docker(FakeRunner((1, "", "line1\nno such service: mysql-replica-2\n")))
    with pytest.raises(ControlError) as err:
        await dc.stop("replica-2")
    assert (err.value.status, err.value.code) == (502, "control_failed")
    assert "no such service" in err.value.message
    with pytest.raises(ControlError) as err:
        await dc.fault("replica-2", delay_ms=5)
    assert err.value.status == 502 and "NET_ADMIN" in err.value.message


async def test_docker_timeout() -> None:
    dc = docker(FakeRunner(exc=TimeoutError()))
    with pytest.raises(ControlError) as err:
        await dc.pause("replica-3")
    assert (err.value.status, err.value.code) == (504, "control_timeout")


async def test_docker_unknown_replica() -> None:
    run = FakeRunner()
    with pytest.raises(ControlError) as err:
        await docker(run).kill("replica-9")
    assert (err.value.status, err.value.code) == (404, "unknown_replica")
    assert "replica-9" in err.value.message and "replica-1" in err.value.message
    assert run.calls == []


async def test_docker_missing() -> None:
    run = FakeRunner()
    dc = docker(run, found=False)
    assert not dc.available and "docker" in dc.reason
    for call in (dc.stop("replica-1"), dc.fault("replica-1", delay_ms=10)):
        with pytest.raises(ControlError) as err:
            await call
        assert (err.value.status, err.value.code) == (501, "no_control_backend")
    assert run.calls == []


async def test_real_runner_kills_on_timeout() -> None:
    from coordinator.control import run_process

    assert await run_process(["sh", "-c", "echo hi; echo oops >&2; exit 3"], 5) == (3, "hi\n", "oops\n")
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        await run_process(["sleep", "30"], 0.3)
    assert time.monotonic() - started < 5


# --------------------------------------------------------------------------- none


async def test_no_control_refuses_everything() -> None:
    nc = NoControl(REPLICAS)
    assert not nc.available and "none" in nc.reason
    calls: list[Any] = [nc.stop("replica-2"), nc.start("replica-2"), nc.kill("replica-2"), nc.pause("replica-2"),
                        nc.resume("replica-2"), nc.fault("replica-2", delay_ms=5), nc.fault("replica-2")]
    for call in calls:
        with pytest.raises(ControlError) as err:
            await call
        assert (err.value.status, err.value.code) == (501, "no_control_backend")
        assert "mysql-replica-2" in err.value.message and "yourself" in err.value.message
        assert "docker compose" in err.value.message
    with pytest.raises(ControlError) as err:
        await nc.stop("replica-2")
    assert "`docker compose stop mysql-replica-2`" in err.value.message
    assert "systemctl stop mariadb" in err.value.message
    assert await nc.faults() == {}


# --------------------------------------------------------------------------- local


async def test_local_missing_cluster_dir(tmp_path: Path) -> None:
    lc = LocalControl(tmp_path / "nowhere")
    assert not lc.available and str(tmp_path / "nowhere") in lc.reason
    with pytest.raises(ControlError) as err:
        await lc.stop("replica-1")
    assert err.value.status == 503
    assert str(tmp_path / "nowhere") in err.value.message and "scripts/cluster.py up" in err.value.message
    assert await lc.faults() == {}


def test_importing_control_does_not_import_devcluster() -> None:
    code = "import coordinator.control, sys; assert 'devcluster' not in sys.modules, sorted(sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parent.parent,
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr


async def test_local_without_devcluster_is_unavailable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "cluster.json").write_text("{}")  # the missing tooling wins over an existing cluster
    monkeypatch.setitem(sys.modules, "devcluster", None)  # makes `import devcluster` fail
    lc = LocalControl(tmp_path)
    assert not lc.available
    assert "devcluster" in lc.reason and "not importable" in lc.reason and "repository root" in lc.reason
    for action in ("stop", "start", "kill", "pause", "resume", "fault"):
        with pytest.raises(ControlError) as err:
            await getattr(lc, action)("replica-1")
        assert (err.value.status, err.value.code) == (503, "no_cluster")
        assert err.value.message == lc.reason
    assert await lc.faults() == {}


async def wait_until(cond: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not await cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.05)


def state(cl: LocalCluster, node: str) -> Any:
    return next(s for s in cl.status() if s.name == node)


async def select_one(host: str, port: int) -> float:
    """Seconds one SELECT 1 round trip takes on a fresh connection."""
    conn = await asyncio.wait_for(asyncmy.connect(host=host, port=port, user="root", password="",
                                                  connect_timeout=2), 10)
    try:
        async with conn.cursor() as cur:
            started = time.monotonic()
            await asyncio.wait_for(cur.execute("SELECT 1"), 10)
            assert await cur.fetchall() == ((1,),)
            return time.monotonic() - started
    finally:
        conn.close()


@pytest.fixture
def local(cluster: LocalCluster) -> Any:  # noqa: F811
    """A LocalControl on the session cluster; the cluster is put back running and healed after."""
    try:
        yield LocalControl(cluster.directory)
    finally:
        cluster.heal()
        cluster.up()


@pytest.mark.mariadb
async def test_local_kill_and_start(local: LocalControl, cluster: LocalCluster) -> None:  # noqa: F811
    host, port = cluster.address("replica-1")
    out = await local.kill("replica-1")
    assert out == {"replica": "replica-1", "node": "replica-1", "action": "kill", "backend": "local"}
    assert state(cluster, "replica-1").state == "dead"
    with pytest.raises(ConnectionRefusedError):
        await asyncio.wait_for(asyncio.open_connection(host, port), 5)
    await local.start("mysql-replica-1")
    assert state(cluster, "replica-1").state == "running"
    await select_one(host, port)


@pytest.mark.mariadb
async def test_local_stop_pause_resume(local: LocalControl, cluster: LocalCluster) -> None:  # noqa: F811
    await local.pause("replica-2")
    assert state(cluster, "replica-2").state == "paused"
    await local.resume("replica-2")
    assert state(cluster, "replica-2").state == "running"
    await local.stop("replica-2")
    assert state(cluster, "replica-2").state == "stopped"
    await local.start("replica-2")
    await select_one(*cluster.address("replica-2"))


@pytest.mark.mariadb
async def test_local_delay_and_heal(local: LocalControl, cluster: LocalCluster) -> None:  # noqa: F811
    addr = cluster.address("replica-3")
    out = await local.fault("replica-3", delay_ms=100)
    assert out["faults"] == {"delay_ms": 100, "partitioned": False, "process": "running"}
    assert (await local.faults())["replica-3"] == {"delay_ms": 100, "partitioned": False, "process": "running"}
    assert await select_one(*addr) >= 0.1
    out = await local.fault("replica-3")
    assert out["faults"] == {"delay_ms": 0, "partitioned": False, "process": "running"}
    assert state(cluster, "replica-3").delay_ms == 0
    await select_one(*addr)


@pytest.mark.mariadb
async def test_local_partition_and_heal(local: LocalControl, cluster: LocalCluster) -> None:  # noqa: F811
    addr = cluster.address("replica-3")
    await local.fault("replica-3", delay_ms=20)
    out = await local.fault("replica-3", partition=True)
    assert out["faults"] == {"delay_ms": 20, "partitioned": True, "process": "running"}
    with pytest.raises((TimeoutError, asyncmy.errors.OperationalError)):
        await asyncio.wait_for(select_one(*addr), 1.5)
    out = await local.fault("replica-3", partition=False)  # keeps the delay
    assert out["faults"] == {"delay_ms": 20, "partitioned": False, "process": "running"}
    await wait_until(lambda: _answers(addr), 10, "replica-3 to answer after heal")
    out = await local.fault("replica-3", delay_ms=0)
    assert out["faults"] == {"delay_ms": 0, "partitioned": False, "process": "running"}


async def _answers(addr: tuple[str, int]) -> bool:
    try:
        await select_one(*addr)
        return True
    except (OSError, TimeoutError, asyncmy.errors.OperationalError):
        return False


@pytest.mark.mariadb
async def test_local_unknown_replica_and_config_mapping(cluster: LocalCluster) -> None:  # noqa: F811
    with pytest.raises(ControlError) as err:
        await LocalControl(cluster.directory).pause("replica-9")
    assert err.value.status == 404 and "replica-1" in err.value.message
    cfg = (ReplicaConfig(id="r1", name="mysql-replica-1", host="127.0.0.1", port=1),)
    lc = LocalControl(cluster.directory, cfg)
    with pytest.raises(ControlError) as err:
        await lc.pause("replica-2")
    assert err.value.status == 404 and "r1" in err.value.message
    assert (await lc.faults())["r1"] == {"delay_ms": 0, "partitioned": False, "process": "running"}
    out = await lc.fault("r1")
    assert out["node"] == "replica-1"
