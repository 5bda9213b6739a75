#!/usr/bin/env python3
"""Side-by-side benchmark: quorum-committed writes through the coordinator vs the
same INSERTs straight on one MariaDB, measured in the same run on the same machine.

    .venv/bin/python scripts/bench.py                 # 64 and 256 clients, 10 s each
    .venv/bin/python scripts/bench.py --quick         # CI-sized
    .venv/bin/python scripts/bench.py --json out.json

It builds its own throwaway cluster (free ports, temp dir) and coordinator, so it
never touches the cluster of scripts/cluster.py. Load generators: wrk (HTTP, C)
for the coordinator, mariadb-slap (C) for MariaDB, so the Python client is never
what gets measured.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scripts.benchlib import (ROOT, cluster_and_coordinator, env_summary, http_json, mariadb_slap,  # noqa: E402
                              require_tools, run_wrk)

BENCH_TABLE = ("CREATE TABLE bench (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(255) NOT NULL, "
               "email VARCHAR(255) NOT NULL)")


def say(msg: str) -> None:
    print(msg, flush=True)


def write_part(url: str, cluster: Any, clients: list[int], duration: float) -> list[dict[str, Any]]:
    st, body = http_json(url + "/query", {"query": BENCH_TABLE})
    if st != 200:
        raise RuntimeError(f"cannot create the bench table: {body}")
    leader = cluster.node_names()[-1]
    host, port = cluster.address(leader, direct=True)
    import subprocess as sp
    sp.run(["mariadb", f"-h{host}", f"-P{port}", "-uroot", "-e",
            "CREATE DATABASE IF NOT EXISTS benchdirect; CREATE TABLE IF NOT EXISTS benchdirect.bench "
            "(id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(255) NOT NULL, email VARCHAR(255) NOT NULL)"],
           check=True)
    rows = []
    for c in clients:
        say(f"==> coordinator: {c} clients x {duration:g}s of single-row INSERTs (wrk) ...")
        _, before = http_json(url + "/status")
        w = run_wrk(url, c, duration, ROOT / "scripts" / "wrk_insert.lua", [f"c{c}", "bench"])
        _, after = http_json(url + "/status")
        committed = after["commit_timestamp"] - before["commit_timestamp"]
        say(f"    {w['per_s']:.0f} writes/s, p50 {w.get('p50_ms', 0):.1f} ms, p99 {w.get('p99_ms', 0):.1f} ms, "
            f"errors {w['errors']:.0f}, commits advanced by {committed}")
        queries = max(2000, int(w["per_s"] * duration)) if w["per_s"] else 5000
        say(f"==> MariaDB direct (no replication): {c} clients, {queries} INSERTs (mariadb-slap) ...")
        d = mariadb_slap(host, port, c, queries, "benchdirect",
                         "INSERT INTO bench (name, email) VALUES ('bench', 'direct@bench.local')")
        say(f"    {d['per_s']:.0f} writes/s, mean {d['mean_ms']:.1f} ms")
        rows.append({
            "clients": c, "duration_s": duration,
            "coordinator": {k: v for k, v in w.items() if k != "raw"} | {"client": "wrk"}, "wrk_output": w["raw"],
            "mariadb_direct": d | {"client": "mariadb-slap"},
            "ratio_vs_direct": w["per_s"] / d["per_s"] if d["per_s"] else None,
        })
    return rows


def print_write_table(rows: list[dict[str, Any]]) -> None:
    print()
    print("Quorum-committed single-row INSERTs (coordinator, Cabinet mode, 4 replicas) vs one MariaDB, no replication")
    print(f"{'clients':>8} | {'coord w/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} | "
          f"{'direct w/s':>10} {'mean ms':>8} | {'ratio':>6}")
    print("-" * 86)
    for r in rows:
        c, d = r["coordinator"], r["mariadb_direct"]
        print(f"{r['clients']:>8} | {c['per_s']:>10.0f} {c.get('p50_ms', 0):>8.1f} {c.get('p99_ms', 0):>8.1f} "
              f"{c['errors']:>7.0f} | {d['per_s']:>10.0f} {d['mean_ms']:>8.1f} | {r['ratio_vs_direct']:>6.2f}")
    print("coordinator side driven by wrk (HTTP); MariaDB side by mariadb-slap (mean latency = clients / throughput)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", default="64,256", help="comma-separated client counts (default 64,256)")
    ap.add_argument("--duration", type=float, default=10.0, help="seconds per measurement (default 10)")
    ap.add_argument("--quick", action="store_true", help="short run for CI (64 clients, 3 s)")
    ap.add_argument("--json", help="write all figures to this file")
    args = ap.parse_args()
    require_tools("wrk", "mariadb-slap", "mariadb")
    clients = [64] if args.quick else [int(x) for x in args.clients.split(",")]
    duration = 3.0 if args.quick else args.duration
    started = time.time()
    result: dict[str, Any] = {"env": env_summary(), "started": started}
    with cluster_and_coordinator(say=say) as (cluster, url, _cfg):
        result["writes"] = write_part(url, cluster, clients, duration)
    print_write_table(result["writes"])
    result["elapsed_s"] = round(time.time() - started, 1)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
        print(f"figures written to {args.json}")
    bad = [r for r in result["writes"] if r["coordinator"]["errors"] or not r["coordinator"]["per_s"]]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
