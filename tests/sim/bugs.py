"""Bugs planted in the real core, to show the simulation finds them (``SimConfig.bugs``).

Each is a small, plausible mistake in one decision, applied by patching the core for the
duration of one run (``planted``) and undone afterwards:

- ``commit_counts_errant``: only diverged replicas' positions are excluded from commits,
  so an errant or rebuilding replica counts at a position that is not a prefix of the
  log (the bug the old shell had);
- ``ack_before_quorum``: a write is acknowledged once the leader logged it;
- ``reuse_ts_after_restart``: after a restart timestamps resume above the least advanced
  replica instead of the persisted mark;
- ``skip_catchup``: a failover elects a replica without letting it apply what it lacks;
- ``no_fencing``: the fake replicas ignore the epoch check (a world bug, not a core one);
- ``lane_ignores_term``: an interactive transaction commits whatever leader term it began
  in (one begun on a leader that was behind, or whose connection was reset, commits);
- ``doubt_by_position``: the leader's in-doubt batch is resolved by its applied position
  (as before interactive transactions), which their out-of-order COMMITs raise.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from coordinator.core import cabinet, commit, doubt, failover, lanes, recovery, state
from coordinator.core.timestamps import TimestampAllocator

BUGS = ("commit_counts_errant", "ack_before_quorum", "reuse_ts_after_restart", "skip_catchup", "no_fencing",
        "lane_ignores_term", "doubt_by_position")


def _counts_errant(self: Any) -> bool:
    return not self.diverged


def _leader_commits(rule: Any, ranking: list[str], applied: dict[str, int]) -> int:
    return applied.get(ranking[0], 0)


class _ReuseAllocator(TimestampAllocator):
    @classmethod
    def recovered(cls, highest_seen: int, persisted_mark: int, window: int) -> "TimestampAllocator":
        return cls(last=0, durable=highest_seen + window, window=window)


def _check_without_catchup(st: Any) -> None:
    plan = st.failover
    if plan is not None and plan.phase == "catch_up":
        plan.t_catch = st.now
        failover._bump(st, plan)
        return
    _original_check(st)


_original_check = failover.check
_original_term = lanes.term
_original_resolve = doubt.resolve_doubt


def _any_term(st: Any) -> int | None:
    return st.leader_term if _original_term(st) is None else _original_term(st)


def _refusal_any_term(st: Any, rid: str, lane_term: int) -> str | None:
    return _original_refusal(st, rid, lanes.term(st))


_original_refusal = lanes._refusal


def _resolve_by_position(st: Any, rs: Any, present: frozenset[int]) -> None:
    d = st.in_doubt
    held = frozenset(e.ts for e in d.entries) if d is not None and rs.applied_ts >= d.entries[-1].ts else frozenset()
    _original_resolve(st, rs, held)


@contextlib.contextmanager
def planted(bugs: frozenset[str] | set[str]) -> Iterator[None]:
    unknown = set(bugs) - set(BUGS)
    assert not unknown, f"unknown planted bugs {unknown}"
    with contextlib.ExitStack() as stack:
        mp = stack.enter_context(_patcher())
        if "commit_counts_errant" in bugs:
            mp(state.ReplicaState, "counts", property(_counts_errant))
        if "ack_before_quorum" in bugs:
            mp(commit, "cabinet", _Cabinet())
        if "reuse_ts_after_restart" in bugs:
            mp(recovery, "TimestampAllocator", _ReuseAllocator)
        if "skip_catchup" in bugs:
            mp(failover, "check", _check_without_catchup)
        if "lane_ignores_term" in bugs:
            mp(lanes, "term", _any_term)
            mp(lanes, "_refusal", _refusal_any_term)
        if "doubt_by_position" in bugs:
            mp(doubt, "resolve_doubt", _resolve_by_position)
        yield


class _Cabinet:
    """``cabinet`` as commit.py sees it, with a commit index that needs only the leader."""

    def __getattr__(self, name: str) -> Any:
        return getattr(cabinet, name)

    commit_index = staticmethod(_leader_commits)


@contextlib.contextmanager
def _patcher() -> Iterator[Any]:
    saved: list[tuple[Any, str, Any]] = []

    def set_(obj: Any, name: str, value: Any) -> None:
        saved.append((obj, name, obj.__dict__[name] if name in obj.__dict__ else getattr(obj, name)))
        setattr(obj, name, value)

    try:
        yield set_
    finally:
        for obj, name, value in reversed(saved):
            setattr(obj, name, value)
