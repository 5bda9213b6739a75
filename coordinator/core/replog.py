"""The replicated log: entries in timestamp order, and what each replica lacks.

The log is the source of truth; each replica is a state machine applying it in
order. The coordinator keeps a bounded in-memory tail of it (for appliers and
catch-up); every replica also persists the entries it applied, in the same
transaction as their effects, so a peer can serve older entries later.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from enum import IntEnum
from operator import attrgetter


class EntryKind(IntEnum):
    WRITE = 1  # one DML statement
    TXN = 2  # several statements, atomic
    DDL = 3  # implicit commit: applied alone, behind a crash-safe marker
    NOOP = 4  # no statements; carries state (timestamp mark) only
    RESET = 5  # clears user data; applied alone like DDL


@dataclass(frozen=True, slots=True)
class Statement:
    sql: str  # rendered: parameters already bound by the driver's escaping
    insert_id: int = 0  # first AUTO_INCREMENT value the leader generated (0 = none)
    rows: int = 0  # rows the leader's execution affected (the persisted outcome for retries)


@dataclass(frozen=True, slots=True)
class Entry:
    ts: int
    epoch: int
    kind: EntryKind
    statements: tuple[Statement, ...]
    time_us: int  # the leader's statement clock (SET timestamp)
    seed1: int
    seed2: int
    mark: int = 0  # timestamp high-water mark this entry persists (0 = none)
    request_id: str = ""  # the client's idempotency key, if it sent one
    leader: str = ""  # the replica that executed it first (audits: one leader per epoch)
    # Render caches, filled by the shell's batchsql on first use and reused by every follower's
    # batches; the core never reads them.
    replay: str = field(default="", compare=False, repr=False)
    row: str = field(default="", compare=False, repr=False)

    @property
    def alone(self) -> bool:
        """DDL-like entries commit implicitly and must be applied in their own batch."""
        return self.kind in (EntryKind.DDL, EntryKind.RESET)


_ts = attrgetter("ts")


@dataclass
class ReplicatedLog:
    """In-memory tail of the log. Pure bookkeeping, no I/O."""

    entries: list[Entry] = field(default_factory=list)
    last_ts: int = 0  # highest timestamp appended (also known when the tail is empty)
    floor_ts: int = 0  # entries with ts <= floor_ts are no longer held in memory
    floor_epoch: int | None = None  # epoch of the entry at floor_ts, when known (history checks)
    by_request_id: dict[str, Entry] = field(default_factory=dict)  # keyed entries held in memory

    def append(self, batch: list[Entry]) -> None:
        for e in batch:
            if e.ts <= self.last_ts:
                raise ValueError(f"log entry {e.ts} is not above the last one {self.last_ts}")
            self.entries.append(e)
            self.last_ts = e.ts
            if e.request_id:
                self.by_request_id[e.request_id] = e

    def after(self, ts: int, limit: int) -> list[Entry] | None:
        """Entries with timestamp > ts, at most ``limit``, cut before/after an entry
        that must be applied alone. None when the tail no longer reaches back to ts
        (the caller must catch up from a peer or rebuild)."""
        if ts < self.floor_ts:
            return None
        i = bisect.bisect_right(self.entries, ts, key=_ts)
        out: list[Entry] = []
        for e in self.entries[i : i + limit]:
            if e.alone:
                if not out:
                    out.append(e)
                break
            out.append(e)
        return out

    def get(self, ts: int) -> Entry | None:
        """The entry with exactly this timestamp, if held in memory."""
        i = bisect.bisect_left(self.entries, ts, key=_ts)
        if i < len(self.entries) and self.entries[i].ts == ts:
            return self.entries[i]
        return None

    def trim(self, keep: int) -> None:
        """Keep at most ``keep`` entries in memory (the oldest go first)."""
        excess = len(self.entries) - keep
        if excess > 0:
            self.floor_ts = self.entries[excess - 1].ts
            self.floor_epoch = self.entries[excess - 1].epoch
            if self.by_request_id:
                for e in self.entries[:excess]:
                    if e.request_id and self.by_request_id.get(e.request_id) is e:
                        del self.by_request_id[e.request_id]
            del self.entries[:excess]

    def reset(self, last_ts: int = 0, floor_epoch: int | None = None) -> None:
        self.entries.clear()
        self.by_request_id.clear()
        self.last_ts = last_ts
        self.floor_ts = last_ts
        self.floor_epoch = floor_epoch
