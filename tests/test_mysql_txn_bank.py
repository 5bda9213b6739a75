"""Interactive transactions on the MySQL port against real MariaDB: a concurrent bank, the
same through faults, and seeded random interleavings of conflicting transactions.

- Bank: 32 PyMySQL threads (autocommit off; half of them also send an explicit BEGIN) move
  money between random pairs of 20 accounts: ``SELECT … FOR UPDATE`` both (in random order,
  so deadlocks happen and are retried), two UPDATEs with *absolute* values computed from those
  reads (a lost update or a replay in another order shows up), an INSERT of the transfer's
  unique id, COMMIT. Three autocommit writers insert unique ``audit`` rows. A reader checks the
  total through the coordinator (strong and eventual) during the run. Afterwards on every
  replica: each acknowledged transfer/insert present, none twice, none that was never
  committed, every balance equal to its initial value plus the transfers present, the total
  exact, and all replicas identical (rows and CHECKSUM TABLE).
- The same with a fault in the middle: kill -9 of the leader's mariadbd, SIGSTOP of it for
  5 s, kill -9 of the coordinator process and a restart. "Outcome unknown" (1180 or a lost
  connection at COMMIT) may have gone either way; a COMMIT refused with 1213/1290 must not be
  applied; an acknowledged one must never be lost.
- Property: per seed, a fixed random sequence of BEGIN / UPDATE or locking read of a hot row /
  INSERT / SAVEPOINT / ROLLBACK TO / RELEASE / COMMIT / ROLLBACK on three connections plus
  autocommit writes on a fourth, driven from one thread; each connection's statements run in
  its own thread so a blocked one (row lock; ``transactions.lock_wait_timeout_s`` = 1) does
  not stop the driver. A model tracks what must be committed; after quiescence the leader
  equals the model and every replica equals the leader.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any, TypeVar

import aiohttp
import pymysql
import pytest

from devcluster.cluster import LocalCluster
from tests.conftest import CoordinatorProcess, config_data, direct, table_digest, wait_for, wipe
from tests.test_mysql_load import connection_level, converged, coordinator, leader_killed, pm_errno

pytestmark = pytest.mark.mariadb

T = TypeVar("T")
N_ACCOUNTS, INITIAL = 20, 1000
TOTAL = N_ACCOUNTS * INITIAL
DEADLOCK, LOCK_WAIT, UNKNOWN, REFUSED, TOO_MANY = 1213, 1205, 1180, 1290, 1040
SECTIONS: dict[str, dict[str, Any]] = {"transactions": {"lock_wait_timeout_s": 2}, "mysql": {"max_statement_time_s": 5}}
_POOL = ThreadPoolExecutor(max_workers=40, thread_name_prefix="txn-bank")


@pytest.fixture(scope="module", autouse=True)
def _pool() -> Any:
    yield
    _POOL.shutdown(wait=False, cancel_futures=True)


async def in_thread(fn: Callable[..., T], *args: Any) -> T:
    return await asyncio.get_running_loop().run_in_executor(_POOL, functools.partial(fn, *args))


def connect(port: int, autocommit: bool, host: str = "127.0.0.1", timeout: float = 30,
            db: str = "testdb") -> pymysql.connections.Connection:
    return pymysql.connect(host=host, port=port, user="root", password="", database=db, autocommit=autocommit,
                           connect_timeout=2, read_timeout=timeout, write_timeout=timeout)


def run_sql(port: int, *sqls: str) -> list[tuple[Any, ...]]:
    conn = connect(port, True)
    try:
        with conn.cursor() as cur:
            for sql in sqls:
                cur.execute(sql)
            return list(cur.fetchall())
    finally:
        conn.close()


def bank_setup(port: int) -> None:
    run_sql(port, "CREATE TABLE accounts (id INT PRIMARY KEY, balance BIGINT NOT NULL)",
            "CREATE TABLE transfers (id BIGINT AUTO_INCREMENT PRIMARY KEY, tid VARCHAR(40) NOT NULL, "
            "src INT NOT NULL, dst INT NOT NULL, amount INT NOT NULL, KEY (tid))",
            "CREATE TABLE audit (id BIGINT AUTO_INCREMENT PRIMARY KEY, tag VARCHAR(40) NOT NULL, KEY (tag))",
            "INSERT INTO accounts VALUES " + ", ".join(f"({i}, {INITIAL})" for i in range(1, N_ACCOUNTS + 1)))


# ============================================================ the bank

@dataclass
class Bank:
    port: int
    clients: int = 32
    writers: int = 3
    lock: threading.Lock = field(default_factory=threading.Lock)
    acked: dict[str, float] = field(default_factory=dict)  # tid -> when acknowledged
    unknown: set[str] = field(default_factory=set)  # COMMIT sent, outcome unknown
    refused: set[str] = field(default_factory=set)  # COMMIT answered 1213/1290: must not be applied
    audit_acked: set[str] = field(default_factory=set)
    audit_unknown: set[str] = field(default_factory=set)
    audit_refused: set[str] = field(default_factory=set)
    errors: Counter[tuple[str, int]] = field(default_factory=Counter)
    unexpected: list[str] = field(default_factory=list)
    reads: Counter[str] = field(default_factory=Counter)  # successful total reads per source
    bad_reads: list[str] = field(default_factory=list)
    stop_flag: threading.Event = field(default_factory=threading.Event)
    futures: list[asyncio.Future[None]] = field(default_factory=list)
    direct: list[tuple[str, int]] = field(default_factory=list)  # replicas read directly by the reader

    def _error(self, where: str, exc: pymysql.err.MySQLError, allowed: set[int]) -> bool:
        """Count it; True when the connection is gone."""
        no, lost = pm_errno(exc), connection_level(exc)
        with self.lock:
            self.errors[(where, no)] += 1
            if not lost and no not in allowed:
                self.unexpected.append(f"{where}: {exc!r}")
        return lost

    def _transfers(self, k: int) -> None:
        rng, conn, i = random.Random(k), None, 0
        while not self.stop_flag.is_set():
            try:
                conn = conn or connect(self.port, False)
            except pymysql.err.MySQLError as exc:
                self._error("connect", exc, set())
                self.stop_flag.wait(0.1)
                continue
            i += 1
            tid, (a, b), amount = f"t{k}-{i}", rng.sample(range(1, N_ACCOUNTS + 1), 2), rng.randint(1, 50)
            phase = "body"
            try:
                with conn.cursor() as cur:
                    if k % 2:
                        conn.begin()
                    bal = {}
                    for acc in (a, b):  # random order: deadlocks (1213) are expected and retried
                        cur.execute("SELECT balance FROM accounts WHERE id = %s FOR UPDATE", (acc,))
                        bal[acc] = cur.fetchone()[0]
                    cur.execute("UPDATE accounts SET balance = %s WHERE id = %s", (bal[a] - amount, a))
                    cur.execute("UPDATE accounts SET balance = %s WHERE id = %s", (bal[b] + amount, b))
                    cur.execute("INSERT INTO transfers (tid, src, dst, amount) VALUES (%s, %s, %s, %s)",
                                (tid, a, b, amount))
                    phase = "commit"
                    conn.commit()
                with self.lock:
                    self.acked[tid] = time.monotonic()
            except pymysql.err.MySQLError as exc:
                no = pm_errno(exc)
                lost = self._error(phase, exc, {DEADLOCK, LOCK_WAIT, REFUSED, TOO_MANY, UNKNOWN})
                if phase == "commit":
                    with self.lock:
                        (self.refused if no in (DEADLOCK, REFUSED) and not lost else self.unknown).add(tid)
                if not lost:
                    try:
                        conn.rollback()
                    except pymysql.err.MySQLError:
                        lost = True
                if lost:
                    with contextlib.suppress(Exception):
                        conn.close()
                    conn = None
                self.stop_flag.wait(rng.uniform(0, 0.02))
        if conn is not None:
            conn.close()

    def _audit(self, k: int) -> None:
        conn, i = None, 0
        while not self.stop_flag.is_set():
            try:
                conn = conn or connect(self.port, True)
                i += 1
                tag = f"a{k}-{i}"
                with conn.cursor() as cur:
                    cur.execute("INSERT INTO audit (tag) VALUES (%s)", (tag,))
                self.audit_acked.add(tag)
            except pymysql.err.MySQLError as exc:
                if conn is not None:
                    no, lost = pm_errno(exc), self._error("audit", exc, {UNKNOWN, REFUSED})
                    (self.audit_refused if no == REFUSED and not lost else self.audit_unknown).add(tag)
                    if lost:
                        conn.close()
                        conn = None
                else:
                    self._error("connect", exc, set())
                self.stop_flag.wait(0.05)
        if conn is not None:
            conn.close()

    def _reader(self) -> None:
        """Totals through the coordinator (strong, eventual) and, when asked, on replicas directly."""
        sources = [("strong", self.port, ""), ("eventual", self.port, "/*+ consistency=eventual */ ")]
        sources += [(f"direct:{p}", p, "") for _, p in self.direct]
        while not self.stop_flag.is_set():
            for name, port, hint in sources:
                try:
                    conn = connect(port, True, timeout=10)
                    try:
                        got = run_on(conn, f"{hint}SELECT SUM(balance), COUNT(*) FROM accounts")
                    finally:
                        conn.close()
                except pymysql.err.MySQLError:
                    continue
                self.reads[name] += 1
                if got != (TOTAL, N_ACCOUNTS):
                    self.bad_reads.append(f"{name}: {got}")
            self.stop_flag.wait(0.2)

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        jobs = [functools.partial(self._transfers, k) for k in range(self.clients)]
        jobs += [functools.partial(self._audit, k) for k in range(self.writers)] + [self._reader]
        self.futures = [loop.run_in_executor(_POOL, job) for job in jobs]

    async def stop(self) -> None:
        self.stop_flag.set()
        await asyncio.wait_for(asyncio.gather(*self.futures), 90)

    async def acked_at_least(self, n: int, timeout: float = 30) -> None:
        async def enough() -> bool:
            return len(self.acked) >= n

        await wait_for(enough, timeout, f"{n} acknowledged transfers (errors so far: {dict(self.errors)})")

    async def acked_after(self, t: float, n: int, timeout: float = 60) -> None:
        """``n`` transfers acknowledged after monotonic time ``t`` (the system works again)."""
        async def enough() -> bool:
            return sum(1 for at in self.acked.values() if at > t) >= n

        await wait_for(enough, timeout, f"{n} transfers acknowledged after the fault (errors: {dict(self.errors)})")


def run_on(conn: pymysql.connections.Connection, sql: str) -> tuple[Any, ...]:
    with conn.cursor() as cur:
        cur.execute(sql)
        row = cur.fetchone()
    return tuple(int(v) for v in row)


async def check_bank(cluster: LocalCluster, bank: Bank, names: list[str]) -> str:
    """Every replica: acknowledged present once, refused absent, balances match the transfers
    present, total exact; all identical. Returns a summary line."""
    assert not bank.unexpected, f"unexpected errors: {bank.unexpected[:10]}"
    assert not bank.bad_reads, f"reads saw a wrong total: {bank.bad_reads[:10]}"
    assert bank.reads["strong"] >= 3, f"too few strong reads succeeded: {dict(bank.reads)}"
    committed_or_maybe = set(bank.acked) | bank.unknown
    audit_maybe = bank.audit_acked | bank.audit_unknown
    digests, sums = {}, {}
    for rid in names:
        rows = await direct(cluster, rid, "SELECT tid, src, dst, amount FROM transfers")
        tids = Counter(r[0] for r in rows)
        twice = [t for t, n in tids.items() if n > 1]
        assert not twice, f"{rid}: transfers applied twice: {twice[:5]}"
        lost = [t for t in bank.acked if t not in tids]
        assert not lost, f"{rid}: {len(lost)} of {len(bank.acked)} acknowledged transfers lost, e.g. {lost[:5]}"
        phantom = [t for t in tids if t not in committed_or_maybe]
        assert not phantom, f"{rid}: transfers never committed by a client are there: {phantom[:5]}"
        refused_applied = [t for t in tids if t in bank.refused]
        assert not refused_applied, f"{rid}: COMMITs refused with 1213/1290 were applied: {refused_applied[:5]}"
        expect = dict.fromkeys(range(1, N_ACCOUNTS + 1), INITIAL)
        for _, src, dst, amount in rows:
            expect[src] -= amount
            expect[dst] += amount
        balances = dict(await direct(cluster, rid, "SELECT id, balance FROM accounts"))
        assert balances == expect, f"{rid}: balances differ from the transfers present (a lost update?)"
        assert sum(balances.values()) == TOTAL
        tags = Counter(r[0] for r in await direct(cluster, rid, "SELECT tag FROM audit"))
        assert all(n == 1 for n in tags.values()), f"{rid}: audit rows twice"
        assert bank.audit_acked <= set(tags), f"{rid}: acknowledged audit inserts lost"
        assert set(tags) <= audit_maybe and not set(tags) & bank.audit_refused, f"{rid}: audit rows never committed"
        digests[rid] = await table_digest(cluster, rid)
        sums[rid] = await direct(cluster, rid, "CHECKSUM TABLE accounts, transfers, audit")
    assert all(d == digests[names[0]] for d in digests.values()), "replicas' testdb differ"
    assert all(s == sums[names[0]] for s in sums.values()), f"CHECKSUM TABLE differs: {sums}"
    in_doubt = [t for t in bank.unknown if t in tids]
    return (f"{len(bank.acked)} transfers acked, {len(bank.unknown)} unknown ({len(in_doubt)} applied), "
            f"{len(bank.refused)} refused, {len(bank.audit_acked)} audit inserts; reads {dict(bank.reads)}; "
            f"errors {dict(bank.errors)}")


async def started_bank(port: int, direct_ports: list[tuple[str, int]] | None = None) -> Bank:
    await in_thread(bank_setup, port)
    bank = Bank(port, direct=direct_ports or [])
    bank.start()
    return bank


@pytest.mark.timeout(120)
async def test_bank_interactive_transactions(cluster: LocalCluster, http: aiohttp.ClientSession) -> None:
    async with coordinator(cluster, http, **SECTIONS) as run:
        names = list(run.coord.replicator.replicas)
        bank = await started_bank(run.cfg.ports.mysql, [cluster.address(n, direct=True) for n in names])
        try:
            await asyncio.sleep(12)  # a load duration
        finally:
            await bank.stop()
        assert len(bank.acked) >= 200, f"only {len(bank.acked)} transfers in 12 s: {dict(bank.errors)}"
        assert bank.errors[("commit", DEADLOCK)] == 0 and not bank.unknown, dict(bank.errors)
        assert all(bank.reads[f"direct:{p}"] >= 3 for _, p in bank.direct), dict(bank.reads)
        await converged(cluster, run)
        print("\nbank:", await check_bank(cluster, bank, names))


@pytest.mark.timeout(150)
@pytest.mark.parametrize("fault", ["kill_leader", "pause_leader"])
async def test_bank_through_leader_fault(cluster: LocalCluster, http: aiohttp.ClientSession, fault: str) -> None:
    async with coordinator(cluster, http, **SECTIONS) as run:
        bank = await started_bank(run.cfg.ports.mysql)
        try:
            await bank.acked_at_least(100)
            fault_at = time.monotonic()
            names_before = [run.coord.replicator.leader_id]
            if fault == "kill_leader":
                async with leader_killed(cluster, run):
                    await asyncio.sleep(4)  # the old leader stays dead this long, under load
            else:
                old = run.coord.replicator.leader_id
                await asyncio.to_thread(cluster.pause, old)
                try:
                    await asyncio.sleep(5)  # the pause lasts this long, under load
                finally:
                    await asyncio.to_thread(cluster.resume, old)
            await bank.acked_after(fault_at + 1, 50)
        finally:
            await bank.stop()
        old_leader = names_before[0]
        assert run.coord.replicator.leader_id != old_leader, f"no failover away from {old_leader} after the {fault}"
        # transactions open on the old leader were rolled back, each with an event saying why
        st, body = await run.get("/admin/events?kind=txn_aborted")
        assert st == 200, body
        reasons = {e.get("reason") for e in body["events"]}
        # a paused leader's pinned connections hang: the leader-change watcher ends them (txn.py)
        expected = {"leader_changed"} if fault == "pause_leader" else {"leader_changed", "connection_lost", "failover"}
        assert reasons & expected, reasons
        await converged(cluster, run, timeout=90)
        print(f"\nbank through {fault}:", await check_bank(cluster, bank, list(run.coord.replicator.replicas)))


@pytest.mark.timeout(150)
async def test_bank_through_coordinator_kill_and_restart(cluster: LocalCluster, http: aiohttp.ClientSession,
                                                         tmp_path: Any) -> None:
    cluster.heal()
    await wipe(cluster)
    data = config_data(cluster, **SECTIONS)
    proc = CoordinatorProcess(data, tmp_path)
    proc.start()
    bank = None
    try:
        await proc.wait_ready(http)
        bank = await started_bank(data["ports"]["mysql"])
        await bank.acked_at_least(100)
        proc.kill()  # SIGKILL mid-load: pinned transactions die with their connections
        killed_at = time.monotonic()
        await asyncio.sleep(1)  # down this long, while clients keep trying
        proc.start()
        await proc.wait_ready(http)
        await bank.acked_after(killed_at, 50)
        await bank.stop()
        names = cluster.node_names()

        async def same() -> bool:
            pos = {tuple(await direct(cluster, n, "SELECT applied_ts FROM _coordinator.state", db=None))
                   for n in names}
            return len(pos) == 1

        await wait_for(same, 60, "every replica at the same applied timestamp")
        assert await in_thread(run_sql, bank.port, "SELECT SUM(balance) FROM accounts") == [(TOTAL,)]
        print("\nbank through a coordinator kill -9:", await check_bank(cluster, bank, names))
    finally:
        if bank is not None:
            await bank.stop()
        proc.kill()


# ============================================================ seeded interleavings

STEP_WAIT = 0.25  # a statement not answered within this is blocked (on a row lock): the driver moves on
HOT = 3


@dataclass
class Actor:
    name: str
    conn: pymysql.connections.Connection
    ex: ThreadPoolExecutor
    in_txn: bool = False
    effects: list[tuple[str, Any, int]] = field(default_factory=list)  # ("hot", id, delta) | ("item", tag, 0)
    savepoints: list[tuple[str, int]] = field(default_factory=list)
    pending: tuple[Future[BaseException | None], str, Any] | None = None


class Model:
    def __init__(self) -> None:
        self.hot = dict.fromkeys(range(1, HOT + 1), 0)
        self.items: set[str] = set()

    def apply(self, effects: list[tuple[str, Any, int]]) -> None:
        for kind, key, delta in effects:
            if kind == "hot":
                self.hot[key] += delta
            else:
                self.items.add(key)


def _exec(conn: pymysql.connections.Connection, sql: str, args: Any) -> BaseException | None:
    try:
        if sql == "BEGIN":
            conn.begin()
        elif sql == "COMMIT":
            conn.commit()
        elif sql == "ROLLBACK":
            conn.rollback()
        else:
            with conn.cursor() as cur:
                cur.execute(sql, args)
                cur.fetchall()
        return None
    except pymysql.err.MySQLError as exc:
        return exc


def _settle(a: Actor, kind: str, effect: Any, err: BaseException | None, model: Model, log: list[str]) -> None:
    no = pm_errno(err) if err else 0
    log.append(f"{a.name} {kind} {effect} -> {no or 'ok'}")
    if no == LOCK_WAIT and kind in ("write", "lock", "auto"):
        return  # the statement alone was rolled back
    if no == DEADLOCK and kind in ("write", "lock"):
        a.in_txn, a.effects, a.savepoints = False, [], []  # InnoDB rolled the transaction back
        return
    assert err is None, f"{a.name} {kind} {effect}: {err!r}\n" + "\n".join(log[-30:])
    if kind == "auto":
        model.apply([effect])
    elif kind == "begin":
        a.in_txn, a.effects, a.savepoints = True, [], []
    elif kind == "write":
        a.effects.append(effect)
    elif kind == "savepoint":
        a.savepoints = [(n, k) for n, k in a.savepoints if n != effect] + [(effect, len(a.effects))]
    elif kind in ("rollback_to", "release"):
        i = [n for n, _ in a.savepoints].index(effect)
        if kind == "rollback_to":
            del a.effects[a.savepoints[i][1]:]
            del a.savepoints[i + 1:]
        else:
            del a.savepoints[i:]
    elif kind in ("commit", "rollback"):
        if kind == "commit":
            model.apply(a.effects)
        a.in_txn, a.effects, a.savepoints = False, [], []


def _submit(a: Actor, kind: str, effect: Any, sql: str, args: Any, model: Model, log: list[str]) -> None:
    fut = a.ex.submit(_exec, a.conn, sql, args)
    try:
        _settle(a, kind, effect, fut.result(STEP_WAIT), model, log)
    except FutureTimeout:
        log.append(f"{a.name} {kind} {effect} blocked")
        a.pending = (fut, kind, effect)


def _poll(actors: list[Actor], model: Model, log: list[str], wait: float = 0.0) -> None:
    for a in actors:
        if a.pending is not None:
            fut, kind, effect = a.pending
            with contextlib.suppress(FutureTimeout):
                err = fut.result(wait)
                a.pending = None
                _settle(a, kind, effect, err, model, log)


def drive(port: int, seed: int, model: Model, steps: int = 80) -> list[str]:
    rng, log = random.Random(seed), []
    actors = [Actor(f"c{i}", connect(port, True), ThreadPoolExecutor(1)) for i in range(3)]
    auto = Actor("auto", connect(port, True), ThreadPoolExecutor(1))
    try:
        for step in range(steps):
            _poll(actors + [auto], model, log)
            free = [a for a in actors + [auto] if a.pending is None]
            if not free:
                _poll(actors + [auto], model, log, wait=0.2)
                continue
            a, r, d, tag = rng.choice(free), rng.randint(1, HOT), rng.choice([-3, -1, 1, 2, 5]), f"s{seed}-{step}"
            if a is auto:
                if rng.random() < 0.5:
                    _submit(a, "auto", ("hot", r, d), "UPDATE hot SET v = v + %s WHERE id = %s", (d, r), model, log)
                else:
                    _submit(a, "auto", ("item", tag, 0), "INSERT INTO items (tag) VALUES (%s)", (tag,), model, log)
                continue
            if not a.in_txn:
                _submit(a, "begin", None, "BEGIN", None, model, log)
                continue
            names = [n for n, _ in a.savepoints]
            choice = rng.choice(["update", "update", "update", "lock", "insert", "savepoint", "rollback_to",
                                 "release", "commit", "commit", "rollback"])
            if choice in ("rollback_to", "release") and not names:
                choice = "savepoint"
            if choice == "update":
                _submit(a, "write", ("hot", r, d), "UPDATE hot SET v = v + %s WHERE id = %s", (d, r), model, log)
            elif choice == "lock":
                _submit(a, "lock", None, "SELECT v FROM hot WHERE id = %s FOR UPDATE", (r,), model, log)
            elif choice == "insert":
                _submit(a, "write", ("item", tag, 0), "INSERT INTO items (tag) VALUES (%s)", (tag,), model, log)
            elif choice == "savepoint":
                sp = f"sp{rng.randint(1, 3)}"
                _submit(a, "savepoint", sp, f"SAVEPOINT {sp}", None, model, log)
            elif choice in ("rollback_to", "release"):
                sp = rng.choice(names)
                sql = f"ROLLBACK TO SAVEPOINT {sp}" if choice == "rollback_to" else f"RELEASE SAVEPOINT {sp}"
                _submit(a, choice, sp, sql, None, model, log)
            else:
                _submit(a, choice, None, choice.upper(), None, model, log)
        deadline = time.monotonic() + 20  # quiesce: every blocked statement ends, every transaction ends
        while any(a.pending or a.in_txn for a in actors + [auto]):
            assert time.monotonic() < deadline, "statements still blocked after 20 s:\n" + "\n".join(log[-30:])
            _poll(actors + [auto], model, log, wait=0.5)
            for a in actors:
                if a.in_txn and a.pending is None:
                    end = rng.choice(["commit", "rollback"])
                    _submit(a, end, None, end.upper(), None, model, log)
        return log
    finally:
        for a in actors + [auto]:
            a.ex.shutdown(wait=True)
            a.conn.close()


@pytest.mark.timeout(150)
async def test_random_interleavings_of_conflicting_transactions(cluster: LocalCluster,
                                                                http: aiohttp.ClientSession) -> None:
    sections = {"transactions": {"lock_wait_timeout_s": 1}, "mysql": {"max_statement_time_s": 5}}
    async with coordinator(cluster, http, **sections) as run:
        port = run.cfg.ports.mysql
        await in_thread(run_sql, port, "CREATE TABLE hot (id INT PRIMARY KEY, v BIGINT NOT NULL)",
                        "CREATE TABLE items (id BIGINT AUTO_INCREMENT PRIMARY KEY, tag VARCHAR(40) NOT NULL, "
                        "KEY (tag))", "INSERT INTO hot VALUES " + ", ".join(f"({i}, 0)" for i in range(1, HOT + 1)))
        model, outcomes = Model(), Counter[str]()
        for seed in range(6):
            log = await in_thread(drive, port, seed, model)
            outcomes.update(line.rsplit(" ", 1)[1] for line in log)
            data = await converged(cluster, run)  # every replica identical, the leader included
            assert dict(data["hot"]) == model.hot, f"seed {seed}: hot rows differ from the model\n" + "\n".join(log)
            tags = Counter(row[1] for row in data["items"])
            assert set(tags) == model.items and all(n == 1 for n in tags.values()), f"seed {seed}: items differ"
        assert outcomes["ok"] > 200 and outcomes["blocked"] >= 5, outcomes  # the steps did conflict
        print(f"\ninterleavings over 6 seeds: outcomes {dict(outcomes)}; hot {model.hot}, {len(model.items)} items")
