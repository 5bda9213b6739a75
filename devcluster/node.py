"""One node of the local cluster: its layout on disk, its ``mariadbd`` and its fault proxy.

Why the split from :mod:`devcluster.cluster`: everything here concerns a single node and needs
only that node's recorded facts (plus the listen host), while the cluster decides *which* nodes to
act on, holds the lock and persists the state file. A :class:`Node` is persisted as-is (its
dataclass fields are the node's entry in ``cluster.json``); whether its processes run is always
derived from the OS, never trusted from the file.

Every wait is bounded and raises :class:`~devcluster.process.ClusterError`.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from devcluster import protocol
from devcluster.ports import port_free
from devcluster.process import (
    ClusterError,
    find_binary,
    mysql_handshake,
    pids_matching,
    proc_state,
    repo_root,
    send_signal,
    short_path,
    spawn_detached,
    tail,
    wait_until,
)
from devcluster.protocol import Faults

START_TIMEOUT = 90.0
STOP_TIMEOUT = 60.0
KILL_TIMEOUT = 10.0
PROXY_TIMEOUT = 10.0
CONTROL_TIMEOUT = 10.0
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


def install_template(install_db: str, template: Path) -> None:
    """A fresh system datadir in template (copied into every node's datadir by the cluster)."""
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


@dataclass
class Node:
    """The recorded facts about one node (persisted in the state file), and its processes."""

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

    @classmethod
    def create(cls, name: str, public_port: int, private_port: int, server_id: int, directory: Path) -> Node:
        """A new node in directory/name; its unix socket paths fall back to /tmp when too long."""
        node_dir = directory / name
        return cls(name=name, public_port=public_port, private_port=private_port, server_id=server_id,
                   dir=str(node_dir), socket=short_path(node_dir, "mysqld.sock"),
                   control=short_path(node_dir, "proxy.ctl"))

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

    def faults(self) -> Faults:
        """The fault state the proxy last persisted (the defaults before it ever ran)."""
        return Faults.load(self.faults_file)

    def status(self) -> NodeStatus:
        """What ``status`` shows: process states from the OS, faults from the proxy's file."""
        server = self.server_state()
        if server == "dead":
            state = "stopped" if self.desired == "stopped" or self.mariadbd_pid is None else "dead"
        else:
            state = server
        proxy_alive = self.proxy_alive()
        faults = self.faults()
        return NodeStatus(
            name=self.name, instance=self.instance, public_port=self.public_port,
            private_port=self.private_port,
            mariadbd_pid=self.mariadbd_pid if server != "dead" else None,
            proxy_pid=self.proxy_pid if proxy_alive else None,
            state=state, proxy_alive=proxy_alive,
            delay_ms=faults.delay_ms, partitioned=faults.partitioned,
            datadir=str(self.datadir), socket=self.socket,
        )

    # ----------------------------------------------------------------- mariadbd

    def server_argv(self, host: str, server_args: list[str]) -> list[str]:
        mariadbd = find_binary("mariadbd") or "mariadbd"
        argv = [
            mariadbd, "--no-defaults", f"--datadir={self.datadir}", f"--socket={self.socket}",
            f"--port={self.private_port}", f"--bind-address={host}",
            f"--pid-file={self.path / 'mysqld.pid'}", f"--log-error={self.path / 'mysqld.err'}",
            f"--server-id={self.server_id}",
        ]
        if os.geteuid() == 0:
            argv.append("--user=root")
        wants_binlog = any(a.startswith(("--log-bin", "--log_bin")) for a in server_args)
        argv += [a for a in TUNING_ARGS if not (wants_binlog and a == "--skip-log-bin")]
        return argv + server_args

    def launch_server(self, host: str, server_args: list[str]) -> None:
        """Start mariadbd detached (sweeping strays on this datadir first); does not wait."""
        for stray in pids_matching(self.server_marker):
            send_signal(stray, signal.SIGKILL)
        if not port_free(host, self.private_port) and not wait_until(
            lambda: port_free(host, self.private_port), 5.0, 0.1
        ):
            raise ClusterError(f"{self.name}: private port {self.private_port} is in use by another process")
        self.mariadbd_pid = spawn_detached(self.server_argv(host, server_args), self.path / "mysqld.out")

    def wait_server(self, host: str) -> None:
        def ready() -> bool:
            if self.server_state() == "dead":
                raise ClusterError(
                    f"{self.name}: mariadbd exited during startup; last log lines:\n"
                    f"{tail(self.path / 'mysqld.err')}"
                )
            return mysql_handshake(host, self.private_port, 1.0)

        if not wait_until(ready, START_TIMEOUT, 0.1):
            raise ClusterError(f"{self.name}: mariadbd did not answer on port {self.private_port} "
                               f"within {START_TIMEOUT:.0f}s; see {self.path / 'mysqld.err'}")

    def run_init_sql(self, mariadb: str) -> None:
        """Create root@127.0.0.1, root@% and testdb over the server's unix socket."""
        argv = [mariadb, "--no-defaults", "--protocol=socket", f"--socket={self.socket}", "-uroot", "-e", INIT_SQL]
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=SQL_TIMEOUT, check=False)
        except subprocess.TimeoutExpired as exc:
            raise ClusterError(f"{self.name}: init SQL timed out") from exc
        if proc.returncode != 0:
            raise ClusterError(f"{self.name}: init SQL failed: {proc.stderr.strip()}")

    def signal_server(self, sig: signal.Signals) -> None:
        pids = set(pids_matching(self.server_marker))
        if self.server_state() != "dead" and self.mariadbd_pid:
            pids.add(self.mariadbd_pid)
        for pid in pids:
            send_signal(pid, sig)
            if sig == signal.SIGTERM:
                send_signal(pid, signal.SIGCONT)  # a paused server must run to shut down

    def server_gone_within(self, timeout: float, interval: float = 0.02) -> bool:
        """True once no mariadbd runs on this node's datadir (strays included), False after timeout."""
        return wait_until(lambda: not pids_matching(self.server_marker), timeout, interval)

    def wait_server_gone(self, timeout: float) -> None:
        """Wait for mariadbd to exit; SIGKILL it (and any stray) when it takes longer than timeout."""
        if self.server_gone_within(timeout, 0.05):
            return
        for pid in pids_matching(self.server_marker):
            send_signal(pid, signal.SIGKILL)
        if not self.server_gone_within(KILL_TIMEOUT, 0.05):
            raise ClusterError(f"{self.name}: mariadbd did not exit even after SIGKILL")

    # ----------------------------------------------------------------- fault proxy

    def launch_proxy(self, host: str) -> None:
        """Start the proxy detached; it listens only if mariadbd runs. Wait with wait_proxy."""
        for stray in pids_matching(self.proxy_marker):
            send_signal(stray, signal.SIGKILL)
        faults = self.faults()
        faults.listening = self.server_state() != "dead"
        faults.save(self.faults_file)
        argv = [sys.executable, "-m", "devcluster.faultproxy", "--name", self.name,
                "--host", host, "--port", str(self.public_port),
                "--upstream-host", host, "--upstream-port", str(self.private_port),
                "--control", self.control, "--state", str(self.faults_file)]
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(repo_root()), env.get("PYTHONPATH")]))
        self.proxy_pid = spawn_detached(argv, self.path / "proxy.log", env)

    def wait_proxy(self) -> None:
        def ready() -> bool:
            if not self.proxy_alive():
                raise ClusterError(f"{self.name}: fault proxy exited at startup; last log lines:\n"
                                   f"{tail(self.path / 'proxy.log')}")
            try:
                self.command("ping", timeout=0.5)
                return True
            except ClusterError:
                return False

        if not wait_until(ready, PROXY_TIMEOUT, 0.05):
            raise ClusterError(f"{self.name}: fault proxy did not come up within {PROXY_TIMEOUT:.0f}s; "
                               f"see {self.path / 'proxy.log'}")

    def stop_proxy(self) -> None:
        pids = set(pids_matching(self.proxy_marker))
        if self.proxy_alive() and self.proxy_pid:
            pids.add(self.proxy_pid)
        for pid in pids:
            send_signal(pid, signal.SIGTERM)
        gone = wait_until(lambda: not pids_matching(self.proxy_marker), PROXY_TIMEOUT)
        if not gone:
            for pid in pids_matching(self.proxy_marker):
                send_signal(pid, signal.SIGKILL)
            wait_until(lambda: not pids_matching(self.proxy_marker), KILL_TIMEOUT)
        self.proxy_pid = None

    def command(self, cmd: str, timeout: float = CONTROL_TIMEOUT, **fields: Any) -> dict[str, Any]:
        """Send one control command to the node's proxy; returns after it took effect."""
        try:
            reply = protocol.send(self.control, protocol.request(cmd, **fields), timeout)
        except OSError as exc:
            raise ClusterError(f"{self.name}: fault proxy control channel failed ({cmd}): {exc}") from exc
        except protocol.BadReply as exc:
            raise ClusterError(f"{self.name}: {exc}") from exc
        if not reply.get("ok"):
            raise ClusterError(f"{self.name}: fault proxy refused {cmd}: {reply.get('error')}")
        return reply
