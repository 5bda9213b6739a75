"""SEER leader election: pick the replica with the lowest predicted commit latency.

SEER (arXiv 2104.01355) elects the replica that would commit writes fastest,
learned from measurements, instead of an arbitrary survivor. For each candidate
we predict what a write would cost if it led:

    predicted_commit_ms = exec_ms + quorum_wait_ms
    total_ms            = predicted_commit_ms + instability_penalty_ms + catchup_ms
    score               = 1000 / (1 + total_ms)        (higher is better)

``exec_ms`` is the candidate's own execution latency; ``quorum_wait_ms`` is how
long until enough followers, ranked and weighted by Cabinet exactly as the
replication path would weight them under this leader, have applied the write.
The penalties keep a flapping or just-restarted replica from winning on one
good measurement, and ``catchup_ms`` prices replaying the log entries it lacks.

Also the optional proactive switch (``SwitchTracker``): move leadership only
when another replica is predicted clearly faster, for a sustained time, and not
too soon after the last switch — so noise never causes leader churn.

Pure: no I/O, clocks or randomness; time is a parameter.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import asdict, dataclass

from .cabinet import QuorumError, QuorumRule, rank


@dataclass(frozen=True)
class CandidateInput:
    id: str
    name: str  # instance name, e.g. "mysql-replica-2"
    healthy: bool  # reachable per the health monitor
    diverged: bool  # failed a statement the leader executed: never eligible
    rebuilding: bool  # being rebuilt: never eligible
    applied_ts: int
    exec_ms: float | None  # smoothed execution latency (None = unknown)
    rtt_ms: float | None  # smoothed coordinator<->replica round trip
    uptime_s: float  # since it last became healthy
    crash_count: int  # healthy->unhealthy transitions in total
    recent_crashes: int  # within the caller's recent window
    lag_entries: int  # committed entries it lacks


@dataclass(frozen=True)
class SeerParams:
    crash_penalty_ms: float = 50.0  # per recent crash
    min_uptime_s: float = 5.0  # below this a short-uptime penalty applies
    short_uptime_penalty_ms: float = 100.0  # scaled by (1 - uptime/min_uptime)
    catchup_ms_per_entry: float = 0.02  # replaying one missing entry from the log
    unknown_latency_ms: float = 50.0  # stands in for an unmeasured exec_ms/rtt_ms
    max_catchup_entries: int = 1_000_000  # beyond this: rebuild it instead of electing it


@dataclass(frozen=True)
class CandidateScore:
    id: str
    name: str
    eligible: bool
    reason: str | None  # why ineligible (None when eligible)
    predicted_commit_ms: float | None  # exec + quorum wait; None when it could not commit
    exec_ms: float
    quorum_wait_ms: float | None
    instability_penalty_ms: float
    catchup_ms: float
    total_ms: float | None  # predicted + penalties: what the election minimises
    score: float | None  # 1000 / (1 + total_ms); None when ineligible
    latency_ms: float | None  # measured round trip (poll latency)
    uptime_seconds: float
    replication_lag: int
    crash_count: int
    applied_ts: int

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class Election:
    leader_id: str | None
    candidates: tuple[CandidateScore, ...]  # eligible best first, then ineligible by id
    reason: str  # a human sentence: why this leader, or why none

    def winner(self) -> CandidateScore | None:
        if self.leader_id is None:
            return None
        return next(c for c in self.candidates if c.id == self.leader_id)

    def to_dict(self) -> dict[str, object]:
        """The :8005 ``/elect-leader`` reply: the winner's figures at top level."""
        w = self.winner()
        return {
            "leader_id": self.leader_id,
            "score": w.score if w else None,
            "latency_ms": w.latency_ms if w else None,
            "uptime_seconds": w.uptime_seconds if w else None,
            "replication_lag": w.replication_lag if w else None,
            "crash_count": w.crash_count if w else None,
            "predicted_commit_ms": w.predicted_commit_ms if w else None,
            "candidates": [c.to_dict() for c in self.candidates],
            "reason": self.reason,
        }


def _known(value: float | None, params: SeerParams) -> float:
    return params.unknown_latency_ms if value is None else float(value)


def _can_follow(c: CandidateInput) -> bool:
    """Whether a replica would ack writes under a new leader (an excluded one still does)."""
    return c.healthy and not c.diverged and not c.rebuilding


def follower_latency_ms(c: CandidateInput, params: SeerParams = SeerParams()) -> float:
    """A follower's ack latency: the round trip plus its own execution time."""
    return _known(c.rtt_ms, params) + _known(c.exec_ms, params)


def predict_commit_ms(
    leader: CandidateInput,
    others: Sequence[CandidateInput],
    rule: QuorumRule,
    params: SeerParams = SeerParams(),
) -> tuple[float, float | None]:
    """(leader's own exec latency, quorum wait) if ``leader`` led; wait None = cannot commit.

    Followers are ranked by ``cabinet.rank`` with ``leader`` first, so they get
    the weights the replication path would give them. Weights fall with rank and
    rank follows latency, so adding followers fastest first reaches the first
    committing set at the smallest possible latency: that follower's latency is
    the wait. Replicas not listed (fewer than n-1 others) never ack.
    """
    others = [o for o in others if o.id != leader.id]
    if 1 + len(others) > rule.n:
        raise QuorumError(f"{1 + len(others)} replicas given for a rule over n={rule.n}")
    latency = {o.id: follower_latency_ms(o, params) for o in others}
    available = {o.id: _can_follow(o) for o in others}
    ranking = rank(leader.id, [o.id for o in others], latency, available)
    exec_ms = _known(leader.exec_ms, params)
    mask = 1  # rank 0: the leader has applied the write once it has executed it
    if rule.commits_mask(mask):
        return exec_ms, 0.0
    for k, rid in enumerate(ranking[1:], start=1):
        if not available[rid]:
            break  # the unavailable ones are ranked last: nothing further acks
        mask |= 1 << k
        if rule.commits_mask(mask):
            return exec_ms, latency[rid]
    return exec_ms, None


def _instability_ms(c: CandidateInput, params: SeerParams) -> float:
    penalty = c.recent_crashes * params.crash_penalty_ms
    if params.min_uptime_s > 0 and c.uptime_s < params.min_uptime_s:
        penalty += params.short_uptime_penalty_ms * (1 - max(c.uptime_s, 0.0) / params.min_uptime_s)
    return penalty


def _ineligible_reason(c: CandidateInput, excluded: bool, params: SeerParams) -> str | None:
    if not c.healthy:
        return "unhealthy"
    if c.diverged:
        return "diverged"
    if c.rebuilding:
        return "rebuilding"
    if excluded:
        return "excluded"
    if c.lag_entries > params.max_catchup_entries:
        return (
            f"cannot catch up: lacks {c.lag_entries} entries (> {params.max_catchup_entries}); "
            "rebuild it instead"
        )
    return None


def _score(
    c: CandidateInput,
    all_: Sequence[CandidateInput],
    rule: QuorumRule,
    excluded: bool,
    params: SeerParams,
) -> CandidateScore:
    reason = _ineligible_reason(c, excluded, params)
    exec_ms, wait = _known(c.exec_ms, params), None
    if _can_follow(c):
        # Able to lead: show its prediction even when excluded or too far behind.
        exec_ms, wait = predict_commit_ms(c, all_, rule, params)
        if wait is None and reason is None:
            up = sum(1 for o in all_ if o.id != c.id and _can_follow(o))
            reason = f"no commit quorum possible: only {up} healthy follower(s) under {rule.mode}"
    instability = _instability_ms(c, params)
    catchup = max(c.lag_entries, 0) * params.catchup_ms_per_entry
    predicted = None if wait is None else exec_ms + wait
    total = None if predicted is None else predicted + instability + catchup
    eligible = reason is None
    return CandidateScore(
        id=c.id,
        name=c.name,
        eligible=eligible,
        reason=reason,
        predicted_commit_ms=predicted,
        exec_ms=exec_ms,
        quorum_wait_ms=wait,
        instability_penalty_ms=instability,
        catchup_ms=catchup,
        total_ms=total,
        score=1000.0 / (1.0 + total) if eligible and total is not None else None,
        latency_ms=c.rtt_ms,
        uptime_seconds=c.uptime_s,
        replication_lag=c.lag_entries,
        crash_count=c.crash_count,
        applied_ts=c.applied_ts,
    )


def elect(
    candidates: Sequence[CandidateInput],
    rule: QuorumRule,
    exclude: Collection[str] = (),
    params: SeerParams = SeerParams(),
    current_leader: str | None = None,
) -> Election:
    """Score every replica and pick the lowest total predicted cost.

    Ties go to the higher ``applied_ts`` (less to catch up, more likely to hold
    everything), then the smaller id, so the result does not depend on input
    order. ``current_leader`` only shapes the explanation: incumbency is not a
    tie-breaker, since a sticky leader is the ``SwitchTracker``'s job.
    """
    ids = [c.id for c in candidates]
    if len(set(ids)) != len(ids):
        raise ValueError(f"duplicate replica ids in election input: {sorted(ids)!r}")
    excluded = set(exclude)
    scores = [_score(c, candidates, rule, c.id in excluded, params) for c in candidates]
    eligible = sorted(
        (s for s in scores if s.eligible), key=lambda s: (s.total_ms, -s.applied_ts, s.id)
    )
    ineligible = sorted((s for s in scores if not s.eligible), key=lambda s: s.id)
    ordered = (*eligible, *ineligible)
    if not eligible:
        why = "; ".join(f"{s.id}: {s.reason}" for s in ineligible) or "no replicas given"
        return Election(None, ordered, f"no eligible leader ({why})")
    best = eligible[0]
    reason = f"{best.id} predicted {_fmt(best)}"
    if len(eligible) > 1:
        reason += f" vs {eligible[1].id} {eligible[1].total_ms:.1f} ms"
    if current_leader is not None and current_leader != best.id:
        cur = next((s for s in scores if s.id == current_leader), None)
        if cur is not None and cur.eligible and cur is not eligible[1]:
            reason += f" (current leader {cur.id} {cur.total_ms:.1f} ms)"
    return Election(best.id, ordered, reason)


def _fmt(s: CandidateScore) -> str:
    text = f"{s.total_ms:.1f} ms commit (exec {s.exec_ms:.1f} + quorum wait {s.quorum_wait_ms:.1f}"
    if s.instability_penalty_ms:
        text += f" + instability {s.instability_penalty_ms:.1f}"
    if s.catchup_ms:
        text += f" + catch-up {s.catchup_ms:.1f}"
    return text + ")"


@dataclass(frozen=True)
class SwitchPolicy:
    margin: float = 0.3  # the best must cost at most (1 - margin) x the current leader's total
    sustain_s: float = 10.0  # ...continuously for this long
    min_term_s: float = 60.0  # and at least this long after the last switch


@dataclass
class SwitchTracker:
    """Decides a proactive leader switch from a stream of elections (time passed in).

    A switch costs a brief write pause, so it must pay for itself: the same
    replica has to look clearly faster (``margin``) for ``sustain_s`` in a row,
    and terms last at least ``min_term_s`` so leadership cannot oscillate. A
    failed or ineligible current leader is failover's business, not this one's.
    """

    policy: SwitchPolicy
    better_since: float | None = None
    candidate: str | None = None
    last_switch: float = -math.inf

    def _reset(self) -> None:
        self.better_since = None
        self.candidate = None

    def observe(self, now: float, election: Election, current_leader: str) -> str | None:
        """The replica to switch to now, or None."""
        best = election.winner()
        current = next((c for c in election.candidates if c.id == current_leader), None)
        if (
            best is None
            or best.id == current_leader
            or current is None
            or not current.eligible
            or current.total_ms is None
            or best.total_ms is None
            or best.total_ms > current.total_ms * (1 - self.policy.margin)
        ):
            self._reset()
            return None
        if self.candidate != best.id or self.better_since is None:
            self.candidate, self.better_since = best.id, now
        sustained = now - self.better_since >= self.policy.sustain_s
        if sustained and now - self.last_switch >= self.policy.min_term_s:
            return best.id
        return None

    def switched(self, now: float) -> None:
        """Record that a switch happened at ``now``: the next one needs a new sustained lead."""
        self._reset()
        self.last_switch = now
