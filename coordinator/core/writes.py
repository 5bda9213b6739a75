"""Client writes from admission to answer: the queue, batching, requeue, expiry and the
idempotency memory (``request_id``).

A write is *answered* once (its outcome goes out in ``Ready.outcomes``) but may stay in
the pipeline after that: a 504 "outcome unknown" write can still commit. A keyed write
also *settles* once its outcome is definite (committed, or refused by the leader's
server); every retry with its key gets that outcome, and a settled write is never run
again. ``WriteQueue`` is owned by the core; only the core's modules call it.
"""

from __future__ import annotations

import dataclasses
import heapq
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from .actions import Ready
from .outcomes import ApiError, WriteOutcome, timeout_error
from .replog import Entry, EntryKind, Statement


@dataclass(slots=True, eq=False)
class WriteRequest:
    handle: int
    kind: EntryKind
    statements: tuple[str, ...]
    seeds: tuple[int, int]
    deadline: float
    request_id: str = ""
    exact_mark: bool = False  # a NOOP that persists its own timestamp as the mark (clean stop)
    results: list[tuple[Any, ...]] = field(default_factory=list)  # (rows affected, insert id, …) per statement
    ts: int = 0
    logged: bool = False  # in the log (committed on the leader): never executed again
    answered: bool = False  # the client got its reply
    settled: bool = False  # keyed: ``outcome`` is definite
    outcome: Any = None
    retries: list[int] = field(default_factory=list)  # handles of keyed retries waiting for ``outcome``

    @property
    def alone(self) -> bool:
        return self.kind in (EntryKind.DDL, EntryKind.RESET)

    def entry(self, ts: int, epoch: int, leader: str, time_us: int, mark: int = 0) -> Entry:
        """Its log entry once it ran on the leader (each statement with the leader's rows affected
        and insert id), at timestamp ``ts`` — a batch's, or a lane's at its commit point."""
        self.ts = ts
        results = self.results or [(0, 0)] * len(self.statements)
        stmts = tuple(Statement(sql, res[1] if self.kind != EntryKind.DDL else 0, max(res[0], 0))
                      for sql, res in zip(self.statements, results))
        return Entry(ts, epoch, self.kind, stmts, time_us, self.seeds[0], self.seeds[1], mark, self.request_id,
                     leader)


def _replayed(outcome: Any) -> Any:
    return dataclasses.replace(outcome, replayed=True) if isinstance(outcome, WriteOutcome) else outcome


class WriteQueue:
    def __init__(self, max_inflight: int, memory: int) -> None:
        self.max_inflight = max_inflight
        self.memory = memory
        self.queue: deque[WriteRequest] = deque()  # not yet executed, in order
        self.pending: deque[WriteRequest] = deque()  # every unanswered write, arrival (= deadline) order
        self.waiters: deque[WriteRequest] = deque()  # logged, waiting for the commit point (ts order)
        self.by_request_id: dict[str, WriteRequest] = {}  # recent keyed writes (insertion-ordered)
        self.retry_deadlines: list[tuple[float, int, WriteRequest]] = []  # a heap
        self.inflight = 0

    # --- answers ---

    def answer(self, out: Ready, req: WriteRequest, outcome: Any) -> None:
        if not req.answered:
            req.answered = True
            self.inflight -= 1
            out.outcomes.append((req.handle, outcome))

    def settle(self, out: Ready, req: WriteRequest, outcome: Any) -> None:
        """Record a definite outcome for a keyed write (what every retry sees)."""
        if req.request_id and not req.settled:
            req.settled, req.outcome = True, outcome
            for h in req.retries:
                out.outcomes.append((h, _replayed(outcome)))
            req.retries.clear()

    def forget(self, req: WriteRequest) -> None:
        """The write definitely did not run: a retry with its key may run it anew."""
        if req.request_id and self.by_request_id.get(req.request_id) is req:
            del self.by_request_id[req.request_id]

    def fail(self, out: Ready, req: WriteRequest, err: ApiError, applied: bool = False) -> None:
        """Answer a write that will not commit. ``applied``: the error is its definite
        outcome (the leader refused the statement); otherwise it did not run at all."""
        if applied:
            self.settle(out, req, err)
        else:
            self.forget(req)
        self.answer(out, req, err)

    # --- admission ---

    def admit(self, out: Ready, handle: int, kind: EntryKind, statements: tuple[str, ...], seeds: tuple[int, int],
              deadline: float, request_id: str, exact_mark: bool, refusal: ApiError | None) -> WriteRequest | None:
        """Queue a write, or answer it at once (a retry of a known key, or ``refusal``)."""
        if request_id:
            known = self.by_request_id.get(request_id)
            if known is not None:
                if known.settled:
                    out.outcomes.append((handle, _replayed(known.outcome)))
                else:
                    known.retries.append(handle)
                    heapq.heappush(self.retry_deadlines, (deadline, handle, known))
                return None
        if refusal is None and self.inflight >= self.max_inflight:
            refusal = ApiError(503, "overloaded", f"too many writes in flight ({self.inflight}); retry shortly")
        if refusal is not None:
            out.outcomes.append((handle, refusal))
            return None
        req = WriteRequest(handle, kind, statements, seeds, deadline, request_id, exact_mark)
        if request_id:
            self._remember(req)
        self.inflight += 1
        self.queue.append(req)
        self.pending.append(req)
        return req

    def track(self, req: WriteRequest) -> None:
        """A write that is already executed (an interactive transaction at its COMMIT): counted
        in flight and answered at its deadline like any other, but never queued or batched."""
        self.inflight += 1
        self.pending.append(req)

    def _remember(self, req: WriteRequest) -> None:
        self.by_request_id[req.request_id] = req
        excess = len(self.by_request_id) - self.memory
        if excess > 0:
            for key in list(self.by_request_id)[:excess]:
                del self.by_request_id[key]

    # --- batching ---

    def take_batch(self, out: Ready, now: float, limit: int, plain: bool = False) -> list[WriteRequest]:
        """The next batch for the leader: up to ``limit`` writes, or one DDL/RESET alone
        (``plain``: never one of those — the batch rides on a COMMIT's round trip).
        Writes whose deadline passed in the queue fail: they were never executed."""
        batch: list[WriteRequest] = []
        q = self.queue
        while q and len(batch) < limit:
            req = q[0]
            if req.deadline <= now:
                q.popleft()
                self.fail(out, req, ApiError(504, "write_timeout", "the write timed out in the queue; it was "
                                             "not executed"))
                continue
            if req.alone and (batch or plain):
                break
            batch.append(q.popleft())
            if req.alone:
                break
        return batch

    def requeue(self, reqs: list[WriteRequest], now: float) -> None:
        """Back to the head of the queue, unexecuted. A keyed write whose client already got
        its 504 goes back too, so its outcome settles for the retries; a write with a
        definite outcome (a statement error) never runs again."""
        for r in reversed(reqs):
            if r.logged or r.settled:
                continue
            if not r.answered or r.request_id:
                r.results = []
                r.ts = 0
                if r.answered:
                    r.deadline = max(r.deadline, now + 1.0)
                self.queue.appendleft(r)

    def fail_queued(self, out: Ready, status: int, code: str, message: str) -> None:
        for req in self.queue:
            self.fail(out, req, ApiError(status, code, message))
        self.queue.clear()

    # --- time ---

    def expire(self, out: Ready, now: float, timeout_s: float) -> None:
        """Answer writes whose deadline passed with 504 "outcome unknown" (I4: never hang),
        wherever they are; only the overdue head of ``pending`` is looked at."""
        pending = self.pending
        while pending and (pending[0].answered or pending[0].deadline <= now):
            req = pending.popleft()
            if not req.answered:
                self.answer(out, req, timeout_error(timeout_s))
        while self.retry_deadlines and self.retry_deadlines[0][0] <= now:
            _, handle, req = heapq.heappop(self.retry_deadlines)
            if handle in req.retries:
                req.retries.remove(handle)
                out.outcomes.append((handle, ApiError(
                    504, "write_timeout", "the original write with this request_id is still in flight; its "
                    "outcome is unknown — retry later with the same request_id")))

    def shutdown(self, out: Ready) -> None:
        for req in self.pending:
            self.fail(out, req, ApiError(503, "shutting_down", "the coordinator is shutting down; outcome unknown"))
        self.pending.clear()
        self.queue.clear()
        self.waiters.clear()

    @property
    def empty(self) -> bool:
        return not self.queue and not self.waiters
