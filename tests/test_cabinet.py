"""Cabinet weighted quorum checked against brute-force enumeration with exact Fractions."""

from __future__ import annotations

from fractions import Fraction
from itertools import combinations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coordinator.core.cabinet import (
    MODES,
    QuorumError,
    QuorumRule,
    acked_summary,
    cabinet_members,
    choose_ratio,
    commit_index,
    feasible_ratio_range,
    rank,
    weights_for,
)

CONFIGS = [(n, t) for n in range(3, 8) for t in range(1, (n - 1) // 2 + 1)]


def subsets(n: int) -> list[frozenset[int]]:
    return [frozenset(c) for k in range(n + 1) for c in combinations(range(n), k)]


def brute_commits(rule: QuorumRule, ranks: frozenset[int]) -> bool:
    n = rule.n
    if rule.mode == "majority":
        return len(ranks) >= n // 2 + 1
    if rule.mode == "all":
        return len(ranks) == n
    r = rule.ratio
    weights = [r ** (n - i) for i in range(1, n + 1)]  # w_i = r^(n-i), i = 1..n
    total = sum(weights, Fraction(0))
    return sum((weights[k] for k in ranks), Fraction(0)) > total / 2


def brute_commit_index(rule: QuorumRule, ranking: list[str], applied: dict[str, int]) -> int:
    best = 0
    for ts in set(applied.get(rid, 0) for rid in ranking):
        ranks = frozenset(k for k, rid in enumerate(ranking) if applied.get(rid, 0) >= ts)
        if brute_commits(rule, ranks):
            best = max(best, ts)
    return best


# --- worked example and errors ---------------------------------------------------------


def test_n4_t1_example() -> None:
    lo, hi = feasible_ratio_range(4, 1)
    assert lo == 1
    assert Fraction(18392, 10000) < hi < Fraction(18393, 10000)
    rule = QuorumRule.build(4, 1)
    assert 1 < rule.ratio < Fraction(18393, 10000)
    assert rule.ratio == choose_ratio(4, 1)
    r = rule.ratio
    assert rule.weights == (r**3, r**2, r, Fraction(1))
    assert rule.total == r**3 + r**2 + r + 1
    assert rule.threshold == rule.total / 2
    assert rule.member_count() == 2
    assert rule.commits_ranks([0, 1])  # leader + fastest follower
    assert rule.commits_ranks([1, 2, 3])  # three followers without the leader
    assert not rule.commits_ranks([0])
    assert rule.commits_ranks([0, 3]) == (r**3 + 1 > rule.threshold)
    ranking = ["replica-4", "replica-1", "replica-2", "replica-3"]
    assert cabinet_members(rule, ranking) == ["replica-4", "replica-1"]
    assert weights_for(rule, ranking)["replica-4"] == r**3


def test_majority_and_all_thresholds() -> None:
    maj = QuorumRule.build(4, 1, "majority")
    assert maj.threshold == 2 and maj.total == 4 and maj.member_count() == 3
    assert maj.commits_ranks([1, 2, 3]) and not maj.commits_ranks([0, 1])
    every = maj.with_mode("all")
    assert every.mode == "all" and every.member_count() == 4
    assert every.commits_ranks(range(4)) and not every.commits_ranks([0, 1, 2])
    assert every.with_mode("cabinet") == QuorumRule.build(4, 1)


@pytest.mark.parametrize(
    ("n", "t", "mode", "match"),
    [
        (4, 0, "cabinet", r"failure threshold t=0 .* 1 <= t <= 1"),
        (4, 2, "cabinet", r"failure threshold t=2 is out of range for n=4"),
        (7, 4, "cabinet", r"1 <= t <= 3"),
        (2, 1, "cabinet", r"replica count n=2 .* 3 to 7"),
        (8, 1, "cabinet", r"replica count n=8 .* 3 to 7"),
        (4, 1, "raft", r"unknown quorum mode 'raft': expected one of cabinet, majority, all"),
    ],
)
def test_quorum_errors(n: int, t: int, mode: str, match: str) -> None:
    with pytest.raises(QuorumError, match=match):
        QuorumRule.build(n, t, mode)


def test_quorum_error_is_value_error_and_bad_ranking() -> None:
    rule = QuorumRule.build(3)
    assert issubclass(QuorumError, ValueError)
    with pytest.raises(QuorumError, match="3 distinct replicas"):
        weights_for(rule, ["a", "b"])
    with pytest.raises(QuorumError, match="rank 3 is out of range"):
        rule.commits_ranks([3])


def test_rank_orders_by_latency_unknown_then_unavailable() -> None:
    order = rank(
        "L",
        ["d", "c", "b", "a", "e", "L"],
        {"a": 5.0, "b": 1.0, "c": None, "d": 1.0, "e": 0.1},
        {"a": True, "b": True, "c": True, "d": True, "e": False},
    )
    assert order == ["L", "b", "d", "a", "c", "e"]


def test_acked_summary() -> None:
    rule = QuorumRule.build(4, 1)
    ranking = ["r4", "r1", "r2", "r3"]
    applied = {"r4": 9, "r1": 3, "r2": 9, "r3": 9}
    s = acked_summary(rule, ranking, applied, 9)
    r = rule.ratio
    assert s["mode"] == "cabinet"
    assert s["members"] == ["r4", "r1"]
    assert s["acked"] == ["r4", "r2", "r3"]
    assert s["weight"] == float(r**3 + r + 1)
    assert s["threshold"] == float(rule.threshold)
    assert s["members_acked"] == 1 and s["member_count"] == 2
    assert s["committed"] is True
    assert commit_index(rule, ranking, applied) == 9
    assert commit_index(rule, ranking, {"r4": 9}) == 0
    assert commit_index(rule, ranking, {}) == 0


# --- exhaustive properties over every (n, t) --------------------------------------------


@pytest.mark.parametrize(("n", "t"), CONFIGS)
def test_cabinet_properties_exhaustive(n: int, t: int) -> None:
    lo, hi = feasible_ratio_range(n, t)
    rule = QuorumRule.build(n, t)
    r = rule.ratio
    assert 1 <= lo < r < hi
    # Both inequalities hold exactly for the chosen ratio and at the bracket's inner ends.
    for x in (r, hi) + ((lo,) if lo > 1 else ()):
        assert x ** (n - t - 1) < (x**n + 1) / 2 < x ** (n - t)
    # ... and the bracket is tight: a hair outside, an inequality fails.
    eps = Fraction(1, 2**40)
    y = hi + eps
    assert not (y ** (n - t - 1) < (y**n + 1) / 2 < y ** (n - t))
    if lo > 1:
        y = lo - eps
        assert not (y ** (n - t - 1) < (y**n + 1) / 2 < y ** (n - t))
    assert rule.commits_ranks(range(t + 1))  # the cabinet commits alone
    for s in subsets(n):
        commits = rule.commits_ranks(s)
        assert commits == brute_commits(rule, s)
        if len(s) <= t:
            assert not commits  # no t nodes commit, not only the top t
        if commits:
            assert len(s) >= t + 1
            for extra in range(n):  # monotone: supersets commit
                assert rule.commits_ranks(s | {extra})


@pytest.mark.parametrize(("n", "t"), CONFIGS)
@pytest.mark.parametrize("mode", ["majority", "all"])
def test_count_modes_exhaustive(n: int, t: int, mode: str) -> None:
    rule = QuorumRule.build(n, t, mode)
    for s in subsets(n):
        expected = len(s) >= n // 2 + 1 if mode == "majority" else len(s) == n
        assert rule.commits_ranks(s) == expected


@st.composite
def scenario(draw: st.DrawFn) -> tuple[QuorumRule, list[str], dict[str, int]]:
    n = draw(st.integers(3, 7))
    t = draw(st.integers(1, (n - 1) // 2))
    mode = draw(st.sampled_from(MODES))
    ids = [f"replica-{i}" for i in range(1, n + 1)]
    ranking = draw(st.permutations(ids))
    zero = draw(st.booleans())
    values = st.just(0) if zero else st.integers(0, 12)
    applied = {rid: draw(values) for rid in ids if draw(st.integers(0, 9)) > 0}
    return QuorumRule.build(n, t, mode), list(ranking), applied


@settings(max_examples=400, deadline=None)
@given(scenario())
def test_commit_index_matches_brute_force(case: tuple[QuorumRule, list[str], dict[str, int]]) -> None:
    rule, ranking, applied = case
    assert commit_index(rule, ranking, applied) == brute_commit_index(rule, ranking, applied)


@settings(max_examples=200, deadline=None)
@given(scenario(), st.integers(0, 12))
def test_acked_summary_agrees_with_rule(case: tuple[QuorumRule, list[str], dict[str, int]], ts: int) -> None:
    rule, ranking, applied = case
    s = acked_summary(rule, ranking, applied, ts)
    ranks = frozenset(k for k, rid in enumerate(ranking) if applied.get(rid, 0) >= ts)
    assert s["committed"] == brute_commits(rule, ranks)
    assert s["committed"] == (s["weight"] > s["threshold"]) or rule.mode == "cabinet"
    assert s["member_count"] == len(s["members"]) == rule.member_count()


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.sampled_from("abcdefg"), min_size=2, max_size=7, unique=True),
    st.data(),
)
def test_rank_properties(ids: list[str], data: st.DataObject) -> None:
    leader, followers = ids[0], ids[1:]
    latency = {rid: data.draw(st.none() | st.floats(0, 100)) for rid in followers}
    avail = {rid: data.draw(st.booleans()) for rid in followers}
    order = rank(leader, data.draw(st.permutations(followers)), latency, avail)
    assert order[0] == leader and sorted(order) == sorted(ids)
    flags = [avail[rid] for rid in order[1:]]
    assert flags == sorted(flags, reverse=True)  # unavailable last
    down = [rid for rid in order[1:] if not avail[rid]]
    assert down == sorted(down)
    assert order == rank(leader, followers, latency, avail)  # input order does not matter
