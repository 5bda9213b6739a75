"""What changes when a replica applies entries, the leader logs a batch, a replica goes
down or diverges — the bookkeeping shared by the leader, follower, opening and rebuild
paths (each calls these from its own result handlers only)."""

from __future__ import annotations

from . import commit
from .replog import Entry
from .state import Phase, ReplicaState, State
from .writes import WriteRequest


def applied(st: State, rs: ReplicaState, last: Entry, latency_ms: float, count: int = 1) -> None:
    """A follower (or the leader catching up) applied entries up to ``last``."""
    rs.entries_applied += count
    rs.applied_ts, rs.applied_epoch = last.ts, last.epoch
    rs.batches += 1
    rs.busy_ms += latency_ms
    rs.ack_ms = latency_ms if rs.ack_ms is None else 0.8 * rs.ack_ms + 0.2 * latency_ms
    commit.advance(st)


def append(st: State, rs: ReplicaState, entries: list[Entry], done: list[WriteRequest]) -> None:
    """The leader committed ``entries`` (for ``done``): they enter the log, so followers
    get them from now on, and their writes wait for the commit point."""
    if not entries:
        return
    st.log.append(entries)
    for e in entries:
        if e.mark:
            st.marks.append((e.ts, e.mark))
    for req in done:
        req.logged = True
    st.writes.waiters.extend(done)
    rs.applied_ts, rs.applied_epoch = entries[-1].ts, entries[-1].epoch
    st.rerank()  # a new round: weights from the latest measurements
    commit.advance(st)
    st.log.trim(st.cfg.memory_log_entries)


def mark_down(st: State, rs: ReplicaState, why: str) -> None:
    """The applier connection failed: it is gone (the shell dropped it); retry later."""
    rs.last_error = why
    if rs.phase is not Phase.IDLE:
        rs.phase = Phase.CLOSED
    rs.pending = None
    rs.rollback = None
    rs.retry_at = st.now + st.cfg.retry_interval_s
    if rs.id == st.leader_id:
        st.new_term()
    if rs.connected:
        rs.connected = False
        st.rerank()


def diverge(st: State, rs: ReplicaState, errno: int, message: str) -> None:
    """The replica failed an entry the leader executed: out of quorum and reads, rebuilt."""
    rs.diverged = True
    if rs.id == st.leader_id:
        st.new_term()
    rs.last_error = f"diverged: ({errno}) {message}"
    rs.phase = Phase.CLOSED  # a fresh connection: the server rolls back the open transaction
    rs.pending = None
    rs.connected = False
    st.emit("replica_diverged", f"{rs.name} failed a statement the leader executed: ({errno}) {message}; "
            "excluded from quorum and reads", replica=rs.id, errno=errno, applied_ts=rs.applied_ts)
    st.rerank()
    commit.advance(st)
