"""The leader's commit order: entries reach the log in timestamp order, whoever committed them.

Two kinds of leader transactions commit concurrently on different server connections:
the batch (the applier's connection, ``leader``) and interactive transactions (their
pinned connections, ``lanes``). Each takes its timestamp at its *commit point* — when it
has run every statement and holds every lock it will hold, just before COMMIT — so for
any two that conflict, the one that committed first (InnoDB's locks made the other wait)
has the lower timestamp, and replaying the log in timestamp order gives the leader's
result. Their COMMITs may still return out of order; this module holds each commit
until every lower timestamp is settled, then appends it to the log (``positions.append``),
so followers and the commit point only ever see a prefix of the leader's order.

A commit whose round trip broke is *in doubt* until its owner resolves it (the batch by
reading the leader's log when its connection reopens, a lane by a ``CheckCommitted``
control task); one that definitely did not commit is *aborted* and leaves a gap in the
timestamps, which the log allows. Owned by the core: ``leader`` and ``lanes`` call it.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import positions
from .replog import Entry
from .state import State
from .writes import WriteRequest

COMMITTING, COMMITTED, IN_DOUBT, ABORTED = "committing", "committed", "in_doubt", "aborted"


@dataclass(eq=False)
class PendingCommit:
    """Entries with their timestamps, waiting for their COMMIT and for every lower one."""

    entries: list[Entry]
    reqs: list[WriteRequest]
    lane: int | None = None  # the lane it commits on; None for the batch
    parked: bool = False  # a parked batch write: a failover requeues it as it does the batch's
    status: str = COMMITTING

    @property
    def first_ts(self) -> int:
        return self.entries[0].ts

    @property
    def last_ts(self) -> int:
        return self.entries[-1].ts


def add(st: State, entries: list[Entry], reqs: list[WriteRequest], lane: int | None = None,
        parked: bool = False) -> PendingCommit:
    """Register a commit whose timestamps were just taken (so above every registered one)."""
    assert entries, "a commit without entries takes no timestamps"
    assert not st.commits or st.commits[-1].last_ts < entries[0].ts, "timestamps are taken in order"
    p = PendingCommit(entries, reqs, lane, parked)
    st.commits.append(p)
    return p


def settle(st: State, p: PendingCommit, committed: bool) -> None:
    """``p``'s COMMIT is known to have happened (or not): release what is now in order."""
    if p.status in (COMMITTED, ABORTED):
        return
    p.status = COMMITTED if committed else ABORTED
    release(st)


def doubt(p: PendingCommit) -> None:
    if p.status == COMMITTING:
        p.status = IN_DOUBT


def release(st: State) -> None:
    """Append every settled commit at the head, in timestamp order; stop at the first open one."""
    q = st.commits
    while q and q[0].status in (COMMITTED, ABORTED):
        p = q.popleft()
        if p.status == COMMITTED:
            positions.append(st, st.leader, p.entries, p.reqs)


def open_ts(st: State) -> int:
    """The highest timestamp the leader may hold beyond the log: committed or in doubt, not yet
    in order (0 when none). A leader reopening with its position up to here is not errant."""
    return st.commits[-1].last_ts if st.commits else 0


def drain(st: State) -> list[PendingCommit]:
    """The leader is gone (failover): everything not yet in the log is taken out. What the old
    leader did commit of it is errant there and rebuilt when it returns."""
    out = list(st.commits)
    st.commits.clear()
    return out
