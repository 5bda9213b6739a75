"""Real MySQL clients against the coordinator's MySQL port, on the real 4-node cluster.

What this module proves, each claim in its own test:

- the Debian ``mariadb`` CLI works in batch mode (DDL, writes, result output, ``USE``, the
  errno/SQLSTATE/text of refusals, duplicate keys, syntax errors and the internal schema)
  and interactively through a pty (prompt, ``use``, a query, ``\\s`` status, ``quit``);
- PyMySQL and asyncmy (text protocol, client-side parameters): autocommit writes,
  ``lastrowid``, ``rowcount`` with and without CLIENT_FOUND_ROWS, and awkward values
  (quotes, backslashes, NULL, binary bytes, 64-bit limits, microsecond datetimes,
  DECIMAL(30,10)) that read back identically through the coordinator and on every replica;
- SQLAlchemy 2 (pymysql dialect, AUTOCOMMIT, a pool of 4) Core and ORM, from several
  threads; every replica ends with the same rows the clients saw;
- node's mysql2 ``execute()`` (binary protocol, server-side prepared statements) with every
  parameter type it sends, and one prepared statement reused 200 times;
- session behaviour: multi-statements, per-connection ``LAST_INSERT_ID()``, ``SHOW
  WARNINGS``, ``DATABASE()``, refused ``USE``/``SET``, accepted ``SET NAMES``/autocommit,
  ``INSERT … RETURNING``;
- read consistency: ``session`` reads see the session's own writes with the preferred
  follower delayed, the per-statement ``eventual`` hint, a bogus value is refused, strong
  reads see every acknowledged write (even from another connection).

Blocking clients (PyMySQL, SQLAlchemy) run in worker threads: the coordinator serves from
this test's event loop. Every client, subprocess and fault is closed/healed in ``finally``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import os
import re
import shutil
from collections import Counter
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import asyncmy
import asyncmy.errors
import pymysql
import pymysql.constants.CLIENT
import pytest
from asyncmy.constants import CLIENT as AMY_CLIENT
from sqlalchemy import (
    Column,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    create_engine,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from tests.conftest import Running, direct, table_digest, wait_for

pytestmark = pytest.mark.mariadb

T = TypeVar("T")
NODE_MODULES = Path(__file__).resolve().parent / "node" / "node_modules"
CLIENT_TIMEOUT = 30.0  # any one client call; far above what a healthy call takes
needs_cli = pytest.mark.skipif(shutil.which("mariadb") is None, reason="the mariadb client is not installed")
needs_node = pytest.mark.skipif(shutil.which("node") is None or not (NODE_MODULES / "mysql2").is_dir(),
                                reason="node or tests/node/node_modules/mysql2 is missing")


# ============================================================================ helpers


def port_of(run: Running) -> int:
    return run.cfg.ports.mysql


def replica_ids(run: Running) -> list[str]:
    return [r.id for r in run.cfg.replicas]


async def in_thread(fn: Callable[..., T], *args: Any, timeout: float = CLIENT_TIMEOUT) -> T:
    """A blocking client call, off the event loop the coordinator runs on."""
    return await asyncio.wait_for(asyncio.to_thread(fn, *args), timeout)


async def converged(run: Running, timeout: float = 60) -> None:
    r = run.coord.replicator

    async def all_applied() -> bool:
        return all(r.replicas[n].available and r.replicas[n].applied_ts >= r.log.last_ts for n in replica_ids(run))

    await wait_for(all_applied, timeout, "every replica available and caught up with the whole log")


async def on_every_replica(cluster: Any, run: Running, sql: str) -> dict[str, list[tuple[Any, ...]]]:
    """``sql`` run directly on each replica (after they applied the whole log)."""
    await converged(run)
    return {rid: [tuple(r) for r in await direct(cluster, rid, sql)] for rid in replica_ids(run)}


async def assert_replicas_hold(cluster: Any, run: Running, sql: str, expected: list[tuple[Any, ...]]) -> None:
    seen = await on_every_replica(cluster, run, sql)
    for rid, rows in seen.items():
        assert rows == expected, f"{rid} differs for {sql!r}"


async def assert_replicas_identical(cluster: Any, run: Running) -> dict[str, Any]:
    await converged(run)
    digests = {rid: await table_digest(cluster, rid) for rid in replica_ids(run)}
    first = next(iter(digests.values()))
    for rid, d in digests.items():
        assert d == first, f"{rid} differs from the others"
    return first


# --- PyMySQL (blocking; every call through in_thread) ---


def pymysql_connect(port: int, **kw: Any) -> pymysql.connections.Connection:
    return pymysql.connect(host="127.0.0.1", port=port, user="root", password="", database="testdb",
                           autocommit=True, connect_timeout=5, read_timeout=CLIENT_TIMEOUT,
                           write_timeout=CLIENT_TIMEOUT, **kw)


@dataclass
class Result:
    rowcount: int
    lastrowid: int | None
    rows: list[tuple[Any, ...]] | None  # None: no result set (an OK)
    columns: list[str] | None = None
    warnings: int = 0


class PyMySQLClient:
    name = "pymysql"

    def __init__(self, conn: pymysql.connections.Connection) -> None:
        self.conn = conn

    @classmethod
    async def connect(cls, port: int, found_rows: bool = False, multi: bool = False) -> PyMySQLClient:
        flags = (pymysql.constants.CLIENT.FOUND_ROWS if found_rows else 0) | \
            (pymysql.constants.CLIENT.MULTI_STATEMENTS if multi else 0)
        return cls(await in_thread(lambda: pymysql_connect(port, client_flag=flags)))

    async def execute(self, sql: str, params: Any = None) -> Result:
        def run() -> Result:
            with self.conn.cursor() as cur:
                cur.execute(sql, params)
                rows = [tuple(r) for r in cur.fetchall()] if cur.description else None
                cols = [d[0] for d in cur.description] if cur.description else None
                return Result(cur.rowcount, cur.lastrowid, rows, cols, cur.warning_count)

        return await in_thread(run)

    async def close(self) -> None:
        await in_thread(self.conn.close)


class AsyncmyClient:
    name = "asyncmy"

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    @classmethod
    async def connect(cls, port: int, found_rows: bool = False, multi: bool = False) -> AsyncmyClient:
        flags = (AMY_CLIENT.FOUND_ROWS if found_rows else 0) | (AMY_CLIENT.MULTI_STATEMENTS if multi else 0)
        conn = await asyncio.wait_for(asyncmy.connect(host="127.0.0.1", port=port, user="root", password="",
                                                      db="testdb", autocommit=True, client_flag=flags,
                                                      connect_timeout=5), CLIENT_TIMEOUT)
        return cls(conn)

    async def execute(self, sql: str, params: Any = None) -> Result:
        async def run() -> Result:
            async with self.conn.cursor() as cur:
                await cur.execute(sql, params)
                rows = [tuple(r) for r in await cur.fetchall()] if cur.description else None
                cols = [d[0] for d in cur.description] if cur.description else None
                return Result(cur.rowcount, cur.lastrowid, rows, cols)

        return await asyncio.wait_for(run(), CLIENT_TIMEOUT)

    async def close(self) -> None:
        self.conn.close()


CLIENTS = {"pymysql": PyMySQLClient, "asyncmy": AsyncmyClient}
BOTH_CLIENTS = pytest.mark.parametrize("client_name", list(CLIENTS))


@contextlib.asynccontextmanager
async def connected(client_name: str, run: Running, **kw: Any) -> AsyncIterator[Any]:
    client = await CLIENTS[client_name].connect(port_of(run), **kw)
    try:
        yield client
    finally:
        await client.close()


def mysql_error(exc: BaseException) -> tuple[int, str]:
    """(errno, message) of a PyMySQL or asyncmy error."""
    args = exc.args
    return int(args[0]), str(args[1])


# --- the mariadb CLI ---


def cli_argv(port: int, *args: str) -> list[str]:
    return ["mariadb", "--no-defaults", "--protocol=tcp", "-h127.0.0.1", f"-P{port}", "-uroot", *args]


async def run_cli(port: int, sql: str, *extra: str, timeout: float = 20.0) -> tuple[int, str, str]:
    """``mariadb … testdb --batch -e sql``: (exit code, stdout, stderr)."""
    proc = await asyncio.create_subprocess_exec(*cli_argv(port, "testdb", "--batch", *extra, "-e", sql),
                                                stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode is not None
    return proc.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")


def cli_error(stderr: str) -> str:
    """The CLI's ``ERROR nnnn (SQLSTATE) at line n: …`` line (it may echo the statement first)."""
    lines = [ln for ln in stderr.splitlines() if ln.startswith("ERROR ")]
    assert len(lines) == 1, stderr
    return lines[0]


class PtySession:
    """A program on a pseudo-terminal: ``expect`` output markers, ``send`` lines."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.pos = 0  # output before this was consumed by an expect
        self.eof = False
        self.changed = asyncio.Event()
        self.master = -1
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self, argv: list[str]) -> None:
        master, slave = os.openpty()
        self.master = master
        env = {**os.environ, "TERM": "dumb", "HOME": os.environ.get("HOME", "/tmp")}
        try:
            self.proc = await asyncio.create_subprocess_exec(*argv, stdin=slave, stdout=slave, stderr=slave,
                                                             env=env, start_new_session=True)
        finally:
            os.close(slave)
        os.set_blocking(master, False)
        asyncio.get_running_loop().add_reader(master, self._readable)

    def _readable(self) -> None:
        try:
            data = os.read(self.master, 65536)
        except BlockingIOError:
            return
        except OSError:  # EIO: the program closed the terminal
            data = b""
        if data:
            self.buf.extend(data)
        else:
            self.eof = True
            asyncio.get_running_loop().remove_reader(self.master)
        self.changed.set()

    async def expect(self, marker: str | re.Pattern[str], timeout: float = 15.0) -> str:
        """Wait for ``marker`` after the last match; return the output up to and including it."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            text = self.buf[self.pos:].decode("utf-8", "replace")
            m = re.search(marker if isinstance(marker, re.Pattern) else re.escape(marker), text)
            if m:
                self.pos += len(text[:m.end()].encode("utf-8"))
                return text[:m.end()]
            if self.eof:
                raise AssertionError(f"EOF before {marker!r}; output:\n{self.buf.decode('utf-8', 'replace')}")
            left = deadline - loop.time()
            if left <= 0:
                raise AssertionError(f"no {marker!r} within {timeout}s; output:\n"
                                     f"{self.buf.decode('utf-8', 'replace')}")
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), left)

    def send(self, line: str) -> None:
        os.write(self.master, line.encode() + b"\r")

    async def close(self) -> int | None:
        if self.proc is not None and self.proc.returncode is None:
            try:
                await asyncio.wait_for(self.proc.wait(), 5)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        if self.master >= 0:
            if not self.eof:
                asyncio.get_running_loop().remove_reader(self.master)
            os.close(self.master)
            self.master = -1
        return self.proc.returncode if self.proc else None


# ============================================================================ 1. the mariadb CLI


@needs_cli
async def test_cli_batch_mode(cluster, fresh: Running) -> None:
    port = port_of(fresh)
    rc, out, err = await run_cli(port, "CREATE TABLE cli_t (id INT PRIMARY KEY, name VARCHAR(50) NOT NULL)")
    assert (rc, out, err) == (0, "", "")
    rc, out, err = await run_cli(port, "INSERT INTO cli_t VALUES (1, 'one'), (2, 'tab\\there')", "-vv")
    assert rc == 0, err
    assert "Query OK, 2 rows affected" in out
    rc, out, err = await run_cli(port, "SELECT id, name FROM cli_t ORDER BY id")
    assert (rc, out, err) == (0, "id\tname\n1\tone\n2\ttab\\there\n", "")
    rc, out, err = await run_cli(port, "USE testdb; SELECT COUNT(*) AS n FROM cli_t; SELECT DATABASE()")
    assert (rc, out, err) == (0, "n\n2\nDATABASE()\ntestdb\n", "")

    # refusals and server errors: exit code 1, the errno, SQLSTATE and a message naming the cause
    rc, out, err = await run_cli(port, "INSERT INTO cli_t VALUES (3, UUID())")
    assert rc == 1 and out == ""
    assert re.match(r"ERROR 1235 \(42000\) at line 1: .*UUID\(\)", cli_error(err)), err
    rc, out, err = await run_cli(port, "INSERT INTO cli_t VALUES (1, 'again')")
    assert rc == 1
    assert cli_error(err) == "ERROR 1062 (23000) at line 1: Duplicate entry '1' for key 'PRIMARY'", err
    for bad in ("SELECT id FORM cli_t", "INSERT INTO cli_t VALUS (3, 'x')", "UPDATE cli_t SET name = WHERE id = 1"):
        rc, out, err = await run_cli(port, bad)
        assert rc == 1, bad
        assert cli_error(err).startswith("ERROR 1064 (42000) at line 1: You have an error in your SQL syntax"), err
    rc, out, err = await run_cli(port, "SELECT * FROM _coordinator.state")
    assert rc == 1 and cli_error(err).startswith("ERROR 1142 (42000) at line 1: "), err
    assert "_coordinator" in cli_error(err)

    # the failed statements changed nothing anywhere
    await assert_replicas_hold(cluster, fresh, "SELECT id, name FROM cli_t ORDER BY id",
                               [(1, "one"), (2, "tab\there")])


@needs_cli
async def test_cli_misspelled_statement_is_a_syntax_error(fresh: Running) -> None:
    """MariaDB answers a statement with an unknown first word as a syntax error (1064)."""
    rc, out, err = await run_cli(port_of(fresh), "SELEC id FROM products")
    assert rc == 1
    assert cli_error(err).startswith("ERROR 1064 (42000) at line 1: You have an error in your SQL syntax"), err


@needs_cli
async def test_cli_interactive_session(fresh: Running) -> None:
    term = PtySession()
    try:
        await term.start(cli_argv(port_of(fresh)))
        banner = await term.expect("MariaDB [(none)]> ")
        assert "Welcome to the MariaDB monitor" in banner
        assert "coordinator" in banner  # the server version line names the coordinator
        term.send("use testdb")
        await term.expect("Database changed")
        await term.expect("MariaDB [testdb]> ")
        term.send("SELECT COUNT(*) AS n FROM products;")
        result = await term.expect("MariaDB [testdb]> ")
        assert re.search(r"\|\s+n\s+\|", result) and re.search(r"\|\s+0\s+\|", result), result
        assert "1 row in set" in result
        term.send("\\s")
        status = await term.expect("MariaDB [testdb]> ")
        assert re.search(r"Current database:\s+testdb", status), status
        assert re.search(r"Current user:\s+root@", status), status
        assert re.search(r"Server version:\s+\S+-coordinator", status), status
        term.send("quit")
        await term.expect("Bye")
    finally:
        rc = await term.close()
    assert rc == 0


@needs_cli
async def test_cli_admin_status_statistics(fresh: Running) -> None:
    if shutil.which("mariadb-admin") is None:
        pytest.skip("mariadb-admin is not installed")
    proc = await asyncio.create_subprocess_exec(
        "mariadb-admin", "--no-defaults", "--protocol=tcp", "-h127.0.0.1", f"-P{port_of(fresh)}", "-uroot", "status",
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), 20)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, err.decode()
    assert re.match(r"Uptime: \d+\s+Threads: \d+\s+Questions: \d+", out.decode()), out.decode()


# ============================================================================ 2. PyMySQL and asyncmy

VALUES_DDL = ("CREATE TABLE vals (id INT AUTO_INCREMENT PRIMARY KEY, s VARCHAR(200) NULL, b VARBINARY(64) NULL, "
              "big BIGINT NULL, ubig BIGINT UNSIGNED NULL, d DATE NULL, t DATETIME(6) NULL, "
              "num DECIMAL(30,10) NULL) DEFAULT CHARSET=utf8mb4")
VALUES_ROWS: list[tuple[Any, ...]] = [
    ("it's \"quoted\" \\ back\\slash -- not a comment; /* nor this */ ?", b"\x00\xff\x01'\"\\\n\r\x1a%s",
     2**63 - 1, 2**64 - 1, dt.date(2024, 2, 29), dt.datetime(2024, 2, 29, 13, 14, 15, 123456),
     Decimal("12345678901234567890.0123456789")),
    ("", b"", -(2**63), 0, dt.date(1000, 1, 1), dt.datetime(1970, 1, 1, 0, 0, 0, 1), Decimal("-0.0000000001")),
    (None, None, None, None, None, None, None),
    ("héllo ☃ 😀 \\' \\\\", bytes(range(3, 256, 4)), -1, 2**63, dt.date(9999, 12, 31),
     dt.datetime(9999, 12, 31, 23, 59, 59, 999999), Decimal("-99999999999999999999.9999999999")),
]


@BOTH_CLIENTS
async def test_driver_autocommit_writes_and_lastrowid(cluster, fresh: Running, client_name: str) -> None:
    async with connected(client_name, fresh) as db:
        await db.execute("CREATE TABLE ai (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(20) NOT NULL)")
        r = await db.execute("INSERT INTO ai (v) VALUES (%s)", ["a"])
        assert (r.rowcount, r.lastrowid, r.rows) == (1, 1, None)
        r = await db.execute("INSERT INTO ai (v) VALUES (%s)", ["b"])
        assert (r.rowcount, r.lastrowid) == (1, 2)
        r = await db.execute("INSERT INTO ai (v) VALUES ('c'), ('d'), ('e')")
        assert (r.rowcount, r.lastrowid) == (3, 3)  # MySQL: the first id of a multi-row insert
        r = await db.execute("SELECT id, v FROM ai ORDER BY id")
        expected = [(1, "a"), (2, "b"), (3, "c"), (4, "d"), (5, "e")]
        assert r.rows == expected
    # autocommit: acknowledged writes are on every replica without any COMMIT
    await assert_replicas_hold(cluster, fresh, "SELECT id, v FROM ai ORDER BY id", expected)


@BOTH_CLIENTS
async def test_driver_update_rowcount_affected_vs_found_rows(fresh: Running, client_name: str) -> None:
    async with connected(client_name, fresh) as db:
        await db.execute("CREATE TABLE rc (id INT PRIMARY KEY, v INT NOT NULL)")
        await db.execute("INSERT INTO rc VALUES (1, 5), (2, 0), (3, 0)")
        r = await db.execute("UPDATE rc SET v = 5 WHERE id IN (1, 2)")  # matches 2, changes 1
        assert r.rowcount == 1
        r = await db.execute("UPDATE rc SET v = 5 WHERE id IN (1, 2)")  # matches 2, changes 0
        assert r.rowcount == 0
    async with connected(client_name, fresh, found_rows=True) as db:
        r = await db.execute("UPDATE rc SET v = 7 WHERE id IN (1, 3)")  # matches 2, changes 2
        assert r.rowcount == 2
        r = await db.execute("UPDATE rc SET v = 7 WHERE id IN (1, 2)")  # matches 2, changes 1
        assert r.rowcount == 2
        r = await db.execute("UPDATE rc SET v = 7 WHERE id IN (1, 2)")  # matches 2, changes 0
        assert r.rowcount == 2
        r = await db.execute("UPDATE rc SET v = 7 WHERE id = 99")  # matches nothing
        assert r.rowcount == 0
        r = await db.execute("SELECT id, v FROM rc ORDER BY id")
        assert r.rows == [(1, 7), (2, 7), (3, 7)]


# asyncmy (like mysqlclient) escapes bytes as a quoted literal with the raw bytes in the query text; PyMySQL
# sends X'…' hex. Raw bytes that are not UTF-8 are a separate case.
VALUES_ROWS_ASCII_BYTES = [(r[0], b"\x00\x01'\"\\\n\r\x1a%s" if r[1] else r[1], *r[2:]) for r in VALUES_ROWS[:3]] + \
    [(VALUES_ROWS[3][0], bytes(range(0, 128, 2)), *VALUES_ROWS[3][2:])]


@pytest.mark.parametrize("client_name, rows", [
    pytest.param("pymysql", VALUES_ROWS, id="pymysql"),
    pytest.param("asyncmy", VALUES_ROWS_ASCII_BYTES, id="asyncmy-ascii-bytes"),
    pytest.param("asyncmy", VALUES_ROWS, id="asyncmy-binary-bytes"),
])
async def test_driver_parameter_values_round_trip_exactly(cluster, fresh: Running, client_name: str,
                                                          rows: list[tuple[Any, ...]]) -> None:
    cols = "s, b, big, ubig, d, t, num"
    async with connected(client_name, fresh) as db:
        await db.execute(VALUES_DDL)
        for i, row in enumerate(rows, start=1):
            r = await db.execute(f"INSERT INTO vals ({cols}) VALUES (%s, %s, %s, %s, %s, %s, %s)", row)
            assert (r.rowcount, r.lastrowid) == (1, i)
        expected = [(i, *row) for i, row in enumerate(rows, start=1)]
        r = await db.execute(f"SELECT id, {cols} FROM vals ORDER BY id")
        assert r.rows == expected
        # the values also work as parameters of a read (WHERE on binary, big and decimal values)
        first = rows[0]
        r = await db.execute("SELECT id FROM vals WHERE s = %s AND b = %s AND big = %s AND ubig = %s AND t = %s "
                             "AND num = %s", [first[0], first[1], first[2], first[3], first[5], first[6]])
        assert r.rows == [(1,)]
        r = await db.execute("SELECT COUNT(*) FROM vals WHERE s IS NULL AND b IS NULL")
        assert r.rows == [(1,)]
    await assert_replicas_hold(cluster, fresh, f"SELECT id, {cols} FROM vals ORDER BY id", expected)


# ============================================================================ 3. SQLAlchemy 2


class OrmBase(DeclarativeBase):
    pass


class Person(OrmBase):
    __tablename__ = "sa_people"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(50), unique=True)
    age: Mapped[int] = mapped_column()


def sqlalchemy_workload(port: int) -> dict[str, Any]:
    """Core then ORM through one engine (AUTOCOMMIT, a pool of 4), part of it from 4 threads."""
    engine = create_engine(f"mysql+pymysql://root@127.0.0.1:{port}/testdb", isolation_level="AUTOCOMMIT",
                           pool_size=4, max_overflow=0, pool_timeout=20,
                           connect_args={"connect_timeout": 5, "read_timeout": 30, "write_timeout": 30})
    out: dict[str, Any] = {}
    try:
        # --- Core ---
        md = MetaData()
        items = Table("sa_items", md, Column("id", Integer, primary_key=True, autoincrement=True),
                      Column("name", String(50), nullable=False), Column("qty", Integer, nullable=False),
                      Column("price", Numeric(10, 2)))
        md.create_all(engine)
        with engine.connect() as conn:
            out["core_first_pk"] = conn.execute(insert(items).values(name="first", qty=1,
                                                                     price=Decimal("1.50"))).inserted_primary_key[0]
            many = conn.execute(insert(items), [{"name": f"n{i}", "qty": i, "price": Decimal(i) / 4}
                                                for i in range(10)])
            out["core_many_rowcount"] = many.rowcount
            out["core_update_rowcount"] = conn.execute(
                update(items).where(items.c.qty < 3).values(qty=items.c.qty + 100)).rowcount
            out["core_delete_rowcount"] = conn.execute(delete(items).where(items.c.name == "n9")).rowcount
            out["core_rows"] = [tuple(r) for r in conn.execute(select(items).order_by(items.c.id))]
            out["core_sum"] = conn.execute(select(func.sum(items.c.qty))).scalar_one()

        # --- ORM ---
        OrmBase.metadata.create_all(engine)

        def worker(w: int) -> list[int]:
            ids = []
            with Session(engine) as s:
                for i in range(5):  # one INSERT per commit: lastrowid gives the key
                    p = Person(name=f"w{w}-{i}", age=w * 10 + i)
                    s.add(p)
                    s.commit()
                    ids.append(p.id)
            return ids

        with ThreadPoolExecutor(4) as ex:
            out["orm_thread_ids"] = list(ex.map(worker, range(4)))
        with Session(engine) as s:
            batch = [Person(name=f"batch{i}", age=i) for i in range(5)]
            s.add_all(batch)  # several rows in one flush (insertmanyvalues; RETURNING on MariaDB)
            s.commit()
            out["orm_batch_ids"] = [p.id for p in batch]
        with Session(engine) as s:
            p = s.scalars(select(Person).where(Person.name == "w0-0")).one()
            p.age = 99  # ORM UPDATE: SQLAlchemy checks its rowcount (FOUND_ROWS) is 1
            s.commit()
            out["orm_bulk_update_rowcount"] = s.execute(update(Person).where(Person.age >= 30)
                                                        .values(age=Person.age + 1)).rowcount
            s.commit()
            s.delete(s.scalars(select(Person).where(Person.name == "batch0")).one())
            s.commit()
            out["orm_query"] = [(q.id, q.name, q.age) for q in s.query(Person).order_by(Person.id)]
            out["orm_count"] = s.query(Person).count()
    finally:
        engine.dispose()
    return out


async def test_sqlalchemy_core_and_orm(cluster, fresh: Running) -> None:
    out = await in_thread(sqlalchemy_workload, port_of(fresh), timeout=120)
    # Core
    assert out["core_first_pk"] == 1
    assert out["core_many_rowcount"] == 10
    assert out["core_update_rowcount"] == 4  # qty 1 (first), 0, 1, 2
    assert out["core_delete_rowcount"] == 1
    core_expected = [(1, "first", 101, Decimal("1.50"))] + [
        (2 + i, f"n{i}", i + 100 if i < 3 else i, (Decimal(i) / 4).quantize(Decimal("0.01"))) for i in range(9)]
    assert out["core_rows"] == core_expected
    assert out["core_sum"] == 101 + sum(i + 100 if i < 3 else i for i in range(9))
    # ORM: every thread's ids are distinct and increasing within the thread
    thread_ids = out["orm_thread_ids"]
    flat = [i for ids in thread_ids for i in ids]
    assert len(set(flat)) == 20 and all(ids == sorted(ids) for ids in thread_ids)
    assert sorted(out["orm_batch_ids"]) == out["orm_batch_ids"] and min(out["orm_batch_ids"]) > max(flat)
    assert out["orm_bulk_update_rowcount"] == 6  # w0-0 (99) and w3-0..w3-4 (30..34)
    assert out["orm_count"] == 24
    people = {name: (pid, age) for pid, name, age in out["orm_query"]}
    assert people["w0-0"][1] == 100 and "batch0" not in people and people["w2-4"][1] == 24
    assert people["w3-0"][1] == 31
    # every replica holds exactly what the clients saw
    await assert_replicas_hold(cluster, fresh, "SELECT id, name, qty, price FROM sa_items ORDER BY id",
                               core_expected)
    await assert_replicas_hold(cluster, fresh, "SELECT id, name, age FROM sa_people ORDER BY id",
                               [tuple(r) for r in out["orm_query"]])
    await assert_replicas_identical(cluster, fresh)


# ============================================================================ 4. node mysql2 (binary protocol)

# The parameters mysql2 binds in COM_STMT_EXECUTE, one of each type it sends: numbers as
# DOUBLE, a string and a BigInt as VAR_STRING, a Buffer (binary bytes), NULL, a Date as
# DATETIME, a boolean as TINY.
NODE_PRELUDE = r"""
const mysql = require('mysql2/promise');
const [port, database] = [Number(process.argv[2]), process.argv[3]];
const STR = 'it\'s "q" \\ back\\slash ? ☃';
const BYTES = Buffer.from([0, 255, 1, 39, 92, 34, 10, 13, 26]);
const PARAMS = [42, -7, '9223372036854775807', -9007199254740993n, 3.25, STR, BYTES, null,
                new Date(Date.UTC(2024, 1, 29, 13, 14, 15, 123)), true];
const TABLE = '(id INT AUTO_INCREMENT PRIMARY KEY, i INT, neg INT, big BIGINT, big2 BIGINT, f DOUBLE, ' +
              's VARCHAR(100), b VARBINARY(50), n INT NULL, t DATETIME(3), flag BOOLEAN) DEFAULT CHARSET=utf8mb4';
const COLS = 'id, i, neg, big, big2, f, s, HEX(b) AS bhex, n, t, flag';
async function run(body) {
  const conn = await mysql.createConnection({host: '127.0.0.1', port, user: 'root', database,
    supportBigNumbers: true, bigNumberStrings: true, dateStrings: true, timezone: 'Z', connectTimeout: 5000});
  const out = {};
  try {
    await body(conn, out);
  } finally {
    await conn.end();
  }
  console.log(JSON.stringify(out));
}
async function failure(promise) {
  try {
    await promise;
    return 'no error';
  } catch (e) {
    return {errno: e.errno, sqlState: e.sqlState};
  }
}
function main(body) {
  run(body).catch(e => {
    console.log(JSON.stringify({error: e.message, errno: e.errno, sqlState: e.sqlState}));
    process.exit(1);
  });
}
"""

# Reads: the row is written with the text protocol; execute() binds every parameter type.
NODE_READS = NODE_PRELUDE + r"""
main(async (conn, out) => {
  await conn.query('CREATE TABLE node_r ' + TABLE);
  await conn.query("INSERT INTO node_r (i, neg, big, big2, f, s, b, n, t, flag) VALUES " +
    "(42, -7, 9223372036854775807, -9007199254740993, 3.25, ?, X'00FF01275C220A0D1A', NULL, " +
    "'2024-02-29 13:14:15.123', TRUE), (1, 1, 1, 1, 1, 'other', X'00', 1, '2000-01-01', FALSE)", [STR]);
  [out.match] = await conn.execute('SELECT ' + COLS + ' FROM node_r WHERE i = ? AND neg = ? AND big = ? AND ' +
    'big2 = ? AND f = ? AND s = ? AND b = ? AND n <=> ? AND t = ? AND flag = ?', PARAMS);
  [out.echo] = await conn.execute('SELECT ? AS i, ? AS neg, ? AS big, ? AS big2, ? AS f, ? AS s, HEX(?) AS bhex, ' +
    '? AS n, ? AS t, ? AS flag', PARAMS);
  const [bin] = await conn.execute('SELECT b FROM node_r WHERE b = ?', [BYTES]);
  out.binary = bin.map(r => r.b.toString('hex'));
  const stmt = await conn.prepare('SELECT id, s FROM node_r WHERE id = ? OR s = ? ORDER BY id');
  out.reused = [];
  for (let k = 0; k < 200; k++) {
    const [rows] = await stmt.execute([k % 3, k % 2 ? 'other' : 'none']);
    out.reused.push(rows.map(r => r.id));
  }
  stmt.close();
  out.missing = await failure(conn.execute('SELECT * FROM no_such_table WHERE id = ?', [1]));
});
"""

# Writes: server-side prepared INSERTs with every parameter type, one statement reused 200 times.
NODE_WRITES = NODE_PRELUDE + r"""
main(async (conn, out) => {
  await conn.query('CREATE TABLE node_t ' + TABLE);
  const [ins] = await conn.execute('INSERT INTO node_t (i, neg, big, big2, f, s, b, n, t, flag) ' +
                                   'VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)', PARAMS);
  out.insert = {affectedRows: ins.affectedRows, insertId: ins.insertId};
  [out.row] = await conn.execute('SELECT ' + COLS + ' FROM node_t WHERE id = ?', [ins.insertId]);
  await conn.query('CREATE TABLE node_many (k INT PRIMARY KEY, v VARCHAR(20), x DOUBLE)');
  const stmt = await conn.prepare('INSERT INTO node_many (k, v, x) VALUES (?, ?, ?)');
  out.affected = 0;
  for (let k = 0; k < 200; k++) {
    const [r] = await stmt.execute([k, `v${k}'`, k / 8]);
    out.affected += r.affectedRows;
  }
  out.dup = await failure(stmt.execute([5, 'dup', 0]));
  stmt.close();
  [out.count] = await conn.execute('SELECT COUNT(*) AS n, SUM(k) AS s FROM node_many');
  [out.few] = await conn.execute('SELECT k, v, x FROM node_many WHERE k IN (?, ?, ?) ORDER BY k', [0, 99, 199]);
  const [upd] = await conn.execute('UPDATE node_many SET v = ? WHERE k < ?', ['low', 10]);
  out.updated = upd.affectedRows;
});
"""
NODE_STR = 'it\'s "q" \\ back\\slash ? ☃'
NODE_BYTES = bytes([0, 255, 1, 39, 92, 34, 10, 13, 26])
NODE_ROW = {"id": 1, "i": 42, "neg": -7, "big": "9223372036854775807", "big2": "-9007199254740993", "f": 3.25,
            "s": NODE_STR, "bhex": NODE_BYTES.hex().upper(), "n": None, "t": "2024-02-29 13:14:15.123", "flag": 1}
NODE_ROW_DIRECT = (1, 42, -7, 2**63 - 1, -9007199254740993, 3.25, NODE_STR, NODE_BYTES, None,
                   dt.datetime(2024, 2, 29, 13, 14, 15, 123000), 1)


async def run_node(tmp_path: Path, source: str, port: int, database: str, timeout: float = 90.0) -> dict[str, Any]:
    """Run a mysql2 script against ``port``/``database``; its JSON output (it must exit 0)."""
    script = tmp_path / f"mysql2_{abs(hash(source))}.js"
    script.write_text(source)
    env = {**os.environ, "NODE_PATH": str(NODE_MODULES)}
    proc = await asyncio.create_subprocess_exec("node", str(script), str(port), database,
                                                stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE, env=env, cwd=str(NODE_MODULES.parent))
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    text = out.decode()
    assert proc.returncode == 0, (text, err.decode())
    return json.loads(text.strip().splitlines()[-1])


async def run_node_on_mariadb(cluster: Any, run: Running, tmp_path: Path, source: str) -> dict[str, Any]:
    """The same script straight against one replica's MariaDB, in a scratch database: the oracle."""
    rid = replica_ids(run)[0]
    _, port = cluster.address(rid, direct=True)
    await direct(cluster, rid, "DROP DATABASE IF EXISTS node_oracle; CREATE DATABASE node_oracle", db=None)
    try:
        return await run_node(tmp_path, source, port, "node_oracle")
    finally:
        await direct(cluster, rid, "DROP DATABASE IF EXISTS node_oracle", db=None)


@needs_node
async def test_node_mysql2_execute_reads_with_every_parameter_type(cluster, fresh: Running, tmp_path: Path) -> None:
    res = await run_node(tmp_path, NODE_READS, port_of(fresh), "testdb")
    assert res["match"] == [NODE_ROW]  # every parameter type compared equal to the stored row
    assert res["binary"] == [NODE_BYTES.hex()]
    assert res["echo"][0]["bhex"] == NODE_BYTES.hex().upper() and res["echo"][0]["n"] is None
    assert res["reused"] == [sorted({k % 3} & {1, 2} | ({2} if k % 2 else set())) for k in range(200)]
    assert res["missing"] == {"errno": 1146, "sqlState": "42S02"}
    # exactly what MariaDB itself answers to the same client and script
    assert res == await run_node_on_mariadb(cluster, fresh, tmp_path, NODE_READS)


@needs_node
async def test_node_mysql2_execute_writes_and_statement_reuse(cluster, fresh: Running, tmp_path: Path) -> None:
    res = await run_node(tmp_path, NODE_WRITES, port_of(fresh), "testdb")
    assert res["insert"] == {"affectedRows": 1, "insertId": 1}
    assert res["row"] == [NODE_ROW]
    assert res["affected"] == 200
    assert res["dup"] == {"errno": 1062, "sqlState": "23000"}
    assert res["count"] == [{"n": "200", "s": str(sum(range(200)))}]  # bigNumberStrings
    assert res["few"] == [{"k": 0, "v": "v0'", "x": 0}, {"k": 99, "v": "v99'", "x": 12.375},
                          {"k": 199, "v": "v199'", "x": 24.875}]
    assert res["updated"] == 10
    assert res == await run_node_on_mariadb(cluster, fresh, tmp_path, NODE_WRITES)
    # the server-side-prepared writes landed identically on every replica
    await assert_replicas_hold(cluster, fresh, "SELECT id, i, neg, big, big2, f, s, b, n, t, flag FROM node_t",
                               [NODE_ROW_DIRECT])
    await assert_replicas_hold(cluster, fresh, "SELECT COUNT(*), SUM(k), SUM(x), SUM(v = 'low') FROM node_many",
                               [(200, Decimal(sum(range(200))), sum(k / 8 for k in range(200)), Decimal(10))])


# ============================================================================ 5. session behaviour


async def test_multi_statement_query_gives_each_result(cluster, fresh: Running) -> None:
    conn = await in_thread(lambda: pymysql_connect(port_of(fresh),
                                                   client_flag=pymysql.constants.CLIENT.MULTI_STATEMENTS))
    try:
        def run() -> dict[str, Any]:
            seen: dict[str, Any] = {}
            with conn.cursor() as cur:
                cur.execute("CREATE TABLE ms (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(10) NOT NULL UNIQUE)")
                cur.execute("INSERT INTO ms (v) VALUES ('a'); SELECT id, v FROM ms ORDER BY id")
                seen["first"] = (cur.rowcount, cur.lastrowid, cur.description)
                seen["next1"] = cur.nextset()
                seen["rows"] = cur.fetchall()
                seen["next2"] = cur.nextset()
                # the first error stops the rest (as MySQL does)
                cur.execute("INSERT INTO ms (v) VALUES ('b'); INSERT INTO ms (v) VALUES ('a'); "
                            "INSERT INTO ms (v) VALUES ('c')")
                seen["before_error"] = cur.rowcount
                try:
                    cur.nextset()
                    seen["error"] = None
                except pymysql.MySQLError as exc:
                    seen["error"] = exc.args[0]
            with conn.cursor() as cur:
                cur.execute("SELECT v FROM ms ORDER BY v")
                seen["after"] = cur.fetchall()
            return seen

        seen = await in_thread(run)
    finally:
        await in_thread(conn.close)
    assert seen["first"] == (1, 1, None)
    assert seen["next1"] is True and seen["rows"] == ((1, "a"),) and seen["next2"] is None
    assert seen["before_error"] == 1 and seen["error"] == 1062
    assert seen["after"] == (("a",), ("b",))
    await assert_replicas_hold(cluster, fresh, "SELECT v FROM ms ORDER BY v", [("a",), ("b",)])


async def test_last_insert_id_is_per_connection(fresh: Running) -> None:
    async with connected("pymysql", fresh) as a, connected("pymysql", fresh) as b:
        await a.execute("CREATE TABLE li (id INT AUTO_INCREMENT PRIMARY KEY, who CHAR(1) NOT NULL)")
        assert (await a.execute("SELECT LAST_INSERT_ID()")).rows == [(0,)]
        ra = await a.execute("INSERT INTO li (who) VALUES ('a')")
        rb = await b.execute("INSERT INTO li (who) VALUES ('b'), ('b')")
        assert (ra.lastrowid, rb.lastrowid) == (1, 2)
        assert (await a.execute("SELECT LAST_INSERT_ID()")).rows == [(1,)]
        assert (await b.execute("SELECT LAST_INSERT_ID()")).rows == [(2,)]
        # a statement that inserts nothing keeps the session's value
        await a.execute("UPDATE li SET who = 'x' WHERE id = 99")
        assert (await a.execute("SELECT LAST_INSERT_ID()")).rows == [(1,)]
        # the value also survives reads and other connections' writes
        await b.execute("INSERT INTO li (who) VALUES ('b')")
        await a.execute("SELECT * FROM li")
        assert (await a.execute("SELECT LAST_INSERT_ID()")).rows == [(1,)]
        assert (await b.execute("SELECT LAST_INSERT_ID()")).rows == [(4,)]


async def test_session_function_aliases_name_their_columns(fresh: Running) -> None:
    """MariaDB names a result column by its alias: SELECT LAST_INSERT_ID() AS last -> column 'last'."""
    async with connected("pymysql", fresh) as db:
        r = await db.execute("SELECT LAST_INSERT_ID() AS last")
        assert (r.columns, r.rows) == (["last"], [(0,)])
        r = await db.execute("SELECT DATABASE() AS db")
        assert (r.columns, r.rows) == (["db"], [("testdb",)])


async def test_session_statements(cluster, fresh: Running) -> None:
    async with connected("pymysql", fresh) as db:
        assert (await db.execute("SELECT DATABASE()")).rows == [("testdb",)]
        r = await db.execute("SHOW WARNINGS")
        assert r.columns == ["Level", "Code", "Message"] and r.rows == []
        for ok in ("SET NAMES utf8mb4", "SET autocommit=1", "SET SESSION autocommit = ON", "USE testdb"):
            r = await db.execute(ok)
            assert r.rows is None, ok

        with pytest.raises(pymysql.MySQLError) as err:
            await db.execute("USE otherdb")
        errno, message = mysql_error(err.value)
        assert errno == 1044 and "otherdb" in message
        with pytest.raises(pymysql.MySQLError) as err:
            await in_thread(db.conn.select_db, "otherdb")  # COM_INIT_DB
        assert mysql_error(err.value)[0] == 1044
        assert (await db.execute("SELECT DATABASE()")).rows == [("testdb",)]

        with pytest.raises(pymysql.MySQLError) as err:
            await db.execute("SET sql_mode='ANSI'")
        errno, message = mysql_error(err.value)
        assert errno == 1235 and "sql_mode" in message and "replica" in message, message

        await db.execute("CREATE TABLE ret (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(20) NOT NULL)")
        # autocommit=0: a write opens a transaction (rolled back here: nothing is written anywhere)
        assert (await db.execute("SET autocommit=0")).rows is None
        assert (await db.execute("INSERT INTO ret (name) VALUES ('rolled back')")).rowcount == 1
        assert (await db.execute("SELECT COUNT(*) FROM ret")).rows == [(1,)]  # its own write
        assert (await db.execute("ROLLBACK")).rows is None
        assert (await db.execute("SELECT COUNT(*) FROM ret")).rows == [(0,)]
        await db.execute("ALTER TABLE ret AUTO_INCREMENT = 1")  # InnoDB keeps the rolled-back id taken
        assert (await db.execute("SET autocommit=1")).rows is None
        r = await db.execute("INSERT INTO ret (name) VALUES (%s), (%s) RETURNING id, name", ["x", "it's"])
        assert r.columns == ["id", "name"] and r.rows == [(1, "x"), (2, "it's")]
        # the session still works after all of that
        assert (await db.execute("SELECT name FROM ret ORDER BY id")).rows == [("x",), ("it's",)]
    await assert_replicas_hold(cluster, fresh, "SELECT id, name FROM ret ORDER BY id", [(1, "x"), (2, "it's")])


@pytest.mark.xfail(strict=True, raises=AssertionError, reason=(
    "known limitation (README, MySQL protocol): the leader runs a batch of many clients' statements in one "
    "round trip and each statement resets the server's warning list, so only the count survives; SHOW "
    "WARNINGS after a write answers ('Warning', 1000, '… details are not kept') instead of the leader's "
    "warning (MariaDB: ('Warning', 1062, \"Duplicate entry '1' for key 'PRIMARY'\") after INSERT IGNORE of "
    "a duplicate). Planned with the compound-statement leader batch (performance issue)"))
async def test_show_warnings_after_a_write_with_a_warning(fresh: Running) -> None:
    """MariaDB lists the statement's warnings: INSERT IGNORE of a duplicate is 1062 'Duplicate entry'."""
    async with connected("pymysql", fresh) as db:
        await db.execute("CREATE TABLE sw (id INT PRIMARY KEY)")
        await db.execute("INSERT INTO sw VALUES (1)")
        r = await db.execute("INSERT IGNORE INTO sw VALUES (1)")
        assert r.rowcount == 0
        assert r.warnings == 1
        r = await db.execute("SHOW WARNINGS")
        assert len(r.rows) == 1 and r.rows[0][0] == "Warning"
        assert r.rows[0][1] == 1062 and "Duplicate entry '1'" in r.rows[0][2], r.rows


# ============================================================================ 6. read consistency


async def warm_up_ranking(db: AsyncmyClient) -> None:
    """Some writes so the coordinator ranks the followers by how fast they acknowledge."""
    await db.execute("CREATE TABLE rw (id INT PRIMARY KEY, v VARCHAR(20) NOT NULL)")
    for i in range(5):
        await db.execute("INSERT INTO rw VALUES (%s, %s)", [i, f"warm{i}"])


def server_ports(cluster: Any, run: Running) -> tuple[str, int, set[int]]:
    """The leader, its server's port and the followers' ports (what ``SELECT @@port`` answers on each)."""
    leader = run.coord.replicator.leader_id
    ports = {rid: cluster.address(rid, direct=True)[1] for rid in replica_ids(run)}
    return leader, ports[leader], {p for rid, p in ports.items() if rid != leader}


async def test_session_consistency_reads_own_writes_with_fastest_follower_delayed(cluster, fresh: Running) -> None:
    leader, leader_port, followers = server_ports(cluster, fresh)
    async with connected("asyncmy", fresh) as db:
        await warm_up_ranking(db)
        await db.execute("SET coordinator_consistency = 'session'")
        fastest = fresh.coord.replicator.ranking[1]
        cluster.delay(fastest, 150)
        ports: list[int] = []
        try:
            for i in range(100, 120):
                await db.execute("INSERT INTO rw VALUES (%s, %s)", [i, f"s{i}"])
                r = await db.execute("SELECT v, @@port FROM rw WHERE id = %s", [i])
                assert [row[0] for row in r.rows] == [f"s{i}"], f"session read missed its own write {i}"
                ports.append(r.rows[0][1])
                r = await db.execute("UPDATE rw SET v = %s WHERE id = %s", [f"u{i}", i])
                assert r.rowcount == 1
                r = await db.execute("SELECT v, @@port FROM rw WHERE id = %s", [i])
                assert [row[0] for row in r.rows] == [f"u{i}"], f"session read missed its own update {i}"
                ports.append(r.rows[0][1])
        finally:
            cluster.heal()
        assert fresh.coord.replicator.leader_id == leader and set(ports) <= followers | {leader_port}, ports
        # session reads go to a follower that applied the session's last write (a quorum did): had
        # the session setting been ignored, every one of these would be a strong read on the leader
        assert set(ports) & followers, f"no session read was answered by a follower: {Counter(ports)}"
        # a strong read in the same connection is the leader's
        await db.execute("SET coordinator_consistency = 'strong'")
        assert (await db.execute("SELECT @@port")).rows == [(leader_port,)]


async def test_per_statement_eventual_hint(cluster, fresh: Running) -> None:
    leader, leader_port, followers = server_ports(cluster, fresh)
    async with connected("asyncmy", fresh) as db:
        await warm_up_ranking(db)
        await converged(fresh)
        r = await db.execute("/*+ consistency=eventual */ SELECT COUNT(*) FROM rw")
        assert r.rows == [(5,)]
        r = await db.execute("SELECT /*+ consistency=eventual */ v FROM rw WHERE id = %s", [3])
        assert r.rows == [("warm3",)]
        # every follower is caught up: the hinted reads go to followers, the others to the leader
        # (the session default is strong); had the hint been ignored, every port would be the leader's
        hinted = [(await db.execute(sql)).rows[0][0] for sql in
                  ["/*+ consistency=eventual */ SELECT @@port"] * 10 + ["SELECT /*+ consistency=eventual */ @@port"] * 10]
        assert fresh.coord.replicator.leader_id == leader and set(hinted) <= followers | {leader_port}, hinted
        assert set(hinted) & followers, f"no hinted read was answered by a follower: {Counter(hinted)}"
        plain = {(await db.execute("SELECT @@port")).rows[0][0] for _ in range(3)}
        assert plain == {leader_port}, plain
        with pytest.raises(asyncmy.errors.MySQLError) as err:
            await db.execute("/*+ consistency=sometimes */ SELECT 1")
        assert mysql_error(err.value)[0] == 1231


async def test_unknown_consistency_is_refused_naming_the_allowed_values(fresh: Running) -> None:
    async with connected("pymysql", fresh) as db:
        with pytest.raises(pymysql.MySQLError) as err:
            await db.execute("SET coordinator_consistency = 'bogus'")
        errno, message = mysql_error(err.value)
        assert errno == 1231 and "bogus" in message
        assert all(v in message for v in ("strong", "session", "eventual")), message
        # the session keeps working, and valid values are accepted
        for v in ("eventual", "session", "strong"):
            assert (await db.execute(f"SET coordinator_consistency = '{v}'")).rows is None
        assert (await db.execute("SELECT COUNT(*) FROM products")).rows == [(0,)]


async def test_strong_reads_see_every_acknowledged_write(cluster, fresh: Running) -> None:
    async with connected("asyncmy", fresh) as writer, connected("asyncmy", fresh) as reader:
        await warm_up_ranking(writer)
        fastest = fresh.coord.replicator.ranking[1]
        cluster.delay(fastest, 150)
        try:
            for i in range(100, 125):
                r = await writer.execute("INSERT INTO rw VALUES (%s, %s)", [i, f"strong{i}"])
                assert r.rowcount == 1
                # another connection, default (strong) consistency: the acknowledged write is visible
                r = await reader.execute("SELECT COUNT(*), MAX(id) FROM rw")
                assert r.rows == [(5 + i - 99, i)]
                r = await writer.execute("SELECT v FROM rw WHERE id = %s", [i])
                assert r.rows == [(f"strong{i}",)]
        finally:
            cluster.heal()
