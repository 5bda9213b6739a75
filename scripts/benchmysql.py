"""Part 5 of scripts/bench.py: the same C clients against native semi-sync and the coordinator's MySQL port.

This is the honest comparison the HTTP figures cannot give: mariadb-slap (single-row INSERTs) and
sysbench `oltp_insert` drive the semi-sync primary and the coordinator's MySQL front end with the
same binary, the same statements, the same client counts (with the coordinator process's CPU per
committed write, scripts/benchlib.py `metered`). Both sides are equally durable
(`innodb_flush_log_at_trx_commit=1` on every server; semi-sync waits for one replica's ack,
the coordinator for its quorum).

Transactions (5b, 5c): sysbench `oltp_write_only` and `oltp_read_write` (BEGIN … COMMIT with
server-side prepared statements, the same options on both sides) report tps, p95 and ignored
errors/s; and head-of-line figures on the coordinator alone — p50/p99 of autocommit single-row
writes with no open transaction, with 8 open transactions holding locks on rows the writers do not
touch, and with 8 holding the one row some other connections update (the figure is then the writes
on the other rows, plus how many same-row writes waited).

Who calls what: `semisync_sysbench` and `semisync_oltp` run while bench.py's semi-sync cluster is
up; `coordinator_mysql`, `coordinator_oltp` and `head_of_line` run against a started coordinator;
`print_mysql` prints the tables and `mysql_failures` says which figures are not figures.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import time
from typing import Any, Callable

from scripts.benchlib import CPU_PER_WRITE_MYSQL, MYSQL_VS_SEMISYNC, http_json, metered, ratio, summary_ms

SYSBENCH_TABLE_SIZE = 1000


def sysbench(host: str, port: int, db: str, command: str, threads: int = 1, duration_s: float = 0.0,
             test: str = "oltp_insert", tables: int = 1, table_size: int = SYSBENCH_TABLE_SIZE,
             pct: int = 99, histogram: bool = False) -> dict[str, Any]:
    """One sysbench run; raises on a FATAL error or a non-zero exit (sysbench stops at the first SQL error
    other than its default ignore list — deadlock 1213, lock wait timeout 1205, 1020 — which it counts as
    "ignored errors"; we never widen that list). With `histogram`, also p50_ms from its latency histogram."""
    argv = ["sysbench", test, f"--mysql-host={host}", f"--mysql-port={port}", "--mysql-user=root",
            "--mysql-password=", f"--mysql-db={db}", f"--tables={tables}", f"--table-size={table_size}",
            f"--threads={threads}"]
    if command == "run":
        argv += [f"--time={max(1, round(duration_s))}", f"--percentile={pct}"] + (["--histogram=on"] if histogram else [])
    out = subprocess.run([*argv, command], capture_output=True, text=True, timeout=duration_s + 300)
    text = out.stdout + out.stderr
    if out.returncode != 0 or "FATAL" in text:
        raise RuntimeError(f"sysbench {test} {command} on {host}:{port} failed ({out.returncode}):\n{text[-2000:]}")
    if command != "run":
        return {}
    res = parse_sysbench(out.stdout, pct)
    return res | ({"p50_ms": histogram_percentile(out.stdout, 50)} if histogram else {})


def histogram_percentile(out: str, pct: float) -> float:
    """The `pct` percentile of sysbench's --histogram (rows "value |*** count", value in ms): the
    smallest bucket value at or below which pct % of the events fall."""
    rows = [(float(v), int(n)) for v, n in re.findall(r"^\s*([\d.]+)\s+\|\**\s+(\d+)\s*$", out, re.M)]
    total = sum(n for _, n in rows)
    if not total:
        raise RuntimeError(f"unexpected sysbench output (no latency histogram):\n{out[-2000:]}")
    seen = 0
    for value, n in sorted(rows):
        seen += n
        if seen * 100 >= pct * total:
            return value
    return rows[-1][0]


def parse_sysbench(out: str, pct: int = 99) -> dict[str, Any]:
    def grab(pattern: str) -> float:
        m = re.search(pattern, out, re.M)
        if not m:
            raise RuntimeError(f"unexpected sysbench output (no {pattern!r}):\n{out[-2000:]}")
        return float(m.group(1))

    return {"per_s": grab(r"^\s*transactions:\s+\d+\s+\(([\d.]+) per sec"),
            "transactions": int(grab(r"^\s*transactions:\s+(\d+)")),
            "errors": int(grab(r"^\s*ignored errors:\s+(\d+)")),
            "errors_per_s": grab(r"^\s*ignored errors:\s+\d+\s+\(([\d.]+) per sec"),
            "mean_ms": grab(r"^\s*avg:\s+([\d.]+)"),
            f"p{pct}_ms": grab(rf"^\s*{pct}th percentile:\s+([\d.]+)")}


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


def sysbench_insert(port: int, db: str, threads: int, duration: float, pid: int | None,
                    histogram: bool = False) -> dict[str, Any]:
    """sysbench oltp_insert through the coordinator's MySQL port, with the coordinator's CPU per
    transaction (one single-row INSERT each)."""
    return metered(pid, lambda: sysbench("127.0.0.1", port, db, "run", threads, duration, histogram=histogram),
                   lambda r: r["transactions"]) | {"client": "sysbench oltp_insert"}


def coordinator_mysql(port: int, db: str, clients: list[int], duration: float, slap: Callable[..., dict[str, Any]],
                      semisync_slap: dict[int, dict[str, Any]], semisync_sb: dict[int, dict[str, Any]],
                      replica_count: Callable[[str], list[int]], say: Callable[[str], None],
                      pid: int | None = None) -> dict[str, Any]:
    """mariadb-slap and sysbench through 127.0.0.1:`port` (with the coordinator's CPU per write when `pid`
    is given), then every replica's row count compared: a figure from writes that did not all land
    everywhere would not be a figure."""
    rows: list[dict[str, Any]] = []
    say(f"==> coordinator MySQL port: sysbench oltp_insert prepare ({SYSBENCH_TABLE_SIZE} rows)")
    sysbench("127.0.0.1", port, db, "prepare")
    for c in clients:
        say(f"==> coordinator MySQL port: {c} clients of single-row INSERTs (mariadb-slap) ...")
        s = slap("127.0.0.1", port, c, duration, db, pid=pid)
        say(f"    {s['per_s']:.0f} writes/s (mean {s['mean_ms']:.1f} ms){cpu_note(s)}")
        say(f"==> coordinator MySQL port: sysbench oltp_insert, {c} threads x {duration:g}s ...")
        b = sysbench_insert(port, db, c, duration, pid)
        say(f"    {b['per_s']:.0f} inserts/s, avg {b['mean_ms']:.1f} ms, p99 {b['p99_ms']:.1f} ms{cpu_note(b)}")
        ss, sb = semisync_slap.get(c, {}), semisync_sb.get(c, {})
        rows.append({"clients": c, "duration_s": duration,
                     "slap": s | {"client": "mariadb-slap"}, "sysbench": b,
                     "semisync_slap": ss, "semisync_sysbench": sb,
                     "slap_ratio": ratio(s["per_s"], ss.get("per_s")),
                     "sysbench_ratio": ratio(b["per_s"], sb.get("per_s"))})
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


def cpu_note(r: dict[str, Any]) -> str:
    """", coordinator CPU 41 µs/write (87 % of a core)" for a progress line, or "" when not metered."""
    if "cpu_us_per_write" not in r:
        return ""
    return f", coordinator CPU {fmt(r['cpu_us_per_write'], '.0f')} µs/write ({fmt(r.get('cpu_pct'), '.0f')} % of a core)"


def fmt(value: Any, spec: str, missing: str = "-") -> str:
    """`value` formatted, or `missing` for None (a figure the table must not show as 0)."""
    return format(value, spec) if value is not None else missing


def print_mysql(part: dict[str, Any]) -> None:
    print()
    print("Part 5 — the same C clients on both sides: coordinator MySQL port (4 replicas, cabinet) vs native "
          "semi-sync (1 primary + 3 replicas, AFTER_SYNC)")
    print(f"{'clients':>7} | {'client (both sides)':<21} | {'coordinator':>11} {'mean':>6} {'CPU':>7} {'CPU':>5} | "
          f"{'semi-sync':>9} {'mean':>6} | coord ÷ semi-sync")
    print(f"{'':>7} | {'':<21} | {'writes/s':>11} {'ms':>6} {'µs/wr':>7} {'%':>5} | {'writes/s':>9} {'ms':>6} | "
          f"{MYSQL_VS_SEMISYNC}")
    print("-" * 114)
    for r in part["rows"]:
        for key, label, rat in (("slap", "mariadb-slap INSERT", r["slap_ratio"]),
                                  ("sysbench", "sysbench oltp_insert", r["sysbench_ratio"])):
            c, s = r[key], r[f"semisync_{key}"]
            print(f"{r['clients']:>7} | {label:<21} | {c['per_s']:>11.0f} {c['mean_ms']:>6.1f} "
                  f"{fmt(c.get('cpu_us_per_write'), '.0f'):>7} {fmt(c.get('cpu_pct'), '.0f'):>5} | "
                  f"{s.get('per_s', 0):>9.0f} {s.get('mean_ms', 0):>6.1f} | {fmt(rat, '.2f'):>5} {MYSQL_VS_SEMISYNC.outcome(rat)}")
    print(f"mean: mariadb-slap = clients / throughput; sysbench = its own average latency. CPU: the coordinator "
          f"process's utime+stime over the run ÷ committed writes ({CPU_PER_WRITE_MYSQL}), and % of one core. "
          f"Afterwards every replica held {part['sbtest1_rows_per_replica'][0]} sbtest1 rows.")
    if part.get("oltp"):
        print_oltp(part["oltp"])
    if part.get("head_of_line"):
        print_hol(part["head_of_line"])
    for why in mysql_failures(part):
        print(f"!! FAILED: {why}")


# --------------------------------------------------------------------------- transactions: sysbench OLTP

OLTP_TESTS = ("oltp_write_only", "oltp_read_write")
OLTP_TABLES, OLTP_TABLE_SIZE, OLTP_PCT = 4, 10_000, 95


def oltp_runs(side: str, host: str, port: int, db: str, threads: list[int], duration: float,
              say: Callable[[str], None]) -> dict[str, dict[int, dict[str, Any]]]:
    """sysbench `oltp_write_only` and `oltp_read_write` (BEGIN … COMMIT, server-side prepared statements —
    sysbench's default `--db-ps-mode=auto`) on one side, on freshly prepared tables (the oltp_insert table
    is dropped first). A run that fails is kept as {"error": …} — a failure of the bench, never a row."""
    opts = {"tables": OLTP_TABLES, "table_size": OLTP_TABLE_SIZE}
    say(f"==> {side}: sysbench OLTP prepare ({OLTP_TABLES} tables x {OLTP_TABLE_SIZE} rows)")
    sysbench(host, port, db, "cleanup", test=OLTP_TESTS[0], **opts)
    sysbench(host, port, db, "prepare", threads=OLTP_TABLES, test=OLTP_TESTS[0], **opts)
    out: dict[str, dict[int, dict[str, Any]]] = {}
    for test in OLTP_TESTS:
        for t in threads:
            say(f"==> {side}: sysbench {test}, {t} threads x {duration:g}s ...")
            try:
                r = sysbench(host, port, db, "run", t, duration, test, pct=OLTP_PCT, **opts)
                say(f"    {r['per_s']:.0f} tps, p95 {r['p95_ms']:.1f} ms, {r['errors_per_s']:.2f} ignored errors/s")
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                r = {"error": str(exc)[-1500:]}
                say(f"    !! {r['error']}")
            out.setdefault(test, {})[t] = r | {"client": f"sysbench {test}"}
    return out


def semisync_oltp(host: str, port: int, db: str, threads: list[int], duration: float,
                  say: Callable[[str], None]) -> dict[str, dict[int, dict[str, Any]]]:
    """The native side, directly on the semi-sync primary (while bench.py's semi-sync cluster is up)."""
    return oltp_runs("native semi-sync", host, port, db, threads, duration, say)


OLTP_DIGEST = " + ".join(f"(SELECT COUNT(*) + SUM(k) + SUM(CRC32(CONCAT(id, c, pad))) FROM sbtest{i})"
                         for i in range(1, OLTP_TABLES + 1))


def coordinator_oltp(port: int, db: str, threads: list[int], duration: float,
                     native: dict[str, dict[int, dict[str, Any]]], replica_count: Callable[[str], list[int]],
                     say: Callable[[str], None]) -> dict[str, Any]:
    """The same runs through the coordinator's MySQL port, then every replica's tables compared (a digest
    of ids, k and the strings)."""
    coord = oltp_runs("coordinator MySQL port", "127.0.0.1", port, db, threads, duration, say)
    rows = []
    for test in OLTP_TESTS:
        for t in threads:
            c, n = coord.get(test, {}).get(t, {}), native.get(test, {}).get(t, {})
            rows.append({"test": test, "threads": t, "duration_s": duration, "coordinator": c, "semisync": n,
                         "tps_ratio": ratio(c.get("per_s"), n.get("per_s"))})
    deadline = time.monotonic() + 60
    while True:
        digests = replica_count(f"SELECT {OLTP_DIGEST}")
        if len(set(digests)) == 1 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    agree = len(set(digests)) == 1
    say(f"    every replica holds the same sbtest1..{OLTP_TABLES} data" if agree
        else f"    !! replicas disagree on sbtest1..{OLTP_TABLES} after the OLTP runs: {digests}")
    return {"tables": OLTP_TABLES, "table_size": OLTP_TABLE_SIZE, "percentile": OLTP_PCT, "rows": rows,
            "replica_digests": digests, "replicas_agree": agree}


# --------------------------------------------------------------------------- transactions: head-of-line

HOL_HOLDERS, HOL_SAME_ROW_WRITERS = 8, 4
HOL_HOLDER_ROW0, HOL_HOT_ROW = 101, 1000  # holders' own rows (nobody else writes them), the shared hot row
HOL_MIN_WAIT_S = 1.0  # a same-row write that fails sooner did not wait for the lock
HOL_STATEMENT_S = 120.0  # far above any wait in a run: a client call that takes longer is a hang


async def _hol_connect(port: int, db: str) -> Any:
    import asyncmy

    return await asyncio.wait_for(asyncmy.connect(host="127.0.0.1", port=port, user="root", password="", db=db,
                                                  autocommit=True, connect_timeout=5), 15)


async def _hol_exec(conn: Any, statement: str) -> None:
    async with conn.cursor() as cur:
        await asyncio.wait_for(cur.execute(statement), HOL_STATEMENT_S)
        await cur.fetchall()


def _open_transactions(gateway: str) -> tuple[int, int]:
    """(open, pinned) interactive transactions as the coordinator reports them (/admin/transactions)."""
    st, body = http_json(gateway + "/admin/transactions", timeout=5)
    if st != 200:
        raise RuntimeError(f"GET /admin/transactions answered {st}: {body}")
    txns = body.get("transactions") or []
    return len(txns), sum(1 for t in txns if t.get("pinned_to"))


async def _hol_condition(name: str, port: int, db: str, gateway: str, writers: list[Any], duration: float,
                         hold: str | None, same_row: int) -> dict[str, Any]:
    """`writers` (one connection each) run autocommit single-row writes on their own rows — an UPDATE of
    row k+1, then an INSERT, alternating — for `duration`, while `hold` (if any) is held by HOL_HOLDERS
    open transactions and `same_row` more connections UPDATE the hot row; then the holders roll back."""
    holders: list[Any] = []
    hot: list[Any] = []
    recs: list[tuple[float, float, bool, str]] = []  # (start, end, ok, kind) of the writers' writes
    hot_recs: list[tuple[float, float, bool]] = []
    errors: list[str] = []
    released = False

    async def release() -> None:
        nonlocal released
        if not released:
            released = True
            results = await asyncio.gather(*(_hol_exec(c, "ROLLBACK") for c in holders), return_exceptions=True)
            for r in results:
                if isinstance(r, BaseException):
                    errors.append(f"holder ROLLBACK: {r!r}")

    async def writer(k: int, conn: Any, stop: float) -> None:
        i = 0
        while time.perf_counter() < stop:
            i += 1
            kind = "update" if i % 2 else "insert"
            stmt = (f"UPDATE hol SET n = n + 1 WHERE id = {k + 1}" if kind == "update"
                    else f"INSERT INTO hol_ins (client, i) VALUES ({k}, {i})")
            t = time.perf_counter()
            try:
                await _hol_exec(conn, stmt)
                recs.append((t, time.perf_counter(), True, kind))
            except Exception as exc:  # noqa: BLE001 — counted and reported, the run goes on
                recs.append((t, time.perf_counter(), False, kind))
                errors.append(f"{kind}: {exc!r}"[:300])
                if isinstance(exc, asyncio.TimeoutError):
                    return  # the connection is mid-statement: unusable
                await asyncio.sleep(0.05)  # no hot loop on a refusing server

    async def hot_writer(conn: Any, stop: float) -> None:
        while time.perf_counter() < stop:
            t = time.perf_counter()
            try:
                await _hol_exec(conn, f"UPDATE hol SET n = n + 1 WHERE id = {HOL_HOT_ROW}")
                hot_recs.append((t, time.perf_counter(), True))
            except Exception as exc:  # noqa: BLE001
                hot_recs.append((t, time.perf_counter(), False))
                errors.append(f"same-row update: {exc!r}"[:300])
                if isinstance(exc, asyncio.TimeoutError):
                    return
                await asyncio.sleep(0.05)

    try:
        if hold is not None:
            for j in range(HOL_HOLDERS):
                conn = await _hol_connect(port, db)
                holders.append(conn)
                await _hol_exec(conn, "BEGIN")
                await _hol_exec(conn, hold.format(row=HOL_HOLDER_ROW0 + j))
        hot = [await _hol_connect(port, db) for _ in range(same_row)]
        seen = await asyncio.to_thread(_open_transactions, gateway)
        t0 = time.perf_counter()
        stop = t0 + duration
        tasks = [asyncio.create_task(writer(k, c, stop)) for k, c in enumerate(writers)]
        tasks += [asyncio.create_task(hot_writer(c, stop)) for c in hot]
        await asyncio.sleep(duration)
        released_at = time.perf_counter()
        await release()
        await asyncio.wait(tasks, timeout=HOL_STATEMENT_S + 5)
        for task in tasks:
            task.cancel()
        elapsed = max([t0 + duration] + [e for _, e, _, _ in recs]) - t0
    finally:
        await release()
        for c in holders + hot:
            c.close()
    ok = [e - s for s, e, good, _ in recs if good]
    out: dict[str, Any] = {"condition": name, "clients": len(writers), "seconds": duration,
                           "holding_transactions": len(holders), "open_transactions_seen": seen[0],
                           "pinned_seen": seen[1], "writes": len(ok), "errors": sum(1 for r in recs if not r[2]),
                           "per_s": round(len(ok) / elapsed, 1) if elapsed > 0 else 0.0,
                           **summary_ms(ok), "p99_all_ms": summary_ms([e - s for s, e, _, _ in recs])["p99_ms"],
                           "update": summary_ms([e - s for s, e, good, k in recs if good and k == "update"]),
                           "insert": summary_ms([e - s for s, e, good, k in recs if good and k == "insert"]),
                           "sample_errors": errors[:5]}
    if same_row:
        waits = [e - s for s, e, _ in hot_recs]
        out["same_row"] = {
            "writers": same_row, "issued": len(hot_recs),
            # waited: really waited for the lock — got through only after the holders let go, or failed
            # (1205) after waiting at least HOL_MIN_WAIT_S; one that failed at once did not wait (the
            # batch answering 1205 instead of parking it) and is a failure of the bench
            "waited": sum(1 for s, e, good in hot_recs
                          if s < released_at and ((good and e >= released_at) or (not good and e - s >= HOL_MIN_WAIT_S))),
            "failed_at_once": sum(1 for s, e, good in hot_recs if not good and e - s < HOL_MIN_WAIT_S),
            "through_while_locked": sum(1 for s, e, good in hot_recs if good and e < released_at),
            "errors": sum(1 for r in hot_recs if not r[2]),
            "max_wait_ms": round(max(waits) * 1000, 1) if waits else 0.0}
    return out


async def _head_of_line(port: int, db: str, gateway: str, clients: int, duration: float,
                        say: Callable[[str], None]) -> dict[str, Any]:
    setup = await _hol_connect(port, db)
    try:
        await _hol_exec(setup, "CREATE TABLE IF NOT EXISTS hol (id INT PRIMARY KEY, n BIGINT NOT NULL DEFAULT 0)")
        await _hol_exec(setup, "CREATE TABLE IF NOT EXISTS hol_ins (id BIGINT AUTO_INCREMENT PRIMARY KEY, "
                               "client INT NOT NULL, i INT NOT NULL)")
        ids = [*range(1, clients + 1), *range(HOL_HOLDER_ROW0, HOL_HOLDER_ROW0 + HOL_HOLDERS), HOL_HOT_ROW]
        await _hol_exec(setup, "INSERT INTO hol (id) VALUES " + ", ".join(f"({i})" for i in ids)
                        + " ON DUPLICATE KEY UPDATE n = n")
    finally:
        setup.close()
    writers = [await _hol_connect(port, db) for _ in range(clients)]
    conditions: list[dict[str, Any]] = []
    try:
        await _hol_condition("warm-up", port, db, gateway, writers, min(1.0, duration), None, 0)
        plan = [("baseline", "no open transactions", None, 0),
                ("other_rows", f"{HOL_HOLDERS} open transactions hold FOR UPDATE locks on rows nobody else writes",
                 "SELECT id, n FROM hol WHERE id = {row} FOR UPDATE", 0),
                ("same_row", f"{HOL_HOLDERS} open transactions share-lock the hot row; {HOL_SAME_ROW_WRITERS} more "
                 "connections UPDATE it (they must wait); figures: the writes on other rows",
                 f"SELECT id, n FROM hol WHERE id = {HOL_HOT_ROW} LOCK IN SHARE MODE", HOL_SAME_ROW_WRITERS)]
        for key, text, hold, same in plan:
            say(f"==> coordinator MySQL port: head-of-line, {clients} autocommit writers x {duration:g}s: {text} ...")
            try:
                c = await _hol_condition(key, port, db, gateway, writers, duration, hold, same)
            except Exception as exc:  # noqa: BLE001 — a failed condition is a failure of the bench, not a row
                c = {"condition": key, "error": f"{type(exc).__name__}: {exc}"[:1500]}
                say(f"    !! {c['error']}")
                conditions.append(c | {"description": text})
                continue
            line = (f"    {c['per_s']:.0f} writes/s, p50 {c['p50_ms']:.1f} ms, p99 {c['p99_ms']:.1f} ms, "
                    f"{c['errors']} errors")
            if hold is not None:
                line += f"; {c['open_transactions_seen']} transactions open ({c['pinned_seen']} pinned)"
            if same:
                s = c["same_row"]
                line += (f"; same-row writes: {s['issued']} issued, {s['waited']} waited (max {s['max_wait_ms']:.0f} ms), "
                         f"{s['errors']} failed")
            say(line)
            conditions.append(c | {"description": text})
    finally:
        for w in writers:
            w.close()
    base = next((c for c in conditions if c["condition"] == "baseline" and c.get("p99_ms")), None)
    for c in conditions:
        c["p99_vs_baseline"] = round(c["p99_ms"] / base["p99_ms"], 2) if base and c.get("p99_ms") else None
    return {"clients": clients, "seconds": duration, "holders": HOL_HOLDERS, "same_row_writers": HOL_SAME_ROW_WRITERS,
            "client": f"asyncmy (Python), {clients} connections, text protocol", "conditions": conditions}


def head_of_line(port: int, db: str, gateway: str, clients: int, duration: float,
                 say: Callable[[str], None]) -> dict[str, Any]:
    """Autocommit single-row writes through the MySQL port with and without open interactive
    transactions holding row locks: does a held lock stall writes that do not need it?"""
    return asyncio.run(_head_of_line(port, db, gateway, clients, duration, say))


# --------------------------------------------------------------------------- failures and printing


def mysql_failures(part: dict[str, Any]) -> list[str]:
    """Why part 5's transaction figures are not figures: a run that failed, a figure that is 0 or missing,
    replicas that disagree, holding transactions that did not hold. Empty: every row stands."""
    bad: list[str] = []
    oltp = part.get("oltp")
    if oltp is not None:
        for r in oltp["rows"]:
            for side in ("coordinator", "semisync"):
                x = r[side]
                if x.get("error") or not x.get("per_s") or not x.get(f"p{OLTP_PCT}_ms"):
                    bad.append(f"sysbench {r['test']} {r['threads']} threads, {side}: "
                               + (x.get("error", "").strip().splitlines() or ["no tps / p95 figure"])[-1][:200])
        if not oltp["replicas_agree"]:
            bad.append(f"replicas disagree on the sbtest tables after the OLTP runs: {oltp['replica_digests']}")
    hol = part.get("head_of_line")
    if hol is not None:
        got = {c["condition"]: c for c in hol["conditions"]}
        for key in ("baseline", "other_rows", "same_row"):
            why = _hol_problem(got[key]) if key in got else "not measured"
            if why:
                bad.append(f"head-of-line {key}: {why}")
    return bad


def _hol_problem(c: dict[str, Any]) -> str | None:
    """Why one head-of-line condition's figures do not stand, or None."""
    if c.get("error"):
        return str(c["error"])[:200]
    if not c.get("writes") or not c.get("p50_ms") or not c.get("p99_ms"):
        return f"no successful autocommit write ({c.get('errors')} errors: {c.get('sample_errors', [])[:1]})"
    if (c["open_transactions_seen"], c["pinned_seen"]) != (c["holding_transactions"],) * 2:
        return (f"{c['holding_transactions']} holding transactions expected, the coordinator listed "
                f"{c['open_transactions_seen']} open ({c['pinned_seen']} pinned)")
    if c["errors"]:
        return f"{c['errors']} autocommit writes on rows nobody locks failed: {c.get('sample_errors', [])[:1]}"
    same = c.get("same_row")
    if same is not None and (not same["waited"] or same["through_while_locked"] or same["failed_at_once"]):
        return f"the hot row's writers did not wait for its lock as planned ({same})"
    return None


def _oltp_cell(x: dict[str, Any]) -> str:
    if x.get("error") or not x.get("per_s"):
        return f"{'FAILED':>24}"
    return f"{x['per_s']:>8.0f} {x[f'p{OLTP_PCT}_ms']:>7.1f} {x['errors_per_s']:>7.2f}"


def print_oltp(oltp: dict[str, Any]) -> None:
    print()
    print(f"Part 5b — transactions, sysbench OLTP (BEGIN … COMMIT, server-side prepared statements, "
          f"--tables={oltp['tables']} --table-size={oltp['table_size']}), same options on both sides")
    print(f"{'threads':>7} | {'test':<16} | {'coordinator':^24} | {'native semi-sync':^24} | {'coord ÷ semi-sync':>17}")
    print(f"{'':>7} | {'':<16} | {'tps':>8} {'p95 ms':>7} {'err/s':>7} | {'tps':>8} {'p95 ms':>7} {'err/s':>7} | "
          f"{'tps':>17}")
    print("-" * 100)
    for r in oltp["rows"]:
        ok = all(not x.get("error") and x.get("per_s") for x in (r["coordinator"], r["semisync"]))
        ratio = f"{r['tps_ratio']:.2f}" if r["tps_ratio"] is not None and ok else "-"
        print(f"{r['threads']:>7} | {r['test']:<16} | {_oltp_cell(r['coordinator'])} | {_oltp_cell(r['semisync'])} | "
              f"{ratio:>17}")
    print("err/s: errors sysbench ignores by default (deadlock 1213, lock wait timeout 1205) and retries, per second. "
          + ("Afterwards every replica held the same sbtest data." if oltp["replicas_agree"]
             else "!! Afterwards the replicas DISAGREED on the sbtest data."))


def print_hol(hol: dict[str, Any]) -> None:
    print()
    print(f"Part 5c — head-of-line: autocommit single-row UPDATE/INSERT through the MySQL port, {hol['clients']} "
          f"clients x {hol['seconds']:g} s ({hol['client']})")
    print(f"{'condition':<46} {'writes/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'p99 ÷ base':>10} {'errors':>6}")
    print("-" * 92)
    labels = {"baseline": "baseline (no open transactions)",
              "other_rows": f"{hol['holders']} open txns, FOR UPDATE on other rows",
              "same_row": f"{hol['holders']} open txns lock the hot row: other rows"}
    for c in hol["conditions"]:
        label = labels.get(c["condition"], c["condition"])
        why = _hol_problem(c)
        if why:
            print(f"{label:<46} FAILED: {why[:120]}")
            continue
        ratio = f"{c['p99_vs_baseline']:.2f}" if c.get("p99_vs_baseline") is not None else "-"
        print(f"{label:<46} {c['per_s']:>8.0f} {c['p50_ms']:>8.1f} {c['p99_ms']:>8.1f} {ratio:>10} {c['errors']:>6}")
        if "same_row" in c:
            s = c["same_row"]
            print(f"{'':<4}same-row writers ({s['writers']} connections UPDATE the locked row): {s['issued']} writes, "
                  f"{s['waited']} waited for the lock (max {s['max_wait_ms']:.0f} ms), {s['errors']} failed, "
                  f"{s['through_while_locked']} got through while it was locked")
    print("Holding transactions are opened on their own connections before each condition (BEGIN; SELECT … FOR UPDATE "
          "or LOCK IN SHARE MODE; held) and rolled back at its end; the coordinator listed them all as open and pinned.")
