"""``Core``: the coordinator's decisions as one deterministic state machine.

In the spirit of etcd raft's ``RawNode``: the caller steps in what happened
(``step(event, now_s, wall_us)``) and takes what to do now (``ready()``), carries it out
and steps the results back. Nothing inside does I/O, reads a clock or draws random
numbers: time comes with every step (monotonic seconds for deadlines, the wall clock
in µs for the leader's statement clock), random seeds with every proposal. The same
core runs in the coordinator (``coordinator.replicator`` and friends carry out its
``Ready``), in the deterministic simulation (``tests/sim``) and in the transcript
tests (``tests/core``).

``ready()`` is raft's Ready and Advance in one call: what it returns is handed over —
its replica actions are in flight until their ``Done`` arrives, its outcomes and
events are delivered. Each replica has at most one action in flight.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

from . import cabinet, commit, failover, follower, lanes, leader, opening, positions, rebuild, recovery, seer
from .actions import Close, Ready, ReplicaAction, Rollback
from .config import CoreConfig
from .health import HealthTracker
from .messages import (
    ControlDone,
    Done,
    Down,
    Event,
    FailoverRequest,
    FencedOut,
    LaneDone,
    LaneThread,
    Poll,
    Propose,
    RebuildProgress,
    Result,
    SqlFailed,
    Tick,
    TxnCommit,
)
from .outcomes import ApiError, WriteOutcome
from .replog import Entry
from .state import Phase, ReplicaState, State
from .timestamps import TimestampAllocator
from .writes import WriteQueue


class Core:
    """Owns ``st`` (``state.State``): every decision module reads and writes it only while
    ``step`` or ``ready`` runs, so the caller sees one consistent state between calls."""

    def __init__(self, cfg: CoreConfig) -> None:
        rule = cabinet.QuorumRule.build(cfg.n, cfg.failure_threshold, cfg.mode)
        self.st = State(
            cfg=cfg, rule=rule,
            replicas={r.id: ReplicaState(r.id, r.name) for r in cfg.replicas},
            health={r.id: HealthTracker(misses_allowed=cfg.missed_polls_unhealthy) for r in cfg.replicas},
            leader_id=cfg.initial_leader,
            writes=WriteQueue(cfg.max_inflight_entries, cfg.request_id_memory),
            alloc=TimestampAllocator(window=cfg.timestamp_window),
        )
        self.st.rerank()
        self.st.switch = seer.SwitchTracker(seer.SwitchPolicy(cfg.proactive_margin, cfg.proactive_sustain_s,
                                                              cfg.proactive_min_term_s))
        self._requests: deque[FailoverRequest] = deque()
        self.started = False

    # --- the interface -------------------------------------------------------------------

    def start(self, now_s: float, wall_us: int) -> None:
        """Begin start-up recovery (probe, fence, adopt the log)."""
        self._clock(now_s, wall_us)
        self.started = True
        recovery.begin(self.st)

    def step(self, ev: Event, now_s: float, wall_us: int) -> None:
        st = self._clock(now_s, wall_us)
        self._dispatch(st, ev)
        self._settle_all(st)

    def step_all(self, evs: Sequence[Event], now_s: float, wall_us: int) -> None:
        """Several events that happened at the same instant (the shell gathers the writes that
        arrived in one turn of its event loop): each dispatched in order, then the checks
        that follow any step run once — the same decisions as stepping them one by one,
        for a fraction of the work per write."""
        st = self._clock(now_s, wall_us)
        for ev in evs:
            self._dispatch(st, ev)
        self._settle_all(st)

    def _dispatch(self, st: State, ev: Event) -> None:
        if isinstance(ev, Done):
            self._done(ev)
        elif isinstance(ev, Propose):
            self._propose(ev)
        elif isinstance(ev, TxnCommit):
            lanes.commit(st, ev)
        elif isinstance(ev, LaneDone):
            lanes.on_done(st, ev)
        elif isinstance(ev, LaneThread):
            lanes.on_thread(st, ev)
        elif isinstance(ev, Poll):
            self._poll(ev)
        elif isinstance(ev, Tick):
            self._tick()
        elif isinstance(ev, ControlDone):
            owner = st.control_owner.pop(ev.id, "")
            if owner == failover.OWNER:
                failover.on_control(st, ev.id, ev.result)
            elif owner == recovery.OWNER:
                recovery.on_control(st, ev.id, ev.result)
            elif owner == lanes.OWNER:
                lanes.on_control(st, ev.id, ev.result)
        elif isinstance(ev, FailoverRequest):
            failover.request(st, ev, self._requests)
        elif isinstance(ev, RebuildProgress):
            rebuild.progress(st, st.replicas[ev.rid], ev.percent)

    def _settle_all(self, st: State) -> None:
        lanes.resume(st)
        failover.check(st)
        failover.next_request(st, self._requests)

    def ready(self) -> Ready:
        """What to do now; handed over (see the module docstring)."""
        st = self.st
        rd, st.out = st.out, Ready()
        for rs in st.replicas.values():
            a = self._next(rs)
            if a is not None:
                rs.inflight = a
                rd.actions.append(a)
        # deciding an action may have answered writes (expired in the queue) or emitted events
        if st.out:
            more, st.out = st.out, Ready()
            rd.outcomes += more.outcomes
            rd.lane_actions += more.lane_actions
            rd.events += more.events
            rd.logs += more.logs
            rd.control += more.control
        return rd

    # --- commands (synchronous, deterministic) ----------------------------------------------

    def lane_term(self) -> int | None:
        """The leader term an interactive transaction may begin in now (None: not now)."""
        return lanes.term(self.st)

    def take_timestamp(self, parity: int | None) -> int | None:
        """A bare timestamp below the persisted mark, or None (persist a new mark first)."""
        return self.st.alloc.take_single(parity)

    def set_mode(self, mode: str) -> str:
        st = self.st
        old = st.rule.mode
        st.rule = st.rule.with_mode(mode)
        commit.advance(st)
        if old != mode:
            st.emit("mode", f"quorum mode changed from {old} to {mode}", old=old, new=mode)
        return old

    def deactivate(self) -> None:
        """Stop taking writes (quiesce for a reset): new ones are refused, but the writes already
        queued and the parked ones still run and commit (``draining``) — else they could only
        time out, unanswered, and the pipeline would never be quiescent."""
        self.st.active, self.st.draining = False, True

    def activate(self) -> None:
        self.st.active = not self.st.fenced and self.st.recovery is None
        self.st.draining = False

    def begin_reset(self) -> None:
        """A reset takes the pipeline until ``restart_empty`` / ``end_reset``: it clears the servers
        behind the core's back, so no new write (``deactivate``) and no failover (409) meanwhile; the
        open interactive transactions are doomed (a new term: their locks would block the clearing)."""
        self.st.resetting = True
        self.st.new_term()
        self.deactivate()
        self.st.emit("reset_started", "reset started: writes and failovers wait until the replicas are cleared")

    def fenced_on(self, rid: str) -> None:
        """A round trip outside the core's actions (a reset's) found a newer coordinator's epoch on ``rid``."""
        self.st.fence(self.st.replicas[rid].name)

    def end_reset(self) -> None:
        """A reset gave up before clearing anything: writes and failovers as before."""
        self.st.resetting = False
        self.activate()
        self.st.emit("reset_abandoned", "reset gave up before clearing anything; writes and failovers resume")

    def quiescent(self) -> bool:
        """Nothing queued, in flight or in doubt, and every available replica applied the log."""
        st = self.st
        return (st.writes.empty and st.in_doubt is None and st.batch is None and not st.commits
                and not st.lanes and all(rs.applied_ts >= st.log.last_ts for rs in st.replicas.values()
                                         if rs.available))

    def shutdown(self) -> None:
        self.st.active = self.st.draining = False
        self.st.writes.shutdown(self.st.out)

    def restart_empty(self, failed: list[str]) -> None:
        """Every replica was cleared (reset): forget the log and timestamps; the appliers
        were restarted, so every replica reconnects; ``failed`` ones need a rebuild."""
        st = self.st
        st.log.reset(0)
        st.alloc = TimestampAllocator(window=st.cfg.timestamp_window)
        st.commit_ts = 0
        st.marks.clear()
        st.trim_below, st.batch, st.in_doubt = 0, None, None
        st.commits.clear()
        st.lanes.clear()
        st.drained.clear()  # timestamps start again at 1: old ones would match new entries
        st.failed_ddl.clear()
        for rs in st.replicas.values():
            rs.applied_ts, rs.applied_epoch, rs.trimmed_below = 0, st.epoch, 0
            rs.phase, rs.inflight, rs.pending, rs.rollback = Phase.CLOSED, None, None, None
            rs.needs_rebuild = rs.needs_rebuild or rs.id in failed
        st.resetting = False
        self.activate()

    def knows_request(self, request_id: str) -> bool:
        return request_id in self.st.writes.by_request_id

    def logged_entry(self, request_id: str) -> Entry | None:
        """A keyed entry held in the in-memory log: its outcome is already decided."""
        return self.st.log.by_request_id.get(request_id)

    def in_history(self, entry: Entry) -> bool:
        """A log entry read from the leader's persisted log is part of our history (not an
        errant copy on a replica being rebuilt)."""
        st = self.st
        known = st.log.get(entry.ts)
        return entry.ts <= st.log.last_ts and ((known is not None and known.epoch == entry.epoch)
                                               or (entry.ts <= st.log.floor_ts and st.leader.available))

    def outcome_of(self, entry: Entry) -> WriteOutcome:
        return commit.outcome_of(self.st, entry)

    def dry_run(self, exclude: tuple[str, ...] | list[str] = ()) -> seer.Election:
        return failover.dry_run(self.st, exclude)

    # --- internals -------------------------------------------------------------------------

    def _clock(self, now_s: float, wall_us: int) -> State:
        st = self.st
        st.now, st.wall_us = now_s, wall_us
        return st

    def _propose(self, ev: Propose) -> None:
        st = self.st
        refusal = None
        if st.fenced:
            refusal = ApiError(503, "fenced", "this coordinator was fenced off by a newer one (higher epoch); it no "
                               "longer writes")
        elif st.draining:
            refusal = ApiError(503, "busy", "the coordinator is finishing its writes for a reset; retry shortly")
        elif not st.active:
            refusal = ApiError(503, "not_ready", "the coordinator is not accepting writes yet (recovering or waiting "
                               "for replicas)")
        timeout = st.cfg.write_timeout_s if ev.timeout_s is None else ev.timeout_s
        st.writes.admit(st.out, ev.handle, ev.kind, ev.statements, ev.seeds, st.now + timeout, ev.request_id,
                        ev.exact_mark, refusal)

    def _poll(self, ev: Poll) -> None:
        st = self.st
        tr = st.health[ev.rid]
        changed = tr.observe(st.now, ev.outcome, ev.latency_ms, ev.error)
        if changed is None:
            return
        rs = st.replicas[ev.rid]
        rs.healthy = changed
        if changed:
            st.emit("replica_up", f"{rs.name} is healthy (poll {tr.last_latency_ms or 0:.1f} ms)", replica=rs.id)
        else:
            st.emit("replica_down", f"{rs.name} is unhealthy: {tr.last_error}", replica=rs.id, error=tr.last_error,
                    crash_count=tr.crash_count)
            if rs.id == st.leader_id:
                failover.suspect(st, rs.id, tr.last_error)
        st.rerank()

    def _due(self, name: str, period_s: float, first_s: float | None = None) -> bool:
        st = self.st
        at = st.timers.get(name)
        if at is None:
            st.timers[name] = st.now + (period_s if first_s is None else first_s)
            return False
        if st.now < at:
            return False
        st.timers[name] = st.now + period_s
        return True

    def _tick(self) -> None:
        st = self.st
        cfg = st.cfg
        st.writes.expire(st.out, st.now, cfg.write_timeout_s)
        recovery.tick(st)
        lanes.tick(st)
        failover.retry_due(st)
        if st.recovery is not None or not self.started:
            return
        if self._due("watchdog", cfg.poll_interval_s, 1.0):
            # A leader down without a health transition to report it (for instance already
            # down at start-up), and an epoch bump a failed failover left on fewer than n−t.
            tr = st.health[st.leader_id]
            if st.active and not tr.healthy and tr.misses >= 1:
                failover.suspect(st, st.leader_id, tr.last_error or "not answering")
            elif st.bumping_to > st.epoch:
                failover.repair(st)
        if cfg.proactive and self._due("proactive", 1.0) and st.active and st.failover is None:
            target = st.switch.observe(st.now, failover.dry_run(st), st.leader_id)
            if target is not None:
                failover.switch(st, target)
        if self._due("trim", cfg.trim_interval_s):
            avail = [rs.applied_ts for rs in st.replicas.values() if rs.available]
            if avail:
                st.trim_below = max(st.trim_below, min(avail) - cfg.persisted_log_margin)

    def _next(self, rs: ReplicaState) -> ReplicaAction | None:
        st = self.st
        if rs.inflight is not None or rs.restarting or st.now < rs.retry_at or not self.started:
            return None
        if st.recovery is not None:
            return None
        if st.fenced:
            if rs.phase in (Phase.OPEN, Phase.OPENING):
                rs.phase, rs.pending = Phase.IDLE, None
                rs.owner = "close"
                return Close(rs.id, st.next_seq())
            return None
        if rs.phase is Phase.IDLE:
            return None
        if rs.phase is Phase.CLOSED:
            rs.owner = "opening"
            return opening.open_action(st, rs)
        if rs.phase is Phase.OPENING:
            rs.owner = "opening"
            return opening.next_action(st, rs)
        if rs.rollback is not None:
            sp, rs.rollback = rs.rollback, None
            rs.owner = "rollback"
            return Rollback(rs.id, st.next_seq(), sp or None)
        if rs.diverged or rs.needs_rebuild or isinstance(rs.pending, rebuild.RebuildJob):
            rs.owner = "rebuild"
            return rebuild.next_action(st, rs)
        if rs.id == st.leader_id and st.batch is not None:
            rs.owner = "leader"
            return leader.next_action(st, rs)
        if rs.id != st.leader_id or rs.pending is not None or rs.applied_ts < st.log.last_ts:
            rs.owner = "follower"
            return follower.next_action(st, rs)
        if st.in_doubt is None:
            rs.owner = "leader"
            return leader.next_action(st, rs)
        return None

    def _done(self, ev: Done) -> None:
        st = self.st
        rs = st.replicas[ev.rid]
        a = rs.inflight
        if a is None or a.seq != ev.seq:
            return  # a result of an action we gave up on (its applier was restarted)
        rs.inflight = None
        rest: Result | None
        owner = rs.owner
        if owner == "opening":
            rest = opening.on_result(st, rs, a, ev.result)
        elif owner == "leader":
            rest = leader.on_result(st, rs, a, ev.result)
        elif owner == "follower":
            rest = follower.on_result(st, rs, a, ev.result)
        elif owner == "rebuild":
            rest = rebuild.on_result(st, rs, a, ev.result)
        else:  # rollback, close: best effort
            rest = ev.result if isinstance(ev.result, (Down, FencedOut)) else None
        if rest is not None:
            self._failed(rs, rest)
        if rs.diverged and rs.id == st.leader_id:
            failover.suspect(st, rs.id, f"the leader failed to replay a log entry: {rs.last_error}", True)

    def _failed(self, rs: ReplicaState, result: Result) -> None:
        """The replica's own connection failed (or the core gave up on it)."""
        st = self.st
        if isinstance(result, FencedOut):
            rs.pending = None
            st.fence(rs.id)
            return
        if isinstance(result, SqlFailed):  # one of our own statements refused while opening or replaying
            positions.diverge(st, rs, result.errno, result.message)
            return
        why = getattr(result, "message", "") or type(result).__name__
        if isinstance(result, Down) and result.cause.value == "internal":
            st.note("error", "applier_internal_error", replica=rs.id, error=why)
            why = f"internal error: {why}"
        positions.mark_down(st, rs, why)
        if rs.id == st.leader_id:
            failover.suspect(st, rs.id, why)

