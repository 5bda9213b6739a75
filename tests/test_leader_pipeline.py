"""The leader's pipelined round trip against a real MariaDB: a batch's COMMIT carries the next
batch (``LeadCommit.then``), which runs after the COMMIT in a transaction of its own; a client
error inside it is that batch's, never the COMMIT's; a fenced COMMIT runs nothing after it. And a
follower's batch is one compound statement: one result, its transaction left open on a failure.

Drives one ``Applier`` directly (no core): each action as the core would give it, each result
checked against what the server holds, read on a second connection."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from coordinator import batchsql, mysqlio
from coordinator.applier import Applier
from coordinator.core import actions as A
from coordinator.core.messages import Executed, FencedOut, Ok, Opened, SqlFailed
from coordinator.core.replog import Entry, EntryKind, Statement
from devcluster.cluster import LocalCluster

SCHEMA, DB = "_pipetest", "pipetest"
SEEDS = (11, 22)
T0 = 1_700_000_000_000_000


async def act(ap: Applier, action: Any) -> Any:
    """Carry out one action as the applier's task does, and return its result."""
    return await ap._guard(ap._run[type(action)](action))


async def rows(peek: Any, sql: str) -> list[tuple[Any, ...]]:
    return (await mysqlio.fetch(peek, sql, 5))[1]


def entry(ts: int, epoch: int, sql: str, res: tuple[Any, ...]) -> Entry:
    return batchsql.make_entry(ts, epoch, EntryKind.WRITE, (Statement(sql, res[1], res[0]),), T0, *SEEDS)


@pytest.fixture
async def applier(cluster: LocalCluster) -> AsyncIterator[tuple[Applier, Any, int]]:
    host, port = cluster.address(cluster.node_names()[0], direct=True)
    ep = mysqlio.Endpoint(host, port, "root", "", 2.0, 5.0)
    peek = await mysqlio.connect(ep)
    await mysqlio.run(peek, f"DROP DATABASE IF EXISTS {DB}; DROP DATABASE IF EXISTS {SCHEMA}; CREATE DATABASE {DB}; "
                            f"CREATE TABLE {DB}.t (id INT AUTO_INCREMENT PRIMARY KEY, v INT NOT NULL)", 10)
    ap = Applier("r1", lambda _rid: ep, lambda _ev: None, SCHEMA, DB, 5.0, 30.0)
    opened = await act(ap, A.Open("r1", 1, None))
    assert isinstance(opened, Ok) and isinstance(opened.value, Opened), opened
    try:
        yield ap, peek, opened.value.snapshot.epoch
    finally:
        mysqlio.drop(ap.conn)
        await mysqlio.run(peek, f"DROP DATABASE IF EXISTS {DB}; DROP DATABASE IF EXISTS {SCHEMA}", 10)
        mysqlio.drop(peek)


def batch(*sqls: str) -> tuple[tuple[tuple[str, ...], tuple[int, int]], ...]:
    return tuple(((s,), SEEDS) for s in sqls)


async def test_a_commit_carries_the_next_batch_and_a_client_error_there_is_that_batch_s(
        applier: tuple[Applier, Any, int]) -> None:
    ap, peek, epoch = applier
    first = await act(ap, A.LeadExecute("r1", 2, batch("INSERT INTO t (v) VALUES (1)"), True, T0))
    assert isinstance(first, Ok) and first.value.failed is None
    e1 = entry(1, epoch, "INSERT INTO t (v) VALUES (1)", first.value.results[0][0])
    carried = batch("INSERT INTO t (v) VALUES (2)", "INSERT INTO t (id, v) VALUES (1, 9)", "INSERT INTO t (v) VALUES (3)")
    got = await act(ap, A.LeadCommit("r1", 3, (e1,), epoch, 0, carried, T0 + 1000))
    # the COMMIT went through; the carried batch ran up to its duplicate key (request 1), which is its own error
    assert isinstance(got, Ok) and isinstance(got.value, Executed), got
    ex: Executed = got.value
    assert ex.failed is not None and (ex.failed.index, ex.failed.statement, ex.failed.errno) == (1, 0, 1062)
    assert [len(r) for r in ex.results] == [1, 0, 0] and ex.results[0][0][:2] == (1, 2)
    assert await rows(peek, f"SELECT ts FROM {SCHEMA}.log") == [(1,)]
    assert await rows(peek, f"SELECT v FROM {DB}.t ORDER BY id") == [(1,)]  # v=2 is not committed yet
    assert (await mysqlio.fetch(ap.conn, "SELECT @@in_transaction", 5))[1] == [(1,)]
    # the rest runs in the same transaction, then it commits like any batch
    rest = await act(ap, A.LeadExecute("r1", 4, batch("INSERT INTO t (v) VALUES (3)"), False, T0 + 1000))
    assert isinstance(rest, Ok) and rest.value.failed is None
    e2 = entry(2, epoch, "INSERT INTO t (v) VALUES (2)", ex.results[0][0])
    e3 = entry(3, epoch, "INSERT INTO t (v) VALUES (3)", rest.value.results[0][0])
    assert isinstance(await act(ap, A.LeadCommit("r1", 5, (e2, e3), epoch, 0)), Ok)
    assert await rows(peek, f"SELECT v FROM {DB}.t ORDER BY id") == [(1,), (2,), (3,)]
    assert await rows(peek, f"SELECT ts FROM {SCHEMA}.log ORDER BY ts") == [(1,), (2,), (3,)]


async def test_a_fenced_commit_runs_nothing_after_it(applier: tuple[Applier, Any, int]) -> None:
    ap, peek, epoch = applier
    first = await act(ap, A.LeadExecute("r1", 2, batch("INSERT INTO t (v) VALUES (1)"), True, T0))
    assert isinstance(first, Ok) and first.value.failed is None
    # a newer coordinator stored a higher epoch meanwhile
    await mysqlio.run(peek, f"UPDATE {SCHEMA}.state SET epoch = {epoch + 5}, epoch_seen = {epoch + 5} WHERE id = 1", 5)
    e1 = entry(1, epoch, "INSERT INTO t (v) VALUES (1)", first.value.results[0][0])
    got = await act(ap, A.LeadCommit("r1", 3, (e1,), epoch, 0, batch("INSERT INTO t (v) VALUES (2)"), T0))
    assert isinstance(got, FencedOut), got
    await act(ap, A.Rollback("r1", 4))
    assert await rows(peek, f"SELECT COUNT(*) FROM {DB}.t") == [(0,)]
    assert await rows(peek, f"SELECT COUNT(*) FROM {SCHEMA}.log") == [(0,)]


async def test_a_follower_batch_is_one_result_and_a_failure_leaves_it_open(applier: tuple[Applier, Any, int]) -> None:
    ap, peek, epoch = applier
    es = tuple(entry(ts, epoch, f"INSERT INTO t (v) VALUES ({ts})", (1, ts)) for ts in (1, 2, 3))
    sql = batchsql.follower_batch(SCHEMA, epoch, es)
    assert len(await mysqlio.run(ap.conn, sql, 5)) == 1  # the whole transaction answers once
    assert await rows(peek, f"SELECT id, v FROM {DB}.t ORDER BY id") == [(1, 1), (2, 2), (3, 3)]
    assert await rows(peek, f"SELECT applied_ts FROM {SCHEMA}.state") == [(3,)]
    # replaying an entry whose row is already there fails inside the block: nothing of it commits
    bad = (entry(4, epoch, "INSERT INTO t (v) VALUES (4)", (1, 4)), entry(5, epoch, "INSERT INTO t (id, v) VALUES (1, 5)", (1, 0)))
    got = await act(ap, A.ApplyBatch("r1", 9, bad, epoch, 0))
    assert isinstance(got, SqlFailed) and got.errno == 1062, got
    assert (await mysqlio.fetch(ap.conn, "SELECT @@in_transaction", 5))[1] == [(1,)]
    await act(ap, A.Rollback("r1", 10))
    assert await rows(peek, f"SELECT COUNT(*), MAX(id) FROM {DB}.t") == [(3, 3)]
    assert await rows(peek, f"SELECT applied_ts FROM {SCHEMA}.state") == [(3,)]
