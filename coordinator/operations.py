"""Control tasks: short round trips on their own connections, concurrent with the appliers.

Probes and epoch compare-and-sets (recovery, failover), log reads (recovery), the quick
"is the leader really gone?" probe, ``read_only``, and restarting an applier. Each runs
as its own task with its own timeouts and reports one result back to the core; none
decides anything.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import structlog

from . import mysqlio, schema
from .core import actions as A
from .core.messages import Cause, Down, FencedOut, Ok, Result, SqlFailed
from .errors import Fenced, ReplicaDown, StatementError

log = structlog.get_logger("coordinator.operations")

READ_ONLY_TIMEOUT_S = 1.0


class Operations:
    """Runs control tasks; owns no connection beyond the one each task opens and closes."""

    def __init__(self, endpoint: Callable[[str], mysqlio.Endpoint], schema_name: str, database: str,
                 query_timeout_s: float, restart_applier: Callable[[str], Awaitable[None]]) -> None:
        self.endpoint = endpoint
        self.schema = schema_name
        self.db = database
        self.t = query_timeout_s
        self.restart_applier = restart_applier

    async def run(self, task: A.ControlTask) -> Result:
        try:
            if isinstance(task, A.RestartApplier):
                await self.restart_applier(task.rid)
                return Ok()
            if isinstance(task, A.ProbeLeader):
                ep = self.endpoint(task.rid)
                quick = mysqlio.Endpoint(ep.host, ep.port, ep.user, ep.password, task.timeout_s, task.timeout_s)
                return await self._with(quick, None, lambda c: mysqlio.fetch(c, "SELECT 1", task.timeout_s))
            if isinstance(task, A.SetReadOnly):
                ep = self.endpoint(task.rid)
                quick = mysqlio.Endpoint(ep.host, ep.port, ep.user, ep.password, READ_ONLY_TIMEOUT_S,
                                         READ_ONLY_TIMEOUT_S)
                sql = f"SET GLOBAL read_only={'ON' if task.on else 'OFF'}"
                return await self._with(quick, None, lambda c: mysqlio.run(c, sql, READ_ONLY_TIMEOUT_S))
            ep = self.endpoint(task.rid)
            if isinstance(task, A.Probe):
                return await self._with(ep, None, self._probe)
            if isinstance(task, A.BumpEpoch):
                return await self._with(ep, None, lambda c: self._bump(c, task))
            if isinstance(task, A.ReadLog):
                return await self._with(ep, None, lambda c: schema.read_log(c, self.schema, task.after, task.limit,
                                                                            self.t))
            if isinstance(task, A.CheckCommitted):
                return await self._with(ep, None, lambda c: self._committed(c, task))
        except ReplicaDown as exc:
            return Down(exc.cause, str(exc))
        except StatementError as exc:
            return SqlFailed(exc.errno, exc.message)
        except Fenced as exc:
            return FencedOut(str(exc))
        except Exception as exc:  # a bug: report it as a failure of this task, loudly
            log.exception("control_task_error", task=repr(task))
            return Down(Cause.INTERNAL, repr(exc))
        raise AssertionError(f"unknown control task {task!r}")

    async def _with(self, ep: mysqlio.Endpoint, db: str | None, work: Callable[[Any], Awaitable[Any]]) -> Ok:
        conn = None
        try:
            conn = await mysqlio.connect(ep, db)
            return Ok(await work(conn))
        finally:
            mysqlio.drop(conn)

    async def _probe(self, conn: Any) -> Any:
        await schema.ensure(conn, self.schema, self.db, self.t)  # no db: it may not exist yet
        return await schema.read_state(conn, self.schema, self.t)

    async def _committed(self, conn: Any, task: A.CheckCommitted) -> bool:
        """End the in-doubt transaction's connection (waiting until the server finished it, one
        way or the other), then look for its log row: only then is "absent" an answer."""
        if task.thread_id is not None:
            await mysqlio.kill_quietly(conn, task.thread_id, self.t)
        return task.ts in await schema.present(conn, self.schema, (task.ts,), self.t)

    async def _bump(self, conn: Any, task: A.BumpEpoch) -> Any:
        await schema.bump_epoch(conn, self.schema, task.epoch, task.leader, self.t, expect_at_most=task.expect_at_most)
        return await schema.read_state(conn, self.schema, self.t)
