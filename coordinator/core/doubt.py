"""The leader's commits in doubt: what a reopening connection must look up, and what its answer means.

A leader COMMIT whose round trip broke (the batch's, or a DDL entry's marker) is *in doubt*
(``State.in_doubt``); so are the commits a failover took from a replica unsettled
(``State.drained``). Whoever reopens that replica's connection first ends our old server
connections (``end_threads``) and reads which of those timestamps its log holds
(``check_ts``); ``resolve_doubt`` and ``errant_drained`` turn the answer into a decision.
Owned by the core: ``opening`` calls it.
"""

from __future__ import annotations

from . import sequencer
from .leader import requeue
from .messages import Snapshot
from .replog import Entry
from .state import ReplicaState, State


def covers(st: State, rs: ReplicaState, applied_ts: int) -> bool:
    """The leader returning with a position beyond the log that its own unsettled commits
    explain (the in-doubt batch, interactive transactions committed out of order): not
    errant — those commits are resolved instead."""
    return rs.id == st.leader_id and st.log.last_ts < applied_ts <= sequencer.open_ts(st)


def check_ts(st: State, rs: ReplicaState) -> tuple[int, ...]:
    """What a reopening connection must look up in its log: the leader's in-doubt batch, and
    any commit a failover took from this replica unsettled."""
    d = st.in_doubt
    mine = (d.entries[-1].ts,) if d is not None and rs.id == st.leader_id else ()
    return mine + tuple(sorted(st.drained.get(rs.id, (frozenset(), ()))[0]))


def end_threads(st: State, rs: ReplicaState) -> tuple[int, ...]:
    return st.drained.get(rs.id, (frozenset(), ()))[1]


def errant_drained(st: State, rs: ReplicaState, present: frozenset[int]) -> str | None:
    """Opened: does the replica hold a commit a failover took from it (now ended, so final)?"""
    taken = st.drained.pop(rs.id, None)
    if taken is None:
        return None
    held = sorted(taken[0] & present)
    return f"it committed {held[:5]} after they were given up in a failover" if held else None


def doubt_ddl(st: State, rs: ReplicaState, snap: Snapshot) -> Entry | None:
    """The in-doubt entry is a DDL whose marker the leader holds: it must be finished
    (re-run, tolerating "already done") before the doubt can be resolved."""
    d = st.in_doubt
    if d is None or rs.id != st.leader_id:
        return None
    last = d.entries[-1]
    return last if last.alone and snap.ddl_pending == last.ts else None


def resolve_doubt(st: State, rs: ReplicaState, present: frozenset[int]) -> None:
    """The leader's log says whether the in-doubt batch committed (then it is logged as
    usual, in timestamp order) or not (then it is requeued, unexecuted)."""
    d = st.in_doubt
    if d is None or rs.id != st.leader_id:
        return
    st.in_doubt = None
    if d.entries[-1].ts in present:
        for r in d.reqs:
            if not r.results:
                r.results = [(0, 0)] * len(r.statements)
        sequencer.settle(st, d.commit, True)
    else:
        sequencer.settle(st, d.commit, False)
        requeue(st, d.reqs)
