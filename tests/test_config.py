"""config.py: the repo's config.toml, and strict refusals that name the key and the file."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from coordinator import config as cfgmod
from coordinator.config import ConfigError

REPO_CONFIG = Path(__file__).resolve().parent.parent / "config.toml"

REPLICAS = """
[[replicas]]
id = "replica-4"
name = "mysql-replica-4"
host = "127.0.0.1"
port = 3306
leader = true

[[replicas]]
id = "replica-1"
name = "mysql-replica-1"
host = "127.0.0.1"
port = 3307

[[replicas]]
id = "replica-2"
name = "mysql-replica-2"
host = "127.0.0.1"
port = 3308

[[replicas]]
id = "replica-3"
name = "mysql-replica-3"
host = "127.0.0.1"
port = 3309
"""


def write(tmp_path: Path, text: str, name: str = "c.toml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def refused(path: Path, *needles: str, env: dict[str, str] | None = None) -> str:
    """Load must fail with a message naming the file and every needle."""
    with pytest.raises(ConfigError) as info:
        cfgmod.load(path, env={} if env is None else env)
    msg = str(info.value)
    assert str(path) in msg, msg
    for n in needles:
        assert n in msg, (n, msg)
    return msg


def replicas_data(n: int = 4) -> list[dict[str, Any]]:
    return [{"id": f"replica-{i}", "name": f"mysql-replica-{i}", "host": "127.0.0.1", "port": 3306 + i,
             "leader": i == 1} for i in range(1, n + 1)]


# --- the repo's file ------------------------------------------------------------------------


def test_repo_config_loads() -> None:
    cfg = cfgmod.load(REPO_CONFIG, env={})
    assert len(cfg.replicas) == 4
    assert [r.id for r in cfg.replicas] == ["replica-4", "replica-1", "replica-2", "replica-3"]
    leader = cfg.initial_leader
    assert (leader.id, leader.name, leader.port) == ("replica-4", "mysql-replica-4", 3306)
    assert [r.leader for r in cfg.replicas].count(True) == 1
    assert {r.id: r.port for r in cfg.replicas} == {"replica-4": 3306, "replica-1": 3307,
                                                      "replica-2": 3308, "replica-3": 3309}
    assert cfg.ports.all() == {"gateway": 8000, "timestamp_odd": 8001, "timestamp_even": 8002,
                               "metrics": 8003, "cabinet": 8004, "seer": 8005}
    assert cfg.quorum.mode == "cabinet" and cfg.quorum.failure_threshold == 1
    assert cfg.coordinator.database == "testdb"
    assert cfg.coordinator.max_body_bytes == 1_048_576
    assert cfg.source == str(REPO_CONFIG)
    assert cfg.replica("mysql-replica-2").id == "replica-2"
    assert cfg.replica("replica-3").port == 3309
    with pytest.raises(KeyError):
        cfg.replica("replica-9")


def test_minimal_file_gets_defaults(tmp_path: Path) -> None:
    cfg = cfgmod.load(write(tmp_path, REPLICAS), env={})
    assert cfg.mysql.user == "root" and cfg.mysql.password == ""
    assert cfg.replication.timestamp_window == 10_000
    assert cfg.ports.gateway == 8000


def test_int_is_accepted_for_float(tmp_path: Path) -> None:
    cfg = cfgmod.load(write(tmp_path, "[mysql]\nconnect_timeout_s = 3\n" + REPLICAS), env={})
    assert cfg.mysql.connect_timeout_s == 3.0 and isinstance(cfg.mysql.connect_timeout_s, float)


# --- refusals ---------------------------------------------------------------------------------


def test_replica_without_port(tmp_path: Path) -> None:
    text = REPLICAS.replace("port = 3308\n", "")
    refused(write(tmp_path, text), "replicas[2].port", "missing")


def test_replica_without_id(tmp_path: Path) -> None:
    text = REPLICAS.replace('id = "replica-1"\n', "")
    refused(write(tmp_path, text), "replicas[1].id")


def test_no_replicas_at_all(tmp_path: Path) -> None:
    refused(write(tmp_path, "[quorum]\nmode = 'cabinet'\n"), "'replicas'")


def test_unknown_key_in_section(tmp_path: Path) -> None:
    msg = refused(write(tmp_path, "[quorum]\nmodee = 'majority'\n" + REPLICAS), "quorum.modee", "unknown")
    assert "mode" in msg


def test_unknown_key_in_replica(tmp_path: Path) -> None:
    refused(write(tmp_path, REPLICAS.replace("port = 3309", "prot = 3309")), "replicas[3].prot")


def test_unknown_section(tmp_path: Path) -> None:
    refused(write(tmp_path, "[quorom]\nmode = 'all'\n" + REPLICAS), "quorom")


@pytest.mark.parametrize(
    "block, key",
    [
        ('port = "x"\nleader = true', "replicas[0].port"),
        ("port = true\nleader = true", "replicas[0].port"),
        ("port = 3306.5\nleader = true", "replicas[0].port"),
        ('port = 3306\nleader = "yes"', "replicas[0].leader"),
    ],
)
def test_wrong_type_in_replica(tmp_path: Path, block: str, key: str) -> None:
    text = REPLICAS.replace("port = 3306\nleader = true", block)
    assert text != REPLICAS
    refused(write(tmp_path, text), key, "must be")


@pytest.mark.parametrize(
    "section, snippet, key",
    [
        ("quorum", 'failure_threshold = "1"', "quorum.failure_threshold"),
        ("mysql", "connect_timeout_s = true", "mysql.connect_timeout_s"),
        ("mysql", "password = 123", "mysql.password"),
        ("coordinator", "max_body_bytes = [1]", "coordinator.max_body_bytes"),
        ("ports", 'gateway = "8000"', "ports.gateway"),
    ],
)
def test_wrong_type_in_section(tmp_path: Path, section: str, snippet: str, key: str) -> None:
    refused(write(tmp_path, f"[{section}]\n{snippet}\n" + REPLICAS), key)


def test_section_that_is_not_a_table(tmp_path: Path) -> None:
    refused(write(tmp_path, "quorum = 3\n" + REPLICAS), "quorum", "table")


def test_replicas_not_an_array_of_tables(tmp_path: Path) -> None:
    refused(write(tmp_path, "replicas = 3\n"), "replicas")


@pytest.mark.parametrize("n, t, ok", [(4, 0, False), (4, 1, True), (4, 2, False), (3, 1, True), (3, 2, False),
                                      (5, 2, True), (5, 3, False), (7, 3, True), (7, 4, False)])
def test_failure_threshold_bounds(n: int, t: int, ok: bool) -> None:
    data = {"replicas": replicas_data(n), "quorum": {"failure_threshold": t}}
    if ok:
        assert cfgmod.from_dict(data, "x.toml", env={}).quorum.failure_threshold == t
    else:
        with pytest.raises(ConfigError, match=r"quorum\.failure_threshold.*x\.toml"):
            cfgmod.from_dict(data, "x.toml", env={})


@pytest.mark.parametrize("n", [0, 2, 8])
def test_replica_count_bounds(n: int) -> None:
    with pytest.raises(ConfigError, match=r"x\.toml.*3 to 7"):
        cfgmod.from_dict({"replicas": replicas_data(n)}, "x.toml", env={})


def test_two_leaders(tmp_path: Path) -> None:
    text = REPLICAS.replace("port = 3307\n", "port = 3307\nleader = true\n")
    refused(write(tmp_path, text), "leader", "found 2")


def test_no_leader(tmp_path: Path) -> None:
    refused(write(tmp_path, REPLICAS.replace("leader = true\n", "")), "leader", "found 0")


def test_duplicate_replica_ids(tmp_path: Path) -> None:
    refused(write(tmp_path, REPLICAS.replace('id = "replica-3"', 'id = "replica-1"')), "unique")


def test_duplicate_http_ports(tmp_path: Path) -> None:
    refused(write(tmp_path, "[ports]\nmetrics = 8000\n" + REPLICAS), "ports", "distinct")


@pytest.mark.parametrize("section, key, value", [("quorum", "mode", "raft"), ("control", "backend", "k8s")])
def test_bad_enumerations(tmp_path: Path, section: str, key: str, value: str) -> None:
    refused(write(tmp_path, f"[{section}]\n{key} = '{value}'\n" + REPLICAS), f"{section}.{key}")


def test_not_toml(tmp_path: Path) -> None:
    refused(write(tmp_path, "this is = = not toml [\n"), "not valid TOML")


def test_not_utf8(tmp_path: Path) -> None:
    p = tmp_path / "bin.toml"
    p.write_bytes(b"\xff\xfe\x00garbage")
    refused(p, "not valid TOML")


def test_missing_file(tmp_path: Path) -> None:
    refused(tmp_path / "nope.toml", "cannot read")


def test_directory_instead_of_file(tmp_path: Path) -> None:
    refused(tmp_path, "cannot read")


# --- environment -------------------------------------------------------------------------------


def test_env_overrides(tmp_path: Path) -> None:
    p = write(tmp_path, "[mysql]\nuser = 'fileuser'\npassword = 'filepw'\n" + REPLICAS)
    plain = cfgmod.load(p, env={})
    assert (plain.mysql.user, plain.mysql.password, plain.coordinator.admin_token) == ("fileuser", "filepw", "")
    cfg = cfgmod.load(p, env={"COORD_MYSQL_PASSWORD": "s3cret", "COORD_MYSQL_USER": "app",
                              "COORD_ADMIN_TOKEN": "tok", "UNRELATED": "x"})
    assert cfg.mysql.user == "app"
    assert cfg.mysql.password == "s3cret"
    assert cfg.coordinator.admin_token == "tok"
    # the override touches only its key
    assert cfg.mysql.connect_timeout_s == plain.mysql.connect_timeout_s


def test_env_override_creates_missing_section(tmp_path: Path) -> None:
    cfg = cfgmod.load(write(tmp_path, REPLICAS), env={"COORD_ADMIN_TOKEN": "t0k"})
    assert cfg.coordinator.admin_token == "t0k"
    assert cfg.coordinator.database == "testdb"


def test_env_defaults_to_process_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COORD_MYSQL_PASSWORD", "from-env")
    monkeypatch.delenv("COORD_MYSQL_USER", raising=False)
    cfg = cfgmod.load(write(tmp_path, REPLICAS))
    assert cfg.mysql.password == "from-env"
    assert cfg.mysql.user == "root"


def test_from_dict_does_not_mutate_input() -> None:
    data = {"replicas": replicas_data(4), "mysql": {"user": "a"}}
    cfgmod.from_dict(data, "x.toml", env={"COORD_MYSQL_USER": "b", "COORD_ADMIN_TOKEN": "t"})
    assert data == {"replicas": replicas_data(4), "mysql": {"user": "a"}}


def test_replace_replicas() -> None:
    cfg = cfgmod.from_dict({"replicas": replicas_data(3)}, "x.toml", env={})
    moved = cfgmod.replace_replicas(cfg, {"replica-2": ("10.0.0.2", 4000)})
    assert moved.replica("replica-2").host == "10.0.0.2" and moved.replica("replica-2").port == 4000
    assert moved.replica("replica-1") == cfg.replica("replica-1")


# --- found while testing: refusals that do not happen --------------------------------------------


def test_env_override_into_non_table_section(tmp_path: Path) -> None:
    p = write(tmp_path, 'mysql = "oops"\n' + REPLICAS)
    with pytest.raises(ConfigError, match=re.escape(str(p))):
        cfgmod.load(p, env={"COORD_MYSQL_USER": "app"})


def test_top_level_source_key_is_unknown(tmp_path: Path) -> None:
    refused(write(tmp_path, 'source = "elsewhere"\n' + REPLICAS), "source")


def test_duplicate_replica_address(tmp_path: Path) -> None:
    refused(write(tmp_path, REPLICAS.replace("port = 3309", "port = 3308")), "3308")


@pytest.mark.parametrize("window", [0, 1, -5])
def test_timestamp_window_too_small(window: int) -> None:
    with pytest.raises(ConfigError, match="timestamp_window"):
        cfgmod.from_dict({"replicas": replicas_data(4), "replication": {"timestamp_window": window}},
                         "x.toml", env={})
