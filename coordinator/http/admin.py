"""Admin endpoints on the gateway: process and network faults through the control
backend, failover and switchover, start/stop of the master (DESIGN §4)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiohttp import web

from ..control import ControlError
from ..errors import ApiError
from ..service import Coordinator
from .common import field, json_response, read_json

ACTIONS = ("stop", "start", "kill", "pause", "resume")


def _coord(request: web.Request) -> Coordinator:
    from .gateway import COORD
    return request.app[COORD]


async def _control(call: Any) -> dict[str, Any]:
    try:
        return await call
    except ControlError as exc:
        raise ApiError(exc.status, exc.code, exc.message) from None


def _replica_id(coord: Coordinator, ident: str) -> str:
    try:
        return coord.cfg.replica(ident).id
    except KeyError:
        raise ApiError(404, "unknown_replica",
                       f"no replica '{ident}' (known: {', '.join(r.id for r in coord.cfg.replicas)})") from None


async def replica_action(request: web.Request) -> web.Response:
    coord = _coord(request)
    rid = _replica_id(coord, request.match_info["replica_id"])
    action = request.match_info["action"]
    if action not in ACTIONS:
        raise ApiError(404, "unknown_action", f"unknown action '{action}' (one of {', '.join(ACTIONS)})")
    result = await _control(getattr(coord.control, action)(rid))
    coord.events.emit("control", f"{action} {coord.cfg.replica(rid).name} via the {coord.control.name} backend",
                      replica=rid, action=action)
    return json_response({"success": True, **result})


async def replica_fault(request: web.Request) -> web.Response:
    coord = _coord(request)
    rid = _replica_id(coord, request.match_info["replica_id"])
    data = await read_json(request, required=False)
    delay = field(data, "delay_ms", int)
    partition = field(data, "partition", bool)
    if delay is not None and not 0 <= delay <= 60_000:
        raise ApiError(400, "bad_field", "field 'delay_ms' must be between 0 and 60000")
    result = await _control(coord.control.fault(rid, delay, partition))
    what = "healed" if delay is None and partition is None else f"delay_ms={delay} partition={partition}"
    coord.events.emit("fault", f"network fault on {coord.cfg.replica(rid).name}: {what}", replica=rid,
                      delay_ms=delay, partition=partition)
    return json_response({"success": True, **result})


async def trigger_failover(request: web.Request) -> web.Response:
    coord = _coord(request)
    data = await read_json(request, required=False)
    target = field(data, "new_leader", str)
    if target is not None:
        target = _replica_id(coord, target)
    result = await coord.failover.failover("planned switchover requested by an operator", target=target,
                                           planned=True)
    return json_response(result)


async def leader_info(request: web.Request) -> web.Response:
    return json_response(_coord(request).leader_info())


async def _wait(cond: Any, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


async def stop_master(request: web.Request) -> web.Response:
    """Stop the leader's server (clean shutdown) and answer once the failover finished."""
    coord = _coord(request)
    old = coord.replicator.leader_id
    await _control(coord.control.stop(old))
    coord.stopped_master = old
    name = coord.cfg.replica(old).name
    result = await coord.failover.failover(f"stop-master: {name} stopped by an operator", expected_leader=old)
    if result["new_leader_id"] == old:  # a concurrent failover may have moved it already; say what is true
        raise ApiError(503, "failover_failed", f"{name} was stopped but leadership did not move", **result)
    result["message"] = f"stopped {name}; {result['new_master']} is the new master"
    result["old_master"] = name
    return json_response(result)


async def start_master(request: web.Request) -> web.Response:
    """Start the stopped master again; it rejoins as a follower and catches up."""
    coord = _coord(request)
    rid = coord.stopped_master or coord.cfg.initial_leader.id
    result = await _control(coord.control.start(rid))
    r = coord.replicator
    rs = r.replicas[rid]
    target = r.commit_ts
    caught_up = await _wait(lambda: rs.available and rs.applied_ts >= target, 20.0)
    if caught_up and coord.stopped_master == rid:
        coord.stopped_master = None
    role = "leader" if rid == r.leader_id else "follower"
    message = (f"started {rs.cfg.name}; it rejoined as {role}" + (" and caught up" if caught_up else
               " and is still catching up"))
    return json_response({"success": True, "message": message, "started": rs.cfg.name, "replica_id": rid,
                          "role": role,
                          "caught_up": caught_up, "applied_timestamp": rs.applied_ts,
                          "current_master": r.leader.cfg.name, **{k: v for k, v in result.items() if k != "replica"}})


def setup(app: web.Application, guard: Any) -> None:
    app.router.add_post("/admin/replicas/{replica_id}/fault", guard(replica_fault))
    app.router.add_post("/admin/replicas/{replica_id}/{action}", guard(replica_action))
    app.router.add_post("/admin/trigger-failover", guard(trigger_failover))
    app.router.add_post("/admin/stop-master", guard(stop_master))
    app.router.add_post("/admin/start-master", guard(start_master))
    app.router.add_get("/admin/leader-info", guard(leader_info))
