"""Helpers shared by scripts/reset.py, scripts/stress.py and scripts/bench.py.

* where the coordinator's ports and the replicas are (``Endpoints``), from ``--url`` and/or
  the coordinator's ``config.toml``;
* a small async HTTP client (``Api``) and a direct SQL reader for every replica
  (``DirectReplicas``) so the scripts can check each server themselves instead of trusting the
  coordinator's word;
* throwaway clusters and coordinator subprocesses on free ports for the benchmark, and the
  output parsers of the load generators (wrk, mariadb-slap).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator
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


def config_toml(cluster: LocalCluster, ports: dict[str, int], direct: bool, sections: dict[str, dict[str, Any]] | None = None) -> str:
    names = cluster.node_names()
    leader = names[-1]
    data: dict[str, dict[str, Any]] = {
        "coordinator": {"log_level": "warning"},
        "ports": dict(ports),
        "control": {"backend": "local", "cluster_dir": str(cluster.directory)},
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
