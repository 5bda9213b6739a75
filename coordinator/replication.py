"""The write path: the leader executes, followers replay, a Cabinet quorum commits.

One worker task per replica owns that replica's single connection. The
leader's worker takes queued client writes in batches, executes them inside one
transaction (learning each statement's real result), assigns timestamps to the
ones that succeeded, and commits them together with their log records and its
applied position. Every follower's worker replays the log tail in timestamp
order, one transaction per batch, recording the entries and its position in the
same transaction (exactly once). Followers apply batch k while the leader runs
k+1. A write is answered once the replicas that applied it hold more than half
the Cabinet weight (the decision itself lives in ``cabinet.py``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog

from . import batchsql, cabinet, mysqlio, schema
from .config import Config, ReplicaConfig
from .errors import ApiError, Fenced, ReplicaDown, StatementError, statement_api_error
from .events import EventLog
from .replog import Entry, EntryKind, ReplicatedLog, Statement
from .timestamps import TimestampAllocator

log = structlog.get_logger("coordinator.replication")

# DDL errors meaning "already done" when a DDL entry is re-run after a crash.
_DDL_ALREADY_DONE = {1050, 1051, 1060, 1061, 1091, 1146, 1176, 1826}
# Errors after which InnoDB has rolled back the whole transaction, not just the statement.
_TXN_ROLLED_BACK = {1213}


@dataclass
class ReplicaState:
    cfg: ReplicaConfig
    applied_ts: int = 0
    applied_epoch: int = 0
    connected: bool = False
    diverged: bool = False
    needs_rebuild: bool = False
    ack_ms: float | None = None  # smoothed apply round trip (Cabinet ranking)
    last_error: str = ""
    batches: int = 0
    trimmed_below: int = 0  # persisted log trimmed below this timestamp
    entries_applied: int = 0  # counters for batch-size figures (metrics)
    busy_ms: float = 0.0
    healthy: bool = False  # the health monitor's verdict
    rebuilding: bool = False
    rebuild_progress: float | None = None  # percent while a rebuild copies data
    thread_id: int | None = None  # server connection id of this replica's applier (killed on rejoin)

    @property
    def id(self) -> str:
        return self.cfg.id

    @property
    def available(self) -> bool:
        """Counts for quorum ranking and reads: reachable, healthy, and holding a true prefix."""
        return self.connected and self.healthy and not (self.diverged or self.needs_rebuild or self.rebuilding)


@dataclass
class WriteRequest:
    kind: EntryKind
    statements: tuple[str, ...]
    deadline: float
    future: asyncio.Future[Any]
    seeds: tuple[int, int]
    results: list[tuple[int, int]] = field(default_factory=list)
    ts: int = 0
    exact_mark: bool = False  # a NOOP that persists its own timestamp as the mark (clean stop)
    logged: bool = False  # appended to the log (committed on the leader): never re-executed
    request_id: str = ""  # client idempotency key
    outcome: Any = None  # the definite outcome (WriteOutcome or ApiError) once known
    settled: asyncio.Event | None = None  # set with ``outcome`` (only for keyed requests)


@dataclass(frozen=True)
class WriteOutcome:
    ts: int
    results: list[tuple[int, int]]  # (rows affected, insert id) per statement
    executed_on: str
    quorum: dict[str, Any]
    followers_applied: int
    followers: int
    replayed: bool = False  # answered from a previous attempt with the same request_id


def _seeds() -> tuple[int, int]:
    return random.randrange(1, 2**30), random.randrange(1, 2**30)


class Replicator:
    def __init__(self, cfg: Config, events: EventLog, rule: cabinet.QuorumRule) -> None:
        self.cfg = cfg
        self.events = events
        self.rule = rule
        self.schema = cfg.coordinator.internal_schema
        self.replicas: dict[str, ReplicaState] = {r.id: ReplicaState(r) for r in cfg.replicas}
        self.leader_id = cfg.initial_leader.id
        self.epoch = 0
        self.bumping_to = 0  # an epoch being stored by a failover (not yet ours)
        self.log = ReplicatedLog()
        self.alloc = TimestampAllocator(window=cfg.replication.timestamp_window)
        self.commit_ts = 0
        self.active = False  # accepting writes (recovered, not fenced)
        self.fenced = False
        self.ranking: list[str] = []
        self._queue: deque[WriteRequest] = deque()
        self._queue_event = asyncio.Event()
        # One wake-up per replica, set in ranking order when entries are appended: the
        # cabinet's followers send their batch first, so they tend to ack first.
        self._wake: dict[str, asyncio.Event] = {r.id: asyncio.Event() for r in cfg.replicas}
        self._waiters: deque[WriteRequest] = deque()
        self._pending: deque[WriteRequest] = deque()  # every unanswered write, in arrival order
        self._by_request_id: dict[str, WriteRequest] = {}  # recent keyed writes (insertion-ordered)
        self._marks: deque[tuple[int, int]] = deque()  # (entry ts, mark) awaiting commit
        self._in_doubt: tuple[list[Entry], list[WriteRequest]] | None = None
        self._failed_ddl: set[int] = set()  # DDL markers whose statement failed on the leader
        self._inflight = 0
        self._tasks: list[asyncio.Task[None]] = []
        self._conns: dict[str, Any] = {}
        self.trim_below = 0
        self.on_commit: list[Callable[[int], None]] = []
        self.on_leader_down: Callable[..., None] | None = None
        self.leading_enabled = True  # false while a failover or switchover is in progress
        self._executing: list[WriteRequest] = []  # the leader batch in flight (requeued if the leader dies)
        self._workers: dict[str, asyncio.Task[None]] = {}
        self.catchup: Any = None  # catch-up/rebuild strategy (catchup.CatchUp), set by the service
        self._rerank()

    # --- endpoints and connections -------------------------------------------------

    def endpoint(self, rid: str) -> mysqlio.Endpoint:
        r = self.replicas[rid].cfg
        m = self.cfg.mysql
        return mysqlio.Endpoint(r.host, r.port, m.user, m.password, m.connect_timeout_s, m.query_timeout_s)

    @property
    def _timeout(self) -> float:
        return self.cfg.mysql.query_timeout_s

    @property
    def leader(self) -> ReplicaState:
        return self.replicas[self.leader_id]

    @property
    def inflight(self) -> int:
        return self._inflight

    # --- client API ------------------------------------------------------------------

    async def submit(self, kind: EntryKind, statements: tuple[str, ...], exact_mark: bool = False,
                     request_id: str = "") -> WriteOutcome:
        if request_id:
            known = self._by_request_id.get(request_id)
            if known is not None:
                return await self._retry_outcome(known)
        if self.fenced:
            raise ApiError(503, "fenced", "this coordinator was fenced off by a newer one (higher epoch); it no longer writes")
        if not self.active:
            raise ApiError(503, "not_ready", "the coordinator is not accepting writes yet (recovering or waiting for replicas)")
        if self._inflight >= self.cfg.replication.max_inflight_entries:
            raise ApiError(503, "overloaded", f"too many writes in flight ({self._inflight}); retry shortly")
        loop = asyncio.get_running_loop()
        timeout = self.cfg.replication.write_timeout_s
        fut: asyncio.Future[Any] = loop.create_future()
        req = WriteRequest(kind, statements, loop.time() + timeout, fut, _seeds(), exact_mark=exact_mark,
                           request_id=request_id)
        if request_id:
            req.settled = asyncio.Event()
            self._remember(req)
        self._inflight += 1
        fut.add_done_callback(self._done)
        self._queue.append(req)
        self._pending.append(req)
        self._queue_event.set()
        # No timer per request: the sweeper answers overdue writes (one timer for all).
        result = await fut
        if isinstance(result, ApiError):
            raise result
        return result

    def _done(self, _fut: asyncio.Future[Any]) -> None:
        self._inflight -= 1

    # --- idempotent retries ------------------------------------------------------------

    def knows_request(self, request_id: str) -> bool:
        return request_id in self._by_request_id

    def logged_request(self, request_id: str) -> Entry | None:
        """A keyed entry in the in-memory log tail (e.g. adopted at recovery, not yet
        applied by the leader): its outcome is already decided."""
        return self.log.by_request_id.get(request_id)

    def _remember(self, req: WriteRequest) -> None:
        self._by_request_id[req.request_id] = req
        excess = len(self._by_request_id) - self.cfg.replication.request_id_memory
        if excess > 0:
            for key in list(self._by_request_id)[:excess]:
                del self._by_request_id[key]

    def _settle(self, req: WriteRequest, outcome: Any) -> None:
        """Record a definite outcome for a keyed write (what every retry will see)."""
        if req.settled is not None:
            req.outcome = outcome
            req.settled.set()

    def _forget(self, req: WriteRequest) -> None:
        """The write definitely did not run: a retry with its key may run it anew."""
        if req.request_id and self._by_request_id.get(req.request_id) is req:
            del self._by_request_id[req.request_id]

    async def _retry_outcome(self, req: WriteRequest) -> WriteOutcome:
        assert req.settled is not None
        if req.outcome is None:
            try:
                async with asyncio.timeout(self.cfg.replication.write_timeout_s):
                    await req.settled.wait()
            except TimeoutError:
                raise ApiError(504, "write_timeout", "the original write with this request_id is still in flight; "
                               "its outcome is unknown — retry later with the same request_id") from None
        if isinstance(req.outcome, ApiError):
            raise req.outcome
        return dataclasses.replace(req.outcome, replayed=True)

    def outcome_from_log(self, entry: Entry) -> WriteOutcome:
        """A persisted write's outcome rebuilt from its log entry (retry after a restart)."""
        applied = self.applied_map()
        summary = cabinet.acked_summary(self.rule, self.ranking, applied, entry.ts)
        followers = sum(1 for rid, a in applied.items() if rid != self.leader_id and a >= entry.ts)
        return WriteOutcome(entry.ts, [(s.rows, s.insert_id) for s in entry.statements], self.leader.cfg.name,
                            summary, followers, len(self.replicas) - 1, replayed=True)

    async def _sweep(self) -> None:
        """Answer writes whose deadline passed with 504 "outcome unknown" (I4: never
        hang), wherever they are in the pipeline. Every write is also kept in arrival
        order (= deadline order) in ``_pending``, so only its overdue head is looked at;
        an answered write stays in the pipeline and is skipped there (it may still commit)."""
        loop = asyncio.get_running_loop()
        timeout = self.cfg.replication.write_timeout_s
        pending = self._pending
        while True:
            await asyncio.sleep(0.05)
            now = loop.time()
            while pending and (pending[0].future.done() or pending[0].deadline <= now):
                req = pending.popleft()
                if not req.future.done():
                    req.future.set_result(ApiError(
                        504, "write_timeout",
                        f"the write was not acknowledged by a quorum within {timeout:g}s; its outcome is "
                        "unknown (it may still commit)"))

    async def next_timestamp(self, parity: int | None) -> int:
        """A bare timestamp (``GET /timestamp``): only below a quorum-persisted mark."""
        for _ in range(4):
            value = self.alloc.take_single(parity)
            if value is not None:
                return value
            await self.submit(EntryKind.NOOP, ())
        raise ApiError(503, "no_timestamp", "could not persist a new timestamp window on a quorum")

    # --- lifecycle --------------------------------------------------------------------

    def start_workers(self) -> None:
        for rs in self.replicas.values():
            self._start_worker(rs)
        self._tasks.append(asyncio.create_task(self._sweep(), name="sweeper"))

    def _start_worker(self, rs: ReplicaState) -> None:
        task = asyncio.create_task(self._worker(rs), name=f"worker-{rs.id}")
        self._workers[rs.id] = task
        self._tasks.append(task)

    async def restart_worker(self, rid: str) -> None:
        """Cancel a replica's worker (e.g. stuck in a round trip to a hung server) and
        start a fresh one; the cancelled round trip's connection is dropped."""
        old = self._workers.get(rid)
        if old is not None:
            old.cancel()
            await asyncio.gather(old, return_exceptions=True)
            if old in self._tasks:
                self._tasks.remove(old)
        self._drop(self.replicas[rid])
        self.replicas[rid].connected = False
        self._start_worker(self.replicas[rid])

    def leader_work(self) -> list[WriteRequest]:
        """The writes the leader holds but has not logged: its in-doubt and in-flight batches."""
        reqs = list(self._in_doubt[1]) if self._in_doubt is not None else []
        return reqs + list(self._executing)

    def take_back_leader_work(self, reqs: list[WriteRequest]) -> int:
        """The leader is gone: put its unlogged writes back at the head of the queue for
        the next leader. If the old leader did commit some of them, it holds errant
        entries and is rebuilt when it returns (never silently kept)."""
        self._in_doubt = None
        self._executing = []
        live = [r for r in reqs if not r.logged and (not r.future.done() or r.request_id)]
        self._requeue(live)
        return len(live)

    async def stop_workers(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        self._workers.clear()
        for conn in self._conns.values():
            mysqlio.drop(conn)
        self._conns.clear()

    async def quiesce(self, timeout_s: float) -> None:
        """Stop taking writes and wait until every queued write is answered and every
        available replica applied the whole log (then the caller may stop the workers)."""
        self.active = False
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while self._queue or self._waiters or self._in_doubt or any(
                rs.applied_ts < self.log.last_ts for rs in self.replicas.values() if rs.available):
            if loop.time() > deadline:
                raise ApiError(503, "busy", "could not quiesce the replication pipeline in time; retry")
            await asyncio.sleep(0.01)

    def restart_empty(self) -> None:
        """Forget the log and timestamps after every replica was cleared (reset)."""
        self.log.reset(0)
        self.alloc = TimestampAllocator(window=self.cfg.replication.timestamp_window)
        self.commit_ts = 0
        self._marks.clear()
        for rs in self.replicas.values():
            rs.applied_ts, rs.applied_epoch, rs.trimmed_below = 0, self.epoch, 0
        self.trim_below = 0

    async def stop(self) -> None:
        self.active = False
        await self.stop_workers()
        for req in self._pending:
            self._fail(req, ApiError(503, "shutting_down", "the coordinator is shutting down; outcome unknown"))
        self._pending.clear()
        self._queue.clear()
        self._waiters.clear()

    def fence(self, where: str) -> None:
        if self.fenced:
            return
        self.fenced = True
        self.active = False
        self.events.emit("fenced", f"fenced off by a newer coordinator (epoch above {self.epoch}) on {where}; "
                         "this coordinator stops writing", epoch=self.epoch, replica=where)
        for req in list(self._queue):
            self._fail(req, ApiError(503, "fenced", "this coordinator was fenced off by a newer one"))
        self._queue.clear()

    # --- per-replica worker ------------------------------------------------------------

    async def _worker(self, rs: ReplicaState) -> None:
        retry = self.cfg.replication.retry_interval_s
        while True:
            try:
                conn = self._conns.get(rs.id)
                if conn is None:
                    conn = await self._open(rs)
                if self.fenced:
                    await asyncio.sleep(1)
                    continue
                if rs.diverged or rs.needs_rebuild:
                    if self.catchup is None or not await self.catchup.rebuild(conn, rs):
                        await asyncio.sleep(retry)
                    continue
                if rs.id == self.leader_id and self.active and self.leading_enabled:
                    if self._in_doubt is not None:
                        await self._resolve_doubt(conn, rs)
                    elif rs.applied_ts < self.log.last_ts:
                        await self._follow_once(conn, rs)
                    else:
                        await self._lead_once(conn, rs)
                else:
                    await self._follow_once(conn, rs)
            except asyncio.CancelledError:
                raise
            except ReplicaDown as exc:
                self._drop(rs)  # in doubt: close it, so the server rolls back whatever it held
                self._mark_down(rs, str(exc))
                if rs.id == self.leader_id and self.on_leader_down is not None:
                    self.on_leader_down(rs.id, str(exc))
                await asyncio.sleep(retry)
            except Fenced:
                self._drop(rs)
                self.fence(rs.id)
            except StatementError as exc:
                self._drop(rs)
                self._diverge(rs, exc)
            except Exception as exc:  # a bug: keep the worker alive, say so loudly
                log.exception("worker_error", replica=rs.id)
                self._drop(rs)
                rs.last_error = f"internal error: {exc!r}"
                await asyncio.sleep(retry)

    def _drop(self, rs: ReplicaState) -> None:
        mysqlio.drop(self._conns.pop(rs.id, None))

    async def _open(self, rs: ReplicaState) -> Any:
        conn = await mysqlio.connect(self.endpoint(rs.id))
        try:
            if rs.thread_id is not None:
                # Our previous applier connection may still be alive server-side (the
                # server was paused or the network cut mid-batch): end it first, so a stale
                # transaction neither commits after we look nor holds locks we need.
                await mysqlio.kill_quietly(conn, rs.thread_id, self._timeout)
            await schema.ensure(conn, self.schema, self.cfg.coordinator.database, self._timeout)
            await mysqlio.run(conn, f"USE `{self.cfg.coordinator.database}`", self._timeout)
            snap = await schema.read_state(conn, self.schema, self._timeout)
            if snap.epoch > max(self.epoch, self.bumping_to) and self.epoch:  # bumping_to: our own attempts
                raise Fenced(f"replica epoch {snap.epoch} > ours {self.epoch}")
            # Check the history before the position can count toward any commit.
            why = None
            if not (rs.diverged or rs.needs_rebuild) and self.catchup is not None \
                    and not self._doubt_covers(rs, snap.applied_ts):
                why = await self.catchup.errant(rs, snap.applied_ts, snap.applied_epoch)
            if why:
                rs.needs_rebuild = True
                self.events.emit("replica_errant", f"{rs.cfg.name} holds entries that were never committed "
                                 f"({why}); it will be rebuilt", replica=rs.id, applied_ts=snap.applied_ts,
                                 applied_epoch=snap.applied_epoch)
            rs.applied_ts, rs.applied_epoch = snap.applied_ts, snap.applied_epoch
            if snap.ddl_pending > snap.applied_ts and not rs.needs_rebuild:
                await self._pending_ddl(conn, rs, snap.ddl_pending)
        except BaseException:
            mysqlio.drop(conn)
            raise
        rs.thread_id = conn.thread_id()
        self._conns[rs.id] = conn
        if not rs.connected:
            rs.connected = True
            self._rerank()
        return conn

    async def _pending_ddl(self, conn: Any, rs: ReplicaState, ts: int) -> None:
        """A DDL marker without its applied position: finish the DDL if the entry is in
        the log; drop the marker if we know the DDL failed on the leader; leave it to the
        in-doubt resolution if this leader's DDL is in doubt; else the replica holds an
        entry that never entered the log and is rebuilt."""
        if self._in_doubt is not None and rs.id == self.leader_id and self._in_doubt[0][-1].ts == ts:
            return
        if ts in self._failed_ddl:
            await mysqlio.run(conn, ";".join([
                "BEGIN", f"DELETE FROM `{self.schema}`.log WHERE ts={ts}",
                batchsql.state_update(self.schema, self.epoch, ddl_pending=0), "COMMIT"]), self._timeout)
            self._failed_ddl.discard(ts)
            return
        entry = self.log.get(ts)
        if entry is not None:
            await self._apply_alone(conn, rs, entry, recovering=True)
            return
        rs.needs_rebuild = True
        self.events.emit("replica_errant", f"{rs.cfg.name} started a DDL entry ({ts}) that is not in the log; "
                         "it will be rebuilt", replica=rs.id, ddl_pending=ts)

    def _doubt_covers(self, rs: ReplicaState, applied_ts: int) -> bool:
        """The leader returning with the batch we were unsure about: not errant — the
        in-doubt resolution reads its state and logs that batch."""
        return (self._in_doubt is not None and rs.id == self.leader_id
                and self.log.last_ts < applied_ts <= self._in_doubt[0][-1].ts)

    def _mark_down(self, rs: ReplicaState, why: str) -> None:
        rs.last_error = why
        if rs.connected:
            rs.connected = False
            self._rerank()

    def _diverge(self, rs: ReplicaState, exc: StatementError) -> None:
        if rs.id == self.leader_id and self.on_leader_down is not None:
            self.on_leader_down(rs.id, f"the leader failed to replay a log entry: {exc}", True)
        rs.diverged = True
        rs.last_error = f"diverged: {exc}"
        self.events.emit("replica_diverged",
                         f"{rs.cfg.name} failed a statement the leader executed: {exc}; excluded from quorum and reads",
                         replica=rs.id, errno=exc.errno, applied_ts=rs.applied_ts)
        self._rerank()
        self._recompute_commit()

    # --- follower side -------------------------------------------------------------------

    async def _follow_once(self, conn: Any, rs: ReplicaState) -> None:
        entries = self.log.after(rs.applied_ts, self.cfg.replication.max_batch_entries)
        if entries is None:
            # Behind the in-memory tail: replay a peer's persisted log, else rebuild.
            if self.catchup is None or not await self.catchup.from_peer(conn, rs):
                if not rs.needs_rebuild:
                    rs.needs_rebuild = True
                    self.events.emit("replica_behind_log",
                                     f"{rs.cfg.name} is behind every available log (applied {rs.applied_ts}, "
                                     f"in-memory log starts after {self.log.floor_ts}); it will be rebuilt",
                                     replica=rs.id, applied_ts=rs.applied_ts)
                    self._rerank()
            return
        if not entries:
            wake = self._wake[rs.id]
            wake.clear()
            if self.log.last_ts > rs.applied_ts:
                return  # appended while we looked
            try:
                await asyncio.wait_for(wake.wait(), 0.5)
            except TimeoutError:
                pass
            return
        if entries[0].alone:
            await self._apply_alone(conn, rs, entries[0])
        else:
            await self._apply_batch(conn, rs, entries)

    async def _apply_batch(self, conn: Any, rs: ReplicaState, entries: list[Entry]) -> None:
        trim = self._trim_for(rs)
        epoch = self.epoch
        sql = batchsql.follower_batch(self.schema, epoch, entries, trim)
        started = time.perf_counter()
        try:
            await mysqlio.run(conn, sql, self._timeout)
        except StatementError:
            await self._rollback(conn)
            raise
        except Fenced:
            await self._rollback(conn)
            self._check_own_epoch(epoch)
            raise
        rs.trimmed_below = max(rs.trimmed_below, trim)
        self._applied(rs, entries[-1], (time.perf_counter() - started) * 1000, len(entries))

    def _check_own_epoch(self, used: int) -> None:
        """A fence check failed. If our own epoch moved on since the batch was built
        (a failover bumped it), that batch is merely stale: retry it, don't stop."""
        if used != self.epoch or self.bumping_to > used:
            raise ReplicaDown(f"epoch moving from {used} to {max(self.epoch, self.bumping_to)} during the batch; "
                              "retrying")

    def _trim_for(self, rs: ReplicaState) -> int:
        return self.trim_below if self.trim_below > rs.trimmed_below else 0

    async def _apply_alone(self, conn: Any, rs: ReplicaState, entry: Entry, recovering: bool = False) -> None:
        epoch = self.epoch
        try:
            await self._apply_alone_inner(conn, rs, entry, recovering)
        except Fenced:
            self._check_own_epoch(epoch)
            raise

    async def _apply_alone_inner(self, conn: Any, rs: ReplicaState, entry: Entry, recovering: bool) -> None:
        """DDL (implicit commit) behind a crash-safe marker: the marker and the log row
        commit first; the DDL runs; the position advances. A crash in between leaves
        ``ddl_pending`` set, and the DDL is re-run, tolerating "already done" errors."""
        started = time.perf_counter()
        if not recovering:
            await mysqlio.run(conn, ";".join([
                "BEGIN", batchsql.log_insert(self.schema, [entry]),
                batchsql.state_update(self.schema, self.epoch, ddl_pending=entry.ts), "COMMIT"]), self._timeout)
        for st in entry.statements:
            try:
                await mysqlio.run(conn, f"SET timestamp={batchsql.sql_time(entry.time_us)};\n{st.sql}",
                                  self.cfg.mysql.max_statement_time_s + self._timeout)
            except StatementError as exc:
                if not (recovering and exc.errno in _DDL_ALREADY_DONE):
                    raise
        await mysqlio.run(conn, batchsql.state_update(self.schema, self.epoch, entry, entry.mark or None, 0),
                          self._timeout)
        self._applied(rs, entry, (time.perf_counter() - started) * 1000)

    async def _rollback(self, conn: Any) -> None:
        try:
            await mysqlio.run(conn, "ROLLBACK", self._timeout)
        except (ReplicaDown, StatementError):
            pass

    def _applied(self, rs: ReplicaState, last: Entry, latency_ms: float, count: int = 1) -> None:
        rs.entries_applied += count
        rs.applied_ts, rs.applied_epoch = last.ts, last.epoch
        rs.batches += 1
        rs.busy_ms += latency_ms
        rs.ack_ms = latency_ms if rs.ack_ms is None else 0.8 * rs.ack_ms + 0.2 * latency_ms
        self._recompute_commit()

    # --- leader side ---------------------------------------------------------------------

    async def _lead_once(self, conn: Any, rs: ReplicaState) -> None:
        if not self._queue:
            self._queue_event.clear()
            try:
                await asyncio.wait_for(self._queue_event.wait(), 0.5)
            except TimeoutError:
                pass
            return
        if not self.leading_enabled or rs.id != self.leader_id:
            return  # a switchover began while we waited
        batch = self._take_batch()
        if not batch:
            return
        if batch[0].kind in (EntryKind.DDL, EntryKind.RESET):
            await self._lead_alone(conn, rs, batch[0])
        else:
            await self._lead_batch(conn, rs, batch)

    def _take_batch(self) -> list[WriteRequest]:
        now = asyncio.get_running_loop().time()
        out: list[WriteRequest] = []
        limit = self.cfg.replication.max_batch_entries
        while self._queue and len(out) < limit:
            req = self._queue[0]
            if req.deadline <= now:
                self._queue.popleft()
                self._fail(req, ApiError(504, "write_timeout", "the write timed out in the queue; it was not executed"))
                continue
            alone = req.kind in (EntryKind.DDL, EntryKind.RESET)
            if alone and out:
                break
            out.append(self._queue.popleft())
            if alone:
                break
        return out

    async def _lead_batch(self, conn: Any, rs: ReplicaState, batch: list[WriteRequest]) -> None:
        started = time.perf_counter()
        time_us = time.time_ns() // 1000
        epoch = self.epoch
        self._executing = batch
        try:
            await self._lead_batch_inner(conn, rs, batch, started, time_us, epoch)
        finally:
            self._executing = []

    async def _lead_batch_inner(self, conn: Any, rs: ReplicaState, batch: list[WriteRequest], started: float,
                                time_us: int, epoch: int) -> None:
        pending = batch
        done: list[WriteRequest] = []
        begin = True
        try:
            while pending:
                sql, owners = batchsql.leader_execute([(r.statements, r.seeds) for r in pending],
                                                      time_us if begin else None, begin,
                                                      self.cfg.mysql.max_statement_time_s)
                try:
                    results = await mysqlio.run(conn, sql, self._timeout + self.cfg.mysql.max_statement_time_s)
                except StatementError as exc:
                    if exc.errno in _TXN_ROLLED_BACK:
                        # InnoDB rolled the whole batch back: run it all again, nothing applied
                        await self._rollback(conn)
                        self._requeue(batch)
                        return
                    self._record(pending, owners, exc.results)
                    owner = owners[exc.position] if exc.position < len(owners) else None
                    if owner is None:  # one of our own statements failed: a bug, not the client's
                        raise
                    i, j = owner
                    if len(pending[i].statements) > 1:
                        await mysqlio.run(conn, f"ROLLBACK TO SAVEPOINT r{i}", self._timeout)
                    done.extend(pending[:i])
                    self._fail(pending[i], statement_api_error(
                        exc, executed_on=rs.cfg.name,
                        **({"failed_statement": j} if len(pending[i].statements) > 1 else {})), applied=True)
                    pending = pending[i + 1:]
                    begin = False
                    continue
                self._record(pending, owners, results)
                done.extend(pending)
                pending = []
        except ReplicaDown:
            self._requeue(batch)  # nothing committed: the transaction died with the connection
            raise
        except StatementError:
            await self._rollback(conn)
            log.error("internal_statement_failed", batch=len(batch))
            for r in batch:
                self._fail(r, ApiError(500, "internal_error", "the coordinator's own statement failed; see the log"))
            return
        entries = self._entries(done, time_us)
        trim = self._trim_for(rs)
        try:
            await mysqlio.run(conn, batchsql.leader_commit(self.schema, epoch, entries, trim), self._timeout)
        except StatementError as exc:
            # Our own log/state statements failed (not the clients'): nothing committed,
            # and the leader is not diverged. The writes definitely did not apply.
            await self._rollback(conn)
            log.error("leader_commit_failed", error=str(exc), batch=len(done))
            for r in done:
                self._fail(r, ApiError(500, "internal_error", f"the write was not applied: the coordinator could "
                                       f"not record it in its log ({exc.message}); see the log"))
            return
        except Fenced:
            await self._rollback(conn)
            if epoch != self.epoch or self.bumping_to > epoch:
                self._requeue(done)
                raise ReplicaDown("epoch changed during the batch; retrying") from None
            for r in done:
                self._fail(r, ApiError(503, "fenced", "this coordinator was fenced off by a newer one; not committed"))
            raise
        except ReplicaDown:
            if entries:
                self._in_doubt = (entries, done)  # resolved by reading the leader's state back
            raise
        rs.trimmed_below = max(rs.trimmed_below, trim)
        rs.batches += 1
        rs.entries_applied += len(entries)
        rs.busy_ms += (time.perf_counter() - started) * 1000
        self._append(rs, entries, done)

    async def _lead_alone(self, conn: Any, rs: ReplicaState, req: WriteRequest) -> None:
        self._executing = [req]
        try:
            await self._lead_alone_inner(conn, rs, req)
        finally:
            self._executing = []

    async def _lead_alone_inner(self, conn: Any, rs: ReplicaState, req: WriteRequest) -> None:
        time_us = time.time_ns() // 1000
        [entry] = self._entries([req], time_us)
        try:
            await mysqlio.run(conn, ";".join([
                "BEGIN", batchsql.log_insert(self.schema, [entry]),
                batchsql.state_update(self.schema, self.epoch, ddl_pending=entry.ts), "COMMIT"]), self._timeout)
        except ReplicaDown:
            self._in_doubt = ([entry], [req])
            raise
        try:
            for st in entry.statements:
                await mysqlio.run(conn, f"SET timestamp={batchsql.sql_time(time_us)};\n{st.sql}",
                                  self.cfg.mysql.max_statement_time_s + self._timeout)
            req.results = [(0, 0)] * len(entry.statements)
            await mysqlio.run(conn, batchsql.state_update(self.schema, self.epoch, entry, entry.mark or None, 0),
                              self._timeout)
        except StatementError as exc:
            self._fail(req, statement_api_error(exc, executed_on=rs.cfg.name), applied=True)
            self._failed_ddl.add(entry.ts)  # if the clean-up below breaks, _open finishes it
            await mysqlio.run(conn, ";".join([
                "BEGIN", f"DELETE FROM `{self.schema}`.log WHERE ts={entry.ts}",
                batchsql.state_update(self.schema, self.epoch, ddl_pending=0), "COMMIT"]), self._timeout)
            self._failed_ddl.discard(entry.ts)
            return
        except ReplicaDown:
            self._in_doubt = ([entry], [req])
            raise
        self._append(rs, [entry], [req])

    async def _resolve_doubt(self, conn: Any, rs: ReplicaState) -> None:
        """The leader's last commit round trip broke: read its state to learn whether
        the batch committed (then it is logged as usual) or not (then it is re-queued)."""
        assert self._in_doubt is not None
        entries, reqs = self._in_doubt
        snap = await schema.read_state(conn, self.schema, self._timeout)
        if snap.ddl_pending == entries[-1].ts and entries[-1].alone:
            await self._apply_alone(conn, rs, entries[-1], recovering=True)
            snap = await schema.read_state(conn, self.schema, self._timeout)
        self._in_doubt = None
        if snap.applied_ts >= entries[-1].ts:
            for r in reqs:
                if not r.results:
                    r.results = [(0, 0)] * len(r.statements)
            self._append(rs, entries, reqs)
        else:
            self._requeue(reqs)

    def _record(self, pending: list[WriteRequest], owners: list[batchsql.Owner], results: list[tuple[int, int]]) -> None:
        for owner, res in zip(owners, results):
            if owner is not None and owner[1] >= 0:
                req = pending[owner[0]]
                if len(req.results) <= owner[1]:
                    req.results.append(res)

    def _entries(self, done: list[WriteRequest], time_us: int) -> list[Entry]:
        if not done:
            return []
        stamps, mark = self.alloc.take_for_batch(len(done))
        if mark is None and any(r.kind == EntryKind.NOOP and not r.exact_mark for r in done):
            mark = self.alloc.needs_mark()  # a bare /timestamp waits on this batch's mark
        entries = []
        for req, ts in zip(done, stamps):
            req.ts = ts
            stmts = tuple(Statement(sql, res[1] if req.kind != EntryKind.DDL else 0, max(res[0], 0))
                          for sql, res in zip(req.statements, req.results or [(0, 0)] * len(req.statements)))
            entry_mark = ts if req.exact_mark else 0
            if mark is not None and req is done[-1] and not entry_mark:
                entry_mark = mark
            entries.append(batchsql.make_entry(ts, self.epoch, req.kind, stmts, time_us, req.seeds[0], req.seeds[1],
                                               entry_mark, req.request_id, self.leader_id))
        return entries

    def _append(self, rs: ReplicaState, entries: list[Entry], done: list[WriteRequest]) -> None:
        if not entries:
            return
        self.log.append(entries)
        for e in entries:
            if e.mark:
                self._marks.append((e.ts, e.mark))
        for req in done:
            req.logged = True
        self._waiters.extend(done)
        rs.applied_ts, rs.applied_epoch = entries[-1].ts, entries[-1].epoch
        self._rerank()  # a new round: weights from the latest measurements
        self._recompute_commit()
        self._wake_followers()
        self.log.trim(self.cfg.replication.memory_log_entries)

    def wake_all(self) -> None:
        """Wake every idle worker now (e.g. after a leader change) instead of at its next poll."""
        self._wake_followers()
        self._queue_event.set()

    def _wake_followers(self) -> None:
        for rid in self.ranking:
            self._wake[rid].set()

    def _requeue(self, reqs: list[WriteRequest]) -> None:
        """Back to the head of the queue, unexecuted. A keyed write whose client already
        got its 504 stays queued too, so its outcome settles for the retries."""
        self.alloc.mark_failed()  # a mark carried by these writes was not persisted
        for r in reversed(reqs):
            if not r.future.done() or (r.request_id and not r.logged):
                r.results = []
                r.ts = 0
                r.deadline = max(r.deadline, asyncio.get_running_loop().time() + 1.0) if r.future.done() else r.deadline
                self._queue.appendleft(r)
        self._queue_event.set()

    def _fail(self, req: WriteRequest, err: ApiError, applied: bool = False) -> None:
        """Answer a write that will not commit. ``applied``: the error is its definite
        outcome (the leader refused the statement); otherwise it did not run at all."""
        if applied:
            self._settle(req, err)
        else:
            self._forget(req)
        if not req.future.done():
            req.future.set_result(err)

    # --- commit rule ----------------------------------------------------------------------

    def _rerank(self) -> None:
        followers = [rid for rid in self.replicas if rid != self.leader_id]
        self.ranking = cabinet.rank(
            self.leader_id, followers,
            {rid: self.replicas[rid].ack_ms for rid in followers},
            {rid: self.replicas[rid].available for rid in followers},
        )

    def applied_map(self) -> dict[str, int]:
        """Positions that count toward commits: a diverged, errant or rebuilding replica's
        position is not a prefix of the log, so it counts as nothing."""
        return {rid: (0 if rs.diverged or rs.needs_rebuild or rs.rebuilding else rs.applied_ts)
                for rid, rs in self.replicas.items()}

    def _recompute_commit(self) -> None:
        # No re-ranking here: like Cabinet's per-round weights, the ranking is fixed
        # when a batch is appended (and on health changes), not moved by each ack.
        applied = self.applied_map()
        ci = cabinet.commit_index(self.rule, self.ranking, applied)
        if ci <= self.commit_ts:
            return
        self.commit_ts = ci
        while self._marks and self._marks[0][0] <= ci:
            self.alloc.mark_persisted(self._marks.popleft()[1])
        if not self._waiters:
            return
        followers = len(self.replicas) - 1
        name = self.leader.cfg.name
        # Waiters resolved together share a few distinct acked sets: summarise each once.
        summaries: dict[int, tuple[dict[str, Any], int]] = {}
        order = sorted(applied.values())
        while self._waiters and self._waiters[0].ts <= ci:
            req = self._waiters.popleft()
            if req.future.done() and req.settled is None:
                continue
            key = sum(1 for a in order if a >= req.ts)
            if key not in summaries:
                summary = cabinet.acked_summary(self.rule, self.ranking, applied, req.ts)
                applied_followers = sum(1 for rid, a in applied.items() if rid != self.leader_id and a >= req.ts)
                summaries[key] = (summary, applied_followers)
            summary, applied_followers = summaries[key]
            outcome = WriteOutcome(req.ts, req.results, name, summary, applied_followers, followers)
            self._settle(req, outcome)
            if not req.future.done():
                req.future.set_result(outcome)
        for cb in self.on_commit:
            cb(ci)

    def set_mode(self, mode: str) -> None:
        self.rule = self.rule.with_mode(mode)
        self._recompute_commit()

    def replace_log_state(self, entries: list[Entry], floor: int, last_ts: int,
                          floor_epoch: int | None = None) -> None:
        """Adopt a recovered log tail: ``entries`` are every entry in (floor, last_ts]."""
        self.log.reset(last_ts=floor, floor_epoch=floor_epoch)
        self.log.append(entries)
        self.log.last_ts = max(self.log.last_ts, last_ts)
