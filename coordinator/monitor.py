"""The health poller: one task and one connection per replica, every ~200 ms.

Each poll reads the replica's applied position (a real query, so a hung server is
caught, not just an open socket) under a short timeout and steps the outcome into the
core (``Poll``), whose ``HealthTracker`` decides what it means: a refused connection is
unhealthy at once, timeouts only after a few misses. A hung server costs its own task one
timeout; nothing else waits on it, and no lock is held across I/O.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import structlog

from . import mysqlio
from .config import Config
from .core.health import Outcome
from .core.messages import Cause, Poll
from .errors import ReplicaDown, StatementError

log = structlog.get_logger("coordinator.monitor")

_OUTCOME = {Cause.REFUSED: Outcome.REFUSED, Cause.TIMEOUT: Outcome.TIMEOUT, Cause.IO: Outcome.ERROR,
            Cause.INTERNAL: Outcome.ERROR}


class Monitor:
    """Owns one poll task and connection per replica; ``polled_at`` is read by the views."""

    def __init__(self, cfg: Config, endpoints: Callable[[str], mysqlio.Endpoint], schema: str,
                 step: Callable[[Poll], None]) -> None:
        self.cfg = cfg
        self.endpoint = endpoints
        self.schema = schema
        self.step = step
        self.polled_at: dict[str, float] = {}  # wall time of each replica's last poll result
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        for r in self.cfg.replicas:
            self._tasks.append(asyncio.create_task(self._poll_loop(r.id), name=f"monitor-{r.id}"))

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
                await mysqlio.fetch(conn, sql, timeout)
                self._feed(Poll(rid, Outcome.OK, (time.perf_counter() - started) * 1000))
            except asyncio.CancelledError:
                mysqlio.drop(conn)
                raise
            except StatementError as exc:  # schema not there yet: reachable all the same
                self._feed(Poll(rid, Outcome.OK, (time.perf_counter() - started) * 1000, str(exc)))
            except ReplicaDown as exc:
                conn = None
                self._feed(Poll(rid, _OUTCOME[exc.cause], None, str(exc)))
            except Exception as exc:  # a bug must not kill the poller
                log.exception("poll_error", replica=rid)
                mysqlio.drop(conn)
                conn = None
                self._feed(Poll(rid, Outcome.ERROR, None, repr(exc)))
            elapsed = time.perf_counter() - started
            await asyncio.sleep(max(0.0, interval - elapsed))

    def _feed(self, poll: Poll) -> None:
        self.polled_at[poll.rid] = time.time()
        self.step(poll)
