"""``POST /admin/reset``: clear every user table, the log and the timestamps on all replicas.

All replicas must be available (else 503 naming them): a reset that skipped one would
leave it holding data the others forgot. The core is told first (``begin_reset``: no
writes, no failover may start), the pipeline is drained and the appliers are stopped; the
preconditions are checked again after each of those awaits, and every replica must accept
our epoch before the first is cleared (a fenced coordinator clears nothing). Then the
servers are cleared and timestamps restart from 1. A replica whose clearing failed part-way
is marked for a rebuild, and the answer says so.
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
            self._check(r)
            r.core.begin_reset()  # from here no failover starts and no write is taken
            stopped = False
            try:
                await r.quiesce(Budget(self.cfg.replication.write_timeout_s))
                self._check(r)  # each await may have changed the world: a replica lost, a fence
                await r.stop_appliers()
                stopped = True
                self._check(r)
                conns = await self._claim_all()
            except BaseException:  # nothing was cleared: undo, whatever interrupted us
                if stopped:
                    r.start_appliers()
                r.core.end_reset()
                raise
            cleared, failed = await self._clear_all(conns)
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

    @staticmethod
    def _check(r: Any) -> None:
        """The reset's preconditions, checked before it starts and again after every await
        until it clears the first server: every replica available, the coordinator not fenced."""
        down = [rs.name for rs in r.replicas.values() if not rs.available]
        if down:
            raise ApiError(503, "replica_unavailable",
                           f"reset needs every replica; unavailable: {', '.join(down)} — start them first",
                           unavailable=down)
        if r.core.st.fenced:
            raise ApiError(503, "fenced", "another coordinator holds a newer epoch; this one cannot reset")
        if not r.active and not r.core.st.resetting:
            raise ApiError(503, "not_ready", "the coordinator is not accepting writes; cannot reset now")

    def _claim(self, also: str = "") -> str:
        """Our epoch on a replica's state row (with ``also``), as every batch stores it: its CHECK
        (epoch_seen = epoch) fails where a newer coordinator's epoch is stored (``Fenced``)."""
        return (f"UPDATE `{self.r.schema}`.state SET epoch=GREATEST(epoch, {self.r.epoch}), "
                f"epoch_seen={self.r.epoch}{also} WHERE id=1")

    async def _claim_all(self) -> dict[str, Any]:
        """A connection to every replica, each of which accepted our epoch — before any is
        cleared: a reset that found a newer coordinator only on its third replica would have
        emptied two of that coordinator's (I5). Raises ApiError (nothing cleared) otherwise."""
        r = self.r
        t = self.cfg.mysql.query_timeout_s
        conns: dict[str, Any] = {}
        rid = ""
        claimed = False
        try:
            for rid in r.replicas:
                conns[rid] = await mysqlio.connect(r.endpoint(rid), self.cfg.coordinator.database)
                await mysqlio.run(conns[rid], self._claim(), t)
            claimed = True
            return conns
        except Fenced:
            r.core.fenced_on(rid)
            raise ApiError(503, "fenced", f"{r.replicas[rid].name} holds a newer coordinator's epoch; this one "
                           "is fenced off and cleared nothing") from None
        except (ReplicaDown, StatementError) as exc:
            raise ApiError(503, "replica_unavailable", f"reset needs every replica; {r.replicas[rid].name}: {exc}; "
                           "nothing was cleared", unavailable=[r.replicas[rid].name]) from None
        finally:
            if not claimed:
                for c in conns.values():
                    mysqlio.drop(c)

    async def _clear_all(self, conns: dict[str, Any]) -> tuple[dict[str, list[str]], dict[str, str]]:
        """Clear each replica on its claimed connection: the state row first (the epoch check again:
        the round trip stops there, before any TRUNCATE, on a server a newer coordinator reached
        since), then every user table and the log."""
        r = self.r
        t = self.cfg.mysql.query_timeout_s
        sch, epoch = r.schema, r.epoch
        cleared: dict[str, list[str]] = {}
        failed: dict[str, str] = {}
        for rid, conn in conns.items():
            try:
                _, rows = await mysqlio.fetch(conn, "SHOW FULL TABLES WHERE Table_type = 'BASE TABLE'", t)
                tables = [row[0] for row in rows]
                stmts = [self._claim(f", applied_ts=0, applied_epoch={epoch}, ts_mark=0, ddl_pending=0, log_floor=0"),
                         "SET FOREIGN_KEY_CHECKS=0"] + [f"TRUNCATE TABLE `{tb}`" for tb in tables] + [
                    "SET FOREIGN_KEY_CHECKS=1", f"DELETE FROM `{sch}`.log"]
                await mysqlio.run(conn, ";".join(stmts), t + 30)
                cleared[rid] = tables
            except (ReplicaDown, StatementError, Fenced) as exc:
                failed[rid] = str(exc) or type(exc).__name__
            finally:
                mysqlio.drop(conn)
        return cleared, failed
