#!/usr/bin/env python3
"""Side-by-side benchmark (README, "Performance"), every comparison measured in the same run on the same machine.

    .venv/bin/python scripts/bench.py                 # 64 and 256 clients, 10 s per figure, 5 failover trials
    .venv/bin/python scripts/bench.py --quick         # CI-sized (≤ 200 s on 2 cores), every figure kind
    .venv/bin/python scripts/bench.py --json out.json
    .venv/bin/python scripts/bench.py --parts scale --duration 3

Parts (one table each):
1. writes   — quorum-committed single-row INSERTs through the coordinator (wrk, HTTP) vs the same
              INSERTs on (a) one MariaDB without replication and (b) native MariaDB semi-synchronous
              replication, 1 primary + 3 replicas, AFTER_SYNC, GTID (mariadb-slap), proxies bypassed
              on both sides, with the coordinator's CPU per committed write; plus p50/p99 at 16 clients
              measured by Python clients on every side (mariadb-slap reports no percentiles): HTTP
              (aiohttp), the coordinator's MySQL port and semi-sync (asyncmy), and their ratios;
2. slowed   — cabinet / majority / all × (healthy, two followers +50 ms), coordinator through the
              fault proxies (the delay is injected there), wrk;
3. failover — kill -9 and SIGSTOP of the leader under load: client-visible write gap (Python
              aiohttp load), p50 and max over the trials;
4. reads    — read latency through the gateway vs directly on a follower (one Python client, sequential);
5. mysql    — the same C clients on both sides: mariadb-slap INSERTs and sysbench oltp_insert against the
              semi-sync primary and the coordinator's MySQL port (scripts/benchmysql.py), with the
              coordinator's CPU per write; then transactions:
              sysbench oltp_write_only / oltp_read_write on both sides (tps, p95, ignored errors/s), and
              head-of-line figures on the coordinator (autocommit write p50/p99 with no open transaction,
              with 8 open transactions locking other rows, and with 8 locking a row some writers need);
scale       — (scripts/benchscale.py) wrk at 3, 5 and 7 replicas in cabinet and majority mode, and 16 to
              1,024 clients through the MySQL port (mariadb-slap; sysbench for percentiles), with the
              coordinator's CPU per write and its resident memory.

CPU per write: the coordinator process's utime+stime (/proc/<pid>/stat) just around a measured run ÷ the
writes committed in it; CPU %: of one core over that run. mariadb-slap figures: a warm-up run, then a
measured run of at least 20,000 queries (--quick: shorter), the same on every side; wrk figures: a 2 s
warm-up run with the same clients, then the measured run.

Checks: any figure that comes out 0, None, NaN or missing fails the run (exit 1) with its name. The
DESIGN.md §7 targets are printed "met" / "not met" beside their figures; --enforce-targets also fails
the run on one not met (off by default: where one is missed, the figures are the finding).

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
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scripts import benchscale  # noqa: E402
from scripts.benchlib import (  # noqa: E402
    BENCH_COLS,
    CABINET_OVER_MAJORITY,
    CABINET_SLOWED_P50,
    CPU_PER_WRITE_MYSQL,
    HTTP_VS_SEMISYNC,
    KILL_GAP_P50,
    MYSQL_VS_SEMISYNC,
    P50_HTTP_VS_SEMISYNC,
    P50_MYSQL_VS_SEMISYNC,
    QUICK_SLAP,
    READ_OVERHEAD_P50,
    SIGSTOP_GAP_P50,
    SLAP_INSERT,
    Api,
    CoordinatorProc,
    Figure,
    SlapSizing,
    create_bench_table,
    env_summary,
    http_json,
    new_cluster,
    percentile,
    raise_open_files,
    ratio,
    require_tools,
    resolve_endpoints,
    set_mode,
    slap_for,
    summary_ms,
    wrk_writes,
)
from scripts.benchmysql import (  # noqa: E402
    coordinator_mysql,
    coordinator_oltp,
    cpu_note,
    fmt,
    head_of_line,
    mysql_failures,
    print_mysql,
    semisync_oltp,
    semisync_sysbench,
)

PARTS = ("writes", "reads", "failover", "slowed", "mysql", "scale")
OPEN_FILES = 8192  # 1,024 mariadb-slap / sysbench connections, and the coordinator's end of each
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


# the native baseline is as durable as the coordinator's log: every commit fsynced (binlog and redo log)
# and acknowledged by a replica that has it (AFTER_SYNC), GTID replication
SEMISYNC_DURABLE = {"sync_binlog": "1", "innodb_flush_log_at_trx_commit": "1", "binlog_format": "ROW",
                    "rpl_semi_sync_master_wait_point": "AFTER_SYNC", "gtid_strict_mode": "ON"}


def check_durable(variables: dict[str, str]) -> None:
    wrong = {k: variables.get(k) for k, v in SEMISYNC_DURABLE.items() if variables.get(k) != v}
    if wrong:
        raise RuntimeError(f"the semi-sync primary is less durable than the coordinator: {wrong} (want {SEMISYNC_DURABLE})")


def gtid_caught_up(cl: Any, names: list[str], ph: str, pp: int) -> dict[str, str]:
    """Every replica's gtid_slave_pos equals the primary's gtid_binlog_pos (GTID replication, all applied)."""
    want = sql(ph, pp, "SELECT @@global.gtid_binlog_pos")[0][0]

    def positions() -> dict[str, str]:
        return {n: sql(*cl.address(n, direct=True), "SELECT @@global.gtid_slave_pos")[0][0] for n in names}

    wait(lambda: set(positions().values()) == {want}, 60, f"every replica to apply GTID {want}")
    return {"primary_gtid_binlog_pos": want, **positions()}


def semisync_part(tmp: Path, conf: Settings, result: dict[str, Any], with_sysbench: bool) -> dict[int, dict[str, Any]]:
    clients, duration, probe_clients, probe_s = conf.clients, conf.duration, conf.probe_clients, conf.probe_s
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
        check_durable(variables)
        say(f"    semi-sync ON with {before['Rpl_semi_sync_master_clients']} replicas; {variables}")
        for c in clients:
            say(f"==> native semi-sync: {c} clients, single-row INSERTs on the primary (mariadb-slap: warm-up, "
                "then the measured run) ...")
            r = conf.run_slap(ph, pp, c, duration, "bench")
            say(f"    {r['per_s']:.0f} writes/s over {r['queries']} queries (mean {r['mean_ms']:.1f} ms = clients / "
                f"throughput; warm-up {r['warmup_queries']} queries at {r['warmup_per_s']:.0f}/s)")
            out[c] = r | {"client": "mariadb-slap"}
        if with_sysbench:
            result["semisync_sysbench"] = semisync_sysbench(ph, pp, "bench", clients, duration, say)
            result["semisync_oltp"] = semisync_oltp(ph, pp, "bench", conf.oltp_threads, conf.oltp_s, say)
        say(f"==> native semi-sync: latency probe, {probe_clients} clients x {probe_s:g}s (Python asyncmy)")
        probe = asyncio.run(sql_latency(ph, pp, "bench", probe_clients, probe_s, SLAP_INSERT))
        say(f"    p50 {probe['p50_ms']:.2f} ms, p99 {probe['p99_ms']:.2f} ms, {probe['per_s']:.0f}/s")
        after = gstatus(ph, pp, "Rpl_semi_sync_master_%")
        if after.get("Rpl_semi_sync_master_status") != "ON" or after.get("Rpl_semi_sync_master_no_tx") != "0":
            raise RuntimeError(f"semi-sync fell back to async during the run: {after}")
        gtid = gtid_caught_up(cl, names[:-1], ph, pp)
        result["semisync_setup"] = {"Rpl_semi_sync_master_clients": int(after["Rpl_semi_sync_master_clients"]),
                                    "Rpl_semi_sync_master_yes_tx": int(after["Rpl_semi_sync_master_yes_tx"]),
                                    "Rpl_semi_sync_master_no_tx": int(after["Rpl_semi_sync_master_no_tx"]),
                                    "variables": variables, "server_args": SEMISYNC_ARGS, "gtid": gtid,
                                    "latency_probe": probe | {"client": f"asyncmy (Python), {probe_clients} connections"}}
        say(f"    verified: every commit waited for a replica ack (yes_tx {after['Rpl_semi_sync_master_yes_tx']}, "
            f"no_tx 0); every replica applied GTID {gtid['primary_gtid_binlog_pos']}")
        return out
    finally:
        cl.down(wipe=True)


def coordinator_writes(coord: CoordinatorProc, cluster: Any, conf: Settings, semisync: dict[int, dict[str, Any]],
                       result: dict[str, Any]) -> list[dict[str, Any]]:
    url = coord.url
    single = cluster.node_names()[0]  # a follower's server: the coordinator never touches database benchdirect
    sh, sp_ = cluster.address(single, direct=True)
    sql(sh, sp_, f"CREATE DATABASE IF NOT EXISTS benchdirect; CREATE TABLE IF NOT EXISTS benchdirect.bench {BENCH_COLS}")
    rows = []
    for c in conf.clients:
        say(f"==> coordinator: {c} clients x {conf.duration:g}s of single-row INSERTs (wrk) ...")
        w = wrk_writes(url, c, conf.duration, f"c{c}", coord.pid)
        say(f"    {w['per_s']:.0f} writes/s, p50 {w.get('p50_ms', 0):.1f} ms, p99 {w.get('p99_ms', 0):.1f} ms, "
            f"errors {w['errors']:.0f}, commit timestamp advanced by {w['commits']}{cpu_note(w)}")
        say(f"==> one MariaDB, no replication: {c} clients (mariadb-slap: warm-up, then the measured run) ...")
        d = conf.run_slap(sh, sp_, c, conf.duration, "benchdirect")
        say(f"    {d['per_s']:.0f} writes/s over {d['queries']} queries (mean {d['mean_ms']:.1f} ms)")
        ss = semisync.get(c, {})
        rows.append({
            "clients": c, "duration_s": conf.duration,
            "coordinator": {k: v for k, v in w.items() if k != "raw"} | {"client": "wrk"},
            "wrk_output": w["raw"],
            "single_mariadb": d | {"client": "mariadb-slap"},
            "semisync": ss,
            "ratio_vs_semisync": ratio(w["per_s"], ss.get("per_s")),
            "ratio_vs_single": ratio(w["per_s"], d["per_s"]),
        })
    result["latency_probe"] = latency_probes(coord, sh, sp_, conf, result.get("semisync_setup", {}))
    return rows


def latency_probes(coord: CoordinatorProc, sh: str, sp_: int, conf: Settings, semisync: dict[str, Any]) -> dict[str, Any]:
    """p50/p99 at conf.probe_clients clients, Python clients on every side: the coordinator over HTTP
    (aiohttp) and over its MySQL port (asyncmy, the same INSERT as on semi-sync), one MariaDB (asyncmy);
    semi-sync's was measured while its cluster was up."""
    n, secs = conf.probe_clients, conf.probe_s
    say(f"==> latency probes, {n} clients x {secs:g}s each: coordinator HTTP (aiohttp), coordinator MySQL port "
        "(asyncmy), one MariaDB (asyncmy)")
    http = asyncio.run(http_latency(coord.url, n, secs, "INSERT INTO bench (name, email) VALUES (%s, %s)",
                                    lambda k, i: ["probe", f"p{k}-{i}-{time.time_ns()}@bench.local"]))
    mysql = asyncio.run(sql_latency("127.0.0.1", coord.ports["mysql"], "testdb", n, secs, SLAP_INSERT))
    single = asyncio.run(sql_latency(sh, sp_, "benchdirect", n, secs, SLAP_INSERT))
    ss = semisync.get("latency_probe", {})
    for label, p in (("HTTP", http), ("MySQL port", mysql), ("1 MariaDB", single)):
        say(f"    {label}: p50 {p['p50_ms']:.2f} ms, p99 {p['p99_ms']:.2f} ms, {p['per_s']:.0f}/s")
    return {
        "clients": n, "seconds": secs,
        "coordinator": http | {"client": f"aiohttp (Python), {n} connections, HTTP"},
        "coordinator_mysql": mysql | {"client": f"asyncmy (Python), {n} connections, coordinator's MySQL port"},
        "single_mariadb": single | {"client": f"asyncmy (Python), {n} connections"},
        "semisync": ss,
        **{f"{side}_{pct}_over_semisync": ratio(p.get(f"{pct}_ms"), ss.get(f"{pct}_ms"))
           for side, p in (("mysql", mysql), ("http", http)) for pct in ("p50", "p99")},
    }


def print_writes(rows: list[dict[str, Any]], probe: dict[str, Any]) -> None:
    print()
    print("Part 1 — quorum-committed single-row INSERTs: coordinator (4 replicas, cabinet, HTTP) vs native MariaDB")
    print(f"{'clients':>7} | {'coordinator — wrk (HTTP)':^39} | {'semi-sync — slap':^16} | {'1 MariaDB — slap':^16} | "
          "HTTP ÷ semi-sync")
    print(f"{'':>7} | {'writes/s':>9} {'p50 ms':>6} {'p99 ms':>6} {'CPU µs/wr':>9} {'CPU %':>5} | "
          f"{'writes/s':>9} {'mean':>6} | {'writes/s':>9} {'mean':>6} | {HTTP_VS_SEMISYNC}")
    print("-" * 112)
    for r in rows:
        c, s, d = r["coordinator"], r["semisync"], r["single_mariadb"]
        print(f"{r['clients']:>7} | {c['per_s']:>9.0f} {c.get('p50_ms', 0):>6.1f} {c.get('p99_ms', 0):>6.1f} "
              f"{fmt(c.get('cpu_us_per_write'), '.0f'):>9} {fmt(c.get('cpu_pct'), '.0f'):>5} | "
              f"{s.get('per_s', 0):>9.0f} {s.get('mean_ms', 0):>6.1f} | {d['per_s']:>9.0f} {d['mean_ms']:>6.1f} | "
              f"{fmt(r['ratio_vs_semisync'], '.2f'):>5} {HTTP_VS_SEMISYNC.outcome(r['ratio_vs_semisync'])}")
    print("wrk: p50/p99 from its latency histogram; CPU = the coordinator process's utime+stime over the run ÷ writes "
          "committed (its commit timestamp's advance), % of one core. mariadb-slap (slap): no percentiles, mean = "
          "clients / throughput; a warm-up run, then the measured run, on every side.")
    if probe:
        print(f"latency at {probe['clients']} clients, {probe['seconds']:g} s each (Python clients on every side):")
        for key, label in (("coordinator", "coordinator HTTP — aiohttp"), ("coordinator_mysql", "coordinator MySQL port — asyncmy"),
                           ("semisync", "semi-sync — asyncmy"), ("single_mariadb", "1 MariaDB — asyncmy")):
            p = probe.get(key) or {}
            print(f"    {label:<34} p50 {fmt(p.get('p50_ms'), '>7.2f')} ms   p99 {fmt(p.get('p99_ms'), '>7.2f')} ms   "
                  f"{fmt(p.get('per_s'), '>7.0f')}/s")
        for side, label, target in (("mysql", "MySQL port", P50_MYSQL_VS_SEMISYNC), ("http", "HTTP", P50_HTTP_VS_SEMISYNC)):
            p50 = probe.get(f"{side}_p50_over_semisync")
            print(f"    {label} ÷ semi-sync: p50 {fmt(p50, '.2f')} ({target.verdict(p50)}), "
                  f"p99 {fmt(probe.get(f'{side}_p99_over_semisync'), '.2f')}")


def replica_counts(cluster: Any, query: str) -> list[int]:
    """`query` (one number) on every server of the coordinator's cluster, directly."""
    return [int(sql(*cluster.address(name, direct=True), query, db="testdb")[0][0]) for name in cluster.node_names()]


# --------------------------------------------------------------------------- part 2: slowed followers


SLOWED = "+50 ms on 2 followers"
FAULTS = ("healthy", SLOWED)
SLOWED_MODES = ("cabinet", "majority", "all")


def settled_leader(url: str, hold_s: float = 2.0, timeout_s: float = 60.0) -> str:
    """The leader once the coordinator has kept the same one, taking writes, for `hold_s` (a restarted
    coordinator may still move it while it recovers)."""
    deadline, seen, since = time.monotonic() + timeout_s, None, time.monotonic()
    while time.monotonic() < deadline:
        st, status = http_json(url + "/status")
        ready = st == 200 and bool(status.get("ready"))
        leader = status.get("leader") if st == 200 else None
        if leader != seen or not ready:
            seen, since = leader, time.monotonic()
        elif leader and time.monotonic() - since >= hold_s:
            return str(leader)
        time.sleep(0.2)
    raise RuntimeError(f"the coordinator's leader did not settle within {timeout_s:.0f} s (last seen {seen})")


def leader_is(url: str, leader: str, slow: list[str]) -> None:
    """A slowed-followers figure stands only if the leader stayed where it was (never one of the slowed)."""
    _, status = http_json(url + "/status")
    if status.get("leader") != leader or leader in slow:
        raise RuntimeError(f"the leader moved from {leader} to {status.get('leader')} during the slowed-followers "
                           f"part (slowed: {slow}); its figures would not be about slowed followers")


def caught_up(metrics_url: str, timeout_s: float = 120.0) -> float:
    """Wait until every replica applied everything committed (port 8003's applied_timestamp against
    master_timestamp); the seconds it took. A cell of the slowed-followers part must not inherit the
    previous cell's backlog: after cabinet mode ran past the slowed followers, majority's first
    writes wait for one of them to replay thousands of entries, and its figure would be that wait."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        st, m = http_json(metrics_url + "/metrics")
        if st == 200 and all(r["applied_timestamp"] >= m["master_timestamp"] for r in m["replicas"]):
            return time.monotonic() - started
        time.sleep(0.2)
    raise RuntimeError(f"the replicas did not catch up within {timeout_s:.0f} s")


def slowed_part(url: str, metrics_url: str, cluster: Any, clients: int, duration: float) -> dict[str, Any]:
    leader = settled_leader(url)
    _, status = http_json(url + "/status")
    followers = [n for n in (status.get("cabinet") or []) if n != leader]
    followers += [n for n in cluster.node_names() if n != leader and n not in followers]
    slow = followers[:2]  # the cabinet follower and the next one: Cabinet must route around both
    cells = []
    try:
        for fault in FAULTS:
            if fault != "healthy":
                for name in slow:
                    cluster.delay(name, 50)
                time.sleep(1.0)
            for mode in SLOWED_MODES:
                waited = caught_up(metrics_url)
                set_mode(url, mode, warm_tag=f"warm{mode}{len(cells)}")
                say(f"==> {mode:<8} {fault}: {clients} clients x {duration:g}s (wrk; replicas caught up after "
                    f"{waited:.1f} s) ...")
                w = wrk_writes(url, clients, duration, f"s{mode}{len(cells)}")
                say(f"    {w['per_s']:.0f} writes/s, p50 {w.get('p50_ms', 0):.1f} ms, p99 {w.get('p99_ms', 0):.1f} ms, "
                    f"errors {w['errors']:.0f}")
                cell = {"mode": mode, "fault": fault, "client": "wrk"} | {k: v for k, v in w.items() if k != "raw"}
                if w["errors"] or w["socket_errors"]:
                    st, body = http_json(url + "/query", {"query": "INSERT INTO bench (name, email) VALUES ('x', 'y')"})
                    cell["sample_error"] = body
                    say(f"    !! failed requests; a sample write now answers {st}: {body}")
                cells.append(cell)
                leader_is(url, leader, slow)
    finally:
        cluster.heal()
        http_json(url + "/admin/replication-mode", {"mode": "cabinet"})
    get = {(c["mode"], c["fault"]): c for c in cells}
    cab_h, cab_s = get[("cabinet", "healthy")], get[("cabinet", SLOWED)]
    maj_s = get[("majority", SLOWED)]
    return {"clients": clients, "seconds": duration, "slowed": slow, "cells": cells,
            "cabinet_p50_slowed_over_healthy": ratio(cab_s.get("p50_ms"), cab_h.get("p50_ms")),
            "cabinet_over_majority_throughput_slowed": ratio(cab_s.get("per_s"), maj_s.get("per_s"))}


def print_slowed(part: dict[str, Any]) -> None:
    print()
    print(f"Part 2 — slowed followers ({', '.join(part['slowed'])} +50 ms via the fault proxies), "
          f"{part['clients']} clients, coordinator through the proxies, wrk")
    print(f"{'mode':<9} {'followers':<22} {'writes/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    print("-" * 68)
    for c in part["cells"]:
        print(f"{c['mode']:<9} {c['fault']:<22} {c['per_s']:>9.0f} {c.get('p50_ms', 0):>8.1f} {c.get('p99_ms', 0):>8.1f} "
              f"{c['errors'] + c['socket_errors']:>7.0f}")
    p50, thr = part["cabinet_p50_slowed_over_healthy"], part["cabinet_over_majority_throughput_slowed"]
    print(f"cabinet p50 slowed/healthy: {fmt(p50, '.2f')} ({CABINET_SLOWED_P50.verdict(p50)}); "
          f"cabinet/majority throughput slowed: {fmt(thr, '.2f')} ({CABINET_OVER_MAJORITY.verdict(thr)})")


# --------------------------------------------------------------------------- part 3: failover

FAILOVER_TARGETS = {"kill -9": KILL_GAP_P50, "SIGSTOP": SIGSTOP_GAP_P50}


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
    for kind in FAILOVER_TARGETS:
        for i in range(trials):
            t = asyncio.run(failover_trial(url, metrics_url, cluster, kind, clients))
            say(f"==> {kind} of {t['old_leader']} (trial {i + 1}/{trials}): new leader {t['new_leader']}, client write "
                f"gap {t['gap_ms']:.0f} ms, coordinator total {t['coordinator_timings'].get('total_ms')} ms, "
                f"{t['failed_writes']} writes failed")
            out["trials"].append(t)
    out["summary"] = {}
    for kind in FAILOVER_TARGETS:
        gaps = [t["gap_ms"] for t in out["trials"] if t["kind"] == kind]
        out["summary"][kind] = {"trials": len(gaps), "p50_ms": percentile(gaps, 50) if gaps else None,
                                "max_ms": max(gaps, default=None)}
    return out


def print_failover(part: dict[str, Any]) -> None:
    print()
    print(f"Part 3 — failover under write load ({part['client']}): client-visible write gap")
    print(f"{'fault':<9} {'trials':>6} {'p50 ms':>8} {'max ms':>8}  p50")
    print("-" * 56)
    for kind, target in FAILOVER_TARGETS.items():
        s = part["summary"][kind]
        print(f"{kind:<9} {s['trials']:>6} {s['p50_ms']:>8.0f} {s['max_ms']:>8.0f}  {target.verdict(s['p50_ms'])}")


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
    print(f"gateway overhead at p50: {part['overhead_p50_ms']:+.2f} ms ({READ_OVERHEAD_P50.verdict(part['overhead_p50_ms'])})")


# --------------------------------------------------------------------------- settings


def ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


@dataclass(frozen=True)
class Settings:
    """Every size and duration of one run (--quick: CI-sized, the same figure kinds)."""

    quick: bool
    clients: list[int]
    duration: float
    trials: int
    slowed_clients: int
    slowed_s: float
    probe_clients: int
    probe_s: float
    reads_s: float
    oltp_threads: list[int]
    oltp_s: float
    hol_clients: int
    hol_s: float
    scale_replicas: tuple[int, ...]
    scale_clients: tuple[int, ...]
    scale_s: float
    slap: SlapSizing
    enforce_targets: bool

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Settings:
        q = args.quick
        return cls(
            quick=q, clients=[64] if q else ints(args.clients), duration=2.0 if q else args.duration,
            trials=2 if q else max(5, args.trials), slowed_clients=32 if q else 64,
            slowed_s=2.0 if q else max(3.0, args.duration / 2), probe_clients=16, probe_s=1.5 if q else 5.0,
            reads_s=1.0 if q else 5.0, oltp_threads=[16] if q else [16, 64], oltp_s=2.0 if q else min(args.duration, 10.0),
            hol_clients=16, hol_s=3.0 if q else 6.0,
            scale_replicas=tuple(ints(args.scale_replicas)) if args.scale_replicas
            else benchscale.QUICK_REPLICAS if q else benchscale.REPLICAS,
            scale_clients=tuple(ints(args.scale_clients)) if args.scale_clients
            else benchscale.QUICK_CLIENTS if q else benchscale.CLIENTS,
            scale_s=1.5 if q else args.duration, slap=QUICK_SLAP if q else SlapSizing(),
            enforce_targets=bool(args.enforce_targets))

    def run_slap(self, host: str, port: int, clients: int, duration: float, schema: str,
                 pid: int | None = None) -> dict[str, Any]:
        """mariadb-slap INSERTs, this run's sizing (warm-up, then at least slap.min_queries)."""
        return slap_for(host, port, clients, duration, schema, self.slap, pid)


# --------------------------------------------------------------------------- figures and targets


def writes_figures(result: dict[str, Any], conf: Settings) -> list[Figure]:
    out: list[Figure] = []
    rows = {r["clients"]: r for r in result.get("writes") or []}
    for c in conf.clients:
        r = rows.get(c, {})
        co, ss, d = r.get("coordinator", {}), r.get("semisync", {}), r.get("single_mariadb", {})
        n = f"part 1, {c} clients"
        out += [Figure(f"{n}: coordinator HTTP writes/s (wrk)", co.get("per_s")),
                Figure(f"{n}: coordinator HTTP p50 ms (wrk)", co.get("p50_ms")),
                Figure(f"{n}: coordinator HTTP p99 ms (wrk)", co.get("p99_ms")),
                Figure(f"{n}: coordinator HTTP failed requests (wrk)",
                       co["errors"] + co["socket_errors"] if co else None, zero=True),
                Figure(f"{n}: coordinator commits during the wrk run", co.get("commits")),
                Figure(f"{n}: coordinator CPU µs/write, HTTP (wrk)", co.get("cpu_us_per_write")),
                Figure(f"{n}: coordinator CPU %, HTTP (wrk)", co.get("cpu_pct")),
                Figure(f"{n}: native semi-sync writes/s (mariadb-slap)", ss.get("per_s")),
                Figure(f"{n}: one MariaDB writes/s (mariadb-slap)", d.get("per_s")),
                Figure(f"{n}: HTTP (wrk) ÷ semi-sync (mariadb-slap)", r.get("ratio_vs_semisync"), HTTP_VS_SEMISYNC),
                Figure(f"{n}: HTTP (wrk) ÷ one MariaDB (mariadb-slap)", r.get("ratio_vs_single"))]
    probe = result.get("latency_probe") or {}
    n = f"part 1 latency, {conf.probe_clients} clients"
    for key, label in (("coordinator", "coordinator HTTP (aiohttp)"), ("coordinator_mysql", "coordinator MySQL port (asyncmy)"),
                       ("semisync", "native semi-sync (asyncmy)"), ("single_mariadb", "one MariaDB (asyncmy)")):
        p = probe.get(key) or {}
        out += [Figure(f"{n}: {label} {m}", p.get(k)) for k, m in (("p50_ms", "p50 ms"), ("p99_ms", "p99 ms"),
                                                                   ("per_s", "writes/s"))]
    out += [Figure(f"{n}: coordinator HTTP (aiohttp) failed requests", (probe.get("coordinator") or {}).get("errors"),
                   zero=True),
            Figure(f"{n}: MySQL port p50 ÷ semi-sync p50 (asyncmy)", probe.get("mysql_p50_over_semisync"),
                   P50_MYSQL_VS_SEMISYNC),
            Figure(f"{n}: MySQL port p99 ÷ semi-sync p99 (asyncmy)", probe.get("mysql_p99_over_semisync")),
            Figure(f"{n}: HTTP (aiohttp) p50 ÷ semi-sync (asyncmy) p50", probe.get("http_p50_over_semisync"),
                   P50_HTTP_VS_SEMISYNC),
            Figure(f"{n}: HTTP (aiohttp) p99 ÷ semi-sync (asyncmy) p99", probe.get("http_p99_over_semisync"))]
    return out + semisync_figures(result)


def semisync_figures(result: dict[str, Any]) -> list[Figure]:
    setup = result.get("semisync_setup") or {}
    return [Figure("native semi-sync: commits acknowledged by a replica (Rpl_semi_sync_master_yes_tx)",
                   setup.get("Rpl_semi_sync_master_yes_tx")),
            Figure("native semi-sync: commits not acknowledged (Rpl_semi_sync_master_no_tx)",
                   setup.get("Rpl_semi_sync_master_no_tx"), zero=True)]


def mysql_figures(result: dict[str, Any], conf: Settings) -> list[Figure]:
    out: list[Figure] = []
    rows = {r["clients"]: r for r in (result.get("mysql") or {}).get("rows", [])}
    for c in conf.clients:
        r = rows.get(c, {})
        for key, client in (("slap", "mariadb-slap"), ("sysbench", "sysbench oltp_insert")):
            x, ss = r.get(key, {}), r.get(f"semisync_{key}", {})
            n = f"part 5, {c} clients, {client}"
            out += [Figure(f"{n}: coordinator MySQL port writes/s", x.get("per_s")),
                    Figure(f"{n}: coordinator CPU µs/write", x.get("cpu_us_per_write"), CPU_PER_WRITE_MYSQL),
                    Figure(f"{n}: coordinator CPU %", x.get("cpu_pct")),
                    Figure(f"{n}: native semi-sync writes/s", ss.get("per_s")),
                    Figure(f"{n}: MySQL port ÷ semi-sync", r.get(f"{key}_ratio"), MYSQL_VS_SEMISYNC)]
        n = f"part 5, {c} clients, sysbench oltp_insert"
        out += [Figure(f"{n}: coordinator errors", r.get("sysbench", {}).get("errors"), zero=True),
                Figure(f"{n}: native semi-sync errors", r.get("semisync_sysbench", {}).get("errors"), zero=True)]
    return out


def slowed_figures(part: dict[str, Any]) -> list[Figure]:
    out: list[Figure] = []
    cells = {(c["mode"], c["fault"]): c for c in part.get("cells", [])}
    for fault in FAULTS:
        for mode in SLOWED_MODES:
            c = cells.get((mode, fault), {})
            n = f"part 2, {mode}, {fault} (wrk)"
            out += [Figure(f"{n}: writes/s", c.get("per_s")), Figure(f"{n}: p50 ms", c.get("p50_ms")),
                    Figure(f"{n}: p99 ms", c.get("p99_ms")),
                    Figure(f"{n}: failed requests", c["errors"] + c["socket_errors"] if c else None, zero=True)]
    return out + [Figure("part 2: cabinet p50 slowed ÷ healthy (wrk)", part.get("cabinet_p50_slowed_over_healthy"),
                         CABINET_SLOWED_P50),
                  Figure("part 2: cabinet ÷ majority writes/s, slowed (wrk)",
                         part.get("cabinet_over_majority_throughput_slowed"), CABINET_OVER_MAJORITY)]


def failover_figures(part: dict[str, Any], trials: int) -> list[Figure]:
    out: list[Figure] = []
    for kind, target in FAILOVER_TARGETS.items():
        s = (part.get("summary") or {}).get(kind, {})
        gaps = [t.get("gap_ms") for t in part.get("trials", []) if t.get("kind") == kind]
        out += [Figure(f"part 3, {kind}: trials run (of {trials})", len(gaps) if len(gaps) == trials else None),
                Figure(f"part 3, {kind}: client write gap p50 ms (aiohttp)", s.get("p50_ms"), target),
                Figure(f"part 3, {kind}: client write gap max ms (aiohttp)", s.get("max_ms"))]
        out += [Figure(f"part 3, {kind}, trial {i + 1}: client write gap ms (aiohttp)", g) for i, g in enumerate(gaps)]
    return out


def reads_figures(part: dict[str, Any]) -> list[Figure]:
    out: list[Figure] = []
    for key, label in (("gateway_eventual", "gateway eventual (aiohttp)"), ("gateway_strong", "gateway strong (aiohttp)"),
                       ("direct_follower", "direct on a follower (asyncmy)")):
        p = part.get(key) or {}
        out += [Figure(f"part 4, {label}: {m}", p.get(k)) for k, m in (("p50_ms", "p50 ms"), ("p99_ms", "p99 ms"),
                                                                      ("per_s", "reads/s"))]
    return out + [Figure("part 4: gateway p50 − direct p50 ms", part.get("overhead_p50_ms"), READ_OVERHEAD_P50,
                         signed=True)]


def all_figures(result: dict[str, Any], parts: set[str], conf: Settings) -> list[Figure]:
    """Every figure the selected parts must have printed, named with its client; a part that did not
    run (an error) gives missing figures, never none."""
    out: list[Figure] = []
    if "writes" in parts:
        out += writes_figures(result, conf)
    if "mysql" in parts:
        out += mysql_figures(result, conf)
    if "slowed" in parts:
        out += slowed_figures(result.get("slowed_followers") or {})
    if "failover" in parts:
        out += failover_figures(result.get("failover") or {}, conf.trials)
    if "reads" in parts:
        out += reads_figures(result.get("reads") or {})
    if "scale" in parts:
        out += benchscale.scale_figures(result.get("scale") or {}, conf.scale_replicas, conf.scale_clients)
    return out


def checks(result: dict[str, Any], parts: set[str], conf: Settings) -> dict[str, Any]:
    """Figures that are not figures (always a failure), and every target met or not (a failure in a
    full run; --quick prints them only: the CI machine's speed varies)."""
    figs = all_figures(result, parts, conf)
    problems = [p for p in (f.problem() for f in figs) if p]
    if "mysql" in parts and "mysql" in result:
        problems += [f"part 5: {why}" for why in mysql_failures(result["mysql"])]
    targets = [{"figure": f.name, "value": f.value, "target": str(f.target), "aim": f.target.aim,
                "met": f.target.met(f.value)} for f in figs if f.target is not None]
    missed = [t for t in targets if not t["met"] and not t["aim"]]
    return {"figures": len(figs), "problems": problems, "targets": targets, "targets_enforced": conf.enforce_targets,
            "failures": problems + ([f"target not met: {t['figure']} = {t['value']} ({t['target']})" for t in missed]
                                    if conf.enforce_targets else [])}


def print_checks(c: dict[str, Any]) -> None:
    print()
    print(f"Targets (DESIGN.md §7) — {'enforced' if c['targets_enforced'] else 'printed only, not enforced'}; "
          "aims are never enforced")
    for t in c["targets"]:
        value = "missing" if t["value"] is None else fmt(t["value"], ".2f" if abs(t["value"]) < 10 else ".0f")
        print(f"  {'met' if t['met'] else 'NOT MET':<7} {t['figure']}: {value} ({t['target']})")
    print(f"{c['figures']} figures checked: " + ("every one is a number (none 0, None, NaN or missing)"
                                                 if not c["problems"] else f"{len(c['problems'])} are not figures"))
    for why in c["failures"]:
        print(f"!! {why}")


# --------------------------------------------------------------------------- main


def coordinator_durability(cluster: Any) -> dict[str, str]:
    """innodb_flush_log_at_trx_commit on every server of the coordinator's cluster (1: as durable as semi-sync's)."""
    out = {n: sql(*cluster.address(n, direct=True), "SELECT @@global.innodb_flush_log_at_trx_commit")[0][0]
           for n in cluster.node_names()}
    if set(out.values()) != {"1"}:
        raise RuntimeError(f"the coordinator's servers are not all innodb_flush_log_at_trx_commit=1: {out}")
    return out


def coordinator_parts(cluster: Any, tmp: Path, parts: set[str], conf: Settings, semisync: dict[int, dict[str, Any]],
                      result: dict[str, Any]) -> None:
    """The parts against the 4-replica coordinator direct to the servers (proxies bypassed)."""
    coord = CoordinatorProc(cluster, tmp, direct=True)
    say("==> coordinator (direct to the servers, proxies bypassed)")
    coord.start()
    counts = lambda q: replica_counts(cluster, q)  # noqa: E731
    try:
        create_bench_table(coord.url)
        result["coordinator_durability"] = coordinator_durability(cluster)
        mysql = coord.ports["mysql"]
        if "writes" in parts:
            result["writes"] = coordinator_writes(coord, cluster, conf, semisync, result)
        if "mysql" in parts:
            result["mysql"] = coordinator_mysql(mysql, "testdb", conf.clients, conf.duration, conf.run_slap, semisync,
                                                result.get("semisync_sysbench", {}), counts, say, pid=coord.pid)
            result["mysql"]["oltp"] = coordinator_oltp(mysql, "testdb", conf.oltp_threads, conf.oltp_s,
                                                       result.get("semisync_oltp", {}), counts, say)
            result["mysql"]["head_of_line"] = head_of_line(mysql, "testdb", coord.url, conf.hol_clients, conf.hol_s, say)
        if "scale" in parts:
            result.setdefault("scale", {})["clients"] = benchscale.clients_part(
                mysql, coord.pid, "testdb", conf.scale_clients, conf.scale_s, conf.run_slap, say)
        if "reads" in parts:
            result["reads"] = reads_part(coord.url, cluster, conf.reads_s)
        if "failover" in parts:
            result["failover"] = failover_part(coord.url, coord.metrics_url, cluster, conf.trials, 16)
    finally:
        coord.stop()


def run(parts: set[str], conf: Settings, result: dict[str, Any], tmp: Path) -> None:
    semisync = semisync_part(tmp, conf, result, "mysql" in parts) if parts & {"writes", "mysql"} else {}
    cluster = new_cluster(tmp / "coord", 4)
    say("==> coordinator: starting a 4-node MariaDB cluster")
    cluster.up()
    try:
        coordinator_parts(cluster, tmp, parts, conf, semisync, result)
        if "slowed" in parts:
            coord2 = CoordinatorProc(cluster, tmp, direct=False)
            say("==> coordinator restarted through the fault proxies (for the injected delays)")
            coord2.start()
            try:
                result["slowed_followers"] = slowed_part(coord2.url, coord2.metrics_url, cluster, conf.slowed_clients,
                                                           conf.slowed_s)
            finally:
                coord2.stop()
    finally:
        cluster.down(wipe=True)
    if "scale" in parts:
        result.setdefault("scale", {})["replicas"] = benchscale.replicas_part(conf.scale_replicas, conf.scale_s, say)


def print_all(result: dict[str, Any]) -> None:
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
    if "scale" in result:
        benchscale.print_scale(result["scale"])


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", default="64,256", help="comma-separated client counts for parts 1 and 5 (default 64,256)")
    ap.add_argument("--duration", type=float, default=10.0, help="seconds per throughput figure (default 10)")
    ap.add_argument("--trials", type=int, default=5, help="failover trials per fault kind (default 5)")
    ap.add_argument("--quick", action="store_true",
                    help="short run for CI (≤ 200 s): 64 clients, 2 s figures, 2 trials, scale at 3 and 5 replicas "
                         "and 16 and 1,024 clients with 1.5 s figures; targets printed, not enforced")
    ap.add_argument("--json", help="write all figures to this file")
    ap.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated subset of {','.join(PARTS)} (default: all)")
    ap.add_argument("--scale-replicas", help="replica counts for part scale (a) (default 3,5,7; --quick 3,5)")
    ap.add_argument("--scale-clients", help="client counts for part scale (b) (default 16,64,256,1024; --quick 16,1024)")
    ap.add_argument("--enforce-targets", action="store_true",
                    help="also exit non-zero when a §7 target is not met (default: print met / not met only)")
    return ap.parse_args()


def main() -> int:
    args = parse_args()
    parts = set(args.parts.split(","))
    if parts - set(PARTS):
        sys.exit(f"unknown parts: {', '.join(sorted(parts - set(PARTS)))} (choose from {', '.join(PARTS)})")
    require_tools("wrk", "mariadb-slap", "mariadb", *(["sysbench"] if parts & {"mysql", "scale"} else []))
    conf = Settings.from_args(args)
    started = time.time()
    result: dict[str, Any] = {"env": env_summary() | {"open_files": raise_open_files(OPEN_FILES)}, "started": started,
                              "quick": args.quick, "command": " ".join(["scripts/bench.py", *sys.argv[1:]]),
                              "parts": sorted(parts), "settings": asdict(conf)}
    say(f"machine: {result['env']['cpus']} CPUs ({result['env']['cpu_model']}), {result['env']['mariadb']}; "
        f"load average at start {result['env']['load_avg_1m_at_start']}; open files limit "
        f"{result['env']['open_files']['soft']}")
    tmp = Path(tempfile.mkdtemp(prefix="qc-bench-"))
    try:
        run(parts, conf, result, tmp)
    except Exception as exc:  # noqa: BLE001 — report, still print what was measured
        result["error"] = f"{type(exc).__name__}: {exc}"
        say(f"!! benchmark failed: {result['error']}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print_all(result)
    result["checks"] = checks(result, parts, conf)
    print_checks(result["checks"])
    result["elapsed_s"] = round(time.time() - started, 1)
    print(f"\nmachine: {result['env']['cpus']} CPUs, {result['env']['cpu_model']}; {result['env']['mariadb']}; "
          f"took {result['elapsed_s']:.0f} s" + (" (--quick aims at ≤ 200 s)" if conf.quick else ""))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2, default=str))
        print(f"figures written to {args.json}")
    if "error" in result:
        print(f"!! FAILED: {result['error']}")
    return 1 if result["checks"]["failures"] or "error" in result else 0


if __name__ == "__main__":
    sys.exit(main())
