"""Interactive transactions at their commit: timestamp, COMMIT on the pinned connection, answer.

An interactive transaction (the MySQL front end's BEGIN … COMMIT) runs its statements
on a *lane*: a leader connection pinned to the client session, driven by the shell —
the core takes no decision per statement. It enters the core once, at COMMIT
(``TxnCommit``), holding every lock it took. Then:

1. Refused at once (rolled back by the shell, the client told to retry, errno 1213) when
   this coordinator does not lead right now, or the leader's *term* (``State.leader_term``)
   changed since the transaction began: the leader changed, or its own connection was lost
   or reopened meanwhile — its state was not verified all along (an errant tail may have
   been found and rebuilt away), so what the transaction read and wrote is not trusted.
2. Otherwise it takes the next timestamp — at its commit point, so the log order is the
   leader's commit order (``sequencer``) — and ``CommitTxn`` commits it with its log row.
3. ``Ok``: settled as committed; in the log once every lower timestamp is settled; its
   client is answered at the commit point like any write.
   ``SqlFailed`` (our own log statement refused) / ``FencedOut``: not committed.
   ``Down``: in doubt. ``CheckCommitted`` ends the pinned connection on the server and
   reads the leader's log: present = committed, absent = not. While the leader stays
   unreachable it is asked again; a failover drains it (``sequencer.drain``) and the
   client's answer is "outcome unknown".

Who owns what: ``State.lanes`` holds one ``Lane`` per transaction between its
``TxnCommit`` and its settlement; only this module writes it.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import sequencer
from .actions import CheckCommitted, CommitTxn
from .messages import Down, FencedOut, LaneDone, Ok, SqlFailed, TxnCommit
from .outcomes import ApiError
from .replog import Entry, EntryKind, Statement
from .state import State
from .writes import WriteRequest

OWNER = "lanes"
ER_LOCK_DEADLOCK = 1213  # what a client's driver retries: "try restarting transaction"


@dataclass(eq=False)
class Lane:
    """One interactive transaction between its COMMIT request and its settlement."""

    lane: int
    rid: str
    req: WriteRequest
    commit: sequencer.PendingCommit
    thread_id: int | None
    seq: int = 0
    checking: int = 0  # the CheckCommitted control task in flight (0 = none)
    check_at: float = 0.0  # ask again from this time (the leader did not answer)


def aborted(message: str) -> ApiError:
    """The transaction was rolled back before it committed: the client may simply retry it."""
    return ApiError(409, "txn_aborted", message, errno=ER_LOCK_DEADLOCK)


def commit(st: State, ev: TxnCommit) -> None:
    why = _refusal(st, ev)
    if why is not None:
        st.answer(ev.handle, aborted(why))
        return
    timeout = st.cfg.write_timeout_s if ev.timeout_s is None else ev.timeout_s
    req = WriteRequest(ev.handle, EntryKind.TXN, tuple(s[0] for s in ev.statements), ev.seeds, st.now + timeout)
    req.results = [(rows, insert_id) for _sql, insert_id, rows in ev.statements]
    st.writes.track(req)
    ts = req.ts = st.alloc.take_one()
    stmts = tuple(Statement(sql, insert_id, rows) for sql, insert_id, rows in ev.statements)
    entry = Entry(ts, st.epoch, EntryKind.TXN, stmts, ev.time_us, ev.seeds[0], ev.seeds[1], 0, "", st.leader_id)
    lane = Lane(ev.lane, ev.rid, req, sequencer.add(st, [entry], [req], ev.lane), ev.thread_id)
    st.lanes[ev.lane] = lane
    _send(st, lane)


def term(st: State) -> int | None:
    """The leader term an interactive transaction may begin in now, or None: only on a leader
    that leads, is verified, holds the whole log and has nothing in doubt — what it reads is
    then the committed state. Every way of losing that raises the term (``State.new_term``)."""
    rs = st.leader
    if (st.fenced or not st.active or not st.leading_enabled or st.in_doubt is not None or not rs.available
            or rs.applied_ts < st.log.last_ts):
        return None
    return st.leader_term


def _refusal(st: State, ev: TxnCommit) -> str | None:
    if st.fenced:
        return "this coordinator was fenced off by a newer one; the transaction was rolled back"
    if not st.active or not st.leading_enabled:
        return "the leader is changing (or the coordinator is not accepting writes); the transaction was rolled " \
               "back — retry it"
    if ev.rid != st.leader_id or term(st) != ev.term:
        return "the leader changed (or its connection was reset) during the transaction; it was rolled back — " \
               "retry it"
    if ev.lane in st.lanes:
        return "this session already has a COMMIT in progress"
    if not ev.statements:
        return "a transaction without writes has nothing to commit"  # the shell commits those itself
    return None


def _send(st: State, lane: Lane) -> None:
    lane.seq = st.next_seq()
    st.out.lane_actions.append(CommitTxn(lane.lane, lane.seq, lane.rid, lane.commit.entries[0], st.epoch))


def on_done(st: State, ev: LaneDone) -> None:
    lane = st.lanes.get(ev.lane)
    if lane is None or lane.seq != ev.seq:
        return  # drained by a failover, or a stale result
    r = ev.result
    if isinstance(r, Ok):
        _settle(st, lane, True)
    elif isinstance(r, Down):
        sequencer.doubt(lane.commit)
        st.note("warning", "txn_commit_in_doubt", lane=lane.lane, ts=lane.req.ts, error=r.message)
        _check(st, lane)
    elif isinstance(r, FencedOut):
        if st.own_epoch_moved(lane.commit.entries[0].epoch):  # our own failover stored a newer epoch
            _settle(st, lane, False, aborted("the epoch moved (a failover) while the transaction committed; it "
                                             "was rolled back — retry it"))
            return
        _settle(st, lane, False, ApiError(503, "fenced", "this coordinator was fenced off by a newer one; the "
                                          "transaction was not committed"))
        st.fence(lane.rid)
    else:
        assert isinstance(r, SqlFailed)
        st.note("error", "txn_commit_failed", lane=lane.lane, errno=r.errno, error=r.message)
        _settle(st, lane, False, ApiError(500, "internal_error", "the transaction was not committed: the "
                                          f"coordinator could not record it in its log ({r.message})"))


def _check(st: State, lane: Lane) -> None:
    lane.checking = st.control(OWNER, CheckCommitted, lane.rid, lane.req.ts, lane.thread_id).id
    lane.thread_id = None  # ended by this check; a repeated check only reads the log


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
        if lane.commit.status == sequencer.IN_DOUBT and not lane.checking and lane.check_at and \
                st.now >= lane.check_at:
            lane.check_at = 0.0
            _check(st, lane)


def _settle(st: State, lane: Lane, committed: bool, err: ApiError | None = None) -> None:
    del st.lanes[lane.lane]
    if not committed:
        st.writes.fail(st.out, lane.req, err or aborted("the transaction's COMMIT did not happen on the leader (its "
                                                      "connection ended first); it was rolled back — retry it"))
    sequencer.settle(st, lane.commit, committed)


def drained(st: State, commits: list[sequencer.PendingCommit]) -> tuple[int, ...]:
    """A failover took the leader's unsettled commits: an interactive transaction cannot be run
    again on the new leader, so its client learns the outcome is unknown (a committed copy on
    the old leader is errant there, and rebuilt). Returns the server threads of their pinned
    connections: they are ended before the old leader's log is trusted again."""
    threads = tuple(x.thread_id for x in st.lanes.values() if x.thread_id is not None)
    for p in commits:
        if p.lane is None:
            continue
        lane = st.lanes.pop(p.lane, None)
        for req in p.reqs:
            st.writes.answer(st.out, req, ApiError(
                503, "write_timeout", "the leader failed while the transaction was committing; its outcome is "
                "unknown", errno=1180))
        if lane is not None:
            st.emit("txn_aborted", f"interactive transaction on lane {p.lane} lost its leader while committing; "
                    "outcome unknown", lane=p.lane, ts=p.first_ts, reason="failover")
    st.lanes.clear()
    return threads
