"""The leader's side of a write: take a batch, execute it, decide per statement, log, commit.

One leader transaction per batch:

1. ``LeadExecute`` runs the clients' statements (``begin``: BEGIN and the statement clock).
   - All ran: go to 3.
   - Request *i* failed with a client error (duplicate key, syntax, …): the requests
     before it keep their results; *i* is answered with its error, which is definite (a
     retry with its key gets the same); a multi-statement *i* is rolled back to its
     savepoint; the requests after *i* are executed again in a new round trip (2).
   - Deadlock (1213): InnoDB rolled the whole transaction back. ROLLBACK and requeue
     every request that has no definite outcome yet (those refused earlier in the same
     batch keep their answer: they are not run again).
   - Request *i* met a row lock (1205 at once: the batch never waits for a lock): *i* is
     rolled back (to its savepoint) and *parked* — run alone on a lane, waiting for the lock
     while its client waits (``lanes``) — and the requests after it go on as in 2: only
     the writes that need the locked rows wait.
   - One of our own statements failed: a bug. ROLLBACK, answer 500.
3. Timestamps are taken at this commit point (timestamp order = commit order, also
   against interactive transactions committing on their own connections: ``sequencer``),
   the entries built, and ``LeadCommit`` writes their log rows and the applied position
   and COMMITs.
   - Ok: settled; the entries enter the log once every lower timestamp is settled
     (``sequencer.release``); only then do followers see them.
   - Our log/state statement failed: ROLLBACK; nothing applied; answer 500.
   - Fenced: if our own failover moved the epoch since the batch began, requeue; else stop.
   - Down: *in doubt* — resolved when the leader's connection reopens and reads whether
     its log holds the batch's last entry (``doubt.resolve_doubt``).

   Pipelining: writes queued by then ride on the same round trip (``LeadCommit.then``):
   right after the COMMIT the next batch's BEGIN and statements run, so a busy leader
   pays one round trip per batch, not two. The next batch starts after the COMMIT on the
   same connection, so it never meets this batch's row locks. If the COMMIT part fails,
   the next batch did not run (or died with the connection): it is requeued.

DDL and RESET entries commit implicitly and go alone, behind a crash-safe marker:
``AloneMark`` → ``AloneRun`` → ``AloneFinish`` (``AloneAbort`` when the statement fails).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import lanes, sequencer
from .actions import AloneAbort, AloneFinish, AloneMark, AloneRun, LeadCommit, LeadExecute, ReplicaAction
from .messages import Cause, Down, Executed, FencedOut, Ok, Result, SqlFailed
from .outcomes import ApiError, statement_error
from .replog import Entry, EntryKind
from .state import InDoubt, ReplicaState, State
from .writes import WriteRequest

# Errors after which InnoDB has rolled back the whole transaction, not just the statement.
TXN_ROLLED_BACK = frozenset({1213})
# The batch runs with innodb_lock_wait_timeout=0: a row locked by an interactive transaction
# (or a parked write) answers this at once, and the write is parked (``lanes.park``).
ROW_LOCKED = 1205
# DDL errors meaning "already done" when a DDL entry is re-run after a crash.
DDL_ALREADY_DONE = frozenset({1050, 1051, 1060, 1061, 1091, 1146, 1176, 1826})


@dataclass
class LeaderBatch:
    """The leader's batch in flight (``State.batch``). ``step``: what runs next."""

    batch: list[WriteRequest]  # everything taken from the queue
    time_us: int  # the statement clock (SET timestamp), one per batch
    epoch: int
    started: float
    pending: list[WriteRequest] = field(default_factory=list)  # still to execute
    done: list[WriteRequest] = field(default_factory=list)  # executed successfully
    entries: list[Entry] = field(default_factory=list)
    step: str = "execute"  # execute | commit | mark | run | finish | abort
    begin: bool = True
    commit: sequencer.PendingCommit | None = None  # once its timestamps are taken
    then: LeaderBatch | None = None  # the next batch, executed in this one's COMMIT round trip


def work(st: State) -> list[WriteRequest]:
    """The batch writes the leader holds but has not logged: committed or in doubt but not
    yet in order (parked ones too), and the batch in flight (each once, in timestamp then
    queue order)."""
    reqs = [r for p in st.commits if p.lane is None or p.parked for r in p.reqs]
    if st.batch is not None:
        reqs += st.batch.batch
        if st.batch.then is not None:
            reqs += st.batch.then.batch
    seen: set[int] = set()
    out = []
    for r in reqs:
        if id(r) not in seen:
            seen.add(id(r))
            out.append(r)
    return out


def take_back(st: State) -> int:
    """The leader is gone: its unlogged writes go back to the head of the queue for the
    next leader; interactive transactions committing there get "outcome unknown" (they
    cannot be run again). If the old leader did commit some of them, it holds errant
    entries and is rebuilt when it returns (never silently kept)."""
    reqs = work(st)
    taken = sequencer.drain(st)
    threads, parked = lanes.drained(st, taken)
    reqs += parked
    if taken:
        ts = frozenset(e.ts for p in taken for e in p.entries)
        old_ts, old_threads = st.drained.get(st.leader_id, (frozenset(), ()))
        st.drained[st.leader_id] = (old_ts | ts, old_threads + threads)
    st.in_doubt = None
    st.batch = None
    live = [r for r in reqs if not r.logged and not r.settled and (not r.answered or r.request_id)]
    requeue(st, live)
    return len(live)


def requeue(st: State, reqs: list[WriteRequest]) -> None:
    st.alloc.mark_failed()  # a mark these writes carried was not persisted
    st.writes.requeue(reqs, st.now)


def _seq(st: State) -> int:
    return st.next_seq()


def next_action(st: State, rs: ReplicaState) -> ReplicaAction | None:
    """The leader's next round trip: continue the batch in flight, or take a new one."""
    b = st.batch
    if b is None:
        if not st.leading_enabled or not (st.active or st.draining):
            return None
        batch = st.writes.take_batch(st.out, st.now, st.cfg.max_batch_entries)
        if not batch:
            return None
        b = st.batch = LeaderBatch(batch, st.wall_us, st.epoch, st.now, pending=list(batch))
        if batch[0].alone:
            b.entries = entries_for(st, batch, b.time_us)
            b.commit = sequencer.add(st, b.entries, batch)
            b.step = "mark"
    if b.step == "execute":
        items = tuple((r.statements, r.seeds) for r in b.pending)
        return LeadExecute(rs.id, _seq(st), items, b.begin, b.time_us)
    if b.step == "commit":
        nb = b.then = _next_batch(st)
        then = tuple((r.statements, r.seeds) for r in nb.pending) if nb is not None else ()
        return LeadCommit(rs.id, _seq(st), tuple(b.entries), b.epoch, st.trim_for(rs), then,
                          nb.time_us if nb is not None else 0)
    entry = b.entries[0]
    if b.step == "mark":
        return AloneMark(rs.id, _seq(st), entry, st.epoch)
    if b.step == "run":
        # a fresh DDL: every error counts; a lock an open transaction holds stalls the writes behind
        # it at most ddl_lock_wait_s
        return AloneRun(rs.id, _seq(st), entry, frozenset(), st.cfg.ddl_lock_wait_s)
    if b.step == "finish":
        return AloneFinish(rs.id, _seq(st), entry, st.epoch)
    return AloneAbort(rs.id, _seq(st), entry.ts, st.epoch)


def _next_batch(st: State) -> LeaderBatch | None:
    """The batch to execute right after the COMMIT in flight, in its round trip (``LeadCommit.then``):
    what is queued now, if the leader may take it (never a DDL/RESET, which goes alone)."""
    if not st.cfg.pipeline_commit or not st.leading_enabled or not st.active:
        return None
    batch = st.writes.take_batch(st.out, st.now, st.cfg.max_batch_entries, plain=True)
    if not batch:
        return None
    return LeaderBatch(batch, st.wall_us, st.epoch, st.now, pending=list(batch))


def entries_for(st: State, done: list[WriteRequest], time_us: int) -> list[Entry]:
    """Timestamps and log entries for the writes that succeeded, in execution order."""
    if not done:
        return []
    stamps, mark = st.alloc.take_for_batch(len(done))
    if mark is None and any(r.kind == EntryKind.NOOP and not r.exact_mark for r in done):
        mark = st.alloc.needs_mark()  # a bare /timestamp waits on this batch's mark
    entries = []
    last = done[-1]
    for req, ts in zip(done, stamps):
        entry_mark = ts if req.exact_mark else 0
        if mark is not None and req is last and not entry_mark:
            entry_mark = mark
        entries.append(req.entry(ts, st.epoch, st.leader_id, time_us, entry_mark))
    return entries



# --- results -----------------------------------------------------------------------------------


def on_result(st: State, rs: ReplicaState, action: ReplicaAction, result: Result) -> Result | None:
    """Handle the result of a leader action. Returns the result when the replica itself
    failed (Down / fenced) for the caller's generic handling, after the batch is dealt with."""
    b = st.batch
    assert b is not None
    if isinstance(action, LeadExecute):
        return _executed(st, rs, b, result)
    if isinstance(action, LeadCommit):
        return _committed(st, rs, b, action, result)
    return _alone(st, rs, b, action, result)


def _executed(st: State, rs: ReplicaState, b: LeaderBatch, result: Result) -> Result | None:
    if not isinstance(result, Ok):
        requeue(st, b.batch)  # nothing committed: the transaction died with the round trip
        st.batch = None
        if isinstance(result, SqlFailed):  # the whole round trip refused: a bug on our side
            st.note("error", "leader_round_trip_refused", errno=result.errno, error=result.message)
            rs.rollback = ""
            return None
        return result
    ex: Executed = result.value
    for req, res in zip(b.pending, ex.results):
        req.results = list(res)
    f = ex.failed
    b.begin = False
    if f is None:
        b.done.extend(b.pending)
        b.pending = []
        _to_commit(st, b)
        return None
    rs.rollback = ""
    if f.errno in TXN_ROLLED_BACK:
        requeue(st, b.done + b.pending)  # InnoDB rolled the whole batch back: run it again
        st.batch = None
        return None
    if f.index < 0:  # one of our own statements failed: a bug, not the client's
        st.note("error", "internal_statement_failed", errno=f.errno, error=f.message, batch=len(b.batch))
        for r in b.batch:
            st.writes.fail(st.out, r, ApiError(500, "internal_error",
                                               "the coordinator's own statement failed; see the log"))
        st.batch = None
        return None
    rs.rollback = None
    req = b.pending[f.index]
    b.done.extend(b.pending[:f.index])
    multi = len(req.statements) > 1
    extra = {"failed_statement": f.statement} if multi else {}
    if f.errno == ROW_LOCKED:
        b.batch.remove(req)  # the lane owns it now (a failover takes it back from there)
        lanes.park(st, req)
    else:
        st.writes.fail(st.out, req, statement_error(f.errno, f.message, executed_on=rs.name, **extra), applied=True)
    if multi:
        rs.rollback = f"r{f.index}"
    b.pending = b.pending[f.index + 1:]
    if b.pending:
        return None  # step stays "execute": the rest in a new round trip
    _to_commit(st, b)
    return None


def _to_commit(st: State, b: LeaderBatch) -> None:
    b.entries = entries_for(st, b.done, b.time_us)
    if b.entries:
        b.commit = sequencer.add(st, b.entries, b.done)
    b.step = "commit"


def _settle(st: State, b: LeaderBatch, committed: bool) -> None:
    if b.commit is not None:
        sequencer.settle(st, b.commit, committed)


def _committed(st: State, rs: ReplicaState, b: LeaderBatch, action: LeadCommit, result: Result) -> Result | None:
    st.batch = None
    nb = b.then
    if isinstance(result, Ok):
        rs.trimmed_below = max(rs.trimmed_below, action.trim_below)
        rs.batches += 1
        rs.entries_applied += len(b.entries)
        rs.busy_ms += (st.now - b.started) * 1000
        _settle(st, b, True)
        if nb is not None:  # the next batch ran after the COMMIT, in the same round trip
            st.batch = nb
            return _executed(st, rs, nb, result)
        return None
    if nb is not None:  # it never ran, or its transaction died with the connection
        requeue(st, nb.batch)
    if not isinstance(result, Down):
        _settle(st, b, False)  # refused or fenced: the transaction rolled back
    if isinstance(result, SqlFailed):
        # Our own log/state statements failed (not the clients'): nothing committed, and
        # the leader is not diverged. The writes definitely did not apply.
        rs.rollback = ""
        st.alloc.mark_failed()
        st.note("error", "leader_commit_failed", error=result.message, batch=len(b.done))
        for r in b.done:
            st.writes.fail(st.out, r, ApiError(500, "internal_error", "the write was not applied: the coordinator "
                                               f"could not record it in its log ({result.message}); see the log"))
        return None
    if isinstance(result, FencedOut):
        rs.rollback = ""
        if st.own_epoch_moved(b.epoch):
            requeue(st, b.done)
            return None
        for r in b.done:
            st.writes.fail(st.out, r, ApiError(503, "fenced", "this coordinator was fenced off by a newer one; "
                                               "not committed"))
        return result
    if b.commit is not None:
        sequencer.doubt(b.commit)
        st.in_doubt = InDoubt(b.entries, b.done, b.commit)
    else:
        requeue(st, b.done)
    return result


def _alone(st: State, rs: ReplicaState, b: LeaderBatch, action: ReplicaAction, result: Result) -> Result | None:
    req, entry = b.batch[0], b.entries[0]
    if isinstance(result, Ok):
        if isinstance(action, AloneMark):
            b.step = "run"
        elif isinstance(action, AloneRun):
            req.results = [(0, 0)] * len(entry.statements)
            b.step = "finish"
        elif isinstance(action, AloneFinish):
            st.batch = None
            _settle(st, b, True)
        else:  # AloneAbort: the failed DDL's marker is gone
            st.failed_ddl.discard(entry.ts)
            st.batch = None
            _settle(st, b, False)
        return None
    if isinstance(result, SqlFailed) and isinstance(action, AloneRun):
        st.writes.fail(st.out, req, statement_error(result.errno, result.message, executed_on=rs.name), applied=True)
        st.failed_ddl.add(entry.ts)  # if the clean-up breaks, opening finishes it
        b.step = "abort"
        return None
    st.batch = None
    moved = isinstance(result, FencedOut) and st.own_epoch_moved(b.epoch)
    if isinstance(action, AloneAbort):  # the marker stays in failed_ddl: opening finishes it
        return Down(Cause.IO, "epoch moving during a DDL clean-up; retrying") if moved else result
    if isinstance(action, AloneMark) and not isinstance(result, Down):
        # The marker's transaction stopped at the failing statement: nothing committed.
        _settle(st, b, False)
        if moved:
            requeue(st, [req])
            return Down(Cause.IO, "epoch moving during a DDL entry; retrying")
        if isinstance(result, FencedOut):
            st.writes.fail(st.out, req, ApiError(503, "fenced", "this coordinator was fenced off by a newer one"))
            return result
        st.note("error", "ddl_marker_failed", error=getattr(result, "message", ""))
        st.writes.fail(st.out, req, ApiError(500, "internal_error", "the coordinator could not record the DDL "
                                             "entry; see the log"))
        return Down(Cause.IO, "the DDL marker could not be written; reconnecting")
    # The marker may be committed and the DDL may have run: in doubt until the state is read.
    assert b.commit is not None
    sequencer.doubt(b.commit)
    st.in_doubt = InDoubt([entry], [req], b.commit)
    if isinstance(result, Down) or (isinstance(result, FencedOut) and not moved):
        return result
    return Down(Cause.IO, f"DDL entry {entry.ts} interrupted ({getattr(result, 'message', '')}); reconnecting")
