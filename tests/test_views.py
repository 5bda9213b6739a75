"""JSON shaping of the contract with missing measurements (``coordinator/views.py``), and
the schema checker itself (it must reject a null where the contract has a number)."""

from __future__ import annotations

import math

import pytest

from coordinator import views
from coordinator.core import cabinet, seer
from coordinator.core.health import HealthTracker, Outcome
from coordinator.core.state import ReplicaState
from tests import contract


def _rs(rid: str = "replica-1") -> ReplicaState:
    return ReplicaState(rid, f"mysql-{rid}")


def _metric(rs: ReplicaState, tr: HealthTracker, **kw: object) -> dict[str, object]:
    args: dict[str, object] = dict(is_master=False, last_ts=0, lag_ms=0.0, weight=0, now_mono=100.0,
                                   updated_at=1.7e9)
    args.update(kw)
    return views.replica_metric(rs, rs.name, tr, **args)  # type: ignore[arg-type]


def test_metric_before_any_measurement_has_numbers_and_says_stale() -> None:
    m = _metric(_rs(), HealthTracker())
    assert contract.check(contract.METRIC, m) == []
    assert m["latency_ms"] == 0.0 and m["uptime_seconds"] == 0.0 and m["stale"] is True
    assert m["is_healthy"] is False and m["ack_latency_ms"] is None


def test_metric_of_a_down_replica_keeps_the_last_measured_latency() -> None:
    tr = HealthTracker(misses_allowed=1)
    tr.observe(1.0, Outcome.OK, latency_ms=4.25)
    tr.observe(2.0, Outcome.REFUSED, error="refused")
    rs = _rs()
    rs.applied_ts = 3
    m = _metric(rs, tr, last_ts=10, lag_ms=float("inf"), weight=cabinet.Fraction(1, 3))
    assert contract.check(contract.METRIC, m) == []
    assert m["latency_ms"] == 4.25 and m["stale"] is True and m["crash_count"] == 1
    assert m["replication_lag"] == 7 and m["lag_ms"] == 0.0 and math.isclose(m["weight"], 1 / 3, rel_tol=1e-5)


def test_metric_of_a_healthy_measured_replica_is_fresh() -> None:
    tr = HealthTracker()
    tr.observe(1.0, Outcome.OK, latency_ms=2.0)
    rs = _rs()
    rs.connected = rs.healthy = True
    rs.ack_ms = 1.5
    m = _metric(rs, tr, is_master=True, now_mono=11.0)
    assert m["stale"] is False and m["is_healthy"] is True and m["uptime_seconds"] == 10.0
    assert m["ack_latency_ms"] == 1.5 and m["is_master"] is True


@pytest.mark.parametrize(("applied", "last", "oldest", "now", "want"), [
    (5, 5, None, 10_000, 0.0),  # caught up
    (4, 5, 4_000, 10_000, 6.0),  # 6 ms behind
    (4, 5, None, 10_000, 0.0),  # no time known
    (4, 5, 20_000, 10_000, 0.0),  # clock skew never gives a negative lag
])
def test_lag_ms(applied: int, last: int, oldest: int | None, now: int, want: float) -> None:
    assert views.lag_ms(applied, last, oldest, now) == want


def _cand(rid: str, healthy: bool, rtt: float | None) -> seer.CandidateInput:
    return seer.CandidateInput(id=rid, name=f"mysql-{rid}", healthy=healthy, diverged=False, rebuilding=False,
                               applied_ts=0, exec_ms=None, rtt_ms=rtt, uptime_s=0.0, crash_count=0,
                               recent_crashes=0, lag_entries=0)


def test_election_details_are_numbers_when_nothing_was_measured() -> None:
    rule = cabinet.QuorumRule.build(4, 1, "cabinet")
    e = seer.elect([_cand(f"replica-{i}", False, None) for i in range(1, 5)], rule)
    assert e.leader_id is None
    d = views.details("replica-4", views.figures_of(e, "replica-4"))
    assert contract.check(contract.DETAILS, d) == [] and d["score"] == 0.0
    body = {"success": False, "error": "x", "detail": "x", "code": "no_eligible_leader", **views.no_election(e)}
    assert contract.check(contract.NO_ELECTION, body) == []
    assert views.details("replica-9", None)["latency_ms"] == 0.0


def test_election_body_with_a_winner() -> None:
    rule = cabinet.QuorumRule.build(3, 1, "cabinet")
    e = seer.elect([_cand("a", True, 1.0), _cand("b", True, 2.0), _cand("c", False, None)], rule)
    body = views.election(e)
    assert contract.check(contract.ELECTION, body) == []
    c = next(c for c in body["candidates"] if c["id"] == "c")
    assert c["score"] == 0.0 and c["latency_ms"] == 0.0 and c["eligible"] is False


def test_quorum_view_types() -> None:
    rule = cabinet.QuorumRule.build(4, 1, "cabinet")
    ranking = ["replica-4", "replica-1", "replica-2", "replica-3"]
    q = views.quorum(cabinet.cabinet_members(rule, ranking), 4, cabinet.weights_for(rule, ranking),
                     rule.threshold, rule.mode, rule.t, rule.ratio, ranking)
    assert contract.check(contract.QUORUM, q) == [] and q["quorum"][0] == "replica-4"


@pytest.mark.parametrize("field", ["latency_ms", "uptime_seconds", "replication_lag", "crash_count",
                                   "is_healthy", "last_updated"])
def test_checker_rejects_null_and_strings(field: str) -> None:
    good = _metric(_rs(), HealthTracker())
    for bad in (None, "1.0"):
        problems = contract.check(contract.METRIC, {**good, field: bad})
        assert problems and field in problems[0]
    missing = {k: v for k, v in good.items() if k != field}
    assert contract.check(contract.METRIC, missing) == [f"$.{field}: missing"]


def test_checker_rejects_bool_as_number() -> None:
    assert contract.check({"x": contract.NUM}, {"x": True})
    assert contract.check({"x": contract.INT}, {"x": 1.5})
    assert contract.check({"x": contract.ListOf(contract.STR)}, {"x": "a"})
