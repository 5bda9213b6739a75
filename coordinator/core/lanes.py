"""Writes that commit on a lane of their own: interactive transactions, and parked writes.

A *lane* is a leader connection apart from the batch's (``leader``), driven by the shell.
Two kinds of work commit on one:

- An **interactive transaction** (the MySQL front end's BEGIN … COMMIT) runs its statements
  on a connection pinned to the client session — the core takes no decision per
  statement — and enters the core once, at COMMIT (``TxnCommit``), holding every lock it took.
- A **parked write**: an autocommit write of the batch that met a row lock held by such a
  transaction. The batch runs with ``innodb_lock_wait_timeout=0``, so the leader answers
  1205 at once instead of stalling every other write for the lock wait; the core takes the
  write out of the batch (``park``) and ``ParkedRun`` runs it alone on a lane, waiting for
  the lock while its client waits (then a definite 1205). Only writes that need the locked
  rows wait (no head-of-line blocking).

At its commit point (every statement ran, every lock held) a lane's work:

1. is refused (rolled back; an interactive client is told to retry, errno 1213; a parked
   write goes back to the queue) when this coordinator does not lead right now, or the
   leader's *term* (``State.leader_term``) changed since it began: the leader changed, or its
   own connection was lost or reopened meanwhile — its state was not verified all along (an
   errant tail may have been found and rebuilt away), so what it read is not trusted;
2. waits while a DDL entry is in flight (the DDL's timestamp is taken before it runs: a
   transaction committing during it would commit before it on the leader but after it in
   the log);
3. otherwise takes the next timestamp — at its commit point, so the log order is the
   leader's commit order (``sequencer``) — and ``CommitTxn`` commits it with its log row.
   ``Ok``: settled as committed; in the log once every lower timestamp is settled; its
   client is answered at the commit point like any write. ``SqlFailed`` (our own log
   statement refused) / ``FencedOut``: not committed. ``Down``: in doubt. ``CheckCommitted``
   ends the lane's connection on the server and reads the leader's log: present =
   committed, absent = not. While the leader stays unreachable it is asked again; a
   failover drains it (``sequencer.drain``): an interactive client's answer is "outcome
   unknown"; a parked write goes back to the queue like the batch's writes (I3: if the old
   leader did commit it, that copy is errant there and rebuilt).

Who owns what: ``State.lanes`` holds one ``Lane`` per piece of lane work between its start
(``TxnCommit`` / ``park``) and its settlement; only this module writes it.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import sequencer
from .actions import CheckCommitted, CommitTxn, LaneEnd, ParkedRun
from .messages import Down, Executed, FencedOut, LaneDone, LaneThread, Ok, SqlFailed, TxnCommit
from .outcomes import ApiError, statement_error
from .replog import EntryKind
from .state import State
from .writes import WriteRequest

OWNER = "lanes"
ER_LOCK_DEADLOCK = 1213  # what a client's driver retries: "try restarting transaction"
ER_LOCK_WAIT_TIMEOUT = 1205


@dataclass(eq=False)
class Lane:
    """One piece of lane work between its start and its settlement."""

    lane: int
    rid: str
    term: int
    req: WriteRequest
    time_us: int
    thread_id: int | None
    parked: bool = False
    step: str = "commit"  # parked: run → commit; "wait": at its commit point behind a DDL entry
    commit: sequencer.PendingCommit | None = None  # once its timestamp is taken
    seq: int = 0
    checking: int = 0  # the CheckCommitted control task in flight (0 = none)
    check_at: float = 0.0  # ask again from this time (the leader did not answer)


def aborted(message: str) -> ApiError:
    """The transaction was rolled back before it committed: the client may simply retry it."""
    return ApiError(409, "txn_aborted", message, errno=ER_LOCK_DEADLOCK)


def commit(st: State, ev: TxnCommit) -> None:
    why = _refusal(st, ev.rid, ev.term) or _empty(st, ev)
    if why is not None:
        st.answer(ev.handle, aborted(why))
        return
    timeout = st.cfg.write_timeout_s if ev.timeout_s is None else ev.timeout_s
    req = WriteRequest(ev.handle, EntryKind.TXN, tuple(s[0] for s in ev.statements), ev.seeds, st.now + timeout)
    req.results = [(rows, insert_id) for _sql, insert_id, rows in ev.statements]
    st.writes.track(req)
    lane = st.lanes[ev.lane] = Lane(ev.lane, ev.rid, ev.term, req, ev.time_us, ev.thread_id)
    _at_commit_point(st, lane)


def park(st: State, req: WriteRequest) -> None:
    """A batch write met a row lock (1205 at once): run it alone on a lane of its own."""
    lane = Lane(-st.next_seq(), st.leader_id, st.leader_term, req, st.wall_us, None, parked=True, step="run")
    st.lanes[lane.lane] = lane
    lane.seq = st.next_seq()
    # wait for the lock only while the client still waits: then 1205, definite, not "outcome unknown"
    wait = max(1, int(req.deadline - st.now - 0.5))
    st.out.lane_actions.append(ParkedRun(lane.lane, lane.seq, lane.rid, req.statements, req.seeds, lane.time_us,
                                         wait))


def term(st: State) -> int | None:
    """The leader term an interactive transaction may begin in now, or None: only on a leader
    that leads, is verified, holds the whole log and has nothing in doubt — what it reads is
    then the committed state. Every way of losing that raises the term (``State.new_term``)."""
    rs = st.leader
    if (st.fenced or not st.active or not st.leading_enabled or st.in_doubt is not None or not rs.available
            or rs.applied_ts < st.log.last_ts):
        return None
    return st.leader_term


def _refusal(st: State, rid: str, lane_term: int) -> str | None:
    if st.fenced:
        return "this coordinator was fenced off by a newer one; the transaction was rolled back"
    if not (st.active or st.draining) or not st.leading_enabled:
        return "the leader is changing (or the coordinator is not accepting writes); the transaction was rolled " \
               "back — retry it"
    if rid != st.leader_id or term(st) != lane_term:
        return "the leader changed (or its connection was reset) during the transaction; it was rolled back — " \
               "retry it"
    return None


def _empty(st: State, ev: TxnCommit) -> str | None:
    if ev.lane in st.lanes:
        return "this session already has a COMMIT in progress"
    if not ev.statements:
        return "a transaction without writes has nothing to commit"  # the shell commits those itself
    return None


def _ddl_in_flight(st: State) -> bool:
    b = st.batch
    return b is not None and bool(b.batch) and b.batch[0].alone


def _at_commit_point(st: State, lane: Lane) -> None:
    """Every statement ran: refuse, wait behind a DDL entry, or take the timestamp and commit."""
    why = _refusal(st, lane.rid, lane.term)
    if why is not None:
        st.lanes.pop(lane.lane, None)
        if lane.parked:
            st.out.lane_actions.append(LaneEnd(lane.lane, lane.rid))
            st.writes.requeue([lane.req], st.now)
        else:
            st.writes.fail(st.out, lane.req, aborted(why))
        return
    if _ddl_in_flight(st):
        lane.step = "wait"
        return
    lane.step = "commit"
    entry = lane.req.entry(st.alloc.take_one(), st.epoch, st.leader_id, lane.time_us)
    lane.commit = sequencer.add(st, [entry], [lane.req], lane.lane, lane.parked)
    _send(st, lane)


def resume(st: State) -> None:
    """Lanes waiting at their commit point behind a DDL entry go on once it is over."""
    if _ddl_in_flight(st):
        return
    for lane in [x for x in st.lanes.values() if x.step == "wait"]:
        _at_commit_point(st, lane)


def _send(st: State, lane: Lane) -> None:
    assert lane.commit is not None
    lane.seq = st.next_seq()
    st.out.lane_actions.append(CommitTxn(lane.lane, lane.seq, lane.rid, lane.commit.entries[0], st.epoch,
                                         lane.parked))


def on_thread(st: State, ev: LaneThread) -> None:
    lane = st.lanes.get(ev.lane)
    if lane is not None and lane.seq == ev.seq:
        lane.thread_id = ev.thread_id


def on_done(st: State, ev: LaneDone) -> None:
    lane = st.lanes.get(ev.lane)
    if lane is None or lane.seq != ev.seq:
        if isinstance(ev.result, Ok) and isinstance(ev.result.value, Executed):
            st.out.lane_actions.append(LaneEnd(ev.lane, ""))  # a parked write taken back meanwhile: roll back
        return  # drained by a failover, or a stale result
    if lane.step == "run":
        _ran(st, lane, ev)
        return
    assert lane.commit is not None
    r = ev.result
    if isinstance(r, Ok):
        _settle(st, lane, True)
    elif isinstance(r, Down):
        sequencer.doubt(lane.commit)
        st.note("warning", "txn_commit_in_doubt", lane=lane.lane, ts=lane.req.ts, error=r.message)
        _check(st, lane)
    elif isinstance(r, FencedOut):
        if st.own_epoch_moved(lane.commit.entries[0].epoch):  # our own failover stored a newer epoch
            _settle(st, lane, False, None if lane.parked else aborted(
                "the epoch moved (a failover) while the transaction committed; it was rolled back — retry it"))
            return
        _settle(st, lane, False, ApiError(503, "fenced", "this coordinator was fenced off by a newer one; the "
                                          "transaction was not committed"))
        st.fence(lane.rid)
    else:
        assert isinstance(r, SqlFailed)
        st.note("error", "txn_commit_failed", lane=lane.lane, errno=r.errno, error=r.message)
        _settle(st, lane, False, ApiError(500, "internal_error", "the transaction was not committed: the "
                                          f"coordinator could not record it in its log ({r.message})"))


def _ran(st: State, lane: Lane, ev: LaneDone) -> None:
    """A parked write ran on its lane (or failed there): on to its commit point, or answered."""
    r, req = ev.result, lane.req
    if isinstance(r, Ok):
        ex: Executed = r.value
        req.results = [tuple(x) for x in ex.results[0]] if ex.results else []
        _at_commit_point(st, lane)
        return
    del st.lanes[lane.lane]
    if isinstance(r, SqlFailed) and r.errno != ER_LOCK_DEADLOCK:
        # the client's error, definite (a lock wait that ran out is one, as on MySQL)
        st.writes.fail(st.out, req, statement_error(r.errno, r.message, executed_on=st.cfg.name(lane.rid)),
                       applied=True)
        return
    st.writes.requeue([req], st.now)  # a deadlock victim, or the connection failed: nothing committed


def _check(st: State, lane: Lane) -> None:
    # Every check ends the connection first (again: a check that failed may not have reached the
    # server, and a COMMIT still on its way may land until it is ended; ending an ended one is
    # quiet). Only an answered check settles the lane, so it is never ended after that.
    lane.checking = st.control(OWNER, CheckCommitted, lane.rid, lane.req.ts, lane.thread_id).id


def on_control(st: State, task_id: int, result: object) -> None:
    lane = next((x for x in st.lanes.values() if x.checking == task_id), None)
    if lane is None:
        return
    lane.checking = 0
    if isinstance(result, Ok):
        _settle(st, lane, bool(result.value))
    else:
        lane.check_at = st.now + st.cfg.retry_interval_s


def tick(st: State) -> None:
    for lane in list(st.lanes.values()):
        if lane.commit is not None and lane.commit.status == sequencer.IN_DOUBT and not lane.checking and \
                lane.check_at and st.now >= lane.check_at:
            lane.check_at = 0.0
            _check(st, lane)


def _settle(st: State, lane: Lane, committed: bool, err: ApiError | None = None) -> None:
    del st.lanes[lane.lane]
    assert lane.commit is not None
    if not committed:
        if lane.parked and err is None:
            st.writes.requeue([lane.req], st.now)  # definitely not applied: the batch runs it again
        else:
            st.writes.fail(st.out, lane.req, err or aborted(
                "the transaction's COMMIT did not happen on the leader (its connection ended first); it was rolled "
                "back — retry it"))
    sequencer.settle(st, lane.commit, committed)


def drained(st: State, commits: list[sequencer.PendingCommit]) -> tuple[tuple[int, ...], list[WriteRequest]]:
    """A failover took the leader's unsettled lane work. An interactive transaction cannot be run
    again on the new leader, so its client learns the outcome is unknown (a committed copy on
    the old leader is errant there, and rebuilt). A parked write goes back to the queue, as the
    batch's writes do (``leader.work`` has those that took a timestamp). Returns the server
    threads of the lanes' connections (ended before the old leader's log is trusted again) and
    the parked writes that had not reached their commit point."""
    threads = tuple(x.thread_id for x in st.lanes.values() if x.thread_id is not None)
    requeue = []
    for lane in st.lanes.values():
        if lane.parked and lane.commit is None:
            requeue.append(lane.req)
            st.out.lane_actions.append(LaneEnd(lane.lane, lane.rid))
        elif lane.step == "wait":
            st.writes.fail(st.out, lane.req, aborted("the leader changed while the transaction waited to commit; it "
                                                     "was rolled back — retry it"))
    for p in commits:
        if p.lane is None or p.parked:
            continue
        for req in p.reqs:
            st.writes.answer(st.out, req, ApiError(
                503, "write_timeout", "the leader failed while the transaction was committing; its outcome is "
                "unknown", errno=1180))
        st.emit("txn_aborted", f"interactive transaction on lane {p.lane} lost its leader while committing; "
                "outcome unknown", lane=p.lane, ts=p.first_ts, reason="failover")
    st.lanes.clear()
    return threads, requeue
