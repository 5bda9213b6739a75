"""The lean multi-result reader (``coordinator.multiresult``) against a real MariaDB, compared field by
field with asyncmy's own cursor on the same round trips: OK packets (rows affected, insert id, "Rows
matched", warnings), result sets in the middle of a batch (``INSERT … RETURNING``, a large SELECT
that outgrows the receive buffer), a failing statement (its position, the results before it, the
connection still usable), a batch of thousands of results, and a connection killed mid round trip.

The reader relies on asyncmy's internals (module docstring): these tests are what fails first
if an upgrade moves them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from coordinator import multiresult, mysqlio
from coordinator.errors import ReplicaDown, StatementError
from devcluster.cluster import LocalCluster
from tests.conftest import wait_for

DB = "multiresult_test"


async def asyncmy_results(conn: Any, sql: str) -> list[tuple[Any, ...]]:
    """The same five fields read through asyncmy's cursor (what mysqlio.run did before)."""
    out: list[tuple[Any, ...]] = []
    cur = conn.cursor()
    await cur.execute(sql)
    while True:
        data = None
        if cur.description:
            data = ([d[0] for d in cur.description], list(await cur.fetchall()))
        r = cur._result
        msg = r.message or b""
        i = msg.find(b"Rows matched: ")
        matched = int(msg[i + 14:msg.index(b" ", i + 14)]) if i >= 0 else -1
        out.append((cur.rowcount, cur.lastrowid or 0, matched, r.warning_count, data))
        if not await cur.nextset():
            return out


@pytest.fixture
async def conns(cluster: LocalCluster) -> AsyncIterator[tuple[Any, Any, mysqlio.Endpoint]]:
    host, port = cluster.address(cluster.node_names()[0], direct=True)
    ep = mysqlio.Endpoint(host, port, "root", "", 2.0, 10.0)
    a, b = await mysqlio.connect(ep), await mysqlio.connect(ep)
    await mysqlio.run(a, f"DROP DATABASE IF EXISTS {DB}; CREATE DATABASE {DB}; USE {DB}", 10)
    await mysqlio.run(b, f"USE {DB}", 10)
    try:
        yield a, b, ep
    finally:
        await mysqlio.run(b, f"DROP DATABASE IF EXISTS {DB}", 10)
        mysqlio.drop(a)
        mysqlio.drop(b)


def tables(suffix: str) -> str:
    return (f"CREATE TABLE t{suffix} (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(4), u INT UNIQUE);"
            f"INSERT INTO t{suffix} (v) VALUES ('a'), ('b'), ('c')")


async def both(a: Any, b: Any, body: str) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Run the same statements on two identical tables (ta through the lean reader, tb through
    asyncmy) and return both readings."""
    return (await multiresult.run(a, body.replace("{t}", "ta")),
            await asyncmy_results(b, body.replace("{t}", "tb")))


async def test_ok_packets_match_asyncmy_field_by_field(conns: tuple[Any, Any, Any]) -> None:
    a, b, _ = conns
    await mysqlio.run(a, tables("a") + ";" + tables("b"), 10)
    body = ";".join([
        "INSERT INTO {t} (v) VALUES ('d'), ('e')",  # two generated ids: the first one
        "INSERT INTO {t} (id, v) VALUES (1000, 'x')",  # an explicit id: MariaDB reports it
        "UPDATE {t} SET v = 'a' WHERE id <= 3",  # matched 3, changed 2
        "INSERT IGNORE INTO {t} (v) VALUES ('toolong')",  # a warning
        "INSERT INTO {t} (v, u) VALUES ('k', 1) ON DUPLICATE KEY UPDATE v = 'l'",
        "INSERT INTO {t} (v, u) VALUES ('k', 1) ON DUPLICATE KEY UPDATE v = 'm'",
        "DELETE FROM {t} WHERE id > 100000",
        "SET @x = 1",
        "BEGIN", "SAVEPOINT s1", "INSERT INTO {t} (v) VALUES ('z')", "ROLLBACK TO SAVEPOINT s1", "COMMIT",
    ])
    lean, ref = await both(a, b, body)
    assert lean == ref
    assert lean[0][:2] == (2, 4) and lean[1][1] == 1000 and lean[2][:3] == (2, 0, 3) and lean[3][3] == 1


async def test_result_sets_in_the_middle_are_read_by_asyncmy(conns: tuple[Any, Any, Any]) -> None:
    a, b, _ = conns
    await mysqlio.run(a, tables("a") + ";" + tables("b"), 10)
    body = ";".join([
        "INSERT INTO {t} (v) VALUES ('r') RETURNING id, v",
        "SELECT id, v FROM {t} WHERE id < 0",  # an empty result set
        "UPDATE {t} SET v = 'q' WHERE id = 1",
        "SELECT REPEAT('x', 1000) AS big FROM seq_1_to_600",  # ~600 KB: more than the receive buffer
        "INSERT INTO {t} (v) VALUES ('s')",
    ])
    lean, ref = await both(a, b, body)
    assert lean == ref
    assert lean[0][4] == (["id", "v"], [(4, "r")]) and lean[1][4] == (["id", "v"], [])
    assert len(lean[3][4][1]) == 600 and lean[4][1] == 5


async def test_a_failing_statement_stops_the_batch_with_what_ran_before(conns: tuple[Any, Any, Any]) -> None:
    a, b, _ = conns
    await mysqlio.run(a, tables("a"), 10)
    with pytest.raises(StatementError) as info:
        await mysqlio.run(a, "INSERT INTO ta (v) VALUES ('n'); UPDATE ta SET v='w' WHERE id=1; "
                             "INSERT INTO ta (id, v) VALUES (1, 'dup'); INSERT INTO ta (v) VALUES ('never')", 10)
    err = info.value
    assert (err.errno, err.position) == (1062, 2) and "Duplicate entry '1'" in err.message
    assert [r[:3] for r in err.results] == [(1, 4, -1), (1, 0, 1)]
    # the server stopped there, and the connection is still in step
    assert (await mysqlio.fetch(a, "SELECT COUNT(*) FROM ta WHERE v = 'never'", 5))[1] == [(0,)]
    with pytest.raises(StatementError) as info:
        await mysqlio.run(a, "INSERT INTO ta (v) VALUES ('ok') RETURNING id; INSERT INTO ta (v) VALUES ('x') "
                             "RETURNING nosuchcolumn", 10)
    assert (info.value.errno, info.value.position) == (1054, 1)
    assert info.value.results[0][4] == (["id"], [(5,)])
    assert await mysqlio.run(a, "SELECT 1", 5) == [(1, 0, -1, 0, (["1"], [(1,)]))]


async def test_thousands_of_results_in_one_round_trip(conns: tuple[Any, Any, Any]) -> None:
    a, b, _ = conns
    await mysqlio.run(a, tables("a") + ";" + tables("b"), 10)
    body = ";".join(["BEGIN", *(f"INSERT INTO {{t}} (v) VALUES ('{i % 100}')" for i in range(3000)), "COMMIT"])
    lean, ref = await both(a, b, body)
    assert lean == ref and len(lean) == 3002 and lean[-2][1] == 3003


async def test_a_connection_killed_mid_round_trip_is_down_and_dropped(conns: tuple[Any, Any, Any]) -> None:
    a, b, ep = conns
    victim = await mysqlio.connect(ep)
    thread = victim.thread_id()

    async def kill_when_sleeping() -> None:
        """KILL once the victim is inside its round trip: past the first result, in the SLEEP."""
        async def sleeping() -> bool:
            _, rows = await mysqlio.fetch(b, "SELECT COUNT(*) FROM information_schema.processlist "
                                             f"WHERE id = {thread} AND state = 'User sleep'", 5)
            return bool(rows[0][0])

        await wait_for(sleeping, 5, "the victim's round trip to reach its SLEEP")
        await mysqlio.run(b, f"KILL CONNECTION {thread}", 5)

    killer = asyncio.create_task(kill_when_sleeping())
    with pytest.raises(ReplicaDown):
        await mysqlio.run(victim, "SELECT 1; DO SLEEP(5); SELECT 2", 10)
    await killer
    with pytest.raises(ReplicaDown):
        await mysqlio.run(victim, "SELECT 1", 5)


async def test_raw_bytes_in_a_literal_reach_the_server_exactly(conns: tuple[Any, Any, Any]) -> None:
    """A client's blob bytes that are not UTF-8 travel as surrogate escapes (the MySQL front end
    decodes with surrogateescape); they must leave as the very same bytes."""
    a, _, _ = conns
    await mysqlio.run(a, "CREATE TABLE blobs (id INT PRIMARY KEY, b VARBINARY(16))", 10)
    raw = b"\x00\xff\x01\xfe'"
    literal = raw.replace(b"\\", b"\\\\").replace(b"'", b"\\'").replace(b"\x00", b"\\0")
    sql = b"INSERT INTO blobs VALUES (1, _binary'" + literal + b"'); SELECT b FROM blobs WHERE id = 1"
    res = await mysqlio.run(a, sql.decode("utf-8", "surrogateescape"), 10)
    assert res[0][0] == 1 and res[1][4] == (["b"], [(raw,)])
