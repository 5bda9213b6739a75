""":8001–:8005 — timestamp, metrics, Cabinet and SEER services of the old contract.

They are views over the same in-process objects as the gateway, so every port
tells the same story at the same moment.
"""

from __future__ import annotations

from aiohttp import web

from ..core.outcomes import ApiError
from ..service import Coordinator
from .common import COORD, health_handler, json_response, make_app, read_json


def _app(coord: Coordinator, service: str, health: bool = True) -> web.Application:
    app = make_app(coord.cfg.coordinator.max_body_bytes)
    app[COORD] = coord
    if health:
        app.router.add_get("/health", health_handler(service))
    return app


def timestamp_app(coord: Coordinator, server_id: int) -> web.Application:
    parity = 1 if server_id == 1 else 0

    async def timestamp(request: web.Request) -> web.Response:
        value = await coord.replicator.next_timestamp(parity)
        return json_response({"timestamp": value, "server_id": server_id})

    async def health(_request: web.Request) -> web.Response:
        # As the original: which server this is and its counter (the last value handed out).
        return json_response({"status": "healthy", "service": f"timestamp-{server_id}", "server_id": server_id,
                              "current_counter": coord.replicator.alloc.last})

    app = _app(coord, f"timestamp-{server_id}", health=False)
    app.router.add_get("/health", health)
    app.router.add_get("/timestamp", timestamp)
    return app


def metrics_app(coord: Coordinator) -> web.Application:
    async def all_metrics(_request: web.Request) -> web.Response:
        return json_response({"replicas": coord.replica_metrics(), "master_timestamp": coord.replicator.commit_ts})

    async def one(request: web.Request) -> web.Response:
        rid = request.match_info["replica_id"]
        for m in coord.replica_metrics():
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
        return json_response(coord.views.quorum())

    app = _app(coord, "cabinet")
    app.router.add_post("/select-quorum", select_quorum)
    return app


def seer_app(coord: Coordinator) -> web.Application:
    async def elect_leader(request: web.Request) -> web.Response:
        """Dry run: who SEER would elect now, and why every other replica would not."""
        data = await read_json(request, required=False)
        exclude = data.get("exclude_replicas") or []
        if not isinstance(exclude, list) or not all(isinstance(x, str) for x in exclude):
            raise ApiError(400, "bad_field", "field 'exclude_replicas' must be a list of replica ids")
        body = coord.views.election(exclude)
        if body["leader_id"] is None:
            del body["leader_id"]
            raise ApiError(503, "no_eligible_leader", f"no replica is eligible: {body['reason']}", **body)
        return json_response(body)

    app = _app(coord, "seer")
    app.router.add_post("/elect-leader", elect_leader)
    return app
