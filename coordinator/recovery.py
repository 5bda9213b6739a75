"""Start-up: the core recovers (probe, fence, adopt the log — ``core/recovery.py``); this
shell waits for it, signals readiness and, on a first start on empty servers, creates
the demo tables through the replicated path so every replica agrees."""

from __future__ import annotations

import asyncio
from typing import Any

import structlog

from . import schema
from .core.outcomes import ApiError
from .core.replog import EntryKind

log = structlog.get_logger("coordinator.recovery")


async def run(replicator: Any, ready: asyncio.Event) -> None:
    core = replicator.core
    while core.st.recovery is not None or not (core.st.active or core.st.fenced):
        await asyncio.sleep(0.02)
    ready.set()
    if core.st.fresh and core.st.log.last_ts == 0:
        await bootstrap_demo(replicator)


async def bootstrap_demo(replicator: Any) -> None:
    for ddl in schema.DEMO_TABLES:
        while True:
            try:
                await replicator.submit(EntryKind.DDL, (ddl,))
                break
            except ApiError as exc:
                if exc.code in ("fenced", "shutting_down"):
                    return
                log.warning("bootstrap_retry", error=exc.message)
                await asyncio.sleep(0.5)
    replicator.events.emit("bootstrap", "created the demo tables users and products through the replicated log")
