"""What happened: the events the shell (or the simulation) steps into the core.

Results of actions: ``Done`` (a replica action) and ``ControlDone`` (a control task),
each carrying one of ``Ok``, ``Down``, ``SqlFailed`` or ``FencedOut``. The other events
are client requests (``Propose``, ``FailoverRequest``), measurements (``Poll``,
``RebuildProgress``) and time (``Tick``). Time itself is an argument of ``step``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from .health import Outcome as PollOutcome
from .replog import Entry, EntryKind


class Cause(enum.Enum):
    """Why a server could not be used: lets health and retries tell a crash from a hang."""

    REFUSED = "refused"  # connection refused / reset: the server process is gone
    TIMEOUT = "timeout"  # no answer in time: hung server or network
    IO = "io"  # broken mid-way (lost connection, protocol error)
    INTERNAL = "internal"  # a bug in the shell; treated like I/O, logged loudly


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A replica's state row (``_coordinator.state``)."""

    epoch: int
    applied_ts: int
    applied_epoch: int
    ts_mark: int
    ddl_pending: int
    leader_id: str
    log_floor: int  # every entry with log_floor <= ts <= applied_ts is in this replica's log


@dataclass(frozen=True, slots=True)
class Opened:
    snapshot: Snapshot
    thread_id: int
    present: frozenset[int] = frozenset()  # which of the Open's ``check_ts`` the replica's log holds


@dataclass(frozen=True, slots=True)
class StatementFailure:
    """A client statement of a leader batch failed: request ``index`` (into the action's
    items), statement ``statement`` of it; -1 means one of our own statements."""

    index: int
    statement: int
    errno: int
    message: str


@dataclass(frozen=True, slots=True)
class Executed:
    """Per request of the round trip, the (rows affected, insert id) of each statement
    that ran; with ``failed`` the round trip stopped there (the transaction is open)."""

    results: tuple[tuple[tuple[Any, ...], ...], ...]
    failed: StatementFailure | None = None


@dataclass(frozen=True, slots=True)
class PeerLog:
    log_floor: int
    entries: tuple[Entry, ...]


@dataclass(frozen=True, slots=True)
class Ok:
    value: Any = None
    latency_ms: float = 0.0  # the round trip, for Cabinet ranking and busy figures


@dataclass(frozen=True, slots=True)
class Down:
    cause: Cause
    message: str
    peer_failed: bool = False  # ReadPeer / LookupEntry: the peer failed, not our connection


@dataclass(frozen=True, slots=True)
class SqlFailed:
    """The server refused one of the coordinator's own statements (or a follower's replay)."""

    errno: int
    message: str
    peer_failed: bool = False


@dataclass(frozen=True, slots=True)
class FencedOut:
    """The epoch CHECK tripped: a newer epoch is stored on this replica."""

    message: str


Result = Ok | Down | SqlFailed | FencedOut


@dataclass(frozen=True, slots=True)
class Done:
    rid: str
    seq: int
    result: Result


@dataclass(frozen=True, slots=True)
class ControlDone:
    id: int
    result: Result


@dataclass(frozen=True, slots=True)
class Propose:
    """A client write. ``handle`` names it in ``Ready.outcomes``; ``seeds`` are fresh random
    RAND() seeds (the core draws no randomness); ``timeout_s`` is what is left of the
    client's budget (the write timeout unless a caller already spent some)."""

    handle: int
    kind: EntryKind
    statements: tuple[str, ...]
    seeds: tuple[int, int]
    request_id: str = ""
    exact_mark: bool = False
    timeout_s: float | None = None


@dataclass(frozen=True, slots=True)
class TxnCommit:
    """An interactive transaction ran every statement on lane ``lane`` (a connection pinned to
    the leader ``rid``, begun in leader term ``term``) and holds its locks: take its timestamp now,
    commit it, answer ``handle`` after the quorum. ``statements``: (sql, insert id, rows) of
    its writes in order; ``time_us``: its statement clock (NOW() inside it); ``thread_id``:
    the pinned connection's server id (ended if the COMMIT is in doubt)."""

    handle: int
    lane: int
    rid: str
    term: int
    statements: tuple[tuple[str, int, int], ...]
    time_us: int
    seeds: tuple[int, int]
    thread_id: int | None = None
    timeout_s: float | None = None


@dataclass(frozen=True, slots=True)
class LaneThread:
    """A parked write's lane (``ParkedRun``) got its leader connection: server thread ``thread_id``
    (ended before the leader is trusted again if a failover takes the write back)."""

    lane: int
    seq: int
    thread_id: int


@dataclass(frozen=True, slots=True)
class LaneDone:
    """The result of a lane action (``CommitTxn``, ``ParkedRun``)."""

    lane: int
    seq: int
    result: Result


@dataclass(frozen=True, slots=True)
class FailoverRequest:
    """An operator's switchover (``planned``) or failover; ``expected_leader``: only if that
    replica still leads. The outcome for ``handle`` is the result dict or an ApiError."""

    handle: int
    reason: str
    target: str | None = None
    planned: bool = True
    expected_leader: str | None = None


@dataclass(frozen=True, slots=True)
class Poll:
    """One health poll of a replica (its round trip, or why it failed)."""

    rid: str
    outcome: PollOutcome
    latency_ms: float | None = None
    error: str = ""


@dataclass(frozen=True, slots=True)
class RebuildProgress:
    rid: str
    percent: float


@dataclass(frozen=True, slots=True)
class Tick:
    """Time passed (the shell ticks every ~50 ms): deadlines, retries, watchdogs."""


Event = (Done | ControlDone | Propose | FailoverRequest | Poll | RebuildProgress | Tick | TxnCommit | LaneDone
         | LaneThread)
