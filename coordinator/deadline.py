"""One shrinking time budget per operation, and waiting for a condition within it.

Every shell wait that polls state (quiesce, a keyed retry waiting for the leader's log,
a session read waiting for a replica, start-master waiting for a catch-up, the end of
an old server connection) spends from a ``Budget`` handed down by its caller, so an
operation made of several waits never takes more than the budget it was given.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


class Budget:
    def __init__(self, seconds: float) -> None:
        self.until = time.monotonic() + seconds

    def left(self) -> float:
        return max(0.0, self.until - time.monotonic())

    @property
    def expired(self) -> bool:
        return time.monotonic() >= self.until


async def wait_until(cond: Callable[[], bool], budget: Budget, interval_s: float = 0.01) -> bool:
    """Poll ``cond`` until it holds (True) or the budget is spent (False)."""
    while not cond():
        left = budget.left()
        if left <= 0:
            return False
        await asyncio.sleep(min(interval_s, left))
    return True
