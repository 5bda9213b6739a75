"""CORS is off by default and answers only configured origins when turned on."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import free_port, make_config, start_coordinator, wipe

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


# --- a real browser on another origin (the old dashboard's dev server) -------------------

_PAGE = """<!doctype html><title>old dashboard</title><script>
async function probe(ports) {
  const calls = [
    ["gateway", "GET", "/status"], ["gateway", "GET", "/health"],
    ["gateway", "POST", "/query", {query: "SELECT COUNT(*) AS n FROM users"}],
    ["gateway", "GET", "/admin/leader-info"],
    ["gateway", "POST", "/admin/replication-mode", {mode: "cabinet"}],
    ["timestamp_odd", "GET", "/timestamp"], ["timestamp_even", "GET", "/timestamp"],
    ["metrics", "GET", "/metrics"], ["cabinet", "POST", "/select-quorum", {operation: "write"}],
    ["seer", "POST", "/elect-leader", {}], ["seer", "GET", "/health"],
  ];
  const out = [];
  for (const [port, method, path, body] of calls) {
    const init = {method};
    if (body !== undefined) { init.body = JSON.stringify(body); init.headers = {"Content-Type": "application/json"}; }
    try {
      const r = await fetch(`http://127.0.0.1:${ports[port]}${path}`, init);
      const j = await r.json();
      out.push({port, method, path, status: r.status, ok: j.success !== false});
    } catch (e) {
      out.push({port, method, path, status: 0, error: String(e)});
    }
  }
  return out;
}
</script>"""


async def _page_server() -> tuple[Any, str]:
    from aiohttp import web

    async def index(_request: web.Request) -> web.Response:
        return web.Response(text=_PAGE, content_type="text/html")

    app = web.Application()
    app.router.add_get("/", index)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}"


async def _probe_from_browser(origin: str, ports: dict[str, int]) -> tuple[list[dict[str, Any]], list[str]]:
    from tests.browser import ARGS, CHROMIUM, async_playwright

    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = await (await b.new_context()).new_page()
            console: list[str] = []
            page.on("console", lambda m: console.append(m.text) if m.type == "error" else None)
            await page.goto(origin + "/")
            results = await page.evaluate("(ports) => probe(ports)", ports)
            return results, console
        finally:
            await b.close()


async def test_browser_on_another_origin_reaches_all_six_ports(cluster, http) -> None:
    runner, origin = await _page_server()
    try:
        for allowed in (True, False):
            await wipe(cluster)
            origins = [origin] if allowed else ["http://somewhere-else.test"]
            cfg = make_config(cluster, coordinator={"cors_origins": origins})
            run = await start_coordinator(cfg, http)
            try:
                results, console = await _probe_from_browser(origin, cfg.ports.all())
            finally:
                await run.stop()
            assert {r["port"] for r in results} == set(cfg.ports.all()), results
            if allowed:
                # every call got through CORS; SEER's dry run may say 503 "no eligible leader" (JSON)
                assert all(r["status"] == 200 and r["ok"] or (r["path"] == "/elect-leader" and r["status"] == 503)
                           for r in results), results
                assert not any("CORS" in line for line in console), console
            else:
                assert all(r["status"] == 0 and "TypeError" in r["error"] for r in results), results
                assert any("CORS" in line for line in console), console
    finally:
        await runner.cleanup()
