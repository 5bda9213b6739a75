"""Pytest helpers that start real local MariaDB clusters on free ports in a temp dir.

Why a separate module (not conftest.py): several test modules and the lead's conftest import the
same fixtures explicitly, and a plain module keeps the helpers usable outside pytest fixtures too
(e.g. a second, short-lived cluster inside one test). Teardown always runs ``down(wipe=True)`` so no
``mariadbd`` or proxy outlives the session, even when a test fails.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator

import pytest

from devcluster.cluster import ClusterError, LocalCluster
from devcluster.ports import free_port, free_ports  # noqa: F401  (re-exported for tests)
from devcluster.process import find_binary


def mariadb_available() -> bool:
    return all(find_binary(b) for b in ("mariadbd", "mariadb-install-db", "mariadb"))


def make_cluster(directory: str | Path, nodes: int = 4, server_args: list[str] | None = None) -> LocalCluster:
    """A LocalCluster (not started) on free ports rooted in directory."""
    return LocalCluster(directory, nodes=nodes, ports=free_ports(nodes), server_args=server_args)


@contextlib.contextmanager
def running_cluster(
    directory: str | Path, nodes: int = 4, server_args: list[str] | None = None
) -> Iterator[LocalCluster]:
    """Start a cluster, yield it, and always stop and wipe it afterwards."""
    if not mariadb_available():
        pytest.skip("MariaDB is not installed (apt-get install -y mariadb-server)")
    cluster = _start(Path(directory), nodes, server_args)
    try:
        yield cluster
    finally:
        with contextlib.suppress(ClusterError):
            cluster.down(wipe=True)


def _start(directory: Path, nodes: int, server_args: list[str] | None, attempts: int = 3) -> LocalCluster:
    """Start on free ports; retry with new ports if one was taken meanwhile (parallel sessions)."""
    for attempt in range(1, attempts + 1):
        cluster = make_cluster(directory, nodes, server_args)
        try:
            cluster.up()
            return cluster
        except ClusterError:
            with contextlib.suppress(ClusterError):
                cluster.down(wipe=True)
            if attempt == attempts:
                raise
    raise AssertionError("unreachable")


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """The shared 4-node session cluster. Tests must leave it healed and running."""
    with running_cluster(tmp_path_factory.mktemp("cluster"), nodes=4) as c:
        yield c
