"""Shared pieces of the simulation: its configuration, clock, network and messages."""

from __future__ import annotations

import hashlib
import heapq
import random
from dataclasses import dataclass
from typing import Any, Callable

from coordinator.core.replog import Entry, EntryKind, Statement


class Violation(AssertionError):
    """An invariant did not hold."""


class Stuck(Exception):
    """Liveness: the healed cluster did not converge, for a reason diagnosed as known."""


@dataclass(frozen=True)
class SimConfig:
    n: int = 3
    t: int = 1
    mode: str = "cabinet"
    steps: int = 300
    # Scaled-down versions of the real defaults (config.py), same ratios.
    query_timeout_ms: int = 1000  # mysql.query_timeout_s
    write_timeout_ms: int = 2000  # replication.write_timeout_s
    poll_interval_ms: int = 200  # monitor.poll_interval_ms
    poll_timeout_ms: int = 300  # monitor.poll_timeout_ms
    misses_allowed: int = 3  # monitor.missed_polls_unhealthy
    retry_ms: int = 200  # replication.retry_interval_s
    max_batch: int = 8  # replication.max_batch_entries
    pipeline: bool = True  # replication.pipeline_commit
    tick_ms: int = 50  # the shell's tick
    # None: chosen per seed (small values exercise trims, floors and mark renewal).
    memory_log_entries: int | None = None
    window: int | None = None
    drop_p: float | None = None
    base_delay_ms: int = 1
    jitter_ms: int = 3
    p_write: float = 0.6
    p_bad_write: float = 0.05  # a write the leader's server refuses (duplicate key)
    p_deadlock: float = 0.02  # a leader round trip chosen as a deadlock victim
    p_txn: float = 0.3  # a client write that is an interactive transaction (its own leader connection)
    p_locked: float = 0.03  # a batch write meeting a row lock (1205 at once): parked on a lane of its own
    p_fault: float = 0.12
    max_step_ms: int = 60
    quiesce_ms: int = 60_000
    bugs: frozenset[str] = frozenset()  # planted bugs (bugs.py): the checker must catch them
    strict_liveness: bool = False  # treat "stuck: no replica can serve a rebuild" as a violation


def mk_entry(ts: int, epoch: int, payload: str, mark: int = 0) -> Entry:
    return Entry(ts, epoch, EntryKind.WRITE, (Statement(payload),), 0, 0, 0, mark)


def payload_of(e: Entry) -> str:
    return e.statements[0].sql


Rec = tuple[int, int, str, int]  # a replica's log row: (ts, epoch, payload, mark)


# --- engine -----------------------------------------------------------------------------


class Sim:
    """Fake clock + event heap. Ties break by insertion order, so runs are reproducible."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.now = 0
        self._heap: list[tuple[int, int, Callable[..., None], tuple[Any, ...]]] = []
        self._seq = 0
        self.trace: list[str] = []
        self._digest = hashlib.sha256()
        self.events = 0

    def at(self, delay_ms: int, fn: Callable[..., None], *args: Any) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (self.now + max(0, int(delay_ms)), self._seq, fn, args))

    def run_until(self, t: int, after_event: Callable[[], None] | None = None) -> None:
        while self._heap and self._heap[0][0] <= t:
            when, _, fn, args = heapq.heappop(self._heap)
            self.now = when
            self.events += 1
            fn(*args)
            if after_event is not None:
                after_event()
        self.now = max(self.now, t)

    def log(self, msg: str) -> None:
        line = f"{self.now:>7} {msg}"
        self.trace.append(line)
        self._digest.update(line.encode())

    def digest(self) -> str:
        d = self._digest.copy()
        d.update(f"events={self.events} now={self.now}".encode())
        return d.hexdigest()


class Network:
    """Coordinator <-> replica links: delay per link, jitter, random drops, partitions.
    A partition cuts both directions, including messages already in flight."""

    def __init__(self, sim: Sim, base_ms: int, jitter_ms: int, drop_p: float) -> None:
        self.sim = sim
        self.base_ms, self.jitter_ms, self.drop_p = base_ms, jitter_ms, drop_p
        self.partitioned: set[str] = set()
        self.extra_ms: dict[str, int] = {}

    def send(self, rid: str, fn: Callable[..., None], *args: Any) -> None:
        if rid in self.partitioned:
            return
        if self.drop_p and self.sim.rng.random() < self.drop_p:
            return
        delay = self.base_ms + self.sim.rng.randint(0, self.jitter_ms) + self.extra_ms.get(rid, 0)
        self.sim.at(delay, self._arrive, rid, fn, args)

    def _arrive(self, rid: str, fn: Callable[..., None], args: tuple[Any, ...]) -> None:
        if rid not in self.partitioned:
            fn(*args)


@dataclass
class Request:
    inc: int  # coordinator incarnation
    channel: str  # "worker" (the applier's one connection) or a one-shot ("aux", "monitor")
    gen: int  # connection generation on the worker channel
    op: str
    args: tuple[Any, ...]
    call_id: int


@dataclass
class WriteReq:
    wid: int
    payload: str
    done: bool = False
    outcome: str = ""
    ts: int = 0


