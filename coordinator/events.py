"""State changes as data: one event per change, then a log line.

The dashboard, ``/admin/events`` and the structured log all read the same
events, so what an operator sees and what the log says cannot drift apart.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import structlog


class EventLog:
    def __init__(self, capacity: int = 1000) -> None:
        self._events: deque[dict[str, Any]] = deque(maxlen=capacity)
        self._seq = itertools.count(1)
        self._subscribers: set[asyncio.Queue[dict[str, Any]]] = set()
        self._log = structlog.get_logger("coordinator.events")
        self.on_emit: list[Callable[[dict[str, Any]], None]] = []

    def emit(self, kind: str, message: str, **fields: Any) -> dict[str, Any]:
        event = {"id": next(self._seq), "time": time.time(), "kind": kind, "message": message, **fields}
        self._events.append(event)
        self._log.info(message, kind=kind, **fields)
        for cb in self.on_emit:
            cb(event)
        for q in list(self._subscribers):
            if q.full():
                self._subscribers.discard(q)  # a stalled reader loses its feed, not our memory
            else:
                q.put_nowait(event)
        return event

    def recent(self, limit: int = 200, since_id: int = 0, kind: str | None = None) -> list[dict[str, Any]]:
        out = [e for e in self._events if e["id"] > since_id and (kind is None or e["kind"] == kind)]
        return out[-limit:] if limit > 0 else []

    def subscribe(self, maxsize: int = 1000) -> asyncio.Queue[dict[str, Any]]:
        q: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize)
        self._subscribers.add(q)
        return q

    def unsubscribe(self, q: asyncio.Queue[dict[str, Any]]) -> None:
        self._subscribers.discard(q)
