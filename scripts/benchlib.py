"""Helpers shared by scripts/reset.py, scripts/stress.py and scripts/bench.py.

* where the coordinator's ports and the replicas are (``Endpoints``), from ``--url`` and/or
  the coordinator's ``config.toml``;
* a small async HTTP client (``Api``) and a direct SQL reader for every replica
  (``DirectReplicas``) so the scripts can check each server themselves instead of trusting the
  coordinator's word;
* throwaway clusters and coordinator subprocesses on free ports for the benchmark, and the
  output parsers of the load generators (wrk, mariadb-slap);
* what a benchmark interval cost the coordinator process: CPU (``metered``: µs per committed
  write, % of one core) and resident memory and open descriptors (``ProcSampler``); targets (``Target``).
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # devcluster is not installed: import it from the checkout
    sys.path.insert(0, str(ROOT))

from devcluster.cluster import LocalCluster  # noqa: E402
from devcluster.ports import free_port, free_ports  # noqa: E402

# --------------------------------------------------------------------------- endpoints


@dataclass
class Endpoints:
    """Where the coordinator answers, and (when a config is known) where each replica is."""

    url: str  # gateway, e.g. http://localhost:8000
    metrics: str  # http://host:8003
    cabinet: str
    seer: str
    token: str = ""
    cfg: Any = None  # coordinator.config.Config when --config (or ./config.toml) applies
    config_path: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def replicas(self) -> list[Any]:
        return list(self.cfg.replicas) if self.cfg is not None else []

    def replica_name(self, rid: str) -> str:
        for r in self.replicas:
            if rid in (r.id, r.name):
                return r.name
        return rid if rid.startswith("mysql-") else f"mysql-{rid}"


def _port_url(base: str, port: int) -> str:
    parts = urlsplit(base)
    return f"{parts.scheme or 'http'}://{parts.hostname or 'localhost'}:{port}"


def resolve_endpoints(url: str | None, metrics_url: str | None = None, config: str | None = None) -> Endpoints:
    """--url wins for the gateway; the other ports come from --config when given, else the
    gateway's host with the default ports 8003-8005. Without --config, ./config.toml is used
    for the replicas' addresses only if its gateway port matches the URL's."""
    from coordinator import config as cfgmod

    cfg = None
    notes: list[str] = []
    path = config
    explicit = config is not None
    if path is None and url is None:
        default = Path("config.toml") if Path("config.toml").exists() else ROOT / "config.toml"
        path = str(default) if default.exists() else None
    elif path is None and url is not None:
        default = Path("config.toml") if Path("config.toml").exists() else ROOT / "config.toml"
        if default.exists():
            try:
                c = cfgmod.load(default)
                if urlsplit(url).port == c.ports.gateway:
                    path = str(default)
            except cfgmod.ConfigError:
                pass
    if path is not None:
        try:
            cfg = cfgmod.load(path)
        except cfgmod.ConfigError as exc:
            if explicit:
                raise SystemExit(f"cannot use --config: {exc}") from None
            notes.append(f"ignored {path}: {exc}")
            cfg = None
    if url is None:
        host = cfg.coordinator.host if cfg and cfg.coordinator.host not in ("0.0.0.0", "::", "") else "localhost"
        url = f"http://{host}:{cfg.ports.gateway}" if cfg else "http://localhost:8000"
    url = url.rstrip("/")
    ports = cfg.ports if cfg else None
    metrics = (metrics_url or _port_url(url, ports.metrics if ports else 8003)).rstrip("/")
    cab = _port_url(url, ports.cabinet if ports else 8004)
    seer = _port_url(url, ports.seer if ports else 8005)
    token = os.environ.get("COORD_ADMIN_TOKEN") or (cfg.coordinator.admin_token if cfg else "")
    return Endpoints(url, metrics, cab, seer, token, cfg, path if cfg else None, notes)


# --------------------------------------------------------------------------- HTTP


class Api:
    """aiohttp client for the coordinator's ports. Every call returns (status, body); a
    connection failure is status 0 with {"error": ...} so callers can say what is down."""

    def __init__(self, ep: Endpoints, connections: int = 64, timeout_s: float = 30.0) -> None:
        import aiohttp

        self.ep = ep
        self._aiohttp = aiohttp
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=connections + 8, force_close=False),
            timeout=aiohttp.ClientTimeout(total=timeout_s))
        self.headers = {"Authorization": f"Bearer {ep.token}"} if ep.token else {}

    async def close(self) -> None:
        await self.session.close()

    async def _call(self, method: str, url: str, body: Any = None, timeout: float | None = None) -> tuple[int, Any]:
        kw: dict[str, Any] = {"headers": self.headers}
        if body is not None:
            kw["json"] = body
        if timeout is not None:
            kw["timeout"] = self._aiohttp.ClientTimeout(total=timeout)
        try:
            async with self.session.request(method, url, **kw) as resp:
                text = await resp.text()
                try:
                    return resp.status, json.loads(text) if text else {}
                except ValueError:
                    return resp.status, {"error": text[:300]}
        except (self._aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            return 0, {"error": f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__}

    async def get(self, url: str, timeout: float | None = None) -> tuple[int, Any]:
        return await self._call("GET", url, timeout=timeout)

    async def post(self, url: str, body: Any = None, timeout: float | None = None) -> tuple[int, Any]:
        return await self._call("POST", url, body if body is not None else {}, timeout=timeout)

    async def query(self, sql: str, params: Any = None, **extra: Any) -> tuple[int, Any]:
        body = {"query": sql, **({"params": params} if params is not None else {}), **extra}
        return await self.post(self.ep.url + "/query", body)

    async def status(self) -> tuple[int, Any]:
        return await self.get(self.ep.url + "/status", timeout=5)

    async def metrics(self) -> tuple[int, Any]:
        return await self.get(self.ep.metrics + "/metrics", timeout=5)

    async def quorum(self) -> tuple[int, Any]:
        return await self.post(self.ep.cabinet + "/select-quorum", {"operation": "write"}, timeout=5)

    async def elect(self, exclude: list[str] | None = None) -> tuple[int, Any]:
        return await self.post(self.ep.seer + "/elect-leader", {"exclude_replicas": exclude or []}, timeout=5)

    async def admin(self, path: str, body: Any = None, timeout: float = 60) -> tuple[int, Any]:
        return await self.post(self.ep.url + "/admin/" + path.lstrip("/"), body, timeout=timeout)


def http_json(url: str, body: Any = None, timeout: float = 10.0) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"},
                                 method="POST" if data is not None else "GET")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as exc:
        try:
            return exc.code, json.loads(exc.read() or b"{}")
        except ValueError:
            return exc.code, {}


# --------------------------------------------------------------------------- direct SQL


class DirectReplicas:
    """Read every replica's server directly (the addresses in the coordinator's config), so a
    check "every replica holds every acknowledged row" does not rest on the coordinator's word."""

    def __init__(self, ep: Endpoints) -> None:
        self.ep = ep
        self.cfg = ep.cfg

    @property
    def available(self) -> bool:
        return self.cfg is not None

    def ids(self) -> list[str]:
        return [r.id for r in self.cfg.replicas] if self.cfg else []

    async def query(self, rid: str, sql: str, params: Any = None, db: str | None = "") -> list[tuple[Any, ...]]:
        import asyncmy

        rep = self.cfg.replica(rid)
        m = self.cfg.mysql
        database = self.cfg.coordinator.database if db == "" else db
        conn = await asyncio.wait_for(asyncmy.connect(
            host=rep.host, port=rep.port, user=m.user, password=m.password, db=database, autocommit=True,
            connect_timeout=max(2, int(m.connect_timeout_s) + 1)), 10)
        try:
            async with conn.cursor() as cur:
                await asyncio.wait_for(cur.execute(sql, params), 30)
                return list(await cur.fetchall())
        finally:
            conn.close()


# --------------------------------------------------------------------------- statistics


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile (no interpolation): a value some request really took."""
    if not values:
        return 0.0
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(round(pct / 100 * len(s) + 0.5)) - 1))
    return s[k]


def summary_ms(latencies_s: list[float]) -> dict[str, float]:
    ms = [x * 1000 for x in latencies_s]
    return {"p50_ms": round(percentile(ms, 50), 2), "p95_ms": round(percentile(ms, 95), 2),
            "p99_ms": round(percentile(ms, 99), 2), "max_ms": round(max(ms), 2) if ms else 0.0,
            "mean_ms": round(sum(ms) / len(ms), 2) if ms else 0.0, "count": len(ms)}


# --------------------------------------------------------------------------- throwaway clusters


BENCH_MYSQL_MAX_CONNECTIONS = 1200  # ≥ 1,024 clients + a margin (the default, 1,000, would refuse some)


def config_toml(cluster: LocalCluster, ports: dict[str, int], direct: bool, sections: dict[str, dict[str, Any]] | None = None) -> str:
    names = cluster.node_names()
    leader = names[-1]
    data: dict[str, dict[str, Any]] = {
        "coordinator": {"log_level": "warning"},
        "ports": dict(ports),
        "control": {"backend": "local", "cluster_dir": str(cluster.directory)},
        # the bench drives up to 1,024 clients through the MySQL port (scale part): room for them and a margin
        "mysql_front": {"max_connections": BENCH_MYSQL_MAX_CONNECTIONS},
    }
    for sec, vals in (sections or {}).items():
        data.setdefault(sec, {}).update(vals)
    lines: list[str] = []
    for sec, vals in data.items():
        lines.append(f"[{sec}]")
        for k, v in vals.items():
            lines.append(f"{k} = {json.dumps(v) if not isinstance(v, bool) else str(v).lower()}")
        lines.append("")
    for name in [leader] + names[:-1]:
        host, port = cluster.address(name, direct=direct)
        lines += ["[[replicas]]", f'id = "{name}"', f'name = "mysql-{name}"', f'host = "{host}"', f"port = {port}",
                  f"leader = {'true' if name == leader else 'false'}", ""]
    return "\n".join(lines)


class CoordinatorProc:
    """A coordinator subprocess on free ports for a given cluster."""

    def __init__(self, cluster: LocalCluster, workdir: Path, direct: bool,
                 sections: dict[str, dict[str, Any]] | None = None) -> None:
        self.ports = {k: free_port() for k in ("gateway", "timestamp_odd", "timestamp_even", "metrics", "cabinet", "seer",
                                               "mysql")}
        self.cfg_path = workdir / f"coord-{self.ports['gateway']}.toml"
        self.cfg_path.write_text(config_toml(cluster, self.ports, direct, sections))
        self.log_path = workdir / f"coord-{self.ports['gateway']}.log"
        self.direct = direct
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.ports['gateway']}"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['metrics']}"

    @property
    def pid(self) -> int:
        """The coordinator's own process (started directly, no shell in between): what /proc is read for."""
        if self.proc is None or self.proc.poll() is not None:
            raise RuntimeError("the coordinator is not running")
        return self.proc.pid

    def start(self, timeout: float = 60) -> None:
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "coordinator", "--config", str(self.cfg_path)], cwd=ROOT,
                                     stdout=log, stderr=subprocess.STDOUT)
        deadline = time.time() + timeout
        while True:
            try:
                st, _ = http_json(self.url + "/query", {"query": "SELECT COUNT(*) FROM products"}, timeout=2)
                if st == 200:
                    return
            except OSError:
                pass
            if self.proc.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"coordinator did not become ready; see {self.log_path}")
            time.sleep(0.2)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def new_cluster(directory: Path, nodes: int = 4, server_args: list[str] | None = None) -> LocalCluster:
    return LocalCluster(directory, nodes=nodes, ports=free_ports(nodes), server_args=server_args)


@contextmanager
def cluster_and_coordinator(nodes: int = 4, direct: bool = True, say=print,
                            sections: dict[str, dict[str, Any]] | None = None,
                            keep_dir: bool = False) -> Iterator[tuple[LocalCluster, CoordinatorProc, Path]]:
    """A fresh local cluster in a temp dir and a coordinator subprocess on free ports.
    Yields (cluster, coordinator, temp dir); stops and wipes everything after."""
    tmp = Path(tempfile.mkdtemp(prefix="qc-bench-"))
    cluster = new_cluster(tmp / "cluster", nodes)
    coord: CoordinatorProc | None = None
    try:
        say(f"==> starting a {nodes}-node MariaDB cluster in {tmp}")
        cluster.up()
        coord = CoordinatorProc(cluster, tmp, direct, sections)
        say("==> starting the coordinator" + (" (direct to the servers, proxies bypassed)" if direct
                                             else " (through the fault proxies)"))
        coord.start()
        yield cluster, coord, tmp
    finally:
        if coord is not None:
            coord.stop()
        cluster.down(wipe=True)
        if not keep_dir:
            shutil.rmtree(tmp, ignore_errors=True)


# --------------------------------------------------------------------------- load generators

_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _ms(text: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s|m)", text)
    if not m:
        raise ValueError(text)
    return float(m.group(1)) * _UNITS[m.group(2)]


def parse_wrk(out: str) -> dict[str, float]:
    res: dict[str, float] = {}
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    res["per_s"] = float(m.group(1)) if m else 0.0
    for pct in ("50", "75", "90", "99"):
        m = re.search(rf"^\s+{pct}(?:\.0+)?%\s+(\S+)", out, re.M)
        if m:
            res[f"p{pct}_ms"] = _ms(m.group(1))
    m = re.search(r"(\d+) requests in", out)
    res["requests"] = float(m.group(1)) if m else 0.0
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    res["errors"] = float(m.group(1)) if m else 0.0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    res["socket_errors"] = float(sum(int(x) for x in m.groups())) if m else 0.0
    return res


def run_wrk(url: str, clients: int, duration_s: float, script: Path, args: list[str], threads: int = 2) -> dict[str, Any]:
    cmd = ["wrk", f"-t{min(threads, clients)}", f"-c{clients}", f"-d{max(1, round(duration_s))}s", "--latency",
           "--timeout", "10s", "-s", str(script), url, "--", *args]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration_s + 60).stdout
    res: dict[str, Any] = dict(parse_wrk(out))
    res["raw"] = out
    return res


def mariadb_slap(host: str, port: int, clients: int, queries: int, schema: str, query: str) -> dict[str, float]:
    cmd = ["mariadb-slap", f"-h{host}", f"-P{port}", "-uroot", f"--concurrency={clients}", "--iterations=1",
           f"--number-of-queries={queries}", f"--create-schema={schema}", "--no-drop", f"--query={query}"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    m = re.search(r"Average number of seconds to run all queries: ([\d.]+)", out.stdout)
    if out.returncode != 0 or not m:
        raise RuntimeError(f"mariadb-slap failed (exit {out.returncode}): {out.stderr or out.stdout}")
    secs = float(m.group(1))
    per_s = queries / secs if secs else 0.0
    return {"per_s": per_s, "seconds": secs, "queries": queries,
            "mean_ms": clients / per_s * 1000 if per_s else 0.0}


BENCH_COLS = "(id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(255) NOT NULL, email VARCHAR(255) NOT NULL)"
SLAP_INSERT = "INSERT INTO bench (name, email) VALUES ('bench', 'slap@bench.local')"
WRK_INSERT = ROOT / "scripts" / "wrk_insert.lua"


@dataclass(frozen=True)
class SlapSizing:
    """How long a mariadb-slap figure runs. Short runs understate a server (connection set-up and
    warm-up weigh in), so every side gets the same warm-up run first — max(warmup_min, clients ×
    warmup_per_client) queries, which also calibrates the rate — and a measured run of
    max(min_queries, clients × per_client, calibrated rate × duration) queries."""

    warmup_min: int = 5000
    warmup_per_client: int = 20
    min_queries: int = 20_000
    # with fewer queries per client, mariadb-slap's first clients finish before its last ones connect (at
    # 1,024 clients, 5 per client had only ~700 connected at once): the measured run keeps 20
    per_client: int = 20


# --quick: short, the same kinds; 40 measured queries per client, so that on a loaded CI machine all 1,024
# clients of the scale part are still connected at once (with 20, one run of the suite saw only 770)
QUICK_SLAP = SlapSizing(warmup_min=500, warmup_per_client=5, min_queries=1000, per_client=40)


def slap_for(host: str, port: int, clients: int, duration: float, schema: str, sizing: SlapSizing = SlapSizing(),
             pid: int | None = None) -> dict[str, Any]:
    """mariadb-slap INSERTs sized to about `duration` seconds (see SlapSizing); with `pid`, the
    coordinator's CPU over the measured run (per query: each is one committed single-row INSERT)."""
    warm = mariadb_slap(host, port, clients, max(sizing.warmup_min, clients * sizing.warmup_per_client), schema,
                        SLAP_INSERT)
    queries = max(sizing.min_queries, clients * sizing.per_client, int(warm["per_s"] * duration))
    r = metered(pid, lambda: mariadb_slap(host, port, clients, queries, schema, SLAP_INSERT), lambda r: r["queries"])
    return r | {"warmup_queries": warm["queries"], "warmup_per_s": round(warm["per_s"], 1)}


WRK_WARMUP_S = 2.0  # about the 5,000-query warm-up every mariadb-slap figure gets, at these rates


def wrk_writes(url: str, clients: int, duration: float, prefix: str, pid: int | None = None) -> dict[str, Any]:
    """wrk's unique single-row INSERTs through POST /query (scripts/wrk_insert.lua), after a warm-up
    run of WRK_WARMUP_S with the same clients (not measured: the connections, the servers' pages
    and the coordinator's caches are warm, as on the mariadb-slap side); `commits` is the advance of
    the coordinator's commit timestamp over the measured run, what CPU per write divides by."""
    run_wrk(url, clients, WRK_WARMUP_S, WRK_INSERT, [prefix + "w", "bench"])

    def run() -> dict[str, Any]:
        _, before = http_json(url + "/status")
        w = run_wrk(url, clients, duration, WRK_INSERT, [prefix, "bench"])
        _, after = http_json(url + "/status")
        return w | {"commits": after["commit_timestamp"] - before["commit_timestamp"]}

    return metered(pid, run, lambda r: r["commits"])


def create_bench_table(url: str) -> None:
    """The `bench` table (database testdb) through the coordinator's gateway."""
    st, body = http_json(url + "/query", {"query": f"CREATE TABLE bench {BENCH_COLS}"})
    if st != 200:
        raise RuntimeError(f"cannot create the bench table: {body}")


def set_mode(url: str, mode: str, warm_tag: str | None = None) -> None:
    """POST /admin/replication-mode; with `warm_tag`, one second of 8 wrk clients in the new mode."""
    st, body = http_json(url + "/admin/replication-mode", {"mode": mode})
    if st != 200:
        raise RuntimeError(f"mode switch to {mode} failed ({st}): {body}")
    if warm_tag is not None:
        run_wrk(url, 8, 1, WRK_INSERT, [warm_tag, "bench"])


def raise_open_files(need: int) -> dict[str, int]:
    """Raise this process's soft RLIMIT_NOFILE to `need` (children — mariadb-slap, sysbench, the
    coordinator — inherit it): 1,024 client connections need more than the common 1,024 default."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = need if hard == resource.RLIM_INFINITY else min(need, hard)
    if soft != resource.RLIM_INFINITY and soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    now = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if now != resource.RLIM_INFINITY and now < need:
        raise RuntimeError(f"open files limit {now} (hard {hard}) is below the {need} the bench needs")
    return {"soft_before": soft, "soft": now, "hard": hard}


# --------------------------------------------------------------------------- the coordinator's CPU and memory

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of process `pid`, all its threads (/proc/<pid>/stat fields 14 and 15, clock ticks)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()  # fields[0] is field 3 (state)
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def cpu_figures(cpu_s: float, wall_s: float, writes: float) -> dict[str, Any]:
    return {"cpu_s": round(cpu_s, 3), "cpu_wall_s": round(wall_s, 3), "cpu_writes": writes,
            "cpu_pct": round(100 * cpu_s / wall_s, 1) if wall_s > 0 else None,
            "cpu_us_per_write": round(cpu_s * 1e6 / writes, 1) if writes > 0 else None}


def metered(pid: int | None, run: Callable[[], dict[str, Any]],
            writes: Callable[[dict[str, Any]], float]) -> dict[str, Any]:
    """run()'s result plus the coordinator's CPU just around it: cpu_us_per_write (CPU time ÷ writes(result))
    and cpu_pct (of one core, over the interval). Without a pid, run()'s result alone."""
    if pid is None:
        return run()
    c0, t0 = cpu_seconds(pid), time.perf_counter()
    r = run()
    c1, t1 = cpu_seconds(pid), time.perf_counter()
    return r | cpu_figures(c1 - c0, t1 - t0, writes(r))


def proc_status_mb(pid: int, key: str) -> float:
    """A size line of /proc/<pid>/status (VmRSS, VmHWM, …) in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError(f"no {key} in /proc/{pid}/status")


def open_fds(pid: int) -> int:
    """How many file descriptors process `pid` has open (its client connections among them)."""
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


def connections_to(port: int) -> int:
    """Established TCP connections whose local end is `port` (/proc/net/tcp and tcp6): the clients
    connected to the server listening there, exactly — its other descriptors (server connections that
    come and go, files) do not count."""
    hexport = f":{port:04X}"
    n = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            n += f[1].endswith(hexport) and f[3] == "01"
    return n


class ProcSampler:
    """Samples the coordinator's resident memory (VmRSS), open file descriptors and (with `port`) the
    clients connected to that port in a thread while the `with` block runs; figures(): RSS before, max
    seen, after, the kernel's peak VmHWM (over the process's whole life), the most descriptors seen;
    connected_since(): the most clients seen connected at once (= the client count: all connected)."""

    def __init__(self, pid: int, interval_s: float = 0.05, port: int | None = None) -> None:
        self.pid, self.interval_s, self.port = pid, interval_s, port
        self.rss: list[float] = []
        self.fds: list[int] = []
        self.conns: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.rss.append(proc_status_mb(self.pid, "VmRSS"))
            self.fds.append(open_fds(self.pid))
            if self.port is not None:
                self.conns.append(connections_to(self.port))
            self._stop.wait(self.interval_s)

    def __enter__(self) -> ProcSampler:
        self.before_mb = proc_status_mb(self.pid, "VmRSS")
        self.fds_before = open_fds(self.pid)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.after_mb = proc_status_mb(self.pid, "VmRSS")
        self.hwm_mb = proc_status_mb(self.pid, "VmHWM")

    def connected_since(self, mark: int) -> int | None:
        """The most clients seen connected to `port` at once since len(self.conns) was `mark` (None: no sample)."""
        return max(self.conns[mark:], default=None)

    def figures(self) -> dict[str, Any]:
        return {"rss_before_mb": self.before_mb, "rss_max_mb": max(self.rss, default=None),
                "rss_after_mb": self.after_mb, "vm_hwm_mb": self.hwm_mb, "fds_before": self.fds_before,
                "max_open_fds": max(self.fds, default=None),
                "samples": len(self.rss), "interval_s": self.interval_s}


# --------------------------------------------------------------------------- targets


@dataclass(frozen=True)
class Target:
    """A §7 target (enforced by a full run) or an aim (printed only): `op` is ≤, ≥ or <."""

    op: str
    bound: float
    unit: str = ""
    aim: bool = False

    def met(self, value: Any) -> bool:
        if not is_number(value):
            return False
        return {"≤": value <= self.bound, "≥": value >= self.bound, "<": value < self.bound}[self.op]

    def __str__(self) -> str:
        return f"{'aim' if self.aim else 'target'} {self.op} {self.bound:g}{self.unit}"

    def outcome(self, value: Any) -> str:
        return "met" if self.met(value) else "not met"

    def verdict(self, value: Any) -> str:
        return f"{self}: {self.outcome(value)}"


# DESIGN.md §7 (aims are printed, never enforced)
HTTP_VS_SEMISYNC = Target("≥", 0.6)  # part 1: wrk writes/s ÷ semi-sync mariadb-slap writes/s
MYSQL_VS_SEMISYNC = Target("≥", 1.0)  # part 5: the same C client on both sides
P50_MYSQL_VS_SEMISYNC = Target("≤", 1.5)  # 16 clients, asyncmy on both sides
P50_HTTP_VS_SEMISYNC = Target("≤", 2.0)  # 16 clients, aiohttp ÷ asyncmy
CPU_PER_WRITE_MYSQL = Target("≤", 80, " µs", aim=True)  # coordinator CPU per write, MySQL front end
CABINET_SLOWED_P50 = Target("≤", 1.5)  # part 2: cabinet p50 slowed ÷ healthy
CABINET_OVER_MAJORITY = Target("≥", 3)  # part 2: throughput with two followers slowed
KILL_GAP_P50 = Target("<", 1000, " ms")
SIGSTOP_GAP_P50 = Target("<", 2000, " ms")
READ_OVERHEAD_P50 = Target("≤", 1.0, " ms")  # gateway p50 − direct p50


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def ratio(a: Any, b: Any) -> float | None:
    """a ÷ b to 2 places; None unless both are figures > 0 (a missing side shows as missing, never as 0)."""
    return round(a / b, 2) if is_number(a) and is_number(b) and a > 0 and b > 0 else None


@dataclass(frozen=True)
class Figure:
    """One printed figure, named with the client that produced it. A figure must be a finite number
    > 0 — or, when `signed` (a difference), any finite number; when `zero` (an error count), exactly 0;
    with `minimum`, at least that."""

    name: str
    value: Any
    target: Target | None = None
    signed: bool = False
    zero: bool = False
    minimum: float | None = None

    def problem(self) -> str | None:
        """Why this is not a figure (missing, None, NaN, 0, errors), or None."""
        if not is_number(self.value):
            return f"{self.name}: {'missing' if self.value is None else repr(self.value)}"
        if self.zero:
            return f"{self.name}: {self.value:g} (must be 0)" if self.value != 0 else None
        if not self.signed and self.value <= 0:
            return f"{self.name}: {self.value:g}"
        if self.minimum is not None and self.value < self.minimum:
            return f"{self.name}: {self.value:g} (below {self.minimum:g})"
        return None


def require_tools(*tools: str) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        sys.exit(f"missing tools: {', '.join(missing)} — run: apt-get install -y "
                 + " ".join(sorted({{"wrk": "wrk", "mariadb-slap": "mariadb-client",
                                     "mariadb": "mariadb-client"}.get(t, t) for t in missing})))


def env_summary() -> dict[str, Any]:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = None
    return {"cpus": os.cpu_count(), "cpu_model": cpu, "python": sys.version.split()[0],
            "load_avg_1m_at_start": load,
            "mariadb": subprocess.run(["mariadbd", "--version"], capture_output=True, text=True).stdout.strip()
            if shutil.which("mariadbd") else "?",
            "wrk": (subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.splitlines() or ["?"])[0]
            if shutil.which("wrk") else "?"}
