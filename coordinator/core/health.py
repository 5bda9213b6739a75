"""Replica health as a pure state machine over poll outcomes.

A refused connection means the server is gone: unhealthy at once. A timeout may
be a hiccup, so only ``misses_allowed`` consecutive misses make a replica
unhealthy (a hung server — SIGSTOP, a cut cable — is found after a few polls).
Healthy → unhealthy counts a crash; uptime restarts when it becomes healthy.
Time is a parameter, so tests drive it without clocks or sleeps.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from enum import Enum


class Outcome(Enum):
    OK = "ok"
    REFUSED = "refused"  # connection refused / reset: the server process is gone
    TIMEOUT = "timeout"  # no answer in time: hung server or network
    ERROR = "error"  # any other failure (counts like a timeout)


@dataclass
class HealthTracker:
    misses_allowed: int = 3
    crash_window_s: float = 300.0
    healthy: bool = False
    misses: int = 0
    since: float = 0.0  # when the current state began
    crash_count: int = 0
    crashes: deque[float] = field(default_factory=deque)
    latency_ms: float | None = None  # smoothed poll round trip
    last_latency_ms: float | None = None
    last_error: str = ""
    last_ok: float = 0.0  # time of the last successful poll (failure detection delay)

    def observe(self, now: float, outcome: Outcome, latency_ms: float | None = None,
                error: str = "") -> bool | None:
        """Feed one poll result; returns the new health when it changed, else None."""
        if outcome is Outcome.OK:
            self.misses = 0
            self.last_ok = now
            if latency_ms is not None:
                self.last_latency_ms = latency_ms
                self.latency_ms = latency_ms if self.latency_ms is None else 0.7 * self.latency_ms + 0.3 * latency_ms
            if not self.healthy:
                self.healthy, self.since, self.last_error = True, now, ""
                return True
            return None
        self.last_error = error or outcome.value
        self.misses += 1
        if self.healthy and (outcome is Outcome.REFUSED or self.misses >= self.misses_allowed):
            self.healthy, self.since = False, now
            self.crash_count += 1
            self.crashes.append(now)
            return False
        return None

    def uptime_s(self, now: float) -> float:
        return now - self.since if self.healthy else 0.0

    def recent_crashes(self, now: float) -> int:
        while self.crashes and self.crashes[0] < now - self.crash_window_s:
            self.crashes.popleft()
        return len(self.crashes)
