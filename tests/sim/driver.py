"""``SimShell``: drives the real ``coordinator.core.Core`` in the simulated world.

The same job the async shell does (``replicator`` + ``applier`` + ``operations`` +
``monitor``), done with simulated messages: every core event is stepped with the
simulated time, every ``Ready`` is carried out at once — replica actions become
requests on that replica's worker connection (with the query timeout; a timeout drops
the connection, as ``mysqlio`` does), control tasks become one-shot requests, polls
and ticks are timers. No decision is made here.
"""

from __future__ import annotations

from typing import Any, Callable

from coordinator.core import actions as A
from coordinator.core.config import CoreConfig, ReplicaInfo
from coordinator.core.health import Outcome
from coordinator.core.messages import (
    Cause,
    ControlDone,
    Done,
    Down,
    Executed,
    FencedOut,
    LaneDone,
    LaneThread,
    Ok,
    Opened,
    PeerLog,
    Poll,
    Propose,
    Result,
    SqlFailed,
    StatementFailure,
    Tick,
    TxnCommit,
)
from coordinator.core.node import Core
from coordinator.core.outcomes import ApiError, WriteOutcome
from coordinator.core.replog import EntryKind
from tests.sim.base import Rec, Request, WriteReq

READ_ONLY_TIMEOUT_MS = 1000
# Event kinds counted in the run's stats: the tests check the workload reaches them.
COVERED = ("failover", "rebuild_done", "catchup_peer", "replica_errant", "fenced", "epoch")


class SimShell:
    """One coordinator process. ``dead`` once killed: its timers and replies are ignored,
    but the requests it already sent may still arrive (zombies)."""

    def __init__(self, world: Any, inc: int) -> None:
        self.w = world
        self.sim = world.sim
        self.cfg = c = world.cfg
        self.inc = inc
        self.dead = False
        ids = list(world.replicas)
        self.core = Core(CoreConfig(
            replicas=tuple(ReplicaInfo(rid, rid) for rid in ids), initial_leader=ids[0], failure_threshold=c.t,
            mode=c.mode, write_timeout_s=c.write_timeout_ms / 1000, max_batch_entries=c.max_batch,
            pipeline_commit=c.pipeline,
            memory_log_entries=world.memory_log_entries, timestamp_window=world.window,
            retry_interval_s=c.retry_ms / 1000, poll_interval_s=c.poll_interval_ms / 1000,
            missed_polls_unhealthy=c.misses_allowed, leader_probe_timeout_s=c.poll_timeout_ms / 1000))
        self.gen = {rid: 0 for rid in ids}  # worker connection generation per replica
        self.calls: dict[int, Callable[[tuple[Any, ...]], None]] = {}
        self._call_seq = 0
        self.reqs: dict[int, WriteReq] = {}
        self.held: dict[str, list[Rec]] = {}  # rebuild: the source's snapshot, per target
        self._seen_commit = 0
        self._seen_last = 0
        self._seen_leader = ""
        self._recovering = True
        # Every entry the core appends to its log, as appended: a release of many commits at
        # once (a slow lane settling) may be trimmed from the in-memory tail in the same step.
        self._appended: list[Any] = []
        log = self.core.st.log
        plain_append = log.append

        def append(batch: list[Any]) -> None:
            plain_append(batch)
            self._appended.extend(batch)

        log.append = append  # type: ignore[method-assign]

    # --- views for the checker ---
    @property
    def leader_id(self) -> str:
        return self.core.st.leader_id

    @property
    def epoch(self) -> int:
        return self.core.st.epoch

    @property
    def ranking(self) -> list[str]:
        return self.core.st.ranking

    @property
    def rule(self) -> Any:
        return self.core.st.rule

    def idle(self) -> bool:
        st = self.core.st
        return (st.recovery is None and st.failover is None and self.core.quiescent()
                and all(rs.inflight is None for rs in st.replicas.values()))

    # --- timers and calls ---
    def at(self, delay: int, fn: Callable[..., None], *args: Any) -> None:
        self.sim.at(delay, self._guard, fn, args)

    def _guard(self, fn: Callable[..., None], args: tuple[Any, ...]) -> None:
        if not self.dead:
            fn(*args)

    def call(self, rid: str, channel: str, op: str, args: tuple[Any, ...], timeout_ms: int,
             cb: Callable[[tuple[Any, ...]], None], gen: int = 0) -> None:
        self._call_seq += 1
        cid = self._call_seq
        self.calls[cid] = cb
        self.w.net.send(rid, self.w.replicas[rid].deliver, Request(self.inc, channel, gen, op, args, cid))
        self.at(timeout_ms, self.complete, cid, ("timeout",))

    def complete(self, cid: int, result: tuple[Any, ...]) -> None:
        cb = self.calls.pop(cid, None)
        if cb is not None:
            cb(result)

    # --- driving the core ---
    def step(self, ev: Any) -> None:
        self.core.step(ev, self.sim.now / 1000, self.sim.now * 1000)
        self._carry_out()

    def _carry_out(self) -> None:
        rd = self.core.ready()
        self._observe()
        created = [e for a in rd.actions if isinstance(a, A.LeadCommit) for e in a.entries]
        created += [a.entry for a in rd.lane_actions if isinstance(a, A.CommitTxn)]
        if created:
            self.w.checker.on_entries_created(self, sorted(created, key=lambda e: e.ts))
        for a in rd.actions:
            self._action(a)
        for la in rd.lane_actions:
            if isinstance(la, A.CommitTxn):
                self._lane_commit(la)
            elif isinstance(la, A.ParkedRun):
                self._parked_run(la)
            else:
                self.call(la.rid or self.leader_id, f"lane{la.lane}", "lane_rollback", (), self.cfg.query_timeout_ms,
                          lambda res: None)
        for task in rd.control:
            self._control(task)
        for handle, outcome in rd.outcomes:
            self._outcome(handle, outcome)
        for kind, message, _ in rd.events:
            self.sim.log(f"c#{self.inc} {kind}: {message}")
            if kind in COVERED:
                self.w.stats[kind] = self.w.stats.get(kind, 0) + 1

    def _observe(self) -> None:
        """Protocol points for the checker: recovery, new log entries, commit, leader."""
        st = self.core.st
        if self._recovering and not (st.recovery is None and st.active):
            return
        if self._recovering:
            self._recovering = False
            src = max(st.replicas.values(), key=lambda r: (r.applied_epoch, r.applied_ts))
            rep = self.w.replicas[src.id]
            self.w.checker.on_recovered(self, [r for r in rep.log if r[0] <= st.log.last_ts], st.commit_ts)
            self._seen_last = st.log.last_ts
            self._seen_commit = st.commit_ts
            self._seen_leader = st.leader_id  # it leads once it holds the whole log (checked at its commits)
            return
        if st.log.last_ts > self._seen_last:
            new = [e for e in self._appended if e.ts > self._seen_last]
            self.w.checker.on_logged(self, new)
            self._seen_last = st.log.last_ts
        self._appended.clear()
        if st.commit_ts > self._seen_commit:
            self.w.checker.on_commit(self, self._seen_commit, st.commit_ts)
            self._seen_commit = st.commit_ts
        if st.leader_id != self._seen_leader:
            self._seen_leader = st.leader_id
            self.sim.log(f"c#{self.inc} leader -> {st.leader_id} (epoch {st.epoch})")
            self.w.checker.on_new_leader(self, st.leader_id)

    def start(self) -> None:
        self.sim.log(f"coordinator#{self.inc} starts: recovery")
        self.core.start(self.sim.now / 1000, self.sim.now * 1000)
        self._carry_out()
        for rid in self.w.replicas:
            self.at(0, self._poll, rid)
        self.at(self.cfg.tick_ms, self._tick)

    def _tick(self) -> None:
        self.step(Tick())
        self.at(self.cfg.tick_ms, self._tick)

    def submit(self, req: WriteReq) -> None:
        self.reqs[req.wid] = req
        self.step(Propose(req.wid, EntryKind.WRITE, (req.payload,), (0, 0)))

    def submit_txn(self, req: WriteReq) -> None:
        """An interactive transaction: its statements on a connection of its own to the leader
        of the moment, then COMMIT through the core (which refuses it if the leader changed)."""
        self.reqs[req.wid] = req
        rid, term, lane = self.leader_id, self.core.lane_term(), req.wid
        if term is None:  # no leader to begin on now: the client's BEGIN fails at once
            self._outcome(req.wid, ApiError(503, "txn_aborted", "no verified leader to begin on"))
            return

        def ran(res: tuple[Any, ...]) -> None:
            if res[0] != "ok":  # the connection failed mid-transaction: rolled back, the client told
                self._outcome(req.wid, ApiError(503, "txn_aborted", f"lost the leader connection ({res[0]})"))
                return
            self.step(TxnCommit(req.wid, lane, rid, term, ((req.payload, 0, 1),), self.sim.now * 1000, (0, 0),
                                lane))

        self.call(rid, f"lane{lane}", "lane_exec", (), self.cfg.query_timeout_ms, ran)

    def _lane_commit(self, a: A.CommitTxn) -> None:
        def done(res: tuple[Any, ...]) -> None:
            self.step(LaneDone(a.lane, a.seq, Ok() if res[0] == "ok" else _failure(res)))

        self.call(a.rid, f"lane{a.lane}", "lane_commit", (a.epoch, a.entry), self.cfg.query_timeout_ms, done)

    def _parked_run(self, a: A.ParkedRun) -> None:
        """A batch write parked on a lane: its statements on a connection of its own (which, in
        this model, waits for nothing), then its commit point in the core."""
        def ran(res: tuple[Any, ...]) -> None:
            self.step(LaneDone(a.lane, a.seq, Ok(Executed((((1, 0),),))) if res[0] == "ok" else _failure(res)))

        self.at(0, self.step, LaneThread(a.lane, a.seq, a.lane))
        self.call(a.rid, f"lane{a.lane}", "lane_exec", (), self.cfg.query_timeout_ms, ran)

    def _outcome(self, handle: int, outcome: Any) -> None:
        req = self.reqs.pop(handle, None)
        if req is None or req.done:
            return
        req.done = True
        if isinstance(outcome, WriteOutcome):
            req.outcome, req.ts = "ok", outcome.ts
            self.w.checker.on_ack(self, req, self.core.st.applied_map())
        elif isinstance(outcome, ApiError):
            req.outcome = f"{outcome.status} {outcome.code}"
            if outcome.code == "duplicate_key":
                self.w.stats["refused"] += 1
            if outcome.code == "txn_aborted" and req.payload.startswith("t"):
                self.call(self.leader_id, f"lane{req.wid}", "lane_rollback", (), self.cfg.query_timeout_ms,
                          lambda res: None)

    # --- health polls (monitor.py) ---
    def _poll(self, rid: str) -> None:
        sent = self.sim.now

        def done(res: tuple[Any, ...]) -> None:
            lat = self.sim.now - sent
            if res[0] == "ok":
                self.step(Poll(rid, Outcome.OK, float(lat)))
            else:
                self.step(Poll(rid, Outcome.TIMEOUT if res[0] == "timeout" else Outcome.REFUSED, None, res[0]))
            self.at(max(0, self.cfg.poll_interval_ms - lat), self._poll, rid)

        self.call(rid, "monitor", "ping", (), self.cfg.poll_timeout_ms, done)

    # --- replica actions (applier.py) ---
    def _worker(self, a: Any, op: str, args: tuple[Any, ...], ok: Callable[[tuple[Any, ...]], Result]) -> None:
        rid = a.rid
        if isinstance(a, A.Open):
            self.gen[rid] += 1  # a fresh connection; the server ends the old one
        gen = self.gen[rid]

        def done(res: tuple[Any, ...]) -> None:
            if res[0] == "ok":
                result = ok(res)
            else:
                self.gen[rid] += 1 if res[0] in ("timeout", "refused") else 0  # in doubt: dropped
                result = _failure(res)
            self.step(Done(rid, a.seq, result))

        self.call(rid, "worker", op, args, self.cfg.query_timeout_ms, done, gen=gen)

    def _aux(self, rid: str, op: str, args: tuple[Any, ...], done: Callable[[tuple[Any, ...]], None],
             timeout_ms: int | None = None) -> None:
        self.call(rid, "aux", op, args, timeout_ms or self.cfg.query_timeout_ms, done)

    def _action(self, a: A.ReplicaAction) -> None:
        rid = a.rid
        if isinstance(a, A.Open):
            ended = tuple(f"lane{t}" for t in a.end_threads)
            self._worker(a, "open", (a.check_ts, ended), lambda res: Ok(Opened(res[1], res[2], res[3])))
        elif isinstance(a, A.Close):
            self.gen[rid] += 1
            self.at(0, self.step, Done(rid, a.seq, Ok()))
        elif isinstance(a, A.LeadExecute):
            payloads = tuple(stmts[0] for stmts, _ in a.items)
            self._worker(a, "execute", (payloads,), lambda res: _executed(res))
        elif isinstance(a, A.LeadCommit) and a.then:
            self.w.stats["pipelined"] += 1
            payloads = tuple(stmts[0] for stmts, _ in a.then)
            self._worker(a, "commit_execute", (a.epoch, a.entries, payloads), lambda res: _executed(res))
        elif isinstance(a, A.LeadCommit):
            self._worker(a, "commit", (a.epoch, a.entries), lambda res: Ok())
        elif isinstance(a, A.ApplyBatch):
            self._worker(a, "apply", (a.epoch, a.entries), lambda res: Ok(None, 1.0))
        elif isinstance(a, A.Rollback):
            self._worker(a, "rollback", (), lambda res: Ok())
        elif isinstance(a, A.LookupEntry):
            self._lookup(a, list(a.peers))
        elif isinstance(a, A.ReadPeer):
            def got(res: tuple[Any, ...]) -> None:
                result = Ok(PeerLog(0, tuple(res[1]))) if res[0] == "ok" else _failure(res, peer=True)
                self.step(Done(rid, a.seq, result))
            self._aux(a.peer, "read_log", (a.after, a.limit), got)
        elif isinstance(a, A.RebuildBegin):
            def dumped(res: tuple[Any, ...]) -> None:
                if res[0] == "ok":
                    self.held[rid] = res[2]
                    result: Result = Ok(res[1])
                else:
                    result = _failure(res, peer=True)
                self.step(Done(rid, a.seq, result))
            self._aux(a.source, "dump", (), dumped)
        elif isinstance(a, A.RebuildCopy):
            recs = [r for r in self.held.pop(rid, []) if r[0] <= a.applied_ts]
            self._worker(a, "install", (recs, a.epoch), lambda res: Ok(res[1]))
        elif isinstance(a, A.RebuildAbort):
            self.held.pop(rid, None)
            self.at(0, self.step, Done(rid, a.seq, Ok()))
        else:  # DDL steps: the simulated workload has no DDL
            raise AssertionError(f"unexpected action {a!r}")

    def _lookup(self, a: A.LookupEntry, peers: list[str]) -> None:
        if not peers:
            self.step(Done(a.rid, a.seq, Ok(None)))
            return

        def got(res: tuple[Any, ...]) -> None:
            if res[0] == "ok" and res[1] is not None:
                self.step(Done(a.rid, a.seq, Ok(res[1])))
            else:
                self._lookup(a, peers[1:])

        self._aux(peers[0], "lookup", (a.ts,), got)

    # --- control tasks (operations.py) ---
    def _control(self, task: A.ControlTask) -> None:
        def reply(make: Callable[[tuple[Any, ...]], Result]) -> Callable[[tuple[Any, ...]], None]:
            def done(res: tuple[Any, ...]) -> None:
                self.step(ControlDone(task.id, make(res) if res[0] == "ok" else _failure(res)))
            return done

        if isinstance(task, A.RestartApplier):
            self.gen[task.rid] += 1
            self.at(1, self.step, ControlDone(task.id, Ok()))
        elif isinstance(task, A.Probe):
            self._aux(task.rid, "probe", (), reply(lambda r: Ok(r[1])))
        elif isinstance(task, A.BumpEpoch):
            self._aux(task.rid, "bump", (task.epoch, task.leader, task.expect_at_most), reply(lambda r: Ok(r[1])))
        elif isinstance(task, A.ReadLog):
            self._aux(task.rid, "read_log", (task.after, task.limit), reply(lambda r: Ok(r[1])))
        elif isinstance(task, A.ProbeLeader):
            self._aux(task.rid, "ping", (), reply(lambda r: Ok()), int(task.timeout_s * 1000))
        elif isinstance(task, A.SetReadOnly):
            self._aux(task.rid, "ping", (), reply(lambda r: Ok()), READ_ONLY_TIMEOUT_MS)
        elif isinstance(task, A.CheckCommitted):
            self._aux(task.rid, "check_committed", (task.ts, f"lane{task.thread_id}"), reply(lambda r: Ok(r[1])))


def _executed(res: tuple[Any, ...]) -> Result:
    failed = None
    if res[2] is not None:
        i, errno = res[2]
        failed = StatementFailure(i, 0, errno, "duplicate key" if errno == 1062 else "deadlock")
    return Ok(Executed(res[1], failed))


def _failure(res: tuple[Any, ...], peer: bool = False) -> Result:
    kind = res[0]
    if kind == "fenced":
        return FencedOut(f"newer epoch {res[1]}")
    if kind == "stmt_error":
        return SqlFailed(res[1], res[2], peer_failed=peer)
    return Down(Cause.TIMEOUT if kind == "timeout" else Cause.REFUSED, kind, peer_failed=peer)

