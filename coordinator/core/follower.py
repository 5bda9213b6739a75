"""What a follower (or a lagging leader) applies next: the in-memory log tail, else a
peer's persisted log, else it is rebuilt.

- **Tail**: up to ``max_batch_entries`` entries after its position, one transaction
  (``ApplyBatch``); a DDL entry goes alone, behind its marker (``AloneMark`` →
  ``AloneRun`` → ``AloneFinish``).
- **Peer**: behind the in-memory tail (a long outage), it replays a healthy peer's
  persisted log (followers first, most advanced first) until the tail covers it —
  only entries up to the tail's floor: past it the coordinator's own log is the
  truth (a peer may hold an unlogged, in-doubt batch). A failure of the *peer* moves
  to the next peer; a failure of the replica's own connection is an ordinary failure
  of that replica (retry), never a reason to rebuild.
- **Rebuild**: no peer can serve it — ``needs_rebuild`` (``rebuild.py``).

An entry that succeeded on the leader but fails here diverges the replica.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import positions
from .actions import AloneFinish, AloneMark, AloneRun, ApplyBatch, ReadPeer, ReplicaAction
from .messages import Cause, Down, FencedOut, Ok, PeerLog, Result, SqlFailed
from .replog import Entry
from .state import ReplicaState, State


@dataclass
class AloneJob:
    """A DDL entry in progress on this replica (``ReplicaState.pending``)."""

    entry: Entry
    step: str = "mark"  # mark | run | finish
    spent_ms: float = 0.0
    peer: "PeerJob | None" = None  # resumed after the entry, when it came from a peer's log


@dataclass
class PeerJob:
    """Catch-up from peers' persisted logs (``ReplicaState.pending``)."""

    peers: list[str]  # still to try, in order
    peer: str | None = None
    announced: set[str] = field(default_factory=set)
    buffer: list[Entry] = field(default_factory=list)  # read from the peer, not yet applied


def peers_for(st: State, rs: ReplicaState) -> list[str]:
    """Available peers ahead of it: followers first (spare the leader), most advanced first."""
    peers = [p for p in st.replicas.values() if p.id != rs.id and p.available]
    return [p.id for p in sorted(peers, key=lambda p: (p.id == st.leader_id, -p.applied_ts))]


def next_action(st: State, rs: ReplicaState) -> ReplicaAction | None:
    job = rs.pending
    if isinstance(job, AloneJob):
        return _alone_action(st, rs, job)
    if isinstance(job, PeerJob):
        return _peer_action(st, rs, job)
    entries = st.log.after(rs.applied_ts, st.cfg.max_batch_entries)
    if entries is None:
        rs.pending = PeerJob(peers_for(st, rs))
        return _peer_action(st, rs, rs.pending)
    if not entries:
        return None
    return _apply(st, rs, entries, None)


def _apply(st: State, rs: ReplicaState, entries: list[Entry], peer: PeerJob | None) -> ReplicaAction:
    if entries[0].alone:
        job = rs.pending = AloneJob(entries[0], peer=peer)
        return _alone_action(st, rs, job)
    return ApplyBatch(rs.id, st.next_seq(), tuple(entries), st.epoch, st.trim_for(rs))


def _alone_action(st: State, rs: ReplicaState, job: AloneJob) -> ReplicaAction:
    seq = st.next_seq()
    if job.step == "mark":
        return AloneMark(rs.id, seq, job.entry, st.epoch)
    if job.step == "run":
        return AloneRun(rs.id, seq, job.entry, frozenset())
    return AloneFinish(rs.id, seq, job.entry, st.epoch)


def _peer_action(st: State, rs: ReplicaState, job: PeerJob) -> ReplicaAction | None:
    while True:
        if job.buffer:
            chunk = job.buffer
            if chunk[0].alone:
                job.buffer = chunk[1:]
                return _apply(st, rs, chunk[:1], job)
            j = next((k for k, e in enumerate(chunk) if e.alone), len(chunk))
            job.buffer = chunk[j:]
            return _apply(st, rs, chunk[:j], job)
        if rs.applied_ts >= st.log.floor_ts:
            rs.pending = None  # the in-memory tail covers it again
            return next_action(st, rs)
        if job.peer is not None and not st.replicas[job.peer].available:
            job.peer = None  # found errant (or gone) since the job began: no longer a trusted prefix
        if job.peer is None:
            if not job.peers:
                _behind(st, rs)
                return None
            job.peer = job.peers.pop(0)
            peer = st.replicas[job.peer]
            if not peer.available or peer.applied_ts <= rs.applied_ts:
                job.peer = None
                continue
        return ReadPeer(rs.id, st.next_seq(), job.peer, rs.applied_ts, st.cfg.max_batch_entries)


def _behind(st: State, rs: ReplicaState) -> None:
    rs.pending = None
    if not rs.needs_rebuild:
        rs.needs_rebuild = True
        if rs.id == st.leader_id:
            st.new_term()
        st.emit("replica_behind_log", f"{rs.name} is behind every available log (applied {rs.applied_ts}, in-memory "
                f"log starts after {st.log.floor_ts}); it will be rebuilt", replica=rs.id, applied_ts=rs.applied_ts)
        st.rerank()


# --- results -----------------------------------------------------------------------------


def on_result(st: State, rs: ReplicaState, action: ReplicaAction, result: Result) -> Result | None:
    """Returns the result when the replica itself failed, for the caller's generic handling."""
    if isinstance(action, ReadPeer):
        return _peer_read(st, rs, action, result)
    epoch = getattr(action, "epoch", st.epoch)
    if isinstance(result, FencedOut):
        rs.pending = None
        if st.own_epoch_moved(epoch):
            return Down(Cause.IO, f"epoch moving from {epoch} to {max(st.epoch, st.bumping_to)} during the batch; "
                        "retrying")
        return result
    if isinstance(result, SqlFailed):
        positions.diverge(st, rs, result.errno, result.message)
        return None
    if not isinstance(result, Ok):
        return result  # the applier's own connection: retry after the generic handling
    if isinstance(action, ApplyBatch):
        rs.trimmed_below = max(rs.trimmed_below, action.trim_below)
        positions.applied(st, rs, action.entries[-1], result.latency_ms, len(action.entries))
        return None
    job = rs.pending
    assert isinstance(job, AloneJob), job
    job.spent_ms += result.latency_ms
    if isinstance(action, AloneMark):
        job.step = "run"
    elif isinstance(action, AloneRun):
        job.step = "finish"
    else:
        rs.pending = job.peer
        positions.applied(st, rs, job.entry, job.spent_ms)
    return None


def _peer_read(st: State, rs: ReplicaState, action: ReadPeer, result: Result) -> Result | None:
    job = rs.pending
    assert isinstance(job, PeerJob), job
    peer = st.replicas[action.peer]
    if not isinstance(result, Ok):
        if not getattr(result, "peer_failed", False):
            rs.pending = None
            return result
        st.note("warning", "peer_catchup_failed", replica=rs.id, peer=peer.id, error=getattr(result, "message", ""))
        job.peer = None
        return None
    got: PeerLog = result.value
    if not peer.available:  # found errant while the read was in flight: its entries are not to be trusted
        job.peer = None
        return None
    if got.log_floor > rs.applied_ts + 1:
        job.peer = None  # the peer trimmed what we need
        return None
    if peer.id not in job.announced:
        job.announced.add(peer.id)
        st.emit("catchup_peer", f"{rs.name} catches up from {peer.name}'s log (applied {rs.applied_ts}, in-memory "
                f"log starts after {st.log.floor_ts})", replica=rs.id, peer=peer.id, applied_ts=rs.applied_ts)
    # Only what precedes the in-memory tail: past it the coordinator's own log is the truth.
    entries = [e for e in got.entries if rs.applied_ts < e.ts <= st.log.floor_ts]
    if entries:
        job.buffer = entries
    else:
        job.peer = None  # this peer has nothing more for us; the next one may
    return None
