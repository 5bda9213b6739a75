"""Nemesis campaign (Jepsen-style) against a real cluster and a real coordinator process.

Clients run a *bank* workload (transfers as /transaction, total must stay constant,
strong reads of the total) and a *set* workload (unique inserts, every acknowledged
value recorded), retrying with the same request_id on unknown outcomes, while a
nemesis driven by one seed kills, pauses, stops, delays and partitions random
replicas (the leader included) and kill -9s the coordinator. Afterwards everything
is healed and the checker verifies: every strong read saw the right total; every
acknowledged insert is present exactly once; replicas are identical; acknowledged
timestamps are unique and match the log; each epoch had exactly one leader.

    .venv/bin/python -m tests.chaos.nemesis --duration 600 --seed 7   # its own cluster in a temp dir
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from devcluster.cluster import LocalCluster  # noqa: E402
from devcluster.ports import free_ports  # noqa: E402
from tests.conftest import CoordinatorProcess, config_data, direct, table_digest, wipe  # noqa: E402

ACCOUNTS, BALANCE = 10, 100


@dataclass
class Report:
    seed: int
    duration_s: float
    schedule: list[str] = field(default_factory=list)
    ops: int = 0
    acked_inserts: int = 0
    acked_transfers: int = 0
    unknown: int = 0
    reads_ok: int = 0
    bad_reads: list[int] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    duplicates: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def faults(self) -> int:
        return len(self.schedule)

    def summary(self) -> str:
        return (f"seed={self.seed} duration={self.duration_s:.0f}s faults={self.faults} ops={self.ops} "
                f"acked_inserts={self.acked_inserts} acked_transfers={self.acked_transfers} "
                f"unknown_outcomes={self.unknown} strong_reads={self.reads_ok} lost={len(self.lost)} "
                f"duplicates={self.duplicates} problems={len(self.problems)}")


class Campaign:
    def __init__(self, cluster: LocalCluster, workdir: Path, seed: int, duration_s: float, say: Any = print) -> None:
        self.cluster, self.workdir, self.seed, self.duration_s, self.say = cluster, workdir, seed, duration_s, say
        self.rng = random.Random(seed)
        self.report = Report(seed, duration_s)
        data = config_data(cluster, coordinator={"log_level": "info"},
                           replication={"write_timeout_s": 4.0}, mysql={"query_timeout_s": 2.0})
        self.coord = CoordinatorProcess(data, workdir)
        self.stop = asyncio.Event()
        self.acked_values: dict[str, int] = {}
        self.acked_ts: list[int] = []
        self.epoch_leaders: dict[int, set[str]] = defaultdict(set)

    # --- clients ---------------------------------------------------------------------------

    async def _post(self, s: aiohttp.ClientSession, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        try:
            async with s.post(self.coord.url + path, json=body, timeout=aiohttp.ClientTimeout(total=15)) as r:
                return r.status, await r.json()
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError):
            return 0, {}

    async def _keyed(self, s: aiohttp.ClientSession, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """Send until a definite answer; unknown outcomes are retried with the same request_id."""
        for _ in range(40):
            self.report.ops += 1
            st, b = await self._post(s, path, body)
            if st in (200, 400, 403, 409):
                return st, b
            self.report.unknown += 1
            if self.stop.is_set():
                break
            await asyncio.sleep(0.25)
        return 0, {}

    async def set_client(self, s: aiohttp.ClientSession, k: int) -> None:
        i = 0
        while not self.stop.is_set():
            i += 1
            v = f"s{self.seed}-{k}-{i}"
            st, b = await self._keyed(s, "/query", {"query": "INSERT INTO nem_set (v) VALUES (%s)", "params": [v],
                                                    "request_id": v})
            if st == 200:
                self.acked_values[v] = b["timestamp"]
                self.acked_ts.append(b["timestamp"])
                self.report.acked_inserts += 1
            elif st:
                self.report.problems.append(f"insert {v} refused: {st} {b.get('error')}")

    async def bank_client(self, s: aiohttp.ClientSession, k: int) -> None:
        rng = random.Random(self.seed * 1000 + k)
        i = 0
        while not self.stop.is_set():
            i += 1
            a, b = rng.sample(range(ACCOUNTS), 2)
            amount = rng.randrange(1, 30)
            st, body = await self._keyed(s, "/transaction", {"request_id": f"t{self.seed}-{k}-{i}", "statements": [
                {"query": "UPDATE accounts SET balance = balance + %s WHERE id = %s", "params": [amount, b]},
                {"query": "UPDATE accounts SET balance = balance - %s WHERE id = %s", "params": [amount, a]}]})
            if st == 200:
                self.report.acked_transfers += 1
                self.acked_ts.append(body["timestamp"])
            elif st and body.get("code") != "check_constraint":
                self.report.problems.append(f"transfer refused: {st} {body.get('error')}")

    async def reader(self, s: aiohttp.ClientSession) -> None:
        while not self.stop.is_set():
            self.report.ops += 1
            st, b = await self._post(s, "/query", {"query": "SELECT SUM(balance) AS total FROM accounts"})
            if st == 200:
                total = int(b["data"][0]["total"])
                self.report.reads_ok += 1
                if total != ACCOUNTS * BALANCE:
                    self.report.bad_reads.append(total)
            await asyncio.sleep(0.05)

    async def observer(self, s: aiohttp.ClientSession) -> None:
        while not self.stop.is_set():
            try:
                async with s.get(self.coord.url + "/status", timeout=aiohttp.ClientTimeout(total=2)) as r:
                    st = await r.json()
                    self.epoch_leaders[st["epoch"]].add(st["leader"])
            except (aiohttp.ClientError, asyncio.TimeoutError, ValueError, KeyError):
                pass
            await asyncio.sleep(0.3)

    # --- nemesis ----------------------------------------------------------------------------

    async def _leader(self, s: aiohttp.ClientSession) -> str | None:
        try:
            async with s.get(self.coord.url + "/status", timeout=aiohttp.ClientTimeout(total=2)) as r:
                return (await r.json())["leader"]
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError, KeyError):
            return None

    async def nemesis(self, s: aiohttp.ClientSession, deadline: float) -> None:
        names = self.cluster.node_names()
        kinds = ["kill", "pause", "stop", "delay", "partition", "coordinator"]
        while time.monotonic() < deadline:
            await asyncio.sleep(self.rng.uniform(1.5, 3.0))
            kind = self.rng.choice(kinds)
            leader = await self._leader(s)
            target = leader if (leader and self.rng.random() < 0.4) else self.rng.choice(names)
            hold = self.rng.uniform(1.0, 3.0)
            t = round(time.monotonic() - (deadline - self.duration_s), 1)
            if kind == "coordinator":
                self.report.schedule.append(f"{t}s kill -9 coordinator (down {hold:.1f}s)")
                self.coord.kill()
                await asyncio.sleep(hold)
                self.coord.start()
                await self.coord.wait_ready(s, 60)
                continue
            self.report.schedule.append(f"{t}s {kind} {target}{' (leader)' if target == leader else ''} "
                                        f"for {hold:.1f}s")
            await asyncio.to_thread(self._fault, kind, target)
            await asyncio.sleep(hold)
            await asyncio.to_thread(self._heal, kind, target)

    def _fault(self, kind: str, target: str) -> None:
        c = self.cluster
        {"kill": c.kill, "pause": c.pause, "stop": c.stop, "partition": c.partition}.get(
            kind, lambda n: c.delay(n, self.rng.choice([50, 150, 400])))(target)

    def _heal(self, kind: str, target: str) -> None:
        c = self.cluster
        if kind in ("kill", "stop"):
            c.start(target)
        elif kind == "pause":
            c.resume(target)
        else:
            c.heal(target)

    # --- the run -------------------------------------------------------------------------------

    async def run(self) -> Report:
        self.cluster.heal()
        await wipe(self.cluster)
        self.coord.start()
        async with aiohttp.ClientSession() as s:
            await self.coord.wait_ready(s, 60)
            for q in ("CREATE TABLE nem_set (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(64) NOT NULL UNIQUE)",
                      "CREATE TABLE accounts (id INT PRIMARY KEY, balance INT NOT NULL, CHECK (balance >= 0))"):
                st, b = await self._post(s, "/query", {"query": q})
                assert st == 200, b
            for i in range(ACCOUNTS):
                st, b = await self._post(s, "/query", {"query": "INSERT INTO accounts VALUES (%s, %s)",
                                                       "params": [i, BALANCE]})
                assert st == 200, b
            started = time.monotonic()
            deadline = started + self.duration_s
            workers = [asyncio.create_task(self.set_client(s, k)) for k in range(6)]
            workers += [asyncio.create_task(self.bank_client(s, k)) for k in range(4)]
            workers += [asyncio.create_task(self.reader(s)) for _ in range(2)]
            workers.append(asyncio.create_task(self.observer(s)))
            try:
                await self.nemesis(s, deadline)
            finally:
                self.stop.set()
                await asyncio.gather(*workers, return_exceptions=True)
                self.cluster.up()  # start/resume anything still down
                self.cluster.heal()
            if self.coord.proc is None or self.coord.proc.poll() is not None:
                self.coord.start()
            await self.coord.wait_ready(s, 60)
            await self._converge(s)
        try:
            await self._check()
        finally:
            self.coord.terminate()
        return self.report

    async def _converge(self, s: aiohttp.ClientSession) -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                metrics_port = self.coord.data["ports"]["metrics"]
                async with s.get(f"http://127.0.0.1:{metrics_port}/metrics") as r:
                    m = await r.json()
                reps = m["replicas"]
                if all(x["is_healthy"] and x["replication_lag"] == 0 for x in reps) and \
                        len({x["applied_timestamp"] for x in reps}) == 1:
                    return
            except (aiohttp.ClientError, ValueError, KeyError):
                pass
            await asyncio.sleep(0.5)
        self.report.problems.append("replicas did not converge within 120 s after healing")

    async def _check(self) -> None:
        rep = self.report
        names = self.cluster.node_names()
        digests = {n: await table_digest(self.cluster, n) for n in names}
        first = digests[names[0]]
        for n in names[1:]:
            if digests[n] != first:
                rep.problems.append(f"{n} differs from {names[0]}")
        values = [row[1] for row in first.get("nem_set", [])]
        rep.duplicates = len(values) - len(set(values))
        present = set(values)
        rep.lost = [v for v in self.acked_values if v not in present]
        total = sum(row[1] for row in first.get("accounts", []))
        if total != ACCOUNTS * BALANCE:
            rep.problems.append(f"bank total is {total}, expected {ACCOUNTS * BALANCE}")
        if rep.bad_reads:
            rep.problems.append(f"{len(rep.bad_reads)} strong reads saw a wrong total, e.g. {rep.bad_reads[:3]}")
        if len(set(self.acked_ts)) != len(self.acked_ts):
            rep.problems.append("an acknowledged timestamp was handed out twice")
        logged = await direct(self.cluster, names[0],
                              "SELECT request_id, ts, epoch, leader FROM _coordinator.log", db=None)
        by_key = {rid: ts for rid, ts, _, _ in logged if rid}
        wrong = [v for v, ts in self.acked_values.items() if v in by_key and by_key[v] != ts]
        if wrong:
            rep.problems.append(f"{len(wrong)} acknowledged timestamps differ from the log, e.g. {wrong[:3]}")
        leaders: dict[int, set[str]] = defaultdict(set)
        for _, _, epoch, leader in logged:
            leaders[int(epoch)].add(leader)
        for epoch, who in list(leaders.items()) + list(self.epoch_leaders.items()):
            if len(who) > 1:
                rep.problems.append(f"epoch {epoch} had two leaders: {sorted(who)}")


async def run_campaign(cluster: LocalCluster, workdir: Path, duration_s: float, seed: int, say: Any = print) -> Report:
    return await Campaign(cluster, workdir, seed, duration_s, say).run()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=60.0, help="seconds of faults (default 60)")
    ap.add_argument("--seed", type=int, default=None, help="seed (default: random, printed)")
    args = ap.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1, 10**6)
    tmp = Path(tempfile.mkdtemp(prefix="nemesis-"))
    cluster = LocalCluster(tmp / "cluster", nodes=4, ports=free_ports(4))
    print(f"nemesis: seed {seed}, {args.duration:.0f}s, cluster in {tmp}", flush=True)
    try:
        cluster.up()
        report = asyncio.run(run_campaign(cluster, tmp, args.duration, seed))
    finally:
        cluster.down(wipe=True)
    print("fault schedule:")
    for line in report.schedule:
        print("  " + line)
    for p in report.problems:
        print("PROBLEM: " + p)
    print(report.summary())
    return 0 if not (report.problems or report.lost or report.duplicates) else 1


if __name__ == "__main__":
    sys.exit(main())
