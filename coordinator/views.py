"""The contract's JSON shapes: what :8000–:8005 and the dashboard show.

Why one module: the old system's clients format ``latency_ms``, ``uptime_seconds`` and
``score`` with ``:.2f`` / ``.toFixed()``, sort replicas by ``latency_ms`` and compare
``replication_lag`` with 0, so a field's *type* is part of the contract (README,
"HTTP contract"). Every number the old system returned is a JSON number here in every
state — before the first poll, with a replica down, during a failover, while fenced.
Where no fresh measurement exists the last one is given with ``stale: true``, or 0 with
``is_healthy: false``; a field is never dropped or null.

Our own extra fields may be null, and each such field says so below:
``ack_latency_ms`` (before the replica acked its first batch), ``rebuild_progress``
(unless rebuilding) and, per SEER candidate, ``reason``, ``predicted_commit_ms``,
``quorum_wait_ms`` and ``total_ms`` (when it could not commit).

The functions are pure: they take the coordinator's state and the time as arguments;
``Views`` gathers that state from the running coordinator for each request.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from fractions import Fraction
from typing import Any, Protocol

from .core import cabinet
from .core.health import HealthTracker
from .core.seer import CandidateScore, Election


class ReplicaLike(Protocol):
    """What a view needs of a replica's state (``ReplicaState`` has it)."""

    @property
    def id(self) -> str: ...
    @property
    def available(self) -> bool: ...

    applied_ts: int
    ack_ms: float | None
    diverged: bool
    needs_rebuild: bool
    rebuilding: bool
    rebuild_progress: float | None
    connected: bool
    last_error: str
    batches: int
    entries_applied: int
    busy_ms: float


def num(value: float | Fraction | None, default: float = 0.0, digits: int = 3) -> float:
    """A JSON-safe number: None, NaN and infinities become ``default``."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return default
    return round(float(value), digits)


def state_name(rs: ReplicaLike, tracker: HealthTracker) -> str:
    if rs.rebuilding:
        return "rebuilding"
    if rs.diverged:
        return "diverged"
    if rs.needs_rebuild:
        return "needs_rebuild"
    if not tracker.healthy:
        return "down"
    if not rs.connected:
        return "connecting"
    return "healthy"


def replica_metric(rs: ReplicaLike, name: str, tracker: HealthTracker, *, is_master: bool, last_ts: int,
                   lag_ms: float, weight: float | Fraction, now_mono: float, updated_at: float) -> dict[str, Any]:
    """One entry of ``:8003 /metrics``.

    ``latency_ms`` is the poll round trip (the old system measured a probe query's round
    trip), for every replica including the leader; our apply round trip, which ranks the
    cabinet, is ``ack_latency_ms``. ``updated_at`` is the wall time of the last poll
    result (the coordinator's start before the first one)."""
    measured = tracker.latency_ms
    return {
        "replica_id": rs.id,
        "name": name,
        "latency_ms": num(measured),
        "replication_lag": max(0, last_ts - rs.applied_ts),
        "uptime_seconds": num(tracker.uptime_s(now_mono), digits=1),
        "crash_count": int(tracker.crash_count),
        "last_updated": num(updated_at),
        "is_healthy": bool(rs.available),
        "is_master": bool(is_master),
        "stale": measured is None or not tracker.healthy,
        "applied_timestamp": int(rs.applied_ts),
        "lag_ms": num(lag_ms, digits=1),
        "weight": num(weight, digits=6),
        "ack_latency_ms": round(rs.ack_ms, 3) if rs.ack_ms is not None else None,
        "state": state_name(rs, tracker),
        "rebuild_progress": rs.rebuild_progress,
        "diverged": bool(rs.diverged),
        "last_error": rs.last_error,
        "batches": int(rs.batches),
        "entries_applied": int(rs.entries_applied),
        "busy_ms": num(rs.busy_ms, digits=1),
    }


def lag_ms(applied_ts: int, last_ts: int, oldest_unapplied_us: int | None, now_us: int) -> float:
    """Age of the oldest entry the replica has not applied (0 when caught up).

    ``oldest_unapplied_us`` is that entry's time, or, when the replica is behind the
    in-memory tail, the time of the tail's first entry (so the figure is a lower bound)."""
    if applied_ts >= last_ts or oldest_unapplied_us is None:
        return 0.0
    return max(0.0, (now_us - oldest_unapplied_us) / 1000)


# --- SEER ---------------------------------------------------------------------------------

DETAIL_FIELDS = ("leader_id", "score", "latency_ms", "uptime_seconds", "replication_lag", "crash_count")


def candidate(c: CandidateScore) -> dict[str, Any]:
    """One SEER candidate: ``score`` 0 when ineligible; ``latency_ms`` 0 before a poll."""
    d = c.to_dict()
    d["score"] = num(c.score, digits=6)
    d["latency_ms"] = num(c.latency_ms)
    d["uptime_seconds"] = num(c.uptime_seconds, digits=1)
    d["exec_ms"] = num(c.exec_ms)
    return d


def details(leader_id: str, c: CandidateScore | None) -> dict[str, Any]:
    """``election_details``: a leader's SEER figures, all numbers (0 when unmeasured)."""
    return {
        "leader_id": leader_id,
        "score": num(c.score if c else None, digits=6),
        "latency_ms": num(c.latency_ms if c else None),
        "uptime_seconds": num(c.uptime_seconds if c else None, digits=1),
        "replication_lag": int(c.replication_lag) if c else 0,
        "crash_count": int(c.crash_count) if c else 0,
        "predicted_commit_ms": num(c.predicted_commit_ms if c else None),
        "eligible": bool(c.eligible) if c else False,
    }


def election(e: Election) -> dict[str, Any]:
    """The ``:8005 /elect-leader`` body (only for an election with a winner)."""
    w = e.winner()
    assert w is not None and e.leader_id is not None
    return {
        **details(e.leader_id, w),
        "candidates": [candidate(c) for c in e.candidates],
        "reason": e.reason,
    }


def no_election(e: Election) -> dict[str, Any]:
    """Extra fields of the 503 when no replica is eligible (no winner figures to give)."""
    return {"candidates": [candidate(c) for c in e.candidates], "reason": e.reason}


def figures_of(e: Election, rid: str) -> CandidateScore | None:
    return next((c for c in e.candidates if c.id == rid), None)


# --- quorum and status ---------------------------------------------------------------------


def quorum(members: list[str], total: int, weights: Mapping[str, Any], threshold: Any, mode: str, t: int,
           ratio: Any, ranking: list[str]) -> dict[str, Any]:
    """``:8004 /select-quorum``: the cabinet, leader first."""
    return {
        "quorum": list(members),
        "quorum_size": len(members),
        "total_replicas": int(total),
        "weights": {k: float(v) for k, v in weights.items()},
        "threshold": float(threshold),
        "mode": mode,
        "failure_threshold": int(t),
        "ratio": float(ratio),
        "ranking": list(ranking),
    }


def election_details(leader_id: str, e: Election) -> dict[str, Any]:
    """``election_details`` of an admin answer: the leader's figures, the candidates, why."""
    return {**details(leader_id, figures_of(e, leader_id)), "candidates": [candidate(c) for c in e.candidates],
            "reason": e.reason}


def last_election(last: dict[str, Any] | None) -> dict[str, Any] | None:
    """The core's record of the last failover, with its election shaped and its time in seconds."""
    if last is None:
        return None
    out = {k: v for k, v in last.items() if k not in ("election", "time_us")}
    out["time"] = last["time_us"] / 1e6
    out["election"] = election_details(last["new_leader"], last["election"])
    return out


class Views:
    """Reads the running coordinator's state and shapes it (HTTP handlers, the dashboard,
    Prometheus all read these same numbers)."""

    def __init__(self, coord: Any) -> None:
        self.c = coord

    def status(self) -> dict[str, Any]:
        r = self.c.replicator
        return {
            "current_master": r.leader.name,
            "master_is_original": r.leader_id == self.c.cfg.initial_leader.id,
            "replicas": [rid for rid in r.replicas if rid != r.leader_id],
            "leader": r.leader_id,
            "epoch": r.epoch,
            "commit_timestamp": r.commit_ts,
            "mode": r.rule.mode,
            "ready": r.active,
            "fenced": r.fenced,
            "inflight": r.inflight,
            "cabinet": cabinet.cabinet_members(r.rule, r.ranking),
        }

    def replica_metrics(self) -> list[dict[str, Any]]:
        r = self.c.replicator
        log = r.log
        weights = cabinet.weights_for(r.rule, r.ranking)
        now_us = time.time_ns() // 1000
        mono = time.monotonic()
        out = []
        for rid, rs in r.replicas.items():
            oldest = None
            if rs.applied_ts < log.last_ts:
                nxt = log.after(rs.applied_ts, 1)
                if nxt:
                    oldest = nxt[0].time_us
                elif log.entries:  # behind the in-memory tail: at least this old
                    oldest = log.entries[0].time_us
            out.append(replica_metric(
                rs, rs.name, r.health[rid], is_master=rid == r.leader_id, last_ts=log.last_ts,
                lag_ms=lag_ms(rs.applied_ts, log.last_ts, oldest, now_us), weight=weights.get(rid, 0),
                now_mono=mono, updated_at=self.c.monitor.polled_at.get(rid, self.c.started_at)))
        return out

    def quorum(self) -> dict[str, Any]:
        r = self.c.replicator
        return quorum(cabinet.cabinet_members(r.rule, r.ranking), len(r.replicas),
                      cabinet.weights_for(r.rule, r.ranking), r.rule.threshold, r.rule.mode, r.rule.t,
                      r.rule.ratio, r.ranking)

    def election(self, exclude: list[str] | tuple[str, ...] = ()) -> dict[str, Any]:
        """SEER's dry run as ``:8005 /elect-leader`` shows it (no winner: candidates and reason)."""
        e = self.c.replicator.core.dry_run(exclude)
        return election(e) if e.leader_id is not None else {"leader_id": None, **no_election(e)}

    def leader_info(self) -> dict[str, Any]:
        """``GET /admin/leader-info``: the current leader and its SEER figures now."""
        r = self.c.replicator
        e = r.core.dry_run()
        return {"success": True, "leader_id": r.leader_id, "current_master": r.leader.name,
                "master_is_original": r.leader_id == self.c.cfg.initial_leader.id, "epoch": r.epoch,
                "election_details": details(r.leader_id, figures_of(e, r.leader_id)),
                "last_election": last_election(r.core.st.last_election)}

    def snapshot(self) -> dict[str, Any]:
        """Everything the dashboard shows, in one value (pushed to browsers)."""
        ctl = self.c.control
        return {"time": time.time(), "status": self.status(), "replicas": self.replica_metrics(),
                "quorum": self.quorum(),
                "seer": {"dry_run": self.election(), "last": last_election(self.c.replicator.core.st.last_election)},
                "control": {"backend": ctl.name, "available": ctl.available, "reason": ctl.reason},
                "mysql": self.c.mysql.stats() if self.c.mysql is not None else None}
