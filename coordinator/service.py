"""The object graph: one Coordinator built from the config, started and stopped once.

Wiring only. The decisions are the core's (``coordinator/core``); the shell modules carry
them out: ``replicator`` (the core's driver and the write API), ``applier`` and
``operations`` (round trips), ``monitor`` (health polls), ``reads`` (read routing),
``failover``, ``recovery``, ``reset``, ``idempotency`` and ``views``.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Any

import structlog

from . import control, recovery
from .config import Config
from .core.outcomes import ApiError
from .core.replog import EntryKind
from .events import EventLog
from .failover import Failover
from .idempotency import Idempotency
from .metrics import Metrics
from .monitor import Monitor
from .mysqlfront.server import MysqlFront
from .reads import ReadRouter
from .replicator import Replicator
from .reset import Reset
from .views import Views

log = structlog.get_logger("coordinator.service")


def _report_crash(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("task_crashed", task=task.get_name(), exc_info=task.exception())


class Coordinator:
    """The whole process: builds every part from the config, starts and stops them in
    order. It holds no state of its own beyond the wiring (the core holds the state)."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.started_at = time.time()
        self.events = EventLog()
        self.replicator = Replicator(cfg, self.events)
        self.monitor = Monitor(cfg, self.replicator.endpoint, cfg.coordinator.internal_schema, self.replicator.step)
        self.failover = Failover(self.replicator)
        self.reads = ReadRouter(self.replicator, cfg)
        self.idempotency = Idempotency(self.replicator, self.reads, cfg.replication.write_timeout_s,
                                       cfg.mysql.query_timeout_s)
        self.reset = Reset(self.replicator, cfg)
        self.control = control.build(cfg)
        self.mysql = MysqlFront(cfg, self.replicator, self.reads, self.events) if cfg.ports.mysql else None
        self.views = Views(self)
        self.write_latency_ms: deque[tuple[float, float]] = deque(maxlen=8192)  # (ack time, ms): dashboard
        self.metrics = Metrics()
        self.metrics.attach(self)
        self.ready = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def rebuilds(self) -> int:
        return self.replicator.core.st.counters.rebuilds

    async def start(self) -> None:
        """Start everything; the MySQL port listens from here on (its ERR until recovery is
        done is the same as the HTTP API's: not ready)."""
        if self.mysql is not None:
            await self.mysql.start()
        self.monitor.start()
        self.replicator.start()
        task = asyncio.create_task(recovery.run(self.replicator, self.ready), name="recovery")
        task.add_done_callback(_report_crash)
        self._tasks.append(task)

    async def stop(self) -> None:
        r = self.replicator
        if r.active and not r.fenced:
            try:  # shrink the timestamp mark to the last value used: a clean restart continues gap-free
                await asyncio.wait_for(r.submit(EntryKind.NOOP, (), exact_mark=True), 3)
            except (ApiError, TimeoutError):
                pass
        if self.mysql is not None:
            await self.mysql.stop()
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.monitor.stop()
        await r.stop()
        self.reads.close()

    # --- views (HTTP handlers and the dashboard read the same numbers) -------------------

    def status(self) -> dict[str, Any]:
        return self.views.status()

    def replica_metrics(self) -> list[dict[str, Any]]:
        return self.views.replica_metrics()

    def snapshot(self) -> dict[str, Any]:
        return self.views.snapshot()
