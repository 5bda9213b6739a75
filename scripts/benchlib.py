"""Helpers shared by the benchmark and stress scripts: a throwaway cluster plus a
coordinator subprocess, and the load generators' output parsers."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from coordinator.localcluster import LocalCluster  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_json(url: str, body: Any = None, timeout: float = 10.0) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"},
                                 method="POST" if data is not None else "GET")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def config_toml(cluster: LocalCluster, ports: dict[str, int], direct: bool, extra: str = "") -> str:
    names = cluster.node_names()
    leader = names[-1]
    lines = ["[coordinator]", 'log_level = "warning"', "", "[ports]"]
    lines += [f"{k} = {v}" for k, v in ports.items()]
    lines += [extra, ""]
    for name in [leader] + names[:-1]:
        host, port = cluster.address(name, direct=direct)
        lines += ["[[replicas]]", f'id = "{name}"', f'name = "mysql-{name}"', f'host = "{host}"', f"port = {port}",
                  f"leader = {'true' if name == leader else 'false'}", ""]
    return "\n".join(lines)


@contextmanager
def cluster_and_coordinator(nodes: int = 4, direct: bool = True, say=print, extra_config: str = "",
                            keep_dir: bool = False) -> Iterator[tuple[LocalCluster, str, Path]]:
    """A fresh local cluster in a temp dir and a coordinator subprocess on free ports.
    Yields (cluster, gateway URL, config path); stops and wipes everything after."""
    tmp = Path(tempfile.mkdtemp(prefix="qc-bench-"))
    ports = {k: free_port() for k in ("gateway", "timestamp_odd", "timestamp_even", "metrics", "cabinet", "seer")}
    from tests.clusterfixtures import free_ports  # same port-picking as the tests
    cluster = LocalCluster(tmp / "cluster", nodes=nodes, ports=free_ports(nodes))
    proc = None
    try:
        say(f"==> starting a {nodes}-node MariaDB cluster in {tmp}")
        cluster.up()
        cfg = tmp / "config.toml"
        cfg.write_text(config_toml(cluster, ports, direct, extra_config))
        say("==> starting the coordinator" + (" (direct to servers, proxies bypassed)" if direct else " (through the fault proxies)"))
        log = open(tmp / "coordinator.log", "wb")
        proc = subprocess.Popen([sys.executable, "-m", "coordinator", "--config", str(cfg)], cwd=ROOT,
                                stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{ports['gateway']}"
        deadline = time.time() + 60
        while True:
            try:
                st, _ = http_json(url + "/query", {"query": "SELECT COUNT(*) FROM products"}, timeout=2)
                if st == 200:
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"coordinator did not become ready; see {tmp / 'coordinator.log'}")
            time.sleep(0.2)
        yield cluster, url, cfg
    finally:
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
        cluster.down(wipe=True)
        if not keep_dir:
            shutil.rmtree(tmp, ignore_errors=True)


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
        m = re.search(rf"^\s+{pct}%\s+(\S+)", out, re.M)
        if m:
            res[f"p{pct}_ms"] = _ms(m.group(1))
    m = re.search(r"(\d+) requests in", out)
    res["requests"] = float(m.group(1)) if m else 0.0
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    res["errors"] = float(m.group(1)) if m else 0.0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    res["socket_errors"] = float(sum(int(x) for x in m.groups())) if m else 0.0
    return res


def run_wrk(url: str, clients: int, duration_s: float, script: Path, args: list[str], threads: int = 2) -> dict[str, float]:
    cmd = ["wrk", f"-t{threads}", f"-c{clients}", f"-d{max(1, round(duration_s))}s", "--latency", "--timeout", "10s",
           "-s", str(script), url, "--", *args]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration_s + 60).stdout
    res = parse_wrk(out)
    res["raw"] = out  # type: ignore[assignment]
    return res


def mariadb_slap(host: str, port: int, clients: int, queries: int, schema: str, query: str) -> dict[str, float]:
    cmd = ["mariadb-slap", f"-h{host}", f"-P{port}", "-uroot", f"--concurrency={clients}", "--iterations=1",
           f"--number-of-queries={queries}", f"--create-schema={schema}", "--no-drop", f"--query={query}"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    m = re.search(r"Average number of seconds to run all queries: ([\d.]+)", out.stdout)
    if not m:
        raise RuntimeError(f"mariadb-slap failed: {out.stderr or out.stdout}")
    secs = float(m.group(1))
    per_s = queries / secs if secs else 0.0
    return {"per_s": per_s, "seconds": secs, "queries": queries,
            "mean_ms": clients / per_s * 1000 if per_s else 0.0}


def require_tools(*tools: str) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        sys.exit(f"missing tools: {', '.join(missing)} — run: apt-get install -y "
                 + " ".join({"wrk": "wrk", "mariadb-slap": "mariadb-client"}.get(t, t) for t in missing))


def env_summary() -> dict[str, Any]:
    return {"cpus": os.cpu_count(), "python": sys.version.split()[0],
            "mariadb": subprocess.run(["mariadbd", "--version"], capture_output=True, text=True).stdout.strip()
            if shutil.which("mariadbd") else "?"}
