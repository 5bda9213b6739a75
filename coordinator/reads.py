"""Reads by consistency level, through per-replica pools (never an applier's connection).

``strong`` reads the leader; ``session`` any replica that has applied the
client's ``min_timestamp`` (waiting briefly for one); ``eventual`` the
lowest-latency healthy follower within the lag bound. The choice is a pure
function; the pools and the waiting are the shell around it.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import decimal
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from . import mysqlio
from .core.outcomes import ApiError
from .deadline import Budget, wait_until
from .errors import ReplicaDown, StatementError, statement_api_error

CONSISTENCY = ("strong", "session", "eventual")


@dataclass(frozen=True)
class Candidate:
    id: str
    available: bool
    applied_ts: int
    latency_ms: float | None
    lag_ms: float


def choose(consistency: str, leader: str, candidates: Mapping[str, Candidate], min_ts: int,
           max_lag_ms: float) -> str | None:
    """The replica to read from, or None when a session read must wait for one."""
    lead = candidates.get(leader)
    if consistency == "strong":
        return leader
    followers = sorted(
        (c for c in candidates.values() if c.id != leader and c.available),
        key=lambda c: (c.latency_ms is None, c.latency_ms or 0.0, c.id),
    )
    if consistency == "session":
        for c in followers:
            if c.applied_ts >= min_ts:
                return c.id
        if lead is not None and lead.applied_ts >= min_ts:
            return leader
        return None
    for c in followers:
        if c.lag_ms <= max_lag_ms:
            return c.id
    return leader


def to_json_value(v: Any) -> Any:
    """Rows as JSON: ISO-8601 datetimes, DECIMAL as exact strings, binary as base64."""
    if isinstance(v, (datetime.datetime, datetime.date, datetime.time)):
        return v.isoformat()
    if isinstance(v, datetime.timedelta):
        return str(v)
    if isinstance(v, decimal.Decimal):
        return str(v)
    if isinstance(v, (bytes, bytearray)):
        try:
            return bytes(v).decode("utf-8")
        except UnicodeDecodeError:
            return "base64:" + base64.b64encode(bytes(v)).decode()
    if isinstance(v, set):
        return sorted(v)
    return v


class Pool:
    """A small connection pool: bounded, every acquire and query has a timeout,
    and a connection that failed a round trip is dropped, never reused."""

    def __init__(self, ep: mysqlio.Endpoint, db: str, size: int, init: list[str]) -> None:
        self.ep, self.db, self.init = ep, db, init
        self._idle: list[Any] = []
        self._sem = asyncio.Semaphore(size)

    async def query(self, sql: str, timeout_s: float) -> tuple[list[str], list[tuple[Any, ...]]]:
        try:
            async with asyncio.timeout(timeout_s):
                await self._sem.acquire()
        except TimeoutError:
            raise ReplicaDown("read pool exhausted") from None
        conn = None
        try:
            conn = self._idle.pop() if self._idle else await mysqlio.connect(self.ep, self.db, self.init)
            result = await mysqlio.fetch(conn, sql, timeout_s)
            self._idle.append(conn)
            conn = None
            return result
        except StatementError:
            if conn is not None:
                self._idle.append(conn)
                conn = None
            raise
        finally:
            if conn is not None:
                mysqlio.drop(conn)
            self._sem.release()

    def close(self) -> None:
        for c in self._idle:
            mysqlio.drop(c)
        self._idle.clear()


class ReadRouter:
    """Owns one read pool per replica (never an applier's connection); reads the core's
    replica positions through the replicator to choose where each read goes."""

    def __init__(self, replicator: Any, cfg: Any) -> None:
        self.r = replicator
        self.cfg = cfg
        init = [
            "SET SESSION tx_read_only=1",
            f"SET SESSION max_statement_time={cfg.mysql.max_statement_time_s:g}",
        ]
        self.pools = {
            rid: Pool(replicator.endpoint(rid), cfg.coordinator.database, cfg.mysql.read_pool_size, init)
            for rid in replicator.replicas
        }

    def candidates(self) -> dict[str, Candidate]:
        now_us = time.time_ns() // 1000
        out = {}
        for rid, rs in self.r.replicas.items():
            lag_ms = 0.0
            if rs.applied_ts < self.r.log.last_ts:
                nxt = self.r.log.after(rs.applied_ts, 1)
                lag_ms = (now_us - nxt[0].time_us) / 1000 if nxt else float("inf")
            out[rid] = Candidate(rid, rs.available, rs.applied_ts, rs.ack_ms, lag_ms)
        return out

    async def target(self, consistency: str, min_ts: int) -> str:
        """The replica a read at ``consistency`` goes to (both front ends ask here)."""
        if consistency not in CONSISTENCY:
            raise ApiError(400, "bad_consistency", f"consistency must be one of {', '.join(CONSISTENCY)}")
        leader = self.r.leader_id
        max_lag = self.cfg.reads.eventual_max_lag_ms
        target = choose(consistency, leader, self.candidates(), min_ts, max_lag)
        if target is None:  # a session read waits briefly for a replica that applied min_ts
            def found() -> bool:
                nonlocal target
                target = choose(consistency, leader, self.candidates(), min_ts, max_lag)
                return target is not None

            await wait_until(found, Budget(self.cfg.reads.session_wait_ms / 1000), 0.005)
        return target or leader

    async def read(self, sql: str, consistency: str, min_ts: int) -> dict[str, Any]:
        target = await self.target(consistency, min_ts)
        rs = self.r.replicas[target]
        try:
            cols, rows = await self.pools[target].query(sql, self.cfg.mysql.query_timeout_s)
        except StatementError as exc:
            raise statement_api_error(exc, executed_on=rs.name) from None
        except ReplicaDown as exc:
            raise ApiError(503, "replica_unavailable", f"{rs.name} could not serve the read: {exc}") from None
        data = [{c: to_json_value(v) for c, v in zip(cols, row)} for row in rows]
        return {
            "success": True, "message": "Read successful", "data": data, "rows_affected": len(data),
            "executed_on": rs.name, "consistency": consistency, "replica_timestamp": rs.applied_ts,
        }

    def close(self) -> None:
        for p in self.pools.values():
            p.close()
