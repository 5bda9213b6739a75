"""``/admin/*`` on the gateway: faults and processes through the control backend, failover
and switchover, start/stop of the master, quorum mode, reset, events, leader info.

Every endpoint answers only on the admin address, and with the bearer token when one is
set — a wrapper (``guard``), not a middleware, so the client hot path pays nothing for it.
Handlers translate; the work is the service's.
"""

from __future__ import annotations

import hmac
from typing import Any

from aiohttp import web

from ..control import ControlError
from ..core import cabinet
from ..core.outcomes import ApiError
from ..service import Coordinator
from .common import COORD, Handler, field, json_response, read_json

ACTIONS = ("stop", "start", "kill", "pause", "resume")


def guard(handler: Handler) -> Handler:
    async def guarded(request: web.Request) -> web.StreamResponse:
        coord = request.app[COORD]
        allowed = {coord.cfg.coordinator.admin_host}
        if coord.cfg.coordinator.admin_host in ("127.0.0.1", "localhost"):
            allowed |= {"127.0.0.1", "::1"}
        if "0.0.0.0" not in allowed and request.remote not in allowed:
            raise ApiError(403, "admin_forbidden", "admin endpoints only answer on the admin address")
        token = coord.cfg.coordinator.admin_token
        if token:
            got = request.headers.get("Authorization", "")
            if not hmac.compare_digest(got.encode("utf-8", "surrogateescape"), f"Bearer {token}".encode()):
                raise ApiError(401, "unauthorized", "admin endpoints need 'Authorization: Bearer <token>'")
        return await handler(request)

    return guarded


async def _control(call: Any) -> dict[str, Any]:
    try:
        result: dict[str, Any] = await call
        return result
    except ControlError as exc:
        raise ApiError(exc.status, exc.code, exc.message) from None


def _replica_id(coord: Coordinator, ident: str) -> str:
    try:
        return coord.cfg.replica(ident).id
    except KeyError:
        raise ApiError(404, "unknown_replica",
                       f"no replica '{ident}' (known: {', '.join(r.id for r in coord.cfg.replicas)})") from None


async def replica_action(request: web.Request) -> web.Response:
    coord = request.app[COORD]
    rid = _replica_id(coord, request.match_info["replica_id"])
    action = request.match_info["action"]
    if action not in ACTIONS:
        raise ApiError(404, "unknown_action", f"unknown action '{action}' (one of {', '.join(ACTIONS)})")
    result = await _control(getattr(coord.control, action)(rid))
    coord.events.emit("control", f"{action} {coord.cfg.replica(rid).name} via the {coord.control.name} backend",
                      replica=rid, action=action)
    return json_response({"success": True, **result})


async def replica_fault(request: web.Request) -> web.Response:
    coord = request.app[COORD]
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
    coord = request.app[COORD]
    data = await read_json(request, required=False)
    target = field(data, "new_leader", str)
    if target is not None:
        target = _replica_id(coord, target)
    result = await coord.failover.failover("planned switchover requested by an operator", target=target,
                                           planned=True)
    return json_response(result)


async def stop_master(request: web.Request) -> web.Response:
    """Stop the leader's server (clean shutdown) and answer once the failover finished."""
    coord = request.app[COORD]
    return json_response(await coord.failover.stop_master(lambda rid: _control(coord.control.stop(rid))))


async def start_master(request: web.Request) -> web.Response:
    """Start the stopped master again; it rejoins as a follower and catches up."""
    coord = request.app[COORD]
    return json_response(await coord.failover.start_master(lambda rid: _control(coord.control.start(rid)),
                                                           coord.cfg.initial_leader.id))


async def leader_info(request: web.Request) -> web.Response:
    return json_response(request.app[COORD].views.leader_info())


async def replication_mode(request: web.Request) -> web.Response:
    coord = request.app[COORD]
    data = await read_json(request)
    mode = field(data, "mode", str, required=True)
    if mode not in cabinet.MODES:
        raise ApiError(400, "bad_mode", f"mode must be one of {', '.join(cabinet.MODES)}")
    old = coord.replicator.set_mode(mode)
    return json_response({"success": True, "mode": mode, "previous": old})


async def reset(request: web.Request) -> web.Response:
    return json_response(await request.app[COORD].reset())


async def events(request: web.Request) -> web.Response:
    coord = request.app[COORD]
    try:
        since = int(request.query.get("since", "0"))
        limit = min(int(request.query.get("limit", "200")), 1000)
    except ValueError:
        raise ApiError(400, "bad_query", "'since' and 'limit' must be integers") from None
    return json_response({"events": coord.events.recent(limit, since, request.query.get("kind"))})


async def sessions(request: web.Request) -> web.Response:
    """The MySQL front end's sessions (like SHOW PROCESSLIST)."""
    front = request.app[COORD].mysql
    return json_response({"sessions": front.sessions() if front is not None else [],
                          "mysql": front.stats() if front is not None else None})


async def transactions(request: web.Request) -> web.Response:
    """Open interactive transactions on the MySQL port (age, session, statements so far, pinned leader),
    each with its ``state`` — ``idle`` between statements, ``running`` one (e.g. waiting for a lock),
    ``committing`` — the session's current ``command`` and the pinned leader's name (``pinned_name``)."""
    coord = request.app[COORD]
    front = coord.mysql
    txns: list[dict[str, Any]] = []
    if front is not None:
        txns = front.transactions.info()
        sessions = {sid: s for sid, (s, _txn) in front.transactions.open.items()}
        names = {r.id: r.name for r in coord.cfg.replicas}
        for t in txns:
            s = sessions.get(t["session"])
            command = s.command if s is not None else None
            t["state"] = ("committing" if t.get("committing") else
                          "running" if command not in (None, "Sleep") else "idle")
            t["command"] = command
            t["pinned_name"] = names.get(t["pinned_to"], t["pinned_to"]) if t.get("pinned_to") else None
    return json_response({"transactions": txns,
                          "pinned_connections": front.transactions.pinned if front is not None else 0,
                          "max_pinned": coord.cfg.transactions.max_pinned,
                          "idle_timeout_s": coord.cfg.transactions.idle_timeout_s})


async def kill_session(request: web.Request) -> web.Response:
    front = request.app[COORD].mysql
    try:
        sid = int(request.match_info["session_id"])
    except ValueError:
        raise ApiError(400, "bad_session", "the session id must be an integer") from None
    if front is None or not front.kill(sid):
        raise ApiError(404, "unknown_session", f"no MySQL session {sid}")
    return json_response({"success": True, "message": f"session {sid} closed", "session": sid})


def setup(app: web.Application) -> None:
    app.router.add_post("/admin/replicas/{replica_id}/fault", guard(replica_fault))
    app.router.add_post("/admin/replicas/{replica_id}/{action}", guard(replica_action))
    app.router.add_post("/admin/trigger-failover", guard(trigger_failover))
    app.router.add_post("/admin/stop-master", guard(stop_master))
    app.router.add_post("/admin/start-master", guard(start_master))
    app.router.add_get("/admin/leader-info", guard(leader_info))
    app.router.add_post("/admin/replication-mode", guard(replication_mode))
    app.router.add_get("/admin/events", guard(events))
    app.router.add_post("/admin/reset", guard(reset))
    app.router.add_get("/admin/sessions", guard(sessions))
    app.router.add_get("/admin/transactions", guard(transactions))
    app.router.add_post("/admin/sessions/{session_id}/kill", guard(kill_session))
