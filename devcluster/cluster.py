"""Run N replicas as local ``mariadbd`` processes, each behind a fault proxy.

Why: the coordinator must be exercised against real servers with real failure modes (crash,
clean stop, hang, slow link, partition) on machines without a Docker engine. Every node is a
plain ``mariadbd`` with its own datadir under one cluster directory, listening on a private
loopback port; a ``devcluster.faultproxy`` process listens on the node's public port. Both are
started detached (new session, not children of each other), so killing one never takes the other
down and the cluster outlives the process that started it.

All state lives in ``<dir>/cluster.json`` so any later CLI call or ``LocalCluster.open(dir)``
finds the cluster; the process state shown by ``status`` is always derived from the OS
(``/proc/PID/stat``), the fault state from the file each proxy persists.

The interface is synchronous on purpose: it is used from the CLI, from pytest fixtures and from
the coordinator's tooling alike. Every wait is bounded and raises :class:`ClusterError`.
Per-node process handling lives in :mod:`devcluster.node`, OS helpers in :mod:`devcluster.process`.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import signal
from dataclasses import asdict
from pathlib import Path
from typing import Callable, Iterator

from devcluster.node import KILL_TIMEOUT, START_TIMEOUT, STOP_TIMEOUT, Node, NodeStatus, install_template
from devcluster.ports import DEFAULT_PRIVATE_OFFSET, default_ports, port_free
from devcluster.process import ClusterError, mysql_handshake, require_binaries, send_signal, try_flock, wait_until
from devcluster.protocol import write_json_atomic

__all__ = ["STATE_FILE", "ClusterError", "LocalCluster", "Node", "NodeStatus"]

STATE_FILE = "cluster.json"
LOCK_FILE = ".lock"
TEMPLATE_DIR = "template"
LOCK_TIMEOUT = 180.0


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
            self._nodes[name] = Node.create(name, public, private, i, self.directory)
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
            if not wait_until(lambda: try_flock(fd), LOCK_TIMEOUT, 0.05):
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
        return [n.status() for n in self._nodes.values()]

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
        if not faults.listening:
            return False
        return faults.partitioned or mysql_handshake(self.host, node.public_port, 2.0)

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
            install_template(binaries["mariadb-install-db"], template)
        for node in missing:
            node.path.mkdir(parents=True, exist_ok=True)
            shutil.rmtree(node.datadir, ignore_errors=True)
            shutil.copytree(template, node.datadir)
            node.initialized = False
        shutil.rmtree(template, ignore_errors=True)  # 100+ MB; cheap to recreate if ever needed

    def _ensure_servers(self, nodes: list[Node], say: Callable[[str], None]) -> None:
        """Start (in parallel) every listed server that is not running, then wait for all."""
        for node in nodes:
            state = node.server_state()
            if state == "paused":
                say(f"{node.name}: resuming paused mariadbd")
                send_signal(node.mariadbd_pid, signal.SIGCONT)
            elif state == "dead":
                say(f"{node.name}: starting mariadbd on port {node.private_port}")
                node.launch_server(self.host, self.server_args)
        self._save()
        for node in nodes:
            node.wait_server(self.host)

    def _initialize(self, binaries: dict[str, str], say: Callable[[str], None]) -> None:
        for node in self._nodes.values():
            if node.initialized:
                continue
            say(f"{node.name}: creating root@127.0.0.1 and testdb")
            node.run_init_sql(binaries["mariadb"])
            node.initialized = True
            self._save()

    def _ensure_proxy(self, node: Node, say: Callable[[str], None]) -> None:
        if not node.proxy_alive():
            say(f"{node.name}: starting fault proxy on port {node.public_port}")
            node.launch_proxy(self.host)
            self._save()  # record the pid before waiting, so a failed start is still swept by down
            node.wait_proxy()
        node.command("open")

    def _wait_public(self, nodes: list[Node]) -> None:
        for node in nodes:
            if node.faults().partitioned:
                continue  # a partitioned proxy lets connections hang by design
            if not wait_until(functools.partial(mysql_handshake, self.host, node.public_port, 2.0), START_TIMEOUT, 0.1):
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
                node.stop_proxy()
            for node in nodes:
                node.signal_server(signal.SIGTERM)
            for node in nodes:
                node.wait_server_gone(STOP_TIMEOUT)
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

    # ----------------------------------------------------------------- process faults

    def stop(self, name: str) -> None:
        """Clean shutdown; the proxy refuses connections until start."""
        with self._locked():
            node = self._node(name)
            self._proxy_close(node)
            node.signal_server(signal.SIGTERM)
            node.wait_server_gone(STOP_TIMEOUT)
            node.desired = "stopped"
            self._save()

    def kill(self, name: str) -> None:
        """SIGKILL mariadbd (a crash); the proxy refuses connections until start."""
        with self._locked():
            node = self._node(name)
            node.signal_server(signal.SIGKILL)
            if not node.server_gone_within(KILL_TIMEOUT):
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
            node.command("close")
        else:
            faults = node.faults()
            faults.listening = False
            faults.save(node.faults_file)

    # ----------------------------------------------------------------- network faults

    def delay(self, name: str, ms: int) -> None:
        """Delay every server→client chunk by ms (adds ms to each round trip)."""
        if ms < 0:
            raise ClusterError("delay must be >= 0 ms")
        node = self._node(name)
        self._require_proxy(node, "delay")
        node.command("delay", ms=int(ms))

    def partition(self, name: str) -> None:
        """Cut the node off: held traffic both ways, new connections hang."""
        node = self._node(name)
        self._require_proxy(node, "partition")
        node.command("partition")

    def heal(self, name: str | None = None) -> None:
        """Clear delay and partition on one node (or all, with None) and release held data."""
        nodes = list(self._nodes.values()) if name is None else [self._node(name)]
        for node in nodes:
            if node.proxy_alive():
                node.command("heal")
            else:  # a restarted proxy resumes from this file
                faults = node.faults()
                faults.delay_ms, faults.partitioned = 0, False
                node.path.mkdir(parents=True, exist_ok=True)
                faults.save(node.faults_file)

    def _require_proxy(self, node: Node, action: str) -> None:
        if not node.proxy_alive():
            raise ClusterError(f"cannot {action} {node.name}: its fault proxy is not running (run up)")
