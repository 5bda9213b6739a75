"""Binds the six apps to their ports; one process, one object graph."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import orjson
from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_server import Server

from ..service import Coordinator
from . import gateway, ports
from .common import HTTP_CODES
from .lean import LeanLane


class _JsonErrorHandler(RequestHandler):
    """aiohttp answers malformed HTTP (bad request line, headers, chunking) itself, as
    text that echoes the bytes it choked on; the contract says every error is JSON."""

    def handle_error(self, request: Any, status: int = 500, exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        if request.writer.output_size > 0:
            raise ConnectionError("response already started; cannot send the error")
        self.log_debug("malformed request from %s: %s", request.remote, exc)
        phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "error"
        text = "malformed HTTP request" if status == 400 else f"HTTP {status}: {phrase.lower()}"
        body = {"success": False, "error": text, "detail": text, "code": HTTP_CODES.get(status, "http_error")}
        resp = web.Response(body=orjson.dumps(body), status=status, content_type="application/json")
        resp.force_close()
        return resp


class _JsonErrorServer(Server):
    def __call__(self) -> RequestHandler:
        return _JsonErrorHandler(self, loop=self._loop, **self._kwargs)


def apps(coord: Coordinator) -> dict[int, web.Application]:
    p = coord.cfg.ports
    return {
        p.gateway: gateway.build(coord),
        p.timestamp_odd: ports.timestamp_app(coord, 1),
        p.timestamp_even: ports.timestamp_app(coord, 2),
        p.metrics: ports.metrics_app(coord),
        p.cabinet: ports.cabinet_app(coord),
        p.seer: ports.seer_app(coord),
    }


def _cors(origins: tuple[str, ...]) -> Any:
    """CORS only for configured origins (off by default)."""

    async def on_prepare(request: web.Request, response: web.StreamResponse) -> None:
        origin = request.headers.get("Origin")
        if origin and (origin in origins or "*" in origins):
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Vary"] = "Origin"
            response.headers["Access-Control-Allow-Headers"] = "Content-Type, Authorization"
            response.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"

    return on_prepare


async def _preflight(_request: web.Request) -> web.Response:
    return web.Response(status=204)


async def serve(coord: Coordinator) -> list[web.AppRunner | LeanLane]:
    """Listen on every HTTP port. The gateway's socket is the lean lane's (``lean``), which hands
    what it does not serve to the gateway app's runner; the list is in start order (clean up reversed)."""
    runners: list[web.AppRunner | LeanLane] = []
    origins = coord.cfg.coordinator.cors_origins
    host = coord.cfg.coordinator.host
    try:
        for port, app in apps(coord).items():
            if origins:
                app.on_response_prepare.append(_cors(origins))
                app.router.add_route("OPTIONS", "/{tail:.*}", _preflight)
            runner = web.AppRunner(app, access_log=None, handle_signals=False)
            await runner.setup()
            assert runner.server is not None
            runner.server.__class__ = _JsonErrorServer
            runners.append(runner)
            if port == coord.cfg.ports.gateway:
                lane = LeanLane(coord, runner.server)
                runners.append(lane)  # before its start: a failed bind is cleaned up too
                await lane.start(host, port)
            else:
                await web.TCPSite(runner, host, port, reuse_address=True, backlog=1024).start()
    except BaseException:
        for r in runners:
            await r.cleanup()
        raise
    return runners
