"""The dashboard in a real browser (Playwright + Debian's chromium) against a real coordinator
on the local cluster. Screenshots go to ``artifacts/dashboard/``."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from devcluster.cluster import LocalCluster
from tests.browser import ARGS, CHROMIUM, Page, async_playwright
from tests.conftest import Running, wait_for
from tests.test_dashboard import mysql_connect, run_sql

pytestmark = pytest.mark.mariadb

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts" / "dashboard"


@pytest.fixture
def dash(fresh: Running) -> Running:
    """``fresh`` (its control backend drives the session cluster, so the page's controls work)."""
    return fresh


class Browser:
    def __init__(self, page: Page) -> None:
        self.page = page
        self.errors: list[str] = []
        page.on("console", lambda m: self.errors.append(f"console.{m.type}: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))
        page.on("dialog", lambda d: d.accept())  # destructive controls confirm first

    async def shot(self, name: str) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        await self.page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


@contextlib.asynccontextmanager
async def browser(url: str, width: int = 1280, height: int = 800) -> AsyncIterator[Browser]:
    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            ctx = await b.new_context(viewport={"width": width, "height": height})
            page = await ctx.new_page()
            page.set_default_timeout(10_000)
            br = Browser(page)
            await page.goto(url)
            await page.wait_for_selector(".conn-live")
            await page.wait_for_function("document.querySelectorAll('#replicas .replica').length >= 4")
            yield br
        finally:
            await b.close()


async def replica_state(page: Page, rid: str) -> str:
    return await page.get_attribute(f'.replica[data-id="{rid}"]', "data-state") or ""


async def outcome(page: Page, group: str, timeout_s: float = 30) -> str:
    """The control's outcome line once the call finished ("✓ …" or "✕ …")."""
    loc = page.locator(f'[data-outcome="{group}"]')
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        text = (await loc.text_content() or "").strip()
        if text.startswith(("✓", "✕")):
            return text
        await page.wait_for_timeout(50)
    raise AssertionError(f"no outcome for {group} within {timeout_s}s")


async def test_page_shows_the_cluster_without_console_errors(dash: Running) -> None:
    async with browser(dash.url(path="/")) as br:
        page = br.page
        cards = page.locator("#replicas .replica")
        assert await cards.count() == 4
        leader = page.locator("#replicas .replica.leader")
        assert await leader.count() == 1
        assert await leader.get_attribute("data-id") == "replica-4"
        text = await leader.inner_text()
        assert "mysql-replica-4" in text and "LEADER" in text.upper()
        assert "★" in (await page.locator("#st-leader").inner_text())
        # health as text, not colour alone
        await page.wait_for_function("[...document.querySelectorAll('.replica')].every(e => e.dataset.state === 'healthy')")
        for i in range(4):
            assert "healthy" in await cards.nth(i).inner_text()
        assert await page.locator(".replica .tag.cab").count() >= 2  # cabinet members marked
        assert await page.locator("#events li").count() >= 1  # recent events arrive on connect
        assert "No election yet" in await page.locator("#seer").inner_text()
        await page.wait_for_timeout(1200)  # a few pushes and chart redraws
        await br.shot("overview-1280")
        assert br.errors == [], br.errors

    async with browser(dash.url(path="/"), width=390, height=844) as br:
        page = br.page
        assert await page.locator("#replicas .replica").count() == 4
        overflow = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 1, f"page scrolls sideways at phone width by {overflow}px"
        await page.wait_for_timeout(600)
        await br.shot("phone-390")
        assert br.errors == [], br.errors


async def test_console_write_shows_timestamp_and_flow(dash: Running) -> None:
    async with browser(dash.url(path="/")) as br:
        page = br.page
        await page.fill("#sql", "INSERT INTO users (name, email) VALUES ('Page', 'page-write@example.com')")
        await page.click("#run-sql")
        await page.wait_for_selector(".flow")
        ts = int(await page.locator("#flow-ts").inner_text())
        assert ts == dash.coord.replicator.commit_ts or ts <= dash.coord.replicator.commit_ts
        flow = await page.locator(".flow").inner_text()
        assert "mysql-replica-4" not in flow or "replica-4" in flow
        assert "replica-4" in flow  # executed on the leader
        assert re.search(r"Σ [\d.]+ > [\d.]+", flow), flow  # quorum weight against the threshold
        await page.wait_for_function("document.querySelector('#flow-followers-sum').textContent.startsWith('3/3')")
        msg = await page.locator(".flow-msg").inner_text()
        assert f"timestamp: {ts}" in msg
        await br.shot("console-write")

        await page.fill("#sql", "SELECT name, email, timestamp FROM users WHERE email = 'page-write@example.com'")
        await page.select_option("#consistency", "session")
        await page.click("#run-sql")
        await page.wait_for_selector(".result table")
        table = await page.locator(".result").inner_text()
        assert "page-write@example.com" in table and str(ts) in table
        assert br.errors == [], br.errors


async def test_run_load_moves_the_charts(dash: Running) -> None:
    async with browser(dash.url(path="/")) as br:
        page = br.page
        await page.fill("#load-seconds", "3")
        await page.fill("#load-clients", "8")
        before = dash.coord.replicator.commit_ts
        await page.click("#btn-load")
        text = await outcome(page, "load", 30)
        assert text.startswith("✓"), text
        assert re.search(r"[1-9]\d* writes", text), text
        assert dash.coord.replicator.commit_ts > before + 10
        await page.wait_for_timeout(1200)
        legend = await page.locator("#chart-tput .legend").inner_text()
        assert "committed" in legend
        await br.shot("after-load")
        assert br.errors == [], br.errors
    st, body = await dash.post("/query", {"query": "SELECT COUNT(*) AS n FROM dashboard_load"})
    assert st == 200 and body["data"][0]["n"] > 10


async def test_open_transactions_panel_follows_a_real_transaction(dash: Running) -> None:
    async with browser(dash.url(path="/")) as br:
        page = br.page
        panel, summary = page.locator("#txns"), page.locator("#txn-summary")
        await page.wait_for_selector("#txns .empty")
        assert "No open transactions" in await panel.inner_text()
        await page.wait_for_function("document.querySelector('#txn-summary').textContent.startsWith('0 open')")
        conn = await asyncio.to_thread(mysql_connect, dash)  # PyMySQL in a thread: the coordinator runs on this loop
        try:
            await asyncio.to_thread(run_sql, conn, "BEGIN",
                                    "INSERT INTO users (name, email) VALUES ('Panel', 'panel-txn@example.com')")
            sid = conn.thread_id()
            row = page.locator(f'#txns tr[data-session="{sid}"]')
            await row.wait_for(timeout=5000)
            cells = [c.strip() for c in await row.locator("td").all_inner_texts()]
            assert cells[0] == f"#{sid}"
            assert cells[1].startswith("root")
            assert cells[3].endswith("idle")  # state in words, not colour alone
            assert cells[4].startswith("1") and "1 write" in cells[4]
            assert cells[5] == "mysql-replica-4"
            assert await row.get_attribute("data-state") == "idle"
            text = await summary.inner_text()
            assert text.startswith("1 open") and f"1 / {dash.cfg.transactions.max_pinned}" in text, text
            # the age grows with each poll
            await page.wait_for_function(
                f"parseFloat(document.querySelector('#txns tr[data-session=\"{sid}\"]').cells[2].textContent) >= 1.5",
                timeout=5000)
            await br.shot("open-transaction")

            await asyncio.to_thread(conn.commit)
            await page.wait_for_selector("#txns .empty", timeout=5000)
            assert await page.locator("#txns tr").count() == 0
            await page.wait_for_function("document.querySelector('#txn-summary').textContent.startsWith('0 open')")
        finally:
            conn.close()
        assert br.errors == [], br.errors
    st, body = await dash.post("/query", {"query": "SELECT COUNT(*) AS n FROM users WHERE email = 'panel-txn@example.com'"})
    assert st == 200 and body["data"][0]["n"] == 1


async def test_killing_a_follower_from_the_page(dash: Running, cluster: LocalCluster) -> None:
    try:
        async with browser(dash.url(path="/")) as br:
            page = br.page
            await page.select_option("#ctl-replica", "replica-1")
            clicked = time.monotonic()
            await page.click('[data-action="kill"]')
            text = await outcome(page, "replica")
            assert text.startswith("✓"), text
            await page.wait_for_function(
                "document.querySelector('.replica[data-id=\"replica-1\"]').dataset.state !== 'healthy'", timeout=2000)
            took = time.monotonic() - clicked
            state = await replica_state(page, "replica-1")
            card = await page.locator('.replica[data-id="replica-1"]').inner_text()
            assert state in ("down", "killed", "stopped"), state
            assert state in card  # said in words, not colour alone
            assert took < 2 + 2  # the kill itself plus detection
            await br.shot("follower-killed")
    finally:
        cluster.start("replica-1")

    async def healthy() -> bool:
        return any(m["replica_id"] == "replica-1" and m["is_healthy"] for m in dash.coord.replica_metrics())

    await wait_for(healthy, 30, "replica-1 healthy again")


async def test_stopping_the_leader_from_the_page(dash: Running, cluster: LocalCluster) -> None:
    try:
        async with browser(dash.url(path="/")) as br:
            page = br.page
            await page.fill("#load-seconds", "4")
            await page.click("#btn-load")  # some traffic first, so the charts have a story to tell
            assert (await outcome(page, "load")).startswith("✓")
            await page.click("#btn-stop-master")
            text = await outcome(page, "failover", 60)
            assert text.startswith("✓"), text
            await page.wait_for_function(
                "(() => { const l = document.querySelector('.replica.leader'); return l && l.dataset.id !== 'replica-4'; })()",
                timeout=10_000)
            new_leader = await page.get_attribute(".replica.leader", "data-id")
            assert new_leader in ("replica-1", "replica-2", "replica-3")
            await page.wait_for_selector('#events li[data-kind="failover"]', timeout=5000)
            ev = await page.locator('#events li[data-kind="failover"]').first.inner_text()
            assert "mysql-replica-4" in ev
            header = await page.locator("#st-leader").inner_text()
            assert new_leader.replace("replica-", "mysql-replica-") in header
            await page.wait_for_function("!document.querySelector('#seer').textContent.includes('No election yet')")
            seer: Any = await page.locator("#seer").inner_text()
            assert "replica-4" in seer and "→" in seer
            await page.wait_for_timeout(800)
            await br.shot("leader-stopped")
            await page.screenshot(path=str(ARTIFACTS / "viewport-1280x800.png"))
    finally:
        cluster.start("replica-4")

    async def back() -> bool:
        return any(m["replica_id"] == "replica-4" and m["is_healthy"] for m in dash.coord.replica_metrics())

    await wait_for(back, 60, "the old leader to rejoin")
