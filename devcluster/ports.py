"""Port helpers: the default port layout, and free ports for throwaway clusters and coordinators.

Why here: the tests and the benchmark scripts both start clusters and coordinators on free ports
next to a cluster someone may already run on the default ones; one helper means one rule for
"free" (bindable on 127.0.0.1 now and not handed out before by this process).
"""

from __future__ import annotations

import socket

DEFAULT_PRIVATE_OFFSET = 10000

_handed_out: set[int] = set()


def free_port() -> int:
    """A TCP port that is free on 127.0.0.1 now and was not handed out before in this process."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port not in _handed_out:
            _handed_out.add(port)
            return port
    raise RuntimeError("no free port found")


def free_ports(nodes: int) -> dict[str, tuple[int, int]]:
    """(public, private) free ports for replica-1..nodes (the ``ports`` of a LocalCluster)."""
    return {f"replica-{i}": (free_port(), free_port()) for i in range(1, nodes + 1)}


def default_ports(nodes: int, base_port: int, offset: int = DEFAULT_PRIVATE_OFFSET) -> dict[str, tuple[int, int]]:
    """replica-N (the initial leader) gets base_port, replica-i gets base_port+i; private = public+offset."""
    ports = {}
    for i in range(1, nodes + 1):
        public = base_port if i == nodes else base_port + i
        ports[f"replica-{i}"] = (public, public + offset)
    return ports


def port_free(host: str, port: int) -> bool:
    """True if port can be bound on host right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True
