"""The core's state, in one place, and the few helpers every part of the core uses.

``State`` is owned by ``Core`` (``node.py``); the decision modules (``writes``,
``commit``, ``leader``, ``follower``, ``opening``, ``rebuild``, ``failover``,
``recovery``) are functions over it, so each decision is found in one file while the
state has exactly one owner. Nothing here does I/O or reads a clock: ``now`` (monotonic
seconds) and ``wall_us`` (the statement clock) are set by ``Core.step`` from its caller.

Who writes what: each replica's fields are written only while handling that replica's
own results or by the plans named in their comments; leadership fields (``leader_id``,
``epoch``, ``bumping_to``, ``leading_enabled``) only by ``failover`` and ``recovery``.
"""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from . import cabinet
from .actions import ControlTask, Ready, ReplicaAction
from .config import CoreConfig
from .health import HealthTracker
from .replog import Entry, ReplicatedLog
from .timestamps import TimestampAllocator
from .writes import WriteQueue, WriteRequest


class Phase(enum.Enum):
    """Where a replica's applier connection stands."""

    CLOSED = "closed"  # no connection (or a fresh one must be opened)
    OPENING = "opening"  # Open in flight, or its follow-up checks (history, pending DDL)
    OPEN = "open"  # usable; the position is verified
    IDLE = "idle"  # Close was sent: fenced, nothing more to do


@dataclass
class ReplicaState:
    """One replica as the core sees it (the views read it too)."""

    id: str
    name: str
    applied_ts: int = 0
    applied_epoch: int = 0
    connected: bool = False  # the applier connection is open and its position verified
    diverged: bool = False  # failed an entry the leader executed: rebuilt
    needs_rebuild: bool = False  # errant history or behind every log: rebuilt
    rebuilding: bool = False
    rebuild_progress: float | None = None  # percent while a rebuild copies data
    healthy: bool = False  # the health monitor's verdict
    ack_ms: float | None = None  # smoothed apply round trip (Cabinet ranking)
    last_error: str = ""
    batches: int = 0
    entries_applied: int = 0
    busy_ms: float = 0.0
    trimmed_below: int = 0  # persisted log trimmed below this timestamp
    thread_id: int | None = None  # server connection id of the applier (ended on reopen)
    # --- applier bookkeeping (the replica's own result handlers) ---
    phase: Phase = Phase.CLOSED
    inflight: ReplicaAction | None = None
    owner: str = ""  # which part of the core issued ``inflight`` (and handles its result)
    retry_at: float = 0.0  # no new action before this (back-off after a failure)
    restarting: bool = False  # a RestartApplier is under way: no actions until it reports
    rollback: str | None = None  # "" = ROLLBACK, "r3" = to that savepoint: before anything else
    pending: Any = None  # the open-time step or multi-step job in progress (opening, follower, rebuild)

    @property
    def available(self) -> bool:
        """Counts for quorum ranking and reads: reachable, healthy, holding a true prefix."""
        return self.connected and self.healthy and not (self.diverged or self.needs_rebuild or self.rebuilding)

    @property
    def counts(self) -> bool:
        """Its position counts toward commits: a diverged, errant or rebuilding replica's
        position is not a prefix of the log."""
        return not (self.diverged or self.needs_rebuild or self.rebuilding)


@dataclass
class InDoubt:
    """The leader's last commit round trip broke: did it commit? Its log says, when the
    connection reopens (``Open.check_ts``)."""

    entries: list[Entry]
    reqs: list[WriteRequest]
    commit: Any = None  # its sequencer.PendingCommit


@dataclass
class Counters:
    failovers: int = 0
    rebuilds: int = 0


@dataclass
class State:
    cfg: CoreConfig
    rule: cabinet.QuorumRule
    replicas: dict[str, ReplicaState]
    health: dict[str, HealthTracker]
    leader_id: str
    writes: WriteQueue
    log: ReplicatedLog = field(default_factory=ReplicatedLog)
    alloc: TimestampAllocator = field(default_factory=TimestampAllocator)
    now: float = 0.0
    wall_us: int = 0
    epoch: int = 0
    bumping_to: int = 0  # an epoch a failover is storing (not yet ours)
    leading_enabled: bool = True  # false while a failover or switchover runs
    active: bool = False  # accepting writes (recovered, not fenced, not quiesced)
    draining: bool = False  # quiesced (deactivate): no new write or transaction, but the accepted ones finish
    fenced: bool = False
    resetting: bool = False  # a reset holds the pipeline (begin_reset .. restart_empty / end_reset): no failover
    commit_ts: int = 0
    ranking: list[str] = field(default_factory=list)
    trim_below: int = 0
    marks: deque[tuple[int, int]] = field(default_factory=deque)  # (entry ts, mark) awaiting commit
    batch: Any = None  # the leader batch in flight (leader.LeaderBatch)
    in_doubt: InDoubt | None = None
    # Commits with their timestamps, waiting for their COMMIT or a lower one (sequencer.PendingCommit)
    commits: deque[Any] = field(default_factory=deque)
    lanes: dict[int, Any] = field(default_factory=dict)  # interactive commits in progress (lanes.Lane)
    # rid -> (timestamps, server threads) of commits a failover took from it unsettled: if its
    # log holds any of them when it next opens (those threads ended first), it is errant.
    drained: dict[str, tuple[frozenset[int], tuple[int, ...]]] = field(default_factory=dict)
    # Raised whenever the leader's connection is lost or (re)verified and when the leader
    # changes: an interactive transaction must begin and commit within one term, on a leader
    # whose state was verified all along (``lanes``).
    leader_term: int = 0
    failed_ddl: set[int] = field(default_factory=set)  # DDL markers whose statement failed on the leader
    failover: Any = None  # the failover plan in progress (failover.Plan)
    failover_retry: tuple[float, str, str, bool] | None = None  # (when, leader, why, force) of a failed auto plan
    recovery: Any = None  # the start-up recovery plan in progress (recovery.Plan)
    last_election: dict[str, Any] | None = None
    switch: Any = None  # the proactive SEER switch decision (seer.SwitchTracker)
    counters: Counters = field(default_factory=Counters)
    out: Ready = field(default_factory=Ready)
    timers: dict[str, float] = field(default_factory=dict)  # periodic work: name -> next due time
    fresh: bool = False  # recovery found empty servers (the shell bootstraps the demo tables)
    _seq: int = 0
    _control: int = 0
    control_owner: dict[int, str] = field(default_factory=dict)  # control task id -> plan name

    # --- outbox ---

    def emit(self, kind: str, message: str, **fields: Any) -> None:
        self.out.events.append((kind, message, fields))

    def note(self, level: str, what: str, **fields: Any) -> None:
        self.out.logs.append((level, what, fields))

    def answer(self, handle: int, outcome: Any) -> None:
        self.out.outcomes.append((handle, outcome))

    def next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def control(self, owner: str, make: Any, *args: Any) -> ControlTask:
        """Queue a control task built by ``make(id, *args)`` for plan ``owner``."""
        self._control += 1
        task: ControlTask = make(self._control, *args)
        self.control_owner[self._control] = owner
        self.out.control.append(task)
        return task

    # --- shared helpers ---

    @property
    def leader(self) -> ReplicaState:
        return self.replicas[self.leader_id]

    def new_term(self) -> None:
        self.leader_term += 1

    def rerank(self) -> None:
        followers = [rid for rid in self.replicas if rid != self.leader_id]
        self.ranking = cabinet.rank(
            self.leader_id, followers,
            {rid: self.replicas[rid].ack_ms for rid in followers},
            {rid: self.replicas[rid].available for rid in followers},
        )

    def applied_map(self) -> dict[str, int]:
        return {rid: (rs.applied_ts if rs.counts else 0) for rid, rs in self.replicas.items()}

    def trim_for(self, rs: ReplicaState) -> int:
        return self.trim_below if self.trim_below > rs.trimmed_below else 0

    def own_epoch_moved(self, used: int) -> bool:
        """A fence check failed on a batch built under epoch ``used``: if our own failover
        moved the epoch since, the batch is merely stale (retry it), not fenced."""
        return used != self.epoch or self.bumping_to > used

    def fence(self, where: str) -> None:
        if self.fenced:
            return
        self.fenced = True
        self.active = self.draining = False
        self.emit("fenced", f"fenced off by a newer coordinator (epoch above {self.epoch}) on {where}; "
                  "this coordinator stops writing", epoch=self.epoch, replica=where)
        self.writes.fail_queued(self.out, 503, "fenced", "this coordinator was fenced off by a newer one")
