"""The replicator: the async shell around the core's write path and its public API.

It owns the ``Core`` and drives it: every event (a client write, an action's result, a
poll, a tick) is stepped in with the current time, and the ``Ready`` that follows is
carried out at once — replica actions go to their appliers, control tasks start as
tasks, outcomes resolve the callers' futures, events go to the event log. Stepping and
carrying out are synchronous (no await between them), so the core's decisions never
race with each other.

Public API (used by the HTTP gateway, the dashboard and the other shell modules):
``submit``, ``next_timestamp``, ``set_mode``, ``quiesce``, ``failover``, ``start``,
``stop``, and read-only views of the core's state (``replicas``, ``leader_id``, …).
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

from . import mysqlio
from .applier import Applier
from .config import Config
from .core.actions import CommitTxn, LaneAction, LaneEnd, ParkedRun, Ready
from .core.config import CoreConfig
from .core.failover import FailoverOutcome
from .core.messages import Cause, ControlDone, Down, Event, FailoverRequest, LaneDone, Propose, Result, Tick, TxnCommit
from .core.node import Core
from .core.outcomes import ApiError, WriteOutcome
from .core.replog import EntryKind
from .deadline import Budget, wait_until
from .events import EventLog
from .operations import Operations
from .parked import ParkedLanes

log = structlog.get_logger("coordinator.replicator")

TICK_S = 0.05


class Replicator:
    """Owns the core (``core``), the appliers and the futures of waiting callers."""

    def __init__(self, cfg: Config, events: EventLog) -> None:
        self.cfg = cfg
        self.events = events
        self.core = Core(CoreConfig.of(cfg))
        self.schema = cfg.coordinator.internal_schema
        m = cfg.mysql
        self.appliers = {r.id: Applier(r.id, self.endpoint, self.step, self.schema, cfg.coordinator.database,
                                       m.query_timeout_s, m.max_statement_time_s) for r in cfg.replicas}
        self.operations = Operations(self.endpoint, self.schema, cfg.coordinator.database, m.query_timeout_s,
                                     self._restart_applier)
        self._handles = itertools.count(1)
        self._futures: dict[int, asyncio.Future[Any]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._ticker: asyncio.Task[None] | None = None
        self._rng = random.Random()
        self._proposals: list[Propose] = []  # client writes arrived in this turn of the loop (``_propose``)
        # lane -> how to run its CommitTxn (the session's pinned connection), while it commits
        self._lane_runs: dict[int, Callable[[CommitTxn], Awaitable[Result]]] = {}
        self.parked = ParkedLanes(self.endpoint, cfg.coordinator.database, self.schema, m.query_timeout_s,
                                  m.max_statement_time_s, self.step)

    # --- driving the core ------------------------------------------------------------------

    def step(self, ev: Event) -> None:
        self.core.step(ev, time.monotonic(), time.time_ns() // 1000)
        self._carry_out(self.core.ready())

    def _propose(self, ev: Propose) -> None:
        """Writes are stepped in together, once per turn of the event loop (``Core.step_all``):
        those that arrive while the leader is busy wait for its next batch anyway."""
        self._proposals.append(ev)
        if len(self._proposals) == 1:
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        evs, self._proposals = self._proposals, []
        if not evs:
            return
        try:
            self.core.step_all(evs, time.monotonic(), time.time_ns() // 1000)
        except Exception:  # a bug in the core: the writes of this turn must still hear (stepped one by
            # one, the exception reached each caller); some may have been queued: outcome unknown
            log.exception("step_failed", writes=len(evs))
            for ev in evs:
                fut = self._futures.pop(ev.handle, None)
                if fut is not None and not fut.done():
                    fut.set_result(ApiError(500, "internal_error", "the coordinator failed while taking this "
                                            "write; its outcome is unknown; see the log"))
            return
        self._carry_out(self.core.ready())

    def _carry_out(self, rd: Ready) -> None:
        for a in rd.actions:
            self.appliers[a.rid].give(a)
        for la in rd.lane_actions:
            self._spawn(self._lane(la), f"lane-{la.lane}")
        for task in rd.control:
            self._spawn(self._control(task), f"control-{type(task).__name__}-{task.rid}")
        for handle, outcome in rd.outcomes:
            fut = self._futures.pop(handle, None)
            if fut is not None and not fut.done():
                fut.set_result(outcome)
        for kind, message, fields in rd.events:
            self.events.emit(kind, message, **fields)
        for level, what, fields in rd.logs:
            getattr(log, level)(what, **fields)

    async def _lane(self, a: LaneAction) -> None:
        if isinstance(a, LaneEnd):
            await self.parked.end(a)
            return
        try:
            if isinstance(a, ParkedRun):
                result = await self.parked.run(a)
            elif a.parked:
                result = await self.parked.commit(a)
            else:
                run = self._lane_runs.get(a.lane)
                result = await run(a) if run is not None else Down(Cause.INTERNAL, f"lane {a.lane} has no connection")
        except Exception as exc:  # a bug: the core must still hear of it (a COMMIT is then in doubt)
            log.exception("lane_action_crashed", lane=a.lane, action=type(a).__name__)
            result = Down(Cause.INTERNAL, repr(exc))
        self.step(LaneDone(a.lane, a.seq, result))

    async def _control(self, task: Any) -> None:
        result = await self.operations.run(task)
        self.step(ControlDone(task.id, result))

    def _spawn(self, coro: Any, name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _tick_loop(self) -> None:
        while True:
            await asyncio.sleep(TICK_S)
            self.step(Tick())

    def _call(self, make: Callable[[int], Event], step: Callable[[Any], None] | None = None) -> asyncio.Future[Any]:
        handle = next(self._handles)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._futures[handle] = fut
        (step or self.step)(make(handle))
        return fut

    def _seeds(self) -> tuple[int, int]:
        """Fresh RAND() seeds (1 … 2**30-1) for one write."""
        bits = self._rng.getrandbits
        return (bits(30) or 1, bits(30) or 1)

    # --- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Start the appliers and begin start-up recovery."""
        for ap in self.appliers.values():
            ap.start()
        self._ticker = asyncio.create_task(self._tick_loop(), name="core-tick")
        self.core.start(time.monotonic(), time.time_ns() // 1000)
        self._carry_out(self.core.ready())

    async def stop_appliers(self) -> None:
        await asyncio.gather(*(ap.stop() for ap in self.appliers.values()))

    def start_appliers(self) -> None:
        for ap in self.appliers.values():
            ap.start()
        self._carry_out(self.core.ready())

    async def _restart_applier(self, rid: str) -> None:
        """Cancel a replica's applier (e.g. stuck on a hung server) and start a fresh one."""
        ap = self.appliers[rid]
        await ap.stop()
        ap.start()

    async def stop(self) -> None:
        self.core.shutdown()
        self._carry_out(self.core.ready())
        if self._ticker is not None:
            self._ticker.cancel()
            await asyncio.gather(self._ticker, return_exceptions=True)
        await self.stop_appliers()
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.parked.close()
        for fut in self._futures.values():
            if not fut.done():
                fut.set_result(ApiError(503, "shutting_down", "the coordinator is shutting down; outcome unknown"))

    # --- client API ------------------------------------------------------------------------

    async def submit(self, kind: EntryKind, statements: tuple[str, ...], exact_mark: bool = False,
                     request_id: str = "", timeout_s: float | None = None) -> WriteOutcome:
        seeds = self._seeds()
        result = await self._call(lambda h: Propose(h, kind, statements, seeds, request_id, exact_mark, timeout_s),
                                  self._propose)
        if isinstance(result, ApiError):
            raise result
        assert isinstance(result, WriteOutcome)
        return result

    def lane_term(self) -> int | None:
        """The leader term an interactive transaction may begin in now (None: no verified leader)."""
        return self.core.lane_term()

    @property
    def leader_term(self) -> int:
        """The leader term as it stands (moves on every leader change or reconnection)."""
        return self.core.st.leader_term

    async def commit_txn(self, lane: int, rid: str, term: int, statements: tuple[tuple[str, int, int], ...],
                         time_us: int, thread_id: int | None,
                         run: Callable[[CommitTxn], Awaitable[Result]]) -> WriteOutcome:
        """Commit an interactive transaction that ran on lane ``lane`` (its writes: (sql, insert
        id, rows)); ``run`` carries out its CommitTxn on the pinned connection. Answered after
        the quorum, like any write; an ApiError is raised otherwise."""
        seeds = self._seeds()
        self._lane_runs[lane] = run
        try:
            result = await self._call(lambda h: TxnCommit(h, lane, rid, term, statements, time_us, seeds, thread_id))
        finally:
            self._lane_runs.pop(lane, None)
        if isinstance(result, ApiError):
            raise result
        assert isinstance(result, WriteOutcome)
        return result

    async def next_timestamp(self, parity: int | None) -> int:
        """A bare timestamp (``GET /timestamp``): only below a quorum-persisted mark."""
        for _ in range(4):
            value = self.core.take_timestamp(parity)
            if value is not None:
                return value
            await self.submit(EntryKind.NOOP, ())
        raise ApiError(503, "no_timestamp", "could not persist a new timestamp window on a quorum")

    def set_mode(self, mode: str) -> str:
        old = self.core.set_mode(mode)
        self._carry_out(self.core.ready())
        return old

    async def failover(self, reason: str, target: str | None = None, planned: bool = True,
                       expected_leader: str | None = None) -> FailoverOutcome:
        out = await self._call(lambda h: FailoverRequest(h, reason, target, planned, expected_leader))
        assert isinstance(out, FailoverOutcome)
        return out

    async def quiesce(self, budget: Budget) -> None:
        """Stop taking writes and wait until every queued write is answered and every
        available replica applied the whole log (then the caller may stop the appliers)."""
        self.core.deactivate()
        if not await wait_until(self.core.quiescent, budget):
            raise ApiError(503, "busy", "could not quiesce the replication pipeline in time; retry")

    def endpoint(self, rid: str) -> mysqlio.Endpoint:
        r = self.cfg.replica(rid)
        m = self.cfg.mysql
        return mysqlio.Endpoint(r.host, r.port, m.user, m.password, m.connect_timeout_s, m.query_timeout_s)

    # --- read-only views of the core's state ----------------------------------------------------

    @property
    def replicas(self) -> Any:
        return self.core.st.replicas

    @property
    def leader_id(self) -> str:
        return self.core.st.leader_id

    @property
    def leader(self) -> Any:
        return self.core.st.leader

    @property
    def epoch(self) -> int:
        return self.core.st.epoch

    @property
    def log(self) -> Any:
        return self.core.st.log

    @property
    def commit_ts(self) -> int:
        return self.core.st.commit_ts

    @property
    def ranking(self) -> list[str]:
        return self.core.st.ranking

    @property
    def rule(self) -> Any:
        return self.core.st.rule

    @property
    def fenced(self) -> bool:
        return self.core.st.fenced

    @property
    def active(self) -> bool:
        return self.core.st.active

    @property
    def inflight(self) -> int:
        return self.core.st.writes.inflight

    @property
    def alloc(self) -> Any:
        return self.core.st.alloc

    @property
    def health(self) -> Any:
        return self.core.st.health
