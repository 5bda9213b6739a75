"""The object graph: one Coordinator built from the config, started and stopped once.

Start-up recovery (DESIGN §5): read the state of at least n−t replicas, adopt
the most advanced log (by epoch, then timestamp), bump the epoch on them (which
fences any older coordinator), resume timestamps above the persisted mark, and
let the workers bring every replica up to the adopted log. A first start on
empty servers creates the demo tables through the replicated path.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import structlog

from . import cabinet, control, mysqlio, schema, seer, views
from .catchup import CatchUp
from .config import Config
from .failover import FailoverManager
from .health import HealthTracker
from .metrics import Metrics
from .monitor import Monitor
from .errors import ApiError, Fenced, ReplicaDown, StatementError
from .events import EventLog
from .reads import ReadRouter
from .replication import Replicator
from .replog import EntryKind
from .timestamps import TimestampAllocator

log = structlog.get_logger("coordinator.service")


def _report_crash(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("task_crashed", task=task.get_name(), exc_info=task.exception())


@dataclass
class Probe:
    rid: str
    snap: schema.ReplicaSnapshot
    conn: Any


class Coordinator:
    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.started_at = time.time()
        self.events = EventLog()
        n = len(cfg.replicas)
        self.rule = cabinet.QuorumRule.build(n, cfg.quorum.failure_threshold, cfg.quorum.mode)
        self.replicator = Replicator(cfg, self.events, self.rule)
        self.replicator.catchup = CatchUp(self.replicator)
        self.reads = ReadRouter(self.replicator, cfg)
        self.monitor = Monitor(cfg, self.replicator.endpoint, cfg.coordinator.internal_schema, self._health_changed)
        self.failover = FailoverManager(self.replicator, self.monitor.trackers)
        self.failover.params = seer.SeerParams(crash_penalty_ms=cfg.seer.crash_penalty_ms,
                                               min_uptime_s=cfg.seer.min_uptime_s)
        self.replicator.on_leader_down = self.failover.leader_suspected
        self.control = control.build(cfg)
        self.rebuilds = 0
        self.write_latency_ms: deque[tuple[float, float]] = deque(maxlen=8192)  # (ack time, ms): dashboard
        self.metrics = Metrics()
        self.metrics.attach(self)
        self.events.on_emit.append(self._count_events)
        self.ready = asyncio.Event()
        self._resetting = asyncio.Lock()
        self.stopped_master: str | None = None  # set by /admin/stop-master for /admin/start-master
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def n(self) -> int:
        return len(self.cfg.replicas)

    def _count_events(self, event: dict[str, Any]) -> None:
        if event["kind"] == "rebuild_done":
            self.rebuilds += 1

    def _health_changed(self, rid: str, healthy: bool, tracker: HealthTracker) -> None:
        rs = self.replicator.replicas[rid]
        rs.healthy = healthy
        if healthy:
            self.events.emit("replica_up", f"{rs.cfg.name} is healthy (poll {tracker.last_latency_ms or 0:.1f} ms)",
                             replica=rid)
        else:
            self.events.emit("replica_down", f"{rs.cfg.name} is unhealthy: {tracker.last_error}",
                             replica=rid, error=tracker.last_error, crash_count=tracker.crash_count)
            if rid == self.replicator.leader_id:
                self.failover.leader_suspected(rid, tracker.last_error)
        self.replicator._rerank()

    async def start(self) -> None:
        self.monitor.start()
        for coro, name in ((self._recover_and_run(), "recovery"), (self._trim_loop(), "trim"),
                           (self._proactive_loop(), "proactive-seer")):
            task = asyncio.create_task(coro, name=name)
            task.add_done_callback(_report_crash)
            self._tasks.append(task)

    async def stop(self) -> None:
        r = self.replicator
        if r.active and not r.fenced:
            try:  # shrink the timestamp mark to the last value used: a clean restart continues gap-free
                await asyncio.wait_for(r.submit(EntryKind.NOOP, (), exact_mark=True), 3)
            except (ApiError, TimeoutError):
                pass
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.monitor.stop()
        await r.stop()
        self.reads.close()

    # --- recovery -------------------------------------------------------------------------

    async def _probe(self, rid: str) -> Probe | None:
        r = self.replicator
        conn = None
        try:
            conn = await mysqlio.connect(r.endpoint(rid))  # no db: it may not exist yet
            await schema.ensure(conn, r.schema, self.cfg.coordinator.database, self.cfg.mysql.query_timeout_s)
            snap = await schema.read_state(conn, r.schema, self.cfg.mysql.query_timeout_s)
            return Probe(rid, snap, conn)
        except (ReplicaDown, StatementError) as exc:
            mysqlio.drop(conn)
            r.replicas[rid].last_error = str(exc)
            return None

    async def _recover_and_run(self) -> None:
        waited = False
        while True:
            probes = [p for p in await asyncio.gather(*(self._probe(rid) for rid in self.replicator.replicas)) if p]
            try:
                if await self._recover(probes):
                    break
            finally:
                for p in probes:
                    mysqlio.drop(p.conn)
            if not waited:
                need = self.n - self.rule.t
                self.events.emit("waiting_for_replicas",
                                 f"recovery needs {need} of {self.n} replicas reachable; found {len(probes)}",
                                 reachable=[p.rid for p in probes], needed=need)
                waited = True
            await asyncio.sleep(1.0)
        self.replicator.start_workers()
        self.ready.set()
        self._tasks.append(asyncio.create_task(self._leader_watchdog(), name="leader-watchdog"))
        if self.replicator.log.last_ts == 0 and self._fresh:
            await self._bootstrap_demo()

    async def _recover(self, probes: list[Probe]) -> bool:
        r = self.replicator
        t = self.cfg.mysql.query_timeout_s
        need = self.n - self.rule.t
        if len(probes) < need:
            return False
        # Fence first, then read: once n−t replicas hold our epoch no older coordinator
        # can commit anything, so the state read afterwards includes all it acknowledged.
        epoch = max(p.snap.epoch for p in probes) + 1
        pre = max(probes, key=lambda p: (p.snap.applied_epoch, p.snap.applied_ts))
        leader = pre.snap.leader_id if pre.snap.leader_id in r.replicas else self.cfg.initial_leader.id
        fenced: list[Probe] = []
        for p in probes:
            try:
                if await schema.bump_epoch(p.conn, r.schema, epoch, leader, t, expect_at_most=p.snap.epoch):
                    p.snap = await schema.read_state(p.conn, r.schema, t)
                    fenced.append(p)
            except (ReplicaDown, StatementError) as exc:
                log.warning("epoch_bump_failed", replica=p.rid, error=str(exc))
        if len(fenced) < need:
            log.warning("epoch_bump_lost", epoch=epoch, won=len(fenced), needed=need)
            return False  # another coordinator raced us: read the state again
        probes = fenced
        source = max(probes, key=lambda p: (p.snap.applied_epoch, p.snap.applied_ts))
        low = min(p.snap.applied_ts for p in probes)
        limit = self.cfg.replication.memory_log_entries
        floor = max(low, source.snap.log_floor - 1, source.snap.applied_ts - limit)
        entries = await schema.read_log(source.conn, r.schema, floor - 1, limit + 1, t) if floor else []
        floor_epoch = entries[0].epoch if entries and entries[0].ts == floor else None
        entries = [e for e in entries if floor < e.ts <= source.snap.applied_ts]
        if floor == 0:
            entries = await schema.read_log(source.conn, r.schema, 0, limit, t)
            entries = [e for e in entries if e.ts <= source.snap.applied_ts]
        highest = source.snap.applied_ts
        r.epoch = epoch
        r.leader_id = leader
        r.alloc = TimestampAllocator.recovered(highest, max(p.snap.ts_mark for p in probes),
                                               self.cfg.replication.timestamp_window)
        r.replace_log_state(entries, floor, highest, floor_epoch)
        for p in probes:
            rs = r.replicas[p.rid]
            rs.applied_ts, rs.applied_epoch = p.snap.applied_ts, p.snap.applied_epoch
        # Only what a quorum of the replicas read holds counts as committed; the rest of
        # the adopted tail commits as the others catch up.
        r._rerank()
        r.commit_ts = cabinet.commit_index(self.rule, r.ranking, {p.rid: p.snap.applied_ts for p in probes})
        self._fresh = highest == 0
        r.active = True
        self.events.emit("epoch", f"epoch {epoch} started; leader {r.leader.cfg.name}; log adopted from "
                         f"{r.replicas[source.rid].cfg.name} up to timestamp {highest}",
                         epoch=epoch, leader=leader, source=source.rid, applied_ts=highest,
                         next_timestamp=r.alloc.last + 1)
        return True

    _fresh = False

    async def _bootstrap_demo(self) -> None:
        for ddl in schema.DEMO_TABLES:
            while True:
                try:
                    await self.replicator.submit(EntryKind.DDL, (ddl,))
                    break
                except ApiError as exc:
                    if exc.code == "fenced":
                        return
                    log.warning("bootstrap_retry", error=exc.message)
                    await asyncio.sleep(0.5)
        self.events.emit("bootstrap", "created the demo tables users and products through the replicated log")

    # --- reset ---------------------------------------------------------------------------

    async def reset(self) -> dict[str, Any]:
        """Clear every user table, the log and the timestamps on all replicas.

        All replicas must be reachable (else 503 naming them): a reset that skipped
        one would leave it holding data the others forgot. The pipeline is drained
        and stopped while the servers are cleared, then restarts from timestamp 1."""
        r = self.replicator
        if self._resetting.locked():
            raise ApiError(409, "reset_in_progress", "a reset is already running")
        async with self._resetting, self.failover.lock:
            down = [rs.cfg.name for rs in r.replicas.values() if not rs.available]
            if down:
                raise ApiError(503, "replica_unavailable",
                               f"reset needs every replica; unavailable: {', '.join(down)} — start them first",
                               unavailable=down)
            if not r.active:
                raise ApiError(503, "not_ready", "the coordinator is not accepting writes; cannot reset now")
            try:
                await r.quiesce(self.cfg.replication.write_timeout_s)
            except ApiError:
                r.active = not r.fenced
                raise
            await r.stop_workers()
            t = self.cfg.mysql.query_timeout_s
            db, sch = self.cfg.coordinator.database, r.schema
            cleared: dict[str, list[str]] = {}
            failed: dict[str, str] = {}
            for rid in r.replicas:
                conn = None
                try:
                    conn = await mysqlio.connect(r.endpoint(rid), db)
                    _, rows = await mysqlio.fetch(conn, "SHOW FULL TABLES WHERE Table_type = 'BASE TABLE'", t)
                    tables = [row[0] for row in rows]
                    stmts = ["SET FOREIGN_KEY_CHECKS=0"] + [f"TRUNCATE TABLE `{tb}`" for tb in tables] + [
                        "SET FOREIGN_KEY_CHECKS=1", f"DELETE FROM `{sch}`.log",
                        f"UPDATE `{sch}`.state SET applied_ts=0, applied_epoch={r.epoch}, ts_mark=0, "
                        f"ddl_pending=0, log_floor=0, epoch_seen={r.epoch} WHERE id=1"]
                    await mysqlio.run(conn, ";".join(stmts), t + 30)
                    cleared[rid] = tables
                except (ReplicaDown, StatementError, Fenced) as exc:
                    failed[rid] = str(exc) or type(exc).__name__
                finally:
                    mysqlio.drop(conn)
            r.restart_empty()
            for rid in failed:
                r.replicas[rid].needs_rebuild = True
            r.active = not r.fenced
            r.start_workers()
            self.events.emit("reset", f"reset cleared {len(cleared)} replicas; next timestamp is 1",
                             cleared=sorted(cleared), failed=failed)
            if failed:
                raise ApiError(503, "reset_partial", "reset failed on " + ", ".join(
                    r.replicas[x].cfg.name for x in failed) + "; they need a rebuild", failed=failed)
            return {"success": True, "message": "All data cleared; timestamps reset",
                    "tables": sorted({tb for v in cleared.values() for tb in v}), "replicas": sorted(cleared),
                    "next_timestamp": 1}

    # --- idempotent retries -----------------------------------------------------------------

    async def persisted_outcome(self, request_id: str) -> Any:
        """The outcome of a keyed write found in the leader's persisted log (a retry after
        a coordinator restart), waiting briefly if it is logged but not yet committed."""
        from .batchsql import entry_from_row
        from asyncmy.converters import escape_string
        r = self.replicator
        entry = r.logged_request(request_id)
        if entry is not None:
            return await self._committed_outcome(entry)
        # The leader's persisted log is complete once it has applied the whole log.
        target = r.log.last_ts
        deadline = time.monotonic() + self.cfg.replication.write_timeout_s
        while r.leader.applied_ts < target:
            if time.monotonic() > deadline:
                raise ApiError(503, "not_ready", "cannot check the request_id yet (the leader is catching up); "
                               "retry with the same request_id")
            await asyncio.sleep(0.01)
        try:
            _, rows = await self.reads.pools[r.leader_id].query(
                schema.log_query(r.schema, f"request_id = '{escape_string(request_id)}'"),
                self.cfg.mysql.query_timeout_s)
        except (ReplicaDown, StatementError):
            raise ApiError(503, "replica_unavailable", "cannot check the request_id against the log right now; "
                           "retry with the same request_id") from None
        if not rows:
            return None
        entry = entry_from_row(rows[0])
        known = r.log.get(entry.ts)
        in_history = entry.ts <= r.log.last_ts and (
            (known is not None and known.epoch == entry.epoch)
            or (entry.ts <= r.log.floor_ts and r.leader.available))
        if not in_history:
            return None  # an errant copy on a replica being rebuilt: the write never committed
        return await self._committed_outcome(entry)

    async def _committed_outcome(self, entry: Any) -> Any:
        r = self.replicator
        deadline = time.monotonic() + self.cfg.replication.write_timeout_s
        while r.commit_ts < entry.ts:
            if time.monotonic() > deadline:
                raise ApiError(504, "write_timeout", "the write with this request_id is logged but not yet committed; "
                               "its outcome is unknown — retry later with the same request_id")
            await asyncio.sleep(0.01)
        return r.outcome_from_log(entry)

    # --- views (HTTP handlers and the dashboard read the same numbers) ------------------

    def status(self) -> dict[str, Any]:
        r = self.replicator
        return {
            "current_master": r.leader.cfg.name,
            "master_is_original": r.leader_id == self.cfg.initial_leader.id,
            "replicas": [rid for rid in r.replicas if rid != r.leader_id],
            "leader": r.leader_id,
            "epoch": r.epoch,
            "commit_timestamp": r.commit_ts,
            "mode": r.rule.mode,
            "ready": r.active,
            "fenced": r.fenced,
            "inflight": r.inflight,
            "cabinet": cabinet.cabinet_members(r.rule, r.ranking),
        }

    def replica_metrics(self) -> list[dict[str, Any]]:
        r = self.replicator
        weights = cabinet.weights_for(r.rule, r.ranking)
        now_us = time.time_ns() // 1000
        mono = time.monotonic()
        out = []
        for rid, rs in r.replicas.items():
            oldest = None
            if rs.applied_ts < r.log.last_ts:
                nxt = r.log.after(rs.applied_ts, 1)
                if nxt:
                    oldest = nxt[0].time_us
                elif r.log.entries:  # behind the in-memory tail: at least this old
                    oldest = r.log.entries[0].time_us
            out.append(views.replica_metric(
                rs, rs.cfg.name, self.monitor.trackers[rid], is_master=rid == r.leader_id, last_ts=r.log.last_ts,
                lag_ms=views.lag_ms(rs.applied_ts, r.log.last_ts, oldest, now_us), weight=weights.get(rid, 0),
                now_mono=mono, updated_at=self.monitor.polled_at.get(rid, self.started_at)))
        return out

    def quorum_view(self) -> dict[str, Any]:
        r = self.replicator
        return views.quorum(cabinet.cabinet_members(r.rule, r.ranking), len(r.replicas),
                            cabinet.weights_for(r.rule, r.ranking), r.rule.threshold, r.rule.mode, r.rule.t,
                            r.rule.ratio, r.ranking)

    def leader_info(self) -> dict[str, Any]:
        """``GET /admin/leader-info``: the current leader and its SEER figures now."""
        r = self.replicator
        election = self.failover.dry_run()
        return {"success": True, "leader_id": r.leader_id, "current_master": r.leader.cfg.name,
                "master_is_original": r.leader_id == self.cfg.initial_leader.id, "epoch": r.epoch,
                "election_details": views.details(r.leader_id, views.figures_of(election, r.leader_id)),
                "last_election": self.failover.last_election}

    def election_view(self, exclude: list[str] | tuple[str, ...] = ()) -> dict[str, Any]:
        """SEER's dry run as ``:8005 /elect-leader`` shows it (no winner: candidates and reason)."""
        e = self.failover.dry_run(exclude=exclude)
        return views.election(e) if e.leader_id is not None else {"leader_id": None, **views.no_election(e)}

    def snapshot(self) -> dict[str, Any]:
        """Everything the dashboard shows, in one value (pushed to browsers)."""
        return {"time": time.time(), "status": self.status(), "replicas": self.replica_metrics(),
                "quorum": self.quorum_view(),
                "seer": {"dry_run": self.election_view(), "last": self.failover.last_election},
                "control": {"backend": self.control.name, "available": self.control.available,
                            "reason": self.control.reason}}

    async def _leader_watchdog(self) -> None:
        """Catches a leader that is down without a health transition to report it (for
        instance already down when the coordinator started), and finishes an epoch bump
        that a failed failover left on fewer than n−t replicas."""
        await asyncio.sleep(1.0)
        while True:
            r = self.replicator
            tr = self.monitor.trackers[r.leader_id]
            if r.active and not tr.healthy and tr.misses >= 1:
                self.failover.leader_suspected(r.leader_id, tr.last_error or "not answering")
            elif r.bumping_to > r.epoch and not self.failover.lock.locked():
                await self.failover.repair_epoch()
            await asyncio.sleep(self.cfg.monitor.poll_interval_ms / 1000)

    async def _proactive_loop(self) -> None:
        """Optional SEER switch: another replica predicted clearly faster for a sustained
        time (and not too soon after the last switch) takes over gracefully."""
        sc = self.cfg.seer
        tracker = seer.SwitchTracker(seer.SwitchPolicy(sc.margin, sc.sustain_s, sc.min_term_s))
        while True:
            await asyncio.sleep(1.0)
            if not sc.proactive or not self.replicator.active or self.failover.lock.locked():
                continue
            now = time.monotonic()
            target = tracker.observe(now, self.failover.dry_run(), self.replicator.leader_id)
            if target is not None:
                try:
                    await self.failover.failover("proactive SEER switch: predicted clearly faster",
                                                 target=target, planned=True)
                    tracker.switched(now)
                except ApiError as exc:
                    log.warning("proactive_switch_failed", error=exc.message)

    # --- housekeeping -----------------------------------------------------------------------

    async def _trim_loop(self) -> None:
        margin = self.cfg.replication.persisted_log_margin
        while True:
            await asyncio.sleep(self.cfg.replication.trim_interval_s)
            avail = [rs.applied_ts for rs in self.replicator.replicas.values() if rs.available]
            if avail:
                self.replicator.trim_below = max(self.replicator.trim_below, min(avail) - margin)
