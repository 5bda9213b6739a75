"""SEER election and the proactive switch, checked against the Cabinet rule itself."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coordinator.core.cabinet import QuorumRule
from coordinator.core.seer import (
    CandidateInput,
    Election,
    SeerParams,
    SwitchPolicy,
    SwitchTracker,
    elect,
    follower_latency_ms,
    predict_commit_ms,
)

P = SeerParams()


def cand(
    rid: str,
    exec_ms: float | None = 1.0,
    rtt_ms: float | None = 1.0,
    **kw: object,
) -> CandidateInput:
    base = CandidateInput(
        id=rid,
        name=f"mysql-{rid}",
        healthy=True,
        diverged=False,
        rebuilding=False,
        applied_ts=100,
        exec_ms=exec_ms,
        rtt_ms=rtt_ms,
        uptime_s=3600.0,
        crash_count=0,
        recent_crashes=0,
        lag_entries=0,
    )
    return replace(base, **kw)  # type: ignore[arg-type]


def four(*lat: float) -> list[CandidateInput]:
    """replica-1..4 with follower latency rtt+exec = 2*lat (exec = rtt = lat)."""
    return [cand(f"replica-{i + 1}", exec_ms=x, rtt_ms=x) for i, x in enumerate(lat)]


def by_id(e: Election) -> dict[str, object]:
    return {c.id: c for c in e.candidates}


# --- quorum wait ------------------------------------------------------------------------


def test_cabinet_n4_t1_wait_is_fastest_other_follower() -> None:
    rule = QuorumRule.build(4, 1, "cabinet")
    # Leader (rank 0) plus even the lightest follower commits under the chosen ratio...
    assert all(rule.commits_ranks({0, k}) for k in (1, 2, 3))
    assert not rule.commits_ranks({0})
    cs = four(5.0, 1.0, 3.0, 2.0)  # follower latencies 10, 2, 6, 4
    exec_ms, wait = predict_commit_ms(cs[0], cs[1:], rule, P)
    assert exec_ms == 5.0
    # ...so the wait is the fastest other follower's rtt + exec.
    assert wait == min(follower_latency_ms(c) for c in cs[1:]) == 2.0


def test_majority_n4_waits_for_second_fastest() -> None:
    rule = QuorumRule.build(4, 1, "majority")
    cs = four(5.0, 1.0, 3.0, 2.0)
    _, wait = predict_commit_ms(cs[0], cs[1:], rule, P)
    assert wait == 4.0  # latencies 2, 4, 6: leader + two followers = 3 of 4


def test_all_mode_waits_for_slowest() -> None:
    rule = QuorumRule.build(4, 1, "all")
    cs = four(5.0, 1.0, 3.0, 2.0)
    _, wait = predict_commit_ms(cs[0], cs[1:], rule, P)
    assert wait == 6.0


def test_cabinet_n5_t2_needs_two_followers() -> None:
    rule = QuorumRule.build(5, 2, "cabinet")
    assert not rule.commits_ranks({0, 1}) and rule.commits_ranks({0, 1, 2})
    cs = [cand(f"r{i}", exec_ms=1.0, rtt_ms=x) for i, x in enumerate([1.0, 9.0, 3.0, 7.0, 5.0])]
    _, wait = predict_commit_ms(cs[0], cs[1:], rule, P)
    assert wait == 6.0  # followers 10, 4, 8, 6: the two fastest are 4 and 6


def test_unhealthy_followers_do_not_ack() -> None:
    rule = QuorumRule.build(4, 1, "majority")
    cs = four(1.0, 1.0, 2.0, 3.0)
    cs[1] = replace(cs[1], healthy=False)
    _, wait = predict_commit_ms(cs[0], cs[1:], rule, P)
    assert wait == 6.0  # only replica-3 (4) and replica-4 (6) can ack
    cs[2] = replace(cs[2], diverged=True)
    assert predict_commit_ms(cs[0], cs[1:], rule, P)[1] is None


def test_unknown_latency_uses_default() -> None:
    rule = QuorumRule.build(4, 1, "cabinet")
    cs = [cand("a", exec_ms=None), cand("b", rtt_ms=None, exec_ms=None), cand("c", rtt_ms=None), cand("d", exec_ms=None)]
    exec_ms, wait = predict_commit_ms(cs[0], cs[1:], rule, P)
    assert exec_ms == P.unknown_latency_ms
    assert wait == 1.0 + P.unknown_latency_ms


# --- election ---------------------------------------------------------------------------


def test_slow_candidate_is_not_chosen() -> None:
    rule = QuorumRule.build(4, 1)
    cs = four(1.0, 1.0, 1.0, 40.0)
    e = elect(cs, rule)
    assert e.leader_id != "replica-4"
    assert e.candidates[-1].id == "replica-4"
    assert e.winner() is not None and e.winner().eligible  # type: ignore[union-attr]


def test_fast_candidate_wins_and_reason_names_it() -> None:
    rule = QuorumRule.build(4, 1)
    # follower latencies (rtt + exec): 4, 4, 3, 5
    cs = [cand("replica-1", 3.0), cand("replica-2", 1.0, 3.0), cand("replica-3", 2.0), cand("replica-4", 4.0)]
    e = elect(cs, rule)
    assert e.leader_id == "replica-2"
    assert "replica-2" in e.reason and "replica-1" in e.reason
    d = e.to_dict()
    assert d["leader_id"] == "replica-2"
    assert d["predicted_commit_ms"] == 1.0 + 3.0  # exec 1 + fastest other follower (replica-3)
    assert d["score"] == pytest.approx(1000 / 5)
    assert d["latency_ms"] == 3.0 and d["replication_lag"] == 0 and d["crash_count"] == 0
    # replica-1 and replica-3 tie at 6 ms: broken by id.
    assert [c["id"] for c in d["candidates"]] == ["replica-2", "replica-1", "replica-3", "replica-4"]  # type: ignore[index]


def test_fastest_executor_is_not_always_best() -> None:
    """The leader's cost includes waiting for the others, so a fast follower can be worth more as a follower."""
    rule = QuorumRule.build(4, 1)
    cs = four(3.0, 1.0, 2.0, 4.0)  # leader totals: 3+2, 1+4, 2+2, 4+2
    assert elect(cs, rule).leader_id == "replica-3"


def test_ineligible_reasons() -> None:
    rule = QuorumRule.build(6, 1)
    params = SeerParams(max_catchup_entries=10)
    cs = [
        cand("good"),
        cand("down", healthy=False),
        cand("div", diverged=True),
        cand("rebuild", rebuilding=True),
        cand("behind", lag_entries=11),
        cand("excl"),
    ]
    e = elect(cs, rule, exclude={"excl"}, params=params)
    s = by_id(e)
    assert e.leader_id == "good"
    assert s["down"].reason == "unhealthy"  # type: ignore[attr-defined]
    assert s["div"].reason == "diverged"  # type: ignore[attr-defined]
    assert s["rebuild"].reason == "rebuilding"  # type: ignore[attr-defined]
    assert s["excl"].reason == "excluded"  # type: ignore[attr-defined]
    assert s["behind"].reason.startswith("cannot catch up: lacks 11 entries (> 10)")  # type: ignore[attr-defined]
    for rid in ("down", "div", "rebuild", "excl", "behind"):
        assert not s[rid].eligible and s[rid].score is None  # type: ignore[attr-defined]
    assert [c.eligible for c in e.candidates] == [True] + [False] * 5


def test_lagging_within_limit_pays_catchup() -> None:
    rule = QuorumRule.build(4, 1)
    cs = four(1.0, 1.0, 1.0, 1.0)
    cs[0] = replace(cs[0], lag_entries=500)
    e = elect(cs, rule)
    s = by_id(e)["replica-1"]
    assert s.eligible and s.catchup_ms == pytest.approx(500 * P.catchup_ms_per_entry)  # type: ignore[attr-defined]
    assert e.leader_id != "replica-1"


def test_no_eligible_leader() -> None:
    rule = QuorumRule.build(4, 1)
    cs = four(1.0, 1.0, 1.0, 1.0)
    cs = [replace(c, healthy=False) for c in cs[:3]] + [cs[3]]
    e = elect(cs, rule)
    assert e.leader_id is None and e.winner() is None
    assert "no eligible leader" in e.reason
    assert by_id(e)["replica-4"].reason.startswith("no commit quorum possible")  # type: ignore[attr-defined]
    d = e.to_dict()
    assert d["leader_id"] is None and d["score"] is None and len(d["candidates"]) == 4  # type: ignore[arg-type]
    assert elect([], rule).leader_id is None


def test_instability_reorders_close_candidates() -> None:
    rule = QuorumRule.build(4, 1)
    cs = [cand("replica-1", 1.0, 2.0), cand("replica-2", 1.2, 1.0), cand("replica-3", 5.0, 5.0), cand("replica-4", 5.0, 5.0)]
    assert elect(cs, rule).leader_id == "replica-1"
    crashed = [replace(cs[0], recent_crashes=1, crash_count=3), *cs[1:]]
    e = elect(crashed, rule)
    assert e.leader_id == "replica-2"
    assert by_id(e)["replica-1"].instability_penalty_ms == P.crash_penalty_ms  # type: ignore[attr-defined]
    fresh = [replace(cs[0], uptime_s=1.0), *cs[1:]]
    e = elect(fresh, rule)
    assert e.leader_id == "replica-2"
    assert by_id(e)["replica-1"].instability_penalty_ms == pytest.approx(80.0)  # type: ignore[attr-defined]


def test_ties_prefer_higher_applied_then_id() -> None:
    rule = QuorumRule.build(4, 1)
    cs = four(1.0, 1.0, 1.0, 1.0)
    assert elect(cs, rule).leader_id == "replica-1"
    cs[2] = replace(cs[2], applied_ts=101)
    assert elect(cs, rule, current_leader="replica-4").leader_id == "replica-3"


def test_duplicate_ids_rejected() -> None:
    with pytest.raises(ValueError, match="duplicate"):
        elect([cand("a"), cand("a"), cand("b")], QuorumRule.build(3, 1))


# --- properties -------------------------------------------------------------------------

lat = st.one_of(st.none(), st.floats(min_value=0.0, max_value=200.0, allow_nan=False))
MODES = st.sampled_from(["cabinet", "majority", "all"])


@st.composite
def clusters(draw: st.DrawFn) -> tuple[list[CandidateInput], QuorumRule]:
    n = draw(st.integers(3, 7))
    t = draw(st.integers(1, (n - 1) // 2))
    rule = QuorumRule.build(n, t, draw(MODES))
    cs = [
        CandidateInput(
            id=f"replica-{i}",
            name=f"mysql-replica-{i}",
            healthy=draw(st.sampled_from([True, True, True, False])),
            diverged=draw(st.sampled_from([False, False, False, True])),
            rebuilding=draw(st.sampled_from([False, False, False, True])),
            applied_ts=draw(st.integers(0, 5)),
            exec_ms=draw(lat),
            rtt_ms=draw(lat),
            uptime_s=draw(st.floats(0.0, 100.0)),
            crash_count=draw(st.integers(0, 5)),
            recent_crashes=draw(st.integers(0, 2)),
            lag_entries=draw(st.integers(0, 2000)),
        )
        for i in range(1, n + 1)
    ]
    return cs, rule


PARAMS = SeerParams(max_catchup_entries=1500)


@settings(max_examples=300, deadline=None)
@given(clusters(), st.sets(st.integers(1, 7), max_size=2))
def test_winner_is_eligible_and_minimal(cluster: tuple[list[CandidateInput], QuorumRule], ex: set[int]) -> None:
    cs, rule = cluster
    exclude = {f"replica-{i}" for i in ex}
    e = elect(cs, rule, exclude=exclude, params=PARAMS)
    w = e.winner()
    eligible = [c for c in e.candidates if c.eligible]
    if w is None:
        assert not eligible and e.leader_id is None
        return
    src = {c.id: c for c in cs}[w.id]
    assert src.healthy and not src.diverged and not src.rebuilding and w.id not in exclude
    assert src.lag_entries <= PARAMS.max_catchup_entries
    assert w.total_ms is not None and w.quorum_wait_ms is not None
    assert all(w.total_ms <= c.total_ms for c in eligible)  # type: ignore[operator]
    # The winner's total is exactly what the documented formula gives.
    exec_ms, wait = predict_commit_ms(src, cs, rule, PARAMS)
    assert w.total_ms == exec_ms + wait + w.instability_penalty_ms + w.catchup_ms  # type: ignore[operator]
    assert w.score == pytest.approx(1000 / (1 + w.total_ms))


@settings(max_examples=200, deadline=None)
@given(clusters(), st.randoms(use_true_random=False))
def test_deterministic_under_permutation(cluster: tuple[list[CandidateInput], QuorumRule], rnd: object) -> None:
    cs, rule = cluster
    shuffled = list(cs)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    assert elect(cs, rule, params=PARAMS).to_dict() == elect(shuffled, rule, params=PARAMS).to_dict()


@settings(max_examples=200, deadline=None)
@given(clusters())
def test_excluding_winner_picks_next_best(cluster: tuple[list[CandidateInput], QuorumRule]) -> None:
    cs, rule = cluster
    e = elect(cs, rule, params=PARAMS)
    if e.leader_id is None:
        return
    again = elect(cs, rule, exclude={e.leader_id}, params=PARAMS)
    eligible = [c for c in e.candidates if c.eligible]
    # Exclusion changes only leadership, not who acks, so everyone else's score is unchanged.
    expected = eligible[1].id if len(eligible) > 1 else None
    assert again.leader_id == expected
    assert by_id(again)[e.leader_id].reason == "excluded"  # type: ignore[attr-defined]


# --- proactive switch -------------------------------------------------------------------


def election_for(costs: dict[str, tuple[float, float]]) -> Election:
    """An n=4 cabinet election over id -> (exec_ms, rtt_ms)."""
    return elect([cand(rid, e, r) for rid, (e, r) in costs.items()], QuorumRule.build(4, 1))


# Leader totals = exec + fastest other follower (rtt + exec).
FAST = election_for({"replica-4": (20, 1), "replica-1": (2, 5), "replica-2": (2, 1), "replica-3": (30, 1)})
FAST2 = election_for({"replica-4": (20, 1), "replica-1": (2, 1), "replica-2": (2, 5), "replica-3": (30, 1)})
SLIGHT = election_for({"replica-4": (10, 1), "replica-1": (8, 5), "replica-2": (30, 1), "replica-3": (30, 1)})


def total(e: Election, rid: str) -> float:
    return by_id(e)[rid].total_ms  # type: ignore[attr-defined,no-any-return]


def test_fixture_elections() -> None:
    assert FAST.leader_id == "replica-1" and total(FAST, "replica-1") <= 0.7 * total(FAST, "replica-4")
    assert FAST2.leader_id == "replica-2" and total(FAST2, "replica-2") <= 0.7 * total(FAST2, "replica-1")
    assert total(FAST2, "replica-2") <= 0.7 * total(FAST2, "replica-4")
    assert SLIGHT.leader_id == "replica-1"
    assert 0.7 * total(SLIGHT, "replica-4") < total(SLIGHT, "replica-1") < total(SLIGHT, "replica-4")


def test_no_switch_before_sustain() -> None:
    tr = SwitchTracker(SwitchPolicy(margin=0.3, sustain_s=10.0, min_term_s=60.0))
    for now in range(0, 10):
        assert tr.observe(float(now), FAST, "replica-4") is None
    assert tr.observe(10.0, FAST, "replica-4") == "replica-1"


def test_no_switch_within_min_term() -> None:
    tr = SwitchTracker(SwitchPolicy(margin=0.3, sustain_s=10.0, min_term_s=60.0))
    assert tr.observe(0.0, FAST, "replica-4") is None
    assert tr.observe(10.0, FAST, "replica-4") == "replica-1"
    tr.switched(10.0)
    assert tr.last_switch == 10.0 and tr.candidate is None
    # Now replica-1 leads but replica-2 is better: sustained, but the term is too short.
    for now in range(11, 70):
        assert tr.observe(float(now), FAST2, "replica-1") is None
    assert tr.observe(70.0, FAST2, "replica-1") == "replica-2"


def test_changing_best_restarts_clock() -> None:
    tr = SwitchTracker(SwitchPolicy(margin=0.3, sustain_s=10.0, min_term_s=0.0))
    assert tr.observe(0.0, FAST, "replica-4") is None
    assert tr.observe(9.0, FAST2, "replica-4") is None
    assert tr.observe(18.0, FAST2, "replica-4") is None
    assert tr.observe(19.0, FAST2, "replica-4") == "replica-2"


def test_lapse_restarts_clock() -> None:
    tr = SwitchTracker(SwitchPolicy(margin=0.3, sustain_s=10.0, min_term_s=0.0))
    assert tr.observe(0.0, FAST, "replica-4") is None
    assert tr.observe(5.0, SLIGHT, "replica-4") is None  # below margin: clock stops
    assert tr.observe(6.0, FAST, "replica-4") is None
    assert tr.observe(15.0, FAST, "replica-4") is None
    assert tr.observe(16.0, FAST, "replica-4") == "replica-1"


def test_margin_below_policy_never_switches() -> None:
    tr = SwitchTracker(SwitchPolicy(margin=0.3, sustain_s=10.0, min_term_s=0.0))
    for now in range(0, 1000, 5):
        assert tr.observe(float(now), SLIGHT, "replica-4") is None


def test_ineligible_current_leader_is_failovers_business() -> None:
    tr = SwitchTracker(SwitchPolicy(sustain_s=0.0, min_term_s=0.0))
    e = elect(
        [cand("replica-4", healthy=False), cand("replica-1"), cand("replica-2"), cand("replica-3")],
        QuorumRule.build(4, 1),
    )
    assert tr.observe(100.0, e, "replica-4") is None
    assert tr.observe(100.0, FAST, "replica-1") is None  # already the best
    assert tr.last_switch == -math.inf
