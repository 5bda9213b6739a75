"""Failover and planned switchover: the async shell around SEER.

When the leader's server fails (refused connection at once; a hung server after
a few missed polls), the coordinator stops feeding it, takes its in-flight
batch back, elects the replica SEER predicts commits fastest, lets that replica
apply every log entry it lacks, bumps the epoch (fencing anything older), sets
``read_only`` on the others, and resumes. Only server failures trigger this —
an SQL error never does. Every phase is timed and reported in one event.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

import structlog

from . import mysqlio, schema, seer, views
from .errors import ApiError, ReplicaDown, StatementError

if TYPE_CHECKING:
    from .health import HealthTracker
    from .replication import Replicator

log = structlog.get_logger("coordinator.failover")


class FailoverManager:
    def __init__(self, replicator: "Replicator", trackers: dict[str, "HealthTracker"]) -> None:
        self.r = replicator
        self.trackers = trackers
        self.lock = asyncio.Lock()
        self.last_election: dict[str, Any] | None = None
        self.failovers = 0
        self._task: asyncio.Task[None] | None = None
        self.params = seer.SeerParams()

    # --- SEER inputs ---------------------------------------------------------------------

    def candidates(self) -> list[seer.CandidateInput]:
        now = time.monotonic()
        out = []
        for rid, rs in self.r.replicas.items():
            tr = self.trackers[rid]
            out.append(seer.CandidateInput(
                id=rid, name=rs.cfg.name, healthy=tr.healthy and rs.connected, diverged=rs.diverged,
                rebuilding=rs.rebuilding or rs.needs_rebuild, applied_ts=rs.applied_ts,
                exec_ms=rs.ack_ms if rs.ack_ms is not None else tr.latency_ms, rtt_ms=tr.latency_ms,
                uptime_s=tr.uptime_s(now), crash_count=tr.crash_count, recent_crashes=tr.recent_crashes(now),
                lag_entries=max(0, self.r.log.last_ts - rs.applied_ts),
            ))
        return out

    def dry_run(self, exclude: list[str] | tuple[str, ...] = ()) -> seer.Election:
        return seer.elect(self.candidates(), self.r.rule, exclude=exclude, params=self.params,
                          current_leader=self.r.leader_id)

    # --- triggers ------------------------------------------------------------------------

    def leader_suspected(self, rid: str, why: str, force: bool = False) -> None:
        """Called on a leader health change or a broken leader round trip; starts at
        most one failover task (it re-checks the leader before acting, unless ``force``:
        a leader that diverged from the log must step down even though it answers)."""
        if rid != self.r.leader_id or not self.r.active or self.r.fenced:
            return
        if self._task is not None and not self._task.done():
            return
        self._task = asyncio.create_task(self._auto(rid, why, force), name="failover")

    async def _auto(self, rid: str, why: str, force: bool = False) -> None:
        detected = time.monotonic()
        if not force and self.trackers[rid].healthy and not await self._leader_gone(rid):
            return  # a hiccup on the data path; the monitor still sees it answering
        try:
            await self.failover(reason=f"leader {self.r.replicas[rid].cfg.name} failed: {why}",
                                detected_at=detected, expected_leader=rid)
        except ApiError as exc:
            log.warning("failover_failed", error=exc.message)
            await asyncio.sleep(0.5)
            if self.r.leader_id == rid and (force or not self.trackers[rid].healthy):
                self._task = None
                self.leader_suspected(rid, exc.message, force)
        except Exception:
            log.exception("failover_crashed")

    async def _leader_gone(self, rid: str) -> bool:
        """A quick independent probe: the leader's worker saw an error; is it really down?"""
        ep = self.r.endpoint(rid)
        quick = mysqlio.Endpoint(ep.host, ep.port, ep.user, ep.password, 0.3, 0.3)
        conn = None
        try:
            conn = await mysqlio.connect(quick)
            await mysqlio.fetch(conn, "SELECT 1", 0.3)
            return False
        except (ReplicaDown, StatementError):
            return True
        finally:
            mysqlio.drop(conn)

    # --- the procedure --------------------------------------------------------------------

    async def failover(self, reason: str, target: str | None = None, planned: bool = False,
                       detected_at: float | None = None, expected_leader: str | None = None) -> dict[str, Any]:
        """Move leadership away from the current leader. ``expected_leader``: only if
        that replica still leads (a concurrent failover may already have handled it)."""
        r = self.r
        async with self.lock:
            if expected_leader is not None and r.leader_id != expected_leader:
                return self.result()
            t0 = time.monotonic()
            detected_at = detected_at or t0
            old = r.leader_id
            old_name = r.replicas[old].cfg.name
            if target == old:
                raise ApiError(409, "already_leader", f"{old_name} is already the leader")
            r.leading_enabled = False
            try:
                if planned:
                    await self._drain(old)
                else:
                    held = r.leader_work()
                    await r.restart_worker(old)  # cancel a round trip stuck on a hung server
                    requeued = r.take_back_leader_work(held)
                    if requeued:
                        log.info("requeued_inflight", count=requeued)
                election = self.dry_run(exclude=[old])
                if target is not None:
                    cand = next((c for c in election.candidates if c.id == target), None)
                    if cand is None or not cand.eligible:
                        why = cand.reason if cand else "unknown replica"
                        raise ApiError(409, "ineligible_leader",
                                       f"{r.replicas[target].cfg.name if cand else target} cannot lead: {why}",
                                       election=election.to_dict())
                    new = target
                else:
                    new = election.leader_id
                if new is None:
                    raise ApiError(503, "no_eligible_leader", f"no replica can take over: {election.reason}",
                                   election=election.to_dict())
                t_elect = time.monotonic()
                r.wake_all()  # the winner's worker may be idle: let it apply what it lacks now
                await self._catch_up(new)
                t_catch = time.monotonic()
                epoch = await self._bump_epoch(new)
                r.leader_id = new
                r._rerank()
                await self._read_only(new)
                t_resume = time.monotonic()
            finally:
                r.leading_enabled = True
                r.wake_all()
            self.failovers += 1
            last_ok = self.trackers[old].last_ok
            failed_since = min(detected_at, max(last_ok, detected_at - 10.0)) if not planned and last_ok else detected_at
            timings = {"detect_ms": round((t0 - failed_since) * 1000, 1), "elect_ms": round((t_elect - t0) * 1000, 1),
                       "catch_up_ms": round((t_catch - t_elect) * 1000, 1),
                       "resume_ms": round((t_resume - t_catch) * 1000, 1),
                       "total_ms": round((t_resume - failed_since) * 1000, 1)}
            details = {**views.details(new, views.figures_of(election, new)),
                       "candidates": [views.candidate(c) for c in election.candidates], "reason": election.reason}
            self.last_election = {"time": time.time(), "old_leader": old, "new_leader": new, "epoch": epoch,
                                  "reason": reason, "planned": planned, "timings": timings, "election": details}
            kind = "switchover" if planned else "failover"
            r.events.emit(kind, f"{kind}: {old_name} -> {r.replicas[new].cfg.name} (epoch {epoch}); {reason}; "
                          f"SEER: {election.reason}", old_leader=old, new_leader=new, epoch=epoch,
                          timings=timings, planned=planned)
            return self.result()

    def result(self, message: str = "") -> dict[str, Any]:
        """The last failover as the admin API reports it: the old contract's ``success``,
        ``message``, ``old_master``, ``new_master``, ``new_leader_id`` and ``election_details``
        (the new leader's SEER figures, all numbers), beside our richer fields."""
        last = self.last_election
        reps = self.r.replicas
        if last is None:
            lead = self.r.leader_id
            e = self.dry_run()
            name = reps[lead].cfg.name
            return {"success": True, "changed": False, "message": message or f"{name} remains the leader",
                    "old_master": name, "new_master": name, "new_leader_id": lead, "epoch": self.r.epoch,
                    "election_details": {**views.details(lead, views.figures_of(e, lead)),
                                         "candidates": [views.candidate(c) for c in e.candidates],
                                         "reason": e.reason}}
        old, new = reps[last["old_leader"]].cfg.name, reps[last["new_leader"]].cfg.name
        kind = "switchover" if last["planned"] else "failover"
        return {"success": True, "changed": True, "message": message or f"{kind}: {old} -> {new} (epoch {last['epoch']})",
                "old_master": old, "new_master": new, "new_leader_id": last["new_leader"],
                "epoch": last["epoch"], "timings": last["timings"], "election_details": last["election"]}

    async def repair_epoch(self) -> None:
        """A failover stored a new epoch on some replicas but not on n−t: they now refuse
        our batches. Store a newer epoch on n−t (same leader) so everyone accepts it."""
        async with self.lock:
            r = self.r
            if r.bumping_to <= r.epoch or r.fenced or not r.active:
                return
            try:
                epoch = await self._bump_epoch(r.leader_id)
            except ApiError as exc:
                log.info("epoch_repair_pending", error=exc.message)
                return
            r.wake_all()
            r.events.emit("epoch", f"epoch {epoch}: re-established on a quorum after a partly stored bump; "
                          f"leader {r.leader.cfg.name} unchanged", epoch=epoch, leader=r.leader_id)

    async def _drain(self, old: str) -> None:
        """Planned switch: let the leader finish its batch in flight (nothing is lost
        or run twice), then stop it taking new ones."""
        deadline = time.monotonic() + self.r.cfg.replication.write_timeout_s
        while self.r._executing or self.r._in_doubt is not None:
            if time.monotonic() > deadline:
                raise ApiError(503, "busy", "the leader did not finish its current batch in time; retry")
            await asyncio.sleep(0.002)

    async def _catch_up(self, new: str) -> None:
        rs = self.r.replicas[new]
        deadline = time.monotonic() + self.r.cfg.replication.write_timeout_s
        while rs.applied_ts < self.r.log.last_ts:
            if time.monotonic() > deadline or not rs.available:
                raise ApiError(503, "catch_up_failed",
                               f"{rs.cfg.name} did not catch up with the log in time "
                               f"(applied {rs.applied_ts} of {self.r.log.last_ts})")
            await asyncio.sleep(0.002)

    async def _bump_epoch(self, new: str) -> int:
        """Store epoch+1 on at least n−t replicas before any entry uses it, so a
        coordinator that restarts later always sees it and goes higher. A stored
        epoch above ours means another coordinator took over: stop."""
        r = self.r
        t = r.cfg.mysql.query_timeout_s
        # Never reuse a number an earlier (partly stored) attempt may have left on a replica.
        old = max(r.epoch, r.bumping_to)
        epoch = old + 1
        r.bumping_to = epoch  # in-flight batches of the old epoch now fail their fence: retry, not stop

        async def bump(rid: str) -> bool:
            conn = None
            try:
                conn = await mysqlio.connect(r.endpoint(rid))
                snap = await schema.read_state(conn, r.schema, t)
                if snap.epoch > epoch:
                    r.fence(rid)
                    return False
                return await schema.bump_epoch(conn, r.schema, epoch, new, t, expect_at_most=old)
            except (ReplicaDown, StatementError):
                return False
            finally:
                mysqlio.drop(conn)

        targets = [rid for rid, rs in r.replicas.items() if self.trackers[rid].healthy]
        won = sum(await asyncio.gather(*(bump(rid) for rid in targets)))
        if r.fenced:
            raise ApiError(503, "fenced", "another coordinator holds a newer epoch; this one stopped")
        need = len(r.replicas) - r.rule.t
        if won < need:
            # bumping_to stays: replicas that took it fence our old-epoch batches, which
            # then retry (not stop) until a later attempt stores a higher epoch on n−t.
            raise ApiError(503, "epoch_not_persisted",
                           f"the new epoch reached only {won} replicas; {need} are needed before it can be used")
        r.epoch = epoch
        r.bumping_to = 0
        return epoch

    async def _read_only(self, new: str) -> None:
        """Only the leader accepts writes from other clients; our own sessions have SUPER."""
        r = self.r

        async def set_ro(rid: str, on: bool) -> None:
            conn = None
            try:
                conn = await mysqlio.connect(r.endpoint(rid))
                await mysqlio.run(conn, f"SET GLOBAL read_only={'ON' if on else 'OFF'}", 1.0)
            except (ReplicaDown, StatementError) as exc:
                log.info("read_only_skipped", replica=rid, error=str(exc))
            finally:
                mysqlio.drop(conn)

        await asyncio.gather(*(set_ro(rid, rid != new) for rid in r.replicas if self.trackers[rid].healthy))
