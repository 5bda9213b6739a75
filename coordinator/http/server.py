"""Binds the six apps to their ports; one process, one object graph."""

from __future__ import annotations

from aiohttp import web

from ..service import Coordinator
from . import gateway, ports


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


async def serve(coord: Coordinator) -> list[web.AppRunner]:
    runners = []
    try:
        for port, app in apps(coord).items():
            runner = web.AppRunner(app, access_log=None, handle_signals=False)
            await runner.setup()
            await web.TCPSite(runner, coord.cfg.coordinator.host, port, reuse_address=True).start()
            runners.append(runner)
    except BaseException:
        for r in runners:
            await r.cleanup()
        raise
    return runners
