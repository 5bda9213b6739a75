#!/usr/bin/env python3
"""Stress scenarios for the quorum coordinator (replaces the guide's stress_test.py).

    .venv/bin/python scripts/stress.py --scenario all
    .venv/bin/python scripts/stress.py --scenario concurrent --writes 200 --clients 32
    .venv/bin/python scripts/stress.py --scenario lag
    .venv/bin/python scripts/stress.py --scenario failover [--interactive]
    .venv/bin/python scripts/stress.py --scenario performance --duration 10
    .venv/bin/python scripts/stress.py --scenario compare

Every ✓ line is a check this script made itself; a failed check prints ✗ with the reason and
the exit status is non-zero. Rows are written with a unique tag per run, so it is safe to
re-run without a reset. To check that *every replica* holds every acknowledged row, the script
reads each server directly, at the addresses in the coordinator's config (``--config``,
default ./config.toml when its gateway port matches ``--url``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rich.console import Console  # noqa: E402
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn  # noqa: E402
from rich.table import Table  # noqa: E402

from scripts.benchlib import Api, DirectReplicas, Endpoints, resolve_endpoints, summary_ms  # noqa: E402

SCENARIOS = ("concurrent", "lag", "failover", "performance", "compare")


# --------------------------------------------------------------------------- reporting


class Report:
    def __init__(self, console: Console) -> None:
        self.c = console
        self.checks: list[dict[str, Any]] = []
        self.figures: dict[str, Any] = {}
        self.scenario = ""

    def ok(self, text: str) -> None:
        self.checks.append({"scenario": self.scenario, "ok": True, "check": text})
        self.c.print(f"[green]✓[/] {text}")

    def bad(self, text: str, reason: str) -> None:
        self.checks.append({"scenario": self.scenario, "ok": False, "check": text, "reason": reason})
        self.c.print(f"[red]✗ {text}[/] — {reason}")

    def check(self, cond: bool, text: str, reason: str) -> bool:
        (self.ok(text) if cond else self.bad(text, reason))
        return cond

    def info(self, text: str) -> None:
        self.c.print(f"  {text}", highlight=False)

    def skip(self, text: str) -> None:
        self.checks.append({"scenario": self.scenario, "ok": None, "check": text})
        self.c.print(f"[yellow]–[/] {text}")

    def header(self, title: str) -> None:
        self.c.print()
        self.c.rule(f"[bold]{title}")

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [c for c in self.checks if c["ok"] is False]


def _r(x: Any) -> str:
    return "-" if x is None else f"{x:.2f}" if isinstance(x, float) else str(x)


class Abort(Exception):
    """A scenario cannot go on (the reason was already reported)."""


# --------------------------------------------------------------------------- write load


@dataclass
class Rec:
    i: int
    email: str
    start: float
    end: float = 0.0
    status: int = 0
    body: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == 200 and bool(self.body.get("success"))

    @property
    def ts(self) -> int:
        return int(self.body.get("timestamp") or 0)


class Load:
    """Closed-loop writers: each client sends its next unique INSERT when the previous one
    answered. Stops after ``n`` writes, after ``duration`` s, or when stop() is called."""

    def __init__(self, api: Api, tag: str, clients: int, n: int | None = None, duration: float | None = None,
                 on_done: Callable[[Rec], None] | None = None, table: str = "users") -> None:
        self.api, self.tag, self.clients, self.n, self.duration = api, tag, clients, n, duration
        self.on_done = on_done
        self.table = table
        self.recs: list[Rec] = []
        self._next = 0
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.t0 = 0.0

    def _take(self) -> int | None:
        if self._stop.is_set():
            return None
        if self.n is not None and self._next >= self.n:
            return None
        if self.duration is not None and time.perf_counter() - self.t0 >= self.duration:
            return None
        self._next += 1
        return self._next

    async def _client(self) -> None:
        while (i := self._take()) is not None:
            email = f"{self.tag}-{i}@stress.local"
            rec = Rec(i, email, time.perf_counter())
            rec.status, rec.body = await self.api.query(
                f"INSERT INTO {self.table} (name, email) VALUES (%s, %s)", [f"stress {self.tag}", email])
            rec.end = time.perf_counter()
            self.recs.append(rec)
            if self.on_done:
                self.on_done(rec)
            if not rec.ok:
                await asyncio.sleep(0.01)

    def start(self) -> None:
        self.t0 = time.perf_counter()
        self._tasks = [asyncio.create_task(self._client()) for _ in range(self.clients)]

    async def wait(self) -> list[Rec]:
        await asyncio.gather(*self._tasks)
        return self.recs

    async def stop(self) -> list[Rec]:
        self._stop.set()
        return await self.wait()

    @property
    def acked(self) -> list[Rec]:
        return [r for r in self.recs if r.ok]


def max_gap(recs: list[Rec], t_from: float, t_to: float) -> float:
    """Longest time without any acknowledged write between t_from and t_to (the client-visible
    write unavailability around an event)."""
    ends = sorted(r.end for r in recs if r.ok)
    last = t_from
    before = [e for e in ends if e <= t_from]
    if before:
        last = before[-1]
    gap = 0.0
    for e in ends:
        if e <= t_from:
            continue
        gap = max(gap, e - last)
        last = e
        if e >= t_to:
            break
    else:
        gap = max(gap, t_to - last)
    return gap


# --------------------------------------------------------------------------- the runner


class Stress:
    def __init__(self, args: argparse.Namespace, ep: Endpoints, console: Console) -> None:
        self.args = args
        self.ep = ep
        self.c = console
        self.r = Report(console)
        self.api: Api = None  # type: ignore[assignment]  # made inside the event loop
        self.direct = DirectReplicas(ep)
        self.run_tag = f"s{int(time.time()) % 10_000_000}{random.randrange(36 ** 3):03x}"
        self.progress_enabled = console.is_terminal

    def tag(self, what: str) -> str:
        return f"{self.run_tag}-{what}"

    def progress(self) -> Progress:
        return Progress(TextColumn("  {task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        console=self.c, disable=not self.progress_enabled, transient=True)

    # ----------------------------------------------------------------- shared helpers

    async def preflight(self) -> bool:
        st, status = await self.api.status()
        if st != 200:
            self.r.scenario = "preflight"
            self.r.bad("coordinator reachable", f"GET {self.ep.url}/status failed ({status.get('error', st)}); "
                       "start it with: .venv/bin/python -m coordinator --config config.toml")
            return False
        st, m = await self.api.metrics()
        if st != 200:
            self.r.scenario = "preflight"
            self.r.bad("metrics reachable", f"GET {self.ep.metrics}/metrics failed ({m.get('error', st)}); "
                       "pass --metrics-url or --config")
            return False
        if not status.get("ready", True):
            self.r.scenario = "preflight"
            self.r.bad("coordinator ready", "the coordinator is not accepting writes yet (GET /status ready=false)")
            return False
        down = [x["name"] for x in m["replicas"] if not x["is_healthy"]]
        self.c.print(f"coordinator {self.ep.url}: leader {status['current_master']}, mode {status['mode']}, "
                     f"commit timestamp {status['commit_timestamp']}"
                     + (f"; [yellow]unhealthy: {', '.join(down)}[/]" if down else ""), highlight=False)
        if self.direct.available:
            ids = {x["replica_id"] for x in m["replicas"]}
            if ids != set(self.direct.ids()):
                self.c.print(f"[yellow]config {self.ep.config_path} names {sorted(self.direct.ids())} but the "
                             f"coordinator has {sorted(ids)}: replicas will not be read directly[/]")
                self.direct.cfg = None
        if not self.direct.available:
            self.c.print("[yellow]no coordinator config known (--config): per-replica checks use the coordinator's "
                         "/metrics instead of reading each server[/]")
        return True

    async def metrics(self) -> dict[str, dict[str, Any]]:
        st, m = await self.api.metrics()
        if st != 200:
            raise RuntimeError(f"GET /metrics failed: {m}")
        return {x["replica_id"]: x for x in m["replicas"]}

    async def wait_caught_up(self, ts: int, timeout: float = 20.0, need_all: bool = True) -> dict[str, dict[str, Any]]:
        """Wait until every replica reports applied_timestamp >= ts (the coordinator's view)."""
        deadline = time.monotonic() + timeout
        while True:
            m = await self.metrics()
            if all(x["applied_timestamp"] >= ts for x in m.values()):
                return m
            if time.monotonic() > deadline:
                return m
            await asyncio.sleep(0.1)

    async def verify_rows(self, acked: list[Rec], what: str, timeout: float | None = None) -> bool:
        """Every replica (read directly) holds every acknowledged row with the leader's id."""
        if not acked:
            self.r.bad(what, "no write was acknowledged, nothing to check")
            return False
        timeout = self.args.settle if timeout is None else timeout
        max_ts = max(r.ts for r in acked)
        m = await self.wait_caught_up(max_ts, timeout)
        behind = {rid: x["applied_timestamp"] for rid, x in m.items() if x["applied_timestamp"] < max_ts}
        if not self.direct.available:
            return self.r.check(not behind, f"{what} (coordinator-reported: {len(m)}/{len(m)} replicas applied up to "
                                f"timestamp {max_ts}; pass --config to read each server)",
                                f"replicas behind timestamp {max_ts}: {behind}")
        tag = acked[0].email.rsplit("-", 1)[0]
        expected = {r.email: int(r.body.get("last_insert_id") or 0) for r in acked}
        problems: dict[str, str] = {}
        holding = 0
        deadline = time.monotonic() + timeout
        for rid in self.direct.ids():
            while True:
                try:
                    rows = await self.direct.query(rid, "SELECT email, id FROM users WHERE email LIKE %s",
                                                   [tag + "-%"])
                    got = {e: int(i) for e, i in rows}
                    missing = [e for e in expected if e not in got]
                    wrong = [e for e, i in expected.items() if e in got and i and got[e] != i]
                    err = None
                except Exception as exc:  # noqa: BLE001 — reported as the replica's problem
                    missing, wrong, err = list(expected), [], f"{type(exc).__name__}: {exc}"
                if not missing and not wrong:
                    holding += 1
                    break
                if time.monotonic() > deadline:
                    name = self.ep.replica_name(rid)
                    if err:
                        problems[rid] = f"{name} could not be read: {err}"
                    else:
                        parts = []
                        if missing:
                            parts.append(f"lacks {len(missing)} acknowledged rows (e.g. {missing[0]})")
                        if wrong:
                            parts.append(f"{len(wrong)} rows with another id than the leader's (e.g. {wrong[0]})")
                        problems[rid] = f"{name} " + " and ".join(parts)
                    break
                await asyncio.sleep(0.3)
        n = len(self.direct.ids())
        return self.r.check(not problems, f"{what} ({holding}/{n} replicas hold all {len(expected)} acknowledged rows, "
                            "read directly from each server)", "; ".join(problems.values()))

    async def burst(self, tag: str, n: int, clients: int) -> list[Rec]:
        load = Load(self.api, tag, clients, n=n)
        load.start()
        return await load.wait()

    def print_replicas(self, m: dict[str, dict[str, Any]], cabinet: list[str], mark: str | None = None,
                       note: str = "slowed") -> None:
        t = Table(box=None, pad_edge=False, header_style="bold")
        for col in ("replica", "role", "healthy", "ack ms", "poll ms", "lag", "weight", "cabinet"):
            t.add_column(col, justify="left" if col in ("replica", "role") else "right")
        for rid, x in m.items():
            name = x.get("name", rid) + (f" ← {note}" if rid == mark else "")
            t.add_row(name, "leader" if x["is_master"] else "follower", "yes" if x["is_healthy"] else "NO",
                      "-" if x["ack_latency_ms"] is None else f"{x['ack_latency_ms']:.1f}",
                      f"{x['latency_ms']:.1f}",
                      str(x["replication_lag"]), f"{x['weight']:.3f}", "●" if rid in cabinet else "")
        self.c.print(t)

    # ----------------------------------------------------------------- concurrent

    async def concurrent(self) -> None:
        a = self.args
        n, clients = a.writes, a.clients
        self.r.info(f"{n} concurrent INSERTs into users from {clients} clients (unique tag {self.tag('c')})")
        with self.progress() as prog:
            task = prog.add_task("writes", total=n)
            load = Load(self.api, self.tag("c"), clients, n=n, on_done=lambda _r: prog.advance(task))
            t0 = time.perf_counter()
            load.start()
            recs = await load.wait()
            elapsed = time.perf_counter() - t0
        acked = [r for r in recs if r.ok]
        lat = summary_ms([r.end - r.start for r in acked])
        fig = {"writes": n, "clients": clients, "elapsed_s": round(elapsed, 3), "successful": len(acked),
               "throughput_per_s": round(len(acked) / elapsed, 2) if elapsed else 0, "latency": lat}
        self.r.figures["concurrent"] = fig
        self.r.check(len(recs) == n, f"Completed {n} writes in {elapsed:.2f}s", f"only {len(recs)} answered")
        self.r.ok(f"Throughput: {fig['throughput_per_s']:.2f} writes/sec (p50 {lat['p50_ms']:.1f} ms, "
                  f"p99 {lat['p99_ms']:.1f} ms per write)")
        errors = Counter(f"{r.status} {r.body.get('code') or r.body.get('error', '')}" for r in recs if not r.ok)
        self.r.check(len(acked) == n, f"Successful: {len(acked)}/{n}", f"failures: {dict(errors)}")
        if not acked:
            raise Abort()
        self.check_timestamps(acked)
        # quorum: every acknowledged write carried a committing quorum
        bad_q = [r for r in acked if not (r.body.get("quorum") and r.body["quorum"]["weight"] > r.body["quorum"]["threshold"])]
        shapes = Counter()
        totals = Counter()
        for r in acked:
            m = re.search(r"quorum: (\d+)/(\d+), total: (\d+)/(\d+)", r.body.get("message", ""))
            if m:
                shapes[f"{m.group(1)}/{m.group(2)}"] += 1
                totals[f"{m.group(3)}/{m.group(4)}"] += 1
        counts = [len(r.body["quorum"].get("acked", [])) for r in acked if r.body.get("quorum")]
        q0 = acked[0].body.get("quorum") or {}
        n_rep = len(self.direct.ids()) or "?"
        self.r.check(not bad_q, f"Quorum achieved for all writes ({q0.get('mode')}: acknowledged weight > "
                     f"{q0.get('threshold', 0):.3g} for {len(acked) - len(bad_q)}/{len(acked)}; acked by "
                     f"{min(counts, default=0)}-{max(counts, default=0)} of {n_rep} replicas at reply time)",
                     f"{len(bad_q)} writes acknowledged without a committing quorum, e.g. {bad_q[:1] and bad_q[0].body}")
        fig["quorum_shapes"] = dict(shapes)
        fig["followers_at_reply"] = dict(totals)
        await self.verify_rows(acked, "All replicas updated")

    def check_timestamps(self, acked: list[Rec]) -> None:
        ts = [r.ts for r in acked]
        dup = [t for t, k in Counter(ts).items() if k > 1]
        problems = []
        if dup:
            problems.append(f"{len(dup)} timestamps given twice (e.g. {dup[0]})")
        if any(t <= 0 for t in ts):
            problems.append("a write got no timestamp")
        # commit order: auto-increment ids (assigned by the leader in execution order) must
        # increase with the timestamps
        by_ts = sorted(acked, key=lambda r: r.ts)
        ids = [int(r.body.get("last_insert_id") or 0) for r in by_ts]
        inv = sum(1 for x, y in zip(ids, ids[1:]) if not y > x)
        if inv:
            problems.append(f"{inv} pairs whose AUTO_INCREMENT ids do not increase with the timestamp")
        # real-time order: a write sent after another one was acknowledged has a larger timestamp
        events = sorted([(r.end, 0, r.ts) for r in acked] + [(r.start, 1, r.ts) for r in acked])
        seen_max, late = 0, 0
        for _, kind, t in events:
            if kind == 0:
                seen_max = max(seen_max, t)
            elif t <= seen_max:
                late += 1
        if late:
            problems.append(f"{late} writes got a timestamp below one acknowledged before they were sent")
        self.r.check(not problems, f"All writes received unique, ordered timestamps ({min(ts)}..{max(ts)}: unique, "
                     "ids increase with timestamps, later writes get later timestamps)", "; ".join(problems))

    # ----------------------------------------------------------------- performance

    async def performance(self) -> None:
        a = self.args
        dur = a.duration
        self.r.info(f"{a.clients} clients writing for {dur:g} s; latencies are measured per request by this client")
        with self.progress() as prog:
            task = prog.add_task("seconds", total=int(dur))
            load = Load(self.api, self.tag("p"), a.clients, duration=dur)
            load.start()
            t0 = time.perf_counter()
            while not all(t.done() for t in load._tasks):
                prog.update(task, completed=min(int(dur), int(time.perf_counter() - t0)))
                await asyncio.sleep(0.2)
            recs = await load.wait()
            elapsed = time.perf_counter() - load.t0
        acked = [r for r in recs if r.ok]
        lat = summary_ms([r.end - r.start for r in acked])
        server = summary_ms([float(r.body.get("latency_ms", 0)) / 1000 for r in acked])
        fig = {"clients": a.clients, "duration_s": round(elapsed, 2), "writes": len(recs), "successful": len(acked),
               "throughput_per_s": round(len(acked) / elapsed, 2), "latency_client": lat, "latency_server": server}
        self.r.figures["performance"] = fig
        self.r.check(len(acked) == len(recs) and acked, f"{len(acked)}/{len(recs)} writes succeeded in {elapsed:.1f} s",
                     f"{len(recs) - len(acked)} failed: {Counter(r.status for r in recs if not r.ok)}")
        self.r.ok(f"Throughput: {fig['throughput_per_s']:.1f} writes/sec at {a.clients} clients")
        self.r.ok(f"Write latency (client-measured, per request): p50 {lat['p50_ms']:.1f} ms, "
                  f"p95 {lat['p95_ms']:.1f} ms, p99 {lat['p99_ms']:.1f} ms, max {lat['max_ms']:.1f} ms")
        self.r.info(f"coordinator-reported latency: p50 {server['p50_ms']:.1f} ms, p99 {server['p99_ms']:.1f} ms")
        if acked:
            m = await self.wait_caught_up(max(r.ts for r in acked), 15)
            st, q = await self.api.quorum()
            self.print_replicas(m, q.get("quorum", []) if st == 200 else [])
            unhealthy = [x["name"] for x in m.values() if not x["is_healthy"]]
            behind = [x["name"] for x in m.values() if x["applied_timestamp"] < max(r.ts for r in acked)]
            fig["replicas"] = list(m.values())
            self.r.check(not unhealthy and not behind, f"Replica health after load: {len(m)}/{len(m)} healthy and "
                         "caught up", f"unhealthy: {unhealthy}; behind: {behind}")

    # ----------------------------------------------------------------- lag

    async def fault(self, rid: str, delay_ms: int | None) -> tuple[bool, str]:
        body = {"delay_ms": delay_ms} if delay_ms else {}
        st, res = await self.api.admin(f"replicas/{rid}/fault", body)
        if st == 200:
            return True, ""
        return False, f"{st} {res.get('error', res)}"

    async def manual(self, what: str, command: str) -> bool:
        """No control backend: tell the user what to run; wait for Enter with --interactive."""
        self.c.print(f"[yellow]The coordinator cannot {what} itself (no control backend). Run in another terminal:[/]")
        self.c.print(f"    {command}", highlight=False)
        if not self.args.interactive:
            self.r.skip(f"{self.r.scenario}: skipped (re-run with --interactive to do the step by hand)")
            return False
        await asyncio.get_running_loop().run_in_executor(None, input, "Press Enter when done... ")
        return True

    async def lag_round(self, k: int, label: str, mark: str | None,
                        note: str = "") -> tuple[dict[str, dict[str, Any]], list[str], list[Rec]]:
        recs = await self.burst(self.tag(f"l{label}{k}"), 20, 8)
        st, one = await self.api.query("INSERT INTO users (name, email) VALUES (%s, %s)",
                                       ["stress lag", f"{self.tag('lag')}-{label}{k}@stress.local"])
        m = await self.metrics()
        st_q, q = await self.api.quorum()
        cab = q.get("quorum", []) if st_q == 200 else []
        self.c.print(f"[bold]round {label}{k}[/]: cabinet {', '.join(cab)}", highlight=False)
        self.print_replicas(m, cab, mark, note)
        self.c.print(f"  write: {one.get('message') or one.get('error')} in {one.get('latency_ms', 0):.1f} ms",
                     highlight=False)
        return m, cab, recs

    async def lag(self) -> None:
        delay = 100
        for k in (1, 2):
            m, cab, _ = await self.lag_round(k, "base", None)
        followers = [x for x in cab if not m[x]["is_master"]]
        if not followers:
            self.r.bad("cabinet has a follower", f"cabinet is {cab}")
            raise Abort()
        target = followers[0]
        name = m[target]["name"]
        self.r.info(f"slowing {name} (a cabinet member) by {delay} ms per round trip")
        ok, why = await self.fault(target, delay)
        if not ok:
            if "501" in why or "backend" in why:
                if not await self.manual(f"delay {name}",
                                         f"scripts/cluster.py delay {target} {delay}    # or, with Docker: "
                                         f"docker compose exec {name} tc qdisc add dev eth0 root netem delay {delay}ms"):
                    return
            else:
                self.r.bad(f"slow {name} via the admin fault endpoint", why)
                raise Abort()
        rounds = []
        left_at = None
        out_rounds = 0
        slowed_lat: list[float] = []
        max_ack = 0.0
        try:
            for k in range(1, 13):
                await asyncio.sleep(0.4)
                m, cab, recs = await self.lag_round(k, "slow", target, "slowed")
                rounds.append({"phase": "slowed", "cabinet": cab, "metrics": m})
                ack = m[target]["ack_latency_ms"] or 0.0
                max_ack = max(max_ack, ack)
                if target not in cab and ack >= delay / 2:
                    out_rounds += 1
                    left_at = left_at or k
                    slowed_lat += [r.end - r.start for r in recs if r.ok]
                    if out_rounds >= 2:
                        break
                else:
                    out_rounds, left_at, slowed_lat = 0, None, []
            self.r.check(out_rounds >= 2, f"{name} left the cabinet once its measured ack latency showed the delay "
                         f"(ack {m[target]['ack_latency_ms'] or 0:.0f} ms, out from round {left_at} on); cabinet now "
                         f"{', '.join(cab)}",
                         f"after 12 rounds: ack {m[target]['ack_latency_ms']} ms, cabinet {cab}")
            if slowed_lat:
                p50 = summary_ms(slowed_lat)["p50_ms"]
                self.r.check(p50 < delay, f"Writes kept committing without waiting for {name}: p50 {p50:.1f} ms "
                             f"< the {delay} ms delay", f"p50 {p50:.1f} ms: writes wait for the slow replica")
        finally:
            healed, why = await self.fault(target, None)
            if not healed:
                await self.manual(f"heal {name}", f"scripts/cluster.py heal {target}")
        self.r.info(f"healed {name}")
        recovered_at = None
        back_in = None
        for k in range(1, 16):
            await asyncio.sleep(0.3)
            m, cab, _ = await self.lag_round(k, "heal", target, "healed")
            rounds.append({"phase": "healed", "cabinet": cab, "metrics": m})
            ack = m[target]["ack_latency_ms"]
            if recovered_at is None and ack is not None and ack < delay / 4:
                recovered_at = k
            if recovered_at is not None and target in cab:
                back_in = k
                break
            if recovered_at is not None and k >= recovered_at + 3:
                break
        self.r.check(recovered_at is not None, f"{name} is fast again after heal (ack {m[target]['ack_latency_ms'] or 0:.1f} ms "
                     f"from {max_ack:.0f} ms, round {recovered_at})",
                     f"ack latency still {m[target]['ack_latency_ms']} ms after 15 rounds")
        if back_in is not None:
            self.r.ok(f"{name} came back into the cabinet (round {back_in})")
        else:
            ranked = sorted((x for x in m.values() if not x["is_master"]), key=lambda x: -x["weight"])
            pos = [x["replica_id"] for x in ranked].index(target) + 1
            self.r.info(f"{name} is ranked follower #{pos} by ack latency; the cabinet keeps the fastest follower, "
                        f"currently {', '.join(c for c in cab if not m[c]['is_master'])}")
        self.r.figures["lag"] = {"slowed": target, "delay_ms": delay, "left_cabinet_round": left_at,
                                 "recovered_round": recovered_at, "back_in_cabinet_round": back_in,
                                 "rounds": rounds}

    # ----------------------------------------------------------------- failover

    async def failover(self) -> None:
        a = self.args
        st, status = await self.api.status()
        old = status["leader"]
        old_name = status["current_master"]
        clients = min(a.clients, 16)
        load = Load(self.api, self.tag("f"), clients)
        load.start()
        self.r.info(f"write load: {clients} clients; leader is {old_name}")
        await asyncio.sleep(1.5)
        before = len(load.acked)
        t_stop = time.perf_counter()
        result: dict[str, Any] = {}
        interactive = a.interactive
        if not interactive:
            st, result = await self.api.admin("stop-master", {}, timeout=60)
            if st == 501:
                interactive = await self.manual(f"stop {old_name}",
                                                f"scripts/cluster.py stop {old}    # or: docker compose stop {old_name}")
                if not interactive:
                    await load.stop()
                    return
            elif st != 200:
                await load.stop()
                self.r.bad("POST /admin/stop-master", f"{st}: {result.get('error', result)}")
                raise Abort()
        if interactive:
            self.c.print(f"[bold]Stop the master now[/], in another terminal:  scripts/cluster.py stop {old}   "
                         f"(Docker: docker compose stop {old_name})", highlight=False)
            await asyncio.get_running_loop().run_in_executor(None, input, "Press Enter once it is stopped... ")
            t_stop = time.perf_counter()
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                st, s = await self.api.status()
                if st == 200 and s["leader"] != old:
                    break
                await asyncio.sleep(0.1)
            st, ev = await self.api.get(self.ep.url + "/admin/events?kind=failover&limit=1")
            last = (ev.get("events") or [{}])[-1] if st == 200 else {}
            st, elect = await self.api.elect()
            result = {"new_master": s.get("current_master"), "new_leader_id": s.get("leader"),
                      "timings": last.get("timings", {}), "election_details": last.get("election") or {}}
        t_done = time.perf_counter()
        new = result.get("new_leader_id")
        self.r.check(bool(new) and new != old, f"Failure of {old_name} detected; new master {result.get('new_master')}",
                     f"the leader did not change: {result}")
        tm = result.get("timings") or {}
        if tm:
            self.r.info(f"failover timings: detect {tm.get('detect_ms')} ms, elect {tm.get('elect_ms')} ms, catch-up "
                        f"{tm.get('catch_up_ms')} ms, resume {tm.get('resume_ms')} ms, total {tm.get('total_ms')} ms")
        ed = result.get("election_details") or {}
        if ed:
            self.r.ok(f"SEER elected {result.get('new_master')} (score {_r(ed.get('score'))}, predicted commit "
                      f"{_r(ed.get('predicted_commit_ms'))} ms)")
            t = Table(box=None, header_style="bold")
            for col in ("candidate", "eligible", "score", "predicted ms", "exec ms", "quorum wait", "penalty", "why not"):
                t.add_column(col)
            for cnd in ed.get("candidates", []):
                t.add_row(cnd["name"], "yes" if cnd["eligible"] else "no", _r(cnd.get("score")),
                          _r(cnd.get("predicted_commit_ms")), _r(cnd.get("exec_ms")),
                          _r(cnd.get("quorum_wait_ms")), _r(cnd.get("instability_penalty_ms")),
                          cnd.get("reason") or "")
            self.c.print(t)
            if ed.get("reason"):
                self.r.info(f"SEER: {ed['reason']}")
        await asyncio.sleep(1.5)
        recs = await load.stop()
        after = [r for r in recs if r.ok and r.start >= t_done]
        on_new = {r.body.get("executed_on") for r in after}
        self.r.check(bool(after) and on_new == {result.get("new_master")},
                     f"Writes continued without manual intervention ({len(after)} acknowledged after the failover, "
                     f"executed on {', '.join(sorted(x for x in on_new if x))})",
                     f"{len(after)} writes after the failover, executed on {on_new}")
        gap = max_gap(recs, t_stop, t_done + 1.0)
        errs = Counter(f"{r.status} {r.body.get('code', '')}" for r in recs if not r.ok)
        self.r.info(f"client-visible write gap: {gap * 1000:.0f} ms ({before} writes acked before the stop, "
                    f"{len(load.acked)} in all; failed: {dict(errs) or 'none'})")
        # the old master comes back as a follower
        if not a.interactive:
            st, started = await self.api.admin("start-master", {}, timeout=60)
        else:
            self.c.print(f"[bold]Start {old_name} again[/]:  scripts/cluster.py start {old}", highlight=False)
            await asyncio.get_running_loop().run_in_executor(None, input, "Press Enter once it is started... ")
            started = {}
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                m = await self.metrics()
                if m[old]["is_healthy"] and not m[old]["is_master"]:
                    started = {"role": "follower", "caught_up": True, "applied_timestamp": m[old]["applied_timestamp"]}
                    break
                await asyncio.sleep(0.2)
            st = 200 if started else 504
        self.r.check(st == 200 and started.get("role") == "follower" and started.get("caught_up"),
                     f"{old_name} restarted and rejoined as follower (caught up to timestamp "
                     f"{started.get('applied_timestamp')})", f"{st}: {started}")
        await self.verify_rows(load.acked, "No acknowledged write lost")
        self.r.figures["failover"] = {"old_master": old_name, "new_master": result.get("new_master"),
                                      "timings": tm, "election": ed, "write_gap_ms": round(gap * 1000, 1),
                                      "acked": len(load.acked), "failed": dict(errs), "clients": clients}

    # ----------------------------------------------------------------- compare

    async def compare(self) -> None:
        a = self.args
        st, status = await self.api.status()
        original = status["mode"]
        dur = max(1.0, a.duration / 2)
        clients = a.clients
        m = await self.metrics()
        st_q, q = await self.api.quorum()
        ranking = q.get("ranking") or q.get("quorum") or []
        followers = [x for x in ranking if not m[x]["is_master"]] or [x for x in m if not m[x]["is_master"]]
        slow = followers[:2]
        slow_names = [m[x]["name"] for x in slow]
        self.r.info(f"{clients} clients, {dur:g} s per cell; faulty case: {', '.join(slow_names)} +50 ms")
        cells: list[dict[str, Any]] = []
        faulted = False
        manual_needed = False
        try:
            for fault in ("healthy", "+50 ms on 2 followers"):
                if fault != "healthy":
                    for rid in slow:
                        ok, why = await self.fault(rid, 50)
                        if not ok:
                            manual_needed = True
                            self.r.skip(f"compare: faulty half skipped — cannot delay {m[rid]['name']}: {why}")
                            break
                        faulted = True
                    if manual_needed:
                        break
                    await asyncio.sleep(1.0)
                for mode in ("cabinet", "majority", "all"):
                    st, res = await self.api.admin("replication-mode", {"mode": mode})
                    if st != 200:
                        self.r.bad(f"switch to {mode} mode", f"{st} {res}")
                        raise Abort()
                    await self.burst(self.tag(f"w{mode[0]}{len(cells)}"), 20, 4)  # let the ranking settle
                    with self.progress() as prog:
                        task = prog.add_task(f"{mode:<8} {fault}", total=None)
                        load = Load(self.api, self.tag(f"m{len(cells)}"), clients, duration=dur,
                                    on_done=lambda _r, task=task: prog.advance(task))
                        load.start()
                        recs = await load.wait()
                    el = time.perf_counter() - load.t0
                    acked = [r for r in recs if r.ok]
                    lat = summary_ms([r.end - r.start for r in acked])
                    cells.append({"mode": mode, "fault": fault, "writes_per_s": round(len(acked) / el, 1),
                                  "p50_ms": lat["p50_ms"], "p99_ms": lat["p99_ms"], "errors": len(recs) - len(acked)})
                    self.r.info(f"{mode:<8} {fault:<22} {cells[-1]['writes_per_s']:>8.1f} w/s  p50 {lat['p50_ms']:.1f} "
                                f"ms  p99 {lat['p99_ms']:.1f} ms")
        finally:
            st, res = await self.api.admin("replication-mode", {"mode": original})
            healed = True
            if faulted:
                for rid in slow:
                    ok, _ = await self.fault(rid, None)
                    healed = healed and ok
            st2, s2 = await self.api.status()
        t = Table(title=f"same workload, {clients} clients, {dur:g} s per cell (client: Python aiohttp)",
                  header_style="bold")
        for col in ("mode", "followers", "writes/s", "p50 ms", "p99 ms", "errors"):
            t.add_column(col, justify="left" if col in ("mode", "followers") else "right")
        for cell in cells:
            t.add_row(cell["mode"], cell["fault"], f"{cell['writes_per_s']:.1f}", f"{cell['p50_ms']:.1f}",
                      f"{cell['p99_ms']:.1f}", str(cell["errors"]))
        self.c.print(t)
        errs = sum(c["errors"] for c in cells)
        self.r.check(errs == 0, f"All {len(cells)} cells ran without failed writes", f"{errs} failed writes")
        self.r.check(st2 == 200 and s2.get("mode") == original, f"Mode restored to {original}",
                     f"mode is {s2.get('mode')}")
        if faulted:
            self.r.check(healed, f"Faults healed on {', '.join(slow_names)}", "a heal request failed")
        self.r.figures["compare"] = {"clients": clients, "seconds_per_cell": dur, "slowed": slow, "cells": cells}

    # ----------------------------------------------------------------- driver

    async def run(self, scenarios: list[str]) -> int:
        self.api = Api(self.ep, connections=max(self.args.clients, 16))
        try:
            if not await self.preflight():
                return 2
            for name in scenarios:
                self.r.scenario = name
                self.r.header(f"Scenario: {name}")
                try:
                    await getattr(self, name)()
                except Abort:
                    pass
                except Exception as exc:  # noqa: BLE001 — a crash is a failed scenario, not a traceback
                    self.r.bad(f"{name} ran to the end", f"{type(exc).__name__}: {exc}")
            if len(scenarios) > 1:
                self.summary()
        finally:
            await self.api.close()
        return 1 if self.r.failed else 0

    def summary(self) -> None:
        self.r.header("Summary")
        t = Table(header_style="bold")
        t.add_column("scenario")
        t.add_column("passed", justify="right")
        t.add_column("failed", justify="right")
        t.add_column("skipped", justify="right")
        for name in dict.fromkeys(c["scenario"] for c in self.r.checks):
            cs = [c for c in self.r.checks if c["scenario"] == name]
            t.add_row(name, str(sum(c["ok"] is True for c in cs)), str(sum(c["ok"] is False for c in cs)),
                      str(sum(c["ok"] is None for c in cs)))
        self.c.print(t)
        if self.r.failed:
            for c in self.r.failed:
                self.c.print(f"[red]✗ {c['scenario']}: {c['check']}[/] — {c.get('reason', '')}")
        else:
            self.c.print(f"[green]✓ all {sum(c['ok'] is True for c in self.r.checks)} checks passed[/]")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenario", choices=SCENARIOS + ("all",), default="all")
    ap.add_argument("--writes", type=int, default=200, help="writes in the concurrent scenario (default 200)")
    ap.add_argument("--clients", type=int, default=32, help="concurrent clients (default 32)")
    ap.add_argument("--duration", type=float, default=10.0,
                    help="seconds of load for performance (compare: half of it per cell); default 10")
    ap.add_argument("--url", help="gateway URL (default http://localhost:8000, or the --config's port)")
    ap.add_argument("--metrics-url", help="metrics service URL (default: the gateway's host, port 8003)")
    ap.add_argument("--config", help="the coordinator's config.toml (replica addresses for direct checks)")
    ap.add_argument("--json", help="write every figure and check to this file")
    ap.add_argument("--settle", type=float, default=20.0,
                    help="seconds a replica may take to show an acknowledged row before it counts as missing")
    ap.add_argument("--interactive", action="store_true",
                    help="failover: you stop/start the master yourself; manual fault steps wait for Enter")
    args = ap.parse_args(argv)
    if args.writes < 1 or args.clients < 1 or args.duration <= 0:
        ap.error("--writes, --clients and --duration must be positive")
    tty = sys.stdout.isatty()
    console = Console(no_color=not tty, highlight=tty, width=None if tty else 160, soft_wrap=not tty)
    ep = resolve_endpoints(args.url, args.metrics_url, args.config)
    for note in ep.notes:
        console.print(f"[yellow]{note}[/]")
    order = ["concurrent", "performance", "lag", "compare", "failover"] if args.scenario == "all" else [args.scenario]
    stress = Stress(args, ep, console)
    started = time.time()
    code = asyncio.run(stress.run(order))
    if args.json:
        Path(args.json).write_text(json.dumps({
            "url": ep.url, "scenarios": order, "started": started, "elapsed_s": round(time.time() - started, 1),
            "settings": {"writes": args.writes, "clients": args.clients, "duration": args.duration},
            "checks": stress.r.checks, "figures": stress.r.figures, "exit_status": code,
        }, indent=2, default=str))
        console.print(f"figures written to {args.json}")
    return code


if __name__ == "__main__":
    sys.exit(main())
