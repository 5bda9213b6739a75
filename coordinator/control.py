"""Control backends: how the coordinator's admin endpoints stop, kill, pause and fault replicas.

Why a separate layer: the coordinator only speaks SQL to its replicas, but the demo and the
failure drills need real process and network faults. Where those come from depends on how the
servers run: local ``mariadbd`` processes behind fault proxies (``scripts/cluster.py``, the
default), Docker Compose containers, or something we cannot touch at all (``none``). Every backend
has the same async interface and reports failures as :class:`ControlError`, whose status and code
map one to one onto the HTTP error shape (README, "The HTTP contract").
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, TypeVar

from coordinator.config import Config, ReplicaConfig

if TYPE_CHECKING:  # dev tooling, imported lazily at run time (see _devcluster)
    from devcluster.cluster import LocalCluster

T = TypeVar("T")
Runner = Callable[[list[str], float], Awaitable[tuple[int, str, str]]]
SLOW_TIMEOUT_S = 60.0  # start/stop: a clean InnoDB shutdown or crash recovery takes a while
FAST_TIMEOUT_S = 15.0  # a bit above devcluster's own 10 s waits, so its message wins over ours


class ControlError(Exception):
    """A control operation failed; ``status``/``code`` become the HTTP error response."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class ControlBackend:
    """The interface of every backend. Each call returns a small dict describing what was done."""

    name = "none"

    def __init__(self, replicas: Iterable[ReplicaConfig] = ()) -> None:
        self.replicas = tuple(replicas)

    @property
    def available(self) -> bool:
        return not self.reason

    @property
    def reason(self) -> str:
        """Why the backend cannot work right now (shown by the dashboard); "" when it can."""
        return ""

    def _replica(self, replica_id: str) -> ReplicaConfig | None:
        """The configured replica for an id or instance name; 404 when a config is known."""
        for r in self.replicas:
            if replica_id in (r.id, r.name):
                return r
        if self.replicas:
            known = ", ".join(r.id for r in self.replicas)
            raise ControlError(404, "unknown_replica", f"unknown replica {replica_id!r}; known: {known}")
        return None

    async def stop(self, replica_id: str) -> dict[str, Any]:
        return await self._process(replica_id, "stop")

    async def start(self, replica_id: str) -> dict[str, Any]:
        return await self._process(replica_id, "start")

    async def kill(self, replica_id: str) -> dict[str, Any]:
        return await self._process(replica_id, "kill")

    async def pause(self, replica_id: str) -> dict[str, Any]:
        return await self._process(replica_id, "pause")

    async def resume(self, replica_id: str) -> dict[str, Any]:
        return await self._process(replica_id, "resume")

    async def _process(self, replica_id: str, action: str) -> dict[str, Any]:
        raise NotImplementedError

    async def fault(self, replica_id: str, delay_ms: int | None = None,
                    partition: bool | None = None) -> dict[str, Any]:
        """Both None heals every fault; delay_ms=0 drops the delay; partition=False heals it."""
        raise NotImplementedError

    async def faults(self) -> dict[str, dict[str, Any]]:
        """Current faults per replica id ({"delay_ms", "partitioned"}), best effort."""
        return {}


# --------------------------------------------------------------------------- none

_BY_HAND = {
    "stop": ("docker compose stop {s}", "systemctl stop mariadb"),
    "start": ("docker compose start {s}", "systemctl start mariadb"),
    "kill": ("docker compose kill -s SIGKILL {s}", "kill -9 $(pidof mariadbd)"),
    "pause": ("docker compose pause {s}", "kill -STOP $(pidof mariadbd)"),
    "resume": ("docker compose unpause {s}", "kill -CONT $(pidof mariadbd)"),
    "fault": ("docker compose exec {s} tc qdisc replace dev eth0 root netem delay 50ms",
              "tc qdisc replace dev eth0 root netem delay 50ms"),
}


class NoControl(ControlBackend):
    """``control.backend = "none"``: refuse with 501 and say how to do it by hand."""

    name = "none"

    @property
    def reason(self) -> str:
        return 'no control backend is configured (control.backend = "none")'

    def _refuse(self, replica_id: str, action: str) -> ControlError:
        r = self._replica(replica_id)
        service = r.name if r else replica_id
        docker, host = (cmd.format(s=service) for cmd in _BY_HAND[action])
        verb = "fault the network of" if action == "fault" else action
        return ControlError(501, "no_control_backend",
                            f"{self.reason}; {verb} {service} yourself, e.g. `{docker}` or `{host}`")

    async def _process(self, replica_id: str, action: str) -> dict[str, Any]:
        raise self._refuse(replica_id, action)

    async def fault(self, replica_id: str, delay_ms: int | None = None,
                    partition: bool | None = None) -> dict[str, Any]:
        raise self._refuse(replica_id, "fault")


# --------------------------------------------------------------------------- local

NO_TOOLING = ("the local cluster tooling (devcluster) is not importable here; "
              "run the coordinator from the repository root")


def _devcluster() -> tuple[ModuleType | None, str]:
    """(``devcluster.cluster``, "") or (None, why it cannot be imported).

    Why lazily: ``devcluster`` is development tooling that lives next to the package in the
    repository and is not shipped in the wheel, so the product must not import it at module
    level; only the ``local`` backend needs it, and only when it is used. Python caches the
    module after the first successful import, so calling this often is cheap.
    """
    try:
        from devcluster import cluster
    except ImportError as exc:
        return None, f"{NO_TOOLING} ({exc})"
    return cluster, ""


class LocalControl(ControlBackend):
    """The cluster of ``scripts/cluster.py``, driven through ``devcluster``'s ``LocalCluster``.

    The cluster is opened afresh for every call (a cheap JSON read) rather than once: the
    LocalCluster object is not meant to be shared between threads, its file lock already
    serialises mutations across callers, and a cluster recreated with ``down --wipe; up`` is
    picked up without restarting the coordinator. The blocking calls run in a worker thread; on a
    timeout the thread finishes on its own (every devcluster wait is bounded). When devcluster
    cannot be imported (e.g. an installed wheel run outside the repository) the backend reports
    itself unavailable and every call fails with 503.
    """

    name = "local"

    def __init__(self, cluster_dir: str | Path, replicas: Iterable[ReplicaConfig] = (),
                 slow_timeout_s: float = SLOW_TIMEOUT_S, fast_timeout_s: float = FAST_TIMEOUT_S) -> None:
        super().__init__(replicas)
        self.cluster_dir = Path(cluster_dir).resolve()
        self.slow_timeout_s, self.fast_timeout_s = slow_timeout_s, fast_timeout_s

    @property
    def reason(self) -> str:
        tooling, why = _devcluster()
        if tooling is None:
            return why
        if (self.cluster_dir / tooling.STATE_FILE).exists():
            return ""
        return (f"no local cluster in {self.cluster_dir}; start one with "
                f"`scripts/cluster.py up --dir {self.cluster_dir}`")

    def _tooling(self) -> ModuleType:
        tooling, why = _devcluster()
        if tooling is None:
            raise ControlError(503, "no_cluster", why)
        return tooling

    def _open(self) -> LocalCluster:
        tooling = self._tooling()
        if self.reason:
            raise ControlError(503, "no_cluster", self.reason)
        try:
            cluster: LocalCluster = tooling.LocalCluster.open(self.cluster_dir)
        except (tooling.ClusterError, OSError, ValueError, KeyError) as exc:
            raise ControlError(503, "no_cluster",
                               f"cannot open the local cluster in {self.cluster_dir}: {exc}") from exc
        return cluster

    def _node(self, cluster: LocalCluster, replica_id: str) -> str:
        r = self._replica(replica_id)
        try:
            return cluster.resolve(r.name if r else replica_id)
        except self._tooling().ClusterError as exc:
            raise ControlError(404, "unknown_replica", str(exc)) from exc

    async def _call(self, what: str, timeout_s: float, fn: Callable[[], T]) -> T:
        cluster_error = self._tooling().ClusterError
        try:
            async with asyncio.timeout(timeout_s):
                return await asyncio.to_thread(fn)
        except TimeoutError as exc:
            raise ControlError(504, "control_timeout", f"{what} did not finish within {timeout_s:.0f}s") from exc
        except cluster_error as exc:
            raise ControlError(502, "control_failed", str(exc)) from exc

    async def _process(self, replica_id: str, action: str) -> dict[str, Any]:
        cluster = self._open()
        node = self._node(cluster, replica_id)
        timeout = self.slow_timeout_s if action in ("stop", "start") else self.fast_timeout_s
        await self._call(f"{action} {node}", timeout, lambda: getattr(cluster, action)(node))
        return {"replica": replica_id, "node": node, "action": action, "backend": self.name}

    async def fault(self, replica_id: str, delay_ms: int | None = None,
                    partition: bool | None = None) -> dict[str, Any]:
        cluster = self._open()
        node = self._node(cluster, replica_id)
        if delay_ms is not None and delay_ms < 0:
            raise ControlError(400, "bad_request", "delay_ms must be >= 0")

        def apply() -> dict[str, Any]:
            if delay_ms is None and partition is None:
                cluster.heal(node)
            if partition is False:  # the proxy can only heal both at once: put the delay back
                keep = next(s.delay_ms for s in cluster.status() if s.name == node)
                cluster.heal(node)
                if delay_ms is None and keep:
                    cluster.delay(node, keep)
            if delay_ms is not None:
                cluster.delay(node, delay_ms)
            if partition:
                cluster.partition(node)
            return next(_faults(s) for s in cluster.status() if s.name == node)

        now = await self._call(f"fault {node}", self.fast_timeout_s, apply)
        return {"replica": replica_id, "node": node, "action": "fault", "backend": self.name, "faults": now}

    async def faults(self) -> dict[str, dict[str, Any]]:
        if self.reason:
            return {}
        cluster = self._open()
        by_node = {r.name.removeprefix("mysql-"): r.id for r in self.replicas}
        states = await self._call("status", self.fast_timeout_s, cluster.status)
        return {by_node.get(s.name, s.name): _faults(s) for s in states}


def _faults(status: Any) -> dict[str, Any]:
    return {"delay_ms": int(status.delay_ms), "partitioned": bool(status.partitioned),
            "process": str(status.state)}  # running | paused | stopped | dead


# --------------------------------------------------------------------------- docker


async def run_process(argv: list[str], timeout_s: float) -> tuple[int, str, str]:
    """Run argv; (exit code, stdout, stderr). Kills it and raises TimeoutError on timeout."""
    proc = await asyncio.create_subprocess_exec(*argv, stdin=asyncio.subprocess.DEVNULL,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        async with asyncio.timeout(timeout_s):
            out, err = await proc.communicate()
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        raise
    return proc.returncode or 0, out.decode(errors="replace"), err.decode(errors="replace")


class DockerControl(ControlBackend):
    """The containers of ``docker-compose.mysql.yml``, driven through the ``docker compose`` CLI.

    Network faults use ``tc netem`` inside the container, which needs ``tc`` (iproute) in the
    image and the NET_ADMIN capability. A partition is ``netem loss 100%``: unlike the local fault
    proxy, which holds traffic and delivers it on heal, packets are dropped and TCP retransmits.
    The fault state is remembered here (tc has no cheap query), so it is lost on restart.
    """

    name = "docker"
    _ACTIONS = {"stop": ["stop"], "start": ["start"], "kill": ["kill", "-s", "SIGKILL"],
                "pause": ["pause"], "resume": ["unpause"]}

    def __init__(self, compose_file: str | Path, replicas: Iterable[ReplicaConfig],
                 runner: Runner | None = None, which: Callable[[str], str | None] = shutil.which,
                 slow_timeout_s: float = SLOW_TIMEOUT_S, fast_timeout_s: float = FAST_TIMEOUT_S) -> None:
        super().__init__(replicas)
        self.compose_file = str(compose_file)
        self.runner: Runner = runner or run_process
        self.docker = which("docker")
        self.slow_timeout_s, self.fast_timeout_s = slow_timeout_s, fast_timeout_s
        self._faults: dict[str, dict[str, Any]] = {}

    @property
    def reason(self) -> str:
        if self.docker:
            return ""
        return "the docker CLI is not on PATH (install Docker, or use control.backend = \"local\")"

    async def _compose(self, argv: list[str], timeout_s: float, ok_errors: tuple[str, ...] = ()) -> None:
        if self.reason:
            raise ControlError(501, "no_control_backend", self.reason)
        full = ["docker", "compose", "-f", self.compose_file, *argv]
        try:
            code, _out, err = await self.runner(full, timeout_s)
        except TimeoutError as exc:
            raise ControlError(504, "control_timeout", f"`{' '.join(full)}` timed out after {timeout_s:.0f}s") from exc
        except OSError as exc:
            raise ControlError(502, "control_failed", f"cannot run docker: {exc}") from exc
        if code != 0 and not any(e in err for e in ok_errors):
            hint = " (tc needs iproute in the image and cap_add: [NET_ADMIN])" if "tc" in argv else ""
            raise ControlError(502, "control_failed",
                               f"`{' '.join(full)}` exited with {code}: {err.strip()[-500:]}{hint}")

    def _service(self, replica_id: str) -> ReplicaConfig:
        r = self._replica(replica_id)
        if r is None:
            raise ControlError(404, "unknown_replica", f"unknown replica {replica_id!r}; no replicas are configured")
        return r

    async def _process(self, replica_id: str, action: str) -> dict[str, Any]:
        r = self._service(replica_id)
        timeout = self.slow_timeout_s if action in ("stop", "start") else self.fast_timeout_s
        await self._compose([*self._ACTIONS[action], r.name], timeout)
        return {"replica": r.id, "service": r.name, "action": action, "backend": self.name}

    async def fault(self, replica_id: str, delay_ms: int | None = None,
                    partition: bool | None = None) -> dict[str, Any]:
        r = self._service(replica_id)
        if delay_ms is not None and delay_ms < 0:
            raise ControlError(400, "bad_request", "delay_ms must be >= 0")
        now = dict(self._faults.get(r.id, {"delay_ms": 0, "partitioned": False}))
        if delay_ms is None and partition is None:
            now = {"delay_ms": 0, "partitioned": False}
        if delay_ms is not None:
            now["delay_ms"] = int(delay_ms)
        if partition is not None:
            now["partitioned"] = bool(partition)
        tc = ["exec", "-T", r.name, "tc", "qdisc"]
        if now["partitioned"]:  # the delay is kept in mind and comes back when the partition heals
            await self._compose([*tc, "replace", "dev", "eth0", "root", "netem", "loss", "100%"], self.fast_timeout_s)
        elif now["delay_ms"]:
            await self._compose([*tc, "replace", "dev", "eth0", "root", "netem", "delay", f"{now['delay_ms']}ms"],
                                self.fast_timeout_s)
        else:  # deleting a qdisc that is not there is already healed
            await self._compose([*tc, "del", "dev", "eth0", "root"], self.fast_timeout_s,
                                ok_errors=("No such file or directory", "handle of zero"))
        self._faults[r.id] = now
        return {"replica": r.id, "service": r.name, "action": "fault", "backend": self.name, "faults": dict(now)}

    async def faults(self) -> dict[str, dict[str, Any]]:
        return {r.id: dict(self._faults.get(r.id, {"delay_ms": 0, "partitioned": False})) for r in self.replicas}


def build(cfg: Config) -> ControlBackend:
    """The backend chosen by ``[control]``; relative paths are taken from the working directory."""
    c = cfg.control
    if c.backend == "local":
        return LocalControl(Path.cwd() / c.cluster_dir, cfg.replicas)
    if c.backend == "docker":
        return DockerControl(Path.cwd() / c.compose_file, cfg.replicas)
    return NoControl(cfg.replicas)
