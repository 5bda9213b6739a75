#!/usr/bin/env python3
"""Side-by-side benchmark (README, "Performance"), every comparison measured in the same run on the same machine.

    .venv/bin/python scripts/bench.py                 # 64 and 256 clients, 10 s per figure, 5 failover trials
    .venv/bin/python scripts/bench.py --quick         # CI-sized (~3 min)
    .venv/bin/python scripts/bench.py --json out.json

Parts (one table each):
1. writes   — quorum-committed single-row INSERTs through the coordinator (wrk, HTTP) vs the same
              INSERTs on (a) one MariaDB without replication and (b) native MariaDB semi-synchronous
              replication, 1 primary + 3 replicas, AFTER_SYNC, GTID (mariadb-slap), proxies bypassed
              on both sides; plus p50/p99 at a fixed lower concurrency measured by Python clients on
              both sides (mariadb-slap reports no percentiles);
2. slowed   — cabinet / majority / all × (healthy, two followers +50 ms), coordinator through the
              fault proxies (the delay is injected there), wrk;
3. failover — kill -9 and SIGSTOP of the leader under load: client-visible write gap (Python
              aiohttp load), p50 and max over the trials;
4. reads    — read latency through the gateway vs directly on a follower (one Python client, sequential);
5. mysql    — the same C clients on both sides: mariadb-slap INSERTs and sysbench oltp_insert against the
              semi-sync primary and the coordinator's MySQL port (scripts/benchmysql.py); then transactions:
              sysbench oltp_write_only / oltp_read_write on both sides (tps, p95, ignored errors/s), and
              head-of-line figures on the coordinator (autocommit write p50/p99 with no open transaction,
              with 8 open transactions locking other rows, and with 8 locking a row some writers need).

It builds its own throwaway clusters (free ports, temp dir) and coordinators and removes them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scripts.benchlib import (  # noqa: E402
    ROOT,
    Api,
    CoordinatorProc,
    env_summary,
    http_json,
    mariadb_slap,
    new_cluster,
    percentile,
    require_tools,
    resolve_endpoints,
    run_wrk,
    summary_ms,
)
from scripts.benchmysql import (  # noqa: E402
    coordinator_mysql,
    coordinator_oltp,
    head_of_line,
    mysql_failures,
    print_mysql,
    semisync_oltp,
    semisync_sysbench,
)

BENCH_COLS = "(id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(255) NOT NULL, email VARCHAR(255) NOT NULL)"
SLAP_INSERT = "INSERT INTO bench (name, email) VALUES ('bench', 'slap@bench.local')"
SEMISYNC_ARGS = ["--log-bin=mysql-bin", "--binlog-format=ROW", "--gtid-strict-mode=ON", "--sync-binlog=1",
                 "--rpl-semi-sync-master-enabled=ON", "--rpl-semi-sync-slave-enabled=ON",
                 "--rpl-semi-sync-master-wait-point=AFTER_SYNC", "--rpl-semi-sync-master-timeout=10000"]


def say(msg: str) -> None:
    print(msg, flush=True)


def sql(host: str, port: int, statement: str, db: str | None = None) -> list[list[str]]:
    cmd = ["mariadb", "--no-defaults", f"-h{host}", f"-P{port}", "-uroot", "-N", "-B", "-e", statement]
    if db:
        cmd.insert(-2, db)
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        raise RuntimeError(f"SQL on :{port} failed: {out.stderr.strip()} ({statement[:80]})")
    return [line.split("\t") for line in out.stdout.splitlines()]


def gstatus(host: str, port: int, like: str) -> dict[str, str]:
    return {k: v for k, v in sql(host, port, f"SHOW GLOBAL STATUS LIKE '{like}'")}


def wait(cond: Any, timeout: float, what: str, interval: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def slap_for(host: str, port: int, clients: int, duration: float, schema: str) -> dict[str, float]:
    """mariadb-slap sized to about `duration` seconds from a short calibration run."""
    cal = mariadb_slap(host, port, clients, max(500, clients * 10), schema, SLAP_INSERT)
    queries = max(1000, int(cal["per_s"] * duration))
    return mariadb_slap(host, port, clients, queries, schema, SLAP_INSERT)


# --------------------------------------------------------------------------- Python latency probes


async def sql_latency(host: str, port: int, db: str, clients: int, duration: float, stmt: str,
                      params: Any = None) -> dict[str, float]:
    import asyncmy

    lat: list[float] = []
    stop = time.perf_counter() + duration

    async def worker(k: int) -> None:
        conn = await asyncmy.connect(host=host, port=port, user="root", password="", db=db, autocommit=True)
        try:
            i = 0
            async with conn.cursor() as cur:
                while time.perf_counter() < stop:
                    i += 1
                    t = time.perf_counter()
                    await cur.execute(stmt, params(k, i) if callable(params) else params)
                    await cur.fetchall()
                    lat.append(time.perf_counter() - t)
        finally:
            conn.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(worker(k) for k in range(clients)))
    return summary_ms(lat) | {"per_s": round(len(lat) / (time.perf_counter() - t0), 1)}


async def http_latency(url: str, clients: int, duration: float, sql_text: str, params: Any = None,
                       extra: dict[str, Any] | None = None) -> dict[str, float]:
    ep = resolve_endpoints(url, url, None)
    api = Api(ep, connections=clients)
    lat: list[float] = []
    errors = 0
    stop = time.perf_counter() + duration

    async def worker(k: int) -> None:
        nonlocal errors
        i = 0
        while time.perf_counter() < stop:
            i += 1
            t = time.perf_counter()
            st, _ = await api.query(sql_text, params(k, i) if callable(params) else params, **(extra or {}))
            if st == 200:
                lat.append(time.perf_counter() - t)
            else:
                errors += 1

    try:
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(k) for k in range(clients)))
        return summary_ms(lat) | {"per_s": round(len(lat) / (time.perf_counter() - t0), 1), "errors": errors}
    finally:
        await api.close()


# --------------------------------------------------------------------------- part 1: writes


def semisync_part(tmp: Path, clients: list[int], duration: float, probe_clients: int, probe_s: float,
                  result: dict[str, Any], with_sysbench: bool, oltp_threads: list[int],
                  oltp_s: float) -> dict[int, dict[str, Any]]:
    cl = new_cluster(tmp / "semisync", 4, SEMISYNC_ARGS)
    out: dict[int, dict[str, Any]] = {}
    try:
        say("==> native semi-sync: starting 4 MariaDB servers with binlog + semi-sync (AFTER_SYNC, GTID)")
        cl.up()
        names = cl.node_names()
        primary = names[-1]
        ph, pp = cl.address(primary, direct=True)
        sql(ph, pp, "RESET MASTER")
        for name in names[:-1]:
            h, p = cl.address(name, direct=True)
            sql(h, p, "STOP SLAVE; RESET SLAVE ALL; RESET MASTER; SET GLOBAL gtid_slave_pos=''; "
                      f"CHANGE MASTER TO MASTER_HOST='{ph}', MASTER_PORT={pp}, MASTER_USER='root', "
                      "MASTER_PASSWORD='', MASTER_USE_GTID=slave_pos; START SLAVE")
        sql(ph, pp, f"CREATE DATABASE IF NOT EXISTS bench; CREATE TABLE bench.bench {BENCH_COLS}")
        wait(lambda: gstatus(ph, pp, "Rpl_semi_sync_master_clients").get("Rpl_semi_sync_master_clients") == "3",
             30, "3 semi-sync replicas")
        for name in names[:-1]:
            h, p = cl.address(name, direct=True)
            wait(lambda h=h, p=p: bool(sql(h, p, "SHOW TABLES FROM bench")), 30, f"{name} to replicate the bench table")
            st = gstatus(h, p, "Rpl_semi_sync_slave_status")
            if st.get("Rpl_semi_sync_slave_status") != "ON":
                raise RuntimeError(f"{name}: semi-sync replica status is {st}")
        before = gstatus(ph, pp, "Rpl_semi_sync_master_%")
        if before.get("Rpl_semi_sync_master_status") != "ON":
            raise RuntimeError(f"semi-sync is not active on the primary: {before}")
        variables = dict(sql(ph, pp, "SHOW GLOBAL VARIABLES WHERE Variable_name IN ('rpl_semi_sync_master_wait_point',"
                                     "'gtid_strict_mode','sync_binlog','innodb_flush_log_at_trx_commit','binlog_format',"
                                     "'rpl_semi_sync_master_timeout')"))
        say(f"    semi-sync ON with {before['Rpl_semi_sync_master_clients']} replicas; {variables}")
        for c in clients:
            say(f"==> native semi-sync: {c} clients, single-row INSERTs on the primary (mariadb-slap) ...")
            r = slap_for(ph, pp, c, duration, "bench")
            say(f"    {r['per_s']:.0f} writes/s (mean {r['mean_ms']:.1f} ms = clients / throughput)")
            out[c] = r | {"client": "mariadb-slap"}
        if with_sysbench:
            result["semisync_sysbench"] = semisync_sysbench(ph, pp, "bench", clients, duration, say)
            result["semisync_oltp"] = semisync_oltp(ph, pp, "bench", oltp_threads, oltp_s, say)
        say(f"==> native semi-sync: latency probe, {probe_clients} clients x {probe_s:g}s (Python asyncmy)")
        probe = asyncio.run(sql_latency(ph, pp, "bench", probe_clients, probe_s, SLAP_INSERT))
        say(f"    p50 {probe['p50_ms']:.2f} ms, p99 {probe['p99_ms']:.2f} ms, {probe['per_s']:.0f}/s")
        after = gstatus(ph, pp, "Rpl_semi_sync_master_%")
        if after.get("Rpl_semi_sync_master_status") != "ON" or after.get("Rpl_semi_sync_master_no_tx") != "0":
            raise RuntimeError(f"semi-sync fell back to async during the run: {after}")
        result["semisync_setup"] = {"Rpl_semi_sync_master_clients": int(after["Rpl_semi_sync_master_clients"]),
                                    "Rpl_semi_sync_master_yes_tx": int(after["Rpl_semi_sync_master_yes_tx"]),
                                    "Rpl_semi_sync_master_no_tx": int(after["Rpl_semi_sync_master_no_tx"]),
                                    "variables": variables, "server_args": SEMISYNC_ARGS,
                                    "latency_probe": probe | {"client": f"asyncmy (Python), {probe_clients} connections"}}
        say(f"    verified: every commit waited for a replica ack (yes_tx {after['Rpl_semi_sync_master_yes_tx']}, "
            "no_tx 0)")
        return out
    finally:
        cl.down(wipe=True)


def coordinator_writes(url: str, cluster: Any, clients: list[int], duration: float, probe_clients: int,
                       probe_s: float, semisync: dict[int, dict[str, Any]], result: dict[str, Any]) -> list[dict[str, Any]]:
    single = cluster.node_names()[0]  # a follower's server: the coordinator never touches database benchdirect
    sh, sp_ = cluster.address(single, direct=True)
    sql(sh, sp_, f"CREATE DATABASE IF NOT EXISTS benchdirect; CREATE TABLE IF NOT EXISTS benchdirect.bench {BENCH_COLS}")
    rows = []
    for c in clients:
        say(f"==> coordinator: {c} clients x {duration:g}s of single-row INSERTs (wrk) ...")
        _, before = http_json(url + "/status")
        w = run_wrk(url, c, duration, ROOT / "scripts" / "wrk_insert.lua", [f"c{c}", "bench"])
        _, after = http_json(url + "/status")
        committed = after["commit_timestamp"] - before["commit_timestamp"]
        say(f"    {w['per_s']:.0f} writes/s, p50 {w.get('p50_ms', 0):.1f} ms, p99 {w.get('p99_ms', 0):.1f} ms, "
            f"errors {w['errors']:.0f}, commit timestamp advanced by {committed}")
        say(f"==> one MariaDB, no replication: {c} clients (mariadb-slap) ...")
        d = slap_for(sh, sp_, c, duration, "benchdirect")
        say(f"    {d['per_s']:.0f} writes/s (mean {d['mean_ms']:.1f} ms)")
        ss = semisync.get(c, {})
        rows.append({
            "clients": c, "duration_s": duration,
            "coordinator": {k: v for k, v in w.items() if k != "raw"} | {"client": "wrk", "commits": committed},
            "wrk_output": w["raw"],
            "single_mariadb": d | {"client": "mariadb-slap"},
            "semisync": ss,
            "ratio_vs_semisync": round(w["per_s"] / ss["per_s"], 2) if ss.get("per_s") else None,
            "ratio_vs_single": round(w["per_s"] / d["per_s"], 2) if d["per_s"] else None,
        })
    say(f"==> latency probes, {probe_clients} clients x {probe_s:g}s (Python: aiohttp for HTTP, asyncmy for SQL)")
    coord = asyncio.run(http_latency(url, probe_clients, probe_s, "INSERT INTO bench (name, email) VALUES (%s, %s)",
                                     lambda k, i: ["probe", f"p{k}-{i}-{time.time_ns()}@bench.local"]))
    single_p = asyncio.run(sql_latency(sh, sp_, "benchdirect", probe_clients, probe_s, SLAP_INSERT))
    result["latency_probe"] = {
        "clients": probe_clients, "seconds": probe_s,
        "coordinator": coord | {"client": f"aiohttp (Python), {probe_clients} connections"},
        "single_mariadb": single_p | {"client": f"asyncmy (Python), {probe_clients} connections"},
        "semisync": result.get("semisync_setup", {}).get("latency_probe", {}),
    }
    return rows


def print_writes(rows: list[dict[str, Any]], probe: dict[str, Any]) -> None:
    print()
    print("Part 1 — quorum-committed single-row INSERTs: coordinator (4 replicas, cabinet) vs native MariaDB")
    print(f"{'clients':>7} | {'coordinator':>11} {'p50':>6} {'p99':>6} | {'semi-sync':>9} {'mean':>6} | "
          f"{'1 MariaDB':>9} {'mean':>6} | {'coord ÷ semi-sync':>17}")
    print(f"{'':>7} | {'writes/s':>11} {'ms':>6} {'ms':>6} | {'writes/s':>9} {'ms':>6} | {'writes/s':>9} {'ms':>6} |")
    print("-" * 92)
    for r in rows:
        c, s, d = r["coordinator"], r["semisync"], r["single_mariadb"]
        ratio = f"{r['ratio_vs_semisync']:.2f}" if r["ratio_vs_semisync"] is not None else "-"
        print(f"{r['clients']:>7} | {c['per_s']:>11.0f} {c.get('p50_ms', 0):>6.1f} {c.get('p99_ms', 0):>6.1f} | "
              f"{s.get('per_s', 0):>9.0f} {s.get('mean_ms', 0):>6.1f} | {d['per_s']:>9.0f} {d['mean_ms']:>6.1f} | "
              f"{ratio:>17}")
    print("clients: coordinator figures by wrk (HTTP, p50/p99 from its latency histogram); MariaDB figures by "
          "mariadb-slap (no percentiles: mean = clients / throughput)")
    if probe:
        print(f"latency at {probe['clients']} clients (Python clients on both sides — aiohttp for HTTP, asyncmy for SQL):")
        for key, label in (("coordinator", "coordinator"), ("semisync", "semi-sync"), ("single_mariadb", "1 MariaDB")):
            p = probe.get(key) or {}
            if p:
                print(f"    {label:<12} p50 {p['p50_ms']:>7.2f} ms   p99 {p['p99_ms']:>7.2f} ms   {p['per_s']:>7.0f}/s")


def replica_counts(cluster: Any, query: str) -> list[int]:
    """`query` (one number) on every server of the coordinator's cluster, directly."""
    return [int(sql(*cluster.address(name, direct=True), query, db="testdb")[0][0]) for name in cluster.node_names()]


# --------------------------------------------------------------------------- part 2: slowed followers


def slowed_part(url: str, cluster: Any, clients: int, duration: float) -> dict[str, Any]:
    _, status = http_json(url + "/status")
    leader = status["leader"]
    followers = [n for n in (status.get("cabinet") or []) if n != leader]
    followers += [n for n in cluster.node_names() if n != leader and n not in followers]
    slow = followers[:2]  # the cabinet follower and the next one: Cabinet must route around both
    cells = []
    try:
        for fault in ("healthy", "+50 ms on 2 followers"):
            if fault != "healthy":
                for name in slow:
                    cluster.delay(name, 50)
                time.sleep(1.0)
            for mode in ("cabinet", "majority", "all"):
                st, body = http_json(url + "/admin/replication-mode", {"mode": mode})
                if st != 200:
                    raise RuntimeError(f"mode switch failed: {body}")
                run_wrk(url, 8, 1, ROOT / "scripts" / "wrk_insert.lua", [f"warm{mode}{len(cells)}", "bench"])
                say(f"==> {mode:<8} {fault}: {clients} clients x {duration:g}s (wrk) ...")
                w = run_wrk(url, clients, duration, ROOT / "scripts" / "wrk_insert.lua", [f"s{mode}{len(cells)}", "bench"])
                say(f"    {w['per_s']:.0f} writes/s, p50 {w.get('p50_ms', 0):.1f} ms, p99 {w.get('p99_ms', 0):.1f} ms, "
                    f"errors {w['errors']:.0f}")
                cell = {"mode": mode, "fault": fault, "client": "wrk"} | {k: v for k, v in w.items() if k != "raw"}
                if w["errors"] or w["socket_errors"]:
                    st, body = http_json(url + "/query", {"query": "INSERT INTO bench (name, email) VALUES ('x', 'y')"})
                    cell["sample_error"] = body
                    say(f"    !! failed requests; a sample write now answers {st}: {body}")
                cells.append(cell)
    finally:
        cluster.heal()
        http_json(url + "/admin/replication-mode", {"mode": "cabinet"})
    get = {(c["mode"], c["fault"]): c for c in cells}
    cab_h, cab_s = get[("cabinet", "healthy")], get[("cabinet", "+50 ms on 2 followers")]
    maj_s = get[("majority", "+50 ms on 2 followers")]
    return {"clients": clients, "seconds": duration, "slowed": slow, "cells": cells,
            "cabinet_p50_slowed_over_healthy": round(cab_s.get("p50_ms", 0) / cab_h["p50_ms"], 2) if cab_h.get("p50_ms") else None,
            "cabinet_over_majority_throughput_slowed": round(cab_s["per_s"] / maj_s["per_s"], 2) if maj_s["per_s"] else None}


def print_slowed(part: dict[str, Any]) -> None:
    print()
    print(f"Part 2 — slowed followers ({', '.join(part['slowed'])} +50 ms via the fault proxies), "
          f"{part['clients']} clients, coordinator through the proxies, wrk")
    print(f"{'mode':<9} {'followers':<22} {'writes/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    print("-" * 68)
    for c in part["cells"]:
        print(f"{c['mode']:<9} {c['fault']:<22} {c['per_s']:>9.0f} {c.get('p50_ms', 0):>8.1f} {c.get('p99_ms', 0):>8.1f} "
              f"{c['errors'] + c['socket_errors']:>7.0f}")
    print(f"cabinet p50 slowed/healthy: {part['cabinet_p50_slowed_over_healthy']} (target ≤ 1.5); "
          f"cabinet/majority throughput slowed: {part['cabinet_over_majority_throughput_slowed']} (target ≥ 3)")


# --------------------------------------------------------------------------- part 3: failover


async def failover_trial(url: str, metrics_url: str, cluster: Any, kind: str, clients: int) -> dict[str, Any]:
    from scripts.stress import Load, max_gap

    ep = resolve_endpoints(url, metrics_url, None)
    api = Api(ep, connections=clients)
    try:
        st, status = await api.status()
        old = status["leader"]
        load = Load(api, f"fo{kind}{time.time_ns() % 10**9}", clients, table="bench")
        load.start()
        await asyncio.sleep(1.0)
        t_fault = time.perf_counter()
        await asyncio.to_thread(cluster.kill if kind == "kill -9" else cluster.pause, old)
        deadline = time.monotonic() + 20
        while True:
            st, s = await api.status()
            if st == 200 and s["leader"] != old:
                break
            if time.monotonic() > deadline:
                await load.stop()
                raise RuntimeError(f"no failover within 20 s after {kind} of {old}")
            await asyncio.sleep(0.02)
        t_new = time.perf_counter()
        await asyncio.sleep(1.0)
        recs = await load.stop()
        gap = max_gap(recs, t_fault, t_new + 0.5)
        st, ev = await api.get(url + "/admin/events?kind=failover&limit=1")
        timings = ((ev.get("events") or [{}])[-1]).get("timings", {}) if st == 200 else {}
        failed = sum(1 for r in recs if not r.ok)
        # bring the old leader back and let it catch up before the next trial
        await asyncio.to_thread(cluster.start if kind == "kill -9" else cluster.resume, old)
        deadline = time.monotonic() + 60
        while True:
            st, m = await api.metrics()
            if st == 200:
                x = next(r for r in m["replicas"] if r["replica_id"] == old)
                if x["is_healthy"] and x["applied_timestamp"] >= m["master_timestamp"] and x.get("state") == "healthy":
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{old} did not rejoin within 60 s")
            await asyncio.sleep(0.2)
        return {"kind": kind, "old_leader": old, "new_leader": s["leader"], "gap_ms": round(gap * 1000, 1),
                "detect_to_new_leader_ms": round((t_new - t_fault) * 1000, 1), "coordinator_timings": timings,
                "acked": sum(1 for r in recs if r.ok), "failed_writes": failed}
    finally:
        await api.close()


def failover_part(url: str, metrics_url: str, cluster: Any, trials: int, clients: int) -> dict[str, Any]:
    out: dict[str, Any] = {"trials": [], "clients": clients, "client": f"aiohttp (Python), {clients} connections"}
    for kind in ("kill -9", "SIGSTOP"):
        for i in range(trials):
            t = asyncio.run(failover_trial(url, metrics_url, cluster, kind, clients))
            say(f"==> {kind} of {t['old_leader']} (trial {i + 1}/{trials}): new leader {t['new_leader']}, client write "
                f"gap {t['gap_ms']:.0f} ms, coordinator total {t['coordinator_timings'].get('total_ms')} ms, "
                f"{t['failed_writes']} writes failed")
            out["trials"].append(t)
    out["summary"] = {}
    for kind in ("kill -9", "SIGSTOP"):
        gaps = [t["gap_ms"] for t in out["trials"] if t["kind"] == kind]
        out["summary"][kind] = {"trials": len(gaps), "p50_ms": percentile(gaps, 50), "max_ms": max(gaps)}
    return out


def print_failover(part: dict[str, Any]) -> None:
    print()
    print(f"Part 3 — failover under write load ({part['client']}): client-visible write gap")
    print(f"{'fault':<9} {'trials':>6} {'p50 ms':>8} {'max ms':>8} {'target p50':>11}")
    print("-" * 46)
    for kind, target in (("kill -9", "< 1000"), ("SIGSTOP", "< 2000")):
        s = part["summary"][kind]
        print(f"{kind:<9} {s['trials']:>6} {s['p50_ms']:>8.0f} {s['max_ms']:>8.0f} {target:>11}")


# --------------------------------------------------------------------------- part 4: reads


def reads_part(url: str, cluster: Any, n_seconds: float) -> dict[str, Any]:
    _, status = http_json(url + "/status")
    follower = status["replicas"][0]
    fh, fp = cluster.address(follower, direct=True)
    stmt = "SELECT id, name, email FROM bench WHERE id = %s"
    out: dict[str, Any] = {"client": "one Python client, sequential (aiohttp for HTTP, asyncmy for SQL)",
                           "follower": follower, "seconds": n_seconds}
    out["gateway_eventual"] = asyncio.run(http_latency(url, 1, n_seconds, stmt, lambda k, i: [i % 100 + 1],
                                                       {"consistency": "eventual"}))
    out["gateway_strong"] = asyncio.run(http_latency(url, 1, n_seconds, stmt, lambda k, i: [i % 100 + 1]))
    out["direct_follower"] = asyncio.run(sql_latency(fh, fp, "testdb", 1, n_seconds, stmt, lambda k, i: [i % 100 + 1]))
    out["overhead_p50_ms"] = round(out["gateway_eventual"]["p50_ms"] - out["direct_follower"]["p50_ms"], 2)
    return out


def print_reads(part: dict[str, Any]) -> None:
    print()
    print(f"Part 4 — point reads ({part['client']}, {part['seconds']:g} s each)")
    print(f"{'path':<36} {'p50 ms':>8} {'p99 ms':>8} {'reads/s':>8}")
    print("-" * 64)
    for key, label in (("gateway_eventual", "gateway, consistency=eventual"), ("gateway_strong", "gateway, strong (leader)"),
                       ("direct_follower", f"direct on {part['follower']} (asyncmy)")):
        p = part[key]
        print(f"{label:<36} {p['p50_ms']:>8.2f} {p['p99_ms']:>8.2f} {p['per_s']:>8.0f}")
    print(f"gateway overhead at p50: {part['overhead_p50_ms']:+.2f} ms (target ≤ +1 ms)")


# --------------------------------------------------------------------------- main


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", default="64,256", help="comma-separated client counts for part 1 (default 64,256)")
    ap.add_argument("--duration", type=float, default=10.0, help="seconds per throughput figure (default 10)")
    ap.add_argument("--trials", type=int, default=5, help="failover trials per fault kind (default 5)")
    ap.add_argument("--quick", action="store_true", help="short run for CI: 64 clients, 2 s figures, 2 trials")
    ap.add_argument("--json", help="write all figures to this file")
    ap.add_argument("--parts", default="writes,reads,failover,slowed,mysql",
                    help="comma-separated subset of writes,reads,failover,slowed,mysql (default: all)")
    args = ap.parse_args()
    parts = set(args.parts.split(","))
    require_tools("wrk", "mariadb-slap", "mariadb", *(["sysbench"] if "mysql" in parts else []))
    clients = [64] if args.quick else [int(x) for x in args.clients.split(",")]
    duration = 2.0 if args.quick else args.duration
    trials = 2 if args.quick else max(5, args.trials)
    slowed_clients = 32 if args.quick else 64
    slowed_s = 2.0 if args.quick else max(3.0, args.duration / 2)
    probe_clients, probe_s = 16, (1.5 if args.quick else 5.0)
    reads_s = 1.0 if args.quick else 5.0
    oltp_threads, oltp_s = ([16], 2.0) if args.quick else ([16, 64], min(args.duration, 10.0))
    hol_clients, hol_s = 16, (3.0 if args.quick else 6.0)
    started = time.time()
    result: dict[str, Any] = {"env": env_summary(), "started": started, "quick": args.quick,
                              "command": " ".join(["scripts/bench.py", *sys.argv[1:]]),
                              "settings": {"clients": clients, "duration_s": duration, "trials": trials,
                                           "oltp_threads": oltp_threads, "oltp_s": oltp_s,
                                           "head_of_line_clients": hol_clients, "head_of_line_s": hol_s}}
    say(f"machine: {result['env']['cpus']} CPUs ({result['env']['cpu_model']}), {result['env']['mariadb']}; "
        f"load average at start {result['env']['load_avg_1m_at_start']}")
    tmp = Path(tempfile.mkdtemp(prefix="qc-bench-"))
    code = 0
    try:
        semisync = (semisync_part(tmp, clients, duration, probe_clients, probe_s, result, "mysql" in parts,
                                  oltp_threads, oltp_s)
                    if parts & {"writes", "mysql"} else {})
        cluster = new_cluster(tmp / "coord", 4)
        say("==> coordinator: starting a 4-node MariaDB cluster")
        cluster.up()
        try:
            coord = CoordinatorProc(cluster, tmp, direct=True)
            say("==> coordinator (direct to the servers, proxies bypassed)")
            coord.start()
            try:
                st, body = http_json(coord.url + "/query", {"query": f"CREATE TABLE bench {BENCH_COLS}"})
                if st != 200:
                    raise RuntimeError(f"cannot create the bench table: {body}")
                if "writes" in parts:
                    result["writes"] = coordinator_writes(coord.url, cluster, clients, duration, probe_clients,
                                                          probe_s, semisync, result)
                if "mysql" in parts:
                    result["mysql"] = coordinator_mysql(
                        coord.ports["mysql"], "testdb", clients, duration, slap_for, semisync,
                        result.get("semisync_sysbench", {}), lambda q: replica_counts(cluster, q), say)
                    result["mysql"]["oltp"] = coordinator_oltp(
                        coord.ports["mysql"], "testdb", oltp_threads, oltp_s, result.get("semisync_oltp", {}),
                        lambda q: replica_counts(cluster, q), say)
                    result["mysql"]["head_of_line"] = head_of_line(coord.ports["mysql"], "testdb", coord.url,
                                                                   hol_clients, hol_s, say)
                if "reads" in parts:
                    result["reads"] = reads_part(coord.url, cluster, reads_s)
                if "failover" in parts:
                    result["failover"] = failover_part(coord.url, coord.metrics_url, cluster, trials, 16)
            finally:
                coord.stop()
            if "slowed" in parts:
                coord2 = CoordinatorProc(cluster, tmp, direct=False)
                say("==> coordinator restarted through the fault proxies (for the injected delays)")
                coord2.start()
                try:
                    result["slowed_followers"] = slowed_part(coord2.url, cluster, slowed_clients, slowed_s)
                finally:
                    coord2.stop()
        finally:
            cluster.down(wipe=True)
    except Exception as exc:  # noqa: BLE001 — report, still print what was measured
        result["error"] = f"{type(exc).__name__}: {exc}"
        say(f"!! benchmark failed: {result['error']}")
        code = 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if "writes" in result:
        print_writes(result["writes"], result.get("latency_probe", {}))
    if "slowed_followers" in result:
        print_slowed(result["slowed_followers"])
    if "failover" in result:
        print_failover(result["failover"])
    if "reads" in result:
        print_reads(result["reads"])
    if "mysql" in result:
        print_mysql(result["mysql"])
    result["elapsed_s"] = round(time.time() - started, 1)
    print(f"\nmachine: {result['env']['cpus']} CPUs, {result['env']['cpu_model']}; {result['env']['mariadb']}; "
          f"took {result['elapsed_s']:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2, default=str))
        print(f"figures written to {args.json}")
    bad = [r for r in result.get("writes", []) if r["coordinator"]["errors"] or not r["coordinator"]["per_s"]]
    # part 5a: both sides' figures must be there (a missing or 0 semi-sync figure leaves no ratio)
    bad += [r for r in result.get("mysql", {}).get("rows", [])
            if not r["slap"]["per_s"] or not r["sysbench"]["per_s"] or r["sysbench"]["errors"]
            or not r["slap_ratio"] or not r["sysbench_ratio"]]
    bad += mysql_failures(result["mysql"]) if "mysql" in result else []
    return 1 if bad or code else 0


if __name__ == "__main__":
    sys.exit(main())
