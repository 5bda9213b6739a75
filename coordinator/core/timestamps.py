"""The timestamp allocator: unique, strictly increasing, never reused.

Writes take timestamps in the order the leader executes them, so timestamp order
is commit order. To survive a crash without reusing a value, the allocator only
hands out values at or below a high-water mark that has been persisted on a
quorum, reserved a window ahead (TiDB's TSO idea). The caller persists the mark
(it rides along with a replicated batch); this module only decides.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class TimestampAllocator:
    last: int = 0  # the last value handed out
    durable: int = 0  # highest value persisted on a quorum: safe to expose
    window: int = 10_000
    reserving: int = 0  # a mark being persisted right now (0 = none)

    def take_for_batch(self, count: int) -> tuple[range, int | None]:
        """Timestamps for ``count`` log entries about to be persisted together.

        The entries carry their own values to a quorum before anyone is told of
        them, so they may run past ``durable``; the second value is the new mark
        the same batch must persist (None when the current one still has room).
        """
        first = self.last + 1
        self.last += count
        return range(first, self.last + 1), self._next_mark()

    def take_one(self) -> int:
        """One timestamp for an interactive transaction's entry, which carries it to a quorum
        itself (like a batch's); it never carries a mark — the batches persist those."""
        self.last += 1
        return self.last

    def take_single(self, parity: int | None = None) -> int | None:
        """One value for a bare ``GET /timestamp`` (parity 1 = odd, 0 = even).

        Returns None when the value would pass the durable mark: the caller must
        persist a new mark (``needs_mark``) and ask again.
        """
        value = self.last + 1
        if parity is not None and value % 2 != parity:
            value += 1
        if value > self.durable:
            return None
        self.last = value
        return value

    def needs_mark(self) -> int | None:
        """A mark to persist now so that single takes can proceed, or None."""
        return self._next_mark(force=self.last + 2 > self.durable)

    def _next_mark(self, force: bool = False) -> int | None:
        target = max(self.durable, self.reserving)
        if not force and self.last + self.window // 2 <= target:
            return None
        mark = self.last + self.window
        self.reserving = mark
        return mark

    def mark_persisted(self, mark: int) -> None:
        self.durable = max(self.durable, mark)
        if self.reserving and self.reserving <= self.durable:
            self.reserving = 0

    def mark_failed(self) -> None:
        """The batch carrying ``reserving`` did not commit; retry on the next batch."""
        self.reserving = 0

    @classmethod
    def recovered(cls, highest_seen: int, persisted_mark: int, window: int) -> "TimestampAllocator":
        """Resume after a restart above everything that may have been handed out.

        After a crash anything up to the persisted mark may have been used, so the
        allocator resumes above it; a clean stop shrinks the mark to the last value
        used first, so numbering then continues without a gap.
        """
        start = max(highest_seen, persisted_mark)
        return cls(last=start, durable=start, window=window)
