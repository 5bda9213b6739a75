"""Start-up recovery, as a plan: from the replicas' persisted state to a running core.

1. Probe every replica (connect, ensure the internal schema, read the state row); at
   least n−t must answer, else wait and probe again.
2. Fence first, then read: store epoch = max(seen)+1 on the probed replicas by
   compare-and-set. Once n−t hold it, no older coordinator can commit anything, so the
   state read back afterwards includes everything it ever acknowledged (every commit
   quorum has ≥ t+1 members; (t+1) + (n−t) > n).
3. Adopt the most advanced log (by epoch, then timestamp) among them: read its tail
   from that replica. Only what a quorum of the fenced replicas holds counts as
   committed; the rest of the adopted tail commits as the others catch up.
4. Resume timestamps above the highest persisted mark (never reuse one after a crash).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import cabinet
from .actions import BumpEpoch, Probe, ReadLog
from .messages import Ok, Result, Snapshot
from .replog import Entry
from .state import State
from .timestamps import TimestampAllocator

OWNER = "recovery"


@dataclass
class Plan:
    phase: str = "probe"  # probe | fence | read | wait
    waiting: dict[int, str] = field(default_factory=dict)
    probes: dict[str, Snapshot] = field(default_factory=dict)
    epoch: int = 0
    leader: str = ""
    source: str = ""
    floor: int = 0
    announced: bool = False
    retry_at: float = 0.0


def begin(st: State) -> None:
    st.active = False
    st.recovery = Plan()
    _probe(st, st.recovery)


def _probe(st: State, plan: Plan) -> None:
    plan.phase = "probe"
    plan.probes = {}
    plan.waiting = {st.control(OWNER, Probe, rid).id: rid for rid in st.replicas}


def tick(st: State) -> None:
    plan = st.recovery
    if plan is not None and plan.phase == "wait" and st.now >= plan.retry_at:
        _probe(st, plan)


def _wait(st: State, plan: Plan) -> None:
    plan.phase = "wait"
    plan.waiting = {}
    plan.retry_at = st.now + st.cfg.recovery_retry_s


def on_control(st: State, task_id: int, result: Result) -> None:
    plan = st.recovery
    if plan is None or task_id not in plan.waiting:
        return
    rid = plan.waiting.pop(task_id)
    if plan.phase == "probe":
        if isinstance(result, Ok):
            plan.probes[rid] = result.value
        else:
            st.replicas[rid].last_error = getattr(result, "message", "")
        if not plan.waiting:
            _fence(st, plan)
    elif plan.phase == "fence":
        if isinstance(result, Ok) and result.value.epoch == plan.epoch:
            plan.probes[rid] = result.value
        else:
            plan.probes.pop(rid, None)
            st.note("warning", "epoch_bump_failed", replica=rid, error=getattr(result, "message", "lost the race"))
        if not plan.waiting:
            if len(plan.probes) < st.cfg.n - st.rule.t:
                st.note("warning", "epoch_bump_lost", epoch=plan.epoch, won=len(plan.probes),
                        needed=st.cfg.n - st.rule.t)
                _wait(st, plan)  # another coordinator raced us: read the state again
            else:
                _read(st, plan)
    elif plan.phase == "read":
        if isinstance(result, Ok):
            _adopt(st, plan, list(result.value))
        else:
            _wait(st, plan)


def _fence(st: State, plan: Plan) -> None:
    need = st.cfg.n - st.rule.t
    if len(plan.probes) < need:
        if not plan.announced:
            st.emit("waiting_for_replicas", f"recovery needs {need} of {st.cfg.n} replicas reachable; found "
                    f"{len(plan.probes)}", reachable=sorted(plan.probes), needed=need)
            plan.announced = True
        _wait(st, plan)
        return
    plan.epoch = max(s.epoch for s in plan.probes.values()) + 1
    pre = max(plan.probes.values(), key=lambda s: (s.applied_epoch, s.applied_ts))
    plan.leader = pre.leader_id if pre.leader_id in st.replicas else st.cfg.initial_leader
    plan.phase = "fence"
    plan.waiting = {st.control(OWNER, BumpEpoch, rid, plan.epoch, plan.leader, snap.epoch).id: rid
                    for rid, snap in plan.probes.items()}


def _read(st: State, plan: Plan) -> None:
    source, snap = max(plan.probes.items(), key=lambda kv: (kv[1].applied_epoch, kv[1].applied_ts))
    low = min(s.applied_ts for s in plan.probes.values())
    limit = st.cfg.memory_log_entries
    plan.source = source
    plan.floor = max(low, snap.log_floor - 1, snap.applied_ts - limit)
    plan.phase = "read"
    after, count = (plan.floor - 1, limit + 1) if plan.floor else (0, limit)
    plan.waiting = {st.control(OWNER, ReadLog, source, after, count).id: source}


def _adopt(st: State, plan: Plan, entries: list[Entry]) -> None:
    src = plan.probes[plan.source]
    highest, floor = src.applied_ts, plan.floor
    floor_epoch = entries[0].epoch if floor and entries and entries[0].ts == floor else None
    entries = [e for e in entries if floor < e.ts <= highest]
    st.epoch = plan.epoch
    st.leader_id = plan.leader
    st.new_term()
    st.alloc = TimestampAllocator.recovered(highest, max(s.ts_mark for s in plan.probes.values()),
                                            st.cfg.timestamp_window)
    st.log.reset(last_ts=floor, floor_epoch=floor_epoch)
    st.log.append(entries)
    st.log.last_ts = max(st.log.last_ts, highest)
    for rid, snap in plan.probes.items():
        rs = st.replicas[rid]
        rs.applied_ts, rs.applied_epoch = snap.applied_ts, snap.applied_epoch
    st.rerank()
    st.commit_ts = cabinet.commit_index(st.rule, st.ranking, {rid: s.applied_ts for rid, s in plan.probes.items()})
    st.fresh = highest == 0
    st.recovery = None
    st.active = True
    st.emit("epoch", f"epoch {plan.epoch} started; leader {st.leader.name}; log adopted from "
            f"{st.replicas[plan.source].name} up to timestamp {highest}", epoch=plan.epoch, leader=plan.leader,
            source=plan.source, applied_ts=highest, next_timestamp=st.alloc.last + 1)
