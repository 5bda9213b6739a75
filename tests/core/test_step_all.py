"""``Core.step_all`` (the shell steps the writes that arrived in one turn of its event loop
together) decides exactly what stepping them one at a time decides."""

from __future__ import annotations

import copy

from hypothesis import given, settings
from hypothesis import strategies as s

from coordinator.core.messages import Event, Propose
from coordinator.core.replog import EntryKind
from tests.core.harness import Driver


def _booted(pipeline: bool) -> Driver:
    d = Driver()
    d.run(f"new n=3 pipeline={'true' if pipeline else 'false'}")
    d.run("boot")
    return d


@settings(max_examples=60, deadline=None)
@given(first=s.integers(0, 5), burst=s.lists(s.sampled_from(["w", "txn", "ddl", "keyed", "dup"]), min_size=1,
                                                max_size=12), pipeline=s.booleans())
def test_step_all_decides_as_one_step_per_write(first: int, burst: list[str], pipeline: bool) -> None:
    d = _booted(pipeline)
    for h in range(first):  # something in flight first: the leader busy, writes queued behind it
        d.run(f"propose h={100 + h} sql='INSERT INTO t VALUES ({h})'")
    evs: list[Event] = []
    for i, kind in enumerate(burst):
        stmts = ("INSERT INTO t VALUES (1)", "UPDATE t SET v=2") if kind == "txn" else (
            ("ALTER TABLE t ADD c INT",) if kind == "ddl" else (f"INSERT INTO t VALUES ({i})",))
        key = "k" if kind in ("keyed", "dup") else ""  # "dup": a retry of the same key in the same burst
        ek = {"txn": EntryKind.TXN, "ddl": EntryKind.DDL}.get(kind, EntryKind.WRITE)
        evs.append(Propose(200 + i, ek, stmts, (11, 22), key))
    one, together = d.c, copy.deepcopy(d.c)
    for ev in evs:
        one.step(ev, d.now, d._wall())
    a = one.ready()
    together.step_all(evs, d.now, d._wall())
    b = together.ready()
    assert (a.actions, a.outcomes, a.lane_actions, a.control, a.events) == \
        (b.actions, b.outcomes, b.lane_actions, b.control, b.events)
    assert [(r.handle, r.statements) for r in one.st.writes.queue] == \
        [(r.handle, r.statements) for r in together.st.writes.queue]
