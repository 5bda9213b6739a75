"""Failover and planned switchover, as a plan the core advances from events.

When the leader's server fails (a refused connection at once; a hung server after a
few missed polls; a broken leader round trip, confirmed by a quick independent probe),
or an operator asks:

1. stop feeding the leader (``leading_enabled = False``). Planned: let its batch in
   flight finish (drain). Unplanned: take its unlogged work back to the queue and
   restart its applier (a round trip stuck on a hung server is cancelled);
2. elect with SEER among healthy replicas (an operator may name the target);
3. let the winner apply every log entry it lacks;
4. store epoch+1 on at least n−t replicas (compare-and-set) before anything uses it;
5. ``read_only`` on the others; resume. One event carries every phase's timing.

Only server failures trigger this — an SQL error never does. At most one plan runs;
operator requests arriving meanwhile wait their turn. A plan that fails leaves
leadership as it was; an automatic one is retried shortly if the leader is still bad.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from . import leader, seer
from .actions import BumpEpoch, ProbeLeader, RestartApplier, SetReadOnly
from .messages import FailoverRequest, Ok, Result
from .outcomes import ApiError
from .state import Phase, State

OWNER = "failover"


@dataclass(frozen=True)
class FailoverOutcome:
    """What an operator's failover request gets: ``error`` when it failed; the election
    that was run (the shell shapes both, and the result, for its front end)."""

    error: ApiError | None
    election: seer.Election | None


@dataclass
class Plan:
    reason: str
    target: str | None
    planned: bool
    detected_at: float
    expected_leader: str | None
    handles: list[int] = field(default_factory=list)  # operator requests answered at the end
    force: bool = False  # a diverged leader steps down although it answers
    repair: bool = False  # only re-store the epoch on n−t (same leader)
    auto: bool = False
    proactive: bool = False
    phase: str = "start"  # confirm | drain | restart | catch_up | bump | read_only
    old: str = ""
    new: str = ""
    election: seer.Election | None = None
    deadline: float = 0.0
    waiting: dict[int, str] = field(default_factory=dict)  # control task id -> replica, not yet answered
    won: int = 0
    epoch: int = 0
    t0: float = 0.0
    t_elect: float = 0.0
    t_catch: float = 0.0


def candidates(st: State) -> list[seer.CandidateInput]:
    out = []
    for rid, rs in st.replicas.items():
        tr = st.health[rid]
        out.append(seer.CandidateInput(
            id=rid, name=rs.name, healthy=tr.healthy and rs.connected, diverged=rs.diverged,
            rebuilding=rs.rebuilding or rs.needs_rebuild, applied_ts=rs.applied_ts,
            exec_ms=rs.ack_ms if rs.ack_ms is not None else tr.latency_ms, rtt_ms=tr.latency_ms,
            uptime_s=tr.uptime_s(st.now), crash_count=tr.crash_count, recent_crashes=tr.recent_crashes(st.now),
            lag_entries=max(0, st.log.last_ts - rs.applied_ts)))
    return out


def dry_run(st: State, exclude: tuple[str, ...] | list[str] = ()) -> seer.Election:
    params = seer.SeerParams(crash_penalty_ms=st.cfg.seer_crash_penalty_ms, min_uptime_s=st.cfg.seer_min_uptime_s)
    return seer.elect(candidates(st), st.rule, exclude=exclude, params=params, current_leader=st.leader_id)


# --- triggers --------------------------------------------------------------------------------


def suspect(st: State, rid: str, why: str, force: bool = False) -> None:
    """A leader health change or a broken leader round trip: start at most one plan (it
    re-checks the leader first, unless ``force``: a leader that diverged must step down)."""
    if rid != st.leader_id or not st.active or st.fenced or st.failover is not None:
        return
    plan = Plan(f"leader {st.replicas[rid].name} failed: {why}", None, False, st.now, rid, force=force, auto=True)
    st.failover = plan
    if not force and st.health[rid].healthy:
        plan.phase = "confirm"
        plan.waiting = {st.control(OWNER, ProbeLeader, rid, st.cfg.leader_probe_timeout_s).id: rid}
        return
    _start(st, plan)


def request(st: State, ev: FailoverRequest, queue: deque[FailoverRequest]) -> None:
    """An operator's request; one arriving while a plan runs waits its turn in ``queue``; one
    during a reset (the servers are being cleared, the appliers stopped) is refused."""
    if st.resetting:
        st.answer(ev.handle, FailoverOutcome(ApiError(409, "reset_in_progress",
                                                      "a reset is clearing the replicas; retry the failover after it"),
                                             None))
        return
    if st.failover is not None:
        queue.append(ev)
        return
    plan = Plan(ev.reason, ev.target, ev.planned, st.now, ev.expected_leader, [ev.handle])
    st.failover = plan
    _start(st, plan)


def switch(st: State, target: str) -> None:
    """The proactive SEER switch: another replica is predicted clearly faster, for long enough."""
    if st.failover is None:
        st.failover = Plan("proactive SEER switch: predicted clearly faster", target, True, st.now, None,
                           proactive=True)
        _start(st, st.failover)


def repair(st: State) -> None:
    """A failover stored a new epoch on some replicas but not on n−t: they refuse our
    batches. Store a newer epoch on n−t (same leader) so everyone accepts it."""
    if st.failover is not None or st.bumping_to <= st.epoch or st.fenced or not st.active:
        return
    plan = st.failover = Plan("epoch repair", None, True, st.now, None, repair=True)
    plan.old = plan.new = st.leader_id
    _bump(st, plan)


def next_request(st: State, queue: deque[FailoverRequest]) -> None:
    if st.failover is None and queue:
        request(st, queue.popleft(), queue)


# --- the procedure ---------------------------------------------------------------------------


def _start(st: State, plan: Plan) -> None:
    if plan.expected_leader is not None and st.leader_id != plan.expected_leader:
        _finish(st, plan)  # a concurrent failover already handled it
        return
    plan.t0 = st.now
    plan.old = st.leader_id
    if plan.target == plan.old:
        _fail(st, plan, ApiError(409, "already_leader", f"{st.replicas[plan.old].name} is already the leader"))
        return
    st.leading_enabled = False
    plan.deadline = st.now + st.cfg.write_timeout_s
    if plan.planned:
        plan.phase = "drain"
        check(st)
        return
    requeued = leader.take_back(st)
    if requeued:
        st.note("info", "requeued_inflight", count=requeued)
    rs = st.replicas[plan.old]
    rs.inflight, rs.restarting = None, True  # its in-flight result, if any, is never stepped
    plan.phase = "restart"
    plan.waiting = {st.control(OWNER, RestartApplier, plan.old).id: plan.old}


def _elect(st: State, plan: Plan) -> None:
    election = dry_run(st, exclude=[plan.old])
    plan.election = election
    if plan.target is not None:
        cand = next((c for c in election.candidates if c.id == plan.target), None)
        if cand is None or not cand.eligible:
            why = cand.reason if cand else "unknown replica"
            name = st.replicas[plan.target].name if cand else plan.target
            _fail(st, plan, ApiError(409, "ineligible_leader", f"{name} cannot lead: {why}"))
            return
        plan.new = plan.target
    elif election.leader_id is None:
        _fail(st, plan, ApiError(503, "no_eligible_leader", f"no replica can take over: {election.reason}"))
        return
    else:
        plan.new = election.leader_id
    plan.t_elect = st.now
    plan.phase = "catch_up"
    plan.deadline = st.now + st.cfg.write_timeout_s
    check(st)


def _bump(st: State, plan: Plan) -> None:
    """Store epoch+1 on at least n−t replicas before any entry uses it, so a coordinator
    that restarts later always sees it and goes higher. Never reuse a number an earlier,
    partly stored attempt may have left on a replica."""
    old = max(st.epoch, st.bumping_to)
    plan.epoch = old + 1
    st.bumping_to = plan.epoch  # batches of the old epoch now fail their fence: retried, not fenced
    plan.phase = "bump"
    plan.won = 0
    targets = [rid for rid in st.replicas if st.health[rid].healthy]
    plan.waiting = {st.control(OWNER, BumpEpoch, rid, plan.epoch, plan.new, old).id: rid for rid in targets}
    if not plan.waiting:
        _bumped(st, plan)


def _bumped(st: State, plan: Plan) -> None:
    if st.fenced:
        _fail(st, plan, ApiError(503, "fenced", "another coordinator holds a newer epoch; this one stopped"))
        return
    need = st.cfg.n - st.rule.t
    if plan.won < need:
        # bumping_to stays: replicas that took it fence our old-epoch batches, which then
        # retry (not stop) until a later attempt stores a higher epoch on n−t.
        _fail(st, plan, ApiError(503, "epoch_not_persisted", f"the new epoch reached only {plan.won} replicas; "
                                 f"{need} are needed before it can be used"))
        return
    st.epoch = plan.epoch
    st.bumping_to = 0
    if plan.repair:
        st.failover = None
        st.emit("epoch", f"epoch {plan.epoch}: re-established on a quorum after a partly stored bump; leader "
                f"{st.leader.name} unchanged", epoch=plan.epoch, leader=st.leader_id)
        return
    st.leader_id = plan.new
    st.new_term()
    st.rerank()
    plan.t_catch = plan.t_catch or st.now
    plan.phase = "read_only"
    targets = [rid for rid in st.replicas if st.health[rid].healthy]
    plan.waiting = {st.control(OWNER, SetReadOnly, rid, rid != plan.new).id: rid for rid in targets}
    if not plan.waiting:
        _done(st, plan)


def on_control(st: State, task_id: int, result: Result) -> None:
    plan = st.failover
    if plan is None or task_id not in plan.waiting:
        return
    rid = plan.waiting.pop(task_id)
    if plan.phase == "confirm":
        if isinstance(result, Ok):
            st.failover = None  # a hiccup on the data path; the monitor still sees it answering
        else:
            _start(st, plan)
    elif plan.phase == "restart":
        rs = st.replicas[rid]
        rs.restarting = False
        rs.phase = Phase.CLOSED
        rs.pending = None
        rs.rollback = None
        if rs.connected:
            rs.connected = False
            st.rerank()
        _elect(st, plan)
    elif plan.phase == "bump":
        if isinstance(result, Ok):
            if result.value.epoch > plan.epoch:
                st.fence(rid)
            elif result.value.epoch == plan.epoch:
                plan.won += 1
        if not plan.waiting:
            _bumped(st, plan)
    elif plan.phase == "read_only" and not plan.waiting:
        _done(st, plan)


def check(st: State) -> None:
    """Advance a plan waiting on the pipeline (drain, catch-up) or on a deadline."""
    plan = st.failover
    if plan is None:
        return
    if plan.phase == "drain":
        if st.batch is None and st.in_doubt is None and not st.commits:
            _elect(st, plan)
        elif st.now > plan.deadline:
            _fail(st, plan, ApiError(503, "busy", "the leader did not finish its current batch in time; retry"))
    elif plan.phase == "catch_up":
        rs = st.replicas[plan.new]
        if rs.applied_ts >= st.log.last_ts and not rs.diverged and not rs.needs_rebuild:
            plan.t_catch = st.now
            _bump(st, plan)
        elif st.now > plan.deadline or not rs.available:
            _fail(st, plan, ApiError(503, "catch_up_failed", f"{rs.name} did not catch up with the log in time "
                                     f"(applied {rs.applied_ts} of {st.log.last_ts})"))


def _done(st: State, plan: Plan) -> None:
    st.leading_enabled = True
    st.counters.failovers += 1
    old, new = plan.old, plan.new
    last_ok = st.health[old].last_ok
    failed_since = (min(plan.detected_at, max(last_ok, plan.detected_at - 10.0))
                    if not plan.planned and last_ok else plan.detected_at)
    t_resume = st.now
    timings = {"detect_ms": round((plan.t0 - failed_since) * 1000, 1),
               "elect_ms": round((plan.t_elect - plan.t0) * 1000, 1),
               "catch_up_ms": round((plan.t_catch - plan.t_elect) * 1000, 1),
               "resume_ms": round((t_resume - plan.t_catch) * 1000, 1),
               "total_ms": round((t_resume - failed_since) * 1000, 1)}
    election = plan.election
    assert election is not None
    st.last_election = {"time_us": st.wall_us, "old_leader": old, "new_leader": new, "epoch": plan.epoch,
                        "reason": plan.reason, "planned": plan.planned, "timings": timings, "election": election}
    if plan.proactive:
        st.switch.switched(st.now)
    kind = "switchover" if plan.planned else "failover"
    st.emit(kind, f"{kind}: {st.replicas[old].name} -> {st.replicas[new].name} (epoch {plan.epoch}); {plan.reason}; "
            f"SEER: {election.reason}", old_leader=old, new_leader=new, epoch=plan.epoch, timings=timings,
            planned=plan.planned)
    _finish(st, plan)


def _fail(st: State, plan: Plan, err: ApiError) -> None:
    st.note("warning", "failover_failed", error=err.message)
    if plan.auto and plan.expected_leader is not None:
        st.failover_retry = (st.now + st.cfg.failover_retry_s, plan.expected_leader, err.message, plan.force)
    _finish(st, plan, error=err)


def _finish(st: State, plan: Plan, error: ApiError | None = None) -> None:
    st.leading_enabled = True
    st.failover = None
    for h in plan.handles:
        st.answer(h, FailoverOutcome(error, plan.election))


def retry_due(st: State) -> None:
    """An automatic failover failed: try again if the leader is still the bad one."""
    due = st.failover_retry
    if due is None or st.now < due[0]:
        return
    st.failover_retry = None
    _, rid, why, force = due
    if st.leader_id == rid and (force or not st.health[rid].healthy):
        suspect(st, rid, why, force)
