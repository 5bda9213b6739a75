"""A transcript driver for ``coordinator.core``: commands in, the core's ``Ready`` out.

In the style of etcd raft's datadriven tests. A transcript (``testdata/*.txt``) is a
sequence of blocks::

    command arg key=value ...
    ----
    expected output

Every command that steps the core prints the ``Ready`` that follows (``ready()`` is
called after each step), so a transcript reads as "events in, Ready out". Commands:

``new n=3 t=1 mode=cabinet [leader=r1] [max_batch=64] [memory_log=200000] [window=10000] [pipeline=false]``
    (``pipeline=true``: a batch's COMMIT carries the next batch, ``LeadCommit … then [...]``)
``boot``                    recovery on empty servers, every replica healthy and open
``start``                   begin recovery (then answer its control tasks yourself)
``propose h=1 sql=... [sql=...] [kind=write|txn|ddl|noop] [key=request-id] [timeout=5]``
``done RID RESULT ...``     the in-flight action of RID finished; RESULT is one of
    ``ok [latency=ms]`` · ``executed 1,7 1,8+1,0 [fail=I.J.ERRNO]`` (per request, statements
    joined by ``+``) · ``opened epoch= applied= applied_epoch= [ddl=] [mark=] [floor=] [thread=] [present=TS,…]``
    · ``found EPOCH|none`` · ``peerlog floor=F TS:EPOCH ...`` · ``snapshot epoch= applied= applied_epoch=``
    · ``copied ROWS`` · ``down refused|timeout|io [peer]`` · ``sqlfailed ERRNO [peer]`` · ``fenced``
``control ID RESULT ...``   a control task finished: ``ok`` · ``snapshot ...`` · ``entries TS:EPOCH ...``
    · ``down CAUSE`` · ``sqlfailed ERRNO``
``txn h=1 lane=7 sql=... [sql=...] [rid=LEADER] [term=CURRENT] [thread=70]``  an interactive COMMIT
``lanedone LANE RESULT``    the lane's CommitTxn finished (``ok`` · ``down CAUSE`` · ``sqlfailed ERRNO`` · ``fenced``);
    a control task's ``ok true|false`` answers a CheckCommitted
``poll RID ok [ms]|refused|timeout``   one health poll
``tick SECONDS``            time passes (a Tick is stepped)
``failover h=9 [target=r2] [planned=true|false] [expected=r1]``
``mode NAME`` · ``status`` · ``log``
"""

from __future__ import annotations

import shlex
from typing import Any

from coordinator.core import actions as A
from coordinator.core.config import CoreConfig, ReplicaInfo
from coordinator.core.failover import FailoverOutcome
from coordinator.core.health import Outcome
from coordinator.core.messages import (
    Cause,
    ControlDone,
    Done,
    Down,
    Executed,
    FailoverRequest,
    FencedOut,
    LaneDone,
    LaneThread,
    Ok,
    Opened,
    PeerLog,
    Poll,
    Propose,
    Snapshot,
    SqlFailed,
    StatementFailure,
    Tick,
    TxnCommit,
)
from coordinator.core.node import Core
from coordinator.core.outcomes import ApiError, WriteOutcome
from coordinator.core.replog import Entry, EntryKind, Statement

WALL0 = 1_700_000_000_000_000


def synthetic(ts: int, epoch: int) -> Entry:
    return Entry(ts, epoch, EntryKind.WRITE, (Statement(f"INSERT INTO t VALUES ({ts})"),), WALL0, 1, 2)


def snapshot(kw: dict[str, str]) -> Snapshot:
    g = lambda k, d=0: int(kw.get(k, d))  # noqa: E731
    return Snapshot(g("epoch"), g("applied"), g("applied_epoch", g("epoch")), g("mark"), g("ddl"),
                    kw.get("leader", ""), g("floor"))


def _entries(e: tuple[Entry, ...] | list[Entry]) -> str:
    if not e:
        return "none"
    first, last = e[0].ts, e[-1].ts
    return f"{first}" if first == last else f"{first}..{last}"


def show_action(a: A.ReplicaAction) -> str:
    name = type(a).__name__
    if isinstance(a, A.Open):
        check = f" check={','.join(map(str, a.check_ts))}" if a.check_ts else ""
        return f"{name} kill={a.kill_thread}{check}"
    if isinstance(a, A.LeadExecute):
        items = " | ".join("; ".join(s) for s, _ in a.items)
        return f"{name}{' begin' if a.begin else ''} [{items}]"
    if isinstance(a, (A.LeadCommit, A.ApplyBatch)):
        marks = [e.mark for e in a.entries if e.mark]
        extra = f" mark={marks[-1]}" if marks else ""
        trim = f" trim<{a.trim_below}" if a.trim_below else ""
        then = (" then [" + " | ".join("; ".join(s) for s, _ in a.then) + "]"
                if isinstance(a, A.LeadCommit) and a.then else "")
        return f"{name} entries={_entries(a.entries)} epoch={a.epoch}{extra}{trim}{then}"
    if isinstance(a, (A.AloneMark, A.AloneFinish)):
        return f"{name} entry={a.entry.ts} epoch={a.epoch}"
    if isinstance(a, A.AloneRun):
        return f"{name} entry={a.entry.ts}{' tolerate' if a.tolerate else ''}"
    if isinstance(a, A.AloneAbort):
        return f"{name} ts={a.ts}"
    if isinstance(a, A.Rollback):
        return f"{name}{' to ' + a.savepoint if a.savepoint else ''}"
    if isinstance(a, A.LookupEntry):
        return f"{name} ts={a.ts} peers={','.join(a.peers)}"
    if isinstance(a, A.ReadPeer):
        return f"{name} peer={a.peer} after={a.after}"
    if isinstance(a, A.RebuildBegin):
        return f"{name} source={a.source}"
    if isinstance(a, A.RebuildCopy):
        return f"{name} epoch={a.epoch} at={a.applied_ts}/{a.applied_epoch}"
    return name


def show_lane(a: A.LaneAction) -> str:
    if isinstance(a, A.CommitTxn):
        return f"CommitTxn {a.rid} entry={a.entry.ts} epoch={a.epoch} [{'; '.join(s.sql for s in a.entry.statements)}]"
    if isinstance(a, A.ParkedRun):
        return f"ParkedRun {a.rid} [{'; '.join(a.statements)}]"
    return f"LaneEnd {a.rid}"


def show_control(c: A.ControlTask) -> str:
    name = type(c).__name__
    if isinstance(c, A.BumpEpoch):
        return f"{name} {c.rid} epoch={c.epoch} leader={c.leader} if<={c.expect_at_most}"
    if isinstance(c, A.ReadLog):
        return f"{name} {c.rid} after={c.after} limit={c.limit}"
    if isinstance(c, A.SetReadOnly):
        return f"{name} {c.rid} {'on' if c.on else 'off'}"
    if isinstance(c, A.CheckCommitted):
        return f"{name} {c.rid} ts={c.ts} kill={c.thread_id}"
    return f"{name} {c.rid}"


def show_outcome(o: Any) -> str:
    if isinstance(o, WriteOutcome):
        q = o.quorum
        return (f"ok ts={o.ts} results={[tuple(r) for r in o.results]} acked={','.join(q['acked'])} "
                f"followers={o.followers_applied}/{o.followers}{' replayed' if o.replayed else ''}")
    if isinstance(o, ApiError):
        return f"error {o.status} {o.code}: {o.message}"
    if isinstance(o, FailoverOutcome):
        return "failover ok" if o.error is None else f"failover error {o.error.status} {o.error.code}: {o.error.message}"
    return repr(o)


class Driver:
    def __init__(self) -> None:
        self.core: Core | None = None
        self.now = 1000.0

    @property
    def c(self) -> Core:
        assert self.core is not None, "use 'new' first"
        return self.core

    def _wall(self) -> int:
        return WALL0 + int((self.now - 1000.0) * 1_000_000)

    def step(self, ev: Any) -> str:
        self.c.step(ev, self.now, self._wall())
        return self.ready()

    def ready(self) -> str:
        rd = self.c.ready()
        out = [f"action {a.rid} {show_action(a)}" for a in rd.actions]
        out += [f"lane {a.lane} {show_lane(a)}" for a in rd.lane_actions]
        out += [f"control {c.id} {show_control(c)}" for c in rd.control]
        out += [f"outcome h{h} {show_outcome(o)}" for h, o in rd.outcomes]
        out += [f"event {k}: {m}" for k, m, _ in rd.events]
        out += [f"log {lvl} {what} " + " ".join(f"{k}={v}" for k, v in f.items()) for lvl, what, f in rd.logs]
        return "\n".join(out)

    # --- commands ---

    def run(self, line: str) -> str:
        words = shlex.split(line)
        cmd, args = words[0], words[1:]
        kw = {a.split("=", 1)[0]: a.split("=", 1)[1] for a in args if "=" in a}
        pos = [a for a in args if "=" not in a]
        return getattr(self, "cmd_" + cmd)(pos, kw, args)

    def cmd_new(self, pos: list[str], kw: dict[str, str], _args: list[str]) -> str:
        n = int(kw.get("n", 3))
        reps = tuple(ReplicaInfo(f"r{i}", f"mysql-r{i}") for i in range(1, n + 1))
        cfg = CoreConfig(replicas=reps, initial_leader=kw.get("leader", "r1"), failure_threshold=int(kw.get("t", 1)),
                         mode=kw.get("mode", "cabinet"), max_batch_entries=int(kw.get("max_batch", 64)),
                         memory_log_entries=int(kw.get("memory_log", 200_000)),
                         timestamp_window=int(kw.get("window", 10_000)),
                         pipeline_commit=kw.get("pipeline", "false") == "true")
        self.core = Core(cfg)
        self.now = 1000.0
        return ""

    def cmd_start(self, pos: list[str], kw: dict[str, str], _a: list[str]) -> str:
        self.c.start(self.now, self._wall())
        return self.ready()

    def cmd_boot(self, pos: list[str], kw: dict[str, str], _a: list[str]) -> str:
        """Recovery on empty servers, then every replica polled healthy and opened."""
        c = self.c
        c.start(self.now, self._wall())
        self._answer_all_control(lambda t: Ok(Snapshot(0, 0, 0, 0, 0, "", 0)))
        self._answer_all_control(lambda t: Ok(Snapshot(t.epoch, 0, 0, 0, 0, t.leader, 0)))
        self._answer_all_control(lambda t: Ok([]))
        for rid in c.st.replicas:
            c.step(Poll(rid, Outcome.OK, 1.0), self.now, self._wall())
        rd = c.ready()
        for a in rd.actions:
            c.step(Done(a.rid, a.seq, Ok(Opened(Snapshot(c.st.epoch, 0, 0, 0, 0, "", 0), 10 + int(a.rid[1:])))),
                   self.now, self._wall())
        c.ready()
        return self.cmd_status([], {}, [])

    def _answer_all_control(self, make: Any) -> None:
        rd = self.c.ready()
        for t in rd.control:
            self.c.step(ControlDone(t.id, make(t)), self.now, self._wall())

    def cmd_propose(self, pos: list[str], kw: dict[str, str], args: list[str]) -> str:
        sqls = tuple(a.split("=", 1)[1] for a in args if a.startswith("sql="))
        kind = {"write": EntryKind.WRITE, "txn": EntryKind.TXN, "ddl": EntryKind.DDL, "noop": EntryKind.NOOP}[
            kw.get("kind", "txn" if len(sqls) > 1 else "write")]
        timeout = float(kw["timeout"]) if "timeout" in kw else None
        return self.step(Propose(int(kw["h"]), kind, sqls, (11, 22), kw.get("key", ""), False, timeout))

    def _result(self, pos: list[str], kw: dict[str, str]) -> Any:
        kind, rest = pos[0], pos[1:]
        peer = "peer" in rest
        if kind == "ok":
            if rest and rest[0] in ("true", "false"):
                return Ok(rest[0] == "true")
            return Ok(None, float(kw.get("latency", 1.0)))
        if kind == "executed":
            per = tuple(tuple(tuple(int(x) for x in st.split(",")) for st in req.split("+")) if req != "-" else ()
                        for req in rest)
            failed = None
            if "fail" in kw:
                i, j, errno = kw["fail"].split(".")
                failed = StatementFailure(int(i), int(j), int(errno), kw.get("msg", f"error {errno}"))
            return Ok(Executed(per, failed), float(kw.get("latency", 1.0)))
        if kind == "opened":
            present = frozenset(int(x) for x in kw["present"].split(",")) if kw.get("present") else frozenset()
            return Ok(Opened(snapshot(kw), int(kw.get("thread", 99)), present))
        if kind == "snapshot":
            return Ok(snapshot(kw))
        if kind == "found":
            return Ok(None if rest[0] == "none" else int(rest[0]))
        if kind == "peerlog":
            return Ok(PeerLog(int(kw.get("floor", 1)),
                              tuple(synthetic(int(x.split(":")[0]), int(x.split(":")[1])) for x in rest)))
        if kind == "entries":
            return Ok([synthetic(int(x.split(":")[0]), int(x.split(":")[1])) for x in rest])
        if kind == "copied":
            return Ok(int(rest[0]))
        if kind == "down":
            return Down(Cause(rest[0]), f"{rest[0]} (test)", peer_failed=peer)
        if kind == "sqlfailed":
            return SqlFailed(int(rest[0]), kw.get("msg", f"error {rest[0]}"), peer_failed=peer)
        if kind == "fenced":
            return FencedOut("CONSTRAINT `coordinator_epoch_fence` failed (test)")
        raise ValueError(kind)

    def cmd_done(self, pos: list[str], kw: dict[str, str], _a: list[str]) -> str:
        rid = pos[0]
        a = self.c.st.replicas[rid].inflight
        assert a is not None, f"{rid} has no action in flight"
        return self.step(Done(rid, a.seq, self._result(pos[1:], kw)))

    def cmd_txn(self, pos: list[str], kw: dict[str, str], args: list[str]) -> str:
        sqls = [a.split("=", 1)[1] for a in args if a.startswith("sql=")]
        stmts = tuple((sql, 0, 1) for sql in sqls)
        st = self.c.st
        return self.step(TxnCommit(int(kw["h"]), int(kw["lane"]), kw.get("rid", st.leader_id),
                                   int(kw.get("term", st.leader_term)), stmts, self._wall(), (11, 22),
                                   int(kw.get("thread", 70))))

    def cmd_lanedone(self, pos: list[str], kw: dict[str, str], _a: list[str]) -> str:
        lane = self.c.st.lanes.get(int(pos[0]))
        assert lane is not None, f"lane {pos[0]} has no commit in flight"
        return self.step(LaneDone(lane.lane, lane.seq, self._result(pos[1:], kw)))

    def cmd_lanethread(self, pos: list[str], kw: dict[str, str], _a: list[str]) -> str:
        lane = self.c.st.lanes[int(pos[0])]
        return self.step(LaneThread(lane.lane, lane.seq, int(pos[1])))

    def cmd_control(self, pos: list[str], kw: dict[str, str], _a: list[str]) -> str:
        return self.step(ControlDone(int(pos[0]), self._result(pos[1:], kw)))

    def cmd_poll(self, pos: list[str], kw: dict[str, str], _a: list[str]) -> str:
        rid, what = pos[0], pos[1]
        if what == "ok":
            return self.step(Poll(rid, Outcome.OK, float(pos[2]) if len(pos) > 2 else 1.0))
        return self.step(Poll(rid, Outcome(what), None, what))

    def cmd_tick(self, pos: list[str], kw: dict[str, str], _a: list[str]) -> str:
        self.now += float(pos[0])
        return self.step(Tick())

    def cmd_failover(self, pos: list[str], kw: dict[str, str], _a: list[str]) -> str:
        return self.step(FailoverRequest(int(kw["h"]), kw.get("reason", "operator"), kw.get("target"),
                                         kw.get("planned", "true") == "true", kw.get("expected")))

    def cmd_reset(self, pos: list[str], kw: dict[str, str], _a: list[str]) -> str:
        """``reset begin`` / ``reset end`` (gave up) / ``reset cleared`` (restart_empty)."""
        {"begin": self.c.begin_reset, "end": self.c.end_reset, "cleared": lambda: self.c.restart_empty([])}[pos[0]]()
        return self.ready()

    def cmd_mode(self, pos: list[str], kw: dict[str, str], _a: list[str]) -> str:
        self.c.set_mode(pos[0])
        return self.ready()

    def cmd_status(self, pos: list[str], kw: dict[str, str], _a: list[str]) -> str:
        st = self.c.st
        w = st.writes
        lines = [f"leader={st.leader_id} epoch={st.epoch} {'active' if st.active else 'inactive'}"
                 f"{' fenced' if st.fenced else ''}{' resetting' if st.resetting else ''}{' draining' if st.draining else ''} commit={st.commit_ts} last={st.log.last_ts} "
                 f"queue={len(w.queue)} waiting={len(w.waiters)} unanswered={w.inflight}"
                 f"{' in-doubt=' + _entries(st.in_doubt.entries) if st.in_doubt else ''}"
                 f"{' pending=' + ','.join(f'{p.first_ts}:{p.status}' for p in st.commits) if st.commits else ''}"
                 f"{' failover=' + st.failover.phase if st.failover else ''}"]
        for rid, rs in st.replicas.items():
            flags = [f for f in ("connected", "healthy", "diverged", "needs_rebuild", "rebuilding") if getattr(rs, f)]
            busy = f" busy={type(rs.inflight).__name__}" if rs.inflight else ""
            lines.append(f"{rid} applied={rs.applied_ts}/{rs.applied_epoch} {rs.phase.value} {' '.join(flags)}{busy}")
        return "\n".join(lines)

    def cmd_log(self, pos: list[str], kw: dict[str, str], _a: list[str]) -> str:
        st = self.c.st
        return " ".join(f"{e.ts}:{e.epoch}" for e in st.log.entries) + f" (floor {st.log.floor_ts})"


def run_file(path: str) -> tuple[str, str]:
    """(expected, actual) text of a transcript file."""
    text = open(path).read()
    blocks = text.split("\n\n")
    d = Driver()
    out_blocks = []
    for block in blocks:
        if not block.strip():
            continue
        lines = block.strip("\n").split("\n")
        comments = [ln for ln in lines if ln.startswith("#")]
        body = [ln for ln in lines if not ln.startswith("#")]
        if not body:
            out_blocks.append("\n".join(comments))
            continue
        sep = body.index("----") if "----" in body else len(body)
        cmd = " ".join(body[:sep])
        try:
            got = d.run(cmd)
        except AssertionError as exc:  # a command that cannot run here (e.g. no action in flight)
            got = f"error: {exc}"
        out_blocks.append("\n".join(comments + [cmd, "----"] + ([got] if got else [])))
    return text.strip() + "\n", "\n\n".join(out_blocks).strip() + "\n"
