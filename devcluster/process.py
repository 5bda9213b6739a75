"""OS helpers for the local cluster: finding the MariaDB programs, detached processes, ``/proc``.

Why from ``/proc`` rather than from the processes we started: the cluster outlives the process
that started it (the CLI exits, a test session ends), so every later caller must be able to tell
from a recorded pid alone whether that process still runs, is paused or is gone, and must be
able to sweep strays by their command line. :class:`ClusterError` lives here because these are
the lowest helpers that raise it; :mod:`devcluster.cluster` re-exports it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Callable

MISSING_HINT = "apt-get install -y mariadb-server"
SEARCH_DIRS = ("/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin")
MAX_UNIX_PATH = 100  # sun_path is 108 bytes including the NUL; keep a margin


class ClusterError(Exception):
    """Any failure of a cluster operation, with a message meant for humans."""


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


def try_flock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


def repo_root() -> Path:
    """The checkout this package lives in (put on the proxy's PYTHONPATH)."""
    return Path(__file__).resolve().parent.parent
