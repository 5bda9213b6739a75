"""Run N replicas as local ``mariadbd`` processes, each behind a fault proxy.

Why: the coordinator must be exercised against real servers with real failure modes (crash,
clean stop, hang, slow link, partition) on machines without a Docker engine. Every node is a
plain ``mariadbd`` with its own datadir under one cluster directory, listening on a private
loopback port; a ``coordinator.faultproxy`` process listens on the node's public port. Both are
started detached (new session, not children of each other), so killing one never takes the other
down and the cluster outlives the process that started it.

All state lives in ``<dir>/cluster.json`` so any later CLI call or ``LocalCluster.open(dir)``
finds the cluster; the process state shown by ``status`` is always derived from the OS
(``/proc/PID/stat``), the fault state from the file each proxy persists.

The interface is synchronous on purpose: it is used from the CLI, from pytest fixtures and from
the coordinator's tooling alike. Every wait is bounded and raises :class:`ClusterError`.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

MISSING_HINT = "apt-get install -y mariadb-server"
STATE_FILE = "cluster.json"
LOCK_FILE = ".lock"
TEMPLATE_DIR = "template"
DEFAULT_PRIVATE_OFFSET = 10000
SEARCH_DIRS = ("/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin")
MAX_UNIX_PATH = 100  # sun_path is 108 bytes including the NUL; keep a margin

START_TIMEOUT = 90.0
STOP_TIMEOUT = 60.0
KILL_TIMEOUT = 10.0
PROXY_TIMEOUT = 10.0
CONTROL_TIMEOUT = 10.0
LOCK_TIMEOUT = 180.0
INSTALL_TIMEOUT = 180.0
SQL_TIMEOUT = 30.0

TUNING_ARGS = [
    "--skip-name-resolve",
    "--innodb-buffer-pool-size=128M",
    "--innodb-flush-log-at-trx-commit=1",
    "--max-connections=1000",
    "--max-allowed-packet=64M",
    "--max-connect-errors=1000000000",
    "--character-set-server=utf8mb4",
    "--collation-server=utf8mb4_general_ci",
    "--skip-log-bin",
]

INIT_SQL = """
CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY '';
GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;
CREATE USER IF NOT EXISTS 'root'@'%' IDENTIFIED BY '';
GRANT ALL PRIVILEGES ON *.* TO 'root'@'%' WITH GRANT OPTION;
CREATE DATABASE IF NOT EXISTS testdb;
FLUSH PRIVILEGES;
"""


class ClusterError(Exception):
    """Any failure of a cluster operation, with a message meant for humans."""


@dataclass
class NodeStatus:
    name: str
    instance: str
    public_port: int
    private_port: int
    mariadbd_pid: int | None
    proxy_pid: int | None
    state: str  # "running" | "stopped" | "dead" | "paused"
    proxy_alive: bool
    delay_ms: int
    partitioned: bool
    datadir: str
    socket: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --------------------------------------------------------------------------- OS helpers


def find_binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for d in SEARCH_DIRS:
        candidate = Path(d) / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def require_binaries() -> dict[str, str]:
    """Locate the MariaDB programs or fail with the install hint."""
    found: dict[str, str] = {}
    for name in ("mariadbd", "mariadb-install-db", "mariadb"):
        path = find_binary(name)
        if path is None:
            raise ClusterError(f"{name} not found; install MariaDB with: {MISSING_HINT}")
        found[name] = path
    return found


def proc_state(pid: int | None, marker: str) -> str:
    """"running", "paused" or "dead" for a pid whose command line must contain marker."""
    if not pid:
        return "dead"
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return "dead"
    code = stat.rsplit(")", 1)[-1].split()[0]
    if code in ("Z", "X", "x") or marker not in cmdline:
        return "dead"
    _reap(pid)
    return "paused" if code in ("T", "t") else "running"


def _reap(pid: int) -> None:
    """Collect a zombie if it happens to be our child (e.g. started by an older API version)."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def pids_matching(marker: str) -> list[int]:
    """Every live process whose command line contains marker (for sweeping strays)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in cmdline and proc_state(int(entry.name), marker) != "dead":
            pids.append(int(entry.name))
    return pids


def send_signal(pid: int | None, sig: signal.Signals) -> None:
    if pid:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def spawn_detached(argv: list[str], log_path: Path, env: dict[str, str] | None = None) -> int:
    """Start argv in a new session, reparented away from us, output appended to log_path.

    A throwaway shell backgrounds the program and exits, so the program is not our child:
    killing it later never leaves a zombie in a long-lived caller (the test runner).
    """
    script = '"$@" </dev/null >>"$LC_LOG" 2>&1 &\necho $!'
    full_env = {**(env or os.environ), "LC_LOG": str(log_path)}
    proc = subprocess.run(
        ["/bin/sh", "-c", script, "sh", *argv],
        env=full_env,
        start_new_session=True,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if proc.returncode != 0 or not proc.stdout.strip().isdigit():
        raise ClusterError(f"could not start {argv[0]}: {proc.stderr.strip() or proc.stdout.strip()}")
    return int(proc.stdout.strip())


def mysql_handshake(host: str, port: int, timeout: float) -> bool:
    """True if a MySQL server greets us on host:port (a cheap "is it answering" probe)."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            header = _recv_exact(sock, 4)
            payload = _recv_exact(sock, int.from_bytes(header[:3], "little"))
            return bool(payload) and payload[0] == 10
    except (OSError, ValueError):
        return False


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ValueError("connection closed")
        buf += chunk
    return buf


def port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def short_path(directory: Path, filename: str) -> str:
    """A unix socket path under directory, or under /tmp when that would be too long."""
    path = str(directory / filename)
    if len(path) <= MAX_UNIX_PATH:
        return path
    digest = hashlib.sha1(str(directory).encode()).hexdigest()[:12]
    return f"/tmp/lc-{digest}-{filename}"


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2))
    os.replace(tmp, path)


def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent


# --------------------------------------------------------------------------- node layout


@dataclass
class Node:
    """The recorded facts about one node (persisted in the state file)."""

    name: str
    public_port: int
    private_port: int
    server_id: int
    dir: str
    socket: str
    control: str
    mariadbd_pid: int | None = None
    proxy_pid: int | None = None
    desired: str = "running"  # running | stopped | killed | paused
    initialized: bool = False

    @property
    def instance(self) -> str:
        return f"mysql-{self.name}"

    @property
    def path(self) -> Path:
        return Path(self.dir)

    @property
    def datadir(self) -> Path:
        return self.path / "data"

    @property
    def faults_file(self) -> Path:
        return self.path / "faults.json"

    @property
    def server_marker(self) -> str:
        return f"--datadir={self.datadir}"

    @property
    def proxy_marker(self) -> str:
        return f"--control {self.control}"

    def server_state(self) -> str:
        return proc_state(self.mariadbd_pid, self.server_marker)

    def proxy_alive(self) -> bool:
        return proc_state(self.proxy_pid, self.proxy_marker) != "dead"

    def faults(self) -> dict[str, Any]:
        try:
            return dict(json.loads(self.faults_file.read_text()))
        except (OSError, ValueError):
            return {"delay_ms": 0, "partitioned": False, "listening": True}


def default_ports(nodes: int, base_port: int, offset: int) -> dict[str, tuple[int, int]]:
    """replica-N (the initial leader) gets base_port, replica-i gets base_port+i."""
    ports = {}
    for i in range(1, nodes + 1):
        public = base_port if i == nodes else base_port + i
        ports[f"replica-{i}"] = (public, public + offset)
    return ports


# --------------------------------------------------------------------------- the cluster


class LocalCluster:
    """A set of local mariadbd + fault proxy pairs rooted in one directory."""

    def __init__(
        self,
        directory: str | Path,
        nodes: int = 4,
        base_port: int = 3306,
        ports: dict[str, tuple[int, int]] | None = None,
        server_args: list[str] | None = None,
        host: str = "127.0.0.1",
        private_offset: int = DEFAULT_PRIVATE_OFFSET,
    ) -> None:
        if nodes < 1:
            raise ClusterError("a cluster needs at least one node")
        self.directory = Path(directory).resolve()
        self.host = host
        self.server_args = list(server_args or [])
        self._lock_depth = 0
        self._lock_fd: int | None = None
        self._nodes: dict[str, Node] = {}
        wanted = default_ports(nodes, base_port, private_offset)
        for name, pair in (ports or {}).items():
            if name not in wanted:
                raise ClusterError(f"ports given for unknown node {name!r}; nodes are {', '.join(wanted)}")
            wanted[name] = (int(pair[0]), int(pair[1]))
        for i, (name, (public, private)) in enumerate(wanted.items(), start=1):
            self._check_port(name, public)
            self._check_port(name, private)
            node_dir = self.directory / name
            self._nodes[name] = Node(
                name=name, public_port=public, private_port=private, server_id=i, dir=str(node_dir),
                socket=short_path(node_dir, "mysqld.sock"), control=short_path(node_dir, "proxy.ctl"),
            )
        if self.state_path.exists():
            self._load()

    @staticmethod
    def _check_port(name: str, port: int) -> None:
        if not 1 <= port <= 65535:
            raise ClusterError(f"port {port} for {name} is out of range")

    # ----------------------------------------------------------------- state file

    @property
    def state_path(self) -> Path:
        return self.directory / STATE_FILE

    @classmethod
    def open(cls, directory: str | Path) -> "LocalCluster":
        path = Path(directory).resolve() / STATE_FILE
        if not path.exists():
            raise ClusterError(f"no cluster in {Path(directory).resolve()} (run: scripts/cluster.py up --dir ...)")
        data = json.loads(path.read_text())
        return cls(directory, nodes=len(data["nodes"]), ports={
            n["name"]: (n["public_port"], n["private_port"]) for n in data["nodes"]
        }, server_args=data.get("server_args", []), host=data.get("host", "127.0.0.1"))

    def _load(self) -> None:
        try:
            data = json.loads(self.state_path.read_text())
        except (OSError, ValueError) as exc:
            raise ClusterError(f"unreadable state file {self.state_path}: {exc}") from exc
        self.host = data.get("host", self.host)
        self.server_args = list(data.get("server_args", []))
        self._nodes = {n["name"]: Node(**n) for n in data["nodes"]}

    def _save(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.state_path, {
            "version": 1,
            "host": self.host,
            "server_args": self.server_args,
            "nodes": [asdict(n) for n in self._nodes.values()],
        })

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Serialise mutating operations across processes (CLI and tests may race)."""
        if self._lock_depth == 0:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.directory / LOCK_FILE, os.O_CREAT | os.O_RDWR, 0o644)
            if not wait_until(lambda: _try_flock(fd), LOCK_TIMEOUT, 0.05):
                os.close(fd)
                raise ClusterError(f"timed out waiting for the cluster lock in {self.directory}")
            self._lock_fd = fd
            if self.state_path.exists():
                self._load()
        self._lock_depth += 1
        try:
            yield
        finally:
            self._lock_depth -= 1
            if self._lock_depth == 0 and self._lock_fd is not None:
                os.close(self._lock_fd)  # releases the flock
                self._lock_fd = None

    # ----------------------------------------------------------------- names

    def node_names(self) -> list[str]:
        return list(self._nodes)

    def resolve(self, name: str) -> str:
        key = name.strip()
        if key.startswith("mysql-"):
            key = key[len("mysql-"):]
        if key in self._nodes:
            return key
        valid = ", ".join(f"{n} (mysql-{n})" for n in self._nodes)
        raise ClusterError(f"unknown node {name!r}; valid names: {valid}")

    def _node(self, name: str) -> Node:
        return self._nodes[self.resolve(name)]

    def address(self, name: str, direct: bool = False) -> tuple[str, int]:
        node = self._node(name)
        return self.host, node.private_port if direct else node.public_port

    # ----------------------------------------------------------------- status

    def status(self) -> list[NodeStatus]:
        if self.state_path.exists() and self._lock_depth == 0:
            self._load()
        return [self._status(n) for n in self._nodes.values()]

    def _status(self, node: Node) -> NodeStatus:
        server = node.server_state()
        if server == "dead":
            state = "stopped" if node.desired == "stopped" or node.mariadbd_pid is None else "dead"
        else:
            state = server
        proxy_alive = node.proxy_alive()
        faults = node.faults()
        return NodeStatus(
            name=node.name, instance=node.instance, public_port=node.public_port,
            private_port=node.private_port,
            mariadbd_pid=node.mariadbd_pid if server != "dead" else None,
            proxy_pid=node.proxy_pid if proxy_alive else None,
            state=state, proxy_alive=proxy_alive,
            delay_ms=int(faults.get("delay_ms", 0)), partitioned=bool(faults.get("partitioned", False)),
            datadir=str(node.datadir), socket=node.socket,
        )

    # ----------------------------------------------------------------- up / down

    def up(self, progress: Callable[[str], None] | None = None) -> None:
        """Create the cluster, or bring every node of an existing one back to running.

        Idempotent: on an existing cluster the recorded configuration (ports, server args) wins
        over the constructor's; stopped, killed or paused servers are started/resumed and dead
        proxies restarted (they resume their persisted delay/partition, which up leaves alone).
        """
        say = progress or (lambda _msg: None)
        binaries = require_binaries()
        with self._locked():
            fresh = not self.state_path.exists()
            if fresh:
                self._check_ports_free()
                self._save()
                say(f"creating a {len(self._nodes)}-node cluster in {self.directory}")
            elif self._all_up():
                say(f"cluster in {self.directory} is already running")
                return
            else:
                say(f"cluster in {self.directory} exists; starting what is not running")
            self._ensure_datadirs(binaries, say)
            self._ensure_servers(list(self._nodes.values()), say)
            self._initialize(binaries, say)
            for node in self._nodes.values():
                self._ensure_proxy(node, say)
                node.desired = "running"
            self._save()
            self._wait_public(list(self._nodes.values()))
            say("cluster is up")

    def _all_up(self) -> bool:
        return all(self._node_up(n) for n in self._nodes.values())

    def _node_up(self, node: Node) -> bool:
        if not (node.server_state() == "running" and node.proxy_alive() and node.initialized):
            return False
        faults = node.faults()
        if not faults.get("listening", True):
            return False
        return bool(faults.get("partitioned")) or mysql_handshake(self.host, node.public_port, 2.0)

    def _check_ports_free(self) -> None:
        busy = [
            f"{n.name}:{port}" for n in self._nodes.values()
            for port in (n.public_port, n.private_port) if not port_free(self.host, port)
        ]
        if busy:
            raise ClusterError(f"ports already in use: {', '.join(busy)} (pick another --base-port)")

    def _ensure_datadirs(self, binaries: dict[str, str], say: Callable[[str], None]) -> None:
        missing = [n for n in self._nodes.values() if not (n.datadir / "mysql").is_dir()]
        if not missing:
            return
        template = self.directory / TEMPLATE_DIR
        if not (template / "mysql").is_dir():
            say("initialising a template datadir (mariadb-install-db)")
            self._install_template(binaries["mariadb-install-db"], template)
        for node in missing:
            node.path.mkdir(parents=True, exist_ok=True)
            shutil.rmtree(node.datadir, ignore_errors=True)
            shutil.copytree(template, node.datadir)
            node.initialized = False
        shutil.rmtree(template, ignore_errors=True)  # 100+ MB; cheap to recreate if ever needed

    def _install_template(self, install_db: str, template: Path) -> None:
        shutil.rmtree(template, ignore_errors=True)
        argv = [install_db, "--no-defaults", f"--datadir={template}", "--skip-test-db",
                "--auth-root-authentication-method=normal"]
        if os.geteuid() == 0:
            argv.append("--user=root")
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=INSTALL_TIMEOUT, check=False)
        except subprocess.TimeoutExpired as exc:
            raise ClusterError(f"mariadb-install-db timed out after {INSTALL_TIMEOUT:.0f}s") from exc
        if proc.returncode != 0:
            raise ClusterError(f"mariadb-install-db failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")

    def _server_argv(self, node: Node) -> list[str]:
        mariadbd = find_binary("mariadbd") or "mariadbd"
        argv = [
            mariadbd, "--no-defaults", f"--datadir={node.datadir}", f"--socket={node.socket}",
            f"--port={node.private_port}", f"--bind-address={self.host}",
            f"--pid-file={node.path / 'mysqld.pid'}", f"--log-error={node.path / 'mysqld.err'}",
            f"--server-id={node.server_id}",
        ]
        if os.geteuid() == 0:
            argv.append("--user=root")
        wants_binlog = any(a.startswith(("--log-bin", "--log_bin")) for a in self.server_args)
        argv += [a for a in TUNING_ARGS if not (wants_binlog and a == "--skip-log-bin")]
        return argv + self.server_args

    def _ensure_servers(self, nodes: list[Node], say: Callable[[str], None]) -> None:
        """Start (in parallel) every listed server that is not running, then wait for all."""
        for node in nodes:
            state = node.server_state()
            if state == "paused":
                say(f"{node.name}: resuming paused mariadbd")
                send_signal(node.mariadbd_pid, signal.SIGCONT)
            elif state == "dead":
                say(f"{node.name}: starting mariadbd on port {node.private_port}")
                self._launch_server(node)
        self._save()
        for node in nodes:
            self._wait_server(node)

    def _launch_server(self, node: Node) -> None:
        for stray in pids_matching(node.server_marker):
            send_signal(stray, signal.SIGKILL)
        if not port_free(self.host, node.private_port) and not wait_until(
            lambda: port_free(self.host, node.private_port), 5.0, 0.1
        ):
            raise ClusterError(f"{node.name}: private port {node.private_port} is in use by another process")
        node.mariadbd_pid = spawn_detached(self._server_argv(node), node.path / "mysqld.out")

    def _wait_server(self, node: Node) -> None:
        def ready() -> bool:
            if node.server_state() == "dead":
                raise ClusterError(
                    f"{node.name}: mariadbd exited during startup; last log lines:\n"
                    f"{tail(node.path / 'mysqld.err')}"
                )
            return mysql_handshake(self.host, node.private_port, 1.0)

        if not wait_until(ready, START_TIMEOUT, 0.1):
            raise ClusterError(f"{node.name}: mariadbd did not answer on port {node.private_port} "
                               f"within {START_TIMEOUT:.0f}s; see {node.path / 'mysqld.err'}")

    def _initialize(self, binaries: dict[str, str], say: Callable[[str], None]) -> None:
        for node in self._nodes.values():
            if node.initialized:
                continue
            say(f"{node.name}: creating root@127.0.0.1 and testdb")
            argv = [binaries["mariadb"], "--no-defaults", "--protocol=socket", f"--socket={node.socket}",
                    "-uroot", "-e", INIT_SQL]
            try:
                proc = subprocess.run(argv, capture_output=True, text=True, timeout=SQL_TIMEOUT, check=False)
            except subprocess.TimeoutExpired as exc:
                raise ClusterError(f"{node.name}: init SQL timed out") from exc
            if proc.returncode != 0:
                raise ClusterError(f"{node.name}: init SQL failed: {proc.stderr.strip()}")
            node.initialized = True
            self._save()

    def _ensure_proxy(self, node: Node, say: Callable[[str], None]) -> None:
        if not node.proxy_alive():
            say(f"{node.name}: starting fault proxy on port {node.public_port}")
            self._launch_proxy(node)
        self._control(node, {"cmd": "open"})

    def _launch_proxy(self, node: Node) -> None:
        for stray in pids_matching(node.proxy_marker):
            send_signal(stray, signal.SIGKILL)
        faults = node.faults()
        faults["listening"] = node.server_state() != "dead"
        write_json_atomic(node.faults_file, faults)
        argv = [sys.executable, "-m", "coordinator.faultproxy", "--name", node.name,
                "--host", self.host, "--port", str(node.public_port),
                "--upstream-host", self.host, "--upstream-port", str(node.private_port),
                "--control", node.control, "--state", str(node.faults_file)]
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(repo_root()), env.get("PYTHONPATH")]))
        node.proxy_pid = spawn_detached(argv, node.path / "proxy.log", env)
        self._save()

        def ready() -> bool:
            if not node.proxy_alive():
                raise ClusterError(f"{node.name}: fault proxy exited at startup; last log lines:\n"
                                   f"{tail(node.path / 'proxy.log')}")
            try:
                self._control(node, {"cmd": "ping"}, timeout=0.5)
                return True
            except ClusterError:
                return False

        if not wait_until(ready, PROXY_TIMEOUT, 0.05):
            raise ClusterError(f"{node.name}: fault proxy did not come up within {PROXY_TIMEOUT:.0f}s; "
                               f"see {node.path / 'proxy.log'}")

    def _wait_public(self, nodes: list[Node]) -> None:
        for node in nodes:
            if node.faults().get("partitioned"):
                continue  # a partitioned proxy lets connections hang by design
            if not wait_until(lambda: mysql_handshake(self.host, node.public_port, 2.0), START_TIMEOUT, 0.1):
                raise ClusterError(f"{node.name}: not answering through its proxy on port {node.public_port}")

    def down(self, wipe: bool = False) -> None:
        """Stop every proxy, then shut every mariadbd down cleanly (SIGKILL after a timeout).

        With wipe the cluster directory is deleted too. Strays whose command line names this
        cluster's datadirs or control sockets are swept as well, so nothing outlives down.
        """
        if not self.state_path.exists():
            if wipe and self.directory.exists() and not any(self.directory.iterdir()):
                self.directory.rmdir()
            return
        with self._locked():
            nodes = list(self._nodes.values())
            for node in nodes:
                self._stop_proxy(node)
            for node in nodes:
                self._signal_server(node, signal.SIGTERM)
            for node in nodes:
                self._wait_server_gone(node, STOP_TIMEOUT)
                node.desired = "stopped"
            self._save()
            if wipe:
                self._wipe(nodes)

    def _wipe(self, nodes: list[Node]) -> None:
        for node in nodes:
            for path in (node.socket, node.control):
                if path.startswith("/tmp/lc-"):
                    with contextlib.suppress(OSError):
                        os.unlink(path)
        shutil.rmtree(self.directory, ignore_errors=True)

    def _stop_proxy(self, node: Node) -> None:
        pids = set(pids_matching(node.proxy_marker))
        if node.proxy_alive() and node.proxy_pid:
            pids.add(node.proxy_pid)
        for pid in pids:
            send_signal(pid, signal.SIGTERM)
        gone = wait_until(lambda: not pids_matching(node.proxy_marker), PROXY_TIMEOUT)
        if not gone:
            for pid in pids_matching(node.proxy_marker):
                send_signal(pid, signal.SIGKILL)
            wait_until(lambda: not pids_matching(node.proxy_marker), KILL_TIMEOUT)
        node.proxy_pid = None

    def _signal_server(self, node: Node, sig: signal.Signals) -> None:
        pids = set(pids_matching(node.server_marker))
        if node.server_state() != "dead" and node.mariadbd_pid:
            pids.add(node.mariadbd_pid)
        for pid in pids:
            send_signal(pid, sig)
            if sig == signal.SIGTERM:
                send_signal(pid, signal.SIGCONT)  # a paused server must run to shut down

    def _wait_server_gone(self, node: Node, timeout: float) -> None:
        if wait_until(lambda: not pids_matching(node.server_marker), timeout, 0.05):
            return
        for pid in pids_matching(node.server_marker):
            send_signal(pid, signal.SIGKILL)
        if not wait_until(lambda: not pids_matching(node.server_marker), KILL_TIMEOUT, 0.05):
            raise ClusterError(f"{node.name}: mariadbd did not exit even after SIGKILL")

    # ----------------------------------------------------------------- process faults

    def stop(self, name: str) -> None:
        """Clean shutdown; the proxy refuses connections until start."""
        with self._locked():
            node = self._node(name)
            self._proxy_close(node)
            self._signal_server(node, signal.SIGTERM)
            self._wait_server_gone(node, STOP_TIMEOUT)
            node.desired = "stopped"
            self._save()

    def kill(self, name: str) -> None:
        """SIGKILL mariadbd (a crash); the proxy refuses connections until start."""
        with self._locked():
            node = self._node(name)
            self._signal_server(node, signal.SIGKILL)
            if not wait_until(lambda: not pids_matching(node.server_marker), KILL_TIMEOUT):
                raise ClusterError(f"{node.name}: mariadbd still alive {KILL_TIMEOUT:.0f}s after SIGKILL")
            self._proxy_close(node)
            node.desired = "killed"
            self._save()

    def start(self, name: str) -> None:
        """Start mariadbd on its existing datadir and reopen the proxy; waits until it answers."""
        with self._locked():
            node = self._node(name)
            self._ensure_servers([node], lambda _m: None)
            self._ensure_proxy(node, lambda _m: None)
            node.desired = "running"
            self._save()
            self._wait_public([node])

    def pause(self, name: str) -> None:
        """SIGSTOP mariadbd: connections hang, nothing is refused."""
        with self._locked():
            node = self._node(name)
            self._require_alive(node, "pause")
            send_signal(node.mariadbd_pid, signal.SIGSTOP)
            if not wait_until(lambda: node.server_state() == "paused", KILL_TIMEOUT):
                raise ClusterError(f"{node.name}: mariadbd did not stop after SIGSTOP")
            node.desired = "paused"
            self._save()

    def resume(self, name: str) -> None:
        with self._locked():
            node = self._node(name)
            self._require_alive(node, "resume")
            send_signal(node.mariadbd_pid, signal.SIGCONT)
            if not wait_until(lambda: node.server_state() == "running", KILL_TIMEOUT):
                raise ClusterError(f"{node.name}: mariadbd did not continue after SIGCONT")
            node.desired = "running"
            self._save()

    def _require_alive(self, node: Node, action: str) -> None:
        if node.server_state() == "dead":
            raise ClusterError(f"cannot {action} {node.name}: mariadbd is not running (start it first)")

    def _proxy_close(self, node: Node) -> None:
        if node.proxy_alive():
            self._control(node, {"cmd": "close"})
        else:
            faults = node.faults()
            faults["listening"] = False
            write_json_atomic(node.faults_file, faults)

    # ----------------------------------------------------------------- network faults

    def delay(self, name: str, ms: int) -> None:
        """Delay every server→client chunk by ms (adds ms to each round trip)."""
        if ms < 0:
            raise ClusterError("delay must be >= 0 ms")
        node = self._node(name)
        self._require_proxy(node, "delay")
        self._control(node, {"cmd": "delay", "ms": int(ms)})

    def partition(self, name: str) -> None:
        """Cut the node off: held traffic both ways, new connections hang."""
        node = self._node(name)
        self._require_proxy(node, "partition")
        self._control(node, {"cmd": "partition"})

    def heal(self, name: str | None = None) -> None:
        """Clear delay and partition on one node (or all, with None) and release held data."""
        nodes = list(self._nodes.values()) if name is None else [self._node(name)]
        for node in nodes:
            if node.proxy_alive():
                self._control(node, {"cmd": "heal"})
            else:  # a restarted proxy resumes from this file
                faults = node.faults()
                faults.update(delay_ms=0, partitioned=False)
                node.path.mkdir(parents=True, exist_ok=True)
                write_json_atomic(node.faults_file, faults)

    def _require_proxy(self, node: Node, action: str) -> None:
        if not node.proxy_alive():
            raise ClusterError(f"cannot {action} {node.name}: its fault proxy is not running (run up)")

    def _control(self, node: Node, msg: dict[str, Any], timeout: float = CONTROL_TIMEOUT) -> dict[str, Any]:
        """Send one JSON-line command to the node's proxy; returns after it took effect."""
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(timeout)
                sock.connect(node.control)
                sock.sendall(json.dumps(msg).encode() + b"\n")
                buf = b""
                while not buf.endswith(b"\n"):
                    chunk = sock.recv(65536)
                    if not chunk:
                        break
                    buf += chunk
        except OSError as exc:
            raise ClusterError(f"{node.name}: fault proxy control channel failed ({msg['cmd']}): {exc}") from exc
        try:
            reply = json.loads(buf)
        except ValueError as exc:
            raise ClusterError(f"{node.name}: bad reply from fault proxy: {buf!r}") from exc
        if not reply.get("ok"):
            raise ClusterError(f"{node.name}: fault proxy refused {msg['cmd']}: {reply.get('error')}")
        return dict(reply)


def _try_flock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
