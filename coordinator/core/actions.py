"""What the core asks the shell to do: per-replica round trips, control tasks, and ``Ready``.

Two kinds of work:

- **Replica actions** run on a replica's one applier connection, one at a time per
  replica, in the order given; each carries ``seq`` and its result is stepped back as
  ``Done(rid, seq, result)``. ``Open`` always means "drop whatever connection you hold
  (the server rolls back what it held) and connect afresh".
- **Control tasks** run on their own short connections, concurrently with everything
  (probes, epoch compare-and-sets, log reads, ``read_only``, restarting an applier);
  each carries ``id`` and its result comes back as ``ControlDone(id, result)``.

The SQL text is the shell's business (``batchsql``): actions carry data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .replog import Entry

Seeds = tuple[int, int]


# --- replica actions ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Open:
    """Connect (ending our previous applier connection ``kill_thread`` on the server first,
    so a stale transaction neither commits after we look nor holds locks), ensure the
    internal schema, read the state row, and which of the log entries ``check_ts`` (an
    in-doubt commit's) the replica's log holds — after ending our server connections
    ``end_threads`` too (pinned connections of commits a failover gave up), so no late
    COMMIT lands after the look. Result: ``Ok(Opened)``."""

    rid: str
    seq: int
    kill_thread: int | None
    check_ts: tuple[int, ...] = ()
    end_threads: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Close:
    """Drop the connection and stay idle (fenced, or the core has no use for it)."""

    rid: str
    seq: int


@dataclass(frozen=True, slots=True)
class LookupEntry:
    """Read the log entry ``ts`` from ``peers`` in order; the first that answers decides.
    Result: ``Ok(epoch)`` (found), ``Ok(None)`` (no peer answered or holds it: unverifiable)."""

    rid: str
    seq: int
    ts: int
    peers: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class LeadExecute:
    """First round trip(s) of a leader batch: the clients' statements inside an open
    transaction, without COMMIT. ``items``: (statements, seeds) per request; ``begin``
    opens the transaction and sets the statement clock ``time_us``; a multi-statement
    request gets savepoint ``r{i}``. Result: ``Ok(Executed)``; a client statement error
    is ``Ok(Executed(failed=...))``, not ``SqlFailed``."""

    rid: str
    seq: int
    items: tuple[tuple[tuple[str, ...], Seeds], ...]
    begin: bool
    time_us: int


@dataclass(frozen=True, slots=True)
class LeadCommit:
    """Log rows, applied position (and trim) and COMMIT of the open leader transaction.
    Ordering: entries enter the log (and reach followers) only after this returned Ok.

    ``then``: the next batch's statements, executed in the same round trip right after the
    COMMIT (as ``LeadExecute`` with ``begin`` and clock ``then_time_us``), so a leader batch
    costs one round trip instead of two while writes keep arriving. Result: ``Ok(Executed)``
    for the next batch when the COMMIT went through; a failure (``SqlFailed`` / ``FencedOut``
    / ``Down``) is the COMMIT's, and the next batch did not run (or died with the connection)."""

    rid: str
    seq: int
    entries: tuple[Entry, ...]
    epoch: int
    trim_below: int
    then: tuple[tuple[tuple[str, ...], Seeds], ...] = ()
    then_time_us: int = 0


@dataclass(frozen=True, slots=True)
class Rollback:
    """ROLLBACK the open transaction, or ``ROLLBACK TO SAVEPOINT savepoint``. Best effort:
    any result continues (a failure here also shows on the next round trip)."""

    rid: str
    seq: int
    savepoint: str | None = None


@dataclass(frozen=True, slots=True)
class ApplyBatch:
    """One transaction on a follower: replay ``entries`` (none applied alone), record them
    in its log, advance its position, trim. Result: ``Ok(None)``."""

    rid: str
    seq: int
    entries: tuple[Entry, ...]
    epoch: int
    trim_below: int


@dataclass(frozen=True, slots=True)
class AloneMark:
    """DDL step 1 (crash-safe marker): BEGIN; the entry's log row; ``ddl_pending = ts``; COMMIT."""

    rid: str
    seq: int
    entry: Entry
    epoch: int


@dataclass(frozen=True, slots=True)
class AloneRun:
    """DDL step 2: the entry's statements at its clock. Errors whose errno is in
    ``tolerate`` count as done (re-running after a crash: "already exists / already
    gone"), and the next statement runs. Result: ``Ok(None)``."""

    rid: str
    seq: int
    entry: Entry
    tolerate: frozenset[int]
    lock_wait_s: float = 0.0  # the leader's fresh run: give up on a lock (metadata lock) after this


@dataclass(frozen=True, slots=True)
class AloneFinish:
    """DDL step 3: applied position = the entry (and its mark), ``ddl_pending = 0``."""

    rid: str
    seq: int
    entry: Entry
    epoch: int


@dataclass(frozen=True, slots=True)
class AloneAbort:
    """The DDL failed on the leader: delete its log row and clear the marker."""

    rid: str
    seq: int
    ts: int
    epoch: int


@dataclass(frozen=True, slots=True)
class ReadPeer:
    """Catch-up: read ``peer``'s log floor and up to ``limit`` entries after ``after``.
    Result: ``Ok(PeerLog)``; a failure of the *peer* is ``Down``/``SqlFailed`` with
    ``peer_failed`` set, never a failure of this replica's own connection."""

    rid: str
    seq: int
    peer: str
    after: int
    limit: int


@dataclass(frozen=True, slots=True)
class RebuildBegin:
    """Rebuild step 1: open ``source``, start a consistent snapshot, read its state row
    inside it (the shell holds that snapshot for ``RebuildCopy``). Result: ``Ok(snapshot)``."""

    rid: str
    seq: int
    source: str


@dataclass(frozen=True, slots=True)
class RebuildCopy:
    """Rebuild step 2: mark the replica "rebuild in progress" (applied_epoch -1), replace
    its user database by the held snapshot's, then set its state to the snapshot's
    position under ``epoch`` and release the snapshot. Result: ``Ok(rows copied)``;
    progress arrives as ``RebuildProgress`` events meanwhile."""

    rid: str
    seq: int
    epoch: int
    applied_ts: int
    applied_epoch: int


@dataclass(frozen=True, slots=True)
class RebuildAbort:
    """Release the held source snapshot without copying."""

    rid: str
    seq: int


# --- lane actions ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CommitTxn:
    """Commit the interactive transaction open on lane ``lane`` (its pinned connection to the
    leader ``rid``), which has run every statement: the entry's log row, the leader's applied
    position (raised, never lowered: lanes and the batch commit out of timestamp order), the
    epoch check, COMMIT. Result, as ``LaneDone``: ``Ok(None)``; ``Down`` means in doubt."""

    lane: int
    seq: int
    rid: str
    entry: Entry
    epoch: int
    parked: bool = False  # a parked write's lane (its connection is the shell's ``parked``), else a session's


@dataclass(frozen=True, slots=True)
class ParkedRun:
    """An autocommit write that met a row lock held by an interactive transaction (errno 1205
    at once in the batch, which runs with ``innodb_lock_wait_timeout=0``): run it on a leader
    connection of its own (lane ``lane``), waiting for the lock while its client waits (then a
    definite 1205), so the batch goes on without it. BEGIN, the statement clock and seeds, its
    statements; the transaction stays open. The shell first steps ``LaneThread`` (the
    connection's server thread), then the result as ``LaneDone``: ``Ok(Executed)`` (one
    request), ``SqlFailed`` (rolled back), ``Down``."""

    lane: int
    seq: int
    rid: str
    statements: tuple[str, ...]
    seeds: Seeds
    time_us: int
    lock_wait_s: int  # within the write's deadline: a lock not had by then is a definite 1205


@dataclass(frozen=True, slots=True)
class LaneEnd:
    """Roll back and release lane ``lane``'s connection (a parked write that will not commit
    there: the leader term moved while it ran). No result."""

    lane: int
    rid: str


LaneAction = CommitTxn | ParkedRun | LaneEnd

ReplicaAction = (Open | Close | LookupEntry | LeadExecute | LeadCommit | Rollback | ApplyBatch | AloneMark
                 | AloneRun | AloneFinish | AloneAbort | ReadPeer | RebuildBegin | RebuildCopy | RebuildAbort)


# --- control tasks --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Probe:
    """Connect, ensure the schema, read the state row (recovery). Result: ``Ok(snapshot)``."""

    id: int
    rid: str


@dataclass(frozen=True, slots=True)
class BumpEpoch:
    """Compare-and-set: raise the stored epoch to ``epoch`` (leader ``leader``) if it is at
    most ``expect_at_most``; read the state back. Result: ``Ok(snapshot)``; the caller
    checks ``snapshot.epoch == epoch``."""

    id: int
    rid: str
    epoch: int
    leader: str
    expect_at_most: int


@dataclass(frozen=True, slots=True)
class ReadLog:
    """Up to ``limit`` persisted log entries after ``after``. Result: ``Ok(list[Entry])``."""

    id: int
    rid: str
    after: int
    limit: int


@dataclass(frozen=True, slots=True)
class ProbeLeader:
    """A quick independent ``SELECT 1`` with its own short timeout. Result: ``Ok(None)``."""

    id: int
    rid: str
    timeout_s: float


@dataclass(frozen=True, slots=True)
class SetReadOnly:
    """``SET GLOBAL read_only``: only the leader takes other clients' writes. Best effort."""

    id: int
    rid: str
    on: bool


@dataclass(frozen=True, slots=True)
class RestartApplier:
    """Cancel the replica's applier (e.g. stuck in a round trip to a hung server), drop its
    connection and start a fresh one. The cancelled action's result is never stepped."""

    id: int
    rid: str


@dataclass(frozen=True, slots=True)
class CheckCommitted:
    """An interactive transaction's COMMIT is in doubt: end its server connection
    ``thread_id`` on ``rid`` (waiting until the server has finished it, one way or the
    other), then read whether log entry ``ts`` is there. Result: ``Ok(bool)``."""

    id: int
    rid: str
    ts: int
    thread_id: int | None


ControlTask = Probe | BumpEpoch | ReadLog | ProbeLeader | SetReadOnly | RestartApplier | CheckCommitted


# --- Ready ---------------------------------------------------------------------------------


@dataclass
class Ready:
    """Everything the core wants done now. The shell carries all of it out, then calls
    ``advance(ready)``; nothing in a Ready depends on the order of its lists except
    within one replica (there is at most one action per replica in a Ready, because a
    replica has at most one action in flight)."""

    actions: list[ReplicaAction] = field(default_factory=list)
    # At most one per lane (an interactive transaction's pinned leader connection, or a parked write's).
    lane_actions: list[LaneAction] = field(default_factory=list)
    # Control tasks may run concurrently with each other and with every replica action.
    control: list[ControlTask] = field(default_factory=list)
    # (handle, outcome) for client requests: a WriteOutcome, an ApiError, or for admin
    # requests (failover) a result dict. Delivered after the state change that decided it.
    outcomes: list[tuple[int, Any]] = field(default_factory=list)
    # (kind, message, fields): state changes, for the event log, dashboard and logs.
    events: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    # (level, what, fields): diagnostics for the structured log that are not state changes.
    logs: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.actions or self.lane_actions or self.control or self.outcomes or self.events or self.logs)
