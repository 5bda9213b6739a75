"""Part 5 of scripts/bench.py: the same C clients against native semi-sync and the coordinator's MySQL port.

This is the honest comparison the HTTP figures cannot give: mariadb-slap (single-row INSERTs) and
sysbench `oltp_insert` drive the semi-sync primary and the coordinator's MySQL front end with the
same binary, the same statements, the same client counts. Both sides are equally durable
(`innodb_flush_log_at_trx_commit=1` on every server; semi-sync waits for one replica's ack,
the coordinator for its quorum).

Who calls what: `semisync_sysbench` runs while bench.py's semi-sync cluster is up;
`coordinator_mysql` runs against a started coordinator; `print_mysql` prints the table.
"""

from __future__ import annotations

import re
import subprocess
import time
from typing import Any, Callable

SYSBENCH_TABLE_SIZE = 1000


def sysbench(host: str, port: int, db: str, command: str, threads: int = 1, duration_s: float = 0.0,
             test: str = "oltp_insert") -> dict[str, Any]:
    """One sysbench run; raises on a FATAL error or a non-zero exit (sysbench stops at the first SQL error
    unless told to ignore it, and we never tell it to)."""
    argv = ["sysbench", test, f"--mysql-host={host}", f"--mysql-port={port}", "--mysql-user=root",
            "--mysql-password=", f"--mysql-db={db}", "--tables=1", f"--table-size={SYSBENCH_TABLE_SIZE}",
            f"--threads={threads}"]
    if command == "run":
        argv += [f"--time={max(1, round(duration_s))}", "--percentile=99"]
    out = subprocess.run([*argv, command], capture_output=True, text=True, timeout=duration_s + 300)
    text = out.stdout + out.stderr
    if out.returncode != 0 or "FATAL" in text:
        raise RuntimeError(f"sysbench {test} {command} on {host}:{port} failed ({out.returncode}):\n{text[-2000:]}")
    if command != "run":
        return {}
    return parse_sysbench(out.stdout)


def parse_sysbench(out: str) -> dict[str, Any]:
    def grab(pattern: str) -> float:
        m = re.search(pattern, out, re.M)
        if not m:
            raise RuntimeError(f"unexpected sysbench output (no {pattern!r}):\n{out[-2000:]}")
        return float(m.group(1))

    return {"per_s": grab(r"^\s*transactions:\s+\d+\s+\(([\d.]+) per sec"),
            "transactions": int(grab(r"^\s*transactions:\s+(\d+)")),
            "errors": int(grab(r"^\s*ignored errors:\s+(\d+)")),
            "mean_ms": grab(r"^\s*avg:\s+([\d.]+)"),
            "p99_ms": grab(r"^\s*99th percentile:\s+([\d.]+)")}


def semisync_sysbench(host: str, port: int, db: str, clients: list[int], duration: float,
                      say: Callable[[str], None]) -> dict[int, dict[str, Any]]:
    say(f"==> native semi-sync: sysbench oltp_insert prepare ({SYSBENCH_TABLE_SIZE} rows)")
    sysbench(host, port, db, "prepare")
    out: dict[int, dict[str, Any]] = {}
    for c in clients:
        say(f"==> native semi-sync: sysbench oltp_insert, {c} threads x {duration:g}s ...")
        r = sysbench(host, port, db, "run", c, duration)
        say(f"    {r['per_s']:.0f} inserts/s, avg {r['mean_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms")
        out[c] = r | {"client": "sysbench oltp_insert"}
    return out


def coordinator_mysql(port: int, db: str, clients: list[int], duration: float, slap: Callable[..., dict[str, float]],
                      semisync_slap: dict[int, dict[str, Any]], semisync_sb: dict[int, dict[str, Any]],
                      replica_count: Callable[[str], list[int]], say: Callable[[str], None]) -> dict[str, Any]:
    """mariadb-slap and sysbench through 127.0.0.1:`port`, then every replica's row count compared: a
    figure from writes that did not all land everywhere would not be a figure."""
    rows: list[dict[str, Any]] = []
    say(f"==> coordinator MySQL port: sysbench oltp_insert prepare ({SYSBENCH_TABLE_SIZE} rows)")
    sysbench("127.0.0.1", port, db, "prepare")
    for c in clients:
        say(f"==> coordinator MySQL port: {c} clients of single-row INSERTs (mariadb-slap) ...")
        s = slap("127.0.0.1", port, c, duration, db)
        say(f"    {s['per_s']:.0f} writes/s (mean {s['mean_ms']:.1f} ms)")
        say(f"==> coordinator MySQL port: sysbench oltp_insert, {c} threads x {duration:g}s ...")
        b = sysbench("127.0.0.1", port, db, "run", c, duration)
        say(f"    {b['per_s']:.0f} inserts/s, avg {b['mean_ms']:.1f} ms, p99 {b['p99_ms']:.1f} ms")
        ss, sb = semisync_slap.get(c, {}), semisync_sb.get(c, {})
        rows.append({"clients": c, "duration_s": duration,
                     "slap": s | {"client": "mariadb-slap"}, "sysbench": b | {"client": "sysbench oltp_insert"},
                     "semisync_slap": ss, "semisync_sysbench": sb,
                     "slap_ratio": round(s["per_s"] / ss["per_s"], 2) if ss.get("per_s") else None,
                     "sysbench_ratio": round(b["per_s"] / sb["per_s"], 2) if sb.get("per_s") else None})
    deadline = time.monotonic() + 60
    while True:
        counts = replica_count("SELECT COUNT(*) FROM sbtest1")
        if len(set(counts)) == 1 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    if len(set(counts)) != 1:
        raise RuntimeError(f"replicas disagree on sbtest1 after the MySQL-port runs: {counts}")
    say(f"    every replica holds the same {counts[0]} sbtest1 rows")
    return {"rows": rows, "sbtest1_rows_per_replica": counts}


def print_mysql(part: dict[str, Any]) -> None:
    print()
    print("Part 5 — the same C clients on both sides: coordinator MySQL port (4 replicas, cabinet) vs native "
          "semi-sync (1 primary + 3 replicas, AFTER_SYNC)")
    print(f"{'clients':>7} | {'client':<21} | {'coordinator':>11} {'mean':>6} | {'semi-sync':>9} {'mean':>6} | "
          f"{'coord ÷ semi-sync':>17}")
    print(f"{'':>7} | {'':<21} | {'writes/s':>11} {'ms':>6} | {'writes/s':>9} {'ms':>6} |")
    print("-" * 90)
    for r in part["rows"]:
        for key, label, ratio in (("slap", "mariadb-slap INSERT", r["slap_ratio"]),
                                  ("sysbench", "sysbench oltp_insert", r["sysbench_ratio"])):
            c, s = r[key], r[f"semisync_{key}"]
            shown = f"{ratio:.2f}" if ratio is not None else "-"
            print(f"{r['clients']:>7} | {label:<21} | {c['per_s']:>11.0f} {c['mean_ms']:>6.1f} | "
                  f"{s.get('per_s', 0):>9.0f} {s.get('mean_ms', 0):>6.1f} | {shown:>17}")
    print(f"mean: mariadb-slap = clients / throughput; sysbench = its own average latency. Afterwards every replica "
          f"held {part['sbtest1_rows_per_replica'][0]} sbtest1 rows.")
