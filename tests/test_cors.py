"""CORS is off by default and answers only configured origins when turned on."""

from __future__ import annotations

import pytest

from tests.conftest import make_config, start_coordinator, wipe

pytestmark = pytest.mark.mariadb


async def test_cors_only_for_configured_origins(cluster, http) -> None:
    await wipe(cluster)
    run = await start_coordinator(make_config(cluster, coordinator={"cors_origins": ["http://allowed.test"]}), http)
    try:
        async with http.get(run.url("gateway", "/status"), headers={"Origin": "http://allowed.test"}) as r:
            assert r.headers.get("Access-Control-Allow-Origin") == "http://allowed.test"
        async with http.get(run.url("gateway", "/status"), headers={"Origin": "http://evil.test"}) as r:
            assert "Access-Control-Allow-Origin" not in r.headers
        async with http.options(run.url("gateway", "/query"), headers={
                "Origin": "http://allowed.test", "Access-Control-Request-Method": "POST"}) as r:
            assert r.status == 204 and r.headers.get("Access-Control-Allow-Origin") == "http://allowed.test"
    finally:
        await run.stop()


async def test_cors_off_by_default(fresh) -> None:
    async with fresh.session.get(fresh.url("gateway", "/status"), headers={"Origin": "http://x.test"}) as r:
        assert r.status == 200 and "Access-Control-Allow-Origin" not in r.headers
