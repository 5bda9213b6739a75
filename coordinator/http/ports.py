""":8001–:8005 — timestamp, metrics, Cabinet and SEER services of the old contract.

They are views over the same in-process objects as the gateway, so every port
tells the same story at the same moment.
"""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from .. import cabinet
from ..errors import ApiError
from ..service import Coordinator
from .common import health_handler, json_response, make_app, read_json
from .gateway import COORD


def _app(coord: Coordinator, service: str) -> web.Application:
    app = make_app(coord.cfg.coordinator.max_body_bytes)
    app[COORD] = coord
    app.router.add_get("/health", health_handler(service))
    return app


def timestamp_app(coord: Coordinator, server_id: int) -> web.Application:
    parity = 1 if server_id == 1 else 0

    async def timestamp(request: web.Request) -> web.Response:
        value = await coord.replicator.next_timestamp(parity)
        return json_response({"timestamp": value, "server_id": server_id})

    app = _app(coord, f"timestamp-{server_id}")
    app.router.add_get("/timestamp", timestamp)
    return app


def replica_metrics(coord: Coordinator) -> list[dict[str, Any]]:
    r = coord.replicator
    weights = cabinet.weights_for(r.rule, r.ranking)
    candidates = coord.reads.candidates()
    out = []
    for rid, rs in r.replicas.items():
        c = candidates[rid]
        out.append({
            "replica_id": rid,
            "name": rs.cfg.name,
            "latency_ms": round(rs.ack_ms, 3) if rs.ack_ms is not None else None,
            "replication_lag": max(0, r.log.last_ts - rs.applied_ts),
            "lag_ms": round(c.lag_ms, 1) if c.lag_ms != float("inf") else None,
            "uptime_seconds": round(time.time() - coord.started_at, 1) if rs.connected else 0.0,
            "crash_count": 0,
            "is_healthy": rs.available,
            "is_master": rid == r.leader_id,
            "last_updated": time.time(),
            "applied_timestamp": rs.applied_ts,
            "weight": float(weights.get(rid, 0)),
            "diverged": rs.diverged,
            "batches": rs.batches,
            "entries_applied": rs.entries_applied,
            "busy_ms": round(rs.busy_ms, 1),
            "last_error": rs.last_error,
        })
    return out


def metrics_app(coord: Coordinator) -> web.Application:
    async def all_metrics(_request: web.Request) -> web.Response:
        return json_response({"replicas": replica_metrics(coord), "master_timestamp": coord.replicator.commit_ts})

    async def one(request: web.Request) -> web.Response:
        rid = request.match_info["replica_id"]
        for m in replica_metrics(coord):
            if rid in (m["replica_id"], m["name"]):
                return json_response(m)
        raise ApiError(404, "unknown_replica", f"no replica '{rid}' (known: {', '.join(coord.replicator.replicas)})")

    app = _app(coord, "metrics")
    app.router.add_get("/metrics", all_metrics)
    app.router.add_get("/metrics/{replica_id}", one)
    return app


def cabinet_app(coord: Coordinator) -> web.Application:
    async def select_quorum(request: web.Request) -> web.Response:
        data = await read_json(request, required=False)
        op = data.get("operation", "write")
        if op not in ("write", "read"):
            raise ApiError(400, "bad_operation", "operation must be 'write' or 'read'")
        r = coord.replicator
        weights = cabinet.weights_for(r.rule, r.ranking)
        members = cabinet.cabinet_members(r.rule, r.ranking)
        return json_response({
            "quorum": members,
            "quorum_size": len(members),
            "total_replicas": len(r.replicas),
            "weights": {k: float(v) for k, v in weights.items()},
            "threshold": float(r.rule.threshold),
            "mode": r.rule.mode,
            "failure_threshold": r.rule.t,
            "ratio": float(r.rule.ratio),
            "ranking": r.ranking,
        })

    app = _app(coord, "cabinet")
    app.router.add_post("/select-quorum", select_quorum)
    return app


def seer_app(coord: Coordinator) -> web.Application:
    return _app(coord, "seer")
