"""The write path relies on server settings; a server without them is refused, loudly.

``innodb_rollback_on_timeout`` must be OFF (MariaDB's default): the leader's batch parks a write
that meets a row lock (1205) and keeps the rest of its transaction, and a pinned interactive
transaction stays open after a lock wait timeout — both wrong if the server rolled the whole
transaction back. ``schema.ensure`` (run at every replica connection) refuses such a server.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from coordinator import mysqlio, schema
from coordinator.errors import ReplicaDown
from devcluster.cluster import LocalCluster
from tests.clusterfixtures import running_cluster

pytestmark = pytest.mark.mariadb


async def _ensure(cluster: LocalCluster, name: str) -> None:
    host, port = cluster.address(name, direct=True)
    conn = await mysqlio.connect(mysqlio.Endpoint(host, port, "root", "", 5.0, 5.0))
    try:
        await schema.ensure(conn, "_coordinator", "testdb", 5.0)
    finally:
        mysqlio.drop(conn)


@pytest.mark.timeout(120)
async def test_a_server_with_innodb_rollback_on_timeout_is_refused(tmp_path: Path) -> None:
    with running_cluster(tmp_path / "on", nodes=1, server_args=["--innodb-rollback-on-timeout=ON"]) as on:
        with pytest.raises(ReplicaDown, match="innodb_rollback_on_timeout=ON"):
            await _ensure(on, on.node_names()[0])
    with running_cluster(tmp_path / "off", nodes=1) as off:
        await _ensure(off, off.node_names()[0])  # the default: accepted
