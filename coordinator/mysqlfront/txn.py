"""Interactive transactions on the MySQL port: BEGIN … COMMIT across round trips.

A session's transaction runs on a leader connection *pinned* to it (as ProxySQL, MaxScale
and vtgate do) from its first write, locking read or SAVEPOINT until COMMIT or ROLLBACK.
Until then its reads are served like autocommit reads, so a session that only reads (an
ORM's implicit transaction) costs no leader connection; the price is that those early
reads each see the latest committed data rather than one snapshot.

On the pinned connection the clock is fixed at BEGIN (``NOW()`` inside a transaction is
the moment it began, for reads and writes alike, and every replica replays its writes with
that clock), and each write is recorded with its insert id. At COMMIT the writes become
one log entry: the core takes its timestamp at that commit point (the leader's commit order,
``core.lanes``) and ``CommitTxn`` writes its log row and COMMITs on the pinned connection;
the client's COMMIT is answered after the quorum. A transaction that wrote nothing commits
on its connection and leaves no log entry.

Who owns what: a session's ``Txn`` belongs to its connection's command task;
``Transactions`` (one per front end) counts pinned connections (``transactions.max_pinned``),
keeps clean ones for reuse, lists open transactions and rolls back idle ones.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog

from .. import batchsql, mysqlio
from ..core.actions import CommitTxn
from ..core.messages import Cause, Down, FencedOut, Ok, Result, SqlFailed
from ..core.outcomes import ApiError, WriteOutcome
from ..errors import ReplicaDown
from ..mysqlproto import constants as c
from . import errors as E
from .backend import Backend, Relayed, ServerError
from .errors import Failed
from .session import Session

log = structlog.get_logger("coordinator.mysqlfront")

LOCKING_READ = re.compile(r"\bFOR\s+UPDATE\b|\bLOCK\s+IN\s+SHARE\s+MODE\b|\bFOR\s+SHARE\b", re.I)
ER_LOCK_DEADLOCK = 1213
ER_CLIENT_INTERACTION_TIMEOUT = 4031
IDLE_POOL = 16  # clean pinned connections kept per (leader, result format) for the next transaction


@dataclass(eq=False)
class Txn:
    """A session's open transaction."""

    lane: int
    began_us: int  # wall clock at BEGIN: NOW() inside the transaction
    began: float  # monotonic, for its age
    read_only: bool
    pinned: Backend | None = None
    rid: str = ""  # the leader it is pinned to
    term: int = 0  # the leader term it was pinned in (core.lanes)
    writes: list[tuple[str, int, int]] = field(default_factory=list)  # (sql, insert id, rows)
    savepoints: list[tuple[str, int]] = field(default_factory=list)  # (name, writes before it)
    statements: int = 0
    last_active: float = 0.0
    committing: bool = False
    doomed: str = ""  # rolled back under the client (the leader term moved): told at its next statement


class Transactions:
    def __init__(self, front: Any) -> None:
        self.f = front
        self.cfg = front.cfg.transactions
        self.open: dict[int, tuple[Session, Txn]] = {}  # session id -> its transaction
        self.pinned = 0
        self._idle: dict[tuple[str, bool, bool], list[Backend]] = {}
        self._lanes = itertools.count(1)
        self._reaper: asyncio.Task[None] | None = None

    # --- lifecycle ---

    def start(self) -> None:
        self._reaper = asyncio.create_task(self._reap(), name="mysql-txn-reaper")

    def stop(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
        for s, txn in list(self.open.values()):
            self._end(s, txn, clean=False)
        for conns in self._idle.values():
            for b in conns:
                b.close()
        self._idle.clear()

    # --- begin and end ---

    def begin(self, s: Session, read_only: bool = False) -> Txn:
        now = time.monotonic()
        txn = Txn(next(self._lanes), time.time_ns() // 1000, now, read_only, last_active=now)
        self.open[s.id] = (s, txn)
        s.txn = txn
        s.in_trans, s.read_only_trans = True, read_only
        return txn

    def _end(self, s: Session, txn: Txn, clean: bool) -> None:
        """The transaction is over: its pinned connection goes back for reuse (``clean``: its
        COMMIT or ROLLBACK came back OK) or is closed (the server rolls back what it held)."""
        if self.open.get(s.id, (None, None))[1] is txn:
            del self.open[s.id]
        if s.txn is txn:
            s.txn = None
            s.in_trans = s.read_only_trans = False
        b, txn.pinned = txn.pinned, None
        if b is None:
            return
        self.pinned -= 1
        key = (txn.rid, b.deprecate_eof, b.found_rows)
        idle = self._idle.setdefault(key, [])
        if clean and not b.broken and txn.rid == self.f.replicator.leader_id and len(idle) < IDLE_POOL:
            idle.append(b)
        else:
            b.close()

    def dropped(self, s: Session) -> None:
        """The client went away: an open transaction is rolled back (its connection closed)."""
        if s.txn is not None:
            self._end(s, s.txn, clean=False)

    def abort(self, s: Session, txn: Txn, why: str, reason: str) -> Failed:
        """End the transaction on our side (rolled back) and tell the client to retry it (1213)."""
        self._end(s, txn, clean=False)
        self.f.events.emit("txn_aborted", f"MySQL session {s.id}: transaction rolled back: {why}", session=s.id,
                           reason=reason, statements=txn.statements, writes=len(txn.writes))
        return Failed(ER_LOCK_DEADLOCK, "40001", f"Deadlock found when trying to get lock; try restarting "
                      f"transaction ({why})")

    def _doom(self, s: Session, txn: Txn, why: str) -> None:
        """The leader term moved under an open transaction: its connection to the old leader is
        closed now (the server rolls back and its locks go — they would block that server's
        replication as a follower), and the client is told at its next statement, as a
        deadlock victim is (1213): the transaction is over, retry it."""
        b, txn.pinned = txn.pinned, None
        if b is not None:
            self.pinned -= 1
            b.close()
        txn.doomed = why
        self.f.events.emit("txn_aborted", f"MySQL session {s.id}: transaction rolled back: {why}", session=s.id,
                           reason="leader_changed", statements=txn.statements, writes=len(txn.writes))

    def doomed(self, s: Session, txn: Txn) -> Failed:
        self._end(s, txn, clean=False)
        return Failed(ER_LOCK_DEADLOCK, "40001", f"Deadlock found when trying to get lock; try restarting "
                      f"transaction ({txn.doomed})")

    # --- the pinned connection ---

    async def pin(self, s: Session, txn: Txn) -> Backend:
        """The transaction's leader connection (pinned at its first need); refuses a transaction
        whose leader term is gone (``abort``)."""
        rep = self.f.replicator
        if txn.doomed:
            raise self.doomed(s, txn)
        if txn.pinned is not None:
            if rep.lane_term() != txn.term or rep.leader_id != txn.rid:
                raise self.abort(s, txn, "the leader changed (or its connection was reset) during the transaction",
                                 "leader_changed")
            return txn.pinned
        term = rep.lane_term()
        if term is None:
            raise Failed(c.ER_OPTION_PREVENTS_STATEMENT, "HY000", "no verified leader right now (a failover or "
                         "recovery is under way); the statement did not run — retry shortly")
        if self.pinned >= self.cfg.max_pinned:
            self.f.count("txn_refused")
            raise Failed(c.ER_CON_COUNT_ERROR, "08004", f"Too many connections: {self.pinned} open transactions hold "
                         "pinned leader connections (transactions.max_pinned); the statement did not run — retry")
        rid = rep.leader_id
        self.pinned += 1
        b = None
        try:
            b = self._reuse(rid, s) or await self._connect(rid, s)
            t = self.f.cfg.mysql.query_timeout_s
            await b.query(f"SET timestamp={batchsql.sql_time(txn.began_us)}", t)
            await b.query("START TRANSACTION READ ONLY" if txn.read_only else "START TRANSACTION", t)
        except BaseException as exc:  # also cancelled (the client went away): the slot is given back
            self.pinned -= 1
            if b is not None:
                b.close()
            if not isinstance(exc, (ReplicaDown, ServerError)):
                raise
            raise Failed(c.ER_OPTION_PREVENTS_STATEMENT, "HY000", f"cannot open the transaction on the leader "
                         f"({exc}); the statement did not run — retry") from None
        txn.pinned, txn.rid, txn.term = b, rid, term
        return b

    def _reuse(self, rid: str, s: Session) -> Backend | None:
        idle = self._idle.get((rid, s.deprecate_eof, s.found_rows))
        return idle.pop() if idle else None

    async def _connect(self, rid: str, s: Session) -> Backend:
        m, tx = self.f.cfg.mysql, self.cfg
        init = (f"SET SESSION innodb_lock_wait_timeout={tx.lock_wait_timeout_s}, "
                f"SESSION max_statement_time={m.max_statement_time_s:g}")
        return await Backend.connect(self.f.replicator.endpoint(rid), self.f.cfg.coordinator.database,
                                     s.deprecate_eof, init, c.CLIENT_FOUND_ROWS if s.found_rows else 0)

    async def run(self, s: Session, txn: Txn, text: str, sink: Callable[[bytes, bool], None]) -> Relayed:
        """One client statement on the pinned connection, its answer relayed to the client.
        A lost connection loses the transaction (the server rolled it back)."""
        b = await self.pin(s, txn)
        txn.statements += 1
        txn.last_active = time.monotonic()
        m = self.f.cfg.mysql
        try:
            return await b.relay(bytes([c.COM_QUERY]) + text.encode("utf-8", "surrogateescape"), sink,
                                 m.query_timeout_s + m.max_statement_time_s + self.cfg.lock_wait_timeout_s)
        except ReplicaDown as exc:
            if txn.doomed:  # closed under the statement by the leader change (one event already)
                raise self.doomed(s, txn) from None
            raise self.abort(s, txn, f"the connection to the leader failed ({exc})", "connection_lost") from None
        finally:
            txn.last_active = time.monotonic()  # idle from the end of its last statement (a lock wait is not idle)

    # --- COMMIT and ROLLBACK ---

    async def commit(self, s: Session, txn: Txn) -> WriteOutcome | None:
        """COMMIT: nothing written → commit on the connection (no log entry); else one log
        entry in the leader's commit order, answered after the quorum (raises Failed)."""
        b = txn.pinned
        if txn.doomed:
            raise self.doomed(s, txn)
        if b is None:
            self._end(s, txn, clean=True)
            return None
        if not txn.writes:
            await self._finish_on(s, txn, "COMMIT")
            return None
        await self.pin(s, txn)  # the term check
        txn.committing = True
        ran: list[Result] = []
        started: list[bool] = []

        async def run_commit(a: CommitTxn) -> Result:
            started.append(True)
            r = await self._commit_on(b, a)
            ran.append(r)
            return r

        try:
            out: WriteOutcome = await self.f.replicator.commit_txn(
                txn.lane, txn.rid, txn.term, tuple(txn.writes), txn.began_us, b.thread_id, run_commit)
        except ApiError as err:
            if not started:  # refused before its COMMIT was sent: roll it back on its connection
                await self._finish_on(s, txn, "ROLLBACK", quiet=True)
            elif not ran:  # answered while its COMMIT still runs there (outcome unknown): leave it, close
                self._end(s, txn, clean=False)
            else:
                self._end(s, txn, clean=isinstance(ran[0], (SqlFailed, FencedOut)) and not b.broken)
            if err.code == "txn_aborted":
                self.f.events.emit("txn_aborted", f"MySQL session {s.id}: COMMIT refused: {err.message}",
                                   session=s.id, reason="commit_refused", writes=len(txn.writes))
            raise Failed(*E.of_api_error(err)) from None
        self._end(s, txn, clean=bool(ran) and isinstance(ran[0], Ok))
        return out

    async def _commit_on(self, b: Backend, a: CommitTxn) -> Result:
        """CommitTxn on the pinned connection: the log row, the applied position, COMMIT."""
        schema, t = self.f.cfg.coordinator.internal_schema, self.f.cfg.mysql.query_timeout_s
        try:
            await b.query(batchsql.log_insert(schema, [a.entry]), t)
            await b.query(batchsql.state_update(schema, a.epoch, a.entry), t)
            await b.query("COMMIT", t)
            return Ok()
        except ServerError as exc:  # refused before COMMIT: the transaction is still open; end it
            try:
                await b.query("ROLLBACK", t)
            except (ServerError, ReplicaDown):
                b.close()
            if exc.errno == mysqlio.FENCE_ERRNO and mysqlio.is_fence(exc.message):
                return FencedOut(exc.message)
            return SqlFailed(exc.errno, exc.message)
        except ReplicaDown as exc:
            return Down(exc.cause, str(exc))
        except Exception as exc:  # a bug: in doubt, and loudly
            log.exception("txn_commit_crashed")
            b.close()
            return Down(Cause.INTERNAL, repr(exc))

    async def rollback(self, s: Session, txn: Txn) -> None:
        if txn.pinned is None:
            self._end(s, txn, clean=True)
            return
        await self._finish_on(s, txn, "ROLLBACK")

    async def _finish_on(self, s: Session, txn: Txn, sql: str, quiet: bool = False) -> None:
        b = txn.pinned
        assert b is not None
        try:
            await b.query(sql, self.f.cfg.mysql.query_timeout_s)
        except (ServerError, ReplicaDown) as exc:
            self._end(s, txn, clean=False)
            if quiet or sql == "ROLLBACK":
                return  # the connection is closed: the server rolls back what it held
            raise Failed(ER_LOCK_DEADLOCK, "40001", f"the transaction's {sql} failed on the leader ({exc}); "
                         "it was rolled back — retry it") from None
        self._end(s, txn, clean=True)

    # --- savepoints (the server keeps them; the recorded writes follow) ---

    def savepoint(self, txn: Txn, name: str) -> None:
        txn.savepoints = [(n, k) for n, k in txn.savepoints if n.lower() != name.lower()]
        txn.savepoints.append((name, len(txn.writes)))

    def rolled_back_to(self, txn: Txn, name: str) -> None:
        for i, (n, k) in enumerate(txn.savepoints):
            if n.lower() == name.lower():
                del txn.writes[k:]
                del txn.savepoints[i + 1:]
                return

    def released(self, txn: Txn, name: str) -> None:
        for i, (n, _k) in enumerate(txn.savepoints):
            if n.lower() == name.lower():
                del txn.savepoints[i:]
                return

    # --- idle transactions ---

    async def _reap(self) -> None:
        while True:
            await asyncio.sleep(min(1.0, self.cfg.idle_timeout_s / 4))
            try:
                self._sweep(time.monotonic())
            except Exception:  # a bug must not end idle timeouts and leader-change rollbacks for good
                log.exception("txn_reaper_error")

    def _sweep(self, now: float) -> None:
        """Idle transactions are rolled back; those of a leader term gone are doomed."""
        term, leader = self.f.replicator.leader_term, self.f.replicator.leader_id
        for s, txn in list(self.open.values()):
            if txn.doomed and s.command == "Sleep" and now - txn.last_active > self.cfg.idle_timeout_s:
                self._idle_out(s, txn, now - txn.last_active)  # rolled back and never told: end it
            if txn.pinned is None or txn.committing:
                continue
            if txn.term != term or txn.rid != leader:
                self._doom(s, txn, "the leader changed (or its connection was reset) during the transaction")
            elif s.command == "Sleep" and now - txn.last_active > self.cfg.idle_timeout_s:
                self._idle_out(s, txn, now - txn.last_active)

    def _idle_out(self, s: Session, txn: Txn, idle_s: float) -> None:
        self._end(s, txn, clean=False)
        self.f.count("txn_idle_timeouts")
        self.f.events.emit("txn_aborted", f"MySQL session {s.id}: transaction idle {idle_s:.0f} s "
                           f"(transactions.idle_timeout_s); rolled back, session closed", session=s.id,
                           reason="idle", statements=txn.statements, writes=len(txn.writes))
        conn = self.f.connections.get(s.id)
        if conn is not None:
            conn.end(ER_CLIENT_INTERACTION_TIMEOUT, "The client was disconnected by the server because of "
                     "inactivity (an open transaction idle beyond transactions.idle_timeout_s)")

    # --- views ---

    def info(self) -> list[dict[str, Any]]:
        now = time.monotonic()
        return [{"session": s.id, "user": s.user, "host": s.host, "age_s": round(now - txn.began, 1),
                 "idle_s": round(now - txn.last_active, 1), "statements": txn.statements,
                 "writes": len(txn.writes), "pinned_to": txn.rid or None, "read_only": txn.read_only,
                 "committing": txn.committing, "savepoints": [n for n, _ in txn.savepoints]}
                for s, txn in self.open.values()]
