"""Errant history: is a replica's position (timestamp, epoch) a point of the log?

A replica that applied entries which never committed (an old leader that died
mid-batch while the coordinator also restarted, say) holds a position the log does
not have: a timestamp beyond the log, a timestamp that is no entry, or the right
timestamp written in another epoch. Such a replica is rebuilt, never silently kept.
Positions inside the in-memory log are decided here; older ones need a peer's
persisted log (``LOOKUP``: the caller asks peers for the entry, then ``by_lookup``).
"""

from __future__ import annotations

from typing import Final

from .replog import ReplicatedLog


class _Lookup:
    def __repr__(self) -> str:
        return "LOOKUP"


LOOKUP: Final = _Lookup()

Verdict = str | None | _Lookup  # why errant, None = a point of the log, LOOKUP = ask a peer


def verdict(log: ReplicatedLog, ts: int, epoch: int) -> Verdict:
    if epoch < 0:
        return "a rebuild of it was interrupted (its data is partial)"
    if ts == 0:
        return None
    if ts > log.last_ts:
        return f"its applied timestamp {ts} is beyond the log's last entry {log.last_ts}"
    if ts > log.floor_ts:
        entry = log.get(ts)
        if entry is None:
            return f"timestamp {ts} is not an entry of the log"
        return _epochs(ts, entry.epoch, epoch)
    if ts == log.floor_ts and log.floor_epoch is not None:
        return _epochs(ts, log.floor_epoch, epoch)
    return LOOKUP


def by_lookup(ts: int, epoch: int, found_epoch: int | None) -> str | None:
    """The verdict once a peer's log was asked for entry ``ts`` (None: nobody had it)."""
    if found_epoch is None:
        return f"entry {ts} can no longer be verified against any log"
    return _epochs(ts, found_epoch, epoch)


def _epochs(ts: int, logged: int, held: int) -> str | None:
    if logged != held:
        return f"entry {ts} was written in epoch {logged}, the replica has it from epoch {held}"
    return None
