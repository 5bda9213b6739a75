""":8000 — the gateway: /query, /transaction, /status, /health and /admin."""

from __future__ import annotations

import time
from typing import Any

import orjson
from aiohttp import web

from ..batchsql import BindError, bind
from ..core import sqlrules
from ..core.outcomes import ApiError, WriteOutcome
from ..core.replog import EntryKind
from ..service import Coordinator
from . import admin, dashboard
from .common import (
    COORD,
    METRICS,
    field,
    health_handler,
    internal_error,
    json_response,
    make_app,
    parse_json,
    read_json,
)

_KIND = {sqlrules.Kind.WRITE: EntryKind.WRITE, sqlrules.Kind.DDL: EntryKind.DDL}


def _statement(coord: Coordinator, query: Any, params: Any, where: str = "") -> tuple[sqlrules.Statement, str]:
    if not isinstance(query, str):
        raise ApiError(400, "bad_field", f"field '{where}query' must be a string")
    if params is not None and not isinstance(params, (list, dict)):
        raise ApiError(400, "bad_field", f"field '{where}params' must be a list or an object")
    try:
        stmt = sqlrules.classify(query, coord.cfg.coordinator.internal_schema, placeholders=params is not None)
    except sqlrules.SqlRejected as exc:
        raise ApiError(exc.status, exc.code, exc.message, construct=exc.construct) from None
    try:
        return stmt, bind(stmt.sql, params)
    except BindError as exc:
        raise ApiError(400, "bad_params", str(exc)) from None


def write_body(out: WriteOutcome, started: float, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    q = out.quorum
    rows = sum(r[0] for r in out.results if r[0] > 0)
    last_id = next((r[1] for r in reversed(out.results) if r[1]), 0)
    # "quorum: a/b": b replicas make a quorum in this mode (the cabinet's size, t+1, in cabinet
    # mode), a of them counted toward this write's commit — b/b for every success. Which
    # replicas those were, and the cabinet's own members, are in the "quorum" object.
    needed = q["member_count"]
    body = {
        "success": True,
        "message": (f"Write successful (timestamp: {out.ts}, quorum: {min(len(q['acked']), needed)}/{needed}, "
                    f"total: {out.followers_applied}/{out.followers})"),
        "timestamp": out.ts,
        "rows_affected": rows,
        "last_insert_id": last_id,
        "executed_on": out.executed_on,
        "quorum": {k: q[k] for k in ("mode", "members", "acked", "weight", "threshold")},
        "latency_ms": round((time.perf_counter() - started) * 1000, 3),
    }
    if out.replayed:
        body["replayed"] = True
    if extra:
        body.update(extra)
    return body


async def query(request: web.Request) -> web.Response:
    started = time.perf_counter()
    return json_response(await query_body(request.app[COORD], await read_json(request), started))


async def query_body(coord: Coordinator, data: dict[str, Any], started: float) -> dict[str, Any]:
    """``POST /query``'s answer to the request body ``data`` (received at ``started``), or an ApiError."""
    q = field(data, "query", str, required=True)
    stmt, sql = _statement(coord, q, data.get("params"))
    if stmt.kind is sqlrules.Kind.READ:
        consistency = field(data, "consistency", str, default="strong")
        min_ts = field(data, "min_timestamp", int, default=0)
        body = await coord.reads.read(sql, consistency, min_ts)
        coord.metrics.read_latency.observe(time.perf_counter() - started)
        return body
    out = await _submit(coord, data, _KIND[stmt.kind], (sql,))
    _record_write(coord, started)
    return write_body(out, started)


def _record_write(coord: Coordinator, started: float) -> None:
    elapsed = time.perf_counter() - started
    coord.metrics.write_latency.observe(elapsed)
    coord.metrics.commits.inc()
    coord.write_latency_ms.append((time.time(), elapsed * 1000))


async def _submit(coord: Coordinator, data: dict[str, Any], kind: EntryKind, stmts: tuple[str, ...]) -> WriteOutcome:
    """Submit a write, honouring an optional ``request_id``: a retry with the same key
    returns the original outcome and never applies twice (``idempotency``)."""
    rid = field(data, "request_id", str, default="")
    if rid and (len(rid) > 191 or not rid.isprintable()):
        raise ApiError(400, "bad_field", "field 'request_id' must be printable and at most 191 characters")
    return await coord.idempotency.submit(kind, stmts, rid)


async def transaction(request: web.Request) -> web.Response:
    started = time.perf_counter()
    return json_response(await transaction_body(request.app[COORD], await read_json(request), started))


async def transaction_body(coord: Coordinator, data: dict[str, Any], started: float) -> dict[str, Any]:
    """``POST /transaction``'s answer to the request body ``data``, or an ApiError."""
    stmts = field(data, "statements", list, required=True)
    if not stmts:
        raise ApiError(400, "empty_transaction", "field 'statements' must list at least one statement")
    if len(stmts) > 1000:
        raise ApiError(400, "transaction_too_large", "a transaction may hold at most 1000 statements")
    rendered = []
    for i, s in enumerate(stmts):
        if not isinstance(s, dict):
            raise ApiError(400, "bad_field", f"statements[{i}] must be an object with 'query' and optional 'params'")
        stmt, sql = _statement(coord, s.get("query"), s.get("params"), f"statements[{i}].")
        if stmt.kind is not sqlrules.Kind.WRITE:
            raise ApiError(400, "not_dml", f"statements[{i}] is {stmt.kind.value} ({stmt.verb}); a transaction holds "
                           "only INSERT/UPDATE/DELETE/REPLACE")
        rendered.append(sql)
    out = await _submit(coord, data, EntryKind.TXN, tuple(rendered))
    _record_write(coord, started)
    per = [{"rows_affected": r[0], "last_insert_id": r[1]} for r in out.results]
    body = write_body(out, started, {"statements": per})
    body["message"] = body["message"].replace("Write successful", "Transaction committed")
    return body


BODIES = {"/query": query_body, "/transaction": transaction_body}


async def answer(coord: Coordinator, path: str, raw: bytes, media_type: str, started: float) -> tuple[int, bytes]:
    """The status and JSON body of ``POST path`` for the lean lane (``lean``): the same answer,
    errors and request metrics as the aiohttp route, without aiohttp's request and response objects."""
    try:
        status, body = 200, await BODIES[path](coord, parse_json(raw, media_type), started)
    except ApiError as err:
        status, body = err.status, err.body()
    except Exception:  # a bug: say so as JSON, keep serving
        bug = internal_error("POST", path)
        status, body = bug.status, bug.body()
    coord.metrics.request(path, status)
    return status, orjson.dumps(body, option=orjson.OPT_NON_STR_KEYS)


async def status(request: web.Request) -> web.Response:
    return json_response(request.app[COORD].status())


async def prometheus(request: web.Request) -> web.Response:
    from prometheus_client import CONTENT_TYPE_LATEST
    body = request.app[COORD].metrics.render()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def build(coord: Coordinator) -> web.Application:
    app = make_app(coord.cfg.coordinator.max_body_bytes)
    app[METRICS] = coord.metrics
    app[COORD] = coord
    app.router.add_post("/query", query)
    app.router.add_post("/transaction", transaction)
    app.router.add_get("/status", status)
    app.router.add_get("/health", health_handler("coordinator"))
    app.router.add_get("/metrics", prometheus)
    admin.setup(app)
    dashboard.setup(app, coord)
    return app
