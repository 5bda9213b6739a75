"""``POST /admin/reset``: clear every user table, the log and the timestamps on all replicas.

All replicas must be available (else 503 naming them): a reset that skipped one would
leave it holding data the others forgot. The pipeline is drained and the appliers are
stopped while the servers are cleared; then timestamps restart from 1. A replica whose
clearing failed part-way is marked for a rebuild, and the answer says so.
"""

from __future__ import annotations

import asyncio
from typing import Any

from . import mysqlio
from .core.outcomes import ApiError
from .deadline import Budget
from .errors import Fenced, ReplicaDown, StatementError


class Reset:
    """Callable: one reset at a time (its lock is its only state)."""

    def __init__(self, replicator: Any, cfg: Any) -> None:
        self.r = replicator
        self.cfg = cfg
        self._lock = asyncio.Lock()

    async def __call__(self) -> dict[str, Any]:
        r = self.r
        if self._lock.locked():
            raise ApiError(409, "reset_in_progress", "a reset is already running")
        async with self._lock:
            if r.core.st.failover is not None:
                raise ApiError(503, "busy", "a failover is in progress; retry the reset shortly")
            down = [rs.name for rs in r.replicas.values() if not rs.available]
            if down:
                raise ApiError(503, "replica_unavailable",
                               f"reset needs every replica; unavailable: {', '.join(down)} — start them first",
                               unavailable=down)
            if not r.active:
                raise ApiError(503, "not_ready", "the coordinator is not accepting writes; cannot reset now")
            try:
                await r.quiesce(Budget(self.cfg.replication.write_timeout_s))
            except ApiError:
                r.core.activate()
                raise
            await r.stop_appliers()
            cleared, failed = await self._clear_all()
            r.core.restart_empty(list(failed))
            r.start_appliers()
            r.events.emit("reset", f"reset cleared {len(cleared)} replicas; next timestamp is 1",
                          cleared=sorted(cleared), failed=failed)
            if failed:
                raise ApiError(503, "reset_partial", "reset failed on " + ", ".join(
                    r.replicas[x].name for x in failed) + "; they need a rebuild", failed=failed)
            return {"success": True, "message": "All data cleared; timestamps reset",
                    "tables": sorted({tb for v in cleared.values() for tb in v}), "replicas": sorted(cleared),
                    "next_timestamp": 1}

    async def _clear_all(self) -> tuple[dict[str, list[str]], dict[str, str]]:
        r = self.r
        t = self.cfg.mysql.query_timeout_s
        db, sch, epoch = self.cfg.coordinator.database, r.schema, r.epoch
        cleared: dict[str, list[str]] = {}
        failed: dict[str, str] = {}
        for rid in r.replicas:
            conn = None
            try:
                conn = await mysqlio.connect(r.endpoint(rid), db)
                _, rows = await mysqlio.fetch(conn, "SHOW FULL TABLES WHERE Table_type = 'BASE TABLE'", t)
                tables = [row[0] for row in rows]
                stmts = ["SET FOREIGN_KEY_CHECKS=0"] + [f"TRUNCATE TABLE `{tb}`" for tb in tables] + [
                    "SET FOREIGN_KEY_CHECKS=1", f"DELETE FROM `{sch}`.log",
                    f"UPDATE `{sch}`.state SET applied_ts=0, applied_epoch={epoch}, ts_mark=0, "
                    f"ddl_pending=0, log_floor=0, epoch_seen={epoch} WHERE id=1"]
                await mysqlio.run(conn, ";".join(stmts), t + 30)
                cleared[rid] = tables
            except (ReplicaDown, StatementError, Fenced) as exc:
                failed[rid] = str(exc) or type(exc).__name__
            finally:
                mysqlio.drop(conn)
        return cleared, failed
