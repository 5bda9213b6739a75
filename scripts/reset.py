#!/usr/bin/env python3
"""Reset the system before a demo (replaces the guide's setup.py).

    .venv/bin/python scripts/reset.py [--url http://localhost:8000] [--config config.toml]

1. checks that the coordinator answers and that every replica is healthy (and, with the
   coordinator's config, that each server answers SQL directly);
2. clears every user table on every replica and resets the timestamps (POST /admin/reset);
3. verifies: every replica's user tables are empty (read directly from each server when the
   config is known, else through the coordinator), every replica reports applied timestamp 0,
   and the next write gets timestamp 1 — proven by one probe write that must get timestamp 1,
   after which a second reset clears it again (``--no-probe`` skips the probe and relies on
   the coordinator's commit timestamp being 0).

Exit status 0 when every check passed, 1 when a check failed, 2 when the coordinator or a
replica is down (the message says what to start).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rich.console import Console  # noqa: E402

from scripts.benchlib import Api, DirectReplicas, Endpoints, resolve_endpoints  # noqa: E402


class Out:
    def __init__(self, console: Console) -> None:
        self.c = console
        self.failed: list[str] = []

    def ok(self, text: str) -> None:
        self.c.print(f"[green]✓[/] {text}", highlight=False)

    def bad(self, text: str) -> None:
        self.failed.append(text)
        self.c.print(f"[red]✗ {text}[/]", highlight=False)

    def info(self, text: str) -> None:
        self.c.print(f"  {text}", highlight=False)


def start_hint(rid: str, name: str, ep: Endpoints) -> str:
    backend = ep.cfg.control.backend if ep.cfg else "local"
    if backend == "docker":
        return f"docker compose start {name}"
    return f"scripts/cluster.py start {rid}   (or the whole cluster: scripts/cluster.py up)"


async def count_tables(direct: DirectReplicas, rid: str) -> dict[str, int]:
    tables = [t for (t, kind) in await direct.query(rid, "SHOW FULL TABLES") if kind == "BASE TABLE"]
    out = {}
    for t in tables:
        out[t] = int((await direct.query(rid, f"SELECT COUNT(*) FROM `{t}`"))[0][0])
    return out


async def check_up(api: Api, ep: Endpoints, direct: DirectReplicas, out: Out) -> dict[str, Any] | None:
    st, status = await api.status()
    if st != 200:
        out.bad(f"coordinator not reachable at {ep.url} ({status.get('error', st)})")
        out.info("start it with: .venv/bin/python -m coordinator --config config.toml")
        return None
    out.ok(f"coordinator is up at {ep.url} (leader {status['current_master']}, epoch {status['epoch']}, "
           f"commit timestamp {status['commit_timestamp']})")
    st, m = await api.metrics()
    if st != 200:
        out.bad(f"metrics service not reachable at {ep.metrics} ({m.get('error', st)}); pass --metrics-url")
        return None
    down = []
    for x in m["replicas"]:
        if x["is_healthy"]:
            out.ok(f"{x['name']} is healthy ({'leader' if x['is_master'] else 'follower'}, "
                   f"applied timestamp {x['applied_timestamp']})")
        else:
            down.append(x)
            out.bad(f"{x['name']} is down ({x.get('state', 'unhealthy')}: {x.get('last_error') or 'not answering'})")
    if direct.available:
        for x in m["replicas"]:
            if x in down:
                continue
            try:
                await direct.query(x["replica_id"], "SELECT 1")
            except Exception as exc:  # noqa: BLE001
                down.append(x)
                out.bad(f"{x['name']} does not answer SQL at its configured address ({type(exc).__name__}: {exc})")
    if down:
        for x in down:
            out.info(f"start {x['name']}: {start_hint(x['replica_id'], x['name'], ep)}")
        out.info("then run this script again")
        return None
    if not status.get("ready", True):
        out.bad("the coordinator is not accepting writes yet (still recovering); try again in a few seconds")
        return None
    return {"status": status, "replicas": m["replicas"]}


async def verify_empty(api: Api, ep: Endpoints, direct: DirectReplicas, out: Out, tables: list[str],
                       replicas: list[dict[str, Any]]) -> bool:
    good = True
    st, status = await api.status()
    if st == 200 and status["commit_timestamp"] == 0:
        out.ok("coordinator commit timestamp is 0")
    else:
        good = False
        out.bad(f"coordinator commit timestamp is {status.get('commit_timestamp')} after the reset, not 0")
    deadline = time.monotonic() + 5
    while True:
        st, m = await api.metrics()
        nonzero = {x["name"]: x["applied_timestamp"] for x in m.get("replicas", []) if x["applied_timestamp"] != 0}
        if st == 200 and not nonzero or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.1)
    if st == 200 and not nonzero:
        out.ok(f"every replica reports applied timestamp 0 ({len(m['replicas'])}/{len(m['replicas'])})")
    else:
        good = False
        out.bad(f"replicas still report applied timestamps {nonzero}")
    if direct.available:
        for x in replicas:
            try:
                counts = await count_tables(direct, x["replica_id"])
            except Exception as exc:  # noqa: BLE001
                good = False
                out.bad(f"{x['name']}: could not count rows ({type(exc).__name__}: {exc})")
                continue
            full = {t: n for t, n in counts.items() if n}
            if full:
                good = False
                out.bad(f"{x['name']}: tables not empty: {full}")
            else:
                out.ok(f"{x['name']}: all {len(counts)} user tables empty ({', '.join(sorted(counts)) or 'none'}; "
                       "counted directly on the server)")
    else:
        out.info("no coordinator config (--config): counting through the coordinator's leader only")
        for t in tables:
            st, body = await api.query(f"SELECT COUNT(*) AS n FROM `{t}`")
            n = body["data"][0]["n"] if st == 200 else None
            if n == 0:
                out.ok(f"{t}: empty on {body.get('executed_on')}")
            else:
                good = False
                out.bad(f"{t}: {n if n is not None else body.get('error')} rows after the reset")
    return good


async def run(args: argparse.Namespace, console: Console) -> int:
    ep = resolve_endpoints(args.url, args.metrics_url, args.config)
    out = Out(console)
    for note in ep.notes:
        out.info(note)
    direct = DirectReplicas(ep)
    api = Api(ep, connections=4)
    try:
        console.print("[bold]Checking the coordinator and the replicas[/]")
        state = await check_up(api, ep, direct, out)
        if state is None:
            return 2
        ids = {x["replica_id"] for x in state["replicas"]}
        if direct.available and ids != set(direct.ids()):
            out.info(f"config {ep.config_path} does not match the coordinator's replicas; not reading them directly")
            direct.cfg = None
        before: dict[str, int] = {}
        if direct.available:
            before = await count_tables(direct, state["status"]["leader"])
            out.info("rows before the reset (leader): " + (", ".join(f"{t} {n}" for t, n in sorted(before.items()))
                                                           or "no tables"))
        console.print("[bold]Clearing all data and resetting timestamps[/]")
        st, res = await api.admin("reset", {}, timeout=120)
        if st != 200:
            out.bad(f"POST /admin/reset failed ({st}): {res.get('error', res)}")
            for rid in res.get("unavailable", []) or []:
                out.info(f"start {rid}: {start_hint(rid.removeprefix('mysql-'), rid, ep)}")
            return 2 if st in (0, 503) else 1
        tables = res.get("tables", [])
        out.ok(f"{res.get('message', 'reset done')}: truncated {', '.join(tables) or 'no tables'} on "
               f"{len(res.get('replicas', []))} replicas ({', '.join(res.get('replicas', []))})")
        console.print("[bold]Verifying[/]")
        good = await verify_empty(api, ep, direct, out, tables, state["replicas"])
        if args.no_probe:
            out.info(f"the coordinator reports next timestamp {res.get('next_timestamp')} (probe write skipped)")
        else:
            table = "users" if "users" in tables else (tables[0] if tables else None)
            if table is None:
                out.info("no user table to probe the next timestamp with; commit timestamp 0 checked above")
            else:
                st, w = await api.query(f"INSERT INTO `{table}` (name, email) VALUES ('reset probe', "
                                        f"'reset-probe@reset.local')" if table == "users" else
                                        f"INSERT INTO `{table}` () VALUES ()")
                ts = w.get("timestamp") if st == 200 else None
                st2, res2 = await api.admin("reset", {}, timeout=120)
                if ts == 1:
                    out.ok("the next write gets timestamp 1 (a probe write got timestamp 1)")
                else:
                    good = False
                    out.bad(f"the probe write got timestamp {ts} ({w.get('error', '') if st != 200 else ''}), not 1")
                if st2 != 200:
                    good = False
                    out.bad(f"second reset (to clear the probe row) failed: {res2.get('error', res2)}")
                else:
                    quiet = Out(Console(quiet=True))
                    if await verify_empty(api, ep, direct, quiet, tables, state["replicas"]):
                        out.ok("probe row cleared again by a second reset; every replica empty, commit timestamp 0")
                    else:
                        good = False
                        out.bad("after the second reset: " + "; ".join(quiet.failed))
        if good:
            console.print("[green bold]System reset: every replica empty, the next write gets timestamp 1[/]")
            return 0
        console.print("[red bold]Reset finished but a check failed (see ✗ above)[/]")
        return 1
    finally:
        await api.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", help="gateway URL (default http://localhost:8000, or the --config's port)")
    ap.add_argument("--metrics-url", help="metrics service URL (default: the gateway's host, port 8003)")
    ap.add_argument("--config", help="the coordinator's config.toml, to count rows on every server directly")
    ap.add_argument("--no-probe", action="store_true",
                    help="skip the probe write that proves the next timestamp is 1")
    args = ap.parse_args(argv)
    tty = sys.stdout.isatty()
    console = Console(no_color=not tty, highlight=False, width=None if tty else 160, soft_wrap=not tty)
    return asyncio.run(run(args, console))


if __name__ == "__main__":
    sys.exit(main())
