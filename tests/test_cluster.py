"""Tests for the local MariaDB cluster and its fault proxy, against real servers.

Why these tests: the coordinator's failure handling is only as honest as the faults it is tested
with, so each fault is checked from a client's point of view (refused vs. timed out, held data
delivered after heal, delay per round trip) and status must agree with the OS. Every test leaves
the shared session cluster healed and running, because other modules use it afterwards.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import asyncmy
import pytest

from devcluster import process
from devcluster.cluster import ClusterError, LocalCluster
from devcluster.process import pids_matching, proc_state, short_path
from tests.clusterfixtures import free_port, running_cluster  # noqa: F401  (cluster fixture: conftest)

REPO_ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, str(REPO_ROOT / "scripts" / "cluster.py")]


# --------------------------------------------------------------------------- helpers


@pytest.fixture
def c(cluster: LocalCluster) -> Iterator[LocalCluster]:  # noqa: F811
    """The session cluster, put back to healed-and-running after the test whatever happened."""
    try:
        yield cluster
    finally:
        cluster.heal()
        for st in cluster.status():
            if st.state == "paused":
                cluster.resume(st.name)
        cluster.up()


async def connect(cl: LocalCluster, name: str, timeout: float = 5.0, direct: bool = False) -> Any:
    host, port = cl.address(name, direct=direct)
    return await asyncio.wait_for(
        asyncmy.connect(host=host, port=port, user="root", password="", db="testdb",
                        autocommit=True, connect_timeout=timeout),
        timeout,
    )


async def run_sql(conn: Any, sql: str) -> tuple[Any, ...]:
    async with conn.cursor() as cur:
        await cur.execute(sql)
        return tuple(await cur.fetchall())


async def query(conn: Any, sql: str, timeout: float = 5.0) -> tuple[Any, ...]:
    return await asyncio.wait_for(run_sql(conn, sql), timeout)


async def round_trip(conn: Any) -> float:
    start = time.perf_counter()
    await query(conn, "SELECT 1")
    return time.perf_counter() - start


def refused(cl: LocalCluster, name: str) -> float:
    """Seconds until a TCP connect to the node's public port is refused (fails the test otherwise)."""
    start = time.perf_counter()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(cl.address(name), timeout=2.0).close()
    return time.perf_counter() - start


def handshake_hangs(cl: LocalCluster, name: str, wait: float = 1.0) -> bool:
    """True if the TCP connect is accepted but no server greeting arrives within wait."""
    with socket.create_connection(cl.address(name), timeout=2.0) as sock:
        sock.settimeout(wait)
        try:
            sock.recv(1)  # a greeting or EOF: either way, not a hang
        except (socket.timeout, TimeoutError):
            return True
        return False


def state_of(cl: LocalCluster, name: str) -> Any:
    return {s.name: s for s in cl.status()}[name]


def cli(*args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout,
                          cwd=REPO_ROOT, check=False)


# --------------------------------------------------------------------------- cluster lifecycle


@pytest.mark.mariadb
async def test_up_all_nodes_answer_through_proxies(c: LocalCluster) -> None:
    assert c.node_names() == ["replica-1", "replica-2", "replica-3", "replica-4"]
    for i, name in enumerate(c.node_names(), start=1):
        conn = await connect(c, name)
        try:
            assert await query(conn, "SELECT @@server_id, DATABASE()") == ((i, "testdb"),)
        finally:
            conn.close()
        direct = await connect(c, name, direct=True)
        direct.close()
    for st in c.status():
        assert (st.state, st.proxy_alive, st.delay_ms, st.partitioned) == ("running", True, 0, False)
        assert st.instance == f"mysql-{st.name}"
        assert st.mariadbd_pid and st.proxy_pid


@pytest.mark.mariadb
async def test_up_then_down_wipe_leaves_nothing(tmp_path: Path) -> None:
    directory = tmp_path / "small"
    extra = ["--log-bin=mysql-bin", "--max-connections=321"]
    with running_cluster(directory, nodes=3, server_args=extra) as small:
        statuses = small.status()
        assert [s.state for s in statuses] == ["running"] * 3
        reopened = LocalCluster.open(directory)
        assert reopened.node_names() == ["replica-1", "replica-2", "replica-3"]
        assert reopened.server_args == extra
        small.stop("replica-3")
        small.start("replica-3")  # start must reuse the recorded server args
        conn = await connect(small, "replica-3")
        try:
            assert await query(conn, "SELECT @@log_bin, @@max_connections, @@server_id") == ((1, 321, 3),)
        finally:
            conn.close()
        small.down(wipe=True)
        assert not directory.exists()
        assert pids_matching(str(directory)) == []
        for s in statuses:
            assert proc_state(s.mariadbd_pid, "mariadbd") == "dead"
            assert proc_state(s.proxy_pid, "faultproxy") == "dead"
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection(("127.0.0.1", s.public_port), timeout=2.0).close()
    with pytest.raises(ClusterError):
        LocalCluster.open(directory)


@pytest.mark.mariadb
def test_names_resolve_and_unknown_names_are_listed(c: LocalCluster) -> None:
    assert c.resolve("mysql-replica-2") == "replica-2"
    assert c.resolve("replica-2") == "replica-2"
    with pytest.raises(ClusterError, match="valid names: replica-1"):
        c.kill("replica-9")


@pytest.mark.mariadb
def test_cli_up_is_idempotent(c: LocalCluster) -> None:
    result = cli("up", "--dir", str(c.directory))
    assert result.returncode == 0, result.stderr
    assert "already running" in result.stdout
    assert "mysql-replica-4" in result.stdout


# --------------------------------------------------------------------------- process faults


@pytest.mark.mariadb
async def test_kill_refuses_connections_and_start_keeps_data(c: LocalCluster) -> None:
    conn = await connect(c, "replica-2")
    try:
        await query(conn, "DROP TABLE IF EXISTS t_kill")
        await query(conn, "CREATE TABLE t_kill (id INT PRIMARY KEY) ENGINE=InnoDB")
        await query(conn, "INSERT INTO t_kill VALUES (1), (2), (3)")
    finally:
        conn.close()
    c.kill("mysql-replica-2")
    assert state_of(c, "replica-2").state == "dead"
    assert refused(c, "replica-2") < 0.5
    c.start("replica-2")
    assert state_of(c, "replica-2").state == "running"
    conn = await connect(c, "replica-2")
    try:
        assert await query(conn, "SELECT COUNT(*) FROM t_kill") == ((3,),)
        await query(conn, "DROP TABLE t_kill")
    finally:
        conn.close()


@pytest.mark.mariadb
async def test_stop_is_clean_and_start_answers(c: LocalCluster) -> None:
    conn = await connect(c, "replica-1")
    c.stop("replica-1")
    try:
        assert state_of(c, "replica-1").state == "stopped"
        assert refused(c, "replica-1") < 0.5
        with pytest.raises(Exception):  # noqa: B017 - any failure will do: the connection is gone
            await query(conn, "SELECT 1", timeout=2.0)  # existing connections are dropped
    finally:
        conn.close()
        c.start("replica-1")
    conn = await connect(c, "replica-1")
    try:
        assert await query(conn, "SELECT 1") == ((1,),)
    finally:
        conn.close()


@pytest.mark.mariadb
async def test_pause_times_out_and_resume_completes_same_query(c: LocalCluster) -> None:
    conn = await connect(c, "replica-3")
    try:
        c.pause("replica-3")
        assert state_of(c, "replica-3").state == "paused"
        pending = asyncio.ensure_future(run_sql(conn, "SELECT 42"))
        done, _ = await asyncio.wait({pending}, timeout=1.0)
        assert not done, "a paused server must not answer"
        assert handshake_hangs(c, "replica-3")  # new connections hang, they are not refused
        c.resume("replica-3")
        assert await asyncio.wait_for(pending, 10.0) == ((42,),)
        assert state_of(c, "replica-3").state == "running"
    finally:
        conn.close()


@pytest.mark.mariadb
async def test_killed_proxy_leaves_server_running_and_up_restarts_it(c: LocalCluster) -> None:
    c.delay("replica-1", 60)
    before = state_of(c, "replica-1")
    assert before.proxy_pid
    os.kill(before.proxy_pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while state_of(c, "replica-1").proxy_alive and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    after = state_of(c, "replica-1")
    assert (after.proxy_alive, after.state, after.mariadbd_pid) == (False, "running", before.mariadbd_pid)
    direct = await connect(c, "replica-1", direct=True)
    try:
        assert await query(direct, "SELECT 1") == ((1,),)
    finally:
        direct.close()
    c.up()
    restarted = state_of(c, "replica-1")
    assert restarted.proxy_alive and restarted.proxy_pid != before.proxy_pid
    assert restarted.mariadbd_pid == before.mariadbd_pid
    assert restarted.delay_ms == 60  # the restarted proxy resumed its persisted faults
    conn = await connect(c, "replica-1")
    try:
        assert await round_trip(conn) >= 0.06
    finally:
        conn.close()


# --------------------------------------------------------------------------- network faults


@pytest.mark.mariadb
async def test_delay_adds_to_round_trip_and_heal_removes_it(c: LocalCluster) -> None:
    conn = await connect(c, "replica-1")
    try:
        c.delay("replica-1", 100)
        assert state_of(c, "replica-1").delay_ms == 100
        slow = [await round_trip(conn) for _ in range(3)]
        assert min(slow) >= 0.1, slow
        c.heal("replica-1")
        assert state_of(c, "replica-1").delay_ms == 0
        fast = [await round_trip(conn) for _ in range(5)]
        assert sorted(fast)[2] < 0.05, fast
    finally:
        conn.close()


@pytest.mark.mariadb
async def test_partition_hangs_and_heal_releases_held_data(c: LocalCluster) -> None:
    conn = await connect(c, "replica-2")
    try:
        c.partition("replica-2")
        assert state_of(c, "replica-2").partitioned
        pending = asyncio.ensure_future(run_sql(conn, "SELECT 7"))
        done, _ = await asyncio.wait({pending}, timeout=1.0)
        assert not done, "a partitioned node must not answer"
        assert handshake_hangs(c, "replica-2")  # accepted, then silence: a timeout, not a refusal
        with pytest.raises(asyncio.TimeoutError):
            await connect(c, "replica-2", timeout=1.0)
        c.heal("replica-2")
        assert await asyncio.wait_for(pending, 10.0) == ((7,),)
        assert not state_of(c, "replica-2").partitioned
    finally:
        conn.close()
    conn = await connect(c, "replica-2")
    try:
        assert await query(conn, "SELECT 1") == ((1,),)
    finally:
        conn.close()


@pytest.mark.mariadb
def test_cli_status_json_reflects_faults(c: LocalCluster) -> None:
    try:
        c.delay("replica-1", 30)
        c.partition("replica-2")
        c.pause("replica-3")
        c.kill("replica-4")
        result = cli("status", "--json", "--dir", str(c.directory))
        assert result.returncode == 0, result.stderr
        rows = {r["name"]: r for r in json.loads(result.stdout)}
        assert rows["replica-1"]["delay_ms"] == 30 and rows["replica-1"]["state"] == "running"
        assert rows["replica-2"]["partitioned"] is True
        assert rows["replica-3"]["state"] == "paused"
        assert rows["replica-4"]["state"] == "dead" and rows["replica-4"]["mariadbd_pid"] is None
        assert all(r["proxy_alive"] for r in rows.values())
        assert rows["replica-4"]["instance"] == "mysql-replica-4"
    finally:
        c.heal()
        c.resume("replica-3")
        c.start("replica-4")
    assert [s.state for s in c.status()] == ["running"] * 4


# --------------------------------------------------------------------------- no MariaDB needed


def test_missing_mariadb_names_the_install_command(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(process, "find_binary", lambda name: None)
    with pytest.raises(ClusterError, match="apt-get install -y mariadb-server"):
        LocalCluster(tmp_path / "c", nodes=1, base_port=3306).up()


def test_long_socket_paths_fall_back_to_tmp(tmp_path: Path) -> None:
    deep = tmp_path / ("x" * 120)
    path = short_path(deep, "mysqld.sock")
    assert len(path) <= 100 and path.startswith("/tmp/lc-") and path.endswith("mysqld.sock")
    assert short_path(Path("/tmp/c/replica-1"), "mysqld.sock") == "/tmp/c/replica-1/mysqld.sock"


def test_default_port_layout() -> None:
    cl = LocalCluster("/tmp/lc-layout-never-created", nodes=4, base_port=3306)
    assert [cl.address(n) for n in cl.node_names()] == [
        ("127.0.0.1", 3307), ("127.0.0.1", 3308), ("127.0.0.1", 3309), ("127.0.0.1", 3306)]
    assert cl.address("mysql-replica-4", direct=True) == ("127.0.0.1", 13306)


# --------------------------------------------------------------------------- proxy alone


class _Echo(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)  # type: ignore[attr-defined]


def _control(path: Path, msg: dict[str, Any]) -> dict[str, Any]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(5)
        s.connect(str(path))
        s.sendall(json.dumps(msg).encode() + b"\n")
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = s.recv(4096)
            if not chunk:
                break
            buf += chunk
    return dict(json.loads(buf))


async def test_proxy_delay_is_pipelined_and_partition_holds_data(tmp_path: Path) -> None:
    loop = asyncio.get_running_loop()
    echo = await loop.create_server(_Echo, "127.0.0.1", 0)
    upstream_port = echo.sockets[0].getsockname()[1]
    port, ctl, state = free_port(), tmp_path / "ctl", tmp_path / "faults.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "devcluster.faultproxy", "--port", str(port), "--upstream-port",
         str(upstream_port), "--control", str(ctl), "--state", str(state)],
        cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while not ctl.exists() and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 5)
        assert _control(ctl, {"cmd": "delay", "ms": 200})["delay_ms"] == 200
        assert json.loads(state.read_text())["delay_ms"] == 200
        start = time.perf_counter()
        for i in range(20):  # 20 back-to-back requests: one delay in total, not twenty
            writer.write(b"%02d" % i)
            await writer.drain()
            await asyncio.sleep(0.005)
        got = await asyncio.wait_for(reader.readexactly(40), 5)
        elapsed = time.perf_counter() - start
        assert got == b"".join(b"%02d" % i for i in range(20))
        assert 0.2 <= elapsed < 0.9, elapsed

        _control(ctl, {"cmd": "heal"})
        _control(ctl, {"cmd": "partition"})
        writer.write(b"held")
        await writer.drain()
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(reader.readexactly(4), 0.5)
        assert json.loads(state.read_text())["partitioned"] is True
        _control(ctl, {"cmd": "heal"})
        assert await asyncio.wait_for(reader.readexactly(4), 5) == b"held"

        _control(ctl, {"cmd": "close"})
        with pytest.raises(ConnectionRefusedError):
            await asyncio.open_connection("127.0.0.1", port)
        assert await asyncio.wait_for(reader.read(), 5) == b""  # existing connection dropped
        _control(ctl, {"cmd": "open"})
        r2, w2 = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 5)
        w2.write(b"ok")
        assert await asyncio.wait_for(r2.readexactly(2), 5) == b"ok"
        w2.close()
        writer.close()
    finally:
        proc.terminate()
        proc.wait(10)
        echo.close()
