"""Deterministic simulation: the real ``coordinator.core`` in a fake world, one seed for all.

A fake clock (integer ms) and an event heap; a fake network (per-link delay, jitter,
drops, partitions) between the coordinator and n fake replicas; a nemesis that kills,
restarts, pauses, resumes, delays and partitions replicas (the leader included, at most
t at a time) and kills/restarts the coordinator (losing all its memory). The
coordinator is the real core, driven by ``SimShell`` (``driver.py``) through the same
``step`` / ``ready`` interface the async shell uses — there is no second
implementation of any decision here. The ``Checker`` (``checker.py``) keeps ground
truth outside the coordinator and runs after every step.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field, replace
from typing import Any

from coordinator.core.messages import Snapshot
from coordinator.core.replog import Entry
from tests.sim import bugs
from tests.sim.base import Network, Rec, Request, Sim, SimConfig, Stuck, Violation, WriteReq, mk_entry, payload_of
from tests.sim.checker import Checker
from tests.sim.driver import SimShell

# --- replicas ------------------------------------------------------------------------------


class FakeReplica:
    """A MySQL server with the coordinator's state row and log table. Committed data is
    durable (a crash loses nothing committed); a paused server holds requests and runs
    them on resume; a killed server refuses; connections die with the process. A worker
    request on a connection that was replaced (a newer ``open``) never runs."""

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
        self.lanes: dict[tuple[int, str], int] = {}  # open interactive transactions: (inc, channel) -> boot
        self.threads = 0
        self.crash_after_lead = False  # nemesis: die right after committing a leader batch

    @property
    def applied_ts(self) -> int:
        return self.log[-1][0] if self.log else 0

    @property
    def applied_epoch(self) -> int:
        return self.log[-1][1] if self.log else 0

    def snapshot(self) -> Snapshot:
        return Snapshot(self.epoch, self.applied_ts, self.applied_epoch, self.ts_mark, 0, self.leader_id, 0)

    # lifecycle
    def kill(self) -> None:
        self.up, self.paused, self.inbox = False, False, []
        self.conns.clear()
        self.lanes.clear()

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
    def _fenced(self, epoch: int) -> bool:
        return self.epoch > epoch and "no_fencing" not in self.world.cfg.bugs

    def _append(self, epoch: int, entries: tuple[Entry, ...] | list[Entry], in_order: bool = True
                ) -> tuple[Any, ...] | None:
        """One transaction adding log rows. A follower applies in order; on the leader the batch
        and interactive transactions commit out of timestamp order (``in_order=False``): a
        row goes where its timestamp belongs, and only a duplicate key is refused."""
        if self._fenced(epoch):
            return ("fenced", self.epoch)  # CHECK (epoch_seen = epoch) trips
        if any(a.ts >= b.ts for a, b in zip(entries, entries[1:])) or (
                entries[0].ts <= self.applied_ts if in_order else any(e.ts in self.index for e in entries)):
            return ("stmt_error", 1062, f"duplicate log key {entries[0].ts} (applied {self.applied_ts})")
        mark = next((e.mark for e in reversed(entries) if e.mark), None)
        recs = [(e.ts, e.epoch, payload_of(e), e.mark) for e in entries]
        if not self.log or recs[0][0] > self.log[-1][0]:
            self.log = self.log + recs
        else:
            self.log = sorted(self.log + recs)
        for r in recs:
            self.index[r[0]] = r
        self.version += 1
        self.epoch = max(self.epoch, epoch)
        if mark is not None:
            self.ts_mark = mark
        return ("ok",)

    def op_open(self, req: Request, check: tuple[int, ...] = (), ended: tuple[str, ...] = ()) -> tuple[Any, ...]:
        for channel in ended:  # KILL those connections first: their COMMITs can no longer land
            self.lanes.pop((req.inc, channel), None)
        self.threads += 1
        return ("ok", self.snapshot(), self.threads, frozenset(ts for ts in check if ts in self.index))

    def op_ping(self, req: Request) -> tuple[Any, ...]:
        return ("ok",)

    op_rollback = op_ping

    def op_execute(self, req: Request, payloads: tuple[str, ...]) -> tuple[Any, ...]:
        """The leader's statements in an open transaction: (rows, id) per statement, or
        the first failing one (a refused write, or a deadlock victim)."""
        done: list[tuple[tuple[int, int], ...]] = []
        for i, p in enumerate(payloads):
            if p.startswith("x"):
                return ("ok", tuple(done), (i, 1062))
            if self.world.cfg.p_locked and self.world.sim.rng.random() < self.world.cfg.p_locked:
                self.world.stats["parked"] += 1
                return ("ok", tuple(done), (i, 1205))  # a row an interactive transaction holds
            if self.world.sim.rng.random() < self.world.cfg.p_deadlock:
                self.world.stats["deadlocks"] += 1
                return ("ok", tuple(done), (i, 1213))
            done.append(((1, 0),))
        return ("ok", tuple(done), None)

    def op_commit(self, req: Request, epoch: int, entries: tuple[Entry, ...]) -> tuple[Any, ...] | None:
        """The leader's commit: log rows + state row of the open transaction."""
        if not entries:
            return ("ok",)
        return self._lead_commit(req, epoch, list(entries))

    def op_commit_execute(self, req: Request, epoch: int, entries: tuple[Entry, ...], payloads: tuple[str, ...]
                          ) -> tuple[Any, ...] | None:
        """A pipelined leader round trip: the batch's commit, then (only if it went through) the
        next batch's statements in a new transaction."""
        res = self.op_commit(req, epoch, entries)
        return self.op_execute(req, payloads) if res == ("ok",) else res

    def _lead_commit(self, req: Request, epoch: int, entries: list[Entry]) -> tuple[Any, ...] | None:
        res = self._append(epoch, entries, in_order=False)
        if res == ("ok",):
            self.world.checker.on_lead_commit(self, req.inc, epoch, entries)
            if self.crash_after_lead:
                self.crash_after_lead = False
                self.world.nemesis_kill(self, "crashed right after committing a leader batch")
                return None
        return res

    def op_lane_exec(self, req: Request) -> tuple[Any, ...]:
        """An interactive transaction's statements on its own connection (effects kept until COMMIT)."""
        self.lanes[(req.inc, req.channel)] = self.boot
        return ("ok",)

    def op_lane_commit(self, req: Request, epoch: int, entry: Entry) -> tuple[Any, ...] | None:
        """Its log row and COMMIT — only on the connection that ran it, if that still exists."""
        if self.lanes.pop((req.inc, req.channel), None) != self.boot:
            return None  # the connection is gone (killed, server restarted): nothing commits, no answer
        return self._lead_commit(req, epoch, [entry])

    def op_lane_rollback(self, req: Request) -> tuple[Any, ...]:
        self.lanes.pop((req.inc, req.channel), None)
        return ("ok",)

    def op_check_committed(self, req: Request, ts: int, channel: str) -> tuple[Any, ...]:
        """End the transaction's connection first, then look: a late COMMIT can no longer land."""
        self.lanes.pop((req.inc, channel), None)
        return ("ok", ts in self.index)

    def op_apply(self, req: Request, epoch: int, entries: tuple[Entry, ...]) -> tuple[Any, ...] | None:
        return self._append(epoch, entries)

    def op_bump(self, req: Request, epoch: int, leader: str, expect_at_most: int) -> tuple[Any, ...]:
        if self.epoch <= expect_at_most:
            self.epoch, self.leader_id = epoch, leader
        return ("ok", self.snapshot())

    def op_probe(self, req: Request) -> tuple[Any, ...]:
        return ("ok", self.snapshot())

    def op_read_log(self, req: Request, after: int, limit: int) -> tuple[Any, ...]:
        i = bisect_right([r[0] for r in self.log], after)
        return ("ok", [mk_entry(ts, ep, p, m) for ts, ep, p, m in self.log[i:i + limit]])

    def op_lookup(self, req: Request, ts: int) -> tuple[Any, ...]:
        rec = self.index.get(ts)
        return ("ok", rec[1] if rec is not None and rec[0] <= self.applied_ts else None)

    def op_dump(self, req: Request) -> tuple[Any, ...]:
        return ("ok", self.snapshot(), list(self.log))

    def op_install(self, req: Request, recs: list[Rec], epoch: int) -> tuple[Any, ...]:
        if self._fenced(epoch):
            return ("fenced", self.epoch)
        self.log = list(recs)
        self.index = {r[0]: r for r in recs}
        self.version += 1
        self.epoch = max(self.epoch, epoch)
        self.ts_mark = max([r[3] for r in recs if r[3]], default=self.ts_mark)
        return ("ok", len(recs))


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
        self.coord: Any = None
        self.coord_down_until: int | None = None
        self.faulty: dict[str, str] = {}  # rid -> kind ("killed", "paused", "partitioned", "delayed", "armed")
        self.next_wid = 0
        self.requests: list[WriteReq] = []
        self.stats = {"writes": 0, "txns": 0, "acked": 0, "refused": 0, "deadlocks": 0, "parked": 0, "pipelined": 0,
                      "faults": 0, "coord_crashes": 0}
        self.sim.log(f"seed {seed}: n={cfg.n} t={cfg.t} mode={cfg.mode} memory_log={self.memory_log_entries} "
                     f"window={self.window} drop_p={drop_p}")
        self._start_coordinator()

    # plumbing
    def reply(self, inc: int, call_id: int, result: tuple[Any, ...]) -> None:
        c = self.coord
        if c is not None and c.inc == inc and not c.dead:
            c.complete(call_id, result)

    def _start_coordinator(self) -> None:
        self.incarnations += 1
        self.coord = SimShell(self, self.incarnations)
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
        for rid in sorted(self.faulty):
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
        rng = self.sim.rng
        if self.cfg.p_txn and rng.random() < self.cfg.p_txn:  # an interactive transaction (BEGIN … COMMIT)
            req = WriteReq(self.next_wid, f"t{self.next_wid}")
            if self.coord is not None:
                self.coord.submit_txn(req)
                self.requests.append(req)
                self.stats["txns"] += 1
            return
        bad = rng.random() < self.cfg.p_bad_write
        req = WriteReq(self.next_wid, f"{'x' if bad else 'w'}{self.next_wid}")
        if self.coord is not None:
            self.coord.submit(req)
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
        reason = self._stuck_reason()
        if reason and not self.cfg.strict_liveness:
            raise Stuck(reason)
        c = self.coord
        st = c.core.st if c else None
        state = {rid: (rep.applied_ts, st.replicas[rid].available if st else None,
                       st.replicas[rid].needs_rebuild if st else None) for rid, rep in self.replicas.items()}
        raise Violation(f"no convergence {self.cfg.quiesce_ms} ms after healing everything: "
                        f"leader {c.leader_id if c else None}, log last {st.log.last_ts if st else None}, "
                        f"fenced {st.fenced if st else None}, failover {st.failover if st else None}, "
                        f"recovery {st.recovery if st else None}, replicas {state}")

    def _stuck_reason(self) -> str | None:
        c = self.coord
        if c is None:
            return None
        st = c.core.st
        needing = [r for r, rs in st.replicas.items() if rs.needs_rebuild or rs.diverged]
        sources = [r for r, rs in st.replicas.items() if rs.available and rs.applied_ts >= st.log.floor_ts]
        if needing and not sources:
            return (f"no replica can serve a rebuild: {needing} need one, log floor {st.log.floor_ts}, "
                    f"applied {[(r, rs.applied_ts) for r, rs in st.replicas.items()]}")
        return None

    def _converged(self) -> bool:
        c = self.coord
        if c is None or not c.idle():
            return False
        st = c.core.st
        last = st.log.last_ts
        for rid, rep in self.replicas.items():
            rs = st.replicas[rid]
            if not rs.available or rs.applied_ts != last or rep.applied_ts != last:
                return False
        return True


def run_seed(seed: int, cfg: SimConfig, quiesce: bool = True) -> Result:
    with bugs.planted(cfg.bugs):
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
