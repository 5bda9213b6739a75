"""Idempotent writes (``request_id``): a retry gets the original outcome, never a second apply.

In memory the core remembers recent keyed writes (and answers a retry with the settled
outcome, or waits for it). After a coordinator restart the key is looked up in the
leader's persisted log instead: the leader's log is complete once it applied the whole
in-memory log; an entry found there that is not part of our history (an errant copy on
a replica being rebuilt) does not count. One budget (``write_timeout_s``) covers the
lookup and the write, so a keyed write never waits longer than an ordinary one.
"""

from __future__ import annotations

from typing import Any

from asyncmy.converters import escape_string

from . import schema
from .batchsql import entry_from_row
from .core.node import Core
from .core.outcomes import ApiError, WriteOutcome
from .core.replog import Entry, EntryKind
from .deadline import Budget, wait_until
from .errors import ReplicaDown, StatementError
from .replicator import Replicator


class Idempotency:
    """The keyed-write path; stateless itself (the core remembers keys, the log persists them)."""

    def __init__(self, replicator: Any, reads: Any, write_timeout_s: float, query_timeout_s: float) -> None:
        self.r = replicator
        self.reads = reads
        self.write_timeout_s = write_timeout_s
        self.query_timeout_s = query_timeout_s

    async def submit(self, kind: EntryKind, statements: tuple[str, ...], request_id: str) -> WriteOutcome:
        r: Replicator = self.r
        if not request_id:
            return await r.submit(kind, statements)
        budget = Budget(self.write_timeout_s)
        if not self.r.core.knows_request(request_id):
            prior = await self.persisted_outcome(request_id, budget)
            if prior is not None:
                return prior
        return await r.submit(kind, statements, request_id=request_id, timeout_s=budget.left())

    async def persisted_outcome(self, request_id: str, budget: Budget) -> WriteOutcome | None:
        """The outcome of a keyed write found in the log (in memory, else the leader's
        persisted log), waiting within ``budget`` if it is logged but not yet committed."""
        core = self.r.core
        entry = core.logged_entry(request_id)
        if entry is not None:
            return await self._committed(entry, budget)
        target = self.r.log.last_ts
        if not await wait_until(lambda: self.r.leader.applied_ts >= target, budget):
            raise ApiError(503, "not_ready", "cannot check the request_id yet (the leader is catching up); "
                           "retry with the same request_id")
        try:
            _, rows = await self.reads.pools[self.r.leader_id].query(
                schema.log_query(self.r.schema, f"request_id = '{escape_string(request_id)}'"),
                min(self.query_timeout_s, max(0.1, budget.left())))
        except (ReplicaDown, StatementError):
            raise ApiError(503, "replica_unavailable", "cannot check the request_id against the log right now; "
                           "retry with the same request_id") from None
        if not rows:
            return None
        found = entry_from_row(rows[0])
        if not core.in_history(found):
            return None  # an errant copy on a replica being rebuilt: the write never committed
        return await self._committed(found, budget)

    async def _committed(self, entry: Entry, budget: Budget) -> WriteOutcome:
        if not await wait_until(lambda: self.r.commit_ts >= entry.ts, budget):
            raise ApiError(504, "write_timeout", "the write with this request_id is logged but not yet committed; "
                           "its outcome is unknown — retry later with the same request_id")
        core: Core = self.r.core
        return core.outcome_of(entry)
