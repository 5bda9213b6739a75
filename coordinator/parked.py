"""Parked writes: autocommit writes that met a row lock, each run on a leader connection of its own.

The leader's batch never waits for a row lock (``batchsql.leader_execute`` runs it with
``innodb_lock_wait_timeout=0``): a write that needs a row an interactive transaction holds
answers 1205 at once, and the core parks it (``core.lanes``). This module carries out its
lane's actions: ``ParkedRun`` (BEGIN, its statements waiting for their locks — as long as
the client still waits for its answer), then ``CommitTxn`` (its log row and COMMIT) or
``LaneEnd`` (ROLLBACK). Only that write waits for the lock; the batch goes on.

Who owns what: each lane's connection belongs to its lane from ``ParkedRun`` until its
commit or end (``_running`` while its statements run, ``_held`` after); afterwards a clean
one goes back to a small idle pool per replica (``_idle``). ``_ending`` marks lanes the
core ended while their run had not got its connection yet. Nothing here decides: failures
go back to the core as results.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import structlog

from . import batchsql, mysqlio
from .core.actions import CommitTxn, LaneEnd, ParkedRun
from .core.messages import Cause, Down, Event, Executed, FencedOut, LaneThread, Ok, Result, SqlFailed
from .errors import Fenced, ReplicaDown, StatementError

log = structlog.get_logger("coordinator.parked")

IDLE_PER_REPLICA = 8


class ParkedLanes:
    """The parked writes' leader connections (see the module docstring)."""

    def __init__(self, endpoint: Callable[[str], mysqlio.Endpoint], database: str, schema: str,
                 query_timeout_s: float, max_statement_s: float, step: Callable[[Event], None]) -> None:
        self._endpoint = endpoint
        self._db = database
        self._schema = schema
        self._t = query_timeout_s
        self._max_stmt = max_statement_s
        self._step = step
        self._held: dict[int, tuple[str, Any]] = {}  # lane -> (rid, connection with its open transaction)
        self._running: dict[int, tuple[str, int]] = {}  # lane -> (rid, server thread) while its statements run
        self._ending: set[int] = set()  # ended by the core before its run had a connection
        self._idle: dict[str, list[Any]] = {}

    async def run(self, a: ParkedRun) -> Result:
        try:
            conn = await self._connection(a.rid)
        except ReplicaDown as exc:
            self._ending.discard(a.lane)
            return Down(exc.cause, str(exc))
        if a.lane in self._ending:  # ended while connecting: never run it
            self._ending.discard(a.lane)
            self._keep(a.rid, conn)
            return Down(Cause.IO, "ended before it ran")
        tid = conn.thread_id()
        self._step(LaneThread(a.lane, a.seq, tid))
        self._running[a.lane] = (a.rid, tid)
        sql, owners = batchsql.parked_run(a.statements, a.seeds, a.time_us, a.lock_wait_s, self._max_stmt)
        try:  # each statement may wait for its lock and then run
            results = await mysqlio.run(conn, sql, self._t + (a.lock_wait_s + self._max_stmt) * len(a.statements))
        except StatementError as exc:  # the write's error (or a lock wait that ran out): roll back
            await self._release(a.rid, conn, "ROLLBACK")
            return SqlFailed(exc.errno, exc.message)
        except (ReplicaDown, Fenced) as exc:  # the thread may still wait there, holding locks: end it
            await self._kill(a.rid, tid)
            return Down(exc.cause if isinstance(exc, ReplicaDown) else Cause.IO, str(exc))
        finally:
            self._running.pop(a.lane, None)
        self._held[a.lane] = (a.rid, conn)
        return Ok(Executed((tuple(batchsql.per_request(owners, results, 1)[0]),)))

    async def commit(self, a: CommitTxn) -> Result:
        rid, conn = self._held.pop(a.lane, (a.rid, None))
        if conn is None:
            return Down(Cause.INTERNAL, f"parked lane {a.lane} has no connection")
        try:
            await mysqlio.run(conn, batchsql.txn_commit(self._schema, a.epoch, a.entry), self._t)
        except StatementError as exc:  # refused before COMMIT: nothing committed
            await self._release(rid, conn, "ROLLBACK")
            return SqlFailed(exc.errno, exc.message)
        except Fenced as exc:
            mysqlio.drop(conn)
            return FencedOut(str(exc))
        except ReplicaDown as exc:
            return Down(exc.cause, str(exc))
        self._keep(rid, conn)
        return Ok()

    async def end(self, a: LaneEnd) -> None:
        """Roll the lane back; if its statements are still running (waiting for a lock), end its
        server connection from another one so its locks go now, not after the lock wait."""
        held = self._held.pop(a.lane, None)
        if held is not None:
            await self._release(held[0], held[1], "ROLLBACK")
        elif a.lane in self._running:
            await self._kill(*self._running[a.lane], lane=a.lane)
        else:
            self._ending.add(a.lane)  # still connecting (or already over: then nothing to end)

    async def _kill(self, rid: str, tid: int, lane: int | None = None) -> None:
        conn = None
        try:
            conn = await mysqlio.connect(self._endpoint(rid))
            if lane is not None and self._running.get(lane) != (rid, tid):
                return  # it finished meanwhile: its connection may serve another lane now
            await mysqlio.kill_quietly(conn, tid, self._t)
        except (ReplicaDown, StatementError) as exc:
            log.info("parked_kill_failed", replica=rid, thread=tid, error=str(exc))
        finally:
            mysqlio.drop(conn)

    async def _connection(self, rid: str) -> Any:
        idle = self._idle.get(rid)
        if idle:
            return idle.pop()
        return await mysqlio.connect(self._endpoint(rid), self._db)

    async def _release(self, rid: str, conn: Any, sql: str) -> None:
        try:
            await mysqlio.run(conn, sql, self._t)
        except (ReplicaDown, StatementError, Fenced):
            mysqlio.drop(conn)
            return
        self._keep(rid, conn)

    def _keep(self, rid: str, conn: Any) -> None:
        idle = self._idle.setdefault(rid, [])
        if len(idle) < IDLE_PER_REPLICA:
            idle.append(conn)
        else:
            mysqlio.drop(conn)

    def close(self) -> None:
        for _rid, conn in self._held.values():
            mysqlio.drop(conn)
        for idle in self._idle.values():
            for conn in idle:
                mysqlio.drop(conn)
        self._held.clear()
        self._idle.clear()
