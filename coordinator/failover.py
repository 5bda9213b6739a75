"""Failover and switchover as the admin API offers them.

The procedure itself — triggers, SEER, catch-up, the epoch stored on n−t, read_only —
is the core's plan (``core/failover.py``); this module only asks for one and shapes the
answer: the old contract's ``success``, ``message``, ``old_master``, ``new_master``,
``new_leader_id`` and ``election_details`` (all numbers), beside our richer fields.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from . import views
from .core.outcomes import ApiError
from .core.seer import Election
from .deadline import Budget, wait_until
from .replicator import Replicator

START_MASTER_WAIT_S = 20.0


class Failover:
    """Asks the core for failovers and shapes their answers; remembers which master an
    operator stopped (``stopped_master``) so ``start_master`` brings that one back."""

    def __init__(self, replicator: Replicator) -> None:
        self.r = replicator
        self.stopped_master: str | None = None

    @property
    def busy(self) -> bool:
        return self.r.core.st.failover is not None

    @property
    def failovers(self) -> int:
        return self.r.core.st.counters.failovers

    @property
    def last_election(self) -> dict[str, Any] | None:
        return views.last_election(self.r.core.st.last_election)

    def dry_run(self, exclude: list[str] | tuple[str, ...] = ()) -> Election:
        return self.r.core.dry_run(exclude)

    async def failover(self, reason: str, target: str | None = None, planned: bool = False,
                       expected_leader: str | None = None) -> dict[str, Any]:
        """Move leadership away from the current leader (to ``target`` if named). With
        ``expected_leader``: only if that replica still leads (a concurrent failover may
        already have moved it; then the answer describes that one)."""
        out = await self.r.failover(reason, target, planned, expected_leader)
        if out.error is not None:
            err = out.error
            extra = dict(err.extra)
            if out.election is not None and err.code in ("ineligible_leader", "no_eligible_leader"):
                e = out.election
                extra["election"] = views.election(e) if e.leader_id else views.no_election(e)
            raise ApiError(err.status, err.code, err.message, **extra)
        return self.result()

    def result(self, message: str = "") -> dict[str, Any]:
        """The last failover as the admin API reports it."""
        last = self.last_election
        reps = self.r.replicas
        if last is None:
            lead = self.r.leader_id
            name = reps[lead].name
            return {"success": True, "changed": False, "message": message or f"{name} remains the leader",
                    "old_master": name, "new_master": name, "new_leader_id": lead, "epoch": self.r.epoch,
                    "election_details": views.election_details(lead, self.dry_run())}
        old, new = reps[last["old_leader"]].name, reps[last["new_leader"]].name
        kind = "switchover" if last["planned"] else "failover"
        message = message or f"{kind}: {old} -> {new} (epoch {last['epoch']})"
        return {"success": True, "changed": True, "message": message,
                "old_master": old, "new_master": new, "new_leader_id": last["new_leader"],
                "epoch": last["epoch"], "timings": last["timings"], "election_details": last["election"]}

    async def stop_master(self, stop: Callable[[str], Awaitable[Any]]) -> dict[str, Any]:
        """Stop the leader's server (``stop``: the control backend) and answer once the
        failover finished."""
        old = self.r.leader_id
        await stop(old)
        self.stopped_master = old
        name = self.r.replicas[old].name
        result = await self.failover(f"stop-master: {name} stopped by an operator", expected_leader=old)
        if result["new_leader_id"] == old:
            raise ApiError(503, "failover_failed", f"{name} was stopped but leadership did not move", **result)
        result["message"] = f"stopped {name}; {result['new_master']} is the new master"
        result["old_master"] = name
        return result

    async def start_master(self, start: Callable[[str], Awaitable[dict[str, Any]]], default: str) -> dict[str, Any]:
        """Start the stopped master again (``default`` if none was stopped through us); it
        rejoins as a follower and catches up, which the answer says."""
        rid = self.stopped_master or default
        result = await start(rid)
        rs = self.r.replicas[rid]
        target = self.r.commit_ts
        caught_up = await wait_until(lambda: rs.available and rs.applied_ts >= target, Budget(START_MASTER_WAIT_S),
                                     0.02)
        if caught_up and self.stopped_master == rid:
            self.stopped_master = None
        role = "leader" if rid == self.r.leader_id else "follower"
        message = f"started {rs.name}; it rejoined as {role}" + (" and caught up" if caught_up else
                                                                  " and is still catching up")
        return {"success": True, "message": message, "started": rs.name, "replica_id": rid, "role": role,
                "caught_up": caught_up, "applied_timestamp": rs.applied_ts, "current_master": self.r.leader.name,
                **{k: v for k, v in result.items() if k != "replica"}}
