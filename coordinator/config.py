"""Typed configuration loaded from ``config.toml``.

Everything the process does is decided by one ``Config`` value built at start-up;
there are no module-level settings. Loading is strict: a missing required key, an
unknown key or a value of the wrong type fails at start with a message that names
the key and the file, because a typo silently ignored is worse than a refusal.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class ConfigError(Exception):
    """The configuration file is missing, malformed or inconsistent."""


@dataclass(frozen=True)
class CoordinatorSection:
    host: str = "127.0.0.1"  # address every HTTP port listens on
    admin_host: str = "127.0.0.1"  # /admin/* answers only to requests arriving here
    database: str = "testdb"
    internal_schema: str = "_coordinator"
    log_level: str = "info"
    log_format: str = "console"  # console | json
    admin_token: str = ""  # env COORD_ADMIN_TOKEN; empty = no token required
    max_body_bytes: int = 1_048_576
    cors_origins: tuple[str, ...] = ()  # browser origins allowed to call the API; empty = CORS off


@dataclass(frozen=True)
class PortsSection:
    gateway: int = 8000
    timestamp_odd: int = 8001
    timestamp_even: int = 8002
    metrics: int = 8003
    cabinet: int = 8004
    seer: int = 8005
    mysql: int = 6033  # the MySQL wire-protocol front end; 0 = off

    def all(self) -> dict[str, int]:
        """The six HTTP ports of the old contract, by name."""
        return {k: v for k, v in dataclasses.asdict(self).items() if k != "mysql"}


@dataclass(frozen=True)
class MysqlSection:
    user: str = "root"  # env COORD_MYSQL_USER
    password: str = ""  # env COORD_MYSQL_PASSWORD
    connect_timeout_s: float = 2.0
    query_timeout_s: float = 5.0
    read_pool_size: int = 8
    max_statement_time_s: float = 30.0


@dataclass(frozen=True)
class MysqlFrontSection:
    max_connections: int = 1000  # client connections on the MySQL port; beyond it ERR 1040
    max_packet_bytes: int = 64 * 1024 * 1024  # largest client packet (max_allowed_packet)
    version_suffix: str = "coordinator"  # the server version reads 5.5.5-<leader version>-<this>
    default_consistency: str = "strong"  # strong | session | eventual (per session: SET coordinator_consistency)
    backend_pool_size: int = 64  # raw connections per replica for relayed reads
    login_timeout_s: float = 10.0  # a client must finish its login within this (MariaDB's connect_timeout)


@dataclass(frozen=True)
class TransactionsSection:
    """Interactive transactions on the MySQL port (BEGIN … COMMIT on a pinned leader connection)."""

    idle_timeout_s: float = 30.0  # an open transaction idle this long is rolled back and its session closed
    max_pinned: int = 256  # leader connections pinned by open transactions; beyond it ERR 1040
    lock_wait_timeout_s: int = 50  # innodb_lock_wait_timeout on pinned connections (MySQL's default)
    ddl_lock_wait_s: int = 2  # a DDL waiting on an open transaction's (metadata) lock fails after this (1205)


@dataclass(frozen=True)
class MysqlUser:
    """A user of the MySQL front end. ``password_hash`` is MySQL's ``*HEX`` form of
    SHA1(SHA1(password)) (``SELECT PASSWORD('…')``); empty means no password. Or name an
    environment variable holding the clear password in ``password_env``."""

    name: str
    password_hash: str = ""
    password_env: str = ""


@dataclass(frozen=True)
class QuorumSection:
    mode: str = "cabinet"  # cabinet | majority | all
    failure_threshold: int = 1


@dataclass(frozen=True)
class ReplicationSection:
    write_timeout_s: float = 5.0
    max_batch_entries: int = 64
    pipeline_commit: bool = True  # one leader round trip per batch: its COMMIT, then the next batch's statements
    max_inflight_entries: int = 20_000
    memory_log_entries: int = 200_000
    persisted_log_margin: int = 100_000
    trim_interval_s: float = 5.0
    timestamp_window: int = 10_000
    retry_interval_s: float = 0.2
    request_id_memory: int = 100_000  # keyed writes remembered in memory (older ones: looked up in the log)


@dataclass(frozen=True)
class ReadsSection:
    session_wait_ms: int = 200
    eventual_max_lag_ms: int = 1000


@dataclass(frozen=True)
class MonitorSection:
    poll_interval_ms: int = 200
    poll_timeout_ms: int = 300
    missed_polls_unhealthy: int = 3


@dataclass(frozen=True)
class SeerSection:
    proactive: bool = False  # switch leaders when another replica is clearly faster
    margin: float = 0.3  # ... predicted at least this fraction faster
    sustain_s: float = 10.0  # ... for this long
    min_term_s: float = 60.0  # and never sooner than this after the last switch
    crash_penalty_ms: float = 50.0
    min_uptime_s: float = 5.0


@dataclass(frozen=True)
class ControlSection:
    backend: str = "local"  # local | docker | none
    cluster_dir: str = "cluster"
    compose_file: str = "docker-compose.mysql.yml"


@dataclass(frozen=True)
class ReplicaConfig:
    id: str
    name: str
    host: str
    port: int
    leader: bool = False


@dataclass(frozen=True)
class Config:
    replicas: tuple[ReplicaConfig, ...]
    coordinator: CoordinatorSection = field(default_factory=CoordinatorSection)
    ports: PortsSection = field(default_factory=PortsSection)
    mysql: MysqlSection = field(default_factory=MysqlSection)
    quorum: QuorumSection = field(default_factory=QuorumSection)
    replication: ReplicationSection = field(default_factory=ReplicationSection)
    reads: ReadsSection = field(default_factory=ReadsSection)
    monitor: MonitorSection = field(default_factory=MonitorSection)
    seer: SeerSection = field(default_factory=SeerSection)
    control: ControlSection = field(default_factory=ControlSection)
    mysql_front: MysqlFrontSection = field(default_factory=MysqlFrontSection)
    transactions: TransactionsSection = field(default_factory=TransactionsSection)
    # Absent: one user root with no password (matching the local cluster's servers).
    mysql_users: tuple[MysqlUser, ...] = (MysqlUser("root"),)
    source: str = "<memory>"

    @property
    def initial_leader(self) -> ReplicaConfig:
        return next(r for r in self.replicas if r.leader)

    def replica(self, ident: str) -> ReplicaConfig:
        """Find a replica by id (``replica-2``) or instance name (``mysql-replica-2``)."""
        for r in self.replicas:
            if ident in (r.id, r.name):
                return r
        raise KeyError(ident)


_ENV = {
    ("mysql", "user"): "COORD_MYSQL_USER",
    ("mysql", "password"): "COORD_MYSQL_PASSWORD",
    ("coordinator", "admin_token"): "COORD_ADMIN_TOKEN",
}


def _check_type(value: Any, hint: Any, where: str) -> Any:
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(hint):
            try:
                return _check_type(value, arg, where)
            except ConfigError:
                pass
        raise ConfigError(f"{where} has the wrong type ({type(value).__name__})")
    expected = origin or hint
    if expected is type(None):
        if value is None:
            return None
    elif expected is tuple and isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    elif isinstance(value, expected) and not (isinstance(value, bool) and expected is not bool):
        return value
    raise ConfigError(
        f"{where} must be {getattr(expected, '__name__', expected)}, got {type(value).__name__} {value!r}"
    )


def _build(cls: type, data: Any, where: str, file: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"'{where}' in {file} must be a table")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name != "source"}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(
            f"unknown key '{where + '.' if where else ''}{unknown[0]}' in {file} "
            f"(known: {', '.join(sorted(fields))})"
        )
    kwargs: dict[str, Any] = {}
    for name, f in fields.items():
        key = f"{where}.{name}" if where else name
        if name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ConfigError(f"config key '{key}' is missing in {file}, and has no default")
            continue
        kwargs[name] = _check_type(data[name], hints[name], f"config key '{key}' in {file}")
    return cls(**kwargs)


def _validate(cfg: Config) -> None:
    file = cfg.source
    n = len(cfg.replicas)
    if not 3 <= n <= 7:
        raise ConfigError(f"{file} must list 3 to 7 [[replicas]], found {n}")
    ids = [r.id for r in cfg.replicas]
    names = [r.name for r in cfg.replicas]
    if len(set(ids)) != n or len(set(names)) != n:
        raise ConfigError(f"replica ids and names must be unique in {file}")
    leaders = [r.id for r in cfg.replicas if r.leader]
    if len(leaders) != 1:
        raise ConfigError(f"exactly one replica must have 'leader = true' in {file}, found {len(leaders)}")
    t = cfg.quorum.failure_threshold
    if not 1 <= t <= (n - 1) // 2:
        raise ConfigError(
            f"config key 'quorum.failure_threshold' in {file} must be between 1 and {(n - 1) // 2} for {n} replicas"
        )
    if cfg.quorum.mode not in ("cabinet", "majority", "all"):
        raise ConfigError(f"config key 'quorum.mode' in {file} must be cabinet, majority or all")
    if cfg.control.backend not in ("local", "docker", "none"):
        raise ConfigError(f"config key 'control.backend' in {file} must be local, docker or none")
    seen: dict[tuple[str, int], str] = {}
    for r in cfg.replicas:
        if (r.host, r.port) in seen:
            raise ConfigError(f"replicas {seen[(r.host, r.port)]} and {r.id} in {file} share the address "
                              f"{r.host}:{r.port}; each must be a distinct server")
        seen[(r.host, r.port)] = r.id
    if cfg.replication.timestamp_window < 2:
        raise ConfigError(f"config key 'replication.timestamp_window' in {file} must be at least 2")
    ports = list(cfg.ports.all().values()) + ([cfg.ports.mysql] if cfg.ports.mysql else [])
    if len(set(ports)) != len(ports):
        raise ConfigError(f"the [ports] in {file} must be distinct")
    if cfg.mysql_front.login_timeout_s <= 0 or cfg.mysql_front.backend_pool_size < 1:
        raise ConfigError(f"config keys 'mysql_front.login_timeout_s' and 'backend_pool_size' in {file} must be "
                          "positive")
    tx = cfg.transactions
    if tx.idle_timeout_s <= 0 or tx.max_pinned < 1 or tx.lock_wait_timeout_s < 1 or tx.ddl_lock_wait_s < 1:
        raise ConfigError(f"config keys of [transactions] in {file} must be positive")
    if cfg.mysql_front.default_consistency not in ("strong", "session", "eventual"):
        raise ConfigError(f"config key 'mysql_front.default_consistency' in {file} must be strong, session or "
                          "eventual")
    names = [u.name for u in cfg.mysql_users]
    if len(set(names)) != len(names):
        raise ConfigError(f"[[mysql_users]] names must be unique in {file}")
    for u in cfg.mysql_users:
        h = u.password_hash
        if h and not (len(h) == 41 and h[0] == "*" and all(ch in "0123456789abcdefABCDEF" for ch in h[1:])):
            raise ConfigError(f"mysql_users '{u.name}' in {file}: password_hash must be '*' and 40 hex digits "
                              "(SELECT PASSWORD('...')), or empty")


def from_dict(data: dict[str, Any], source: str = "<memory>", env: dict[str, str] | None = None) -> Config:
    """Build a Config from parsed TOML, applying environment overrides."""
    env = dict(os.environ) if env is None else env
    data = {k: (dict(v) if isinstance(v, dict) else v) for k, v in data.items()}
    for (section, key), var in _ENV.items():
        if var in env:
            if not isinstance(data.setdefault(section, {}), dict):
                raise ConfigError(f"'{section}' in {source} must be a table")
            data[section][key] = env[var]
    if "replicas" not in data:
        raise ConfigError(f"config key 'replicas' is missing in {source}, and has no default")
    if not isinstance(data["replicas"], list):
        raise ConfigError(f"'replicas' in {source} must be an array of tables ([[replicas]])")
    replicas = tuple(
        _build(ReplicaConfig, r, f"replicas[{i}]", source) for i, r in enumerate(data["replicas"])
    )
    sections: dict[str, Any] = {"replicas": replicas, "source": source}
    if "mysql_users" in data:
        if not isinstance(data["mysql_users"], list):
            raise ConfigError(f"'mysql_users' in {source} must be an array of tables ([[mysql_users]])")
        sections["mysql_users"] = tuple(
            _build(MysqlUser, u, f"mysql_users[{i}]", source) for i, u in enumerate(data["mysql_users"]))
    hints = typing.get_type_hints(Config)
    for f in dataclasses.fields(Config):
        if f.name in ("replicas", "source", "mysql_users"):
            continue
        if f.name in data:
            sections[f.name] = _build(hints[f.name], data[f.name], f.name, source)
    unknown = sorted(set(data) - {f.name for f in dataclasses.fields(Config)} | ({"source"} & set(data)))
    if unknown:
        raise ConfigError(f"unknown section '{unknown[0]}' in {source}")
    cfg = Config(**sections)
    _validate(cfg)
    return cfg


def load(path: str | Path, env: dict[str, str] | None = None) -> Config:
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    try:
        data = tomllib.loads(raw.decode())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    return from_dict(data, str(path), env)


def replace_replicas(cfg: Config, ports: dict[str, tuple[str, int]]) -> Config:
    """A copy of ``cfg`` pointing replicas at other addresses (tests, benchmarks)."""
    reps = tuple(
        dataclasses.replace(r, host=ports[r.id][0], port=ports[r.id][1]) if r.id in ports else r
        for r in cfg.replicas
    )
    return dataclasses.replace(cfg, replicas=reps)
