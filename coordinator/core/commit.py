"""The commit point and what it releases: acknowledged writes and persisted timestamp marks.

``advance`` is called whenever a position that counts changed (the leader logged a
batch, a follower applied one, a replica diverged, the quorum mode changed). The
ranking is *not* moved here: like Cabinet's per-round weights it is fixed when a
batch is appended and on health changes, not by each ack.
"""

from __future__ import annotations

from typing import Any

from . import cabinet
from .outcomes import WriteOutcome
from .replog import Entry
from .state import State


def advance(st: State) -> None:
    applied = st.applied_map()
    ci = cabinet.commit_index(st.rule, st.ranking, applied)
    if ci <= st.commit_ts:
        return
    st.commit_ts = ci
    while st.marks and st.marks[0][0] <= ci:
        st.alloc.mark_persisted(st.marks.popleft()[1])
    waiters = st.writes.waiters
    if not waiters:
        return
    followers = len(st.replicas) - 1
    name = st.leader.name
    # Waiters resolved together share a few distinct acked sets: summarise each once.
    summaries: dict[int, tuple[dict[str, Any], int]] = {}
    order = sorted(applied.values())
    out = st.out
    while waiters and waiters[0].ts <= ci:
        req = waiters.popleft()
        if req.answered and not req.request_id:
            continue
        key = sum(1 for a in order if a >= req.ts)
        if key not in summaries:
            summary = cabinet.acked_summary(st.rule, st.ranking, applied, req.ts)
            applied_followers = sum(1 for rid, a in applied.items() if rid != st.leader_id and a >= req.ts)
            summaries[key] = (summary, applied_followers)
        summary, applied_followers = summaries[key]
        outcome = WriteOutcome(req.ts, req.results, name, summary, applied_followers, followers)
        st.writes.settle(out, req, outcome)
        st.writes.answer(out, req, outcome)


def outcome_of(st: State, entry: Entry) -> WriteOutcome:
    """A persisted write's outcome rebuilt from its log entry (a retry after a restart)."""
    applied = st.applied_map()
    summary = cabinet.acked_summary(st.rule, st.ranking, applied, entry.ts)
    followers = sum(1 for rid, a in applied.items() if rid != st.leader_id and a >= entry.ts)
    return WriteOutcome(entry.ts, [(s.rows, s.insert_id) for s in entry.statements], st.leader.name, summary,
                        followers, len(st.replicas) - 1, replayed=True)
