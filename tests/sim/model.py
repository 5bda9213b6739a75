"""Deterministic simulation of the coordinator: one seed drives everything.

A fake clock (integer ms) and an event heap; a fake network (per-link delay,
jitter, drops, partitions) carrying request/reply messages between one model
coordinator and n fake replicas; a nemesis that kills, restarts, pauses,
resumes, delays and partitions replicas (the leader included, at most t at a
time) and kills/restarts the coordinator (losing all its memory).

The model coordinator mirrors the async shell (replication.py, failover.py,
catchup.py, service.py, monitor.py) as explicit state machines, and every
*decision* goes to the pure modules: ``cabinet.rank`` / ``commit_index`` (commit
and ranking), ``seer.elect`` (leader choice), ``TimestampAllocator`` (timestamps
and marks), ``HealthTracker`` (failure detection), ``ReplicatedLog`` (log tail,
``after``, ``trim``, ``get``, floor bookkeeping).

The ``Checker`` keeps ground truth outside the coordinator and is called after
every step (and at a few protocol points): acknowledged writes never lost or
replaced, acked timestamps unique and increasing across restarts, no ack without
a committing set of replicas that really hold the entry, one writer per epoch,
and at quiescence identical replicas (I1).
"""

from __future__ import annotations

import hashlib
import heapq
import random
from bisect import bisect_left, bisect_right
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Any, Callable

from coordinator import cabinet, seer
from coordinator.health import HealthTracker, Outcome
from coordinator.replog import Entry, EntryKind, ReplicatedLog, Statement
from coordinator.timestamps import TimestampAllocator

# Deliberate model bugs, for the "the checker can fail" tests.
BUGS = ("ack_before_quorum", "reuse_ts_after_restart", "skip_catchup", "no_fencing")

# Behaviours of the current shell that this simulation showed to be unsafe. By default the
# model runs a corrected version; listing a quirk in ``SimConfig.shell_quirks`` reproduces
# the shell as written (see the known-issue tests).
#  rebuild_trusts_source: catchup.rebuild copies a source whose applied position is not a
#    point of the log (e.g. the leader holding an in-doubt batch that is later re-queued)
#    and adopts that position unchecked; the copy's extra entries are never detected.
#  peer_catchup_overshoots: catchup.from_peer applies whole chunks of a peer's log, past
#    the in-memory floor, so it can copy such an unlogged tail too.
#  commit_counts_errant: replication.applied_map zeroes only diverged replicas, so a replica
#    flagged errant (needs_rebuild) still counts at its errant applied_ts; after a coordinator
#    restart reuses never-committed timestamps below it, writes are acknowledged without quorum.
SHELL_QUIRKS = ("rebuild_trusts_source", "peer_catchup_overshoots", "commit_counts_errant")


class Violation(AssertionError):
    """An invariant did not hold."""


class Stuck(Exception):
    """Liveness: the healed cluster did not converge, for a reason diagnosed as known."""


@dataclass(frozen=True)
class SimConfig:
    n: int = 3
    t: int = 1
    mode: str = "cabinet"
    steps: int = 300
    # Scaled-down versions of the real defaults (config.py), same ratios.
    query_timeout_ms: int = 1000  # mysql.query_timeout_s
    write_timeout_ms: int = 2000  # replication.write_timeout_s
    poll_interval_ms: int = 200  # monitor.poll_interval_ms
    poll_timeout_ms: int = 300  # monitor.poll_timeout_ms
    misses_allowed: int = 3  # monitor.missed_polls_unhealthy
    retry_ms: int = 200  # replication.retry_interval_s
    max_batch: int = 8  # replication.max_batch_entries
    # None: chosen per seed (small values exercise trims, floors and mark renewal).
    memory_log_entries: int | None = None
    window: int | None = None
    drop_p: float | None = None
    base_delay_ms: int = 1
    jitter_ms: int = 3
    p_write: float = 0.6
    p_fault: float = 0.12
    max_step_ms: int = 60
    quiesce_ms: int = 60_000
    bugs: frozenset[str] = frozenset()
    shell_quirks: frozenset[str] = frozenset()
    strict_liveness: bool = False  # treat "stuck: no replica can serve a rebuild" as a violation


def mk_entry(ts: int, epoch: int, payload: str, mark: int = 0) -> Entry:
    return Entry(ts, epoch, EntryKind.WRITE, (Statement(payload),), 0, 0, 0, mark)


def payload_of(e: Entry) -> str:
    return e.statements[0].sql


Rec = tuple[int, int, str, int]  # a replica's log row: (ts, epoch, payload, mark)


# --- engine -----------------------------------------------------------------------------


class Sim:
    """Fake clock + event heap. Ties break by insertion order, so runs are reproducible."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.now = 0
        self._heap: list[tuple[int, int, Callable[..., None], tuple[Any, ...]]] = []
        self._seq = 0
        self.trace: list[str] = []
        self._digest = hashlib.sha256()
        self.events = 0

    def at(self, delay_ms: int, fn: Callable[..., None], *args: Any) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (self.now + max(0, int(delay_ms)), self._seq, fn, args))

    def run_until(self, t: int, after_event: Callable[[], None] | None = None) -> None:
        while self._heap and self._heap[0][0] <= t:
            when, _, fn, args = heapq.heappop(self._heap)
            self.now = when
            self.events += 1
            fn(*args)
            if after_event is not None:
                after_event()
        self.now = max(self.now, t)

    def log(self, msg: str) -> None:
        line = f"{self.now:>7} {msg}"
        self.trace.append(line)
        self._digest.update(line.encode())

    def digest(self) -> str:
        d = self._digest.copy()
        d.update(f"events={self.events} now={self.now}".encode())
        return d.hexdigest()


class Network:
    """Coordinator <-> replica links: delay per link, jitter, random drops, partitions.
    A partition cuts both directions, including messages already in flight."""

    def __init__(self, sim: Sim, base_ms: int, jitter_ms: int, drop_p: float) -> None:
        self.sim = sim
        self.base_ms, self.jitter_ms, self.drop_p = base_ms, jitter_ms, drop_p
        self.partitioned: set[str] = set()
        self.extra_ms: dict[str, int] = {}

    def send(self, rid: str, fn: Callable[..., None], *args: Any) -> None:
        if rid in self.partitioned:
            return
        if self.drop_p and self.sim.rng.random() < self.drop_p:
            return
        delay = self.base_ms + self.sim.rng.randint(0, self.jitter_ms) + self.extra_ms.get(rid, 0)
        self.sim.at(delay, self._arrive, rid, fn, args)

    def _arrive(self, rid: str, fn: Callable[..., None], args: tuple[Any, ...]) -> None:
        if rid not in self.partitioned:
            fn(*args)


# --- replicas ------------------------------------------------------------------------------


@dataclass
class Request:
    inc: int  # coordinator incarnation
    channel: str  # "worker" (the applier's one connection) or a one-shot ("aux", "monitor")
    gen: int  # connection generation on the worker channel
    op: str
    args: tuple[Any, ...]
    call_id: int


@dataclass
class Snapshot:
    epoch: int
    applied_ts: int
    applied_epoch: int
    ts_mark: int
    leader_id: str
    log_floor: int = 0  # persisted logs are never trimmed in the model


class FakeReplica:
    """A MySQL server with the coordinator's state row and log table. Committed data
    is durable (a crash loses nothing committed); a paused server holds requests and
    runs them on resume; a killed server refuses; connections die with the process."""

    def __init__(self, world: "World", rid: str) -> None:
        self.world = world
        self.id = rid
        self.log: list[Rec] = []
        self.index: dict[int, Rec] = {}
        self.version = 0
        self.epoch = 0
        self.ts_mark = 0
        self.leader_id = ""
        self.up = True
        self.paused = False
        self.boot = 0
        self.inbox: list[Request] = []
        self.conns: dict[tuple[int, str], tuple[int, int]] = {}
        self.crash_after_lead = False  # nemesis: die right after committing a leader batch

    @property
    def applied_ts(self) -> int:
        return self.log[-1][0] if self.log else 0

    @property
    def applied_epoch(self) -> int:
        return self.log[-1][1] if self.log else 0

    def snapshot(self) -> Snapshot:
        return Snapshot(self.epoch, self.applied_ts, self.applied_epoch, self.ts_mark, self.leader_id)

    # lifecycle
    def kill(self) -> None:
        self.up, self.paused, self.inbox = False, False, []
        self.conns.clear()

    def restart(self) -> None:
        self.up = True
        self.boot += 1

    def resume(self) -> None:
        self.paused = False
        held, self.inbox = self.inbox, []
        for req in held:
            if not self.up or self.paused:
                break
            self._handle(req)

    # transport
    def deliver(self, req: Request) -> None:
        if not self.up:
            self._reply(req, ("refused",))
        elif self.paused:
            self.inbox.append(req)
        else:
            self._handle(req)

    def _reply(self, req: Request, result: tuple[Any, ...]) -> None:
        self.world.net.send(self.id, self.world.reply, req.inc, req.call_id, result)

    def _handle(self, req: Request) -> None:
        key = (req.inc, req.channel)
        if req.channel == "worker":
            if req.op == "open":
                self.conns[key] = (req.gen, self.boot)  # and KILL the previous applier thread
            elif self.conns.get(key) != (req.gen, self.boot):
                return  # the connection was killed: the statement never runs
        result = getattr(self, "op_" + req.op)(req, *req.args)
        if result is None:
            return  # died before answering
        self._reply(req, result)

    # operations (each one transaction)
    def _set_log(self, recs: list[Rec]) -> None:
        self.log = recs
        self.index = {r[0]: r for r in recs}
        self.version += 1

    def op_open(self, req: Request) -> tuple[Any, ...]:
        return ("ok", self.snapshot())

    op_state = op_open

    def op_poll(self, req: Request) -> tuple[Any, ...]:
        return ("ok", self.applied_ts)

    def op_commit(self, req: Request, epoch: int, entries: list[Entry], role: str) -> tuple[Any, ...] | None:
        """Leader commit or follower batch: log rows + state row in one transaction."""
        if self.epoch > epoch and "no_fencing" not in self.world.cfg.bugs:
            return ("fenced", self.epoch)  # CHECK (epoch_seen = epoch) trips
        if entries[0].ts <= self.applied_ts or any(a.ts >= b.ts for a, b in zip(entries, entries[1:])):
            return ("stmt_error", f"duplicate log key {entries[0].ts} (applied {self.applied_ts})")
        mark = next((e.mark for e in reversed(entries) if e.mark), None)
        recs = [(e.ts, e.epoch, payload_of(e), e.mark) for e in entries]
        self.log = self.log + recs
        for r in recs:
            self.index[r[0]] = r
        self.version += 1
        self.epoch = max(self.epoch, epoch)
        if mark is not None:
            self.ts_mark = mark
        if role == "lead":
            self.world.checker.on_lead_commit(self, req.inc, epoch, entries)
            if self.crash_after_lead:
                self.crash_after_lead = False
                self.world.nemesis_kill(self, "crashed right after committing a leader batch")
                return None
        return ("ok",)

    def op_bump(self, req: Request, epoch: int, leader: str) -> tuple[Any, ...]:
        old = self.epoch
        if self.epoch < epoch:
            self.epoch, self.leader_id = epoch, leader
        return ("ok", old)

    def op_probe(self, req: Request) -> tuple[Any, ...]:
        return ("ok", self.snapshot(), list(self.log))

    def op_read_log(self, req: Request, after: int, limit: int) -> tuple[Any, ...]:
        i = bisect_right([r[0] for r in self.log], after)
        return ("ok", [mk_entry(ts, ep, p, m) for ts, ep, p, m in self.log[i:i + limit]])

    def op_dump(self, req: Request) -> tuple[Any, ...]:
        return ("ok", self.snapshot(), list(self.log))

    def op_install(self, req: Request, recs: list[Rec], epoch: int) -> tuple[Any, ...]:
        if self.epoch > epoch and "no_fencing" not in self.world.cfg.bugs:
            return ("fenced", self.epoch)
        self._set_log(list(recs))
        self.epoch = max(self.epoch, epoch)
        self.ts_mark = max([r[3] for r in recs if r[3]], default=self.ts_mark)
        return ("ok",)

    def op_ping(self, req: Request) -> tuple[Any, ...]:
        return ("ok",)


# --- the model coordinator --------------------------------------------------------------------


@dataclass
class WriteReq:
    wid: int
    payload: str
    deadline: int
    done: bool = False
    outcome: str = ""
    ts: int = 0
    logged: bool = False


@dataclass
class RState:
    """replication.ReplicaState plus the worker's own bookkeeping."""

    id: str
    applied_ts: int = 0
    applied_epoch: int = 0
    connected: bool = False
    diverged: bool = False
    needs_rebuild: bool = False
    rebuilding: bool = False
    healthy: bool = False
    ack_ms: float | None = None
    conn: bool = False
    gen: int = 0
    busy: int = 0  # call id of the outstanding round trip (0 = none)
    sleeping: bool = False

    @property
    def available(self) -> bool:
        return self.connected and self.healthy and not (self.diverged or self.needs_rebuild or self.rebuilding)


class Coordinator:
    """One coordinator process. ``dead`` once killed: its timers and replies are ignored,
    but the requests it already sent may still arrive (zombies)."""

    def __init__(self, world: "World", inc: int) -> None:
        self.w = world
        self.sim = world.sim
        self.cfg = world.cfg
        self.inc = inc
        self.dead = False
        c = self.cfg
        self.rule = cabinet.QuorumRule.build(c.n, c.t, c.mode)
        self.ids = list(world.replicas)
        self.rs = {rid: RState(rid) for rid in self.ids}
        self.trackers = {rid: HealthTracker(misses_allowed=c.misses_allowed) for rid in self.ids}
        self.leader_id = self.ids[0]
        self.epoch = 0
        self.log = ReplicatedLog()
        self.alloc = TimestampAllocator(window=world.window)
        self.commit_ts = 0
        self.active = False
        self.fenced = False
        self.leading_enabled = True
        self.ranking: list[str] = []
        self.queue: deque[WriteReq] = deque()
        self.waiters: deque[WriteReq] = deque()
        self.marks: deque[tuple[int, int]] = deque()
        self.in_doubt: tuple[list[Entry], list[WriteReq]] | None = None
        self.executing: list[WriteReq] = []
        self.calls: dict[int, tuple[str, int, Callable[[tuple[Any, ...]], None]]] = {}
        self._call_seq = 0
        self.fo: dict[str, Any] | None = None
        self.params = seer.SeerParams()
        self._rerank()

    # timers and calls -------------------------------------------------------------------
    def at(self, delay: int, fn: Callable[..., None], *args: Any) -> None:
        self.sim.at(delay, self._guard, fn, args)

    def _guard(self, fn: Callable[..., None], args: tuple[Any, ...]) -> None:
        if not self.dead:
            fn(*args)

    def call(self, rid: str, channel: str, op: str, args: tuple[Any, ...], timeout_ms: int,
             cb: Callable[[tuple[Any, ...]], None], gen: int = 0) -> int:
        self._call_seq += 1
        cid = self._call_seq
        self.calls[cid] = (rid, self.sim.now, cb)
        req = Request(self.inc, channel, gen, op, args, cid)
        self.w.net.send(rid, self.w.replicas[rid].deliver, req)
        self.at(timeout_ms, self._complete, cid, ("timeout",))
        return cid

    def _complete(self, cid: int, result: tuple[Any, ...]) -> None:
        entry = self.calls.pop(cid, None)
        if entry is not None:
            entry[2](result)

    def elapsed(self, cid: int) -> int:
        return self.sim.now - self.calls[cid][1] if cid in self.calls else 0

    # start-up recovery (service._recover) -------------------------------------------------
    def start(self) -> None:
        self.sim.log(f"coordinator#{self.inc} starts: recovery")
        for rid in self.ids:
            self.at(0, self._poll, rid)
        self._recover_round()

    def _recover_round(self) -> None:
        probes: dict[str, tuple[Snapshot, list[Rec]] | None] = {}

        def got(rid: str, res: tuple[Any, ...]) -> None:
            probes[rid] = (res[1], res[2]) if res[0] == "ok" else None
            if len(probes) == len(self.ids):
                self._recover({k: v for k, v in ((r, probes[r]) for r in self.ids) if v is not None})

        for rid in self.ids:
            self.call(rid, "aux", "probe", (), self.cfg.query_timeout_ms, lambda res, rid=rid: got(rid, res))

    def _recover(self, probes: dict[str, tuple[Snapshot, list[Rec]]]) -> None:
        need = self.cfg.n - self.rule.t
        if len(probes) < need:
            self.at(1000, self._recover_round)
            return
        order = list(probes)
        source = max(order, key=lambda r: (probes[r][0].applied_epoch, probes[r][0].applied_ts))
        snap, src_log = probes[source]
        low = min(p[0].applied_ts for p in probes.values())
        limit = self.w.memory_log_entries
        floor = max(low, snap.log_floor - 1, snap.applied_ts - limit)
        floor_epoch = None
        if floor:
            after = [r for r in src_log if r[0] > floor - 1][: limit + 1]
            if after and after[0][0] == floor:
                floor_epoch = after[0][1]
            recs = [r for r in after if floor < r[0] <= snap.applied_ts]
        else:
            recs = [r for r in src_log[:limit] if r[0] <= snap.applied_ts]
        epoch = max(p[0].epoch for p in probes.values()) + 1
        leader = snap.leader_id if snap.leader_id in self.rs else self.ids[0]
        acks: dict[str, bool] = {}

        def bumped(rid: str, res: tuple[Any, ...]) -> None:
            acks[rid] = res[0] == "ok"
            if len(acks) < len(probes):
                return
            if sum(acks.values()) < need:
                self.at(1000, self._recover_round)
                return
            highest = snap.applied_ts
            self.epoch, self.leader_id = epoch, leader
            if "reuse_ts_after_restart" in self.cfg.bugs:
                self.alloc = TimestampAllocator.recovered(low, 0, self.w.window)
            else:
                self.alloc = TimestampAllocator.recovered(highest, max(p[0].ts_mark for p in probes.values()),
                                                          self.w.window)
            entries = [mk_entry(*r) for r in recs]
            self.log.reset(last_ts=floor, floor_epoch=floor_epoch)
            self.log.append(entries)
            self.log.last_ts = max(self.log.last_ts, highest)
            self.commit_ts = highest
            for rid, (s, _) in probes.items():
                self.rs[rid].applied_ts, self.rs[rid].applied_epoch = s.applied_ts, s.applied_epoch
            self.active = True
            self.sim.log(f"coordinator#{self.inc} recovered: epoch {epoch}, leader {leader}, source {source} "
                         f"up to ts {highest}, floor {floor}, next ts {self.alloc.last + 1}")
            self.w.checker.on_recovered(self, [r for r in src_log if r[0] <= highest])
            for r in self.ids:
                self.kick(r)
            self.at(1000, self._watchdog)

        for rid in order:
            self.call(rid, "aux", "bump", (epoch, leader), self.cfg.query_timeout_ms,
                      lambda res, rid=rid: bumped(rid, res))

    # client API -----------------------------------------------------------------------------
    def submit(self, req: WriteReq) -> bool:
        if self.fenced or not self.active:
            return False
        self.queue.append(req)
        self.at(req.deadline - self.sim.now, self._sweep, req)
        self.kick(self.leader_id)
        return True

    def _sweep(self, req: WriteReq) -> None:
        if not req.done:
            req.done, req.outcome = True, "timeout"

    # health monitor (monitor.py) ------------------------------------------------------------------
    def _poll(self, rid: str) -> None:
        def done(res: tuple[Any, ...]) -> None:
            lat = self.sim.now - sent
            if res[0] == "ok":
                outcome = Outcome.OK
            elif res[0] == "timeout":
                outcome = Outcome.TIMEOUT
            else:
                outcome = Outcome.REFUSED
            tr = self.trackers[rid]
            changed = tr.observe(self.sim.now / 1000, outcome, float(lat) if outcome is Outcome.OK else None,
                                 res[0])
            if changed is not None:
                self._health_changed(rid, changed)
            self.at(max(0, self.cfg.poll_interval_ms - lat), self._poll, rid)

        sent = self.sim.now
        self.call(rid, "monitor", "poll", (), self.cfg.poll_timeout_ms, done)

    def _health_changed(self, rid: str, healthy: bool) -> None:
        self.rs[rid].healthy = healthy
        self.sim.log(f"health {rid} -> {'up' if healthy else 'down'}")
        if not healthy and rid == self.leader_id:
            self.leader_suspected(rid)
        self._rerank()
        if healthy:
            self.kick(rid)

    def _watchdog(self) -> None:
        tr = self.trackers[self.leader_id]
        if self.active and not tr.healthy and tr.misses >= 1:
            self.leader_suspected(self.leader_id)
        self.at(self.cfg.poll_interval_ms, self._watchdog)

    # per-replica worker (replication._worker) ------------------------------------------------------
    def kick(self, rid: str) -> None:
        w = self.rs[rid]
        if self.dead or not self.active or w.busy or w.sleeping:
            return
        self._worker_step(w)

    def wake_all(self) -> None:
        for rid in self.ids:
            self.kick(rid)

    def _sleep(self, w: RState) -> None:
        w.sleeping = True

        def wake() -> None:
            w.sleeping = False
            self.kick(w.id)

        self.at(self.cfg.retry_ms, wake)

    def _wcall(self, w: RState, op: str, args: tuple[Any, ...], cb: Callable[[tuple[Any, ...], int], None]) -> None:
        holder: list[int] = []

        def done(res: tuple[Any, ...]) -> None:
            lat = self.sim.now - sent
            w.busy = 0
            cb(res, lat)
            self.kick(w.id)

        sent = self.sim.now
        holder.append(self.call(w.id, "worker", op, args, self.cfg.query_timeout_ms, done, gen=w.gen))
        w.busy = holder[0]

    def _down(self, w: RState, why: str) -> None:
        """ReplicaDown: drop the connection, mark down, maybe suspect the leader, retry later."""
        w.conn = False
        if w.connected:
            w.connected = False
            self._rerank()
        if w.id == self.leader_id:
            self.leader_suspected(w.id)
        self._sleep(w)

    def _worker_step(self, w: RState) -> None:
        if not w.conn:
            w.gen += 1
            self._wcall(w, "open", (), lambda res, lat: self._on_open(w, res))
            return
        if self.fenced:
            return
        if w.diverged or w.needs_rebuild:
            self._rebuild(w)
            return
        if w.id == self.leader_id and self.active and self.leading_enabled:
            if self.in_doubt is not None:
                self._wcall(w, "state", (), lambda res, lat: self._on_resolve(w, res))
            elif w.applied_ts < self.log.last_ts and "skip_catchup" not in self.cfg.bugs:
                self._follow(w)
            else:
                self._lead(w)
            return
        self._follow(w)

    def _on_open(self, w: RState, res: tuple[Any, ...]) -> None:
        if res[0] != "ok":
            self._down(w, res[0])
            return
        snap: Snapshot = res[1]
        if snap.epoch > self.epoch and self.epoch:
            self.fence(w.id)
            return
        w.applied_ts, w.applied_epoch = snap.applied_ts, snap.applied_epoch
        if not (w.diverged or w.needs_rebuild):
            why = self._errant(w)
            if why:
                w.needs_rebuild = True
                self.sim.log(f"errant {w.id}: {why}")
        w.conn = True
        if not w.connected:
            w.connected = True
            self._rerank()

    def _errant(self, w: RState) -> str | None:
        """catchup.errant: is the replica's (epoch, ts) position a point of the log?"""
        return self._errant_position(w.applied_ts, w.applied_epoch, w.id)

    def _errant_position(self, ts: int, epoch: int, rid: str) -> str | None:
        lg = self.log
        if ts == 0:
            return None
        if ts > lg.last_ts:
            return f"applied {ts} beyond the log's last entry {lg.last_ts}"
        if ts > lg.floor_ts:
            e = lg.get(ts)
            if e is None:
                return f"timestamp {ts} is not an entry of the log"
            if e.epoch != epoch:
                return f"entry {ts} has epoch {e.epoch}, replica has {epoch}"
            return None
        if ts == lg.floor_ts and lg.floor_epoch is not None:
            return None if lg.floor_epoch == epoch else f"floor entry {ts} epoch {lg.floor_epoch} != {epoch}"
        # Simplification: the peers' persisted logs are read directly (the real code opens
        # a connection to each peer in turn); only peers reachable right now answer.
        others = sorted((p for p in self.ids if p != rid), key=lambda p: not self.rs[p].available)
        for pid in others:
            rep = self.w.replicas[pid]
            if not rep.up or rep.paused or pid in self.w.net.partitioned:
                continue
            rec = rep.index.get(ts)
            if rec is not None:
                return None if rec[1] == epoch else f"entry {ts} epoch {rec[1]} != {epoch} (peer {pid})"
        return f"entry {ts} can no longer be verified"

    def _follow(self, w: RState) -> None:
        entries = self.log.after(w.applied_ts, self.cfg.max_batch)
        if entries is None:
            self._from_peer(w)
            return
        if not entries:
            return  # idle until the next append kicks us
        epoch = self.epoch
        self._wcall(w, "commit", (epoch, entries, "follow"), lambda res, lat: self._on_applied(w, res, lat, entries, epoch))

    def _on_applied(self, w: RState, res: tuple[Any, ...], lat: int, entries: list[Entry], epoch: int) -> None:
        if res[0] == "ok":
            self._applied(w, entries[-1], lat)
        elif res[0] == "fenced":
            if epoch != self.epoch:
                self._down(w, "epoch changed during the batch")
            else:
                self.fence(w.id)
        elif res[0] == "stmt_error":
            w.conn = False
            w.diverged = True
            self.sim.log(f"diverged {w.id}: {res[1]}")
            self._rerank()
            self._recompute_commit()
        else:
            self._down(w, res[0])

    def _applied(self, w: RState, last: Entry, lat: int) -> None:
        w.applied_ts, w.applied_epoch = last.ts, last.epoch
        w.ack_ms = float(lat) if w.ack_ms is None else 0.8 * w.ack_ms + 0.2 * lat
        self._recompute_commit()

    def _peers(self, w: RState) -> list[RState]:
        peers = [self.rs[p] for p in self.ids if p != w.id and self.rs[p].available]
        return sorted(peers, key=lambda p: (p.id == self.leader_id, -p.applied_ts))

    def _from_peer(self, w: RState) -> None:
        """catchup.from_peer, one chunk per worker step."""
        for peer in self._peers(w):
            if peer.applied_ts <= w.applied_ts:
                continue

            def got(res: tuple[Any, ...]) -> None:
                if w.busy != marker or self.dead:
                    return
                w.busy = 0
                if res[0] != "ok" or not res[1]:
                    self._sleep(w)
                    return
                entries = res[1]
                if "peer_catchup_overshoots" not in self.cfg.shell_quirks:
                    # only what is below the floor (committed) or is an entry of the log
                    keep = []
                    for e in entries:
                        mine = self.log.get(e.ts) if e.ts > self.log.floor_ts else None
                        if e.ts > self.log.floor_ts and (mine is None or mine.epoch != e.epoch):
                            break
                        keep.append(e)
                    entries = keep
                    if not entries:
                        self._sleep(w)
                        return
                epoch = self.epoch
                self._wcall(w, "commit", (epoch, entries, "follow"),
                            lambda r2, lat: self._on_applied(w, r2, lat, entries, epoch))

            marker = self.call(peer.id, "aux", "read_log", (w.applied_ts, self.cfg.max_batch),
                               self.cfg.query_timeout_ms, got)
            w.busy = marker
            return
        if not w.needs_rebuild:
            w.needs_rebuild = True
            self.sim.log(f"{w.id} behind every log (applied {w.applied_ts}, floor {self.log.floor_ts}): rebuild")
            self._rerank()
        self._sleep(w)

    def _rebuild(self, w: RState) -> None:
        """catchup.rebuild: copy a healthy peer's data and position, then catch up from the log."""
        src = next((p for p in self._peers(w) if p.applied_ts >= self.log.floor_ts), None)
        if src is None:
            self._sleep(w)
            return
        w.rebuilding = True

        def dumped(res: tuple[Any, ...]) -> None:
            if w.busy != marker or self.dead:
                return
            w.busy = 0
            if res[0] != "ok":
                w.rebuilding = False
                self._sleep(w)
                return
            snap, recs = res[1], res[2]
            if "rebuild_trusts_source" not in self.cfg.shell_quirks:
                why = self._errant_position(snap.applied_ts, snap.applied_epoch, src.id)
                if why:
                    w.rebuilding = False
                    self.sim.log(f"rebuild of {w.id}: source {src.id} rejected ({why})")
                    self._sleep(w)
                    return
            self._wcall(w, "install", (recs, self.epoch), lambda r2, lat: installed(r2, snap))

        def installed(res: tuple[Any, ...], snap: Snapshot) -> None:
            w.rebuilding = False
            if res[0] == "fenced":
                self.fence(w.id)
                return
            if res[0] != "ok":
                self._down(w, res[0])
                return
            w.applied_ts, w.applied_epoch = snap.applied_ts, snap.applied_epoch
            w.diverged = w.needs_rebuild = False
            self.sim.log(f"rebuilt {w.id} from {src.id} at ts {snap.applied_ts}")
            self._rerank()

        marker = self.call(src.id, "aux", "dump", (), self.cfg.query_timeout_ms, dumped)
        w.busy = marker

    # leader side ------------------------------------------------------------------------------
    def _take_batch(self) -> list[WriteReq]:
        out: list[WriteReq] = []
        while self.queue and len(out) < self.cfg.max_batch:
            req = self.queue.popleft()
            if req.done:
                continue  # answered (timed out) while queued: never executed
            if req.deadline <= self.sim.now:
                req.done, req.outcome = True, "timeout"
                continue
            out.append(req)
        return out

    def _lead(self, w: RState) -> None:
        batch = self._take_batch()
        if not batch:
            return
        stamps, mark = self.alloc.take_for_batch(len(batch))
        entries = []
        for req, ts in zip(batch, stamps):
            req.ts = ts
            m = mark if (mark is not None and req is batch[-1]) else 0
            entries.append(mk_entry(ts, self.epoch, req.payload, m))
        self.w.checker.on_entries_created(self, entries)
        self.executing = batch
        epoch = self.epoch
        self.sim.log(f"lead {w.id} e{epoch} ts {entries[0].ts}..{entries[-1].ts}" + (f" mark {mark}" if mark else ""))
        self._wcall(w, "commit", (epoch, entries, "lead"), lambda res, lat: self._on_led(w, res, batch, entries, epoch))

    def _on_led(self, w: RState, res: tuple[Any, ...], batch: list[WriteReq], entries: list[Entry], epoch: int) -> None:
        self.executing = []
        if res[0] == "ok":
            self._append(w, entries, batch)
        elif res[0] == "fenced":
            if epoch != self.epoch:
                self._requeue(batch)
                self._down(w, "epoch changed during the batch")
            else:
                for r in batch:
                    if not r.done:
                        r.done, r.outcome = True, "fenced"
                self.fence(w.id)
        elif res[0] == "stmt_error":
            self._requeue(batch)
            w.conn = False
            w.diverged = True
            self._rerank()
        else:
            self.in_doubt = (entries, batch)
            self.sim.log(f"in doubt: ts {entries[0].ts}..{entries[-1].ts} on {w.id} ({res[0]})")
            self._down(w, res[0])

    def _on_resolve(self, w: RState, res: tuple[Any, ...]) -> None:
        if res[0] != "ok":
            self._down(w, res[0])
            return
        if self.in_doubt is None:
            return
        entries, reqs = self.in_doubt
        self.in_doubt = None
        if res[1].applied_ts >= entries[-1].ts:
            self._append(w, entries, reqs)
        else:
            self._requeue(reqs)

    def _append(self, w: RState, entries: list[Entry], reqs: list[WriteReq]) -> None:
        self.log.append(entries)
        self.w.checker.on_logged(self, entries)
        for e in entries:
            if e.mark:
                self.marks.append((e.ts, e.mark))
        for r in reqs:
            r.logged = True
        self.waiters.extend(reqs)
        w.applied_ts, w.applied_epoch = entries[-1].ts, entries[-1].epoch
        self._recompute_commit()
        self.log.trim(self.w.memory_log_entries)
        self.wake_all()

    def _requeue(self, reqs: list[WriteReq]) -> None:
        for r in reversed(reqs):
            if not r.done:
                r.ts = 0
                self.queue.appendleft(r)
        self.kick(self.leader_id)

    def leader_work(self) -> list[WriteReq]:
        reqs = list(self.in_doubt[1]) if self.in_doubt is not None else []
        return reqs + list(self.executing)

    def take_back_leader_work(self, reqs: list[WriteReq]) -> int:
        self.in_doubt = None
        self.executing = []
        live = [r for r in reqs if not r.done and not r.logged]
        self._requeue(live)
        return len(live)

    def restart_worker(self, rid: str) -> None:
        w = self.rs[rid]
        if w.busy:
            self.calls.pop(w.busy, None)  # cancel the stuck round trip
        w.busy, w.sleeping, w.conn, w.connected = 0, False, False, False
        w.rebuilding = False
        self._rerank()
        self.kick(rid)

    def fence(self, where: str) -> None:
        if self.fenced:
            return
        self.fenced, self.active = True, False
        self.sim.log(f"coordinator#{self.inc} fenced on {where}")
        for r in self.queue:
            if not r.done:
                r.done, r.outcome = True, "fenced"
        self.queue.clear()

    # commit rule -----------------------------------------------------------------------------
    def _rerank(self) -> None:
        followers = [r for r in self.ids if r != self.leader_id]
        self.ranking = cabinet.rank(self.leader_id, followers, {r: self.rs[r].ack_ms for r in followers},
                                    {r: self.rs[r].available for r in followers})

    def applied_map(self) -> dict[str, int]:
        if "commit_counts_errant" in self.cfg.shell_quirks:
            return {rid: (0 if rs.diverged else rs.applied_ts) for rid, rs in self.rs.items()}
        return {rid: (0 if rs.diverged or rs.needs_rebuild or rs.rebuilding else rs.applied_ts)
                for rid, rs in self.rs.items()}

    def _recompute_commit(self) -> None:
        self._rerank()
        applied = self.applied_map()
        ci = cabinet.commit_index(self.rule, self.ranking, applied)
        if "ack_before_quorum" in self.cfg.bugs:
            ci = max(ci, self.rs[self.leader_id].applied_ts)
        if ci <= self.commit_ts:
            return
        self.w.checker.on_commit(self, self.commit_ts, ci)
        self.commit_ts = ci
        while self.marks and self.marks[0][0] <= ci:
            self.alloc.mark_persisted(self.marks.popleft()[1])
        while self.waiters and self.waiters[0].ts <= ci:
            req = self.waiters.popleft()
            if req.done:
                continue
            req.done, req.outcome = True, "acked"
            self.w.checker.on_ack(self, req, applied)

    # failover (failover.py) ----------------------------------------------------------------------
    def candidates(self) -> list[seer.CandidateInput]:
        now_s = self.sim.now / 1000
        out = []
        for rid in self.ids:
            rs, tr = self.rs[rid], self.trackers[rid]
            out.append(seer.CandidateInput(
                id=rid, name=rid, healthy=tr.healthy and rs.connected, diverged=rs.diverged,
                rebuilding=rs.rebuilding or rs.needs_rebuild, applied_ts=rs.applied_ts,
                exec_ms=rs.ack_ms if rs.ack_ms is not None else tr.latency_ms, rtt_ms=tr.latency_ms,
                uptime_s=tr.uptime_s(now_s), crash_count=tr.crash_count, recent_crashes=tr.recent_crashes(now_s),
                lag_entries=max(0, self.log.last_ts - rs.applied_ts)))
        return out

    def leader_suspected(self, rid: str) -> None:
        if rid != self.leader_id or not self.active or self.fenced or self.fo is not None:
            return
        self.fo = {"old": rid}
        if self.trackers[rid].healthy:
            # _leader_gone: a quick independent probe before acting on a data-path error
            self.call(rid, "aux", "ping", (), 300, lambda res: self._fo_start(rid) if res[0] != "ok" else self._fo_end())
        else:
            self._fo_start(rid)

    def _fo_end(self) -> None:
        self.fo = None

    def _fo_start(self, old: str) -> None:
        if self.leader_id != old or self.fenced:
            self.fo = None
            return
        self.leading_enabled = False
        held = self.leader_work()
        self.restart_worker(old)
        requeued = self.take_back_leader_work(held)
        election = seer.elect(self.candidates(), self.rule, exclude=[old], params=self.params,
                              current_leader=old)
        new = election.leader_id
        if new is None:
            self._fo_fail(old, f"no eligible leader: {election.reason}")
            return
        self.sim.log(f"failover from {old}: SEER elects {new} ({election.reason}); requeued {requeued}")
        self.fo.update(new=new, deadline=self.sim.now + self.cfg.write_timeout_ms)
        self.wake_all()
        self._fo_catch_up()

    def _fo_catch_up(self) -> None:
        assert self.fo is not None
        rs = self.rs[self.fo["new"]]
        if rs.applied_ts >= self.log.last_ts or "skip_catchup" in self.cfg.bugs:
            self._fo_bump()
        elif self.sim.now > self.fo["deadline"] or not rs.available:
            self._fo_fail(self.fo["old"], f"{rs.id} did not catch up (applied {rs.applied_ts} of {self.log.last_ts})")
        else:
            self.at(5, self._fo_catch_up)

    def _fo_bump(self) -> None:
        assert self.fo is not None
        new = self.fo["new"]
        self.epoch += 1
        epoch = self.epoch
        targets = [rid for rid in self.ids if self.trackers[rid].healthy]
        answers: dict[str, tuple[Any, ...]] = {}

        def got(rid: str, res: tuple[Any, ...]) -> None:
            if res[0] == "ok" and res[1] > epoch:
                self.fence(rid)
            answers[rid] = res
            if len(answers) == len(targets):
                finish()

        def finish() -> None:
            if self.fenced:
                self._fo_fail(self.fo["old"] if self.fo else new, "fenced")
                return
            old = self.fo["old"] if self.fo else "?"
            self.leader_id = new
            self._rerank()
            self.leading_enabled = True
            self.fo = None
            self.sim.log(f"failover done: {old} -> {new}, epoch {epoch}")
            self.w.checker.on_new_leader(self, new)
            self.wake_all()

        if not targets:
            finish()
            return
        for rid in targets:
            self.call(rid, "aux", "bump", (epoch, new), self.cfg.query_timeout_ms, lambda res, rid=rid: got(rid, res))

    def _fo_fail(self, old: str, why: str) -> None:
        self.sim.log(f"failover failed: {why}")
        self.leading_enabled = True
        self.wake_all()

        def retry() -> None:
            self.fo = None
            if self.leader_id == old and not self.trackers[old].healthy:
                self.leader_suspected(old)

        self.at(500, retry)

    def idle(self) -> bool:
        return (self.active and self.fo is None and not self.queue and self.in_doubt is None
                and not self.executing)


# --- ground truth and invariants -----------------------------------------------------------------


class Checker:
    """Ground truth kept outside the coordinator; raises Violation on the first breach."""

    def __init__(self, world: "World") -> None:
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
    def on_entries_created(self, c: Coordinator, entries: list[Entry]) -> None:
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

    def on_logged(self, c: Coordinator, entries: list[Entry]) -> None:
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

    def on_commit(self, c: Coordinator, old: int, new: int) -> None:
        keys, d = self._log_of(c.inc)
        for ts in keys[bisect_right(keys, old):bisect_right(keys, new)]:
            e = d[ts]
            self._decide(ts, e.epoch, payload_of(e), f"commit index {new} of coordinator#{c.inc}")

    def on_recovered(self, c: Coordinator, src: list[Rec]) -> None:
        for ts, ep, p, _ in src:
            self._decide(ts, ep, p, f"adopted on recovery by coordinator#{c.inc}")
        keys, d = self._log_of(c.inc)
        for ts, ep, p, m in src:
            keys.append(ts)
            d[ts] = mk_entry(ts, ep, p, m)
        for ts, p in self.acked:
            if self.canon.get(ts, (0, p))[1] != p or ts not in self.canon:
                self.fail(f"I2: acknowledged ts {ts} ({p}) is missing from the history adopted by coordinator#{c.inc}")

    def on_ack(self, c: Coordinator, req: WriteReq, applied: dict[str, int]) -> None:
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

    def on_lead_commit(self, rep: FakeReplica, inc: int, epoch: int, entries: list[Entry]) -> None:
        prev = self.writers.setdefault(epoch, (rep.id, inc))
        if prev != (rep.id, inc):
            self.fail(f"I5: two writers in epoch {epoch}: {prev[0]} (coordinator#{prev[1]}) and {rep.id} "
                      f"(coordinator#{inc})")
        c = self.w.coord
        if c is not None and c.inc == inc and c.epoch == epoch:
            self._leader_holds_acked(rep, entries[0].ts)

    def on_new_leader(self, c: Coordinator, rid: str) -> None:
        self._leader_holds_acked(self.w.replicas[rid], None)

    def _leader_holds_acked(self, rep: FakeReplica, below: int | None) -> None:
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

    def _check_replica(self, rid: str, rep: FakeReplica) -> None:
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
        for ts, (ep, p) in self.canon.items():
            if (ts, p) not in have:
                self.fail(f"I2: committed ts {ts} ({p}) missing after quiescence")


# --- world: replicas, coordinator, nemesis, client -------------------------------------------------


@dataclass
class Result:
    seed: int
    cfg: SimConfig
    trace: list[str]
    digest: str
    violation: str | None
    stats: dict[str, int] = field(default_factory=dict)
    stuck: str | None = None

    def report(self, tail: int = 80) -> str:
        lines = [f"SIM FAILURE seed={self.seed} n={self.cfg.n} t={self.cfg.t} mode={self.cfg.mode} "
                 f"steps={self.cfg.steps} bugs={sorted(self.cfg.bugs)}",
                 f"violation: {self.violation}", f"stats: {self.stats}",
                 f"last {tail} trace lines (replay: run_seed({self.seed}, cfg)):"]
        return "\n".join(lines + self.trace[-tail:])


class World:
    def __init__(self, seed: int, cfg: SimConfig) -> None:
        self.seed = seed
        self.cfg = cfg
        self.sim = Sim(seed)
        rng = self.sim.rng
        self.memory_log_entries = cfg.memory_log_entries or rng.choice((3 * cfg.max_batch, 64, 200_000))
        self.window = cfg.window or rng.choice((3, 8, 40, 10_000))
        drop_p = cfg.drop_p if cfg.drop_p is not None else rng.choice((0.0, 0.005, 0.03))
        self.net = Network(self.sim, cfg.base_delay_ms, cfg.jitter_ms, drop_p)
        self.replicas = {f"r{i}": FakeReplica(self, f"r{i}") for i in range(cfg.n)}
        self.checker = Checker(self)
        self.incarnations = 0
        self.coord: Coordinator | None = None
        self.coord_down_until: int | None = None
        self.faulty: dict[str, str] = {}  # rid -> kind ("killed", "paused", "partitioned", "delayed")
        self.next_wid = 0
        self.requests: list[WriteReq] = []
        self.stats = {"writes": 0, "acked": 0, "faults": 0, "coord_crashes": 0}
        self.sim.log(f"seed {seed}: n={cfg.n} t={cfg.t} mode={cfg.mode} memory_log={self.memory_log_entries} "
                     f"window={self.window} drop_p={drop_p}")
        self._start_coordinator()

    # plumbing
    def reply(self, inc: int, call_id: int, result: tuple[Any, ...]) -> None:
        c = self.coord
        if c is not None and c.inc == inc and not c.dead:
            c._complete(call_id, result)

    def _start_coordinator(self) -> None:
        self.incarnations += 1
        self.coord = Coordinator(self, self.incarnations)
        self.coord_down_until = None
        self.coord.start()

    # nemesis
    def nemesis_kill(self, rep: FakeReplica, why: str) -> None:
        rep.kill()
        self.faulty[rep.id] = "killed"
        self.stats["faults"] += 1
        self.sim.log(f"FAULT kill {rep.id} ({why})")

    def _budget_left(self) -> bool:
        return len(self.faulty) < self.cfg.t

    def random_fault(self) -> None:
        rng = self.sim.rng
        c = self.coord
        leader = c.leader_id if c is not None else "r0"
        ids = list(self.replicas)
        options: list[tuple[str, str | None]] = []
        if self._budget_left():
            healthy = [r for r in ids if r not in self.faulty]
            for kind in ("kill", "pause", "partition", "delay", "arm"):
                target = leader if (leader in healthy and rng.random() < 0.5) else rng.choice(healthy)
                options.append((kind, target))
        for rid, kind in sorted(self.faulty.items()):
            options.append(("heal", rid))
        if c is not None and rng.random() < 0.25:
            options.append(("coord_crash", None))
        if not options:
            return
        kind, rid = rng.choice(options)
        if kind == "coord_crash":
            self.crash_coordinator()
            return
        assert rid is not None
        rep = self.replicas[rid]
        self.stats["faults"] += kind != "heal"
        if kind == "kill":
            self.nemesis_kill(rep, "kill -9")
            self.stats["faults"] -= 1
        elif kind == "pause":
            rep.paused = True
            self.faulty[rid] = "paused"
            self.sim.log(f"FAULT pause {rid}")
        elif kind == "partition":
            self.net.partitioned.add(rid)
            self.faulty[rid] = "partitioned"
            self.sim.log(f"FAULT partition {rid}")
        elif kind == "delay":
            ms = rng.choice((20, 100, 400, 1500))
            self.net.extra_ms[rid] = ms
            self.faulty[rid] = "delayed"
            self.sim.log(f"FAULT delay {rid} {ms}ms")
        elif kind == "arm":
            # "killed after executing": the next leader batch it commits is its last
            rep.crash_after_lead = True
            self.faulty[rid] = "armed"
            self.sim.log(f"FAULT arm {rid}: crash right after its next leader commit")
        else:
            self.heal(rid)

    def heal(self, rid: str) -> None:
        kind = self.faulty.pop(rid, None)
        rep = self.replicas[rid]
        if kind == "killed":
            rep.restart()
        elif kind == "paused":
            self.sim.at(0, rep.resume)
        elif kind == "partitioned":
            self.net.partitioned.discard(rid)
        elif kind == "delayed":
            self.net.extra_ms.pop(rid, None)
        elif kind == "armed":
            if rep.crash_after_lead:
                rep.crash_after_lead = False
            elif not rep.up:
                rep.restart()
        self.sim.log(f"HEAL {kind} {rid}")

    def crash_coordinator(self) -> None:
        c = self.coord
        if c is None:
            return
        c.dead = True
        for r in self.requests:
            if not r.done:
                r.done, r.outcome = True, "unknown (coordinator died)"
        self.coord = None
        self.stats["coord_crashes"] += 1
        self.coord_down_until = self.sim.now + self.sim.rng.randint(50, 1500)
        self.sim.log(f"FAULT coordinator#{c.inc} kill -9 (restart at {self.coord_down_until})")

    # client
    def client_write(self) -> None:
        self.next_wid += 1
        p = f"w{self.next_wid}"
        req = WriteReq(self.next_wid, p, self.sim.now + self.cfg.write_timeout_ms)
        if self.coord is not None and self.coord.submit(req):
            self.requests.append(req)
            self.stats["writes"] += 1

    # driving
    def step(self) -> None:
        rng = self.sim.rng
        if self.coord is None and self.coord_down_until is not None and self.sim.now >= self.coord_down_until:
            self._start_coordinator()
        if rng.random() < self.cfg.p_write:
            for _ in range(rng.randint(1, 3)):
                self.client_write()
        if rng.random() < self.cfg.p_fault:
            self.random_fault()
        # an armed replica that died after committing counts as killed; restart it in time
        for rid, kind in sorted(self.faulty.items()):
            if kind == "armed" and not self.replicas[rid].up:
                self.faulty[rid] = "killed"
        self.sim.run_until(self.sim.now + rng.randint(1, self.cfg.max_step_ms))
        self.checker.check_step()

    def quiesce(self) -> None:
        self.sim.log("QUIESCE: heal everything, no more writes")
        for rid in sorted(self.faulty):
            self.heal(rid)
        for rep in self.replicas.values():
            rep.crash_after_lead = False
        self.net.drop_p = 0.0
        deadline = self.sim.now + self.cfg.quiesce_ms
        while self.sim.now < deadline:
            if self.coord is None:
                self._start_coordinator()
            self.sim.run_until(self.sim.now + 100)
            self.checker.check_step()
            if self._converged():
                # settle a little longer (late acks, trackers), then compare
                self.sim.run_until(self.sim.now + 500)
                self.checker.check_step()
                if self._converged():
                    self.checker.check_quiescent()
                    self.sim.log("converged")
                    return
        c = self.coord
        reason = self._stuck_reason()
        if reason and not self.cfg.strict_liveness:
            raise Stuck(reason)
        state = {rid: (rep.applied_ts, c.rs[rid].available if c else None, c.rs[rid].needs_rebuild if c else None)
                 for rid, rep in self.replicas.items()}
        raise Violation(f"no convergence {self.cfg.quiesce_ms} ms after healing everything: "
                        f"leader {c.leader_id if c else None}, log last {c.log.last_ts if c else None}, "
                        f"fenced {c.fenced if c else None}, failover {c.fo if c else None}, replicas {state}")

    def _stuck_reason(self) -> str | None:
        c = self.coord
        if c is None:
            return None
        needing = [r for r in c.ids if c.rs[r].needs_rebuild or c.rs[r].diverged]
        sources = [r for r in c.ids if c.rs[r].available and c.rs[r].applied_ts >= c.log.floor_ts]
        if needing and not sources:
            return (f"no replica can serve a rebuild: {needing} need one, log floor {c.log.floor_ts}, "
                    f"applied {[(r, c.rs[r].applied_ts) for r in c.ids]}")
        return None

    def _converged(self) -> bool:
        c = self.coord
        if c is None or not c.idle():
            return False
        last = c.log.last_ts
        for rid, rep in self.replicas.items():
            rs = c.rs[rid]
            if not rs.available or rs.applied_ts != last or rep.applied_ts != last:
                return False
        return True


def run_seed(seed: int, cfg: SimConfig, quiesce: bool = True) -> Result:
    world = World(seed, cfg)
    violation = stuck = None
    try:
        for _ in range(cfg.steps):
            world.step()
        if quiesce:
            world.quiesce()
    except Violation as exc:
        violation = str(exc)
        world.sim.log(f"VIOLATION {violation}")
    except Stuck as exc:
        stuck = str(exc)
        world.sim.log(f"STUCK {stuck}")
    world.stats["acked"] = len(world.checker.acked)
    world.stats["events"] = world.sim.events
    world.stats["sim_ms"] = world.sim.now
    return Result(seed, cfg, world.sim.trace, world.sim.digest(), violation, dict(world.stats), stuck)


def scenario(cfg: SimConfig, **changes: Any) -> SimConfig:
    return replace(cfg, **changes)
