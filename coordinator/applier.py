"""One applier per replica: carries out the core's actions on the replica's one connection.

The applier task owns that connection (and, during a catch-up or rebuild, one connection
to the peer or source it reads from); no other task touches them. It renders SQL
(``batchsql``), runs it with a timeout, translates what happened into a core result
(``Ok`` / ``Down`` with its cause / ``SqlFailed`` / ``FencedOut``) and steps it back. It
decides nothing: what to run next, and what a failure means, is the core's.

A connection in doubt (timeout, I/O error, cancellation mid round trip) is dropped by
``mysqlio`` and never reused; the next ``Open`` makes a fresh one.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

from . import batchsql, mysqlio, rebuild, schema
from .core import actions as A
from .core.messages import (
    Cause,
    Done,
    Down,
    Executed,
    FencedOut,
    Ok,
    Opened,
    PeerLog,
    RebuildProgress,
    Result,
    SqlFailed,
    StatementFailure,
)
from .errors import Fenced, ReplicaDown, StatementError

log = structlog.get_logger("coordinator.applier")


class Applier:
    """The task that owns replica ``rid``'s applier connection."""

    def __init__(self, rid: str, endpoint: Callable[[str], mysqlio.Endpoint], step: Callable[[Any], None],
                 schema_name: str, database: str, query_timeout_s: float, max_statement_s: float) -> None:
        self.rid = rid
        self.endpoint = endpoint
        self.step = step
        self.schema = schema_name
        self.db = database
        self.t = query_timeout_s
        self.max_stmt = max_statement_s
        self.conn: Any = None
        self.peer: tuple[str, Any] | None = None  # (peer id, connection) while catching up from it
        self.source: Any = None  # the rebuild source's connection, holding its snapshot
        self._next: A.ReplicaAction | None = None
        self._wake = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self._run: dict[type, Callable[[Any], Awaitable[Result]]] = {
            A.Open: self._open, A.Close: self._close, A.LookupEntry: self._lookup, A.LeadExecute: self._execute,
            A.LeadCommit: self._commit, A.Rollback: self._rollback, A.ApplyBatch: self._apply,
            A.AloneMark: self._mark, A.AloneRun: self._alone_run, A.AloneFinish: self._finish,
            A.AloneAbort: self._abort, A.ReadPeer: self._read_peer, A.RebuildBegin: self._rebuild_begin,
            A.RebuildCopy: self._rebuild_copy, A.RebuildAbort: self._rebuild_abort,
        }

    # --- lifecycle ---

    def start(self) -> None:
        self.task = asyncio.create_task(self._loop(), name=f"applier-{self.rid}")

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
            self.task = None
        self._next = None
        self._drop_all()

    def give(self, action: A.ReplicaAction) -> None:
        assert self._next is None, (self.rid, self._next, action)
        self._next = action
        self._wake.set()

    def _drop_all(self) -> None:
        mysqlio.drop(self.conn)
        self.conn = None
        self._drop_peer()
        mysqlio.drop(self.source)
        self.source = None

    def _drop_peer(self) -> None:
        if self.peer is not None:
            mysqlio.drop(self.peer[1])
            self.peer = None

    async def _loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            action, self._next = self._next, None
            if action is None:
                continue
            if not isinstance(action, (A.ReadPeer, A.ApplyBatch, A.AloneMark, A.AloneRun, A.AloneFinish)):
                self._drop_peer()  # the catch-up from that peer is over
            result = await self._guard(self._run[type(action)](action))
            self.step(Done(self.rid, action.seq, result))

    async def _guard(self, work: Awaitable[Result]) -> Result:
        try:
            return await work
        except ReplicaDown as exc:  # our own connection (peers' failures are caught where they happen)
            mysqlio.drop(self.conn)
            self.conn = None
            return Down(exc.cause, str(exc))
        except StatementError as exc:
            return SqlFailed(exc.errno, exc.message)
        except Fenced as exc:
            return FencedOut(str(exc))
        except Exception as exc:  # a bug: the core treats it like I/O, the log says so loudly
            log.exception("applier_error", replica=self.rid)
            self._drop_all()
            return Down(Cause.INTERNAL, repr(exc))

    # --- helpers ---

    def _budget(self, statements: int) -> float:
        """How long a round trip that runs ``statements`` client statements may take: each may run up
        to the per-statement limit (``max_statement_time_s``) on every replica — a follower replays a
        statement about as long as the leader ran it — plus the query timeout. Bounding it by the
        query timeout alone would make a follower time out forever on a write the leader took longer
        than that over; a hung server is found by the monitor's polls, not by this."""
        return self.t + self.max_stmt * max(1, statements)

    async def _timed(self, sql: str, timeout_s: float | None = None) -> Ok:
        started = time.perf_counter()
        await mysqlio.run(self.conn, sql, timeout_s or self.t)
        return Ok(None, (time.perf_counter() - started) * 1000)

    async def _peer_call(self, rid: str, work: Callable[[Any], Awaitable[Any]]) -> Any:
        """Run ``work(conn)`` on another replica; its failures are the peer's, not ours."""
        if self.peer is None or self.peer[0] != rid:
            self._drop_peer()
            self.peer = (rid, await mysqlio.connect(self.endpoint(rid)))
        try:
            return await work(self.peer[1])
        except (ReplicaDown, StatementError):
            self._drop_peer()
            raise

    # --- actions ---

    async def _open(self, a: A.Open) -> Result:
        self._drop_all()
        conn = await mysqlio.connect(self.endpoint(self.rid))
        try:
            for thread in (a.kill_thread, *a.end_threads):
                if thread is not None:
                    try:
                        await mysqlio.kill_quietly(conn, thread, self.t)
                    except StatementError as exc:  # not ended: this replica's state is not to be read yet
                        raise ReplicaDown(f"cannot end our earlier connection {thread}: {exc.message}",
                                          Cause.IO) from None
            await schema.ensure(conn, self.schema, self.db, self.t)
            await mysqlio.run(conn, f"USE `{self.db}`", self.t)
            snap = await schema.read_state(conn, self.schema, self.t)
            present = await schema.present(conn, self.schema, a.check_ts, self.t)
        except BaseException:
            mysqlio.drop(conn)
            raise
        self.conn = conn
        return Ok(Opened(snap, conn.thread_id(), present))

    async def _close(self, _a: A.Close) -> Result:
        self._drop_all()
        return Ok()

    async def _lookup(self, a: A.LookupEntry) -> Result:
        for pid in a.peers:
            conn = None
            try:
                conn = await mysqlio.connect(self.endpoint(pid))
                entry = await schema.log_entry(conn, self.schema, a.ts, self.t)
            except (ReplicaDown, StatementError):
                continue
            finally:
                mysqlio.drop(conn)
            if entry is not None:
                return Ok(entry.epoch)
        return Ok(None)

    async def _execute(self, a: A.LeadExecute) -> Result:
        return await self._run_batch("", 0, a.items, a.time_us if a.begin else None, a.begin)

    async def _commit(self, a: A.LeadCommit) -> Result:
        sql, n = batchsql.leader_commit(self.schema, a.epoch, a.entries, a.trim_below)
        if not a.then:
            return await self._timed(sql)
        return await self._run_batch(sql, n, a.then, a.then_time_us, True)

    async def _run_batch(self, prefix: str, n_prefix: int, items: tuple[tuple[tuple[str, ...], tuple[int, int]], ...],
                         time_us: int | None, begin: bool) -> Result:
        """The clients' statements of a leader batch (``LeadExecute``), after ``prefix`` — the
        previous batch's COMMIT (``n_prefix`` results) when pipelined. A failure inside the
        prefix is the COMMIT's (raised: SqlFailed / Fenced / Down); one after it is the batch's."""
        sql, owners = batchsql.leader_execute(items, time_us, begin, self.max_stmt)
        started = time.perf_counter()
        try:
            results = await mysqlio.run(self.conn, f"{prefix};\n{sql}" if prefix else sql,
                                        self._budget(sum(len(stmts) for stmts, _ in items)))
            failed = None
        except StatementError as exc:
            if exc.position < n_prefix:
                raise
            results = exc.results
            pos = exc.position - n_prefix
            owner = owners[pos] if pos < len(owners) else None
            if owner is None:
                failed = StatementFailure(-1, -1, exc.errno, exc.message)
            else:
                failed = StatementFailure(owner[0], owner[1], exc.errno, exc.message)
        per = batchsql.per_request(owners, results[n_prefix:], len(items))
        return Ok(Executed(tuple(tuple(r) for r in per), failed), (time.perf_counter() - started) * 1000)

    async def _rollback(self, a: A.Rollback) -> Result:
        try:
            await mysqlio.run(self.conn, f"ROLLBACK TO SAVEPOINT {a.savepoint}" if a.savepoint else "ROLLBACK", self.t)
        except StatementError:
            pass
        return Ok()

    async def _apply(self, a: A.ApplyBatch) -> Result:
        return await self._timed(batchsql.follower_batch(self.schema, a.epoch, a.entries, a.trim_below),
                                 self._budget(sum(len(e.statements) for e in a.entries)))

    async def _mark(self, a: A.AloneMark) -> Result:
        return await self._timed(";".join([
            "BEGIN", batchsql.log_insert(self.schema, [a.entry]),
            batchsql.state_update(self.schema, a.epoch, ddl_pending=a.entry.ts), "COMMIT"]))

    async def _alone_run(self, a: A.AloneRun) -> Result:
        started = time.perf_counter()
        limit = f"SET STATEMENT lock_wait_timeout={math.ceil(a.lock_wait_s)} FOR " if a.lock_wait_s else ""
        for st in a.entry.statements:
            try:
                await mysqlio.run(self.conn, f"SET timestamp={batchsql.sql_time(a.entry.time_us)};\n{limit}{st.sql}",
                                  self.max_stmt + self.t + a.lock_wait_s)
            except StatementError as exc:
                if exc.errno not in a.tolerate:
                    raise
        return Ok(None, (time.perf_counter() - started) * 1000)

    async def _finish(self, a: A.AloneFinish) -> Result:
        e = a.entry
        return await self._timed(batchsql.state_update(self.schema, a.epoch, e, e.mark or None, 0))

    async def _abort(self, a: A.AloneAbort) -> Result:
        return await self._timed(";".join([
            "BEGIN", f"DELETE FROM `{self.schema}`.log WHERE ts={int(a.ts)}",
            batchsql.state_update(self.schema, a.epoch, ddl_pending=0), "COMMIT"]))

    async def _read_peer(self, a: A.ReadPeer) -> Result:
        async def read(conn: Any) -> PeerLog:
            snap = await schema.read_state(conn, self.schema, self.t)
            entries = await schema.read_log(conn, self.schema, a.after, a.limit, self.t)
            return PeerLog(snap.log_floor, tuple(entries))

        try:
            return Ok(await self._peer_call(a.peer, read))
        except ReplicaDown as exc:
            return Down(exc.cause, f"peer {a.peer}: {exc}", peer_failed=True)
        except StatementError as exc:
            return SqlFailed(exc.errno, f"peer {a.peer}: {exc.message}", peer_failed=True)

    async def _rebuild_begin(self, a: A.RebuildBegin) -> Result:
        mysqlio.drop(self.source)
        self.source = None
        try:
            self.source, snap = await rebuild.begin(self.endpoint(a.source), self.db, self.schema, self.t)
        except ReplicaDown as exc:
            return Down(exc.cause, f"source {a.source}: {exc}", peer_failed=True)
        except StatementError as exc:
            return SqlFailed(exc.errno, f"source {a.source}: {exc.message}", peer_failed=True)
        return Ok(snap)

    async def _rebuild_copy(self, a: A.RebuildCopy) -> Result:
        src, self.source = self.source, None
        try:
            rows = await rebuild.copy(src, self.conn, self.db, self.schema, self.t, a.epoch, a.applied_ts,
                                      a.applied_epoch, lambda pct: self.step(RebuildProgress(self.rid, pct)))
        except rebuild.SourceFailed as exc:
            return Down(Cause.IO, f"rebuild source: {exc}", peer_failed=True)
        finally:
            mysqlio.drop(src)
        return Ok(rows)

    async def _rebuild_abort(self, _a: A.RebuildAbort) -> Result:
        mysqlio.drop(self.source)
        self.source = None
        return Ok()
