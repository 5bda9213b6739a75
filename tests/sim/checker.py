"""Ground truth kept outside the coordinator, checked after every step and at protocol points.

Acknowledged writes are never lost or replaced; acknowledged timestamps are unique and
increase across restarts; no acknowledgement without a committing set of replicas that
really hold the entry; one writer per epoch; every replica's log is a prefix of the
decided history (possibly followed by an undecided or an errant tail the protocol must
detect); at quiescence all replicas are identical (I1).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from typing import Any

from coordinator.core.replog import Entry
from tests.sim.base import Rec, Violation, WriteReq, mk_entry, payload_of


class Checker:
    """Ground truth kept outside the coordinator; raises Violation on the first breach."""

    def __init__(self, world: Any) -> None:
        self.w = world
        self.acked: list[tuple[int, str]] = []  # (ts, payload) in ack order
        self.acked_ts: dict[int, str] = {}
        self.canon: dict[int, tuple[int, str]] = {}  # decided history: ts -> (epoch, payload)
        self.canon_keys: list[int] = []  # sorted
        self.issued: dict[tuple[int, int], str] = {}  # (epoch, ts) -> payload, over all incarnations
        self.logged: dict[int, tuple[list[int], dict[int, Entry]]] = {}  # per incarnation: sorted ts, ts -> entry
        self.writers: dict[int, tuple[str, int]] = {}  # epoch -> (leader replica, coordinator incarnation)
        self.verified: dict[str, tuple[int, int]] = {}  # rid -> (log version, verified prefix length)
        self.last_issued: dict[int, int] = {}

    def fail(self, msg: str) -> None:
        raise Violation(msg)

    # protocol points
    def on_entries_created(self, c: Any, entries: list[Entry]) -> None:
        for e in entries:
            p = payload_of(e)
            if e.ts in self.acked_ts:
                self.fail(f"I3: timestamp {e.ts} was acknowledged for {self.acked_ts[e.ts]} and is handed out again "
                          f"for {p} (coordinator#{c.inc}, epoch {e.epoch})")
            if e.ts <= self.last_issued.get(c.inc, 0):
                self.fail(f"I3: timestamp {e.ts} not above the last one issued by coordinator#{c.inc}")
            self.last_issued[c.inc] = e.ts
            prev = self.issued.get((e.epoch, e.ts))
            if prev is not None and prev != p:
                self.fail(f"I3/I5: (epoch {e.epoch}, ts {e.ts}) issued twice ({prev} and {p}): errant detection "
                          "by (epoch, ts) can no longer tell the two histories apart")
            self.issued[(e.epoch, e.ts)] = p

    def _log_of(self, inc: int) -> tuple[list[int], dict[int, Entry]]:
        return self.logged.setdefault(inc, ([], {}))

    def on_logged(self, c: Any, entries: list[Entry]) -> None:
        keys, d = self._log_of(c.inc)
        for e in entries:
            if keys and e.ts <= keys[-1]:
                self.fail(f"coordinator#{c.inc} logged ts {e.ts} after {keys[-1]}")
            keys.append(e.ts)
            d[e.ts] = e

    def _decide(self, ts: int, epoch: int, payload: str, why: str) -> None:
        cur = self.canon.get(ts)
        if cur is not None:
            if cur != (epoch, payload):
                self.fail(f"I2: committed entry ts {ts} {cur} replaced by {(epoch, payload)} ({why})")
            return
        i = bisect_left(self.canon_keys, ts)
        if i > 0 and self.canon[self.canon_keys[i - 1]][0] > epoch:
            self.fail(f"I5: committed ts {ts} has epoch {epoch} below an earlier committed entry's "
                      f"{self.canon[self.canon_keys[i - 1]][0]}")
        if i < len(self.canon_keys) and ts < self.canon_keys[-1]:
            # a committed entry inside the committed history: only legal if every replica
            # that applied the later entries also has it; checked by the prefix check below
            pass
        self.canon[ts] = (epoch, payload)
        self.canon_keys.insert(i, ts)

    def on_commit(self, c: Any, old: int, new: int) -> None:
        keys, d = self._log_of(c.inc)
        for ts in keys[bisect_right(keys, old):bisect_right(keys, new)]:
            e = d[ts]
            self._decide(ts, e.epoch, payload_of(e), f"commit index {new} of coordinator#{c.inc}")

    def on_recovered(self, c: Any, src: list[Rec], commit_ts: int) -> None:
        """A restarted coordinator adopted ``src`` (the chosen replica's history). What a
        quorum of the probed replicas holds (up to ``commit_ts``) is committed now; the rest
        of the adopted tail commits only if this coordinator gets it onto a quorum. Every
        decided entry (acknowledged ones included) must be in the adopted history."""
        adopted = {ts: (ep, p) for ts, ep, p, _ in src}
        for ts, ep, p, _ in src:
            if ts <= commit_ts:
                self._decide(ts, ep, p, f"adopted on recovery by coordinator#{c.inc} below its commit point")
            elif ts in self.canon and self.canon[ts] != (ep, p):
                self.fail(f"I2: committed entry ts {ts} {self.canon[ts]} replaced by {(ep, p)} on recovery")
        keys, d = self._log_of(c.inc)
        for ts, ep, p, m in src:
            keys.append(ts)
            d[ts] = mk_entry(ts, ep, p, m)
        highest = max(adopted, default=0)
        for ts, (ep, p) in self.canon.items():
            if ts <= highest and adopted.get(ts) != (ep, p):
                self.fail(f"I2: committed ts {ts} ({p}) is missing from the history adopted by coordinator#{c.inc}")
        for ts, p in self.acked:
            if ts not in adopted or adopted[ts][1] != p:
                self.fail(f"I2: acknowledged ts {ts} ({p}) is missing from the history adopted by coordinator#{c.inc}")

    def on_ack(self, c: Any, req: WriteReq, applied: dict[str, int]) -> None:
        ts, p = req.ts, req.payload
        if self.acked and ts <= self.acked[-1][0]:
            self.fail(f"I3: acknowledged ts {ts} not above the previous acknowledged {self.acked[-1][0]}")
        if ts in self.acked_ts:
            self.fail(f"I3: ts {ts} acknowledged twice")
        holders = [rid for rid in c.ranking if self.w.replicas[rid].index.get(ts, (0, 0, None))[2] == p]
        rule = c.rule
        weight = sum((rule.weights[k] for k, rid in enumerate(c.ranking) if rid in holders), 0 * rule.threshold)
        min_members = {"cabinet": rule.t + 1, "majority": rule.n // 2 + 1, "all": rule.n}[rule.mode]
        if not weight > rule.threshold or len(holders) < min_members:
            self.fail(f"I4: ts {ts} ({p}) acknowledged, but only {holders} hold it (weight {float(weight):.3f}, "
                      f"threshold {float(rule.threshold):.3f}, ranking {c.ranking}, coordinator's applied view "
                      f"{applied})")
        if ts not in self.canon:
            self.fail(f"I4: ts {ts} acknowledged before it was committed")
        self.acked.append((ts, p))
        self.acked_ts[ts] = p
        self.w.sim.log(f"ack ts {ts} {p} holders {','.join(holders)}")

    def on_lead_commit(self, rep: Any, inc: int, epoch: int, entries: list[Entry]) -> None:
        prev = self.writers.setdefault(epoch, (rep.id, inc))
        if prev != (rep.id, inc):
            self.fail(f"I5: two writers in epoch {epoch}: {prev[0]} (coordinator#{prev[1]}) and {rep.id} "
                      f"(coordinator#{inc})")
        c = self.w.coord
        if c is not None and c.inc == inc and c.epoch == epoch:
            self._leader_holds_acked(rep, entries[0].ts)

    def on_new_leader(self, c: Any, rid: str) -> None:
        self._leader_holds_acked(self.w.replicas[rid], None)

    def _leader_holds_acked(self, rep: Any, below: int | None) -> None:
        for ts, p in self.acked:
            if below is not None and ts >= below:
                continue
            rec = rep.index.get(ts)
            if rec is None or rec[2] != p:
                self.fail(f"I2: leader {rep.id} writes without acknowledged ts {ts} ({p}) in its history")

    # after every step
    def check_step(self) -> None:
        for rid, rep in self.w.replicas.items():
            self._check_replica(rid, rep)

    def _check_replica(self, rid: str, rep: Any) -> None:
        """The replica's log is a prefix of the committed history, then possibly an undecided
        tail (not yet committed) or an errant tail (which the protocol must detect). A hole —
        a committed entry missing while a later committed one is present — is never legal;
        nor is a different entry at an acknowledged timestamp."""
        ver, k = self.verified.get(rid, (-1, 0))
        if ver != rep.version:
            k = 0
        log = rep.log
        while k < len(log) and self.canon.get(log[k][0]) == (log[k][1], log[k][2]):
            k += 1
        self.verified[rid] = (rep.version, k)
        if k == len(log):
            return
        prev_ts = log[k - 1][0] if k else 0
        nxt = log[k]
        i = bisect_right(self.canon_keys, prev_ts)
        expected = self.canon_keys[i] if i < len(self.canon_keys) else None
        if expected is not None and nxt[0] > expected:
            # skipped committed entry `expected`; fine only if nothing later is committed
            later = [r for r in log[k:] if self.canon.get(r[0]) == (r[1], r[2])]
            if later:
                self.fail(f"I2: {rid} holds committed ts {later[0][0]} but lacks committed ts {expected} "
                          f"(hole in its prefix)")
        a = self.acked_ts.get(nxt[0])
        if a is not None and a != nxt[2]:
            # a different entry at an acknowledged timestamp: allowed only for an errant
            # replica the coordinator will rebuild; its (epoch, ts) must differ from the log's
            ep = self.canon[nxt[0]][0]
            if ep == nxt[1]:
                self.fail(f"I2: {rid} holds ({nxt[0]}, e{nxt[1]}, {nxt[2]}) where ({nxt[0]}, e{ep}, {a}) was "
                          "acknowledged, with the same epoch: errant detection cannot see it")

    def check_quiescent(self) -> None:
        c = self.w.coord
        assert c is not None
        logs = {rid: [(r[0], r[1], r[2]) for r in rep.log] for rid, rep in self.w.replicas.items()}
        ref = logs[c.leader_id]
        for rid, lg in logs.items():
            if lg != ref:
                diff = next((i for i, (a, b) in enumerate(zip(lg, ref)) if a != b), min(len(lg), len(ref)))
                self.fail(f"I1: after quiescence {rid} differs from leader {c.leader_id} at position {diff}: "
                          f"{lg[diff:diff + 3]} vs {ref[diff:diff + 3]}")
        have = {(ts, p) for ts, _, p in ref}
        for ts, p in self.acked:
            if (ts, p) not in have:
                self.fail(f"I2: acknowledged ts {ts} ({p}) missing after quiescence")
        for ts, (_ep, p) in self.canon.items():
            if (ts, p) not in have:
                self.fail(f"I2: committed ts {ts} ({p}) missing after quiescence")


