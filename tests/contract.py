"""The HTTP contract's shapes as data: one schema per endpoint, field -> type.

A schema is a dict of field name -> type spec; every listed field is required (the old
system's clients read them without checking). Type specs: ``NUM`` (a JSON number, never
a bool or null), ``INT``, ``BOOL``, ``STR``, ``ListOf(spec)``, a nested schema dict,
``Nullable(spec)`` (our own documented nullable fields) and ``DictOf(spec)``.
``check(schema, body)`` returns a list of problems (empty when the body fits).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class T:
    name: str

    def ok(self, v: Any) -> bool:
        if self.name == "num":
            return isinstance(v, (int, float)) and not isinstance(v, bool)
        if self.name == "int":
            return isinstance(v, int) and not isinstance(v, bool)
        if self.name == "bool":
            return isinstance(v, bool)
        if self.name == "str":
            return isinstance(v, str)
        raise AssertionError(self.name)


NUM, INT, BOOL, STR = T("num"), T("int"), T("bool"), T("str")


@dataclass(frozen=True)
class ListOf:
    item: Any


@dataclass(frozen=True)
class DictOf:
    value: Any


@dataclass(frozen=True)
class Nullable:
    inner: Any


def check(spec: Any, value: Any, where: str = "$") -> list[str]:
    if isinstance(spec, Nullable):
        return [] if value is None else check(spec.inner, value, where)
    if isinstance(spec, T):
        return [] if spec.ok(value) else [f"{where}: expected {spec.name}, got {type(value).__name__} {value!r}"]
    if isinstance(spec, ListOf):
        if not isinstance(value, list):
            return [f"{where}: expected a list, got {type(value).__name__} {value!r}"]
        return [p for i, v in enumerate(value) for p in check(spec.item, v, f"{where}[{i}]")]
    if isinstance(spec, DictOf):
        if not isinstance(value, dict):
            return [f"{where}: expected an object, got {type(value).__name__}"]
        return [p for k, v in value.items() for p in check(spec.value, v, f"{where}.{k}")]
    assert isinstance(spec, dict), spec
    if not isinstance(value, dict):
        return [f"{where}: expected an object, got {type(value).__name__} {value!r}"]
    out = []
    for name, sub in spec.items():
        if name not in value:
            out.append(f"{where}.{name}: missing")
        else:
            out.extend(check(sub, value[name], f"{where}.{name}"))
    return out


HEALTH = {"status": STR, "service": STR}
TIMESTAMP_HEALTH = {**HEALTH, "server_id": INT, "current_counter": INT}
ERROR = {"success": BOOL, "error": STR, "detail": STR, "code": STR}

STATUS = {"current_master": STR, "master_is_original": BOOL, "replicas": ListOf(STR), "leader": STR, "epoch": INT,
          "commit_timestamp": INT, "mode": STR, "ready": BOOL, "fenced": BOOL}

METRIC = {"replica_id": STR, "latency_ms": NUM, "replication_lag": INT, "uptime_seconds": NUM, "crash_count": INT,
          "last_updated": NUM, "is_healthy": BOOL, "is_master": BOOL, "stale": BOOL,
          # ours: documented in the README's contract section
          "name": STR, "applied_timestamp": INT, "lag_ms": NUM, "weight": NUM, "ack_latency_ms": Nullable(NUM),
          "state": STR, "rebuild_progress": Nullable(NUM), "diverged": BOOL}
METRICS = {"replicas": ListOf(METRIC), "master_timestamp": INT}

QUORUM = {"quorum": ListOf(STR), "quorum_size": INT, "total_replicas": INT, "weights": DictOf(NUM),
          "threshold": NUM, "mode": STR, "failure_threshold": INT}

CANDIDATE = {"id": STR, "name": STR, "eligible": BOOL, "reason": Nullable(STR), "score": NUM, "latency_ms": NUM,
             "uptime_seconds": NUM, "replication_lag": INT, "crash_count": INT,
             "predicted_commit_ms": Nullable(NUM), "exec_ms": NUM, "quorum_wait_ms": Nullable(NUM),
             "total_ms": Nullable(NUM)}
DETAILS = {"leader_id": STR, "score": NUM, "latency_ms": NUM, "uptime_seconds": NUM, "replication_lag": INT,
           "crash_count": INT}
ELECTION = {**DETAILS, "predicted_commit_ms": NUM, "candidates": ListOf(CANDIDATE), "reason": STR}
NO_ELECTION = {**ERROR, "candidates": ListOf(CANDIDATE), "reason": STR}

TIMESTAMP = {"timestamp": INT, "server_id": INT}

LEADER_INFO = {"success": BOOL, "leader_id": STR, "current_master": STR, "election_details": DETAILS}
FAILOVER = {"success": BOOL, "message": STR, "old_master": STR, "new_master": STR, "new_leader_id": STR,
            "election_details": DETAILS}
START_MASTER = {"success": BOOL, "message": STR}


@dataclass(frozen=True)
class Endpoint:
    """One GET/POST of the contract: its success schema and the error statuses it may give
    in some state (each with the error schema)."""

    port: str
    method: str
    path: str
    schema: dict[str, Any]
    errors: tuple[int, ...] = ()
    error_schema: dict[str, Any] | None = None
    body: Any = None


# Every read-only endpoint, checked in every state. /timestamp may be refused (503 JSON)
# while the coordinator cannot persist timestamps (starting, fenced); the SEER dry run
# answers 503 JSON when no replica is eligible.
READ_ONLY = [
    Endpoint("gateway", "GET", "/status", STATUS),
    Endpoint("gateway", "GET", "/health", HEALTH),
    Endpoint("gateway", "GET", "/admin/leader-info", LEADER_INFO),
    Endpoint("timestamp_odd", "GET", "/timestamp", TIMESTAMP, errors=(503, 504)),
    Endpoint("timestamp_even", "GET", "/timestamp", TIMESTAMP, errors=(503, 504)),
    Endpoint("timestamp_odd", "GET", "/health", TIMESTAMP_HEALTH),
    Endpoint("timestamp_even", "GET", "/health", TIMESTAMP_HEALTH),
    Endpoint("metrics", "GET", "/metrics", METRICS),
    Endpoint("metrics", "GET", "/metrics/replica-1", METRIC),
    Endpoint("metrics", "GET", "/health", HEALTH),
    Endpoint("cabinet", "POST", "/select-quorum", QUORUM, body={"operation": "write"}),
    Endpoint("cabinet", "GET", "/health", HEALTH),
    Endpoint("seer", "POST", "/elect-leader", ELECTION, errors=(503,), error_schema=NO_ELECTION, body={}),
    Endpoint("seer", "GET", "/health", HEALTH),
]


def check_response(ep: Endpoint, status: int, body: Any) -> list[str]:
    """Problems with one answer of ``ep`` (empty when it fits the contract)."""
    where = f"{ep.method} :{ep.port}{ep.path}"
    if status == 200:
        return [f"{where} {p}" for p in check(ep.schema, body)]
    if status in ep.errors:
        return [f"{where} ({status}) {p}" for p in check(ep.error_schema or ERROR, body)]
    return [f"{where}: unexpected status {status}: {str(body)[:300]}"]
