"""Keeping Python's cycle collector off the coordinator's long-lived objects.

Why: the in-memory log tail (``replication.memory_log_entries``, 200,000 entries by default) is
about three GC-tracked objects per entry, and every full (generation 2) collection walks all of
them: measured on this project's 2-core machine under mariadb-slap at 64 clients, full collections
took 80 ms with a small log and 510 ms with a full one — the whole coordinator frozen meanwhile,
every client waiting (the p99 spikes). Log entries hold no reference cycles; they are freed by
reference counting when the log trims them, so the cycle collector gains nothing by walking them.

How: after each full collection, everything that survived it is moved to the permanent generation
(``gc.freeze``), which later collections skip; so each full collection walks only what was promoted
since the last one. What survived a full collection was not garbage then; the cost is that a cycle
among frozen objects that becomes garbage later is not collected until the next refresh: every
``REFRESH_S`` (10 minutes) the frozen objects are handed back (``gc.unfreeze``) and the next full collection
walks everything once.

Who owns it: ``coordinator.__main__`` installs it once for the process (the GC is process-wide).
"""

from __future__ import annotations

import gc
import time
from typing import Any

# How long a cycle among frozen objects may wait to be collected, and so how often one full
# collection walks every object (~0.5 s with a full log on the 2-core machine).
REFRESH_S = 600.0


class GcPolicy:
    """Installed once per process (``install``); ``uninstall`` for tests."""

    def __init__(self, refresh_s: float = REFRESH_S) -> None:
        self.refresh_s = refresh_s
        self._refreshed = time.monotonic()

    def install(self) -> None:
        gc.collect()
        gc.freeze()  # what start-up built (modules, config, the object graph) is never garbage
        gc.callbacks.append(self._callback)

    def uninstall(self) -> None:
        if self._callback in gc.callbacks:
            gc.callbacks.remove(self._callback)
        gc.unfreeze()

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase != "stop" or info.get("generation") != 2:
            return
        now = time.monotonic()
        if now - self._refreshed >= self.refresh_s:
            self._refreshed = now
            gc.unfreeze()  # the next full collection walks everything once
        else:
            gc.freeze()
