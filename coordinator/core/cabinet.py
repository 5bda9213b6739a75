"""Cabinet weighted quorum: which sets of replicas may acknowledge a write.

Cabinet (VLDB 2025, arXiv 2503.08914) gives the n replicas geometric weights
w_i = r^(n-i) by rank (rank 1, the leader, is heaviest; followers are ranked by
how fast they have been acking). A write commits once the replicas that applied
it weigh strictly more than half the total, CT = W/2. The ratio r is chosen so

    r^(n-t-1) < (r^n + 1)/2 < r^(n-t)

which is exactly "the t+1 heaviest ranks together exceed CT" (left) and "the t
heaviest ranks together stay below CT" (right). Hence the fast, responsive
*cabinet* of t+1 nodes can commit on its own, yet no t nodes ever can, so every
commit quorum has at least t+1 members and any n-t replicas intersect it — the
flexible-quorum argument that keeps acknowledged writes safe across elections
even though the ranking (and so every node's weight) changes every round.

All arithmetic is exact (``Fraction``): a float rounding a weight sum to just
above CT would acknowledge a write a single node holds. ``majority`` and ``all``
modes are expressed in the same "weight strictly greater than threshold" form
with unit weights (ratio 1): majority has threshold n/2, all has n - 1/2.

Pure: no I/O, clocks or randomness. The commit decision for every subset of
ranks is precomputed into a 2^n table (n <= 7, so 128 entries) at build time,
so the hot path (``commit_index`` after every applied batch) is bit operations.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from functools import lru_cache

MODES = ("cabinet", "majority", "all")
MIN_REPLICAS = 3
MAX_REPLICAS = 7
# Bisection steps: the feasible-range ends are known to within 2^-64.
_BISECT_STEPS = 64


class QuorumError(ValueError):
    """A quorum rule was asked for with an impossible n, t, mode or ranking."""


def _check_n_t(n: int, t: int) -> None:
    if isinstance(n, bool) or not isinstance(n, int) or not MIN_REPLICAS <= n <= MAX_REPLICAS:
        raise QuorumError(
            f"replica count n={n!r} is out of range: the coordinator supports "
            f"{MIN_REPLICAS} to {MAX_REPLICAS} replicas"
        )
    t_max = (n - 1) // 2
    if isinstance(t, bool) or not isinstance(t, int) or not 1 <= t <= t_max:
        raise QuorumError(
            f"failure threshold t={t!r} is out of range for n={n} replicas: "
            f"it must satisfy 1 <= t <= {t_max} (floor((n-1)/2))"
        )


def _check_mode(mode: str) -> None:
    if mode not in MODES:
        raise QuorumError(f"unknown quorum mode {mode!r}: expected one of {', '.join(MODES)}")


def _cabinet_can_commit(r: Fraction, n: int, t: int) -> bool:
    """Left inequality: the t+1 heaviest ranks weigh more than CT."""
    return r ** (n - t - 1) < (r**n + 1) / 2


def _t_nodes_cannot_commit(r: Fraction, n: int, t: int) -> bool:
    """Right inequality: the t heaviest ranks weigh less than CT."""
    return (r**n + 1) / 2 < r ** (n - t)


def is_feasible_ratio(r: Fraction, n: int, t: int) -> bool:
    """Exact check of r > 1 and both Cabinet inequalities."""
    return r > 1 and _cabinet_can_commit(r, n, t) and _t_nodes_cannot_commit(r, n, t)


@lru_cache(maxsize=None)
def feasible_ratio_range(n: int, t: int) -> tuple[Fraction, Fraction]:
    """Open interval (lo, hi) of ratios r that satisfy both Cabinet inequalities.

    Each inequality is a polynomial with two sign changes, so (Descartes) it has
    one root at r = 1 and at most one more: the right one holds on (1, hi) and
    the left one on (lo, inf), with lo = 1 when 2t + 2 >= n (its derivative at 1
    is 2t + 2 - n). Both ends are found by exact bisection and returned as inner
    approximations within 2^-64 of the true bound (lo is exactly 1 when the
    bound is 1), so every r with lo < r < hi is feasible.
    """
    _check_n_t(n, t)
    # Right inequality holds just above 1 (derivative n - 2t > 0) and fails at 2
    # (2^n + 1 > 2 * 2^(n-t) because n-t <= n-1).
    inside, outside = Fraction(1), Fraction(2)
    for _ in range(_BISECT_STEPS):
        mid = (inside + outside) / 2
        if _t_nodes_cannot_commit(mid, n, t):
            inside = mid
        else:
            outside = mid
    hi = inside
    if 2 * t + 2 >= n:
        lo = Fraction(1)
    else:
        outside, inside = Fraction(1), hi
        if not _cabinet_can_commit(inside, n, t):
            raise QuorumError(f"no feasible Cabinet ratio exists for n={n}, t={t}")
        for _ in range(_BISECT_STEPS):
            mid = (inside + outside) / 2
            if _cabinet_can_commit(mid, n, t):
                inside = mid
            else:
                outside = mid
        lo = inside
    if not (lo < hi and hi > 1):
        raise QuorumError(f"no feasible Cabinet ratio exists for n={n}, t={t}")
    return lo, hi


@lru_cache(maxsize=None)
def choose_ratio(n: int, t: int) -> Fraction:
    """A simple rational near the middle of the feasible range, verified exactly.

    The midpoint keeps a margin from both ends; rounding it to a small
    denominator (e.g. 7/5 for n=4, t=1) keeps weights readable on the dashboard
    without changing any commit decision, since any ratio inside the range is
    equally correct.
    """
    lo, hi = feasible_ratio_range(n, t)
    mid = (lo + hi) / 2
    for max_den in (10, 100, 1000, 10**6):
        r = mid.limit_denominator(max_den)
        if lo < r < hi and is_feasible_ratio(r, n, t):
            return r
    if not is_feasible_ratio(mid, n, t):  # pragma: no cover - the range guarantees it
        raise QuorumError(f"no feasible Cabinet ratio exists for n={n}, t={t}")
    return mid


@dataclass(frozen=True)
class QuorumRule:
    """One commit rule: weights by rank, total W, threshold, and the decision table.

    ``weights[k]`` is the weight of rank k (rank 0 = leader). A set of ranks
    commits iff its weight is strictly greater than ``threshold``. In cabinet
    mode threshold = CT = W/2; majority and all use unit weights (``ratio`` 1),
    total n and thresholds n/2 and n - 1/2, so users read every mode the same way.
    """

    n: int
    t: int
    mode: str
    ratio: Fraction
    weights: tuple[Fraction, ...]
    total: Fraction
    threshold: Fraction
    _table: tuple[bool, ...] = field(default=(), repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_n_t(self.n, self.t)
        _check_mode(self.mode)
        if len(self.weights) != self.n:
            raise QuorumError(f"expected {self.n} weights, got {len(self.weights)}")
        table = []
        for mask in range(1 << self.n):
            weight = sum((w for k, w in enumerate(self.weights) if mask >> k & 1), Fraction(0))
            table.append(weight > self.threshold)
        object.__setattr__(self, "_table", tuple(table))

    @classmethod
    def build(cls, n: int, t: int = 1, mode: str = "cabinet") -> QuorumRule:
        """The rule for n replicas, failure threshold t and a mode (cached: rules are immutable)."""
        _check_n_t(n, t)
        _check_mode(mode)
        return _build(n, t, mode)

    @classmethod
    def _build_uncached(cls, n: int, t: int, mode: str) -> QuorumRule:
        if mode == "cabinet":
            ratio = choose_ratio(n, t)
            weights = tuple(ratio ** (n - 1 - k) for k in range(n))
            total = sum(weights, Fraction(0))
            threshold = total / 2
        else:
            ratio = Fraction(1)
            weights = (Fraction(1),) * n
            total = Fraction(n)
            threshold = Fraction(n, 2) if mode == "majority" else Fraction(2 * n - 1, 2)
        return cls(n, t, mode, ratio, weights, total, threshold)

    def with_mode(self, mode: str) -> QuorumRule:
        return QuorumRule.build(self.n, self.t, mode)

    def commits_mask(self, mask: int) -> bool:
        """Decision for a bitmask of ranks (bit k = rank k)."""
        return self._table[mask]

    def commits_ranks(self, ranks: Iterable[int]) -> bool:
        mask = 0
        for k in ranks:
            if not 0 <= k < self.n:
                raise QuorumError(f"rank {k} is out of range for n={self.n}")
            mask |= 1 << k
        return self._table[mask]

    def member_count(self) -> int:
        """Size of the smallest committing set: the cabinet (t+1), a majority, or all."""
        if self.mode == "cabinet":
            return self.t + 1
        if self.mode == "majority":
            return self.n // 2 + 1
        return self.n


@lru_cache(maxsize=None)
def _build(n: int, t: int, mode: str) -> QuorumRule:
    return QuorumRule._build_uncached(n, t, mode)


def rank(
    leader: str,
    followers: Sequence[str],
    latency_ms: Mapping[str, float | None],
    available: Mapping[str, bool],
) -> list[str]:
    """Order replicas for weighting: leader, responsive followers, then the rest.

    Followers that are available come by ascending recent ack latency (unknown
    latency after every known one), ties by id so the order — and therefore the
    weights — are a pure function of the inputs. Unavailable or diverged
    followers (``available`` false or missing) take the lowest weights, by id.
    """
    up: list[tuple[bool, float, str]] = []
    down: list[str] = []
    for rid in followers:
        if rid == leader:
            continue
        if available.get(rid, False):
            lat = latency_ms.get(rid)
            up.append((lat is None, 0.0 if lat is None else float(lat), rid))
        else:
            down.append(rid)
    up.sort()
    down.sort()
    return [leader, *(rid for _, _, rid in up), *down]


def _check_ranking(rule: QuorumRule, ranking: Sequence[str]) -> None:
    if len(ranking) != rule.n or len(set(ranking)) != rule.n:
        raise QuorumError(f"ranking must list {rule.n} distinct replicas, got {list(ranking)!r}")


def weights_for(rule: QuorumRule, ranking: Sequence[str]) -> dict[str, Fraction]:
    _check_ranking(rule, ranking)
    return {rid: rule.weights[k] for k, rid in enumerate(ranking)}


def cabinet_members(rule: QuorumRule, ranking: Sequence[str]) -> list[str]:
    """The heaviest ``member_count()`` replicas: the smallest set that can commit."""
    _check_ranking(rule, ranking)
    return list(ranking[: rule.member_count()])


def commit_index(rule: QuorumRule, ranking: Sequence[str], applied: Mapping[str, int]) -> int:
    """Largest T such that the replicas with applied >= T commit under ``rule`` (0 if none).

    Adding replicas in descending ``applied`` order, the first prefix that
    commits gives the answer: its last replica's value T is reached by a
    superset of that prefix (weights are positive, so supersets commit), while
    every larger T corresponds to an earlier prefix that did not commit.
    Missing replicas count as applied 0.
    """
    if len(ranking) != rule.n:
        _check_ranking(rule, ranking)
    values = [applied.get(rid, 0) for rid in ranking]
    table = rule._table
    mask = 0
    for k in sorted(range(rule.n), key=values.__getitem__, reverse=True):
        mask |= 1 << k
        if table[mask]:
            return max(values[k], 0)
    return 0


def acked_summary(
    rule: QuorumRule, ranking: Sequence[str], applied: Mapping[str, int], ts: int
) -> dict[str, object]:
    """What the write reply's ``quorum`` object shows for timestamp ``ts``."""
    members = cabinet_members(rule, ranking)
    acked: list[str] = []
    weight = Fraction(0)
    mask = 0
    for k, rid in enumerate(ranking):
        if applied.get(rid, 0) >= ts:
            acked.append(rid)
            weight += rule.weights[k]
            mask |= 1 << k
    return {
        "mode": rule.mode,
        "members": members,
        "acked": acked,
        "weight": float(weight),
        "threshold": float(rule.threshold),
        "members_acked": sum(1 for rid in members if applied.get(rid, 0) >= ts),
        "member_count": rule.member_count(),
        "committed": rule._table[mask],
    }
