"""Part "scale" of scripts/bench.py: what the coordinator costs as replicas and clients grow.

(a) replicas — 3, 5 and 7 replicas (each its own throwaway cluster and coordinator, direct to the
    servers as part 1), cabinet and majority mode (switched at runtime), the same client: wrk, 64
    connections, scripts/wrk_insert.lua; writes/s, p50/p99 and the coordinator's CPU per write.
(b) clients — 16 / 64 / 256 / 1,024 clients through the MySQL front end of the 4-replica coordinator:
    mariadb-slap INSERTs (writes/s, CPU per write) and, for percentiles (mariadb-slap reports none),
    sysbench oltp_insert at the same client count (p50 from its histogram, p99, writes/s, CPU per
    write); the coordinator's resident memory sampled during the largest client count.

Who calls what: bench.py calls `clients_part` while its 4-replica coordinator runs and
`replicas_part` on its own; `print_scale` prints both tables; `scale_figures` lists every figure.
"""

from __future__ import annotations

from typing import Any, Callable

from scripts.benchlib import (
    CPU_PER_WRITE_MYSQL,
    Figure,
    ProcSampler,
    cluster_and_coordinator,
    create_bench_table,
    set_mode,
    wrk_writes,
)
from scripts.benchmysql import cpu_note, fmt, sysbench, sysbench_insert

REPLICAS, QUICK_REPLICAS = (3, 5, 7), (3, 5)
CLIENTS, QUICK_CLIENTS = (16, 64, 256, 1024), (16, 1024)
MODES = ("cabinet", "majority")
WRK_CLIENTS = 64

Say = Callable[[str], None]


def _wrk_line(w: dict[str, Any]) -> str:
    return (f"    {w['per_s']:.0f} writes/s, p50 {w.get('p50_ms', 0):.1f} ms, p99 {w.get('p99_ms', 0):.1f} ms, "
            f"errors {w['errors'] + w['socket_errors']:.0f}{cpu_note(w)}")


def replicas_part(counts: tuple[int, ...], duration: float, say: Say) -> list[dict[str, Any]]:
    """(a): one throwaway cluster + coordinator per replica count, both modes on each."""
    rows: list[dict[str, Any]] = []
    for n in counts:
        with cluster_and_coordinator(n, direct=True, say=say) as (_, coord, _):
            create_bench_table(coord.url)
            for mode in MODES:
                set_mode(coord.url, mode, warm_tag=f"warm{n}{mode}")
                say(f"==> scale: {n} replicas, {mode}: {WRK_CLIENTS} clients x {duration:g}s (wrk) ...")
                w = wrk_writes(coord.url, WRK_CLIENTS, duration, f"scale{n}{mode}", coord.pid)
                say(_wrk_line(w))
                rows.append({"replicas": n, "mode": mode, "clients": WRK_CLIENTS, "client": "wrk"}
                            | {k: v for k, v in w.items() if k != "raw"})
    return rows


def clients_part(port: int, pid: int, db: str, clients: tuple[int, ...], duration: float,
                 slap: Callable[..., dict[str, Any]], say: Say) -> dict[str, Any]:
    """(b): on the running 4-replica coordinator's MySQL port; the coordinator's memory reported for the
    largest count, the clients connected at once for every run (= the client count: all were connected)."""
    say("==> scale: sysbench oltp_insert prepare on the coordinator's MySQL port")
    sysbench("127.0.0.1", port, db, "cleanup")
    sysbench("127.0.0.1", port, db, "prepare")
    rows: list[dict[str, Any]] = []
    memory: dict[str, Any] = {}
    for c in clients:
        with ProcSampler(pid, port=port) as sampler:
            rows.append(_one_count(port, pid, db, c, duration, slap, sampler, say))
        if c == max(clients):
            memory = sampler.figures() | {"clients": c}
            say(f"    coordinator during {c} clients: VmRSS {memory['rss_before_mb']:.0f} MiB before, max "
                f"{fmt(memory['rss_max_mb'], '.0f')} MiB, peak VmHWM {memory['vm_hwm_mb']:.0f} MiB")
    return {"rows": rows, "memory": memory, "duration_s": duration}


def _one_count(port: int, pid: int, db: str, c: int, duration: float, slap: Callable[..., dict[str, Any]],
               sampler: ProcSampler, say: Say) -> dict[str, Any]:
    say(f"==> scale: {c} clients through the MySQL port, mariadb-slap INSERTs ...")
    s = slap("127.0.0.1", port, c, duration, db, pid=pid) | {"client": "mariadb-slap"}
    s["clients_connected"] = sampler.connected_since(0)
    say(f"    {s['per_s']:.0f} writes/s (mean {s['mean_ms']:.1f} ms){cpu_note(s)}; up to "
        f"{s['clients_connected']} clients connected at once")
    say(f"==> scale: {c} clients through the MySQL port, sysbench oltp_insert x {duration:g}s (percentiles) ...")
    mark = len(sampler.conns)
    b = sysbench_insert(port, db, c, duration, pid, histogram=True)
    b["clients_connected"] = sampler.connected_since(mark)
    say(f"    {b['per_s']:.0f} inserts/s, p50 {b['p50_ms']:.1f} ms, p99 {b['p99_ms']:.1f} ms{cpu_note(b)}; "
        f"up to {b['clients_connected']} clients connected at once")
    return {"clients": c, "slap": s, "sysbench": b}


def print_scale(part: dict[str, Any]) -> None:
    if part.get("replicas"):
        print()
        print(f"Part scale (a) — replicas: wrk, {WRK_CLIENTS} clients, single-row INSERTs over HTTP, coordinator direct "
              "to the servers; CPU = the coordinator process's utime+stime ÷ committed writes")
        print(f"{'replicas':>8} {'mode':<9} | {'writes/s':>9} {'p50 ms':>7} {'p99 ms':>7} {'errors':>6} | "
              f"{'CPU µs/write':>12} {'CPU %':>6}")
        print("-" * 78)
        for r in part["replicas"]:
            print(f"{r['replicas']:>8} {r['mode']:<9} | {r['per_s']:>9.0f} {r.get('p50_ms', 0):>7.1f} "
                  f"{r.get('p99_ms', 0):>7.1f} {r['errors'] + r['socket_errors']:>6.0f} | "
                  f"{fmt(r.get('cpu_us_per_write'), '.0f'):>12} {fmt(r.get('cpu_pct'), '.0f'):>6}")
    cl = part.get("clients")
    if cl:
        print()
        print("Part scale (b) — clients through the MySQL front end (4 replicas, cabinet): mariadb-slap INSERTs; "
              "sysbench oltp_insert at the same count for percentiles")
        print(f"{'clients':>7} | {'mariadb-slap':>12} {'mean':>6} {'CPU':>7} {'CPU':>5} {'conns':>6} | "
              f"{'sysbench':>9} {'p50':>7} {'p99':>7} {'CPU':>7} {'CPU':>5} {'conns':>6}")
        print(f"{'':>7} | {'writes/s':>12} {'ms':>6} {'µs/wr':>7} {'%':>5} {'':>6} | "
              f"{'writes/s':>9} {'ms':>7} {'ms':>7} {'µs/wr':>7} {'%':>5} {'':>6}")
        print("-" * 102)
        for r in cl["rows"]:
            s, b = r["slap"], r["sysbench"]
            print(f"{r['clients']:>7} | {s['per_s']:>12.0f} {s['mean_ms']:>6.1f} {fmt(s.get('cpu_us_per_write'), '.0f'):>7} "
                  f"{fmt(s.get('cpu_pct'), '.0f'):>5} {fmt(s.get('clients_connected'), 'd'):>6} | "
                  f"{b['per_s']:>9.0f} {b['p50_ms']:>7.1f} {b['p99_ms']:>7.1f} "
                  f"{fmt(b.get('cpu_us_per_write'), '.0f'):>7} {fmt(b.get('cpu_pct'), '.0f'):>5} "
                  f"{fmt(b.get('clients_connected'), 'd'):>6}")
        print("mean: clients / throughput; p50 from sysbench's latency histogram, p99 its own; conns: the most "
              "clients seen connected to the MySQL port at once (established TCP connections, sampled every 0.05 s; "
              "= clients: all connected at once)")
        m = cl.get("memory") or {}
        if m:
            print(f"coordinator memory during the {m['clients']}-client runs (VmRSS sampled every {m['interval_s']:g} s): "
                  f"{m['rss_before_mb']:.0f} MiB before, max {fmt(m['rss_max_mb'], '.0f')} MiB, "
                  f"{m['rss_after_mb']:.0f} MiB after; peak VmHWM over the process's life {m['vm_hwm_mb']:.0f} MiB")
        print(f"CPU per write through the MySQL front end: {CPU_PER_WRITE_MYSQL}")


def scale_figures(part: dict[str, Any], replicas: tuple[int, ...], clients: tuple[int, ...]) -> list[Figure]:
    """Every figure the scale part must have produced (a missing row gives missing figures)."""
    out: list[Figure] = []
    got = {(r["replicas"], r["mode"]): r for r in part.get("replicas") or []}
    for n in replicas:
        for mode in MODES:
            r = got.get((n, mode), {})
            name = f"scale (a), {n} replicas, {mode}, wrk {WRK_CLIENTS} clients"
            out += [Figure(f"{name}: writes/s", r.get("per_s")), Figure(f"{name}: p50 ms", r.get("p50_ms")),
                    Figure(f"{name}: p99 ms", r.get("p99_ms")), Figure(f"{name}: committed writes", r.get("commits")),
                    Figure(f"{name}: failed requests", r.get("errors", 0) + r.get("socket_errors", 0) if r else None,
                           zero=True),
                    Figure(f"{name}: coordinator CPU µs/write", r.get("cpu_us_per_write")),
                    Figure(f"{name}: coordinator CPU %", r.get("cpu_pct"))]
    rows = {r["clients"]: r for r in (part.get("clients") or {}).get("rows", [])}
    for c in clients:
        s, b = rows.get(c, {}).get("slap", {}), rows.get(c, {}).get("sysbench", {})
        name = f"scale (b), {c} clients, MySQL front end"
        out += [Figure(f"{name}: mariadb-slap writes/s", s.get("per_s")),
                Figure(f"{name}: mariadb-slap coordinator CPU µs/write", s.get("cpu_us_per_write"), CPU_PER_WRITE_MYSQL),
                Figure(f"{name}: mariadb-slap coordinator CPU %", s.get("cpu_pct")),
                Figure(f"{name}: sysbench oltp_insert writes/s", b.get("per_s")),
                Figure(f"{name}: sysbench oltp_insert errors", b.get("errors"), zero=True),
                Figure(f"{name}: sysbench oltp_insert p50 ms", b.get("p50_ms")),
                Figure(f"{name}: sysbench oltp_insert p99 ms", b.get("p99_ms")),
                Figure(f"{name}: sysbench oltp_insert coordinator CPU µs/write", b.get("cpu_us_per_write"))]
        # each run really had all its clients connected at once
        out += [Figure(f"{name}: {client}, clients connected to the MySQL port at once (most seen)",
                       x.get("clients_connected"), minimum=c) for client, x in (("mariadb-slap", s),
                                                                                     ("sysbench oltp_insert", b))]
    m = (part.get("clients") or {}).get("memory") or {}
    out += [Figure(f"scale (b), {max(clients)} clients: coordinator VmRSS max MiB (sampled)", m.get("rss_max_mb")),
            Figure("scale (b): coordinator peak VmHWM MiB", m.get("vm_hwm_mb"))]
    return out
