"""Full rebuild of a diverged, errant or hopelessly lagging replica, as a plan.

1. Pick a source: an available peer (followers first, the most advanced) whose position
   lies within the in-memory log, so the copy can catch up from the log afterwards.
2. ``RebuildBegin``: the shell opens the source and takes a consistent snapshot that
   also reads the source's position. That position must be a point of the log — the
   leader holding an in-doubt batch, say, is not; then the source is refused and the
   rebuild retried later (never copy unlogged entries).
3. ``RebuildCopy``: mark the replica "rebuild in progress" (so an interrupted rebuild can
   never pass as a valid position), copy the user database, set its position to the
   source's; the applier then catches up from the log as usual.
Runs in the replica's own applier, so nothing else touches the replica meanwhile.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import commit, history
from .actions import LookupEntry, RebuildAbort, RebuildBegin, RebuildCopy, ReplicaAction
from .follower import peers_for
from .messages import Cause, Down, FencedOut, Ok, Result, Snapshot, SqlFailed
from .opening import lookup_peers
from .state import ReplicaState, State


@dataclass
class RebuildJob:
    """``ReplicaState.pending`` during a rebuild."""

    source: str
    started: float
    epoch: int = 0
    step: str = "begin"  # begin | lookup | copy | abort
    snap: Snapshot | None = None
    refusal: str = ""  # why the source was refused (the abort's reason)
    next_report: float = 25.0


def source_for(st: State, rs: ReplicaState) -> str | None:
    for pid in peers_for(st, rs):  # followers first: the leader may hold a batch in doubt
        if st.log.floor_ts <= st.replicas[pid].applied_ts <= st.log.last_ts:
            return pid
    return None


def next_action(st: State, rs: ReplicaState) -> ReplicaAction | None:
    job = rs.pending
    if not isinstance(job, RebuildJob):
        src = source_for(st, rs)
        if src is None:
            rs.retry_at = st.now + st.cfg.retry_interval_s
            return None
        job = rs.pending = RebuildJob(src, st.now)
        rs.rebuilding, rs.rebuild_progress = True, 0.0
        why = "diverged" if rs.diverged else "errant or too far behind"
        st.emit("rebuild_started", f"rebuilding {rs.name} ({why}) from {st.replicas[src].name}", replica=rs.id,
                source=src)
    seq = st.next_seq()
    if job.step == "begin":
        return RebuildBegin(rs.id, seq, job.source)
    if job.step == "lookup":
        assert job.snap is not None
        return LookupEntry(rs.id, seq, job.snap.applied_ts, tuple(p for p in lookup_peers(st, job.source)))
    if job.step == "copy":
        assert job.snap is not None
        job.epoch = st.epoch
        return RebuildCopy(rs.id, seq, st.epoch, job.snap.applied_ts, job.snap.applied_epoch)
    return RebuildAbort(rs.id, seq)


def progress(st: State, rs: ReplicaState, percent: float) -> None:
    job = rs.pending
    if not isinstance(job, RebuildJob) or not rs.rebuilding:
        return
    rs.rebuild_progress = round(percent, 1)
    if job.next_report <= percent < 100:
        st.emit("rebuild_progress", f"rebuilding {rs.name}: {percent:.0f}%", replica=rs.id, percent=rs.rebuild_progress)
        while job.next_report <= percent:
            job.next_report += 25


def on_result(st: State, rs: ReplicaState, action: ReplicaAction, result: Result) -> Result | None:
    job = rs.pending
    assert isinstance(job, RebuildJob), job
    if isinstance(result, Ok):
        if isinstance(action, RebuildBegin):
            job.snap = result.value
            _verify(st, rs, job, history.verdict(st.log, job.snap.applied_ts, job.snap.applied_epoch))
        elif isinstance(action, LookupEntry):
            assert job.snap is not None
            _verify(st, rs, job, history.by_lookup(job.snap.applied_ts, job.snap.applied_epoch, result.value))
        elif isinstance(action, RebuildCopy):
            _done(st, rs, job, int(result.value or 0))
        else:  # RebuildAbort
            _failed(st, rs, f"source {st.replicas[job.source].name} is not at a point of the log ({job.refusal})")
            rs.retry_at = st.now + st.cfg.retry_interval_s
        return None
    message = getattr(result, "message", "")
    _failed(st, rs, message or type(result).__name__)
    if isinstance(result, FencedOut):
        if st.own_epoch_moved(job.epoch or st.epoch):
            return Down(Cause.IO, "epoch moving during a rebuild; retrying")
        return result
    if isinstance(result, SqlFailed) or (isinstance(result, Down) and result.peer_failed):
        rs.retry_at = st.now + st.cfg.retry_interval_s  # the source's fault: try again later
        return None
    return result


def _verify(st: State, rs: ReplicaState, job: RebuildJob, v: history.Verdict) -> None:
    if v is history.LOOKUP:
        job.step = "lookup"
    elif isinstance(v, str):
        job.step, job.refusal = "abort", v
    else:
        job.step = "copy"


def _failed(st: State, rs: ReplicaState, why: str) -> None:
    rs.pending = None
    rs.rebuilding, rs.rebuild_progress = False, None
    rs.needs_rebuild = True
    if rs.id == st.leader_id:
        st.new_term()
    st.emit("rebuild_failed", f"rebuild of {rs.name} failed: {why}; will retry", replica=rs.id, error=why)


def _done(st: State, rs: ReplicaState, job: RebuildJob, rows: int) -> None:
    assert job.snap is not None
    rs.pending = None
    rs.applied_ts, rs.applied_epoch = job.snap.applied_ts, job.snap.applied_epoch
    rs.trimmed_below = 0
    rs.diverged = rs.needs_rebuild = rs.rebuilding = False
    rs.rebuild_progress = None
    rs.last_error = ""
    st.counters.rebuilds += 1
    seconds = round(st.now - job.started, 2)
    st.emit("rebuild_done", f"rebuilt {rs.name} from {st.replicas[job.source].name} at timestamp "
            f"{job.snap.applied_ts} ({rows} rows in {seconds:.1f}s); catching up", replica=rs.id, source=job.source,
            applied_ts=job.snap.applied_ts, rows=rows, seconds=seconds)
    st.rerank()
    commit.advance(st)  # its position counts again
