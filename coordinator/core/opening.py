"""Opening a replica's applier connection: fencing, history, unfinished DDL, in-doubt batch.

Run after every (re)connect, before the replica's position may count toward any commit:

1. A stored epoch above ours (and above the one a failover of ours is storing) means a
   newer coordinator took over: we are fenced.
2. The position (applied_ts, applied_epoch) must be a point of the log (``history``);
   below the in-memory log a peer's persisted log is asked (``LookupEntry``). If not,
   the replica holds entries that never committed: it is rebuilt. The leader returning
   with the batch we were unsure about is not errant: that batch is resolved instead.
3. A DDL marker without its applied position: finish the DDL if the entry is in the log
   (re-run, "already done" errors tolerated); drop the marker if the DDL failed on the
   leader; if this is the leader's in-doubt DDL, finish it and resolve the doubt;
   otherwise the replica started an entry that never entered the log: rebuild it.
4. The leader's in-doubt batch: its log says whether it committed (``leader``). A leader
   whose position runs beyond the log only by its own unsettled commits (interactive
   transactions commit out of timestamp order) counts from the log's end: those commits
   enter the log in order as they settle.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import commit, doubt, history, leader, positions
from .actions import AloneAbort, AloneFinish, AloneRun, LookupEntry, Open, ReplicaAction
from .messages import Cause, Down, FencedOut, Ok, Opened, Result, Snapshot, SqlFailed
from .replog import Entry
from .state import Phase, ReplicaState, State


@dataclass
class OpenJob:
    """``ReplicaState.pending`` while a connection is being verified."""

    snap: Snapshot
    present: frozenset[int] = frozenset()  # of the Open's check_ts: in the replica's log
    step: str = ""  # lookup | ddl_abort | ddl_run | ddl_finish | doubt_run | doubt_finish
    entry: Entry | None = None
    spent_ms: float = 0.0


def open_action(st: State, rs: ReplicaState) -> Open:
    rs.phase = Phase.OPENING
    rs.pending = None
    return Open(rs.id, st.next_seq(), rs.thread_id, doubt.check_ts(st, rs), doubt.end_threads(st, rs))


def lookup_peers(st: State, rid: str) -> tuple[str, ...]:
    """Every other replica, the available ones first (their logs are most likely complete)."""
    others = [r for r in st.replicas.values() if r.id != rid]
    return tuple(r.id for r in sorted(others, key=lambda r: not r.available))


def next_action(st: State, rs: ReplicaState) -> ReplicaAction | None:
    job = rs.pending
    assert isinstance(job, OpenJob), job
    seq = st.next_seq()
    if job.step == "lookup":
        return LookupEntry(rs.id, seq, job.snap.applied_ts, lookup_peers(st, rs.id))
    if job.step == "ddl_abort":
        return AloneAbort(rs.id, seq, job.snap.ddl_pending, st.epoch)
    assert job.entry is not None
    if job.step in ("ddl_run", "doubt_run"):
        return AloneRun(rs.id, seq, job.entry, leader.DDL_ALREADY_DONE)
    return AloneFinish(rs.id, seq, job.entry, st.epoch)


def on_result(st: State, rs: ReplicaState, action: ReplicaAction, result: Result) -> Result | None:
    """Returns the result when the replica itself failed, for the caller's generic handling."""
    if isinstance(action, Open):
        if not isinstance(result, Ok):
            return result
        _opened(st, rs, result.value)
        return None
    job = rs.pending
    assert isinstance(job, OpenJob)
    if isinstance(result, Ok):
        job.spent_ms += result.latency_ms
        _step_done(st, rs, job, result)
        return None
    if isinstance(result, FencedOut) and st.own_epoch_moved(getattr(action, "epoch", st.epoch)):
        return Down(Cause.IO, f"epoch moving while opening {rs.name}; retrying")
    if isinstance(result, SqlFailed) and job.step in ("ddl_run", "doubt_run", "ddl_finish", "doubt_finish"):
        positions.diverge(st, rs, result.errno, result.message)
        return None
    return result


def _opened(st: State, rs: ReplicaState, opened: Opened) -> None:
    snap = opened.snapshot
    rs.thread_id = opened.thread_id
    if snap.epoch > max(st.epoch, st.bumping_to) and st.epoch:  # bumping_to: our own attempts
        st.fence(rs.id)
        return
    job = rs.pending = OpenJob(snap, opened.present)
    taken = doubt.errant_drained(st, rs, opened.present)
    if taken and not (rs.diverged or rs.needs_rebuild):
        _errant(st, rs, taken, snap)
    if not (rs.diverged or rs.needs_rebuild) and not doubt.covers(st, rs, snap.applied_ts):
        v = history.verdict(st.log, snap.applied_ts, snap.applied_epoch)
        if v is history.LOOKUP:
            job.step = "lookup"
            return
        if isinstance(v, str):
            _errant(st, rs, v, snap)
    _positioned(st, rs, job)


def _step_done(st: State, rs: ReplicaState, job: OpenJob, result: Ok) -> None:
    if job.step == "lookup":
        why = history.by_lookup(job.snap.applied_ts, job.snap.applied_epoch, result.value)
        if why:
            _errant(st, rs, why, job.snap)
        _positioned(st, rs, job)
    elif job.step == "ddl_abort":
        st.failed_ddl.discard(job.snap.ddl_pending)
        _finish(st, rs)
    elif job.step in ("ddl_run", "doubt_run"):
        job.step = "ddl_finish" if job.step == "ddl_run" else "doubt_finish"
    elif job.step == "ddl_finish":
        assert job.entry is not None
        positions.applied(st, rs, job.entry, job.spent_ms)
        _finish(st, rs)
    else:  # doubt_finish: the leader finished its in-doubt DDL, so that batch committed
        assert job.entry is not None
        rs.applied_ts, rs.applied_epoch = job.entry.ts, job.entry.epoch
        _finish(st, rs)


def _errant(st: State, rs: ReplicaState, why: str, snap: Snapshot) -> None:
    rs.needs_rebuild = True
    if rs.id == st.leader_id:
        st.new_term()
    st.emit("replica_errant", f"{rs.name} holds entries that were never committed ({why}); it will be rebuilt",
            replica=rs.id, applied_ts=snap.applied_ts, applied_epoch=snap.applied_epoch)


def _positioned(st: State, rs: ReplicaState, job: OpenJob) -> None:
    snap = job.snap
    rs.applied_ts, rs.applied_epoch = snap.applied_ts, snap.applied_epoch
    if doubt.covers(st, rs, snap.applied_ts):
        last = st.log.get(st.log.last_ts)
        rs.applied_ts, rs.applied_epoch = st.log.last_ts, last.epoch if last is not None else st.epoch
    entry = doubt.doubt_ddl(st, rs, snap)
    if entry is not None:
        job.entry, job.step = entry, "doubt_run"
        return
    ts = snap.ddl_pending
    if ts > snap.applied_ts and not rs.needs_rebuild:
        if ts in st.failed_ddl:
            job.step = "ddl_abort"
            return
        logged = st.log.get(ts)
        if logged is not None:
            job.entry, job.step = logged, "ddl_run"
            return
        rs.needs_rebuild = True
        st.emit("replica_errant", f"{rs.name} started a DDL entry ({ts}) that is not in the log; it will be rebuilt",
                replica=rs.id, ddl_pending=ts)
    _finish(st, rs)


def _finish(st: State, rs: ReplicaState) -> None:
    rs.phase = Phase.OPEN
    job = rs.pending
    rs.pending = None
    doubt.resolve_doubt(st, rs, job.present if isinstance(job, OpenJob) else frozenset())
    if rs.id == st.leader_id:
        st.new_term()
    if not rs.connected:
        rs.connected = True
        st.rerank()
    commit.advance(st)  # the position read from the replica may complete a quorum
