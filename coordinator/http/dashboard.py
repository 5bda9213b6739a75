"""The live dashboard at ``GET /`` (placeholder until the dashboard lands)."""

from __future__ import annotations

from typing import Any

from aiohttp import web


def setup(app: web.Application, coord: Any) -> None:
    async def index(_request: web.Request) -> web.Response:
        return web.Response(text="<!doctype html><title>Quorum coordinator</title><p>Dashboard coming.</p>",
                            content_type="text/html")

    app.router.add_get("/", index)
