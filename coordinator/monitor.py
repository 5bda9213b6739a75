"""The health poller: one task and one connection per replica, every ~200 ms.

Each poll reads the replica's applied position (a real query, so a hung server
is caught, not just an open socket) under a short timeout; the pure
HealthTracker decides what the outcomes mean. A hung server costs its own task
one timeout; nothing else waits on it, and no lock is held across I/O.
"""

from __future__ import annotations

import asyncio
import errno
import time
from collections.abc import Callable
from typing import Any

import structlog

from . import mysqlio
from .config import Config
from .errors import ReplicaDown, StatementError
from .health import HealthTracker, Outcome

log = structlog.get_logger("coordinator.monitor")


def classify_failure(exc: BaseException) -> Outcome:
    text = str(exc).lower()
    if isinstance(exc, TimeoutError) or "timeout" in text or "timed out" in text:
        return Outcome.TIMEOUT
    if isinstance(exc, ConnectionRefusedError) or "refused" in text or "2003" in text or "reset" in text \
            or "lost connection" in text or "broken pipe" in text or getattr(exc, "errno", None) == errno.ECONNREFUSED:
        return Outcome.REFUSED
    return Outcome.ERROR


class Monitor:
    def __init__(self, cfg: Config, endpoints: Callable[[str], mysqlio.Endpoint], schema: str,
                 on_change: Callable[[str, bool, HealthTracker], None]) -> None:
        self.cfg = cfg
        self.endpoint = endpoints
        self.schema = schema
        self.on_change = on_change
        m = cfg.monitor
        self.trackers = {r.id: HealthTracker(misses_allowed=m.missed_polls_unhealthy) for r in cfg.replicas}
        self.polled_ts: dict[str, int] = {r.id: 0 for r in cfg.replicas}
        self.polled_at: dict[str, float] = {}  # wall time of each replica's last poll result
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        for rid in self.trackers:
            self._tasks.append(asyncio.create_task(self._poll_loop(rid), name=f"monitor-{rid}"))

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    async def _poll_loop(self, rid: str) -> None:
        interval = self.cfg.monitor.poll_interval_ms / 1000
        timeout = self.cfg.monitor.poll_timeout_ms / 1000
        conn: Any = None
        sql = f"SELECT applied_ts FROM `{self.schema}`.state WHERE id=1"
        while True:
            started = time.perf_counter()
            try:
                if conn is None:
                    ep = self.endpoint(rid)
                    conn = await mysqlio.connect(
                        mysqlio.Endpoint(ep.host, ep.port, ep.user, ep.password, timeout, timeout))
                _, rows = await mysqlio.fetch(conn, sql, timeout)
                if rows:
                    self.polled_ts[rid] = int(rows[0][0])
                self._feed(rid, Outcome.OK, (time.perf_counter() - started) * 1000)
            except asyncio.CancelledError:
                mysqlio.drop(conn)
                raise
            except StatementError as exc:  # schema not there yet: reachable all the same
                self._feed(rid, Outcome.OK, (time.perf_counter() - started) * 1000, str(exc))
            except (ReplicaDown, OSError, TimeoutError) as exc:
                mysqlio.drop(conn)
                conn = None
                self._feed(rid, classify_failure(exc), None, str(exc))
            except Exception as exc:  # a bug must not kill the poller
                log.exception("poll_error", replica=rid)
                mysqlio.drop(conn)
                conn = None
                self._feed(rid, Outcome.ERROR, None, repr(exc))
            elapsed = time.perf_counter() - started
            await asyncio.sleep(max(0.0, interval - elapsed))

    def _feed(self, rid: str, outcome: Outcome, latency_ms: float | None, error: str = "") -> None:
        tr = self.trackers[rid]
        self.polled_at[rid] = time.time()
        changed = tr.observe(time.monotonic(), outcome, latency_ms, error)
        if changed is not None:
            self.on_change(rid, changed, tr)
