"""Static checks of docker-compose.mysql.yml.

Why: no Docker engine runs in CI, yet the compose file is what people with Docker use instead of
``scripts/cluster.py``; it must keep the names and ports of config.toml in step with the
local cluster. PyYAML (dev dependency) parses it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

COMPOSE = Path(__file__).resolve().parent.parent / "docker-compose.mysql.yml"
EXPECTED_PORTS = {"mysql-replica-4": 3306, "mysql-replica-1": 3307, "mysql-replica-2": 3308, "mysql-replica-3": 3309}


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    doc = yaml.safe_load(COMPOSE.read_text())
    return dict(doc["services"])


def test_four_services_with_container_names(services: dict[str, Any]) -> None:
    assert set(services) == set(EXPECTED_PORTS)
    for name, svc in services.items():
        assert svc["container_name"] == name
        assert str(svc["image"]).startswith("mysql:8")


def test_host_ports(services: dict[str, Any]) -> None:
    for name, port in EXPECTED_PORTS.items():
        assert services[name]["ports"] == [f"{port}:3306"]


def test_healthchecks_ping_the_server(services: dict[str, Any]) -> None:
    for svc in services.values():
        test = svc["healthcheck"]["test"]
        assert "mysqladmin" in test and "ping" in test
        assert int(svc["healthcheck"]["retries"]) > 0


def test_testdb_and_passwordless_root(services: dict[str, Any]) -> None:
    for svc in services.values():
        env = svc["environment"]
        assert env["MYSQL_DATABASE"] == "testdb"
        assert str(env["MYSQL_ALLOW_EMPTY_PASSWORD"]).lower() in ("yes", "true", "1")


def test_distinct_server_ids(services: dict[str, Any]) -> None:
    ids = {name: next(a for a in svc["command"] if a.startswith("--server-id=")) for name, svc in services.items()}
    assert ids == {name: f"--server-id={name.rsplit('-', 1)[1]}" for name in services}
