"""The MySQL front end under real load tools, bad input and failover.

Against an in-process coordinator on the wiped 4-node local MariaDB cluster, this proves:

- mariadb-slap (64 concurrent clients) and sysbench 1.0.20 (oltp_insert, oltp_point_select
  with server-side prepared statements and without) run without a single error, and what
  they wrote is on every replica, identical, with exactly the count the tool reports;
- bad input on the MySQL port (garbage before the login, truncated headers, packets
  larger than ``max_packet_bytes``, unknown commands, wrong passwords, 1,000 connections
  opened and dropped at every stage of the login) gets an ERR packet or a clean close,
  never a hang, and leaks no connection and no task; the HTTP API is unaffected;
- the connection limit answers ERR 1040 and frees its slot when a client leaves;
- the admin session list shows MySQL sessions and its kill closes them;
- a graceful stop closes open sessions (ERR 1053) without hanging;
- a kill -9 of the leader under MySQL-protocol load (16 PyMySQL clients; mariadb-slap)
  loses no acknowledged write, duplicates none, answers only "outcome unknown" or
  connection-level errors, and the replicas converge identical after the old leader
  rejoins.

Each behaviour was first compared with MariaDB 10.11 on the same bytes: an unframed login
(HTTP, TLS) is answered 1156 at once, a silent client is dropped after the login timeout,
and the unsolicited ERR of a kill or a stop goes with sequence id 0, which drivers read as
a lost connection.

Everything runs in the test's event loop next to the coordinator, so nothing here may
block it: tools are asyncio subprocesses, PyMySQL runs in this module's own threads,
raw protocol clients are asyncio streams, the cluster's blocking calls run in a thread,
and every wait is bounded. Killed servers are started again and faults healed in
``finally`` blocks; every coordinator is stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import os
import re
import selectors
import socket
import struct
import threading
import time
import weakref
from collections import Counter
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import aiohttp
import pymysql
import pytest

from coordinator import config as cfgmod
from coordinator.mysqlproto.client import parse_server_handshake
from devcluster.cluster import LocalCluster
from tests.conftest import Running, config_data, direct, start_coordinator, table_digest, wait_for, wipe

pytestmark = pytest.mark.mariadb

SLAP = "/usr/bin/mariadb-slap"
SYSBENCH = "/usr/bin/sysbench"
needs_slap = pytest.mark.skipif(not os.access(SLAP, os.X_OK), reason="mariadb-slap is not installed")
needs_sysbench = pytest.mark.skipif(not os.access(SYSBENCH, os.X_OK), reason="sysbench is not installed")

IO_TIMEOUT = 5.0  # one packet from the front end: anything longer is a hang
HANG_BOUND = 12.0  # garbage must be dropped within this (MariaDB's connect_timeout is 10 s)
TOOL_TIMEOUT = 120.0
CONNECTION_ERRNOS = {2003, 2006, 2013, 2014, 2055, 1053, 1927}  # client-side "lost/gone/refused", shutdown, killed
OUTCOME_UNKNOWN = 1180
REFUSED_BEFORE_RUN = 1290  # documented: the write definitely did not happen

T = TypeVar("T")

# --- threads for blocking clients (never the loop's default executor: the coordinator may use it) ---

_POOL = ThreadPoolExecutor(max_workers=24, thread_name_prefix="mysql-load")


@pytest.fixture(scope="module", autouse=True)
def _thread_pool() -> Any:
    yield
    _POOL.shutdown(wait=False, cancel_futures=True)


async def in_thread(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    return await asyncio.get_running_loop().run_in_executor(_POOL, functools.partial(fn, *args, **kwargs))


def pm_connect(port: int, user: str = "root", password: str = "", **kw: Any) -> pymysql.connections.Connection:
    return pymysql.connect(host="127.0.0.1", port=port, user=user, password=password, database="testdb",
                           autocommit=True, connect_timeout=5, read_timeout=20, write_timeout=20, **kw)


def _pm_query(port: int, sql: str, args: Any = None) -> list[tuple[Any, ...]]:
    conn = pm_connect(port)
    try:
        with conn.cursor() as cur:
            cur.execute(sql, args)
            return list(cur.fetchall())
    finally:
        conn.close()


async def mysql_query(run: Running, sql: str, args: Any = None) -> list[tuple[Any, ...]]:
    """One statement through the coordinator's MySQL port (PyMySQL, in a thread)."""
    return await in_thread(_pm_query, run.cfg.ports.mysql, sql, args)


def pm_errno(exc: BaseException) -> int:
    args = getattr(exc, "args", ())
    return args[0] if args and isinstance(args[0], int) else -1


def connection_level(exc: BaseException) -> bool:
    """A failure of the connection itself (the statement's outcome is unknown to the client)."""
    if isinstance(exc, pymysql.err.InternalError) and "sequence" in str(exc).lower():
        return True
    return isinstance(exc, (pymysql.err.OperationalError, pymysql.err.InterfaceError)) and (
        pm_errno(exc) in CONNECTION_ERRNOS or pm_errno(exc) == -1 or pm_errno(exc) == 0)


# --- external tools ---

async def run_tool(*argv: str, timeout: float = TOOL_TIMEOUT) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode is not None
    return proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")


def slap_argv(port: int, queries: int, query: str, concurrency: int = 64) -> list[str]:
    return [SLAP, "--no-defaults", "-h127.0.0.1", f"-P{port}", "-uroot", "--create-schema=testdb", "--no-drop",
            f"--concurrency={concurrency}", f"--number-of-queries={queries}", f"--query={query}"]


def sysbench_argv(port: int, test: str, command: str, *extra: str) -> list[str]:
    return [SYSBENCH, test, "--mysql-host=127.0.0.1", f"--mysql-port={port}", "--mysql-user=root",
            "--mysql-password=", "--mysql-db=testdb", "--tables=1", "--table-size=2000", *extra, command]


@dataclass
class SysbenchResult:
    transactions: int
    queries: int
    ignored_errors: int
    output: str


def parse_sysbench(rc: int, out: str, err: str) -> SysbenchResult:
    text = out + err
    assert rc == 0, f"sysbench exited {rc}:\n{text[-3000:]}"
    assert "FATAL" not in text, f"sysbench reported a FATAL error:\n{text[-3000:]}"
    tx = re.search(r"^\s*transactions:\s+(\d+)", out, re.M)
    q = re.search(r"^\s*queries:\s+(\d+)", out, re.M)
    ign = re.search(r"^\s*ignored errors:\s+(\d+)", out, re.M)
    assert tx and q and ign, f"unexpected sysbench output:\n{out[-3000:]}"
    return SysbenchResult(int(tx.group(1)), int(q.group(1)), int(ign.group(1)), out)


# --- a raw protocol client (asyncio streams; every read bounded) ---

CLIENT_CAPS = (1 << 0 | 1 << 2 | 1 << 9 | 1 << 13 | 1 << 15 | 1 << 17 | 1 << 19)  # LONG_PASSWORD, LONG_FLAG,
# PROTOCOL_41, TRANSACTIONS, SECURE_CONNECTION, MULTI_RESULTS, PLUGIN_AUTH
CLIENT_CONNECT_WITH_DB = 1 << 3
COM_QUIT, COM_QUERY, COM_PING = 0x01, 0x03, 0x0E


@dataclass(frozen=True)
class Err:
    errno: int
    sqlstate: str | None
    message: str


def parse_err(payload: bytes) -> Err:
    assert payload[:1] == b"\xff", f"not an ERR packet: {payload[:40]!r}"
    errno = struct.unpack_from("<H", payload, 1)[0]
    if payload[3:4] == b"#":
        return Err(errno, payload[4:9].decode("ascii"), payload[9:].decode("utf-8", "replace"))
    return Err(errno, None, payload[3:].decode("utf-8", "replace"))


def native_password(password: str, scramble: bytes) -> bytes:
    """mysql_native_password: SHA1(pw) XOR SHA1(scramble + SHA1(SHA1(pw)))."""
    if not password:
        return b""
    stage1 = hashlib.sha1(password.encode()).digest()
    mask = hashlib.sha1(scramble + hashlib.sha1(stage1).digest()).digest()
    return bytes(a ^ b for a, b in zip(stage1, mask))


def mysql_password_hash(password: str) -> str:
    """MySQL's ``PASSWORD()`` text form: '*' + hex SHA1(SHA1(pw))."""
    return "*" + hashlib.sha1(hashlib.sha1(password.encode()).digest()).hexdigest().upper()


def handshake_response(user: str, auth: bytes, db: str | None = "testdb") -> bytes:
    caps = CLIENT_CAPS | (CLIENT_CONNECT_WITH_DB if db else 0)
    out = struct.pack("<IIB", caps, 1 << 24, 45) + bytes(23) + user.encode() + b"\x00"
    out += bytes([len(auth)]) + auth
    if db:
        out += db.encode() + b"\x00"
    return out + b"mysql_native_password\x00"


def packet(seq: int, payload: bytes) -> bytes:
    return len(payload).to_bytes(3, "little") + bytes([seq & 0xFF]) + payload


class Raw:
    """One TCP connection to the MySQL port, spoken to byte by byte."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.greeting: Any = None
        self.connection_id = 0

    @classmethod
    async def open(cls, port: int) -> "Raw":
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), IO_TIMEOUT)
        return cls(reader, writer)

    async def read_packet(self, timeout: float = IO_TIMEOUT) -> tuple[int, bytes] | None:
        """The next packet, or None when the server closed the connection (EOF or reset).
        Times out (AssertionError) when the server neither answers nor closes."""
        try:
            async with asyncio.timeout(timeout):
                head = await self.reader.readexactly(4)
                size = int.from_bytes(head[:3], "little")
                return head[3], await self.reader.readexactly(size)
        except TimeoutError:
            raise AssertionError(f"the front end neither answered nor closed within {timeout:g}s") from None
        except (asyncio.IncompleteReadError, ConnectionResetError, BrokenPipeError):
            return None

    async def greet(self) -> Any:
        got = await self.read_packet()
        assert got is not None, "closed before the greeting"
        self.greeting = parse_server_handshake(got[1])
        self.connection_id = self.greeting.connection_id
        return self.greeting

    def send(self, seq: int, payload: bytes) -> None:
        self.writer.write(packet(seq, payload))

    def send_bytes(self, data: bytes) -> None:
        self.writer.write(data)

    async def login(self, user: str = "root", password: str = "", db: str | None = "testdb",
                    auth: bytes | None = None) -> bytes:
        """Greeting, HandshakeResponse41 with native auth; returns the server's answer payload."""
        hs = await self.greet()
        self.send(1, handshake_response(user, native_password(password, hs.scramble) if auth is None else auth, db))
        got = await self.read_packet()
        assert got is not None, "closed during the login"
        return got[1]

    async def command(self, payload: bytes) -> bytes:
        self.send(0, payload)
        got = await self.read_packet()
        assert got is not None, f"closed after command {payload[:20]!r}"
        return got[1]

    async def drain_result(self) -> list[bytes]:
        """The rest of a text result set after its column-count packet (EOF-terminated)."""
        pkts = []
        eofs = 0
        while eofs < 2:
            got = await self.read_packet()
            assert got is not None, "closed in the middle of a result set"
            pkts.append(got[1])
            if got[1][:1] == b"\xfe" and len(got[1]) < 9:
                eofs += 1
            elif got[1][:1] == b"\xff":
                break
        return pkts

    async def expect_err_or_close(self, timeout: float = IO_TIMEOUT) -> Err | None:
        """An ERR (then the connection must close), or a clean close: never silence."""
        got = await self.read_packet(timeout)
        if got is None:
            return None
        err = parse_err(got[1])
        assert await self.read_packet(timeout) is None, "the connection stayed open after a fatal ERR"
        return err

    async def close(self, abort: bool = False) -> None:
        if abort:  # RST instead of FIN
            sock = self.writer.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.writer.close()
        with contextlib.suppress(OSError, TimeoutError):
            await asyncio.wait_for(self.writer.wait_closed(), IO_TIMEOUT)


# --- coordinators and the cluster ---

@contextlib.asynccontextmanager
async def coordinator(cluster: LocalCluster, http: aiohttp.ClientSession, users: list[dict[str, str]] | None = None,
                      **sections: dict[str, Any]) -> AsyncIterator[Running]:
    """A coordinator with a custom config on the wiped cluster; always stopped, faults healed."""
    cluster.heal()
    await wipe(cluster)
    data = config_data(cluster, **sections)
    if users is not None:
        data["mysql_users"] = users
    run = await start_coordinator(cfgmod.from_dict(data, "<test>", env={}), http)
    try:
        yield run
    finally:
        cluster.heal()
        with contextlib.suppress(Exception):
            await stop_once(run)


_STOPPED: weakref.WeakSet[Any] = weakref.WeakSet()


async def stop_once(run: Running) -> None:
    """Stop a coordinator (bounded: a stop that hangs fails the test); a second call does nothing."""
    if run.coord in _STOPPED:
        return
    _STOPPED.add(run.coord)
    await asyncio.wait_for(run.stop(), 30)


async def converged(cluster: LocalCluster, run: Running, timeout: float = 60) -> dict[str, Any]:
    """Wait until every replica is available and has applied the whole log; then assert that
    every replica's testdb is identical and return its contents."""
    r = run.coord.replicator

    async def caught_up() -> bool:
        return all(rs.available and rs.applied_ts >= r.log.last_ts for rs in r.replicas.values())

    await wait_for(caught_up, timeout, "every replica available and caught up")
    digests = {rid: await table_digest(cluster, rid) for rid in r.replicas}
    first_id, first = next(iter(digests.items()))
    for rid, d in digests.items():
        assert d == first, f"{rid} differs from {first_id}: " + ", ".join(
            f"{t}: {len(d.get(t, []))} vs {len(first.get(t, []))} rows" for t in sorted(set(d) | set(first))
            if d.get(t) != first.get(t))
    return first


async def count_everywhere(cluster: LocalCluster, run: Running, table: str) -> dict[str, int]:
    counts = {"coordinator": (await mysql_query(run, f"SELECT COUNT(*) FROM {table}"))[0][0]}
    for rid in run.coord.replicator.replicas:
        counts[rid] = (await direct(cluster, rid, f"SELECT COUNT(*) FROM {table}"))[0][0]
    return counts


@contextlib.asynccontextmanager
async def leader_killed(cluster: LocalCluster, run: Running) -> AsyncIterator[str]:
    """kill -9 the leader's mariadbd and wait for a new leader; yields the old leader's id and
    always starts its server again on the way out (it rejoins as a follower)."""
    old = run.coord.replicator.leader_id
    await asyncio.to_thread(cluster.kill, old)  # the cluster's calls block: keep the loop free
    try:
        async def new_leader() -> bool:
            return run.coord.replicator.leader_id != old

        try:
            await wait_for(new_leader, 20, f"a new leader after killing {old}")
        except AssertionError as exc:  # say what the core was doing (a failover that never came)
            st = run.coord.replicator.core.st
            plan = st.failover
            raise AssertionError(f"{exc}; core: active={st.active} draining={st.draining} fenced={st.fenced} "
                                 f"leading_enabled={st.leading_enabled} failover={plan and (plan.phase, plan.reason)} "
                                 f"health={ {r: (h.healthy, h.misses) for r, h in st.health.items()} } "
                                 f"retry={st.failover_retry}") from None
        yield old
    finally:
        await asyncio.to_thread(cluster.start, old)


def task_count() -> int:
    return len(asyncio.all_tasks())


# ============================================================ 1. mariadb-slap

@needs_slap
@pytest.mark.timeout(120)
async def test_mariadb_slap_inserts_exactly_n_rows_everywhere(cluster: LocalCluster, fresh: Running) -> None:
    run = fresh
    n = 64 * 40  # mariadb-slap gives each of the 64 clients n / 64 queries
    await mysql_query(run, "CREATE TABLE slap (id BIGINT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(8) NOT NULL)")
    writes_before = run.coord.mysql.counters["writes"]
    rc, out, err = await run_tool(*slap_argv(run.cfg.ports.mysql, n, "INSERT INTO slap (v) VALUES ('x')"))
    assert rc == 0, f"mariadb-slap exited {rc}: {err[-2000:]}"
    assert "Number of clients running queries: 64" in out, out
    assert run.coord.mysql.counters["writes"] - writes_before == n
    data = await converged(cluster, run)
    assert len(data["slap"]) == n and {row[1] for row in data["slap"]} == {"x"}
    assert await count_everywhere(cluster, run, "slap") == {"coordinator": n, **{rid: n for rid in
                                                                                  run.coord.replicator.replicas}}


# ============================================================ 2. sysbench

async def sysbench_prepare(run: Running) -> None:
    rc, out, err = await run_tool(*sysbench_argv(run.cfg.ports.mysql, "oltp_insert", "prepare"))
    assert rc == 0 and "FATAL" not in out + err, f"sysbench prepare failed ({rc}):\n{(out + err)[-3000:]}"


async def assert_sbtest_identical(cluster: LocalCluster, run: Running) -> int:
    """Every replica's sbtest1 has the same CHECKSUM and row count as the coordinator reports."""
    data = await converged(cluster, run)
    sums = {rid: (await direct(cluster, rid, "CHECKSUM TABLE sbtest1"))[0][1] for rid in run.coord.replicator.replicas}
    assert len(set(sums.values())) == 1, f"CHECKSUM TABLE differs: {sums}"
    counts = await count_everywhere(cluster, run, "sbtest1")
    assert set(counts.values()) == {len(data["sbtest1"])}, counts
    return len(data["sbtest1"])


@needs_sysbench
@pytest.mark.timeout(150)
async def test_sysbench_oltp_insert_64_threads(cluster: LocalCluster, fresh: Running) -> None:
    run = fresh
    await sysbench_prepare(run)
    assert await assert_sbtest_identical(cluster, run) == 2000
    res = parse_sysbench(*await run_tool(*sysbench_argv(run.cfg.ports.mysql, "oltp_insert", "run",
                                                         "--threads=64", "--time=5")))
    assert res.ignored_errors == 0, res.output
    assert res.transactions > 0, res.output
    print(f"\nsysbench oltp_insert: {res.transactions} inserts in 5 s")
    rows = await assert_sbtest_identical(cluster, run)
    assert rows == 2000 + res.transactions, f"sysbench acknowledged {res.transactions} inserts, {rows - 2000} landed"


@needs_sysbench
@pytest.mark.timeout(150)
@pytest.mark.parametrize("ps_mode", ["auto", "disable"])
async def test_sysbench_oltp_point_select_64_threads(cluster: LocalCluster, fresh: Running, ps_mode: str) -> None:
    run = fresh
    await sysbench_prepare(run)
    reads_before = run.coord.mysql.counters["reads"]
    executes_before = run.coord.mysql.counters["stmt_executes"]
    extra = ["--threads=64", "--time=5"] + ([f"--db-ps-mode={ps_mode}"] if ps_mode != "auto" else [])
    res = parse_sysbench(*await run_tool(*sysbench_argv(run.cfg.ports.mysql, "oltp_point_select", "run", *extra)))
    assert res.ignored_errors == 0, res.output
    assert res.transactions > 0 and res.queries >= res.transactions, res.output
    print(f"\nsysbench oltp_point_select ps-mode={ps_mode}: {res.transactions} selects in 5 s")
    assert run.coord.mysql.counters["reads"] - reads_before >= res.queries, "the reads did not go through the front end"
    executes = run.coord.mysql.counters["stmt_executes"] - executes_before
    if ps_mode == "auto":  # sysbench's default: every select a server-side prepared statement
        assert executes >= res.queries, f"{executes} COM_STMT_EXECUTE for {res.queries} queries"
    else:
        assert executes == 0, f"{executes} COM_STMT_EXECUTE with --db-ps-mode=disable"
    assert await assert_sbtest_identical(cluster, run) == 2000


# ============================================================ 3. bad input

GARBAGE = {
    # a well-framed login packet whose content is nonsense
    "framed_nonsense": packet(1, bytes(range(7, 47))),
    # a login packet too short to be a HandshakeResponse41
    "framed_short": packet(1, b"\x00\x02"),
    # an HTTP request on the MySQL port: its "header" announces a 5.5 MB packet with sequence id 0x20
    "http_request": b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: curl/8\r\n\r\n",
    # a TLS ClientHello: the header announces a 66 KB packet with sequence id 2
    "tls_client_hello": bytes.fromhex("16030100f4010000f00303") + bytes(range(32)) + bytes(40),
}


async def _garbage(port: int, data: bytes, read_greeting: bool) -> Err | None:
    """Send ``data`` after reading the greeting, or before it arrived; the answer that follows."""
    raw = await Raw.open(port)
    try:
        if read_greeting:
            await raw.greet()
            raw.send_bytes(data)
        else:
            raw.send_bytes(data)
            await raw.greet()
        return await raw.expect_err_or_close(HANG_BOUND)
    finally:
        await raw.close()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", ["framed_nonsense", "framed_short"])
async def test_framed_garbage_login_is_refused(fresh: Running, kind: str) -> None:
    for read_greeting in (True, False):  # answered the greeting, or did not even wait for it
        err = await _garbage(fresh.cfg.ports.mysql, GARBAGE[kind], read_greeting)
        assert err is None or err.errno in (1043, 1835, 1158) and err.sqlstate in ("08S01", "HY000"), err
    assert await mysql_query(fresh, "SELECT 1") == [(1,)]
    await wait_for(lambda: _no_connections(fresh), 10, "the front end to forget the garbage connections")


async def _no_connections(run: Running) -> bool:
    return len(run.coord.mysql.connections) == 0


UNFRAMED_ANSWER_BOUND = 1.5  # "at once": the header alone is out of order (MariaDB answers before any payload)


async def _timed_garbage(port: int, data: bytes) -> tuple[Err | None, float]:
    """Send ``data`` after the greeting: the answer and the seconds it took to arrive."""
    raw = await Raw.open(port)
    try:
        await raw.greet()
        started = time.monotonic()
        raw.send_bytes(data)
        got = await raw.read_packet(HANG_BOUND)
        took = time.monotonic() - started
        err = parse_err(got[1]) if got is not None else None
        assert await raw.read_packet(IO_TIMEOUT) is None, "the connection stayed open after a fatal ERR"
        return err, took
    finally:
        await raw.close()


@pytest.mark.timeout(60)
async def test_unframed_garbage_login_is_dropped_not_held(fresh: Running) -> None:
    """HTTP or TLS bytes sent to the MySQL port: MariaDB answers 1156 (packets out of order) at
    once, on the header alone; the front end must too, never waiting for the announced payload."""
    port = fresh.cfg.ports.mysql
    for kind in ("http_request", "tls_client_hello"):
        err, took = await _timed_garbage(port, GARBAGE[kind])
        assert err is not None and err.errno == 1156 and err.sqlstate == "08S01", (kind, err)
        assert took < UNFRAMED_ANSWER_BOUND, f"{kind}: the ERR took {took:.2f}s, not at once"
    assert await mysql_query(fresh, "SELECT 1") == [(1,)]


LOGIN_TIMEOUT = 2.0


@pytest.mark.timeout(90)
async def test_silent_client_is_dropped_before_login(cluster: LocalCluster, http: aiohttp.ClientSession) -> None:
    """A client that never sends its login is dropped at ``login_timeout_s`` (MariaDB's
    connect_timeout): not at once, and not much later (the default is 10 s)."""
    async with coordinator(cluster, http, mysql_front={"login_timeout_s": LOGIN_TIMEOUT}) as run:
        started = time.monotonic()  # the server's timer starts after this, when it accepts
        raw = await Raw.open(run.cfg.ports.mysql)
        try:
            await raw.greet()
            err = await raw.expect_err_or_close(HANG_BOUND)  # sends nothing at all
            took = time.monotonic() - started
            assert err is None or err.errno in (1043, 1158, 1159), err
        finally:
            await raw.close()
        # generous bounds for a loaded machine: the timer cannot fire early, it may run late
        assert LOGIN_TIMEOUT * 0.9 <= took <= LOGIN_TIMEOUT + 3.0, f"dropped after {took:.2f}s, not ~{LOGIN_TIMEOUT}s"
        assert run.coord.mysql.counters["login_timeouts"] == 1
        await wait_for(lambda: _no_connections(run), 10, "the front end to forget the silent connection")


@pytest.mark.timeout(60)
async def test_truncated_header_closes_cleanly(fresh: Running) -> None:
    port = fresh.cfg.ports.mysql
    # 2 bytes of a header, then the client hangs up: the server forgets the connection
    raw = await Raw.open(port)
    await raw.greet()
    raw.send_bytes(b"\x20\x00")
    await raw.close()
    # 2 bytes, then end of stream (half-close): the server must close too, not wait for more
    for logged_in in (False, True):
        raw = await Raw.open(port)
        try:
            if logged_in:
                assert (await raw.login())[:1] == b"\x00"
            else:
                await raw.greet()
            raw.send_bytes(b"\x05\x00")
            raw.writer.write_eof()
            err = await raw.expect_err_or_close()
            assert err is None or err.errno in (1158, 1835, 1043), err
        finally:
            await raw.close()
    await wait_for(lambda: _no_connections(fresh), 10, "no MySQL connection left")
    assert await mysql_query(fresh, "SELECT 1") == [(1,)]


SMALL_PACKET = 1 << 20
APP_PASSWORD = "s3cret-pw"
USERS = [{"name": "root"}, {"name": "app", "password_hash": mysql_password_hash(APP_PASSWORD)}]


@pytest.mark.timeout(90)
async def test_packet_over_max_packet_bytes_gets_err_1153(cluster: LocalCluster, http: aiohttp.ClientSession) -> None:
    async with coordinator(cluster, http, mysql_front={"max_packet_bytes": SMALL_PACKET}) as run:
        port = run.cfg.ports.mysql
        # before the login: a header announcing 2 MiB (only the header and a few bytes are sent)
        raw = await Raw.open(port)
        try:
            await raw.greet()
            raw.send_bytes((2 * SMALL_PACKET).to_bytes(3, "little") + b"\x01" + b"\x00" * 64)
            err = await raw.expect_err_or_close()
            assert err is not None and (err.errno, err.sqlstate) == (1153, "08S01"), err
        finally:
            await raw.close()
        # after the login: a COM_QUERY one byte over the limit
        raw = await Raw.open(port)
        try:
            assert (await raw.login())[:1] == b"\x00"
            raw.send_bytes((SMALL_PACKET + 1).to_bytes(3, "little") + b"\x00" + bytes([COM_QUERY]) + b"SELECT '")
            err = await raw.expect_err_or_close()
            assert err is not None and (err.errno, err.sqlstate) == (1153, "08S01"), err
        finally:
            await raw.close()
        # just under the limit is a normal query
        big = "y" * (SMALL_PACKET - 64)
        assert await mysql_query(run, f"SELECT LENGTH('{big}')") == [(len(big),)]
        await wait_for(lambda: _no_connections(run), 10, "no MySQL connection left")


@pytest.mark.timeout(60)
async def test_unknown_command_gets_err_1047_and_connection_stays_usable(fresh: Running) -> None:
    raw = await Raw.open(fresh.cfg.ports.mysql)
    try:
        assert (await raw.login())[:1] == b"\x00"
        err = parse_err(await raw.command(b"\x63" + b"whatever"))
        assert (err.errno, err.sqlstate) == (1047, "08S01"), err
        assert (await raw.command(bytes([COM_PING])))[:1] == b"\x00", "COM_PING after the unknown command"
        first = await raw.command(bytes([COM_QUERY]) + b"SELECT 41 + 1")
        assert first == b"\x01", first  # one column
        rows = [p for p in await raw.drain_result() if p[:1] not in (b"\xfe",)]
        assert rows[-1] == b"\x0242", rows  # the row "42" (after the column definition)
    finally:
        await raw.close()


@pytest.mark.timeout(90)
async def test_wrong_password_or_scramble_gets_err_1045(cluster: LocalCluster, http: aiohttp.ClientSession) -> None:
    async with coordinator(cluster, http, users=USERS) as run:
        port = run.cfg.ports.mysql

        async def attempt(user: str, password: str = "", auth: bytes | None = None) -> bytes:
            raw = await Raw.open(port)
            try:
                return await raw.login(user, password, auth=auth)
            finally:
                await raw.close()

        assert (await attempt("app", APP_PASSWORD))[:1] == b"\x00", "the right password must log in"
        scramble = bytes(range(1, 21))  # a well-formed 20-byte response computed from no password at all
        for user, password, auth, using in [("app", "wrong", None, "YES"), ("app", "", scramble, "YES"),
                                            ("app", "", b"", "NO"), ("root", "", scramble, "YES"),
                                            ("nobody", "", b"", "NO")]:
            err = parse_err(await attempt(user, password, auth))
            assert (err.errno, err.sqlstate) == (1045, "28000"), (user, err)
            assert f"Access denied for user '{user}'" in err.message and f"using password: {using}" in err.message
        with pytest.raises(pymysql.err.OperationalError) as exc:
            await in_thread(pm_connect, port, "app", "not-the-password")
        assert pm_errno(exc.value) == 1045
        conn = await in_thread(pm_connect, port, "app", APP_PASSWORD)
        try:
            assert await in_thread(_pm_select1, conn) == 1
        finally:
            conn.close()


CHURN_MODES = ("close_at_once", "after_greeting", "half_response", "full_response_no_wait", "after_login",
               "quit", "mid_query", "reset_after_greeting", "reset_after_login")


async def _churn_one(port: int, mode: str) -> None:
    raw = await Raw.open(port)
    abort = mode.startswith("reset")
    try:
        if mode == "close_at_once":
            return
        await raw.greet()
        resp = handshake_response("root", b"", "testdb")
        if mode in ("after_greeting", "reset_after_greeting"):
            return
        if mode == "half_response":
            raw.send_bytes(packet(1, resp)[: len(resp) // 2])
            return
        if mode == "full_response_no_wait":
            raw.send(1, resp)
            return
        raw.send(1, resp)
        got = await raw.read_packet()
        assert got is not None and got[1][:1] == b"\x00", got
        if mode == "quit":
            raw.send(0, bytes([COM_QUIT]))
        elif mode == "mid_query":
            raw.send(0, bytes([COM_QUERY]) + b"SELECT COUNT(*) FROM products")
    finally:
        await raw.close(abort=abort)


def _connect_many(port: int, n: int, stop_at: float) -> list[socket.socket]:
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=max(0.5, stop_at - time.monotonic()))
        socks.append(s)
    return socks


def _greeted(socks: list[socket.socket], within_s: float) -> int:
    sel = selectors.DefaultSelector()
    for s in socks:
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
    got, end = 0, time.monotonic() + within_s
    while got < len(socks) and time.monotonic() < end:
        for key, _ in sel.select(0.2):
            sel.unregister(key.fileobj)
            got += 1
    sel.close()
    return got


@pytest.mark.timeout(120)
async def test_a_burst_of_connections_while_the_loop_is_busy_all_get_a_greeting(fresh: Running) -> None:
    """The server speaks first: a connection the kernel drops from a full accept queue leaves
    its client waiting for a greeting forever (mariadb-slap with 256 clients hung so). 400
    connections opened while the event loop is blocked must all be greeted once it runs."""
    port = fresh.cfg.ports.mysql
    stop_at = time.monotonic() + 30
    with ThreadPoolExecutor(4) as pool:
        futs = [pool.submit(_connect_many, port, 100, stop_at) for _ in range(4)]
        time.sleep(2.0)  # block the coordinator's loop (it runs in this test's loop) while they connect
        socks = [s for f in futs for s in f.result(timeout=30)]
    try:
        assert len(socks) == 400
        greeted = await asyncio.to_thread(_greeted, socks, 10.0)
        assert greeted == 400, f"only {greeted} of 400 connections got the server greeting within 10 s"
    finally:
        for s in socks:
            s.close()
    async def forgotten() -> bool:
        return not fresh.coord.mysql.connections

    await wait_for(forgotten, 10, "the burst's connections to be forgotten")


@pytest.mark.timeout(120)
async def test_thousand_connections_dropped_at_every_stage_leak_nothing(fresh: Running) -> None:
    run = fresh
    port = run.cfg.ports.mysql
    assert await mysql_query(run, "SELECT 1") == [(1,)]  # warm: version learnt, read pool open
    await wait_for(lambda: _no_connections(run), 10, "the warm-up connection to go")
    baseline = task_count()
    sem = asyncio.Semaphore(100)
    failures: Counter[str] = Counter()

    async def one(i: int) -> None:
        async with sem:
            mode = CHURN_MODES[i % len(CHURN_MODES)]
            try:
                await _churn_one(port, mode)
            except (AssertionError, OSError) as exc:
                failures[f"{mode}: {type(exc).__name__}: {exc}"[:160]] += 1

    started = time.monotonic()
    await asyncio.gather(*(one(i) for i in range(1000)))
    elapsed = time.monotonic() - started
    assert not failures, f"client-side failures while churning: {dict(failures)}"
    await wait_for(lambda: _no_connections(run), 15, "every dropped MySQL connection forgotten")

    async def tasks_back() -> bool:
        return task_count() <= baseline + 3

    await wait_for(tasks_back, 15, f"the task count back near its baseline of {baseline}")
    st, body = await run.write("INSERT INTO users (name, email) VALUES ('churn', 'churn@x')")
    assert st == 200, body
    assert (await mysql_query(run, "SELECT email FROM users WHERE email = 'churn@x'")) == [("churn@x",)]
    st, status = await run.get("/status")
    assert st == 200 and status.get("ready") is True, status
    print(f"\n1000 connections churned in {elapsed:.1f}s; tasks {baseline} -> {task_count()}")


# ============================================================ 4. connection limit

@pytest.mark.timeout(90)
async def test_connection_limit_err_1040_and_slot_freed(cluster: LocalCluster, http: aiohttp.ClientSession) -> None:
    async with coordinator(cluster, http, mysql_front={"max_connections": 3}) as run:
        port = run.cfg.ports.mysql
        held = [await in_thread(pm_connect, port) for _ in range(3)]
        try:
            raw = await Raw.open(port)
            try:
                err = await raw.expect_err_or_close()
            finally:
                await raw.close()
            assert err is not None and (err.errno, err.sqlstate) == (1040, "08004"), err
            assert "Too many connections" in err.message
            with pytest.raises(pymysql.err.OperationalError) as exc:
                await in_thread(pm_connect, port)
            assert pm_errno(exc.value) == 1040
            held.pop().close()
            await wait_for(lambda: _count_is(run, 2), 10, "the closed connection's slot freed")
            again = await in_thread(pm_connect, port)
            held.append(again)
            assert await in_thread(_pm_select1, again) == 1
        finally:
            for conn in held:
                conn.close()


async def _count_is(run: Running, n: int) -> bool:
    return len(run.coord.mysql.connections) == n


def _pm_select1(conn: pymysql.connections.Connection) -> int:
    with conn.cursor() as cur:
        cur.execute("SELECT 1")
        return int(cur.fetchone()[0])


# ============================================================ 5. admin sessions

LOST = {2013, 2006}


def _next_query_error(conn: pymysql.connections.Connection) -> BaseException:
    try:
        _pm_select1(conn)
    except pymysql.err.MySQLError as exc:
        return exc
    raise AssertionError("the query succeeded on a connection that should be closed")



@pytest.mark.timeout(60)
async def test_admin_lists_and_kills_a_mysql_session(fresh: Running) -> None:
    run = fresh
    conn = await in_thread(pm_connect, run.cfg.ports.mysql)
    raw = await Raw.open(run.cfg.ports.mysql)
    try:
        assert await in_thread(_pm_select1, conn) == 1
        sid = conn.thread_id()
        st, body = await run.get("/admin/sessions")
        assert st == 200, body
        mine = [s for s in body["sessions"] if s["id"] == sid]
        assert len(mine) == 1, body
        assert mine[0]["user"] == "root" and mine[0]["db"] == "testdb" and mine[0]["queries"] >= 1, mine

        st, killed = await run.post(f"/admin/sessions/{sid}/kill", {})
        assert st == 200 and killed.get("success") is True, killed
        with pytest.raises(pymysql.err.MySQLError):  # how it fails: test_killed_session_reads_as_lost_connection
            await in_thread(_pm_select1, conn)
        assert not conn.open, "PyMySQL still thinks the killed connection is open"

        async def gone() -> bool:
            _, b = await run.get("/admin/sessions")
            return all(s["id"] != sid for s in b["sessions"])

        await wait_for(gone, 10, "the killed session to leave the list")

        # the same on the wire: an ERR 1927, then the close
        assert (await raw.login())[:1] == b"\x00"
        st, _ = await run.post(f"/admin/sessions/{raw.connection_id}/kill", {})
        assert st == 200
        err = await raw.expect_err_or_close()
        assert err is None or err.errno == 1927, err

        st, missing = await run.post("/admin/sessions/999999/kill", {})
        assert st == 404 and missing.get("code") == "unknown_session", missing
        st, bad = await run.post("/admin/sessions/abc/kill", {})
        assert st == 400, bad
    finally:
        conn.close()
        await raw.close()


@pytest.mark.timeout(60)
async def test_killed_session_reads_as_lost_connection(fresh: Running) -> None:
    conn = await in_thread(pm_connect, fresh.cfg.ports.mysql)
    try:
        assert await in_thread(_pm_select1, conn) == 1
        st, _ = await fresh.post(f"/admin/sessions/{conn.thread_id()}/kill", {})
        assert st == 200
        exc = await in_thread(_next_query_error, conn)
        assert isinstance(exc, pymysql.err.OperationalError) and pm_errno(exc) in LOST | {1927}, repr(exc)
    finally:
        conn.close()


# ============================================================ 6. graceful shutdown

@pytest.mark.timeout(90)
async def test_graceful_stop_closes_open_sessions(cluster: LocalCluster, http: aiohttp.ClientSession) -> None:
    async with coordinator(cluster, http) as run:
        port = run.cfg.ports.mysql
        conn = await in_thread(pm_connect, port)
        raw = await Raw.open(port)
        try:
            assert await in_thread(_pm_select1, conn) == 1
            assert (await raw.login())[:1] == b"\x00"
            await stop_once(run)
            err = await raw.expect_err_or_close()
            assert err is None or (err.errno, err.sqlstate) == (1053, "08S01"), err
            with pytest.raises(pymysql.err.MySQLError):  # how it fails: test_stopped_session_reads_as_lost_connection
                await asyncio.wait_for(in_thread(_pm_select1, conn), 30)
            assert not conn.open, "PyMySQL still thinks the connection is open after the stop"
            with pytest.raises(pymysql.err.OperationalError) as exc:
                await asyncio.wait_for(in_thread(pm_connect, port), 30)
            assert pm_errno(exc.value) == 2003, repr(exc.value)  # nothing listens any more
        finally:
            conn.close()
            await raw.close()


@pytest.mark.timeout(90)
async def test_stopped_session_reads_as_lost_connection(cluster: LocalCluster, http: aiohttp.ClientSession) -> None:
    async with coordinator(cluster, http) as run:
        conn = await in_thread(pm_connect, run.cfg.ports.mysql)
        try:
            assert await in_thread(_pm_select1, conn) == 1
            await stop_once(run)
            exc = await asyncio.wait_for(in_thread(_next_query_error, conn), 30)
            assert isinstance(exc, pymysql.err.OperationalError) and pm_errno(exc) in LOST | {1053}, repr(exc)
        finally:
            conn.close()


# ============================================================ 7. failover under MySQL-protocol load

@dataclass
class MysqlLoad:
    """Unique autocommit inserts from PyMySQL threads; every acknowledged value and every
    error (with the value it concerned) is recorded."""

    port: int
    clients: int = 16
    tag: str = "m"
    acked: list[tuple[str, float]] = field(default_factory=list)
    # (value, or "" for a failed connect; errno; exception class; a connection-level failure?)
    errors: list[tuple[str, int, str, bool]] = field(default_factory=list)
    stop_flag: threading.Event = field(default_factory=threading.Event)
    futures: list[asyncio.Future[None]] = field(default_factory=list)

    def _client(self, k: int) -> None:
        conn: pymysql.connections.Connection | None = None
        i = 0
        try:
            while not self.stop_flag.is_set():
                if conn is None:
                    try:
                        conn = pm_connect(self.port)
                    except pymysql.err.MySQLError as exc:
                        self.errors.append(("", pm_errno(exc), type(exc).__name__, connection_level(exc)))
                        self.stop_flag.wait(0.05)
                        continue
                i += 1
                value = f"{self.tag}{k}-{i}"
                try:
                    with conn.cursor() as cur:
                        cur.execute("INSERT INTO fo (v) VALUES (%s)", (value,))
                    self.acked.append((value, time.monotonic()))
                except pymysql.err.MySQLError as exc:
                    lost = connection_level(exc)
                    self.errors.append((value, pm_errno(exc), type(exc).__name__, lost))
                    if lost:
                        with contextlib.suppress(Exception):
                            conn.close()
                        conn = None
                    self.stop_flag.wait(0.02)
        finally:
            if conn is not None:
                with contextlib.suppress(Exception):
                    conn.close()

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.futures = [loop.run_in_executor(_POOL, self._client, k) for k in range(self.clients)]

    async def stop(self) -> None:
        self.stop_flag.set()
        await asyncio.wait_for(asyncio.gather(*self.futures), 60)


@pytest.mark.timeout(180)
async def test_kill_leader_under_pymysql_load_loses_and_duplicates_nothing(cluster: LocalCluster,
                                                                           fresh: Running) -> None:
    run = fresh
    await mysql_query(run, "CREATE TABLE fo (id BIGINT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(64) NOT NULL, KEY (v))")
    load = MysqlLoad(run.cfg.ports.mysql)
    load.start()
    try:
        async def warmed() -> bool:
            return len(load.acked) >= 300

        await wait_for(warmed, 30, "300 acknowledged inserts before the kill")
        async with leader_killed(cluster, run) as old:
            killed_at = time.monotonic()
            await asyncio.sleep(3.0)  # keep loading under the new leader (a load duration, not a condition)
            await load.stop()
    finally:
        await load.stop()
    assert run.coord.replicator.leader_id != old
    after_kill = [v for v, t in load.acked if t > killed_at]
    assert after_kill, "no write was acknowledged after the failover"
    data = await converged(cluster, run, timeout=90)
    present = Counter(row[1] for row in data["fo"])
    acked = [v for v, _ in load.acked]
    lost = [v for v in acked if present[v] == 0]
    assert not lost, f"{len(lost)} of {len(acked)} acknowledged inserts lost, e.g. {lost[:5]}"
    dups = {v: n for v, n in present.items() if n > 1}
    assert not dups, f"duplicated rows: {list(dups.items())[:5]}"
    attempted = set(acked) | {e[0] for e in load.errors if e[0]}
    phantoms = [v for v in present if v not in attempted]
    assert not phantoms, f"rows nobody inserted: {phantoms[:5]}"
    bad = [e for e in load.errors if e[1] not in (OUTCOME_UNKNOWN, REFUSED_BEFORE_RUN) and not e[3]]
    assert not bad, f"errors other than outcome-unknown or connection-level: {Counter(e[1:3] for e in bad)}"
    refused_but_applied = [e[0] for e in load.errors if e[1] == REFUSED_BEFORE_RUN and present[e[0]]]
    assert not refused_but_applied, f"writes refused with 1290 (never run) were applied: {refused_but_applied[:5]}"
    print(f"\nkill -9 {old} under 16 PyMySQL clients: {len(acked)} acked ({len(after_kill)} after the kill), "
          f"errors {dict(Counter(e[1:3] for e in load.errors))}")


@needs_slap
@pytest.mark.timeout(180)
async def test_kill_leader_during_mariadb_slap(cluster: LocalCluster, fresh: Running) -> None:
    run = fresh
    n = 64 * 150
    await mysql_query(run, "CREATE TABLE slap (id BIGINT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(8) NOT NULL)")
    writes_before = run.coord.mysql.counters["writes"]
    slap = asyncio.create_task(run_tool(*slap_argv(run.cfg.ports.mysql, n, "INSERT INTO slap (v) VALUES ('k')"),
                                        timeout=150))
    try:
        async def loading() -> bool:
            return run.coord.mysql.counters["writes"] - writes_before >= 500 or slap.done()

        await wait_for(loading, 30, "mariadb-slap inserting")
        assert not slap.done(), "mariadb-slap finished before the kill: raise n"
        # each of the 64 clients sends its next INSERT only after the previous one was acknowledged,
        # so all but at most 64 of the inserts submitted so far were acknowledged
        acked_at_least = run.coord.mysql.counters["writes"] - writes_before - 64
        async with leader_killed(cluster, run) as old:
            rc, out, err = await asyncio.wait_for(slap, 150)  # it must end, one way or the other
    finally:
        if not slap.done():
            slap.cancel()
            with contextlib.suppress(BaseException):
                await slap
    assert run.coord.replicator.leader_id != old
    data = await converged(cluster, run, timeout=90)
    rows = len(data["slap"])
    print(f"\nmariadb-slap through a kill -9 of {old}: exit {rc}, {rows} of {n} rows; {err.strip()[-300:]}")
    assert acked_at_least <= rows <= n, f"{rows} rows, but at least {acked_at_least} inserts were acknowledged"
    if rc == 0:  # every query acknowledged: then every row is there
        assert rows == n
    else:
        assert "Cannot run query" in err or "Lost connection" in err or "ERROR" in err, err
