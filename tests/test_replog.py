"""ReplicatedLog: append order, after() batching around entries applied alone, trim and reset."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coordinator.core.replog import Entry, EntryKind, ReplicatedLog, Statement


def entry(ts: int, kind: EntryKind = EntryKind.WRITE, epoch: int = 1) -> Entry:
    stmts = () if kind is EntryKind.NOOP else (Statement(f"INSERT INTO t VALUES ({ts})"),)
    return Entry(ts, epoch, kind, stmts, time_us=1_000_000 * ts, seed1=ts, seed2=ts + 1)


def log_of(*specs: int | tuple[int, EntryKind]) -> ReplicatedLog:
    log = ReplicatedLog()
    log.append([entry(s) if isinstance(s, int) else entry(*s) for s in specs])
    return log


def tss(entries: list[Entry] | None) -> list[int] | None:
    return None if entries is None else [e.ts for e in entries]


def test_alone_kinds() -> None:
    assert {k for k in EntryKind if entry(1, k).alone} == {EntryKind.DDL, EntryKind.RESET}


def test_append_enforces_order() -> None:
    log = log_of(1, 2, 5)
    assert log.last_ts == 5
    for bad in (5, 4, 0):
        with pytest.raises(ValueError, match="not above"):
            log.append([entry(bad)])
    assert tss(log.entries) == [1, 2, 5] and log.last_ts == 5
    with pytest.raises(ValueError):
        log.append([entry(7), entry(7)])
    assert log.last_ts == tss(log.entries)[-1]
    assert tss(log.entries) == sorted(set(tss(log.entries)))
    log.append([entry(9), entry(10)])
    assert log.last_ts == 10


def test_append_empty_batch() -> None:
    log = log_of(1)
    log.append([])
    assert log.last_ts == 1 and len(log.entries) == 1


def test_after_basic_and_gaps() -> None:
    log = log_of(2, 4, 6, 8)
    assert tss(log.after(0, 10)) == [2, 4, 6, 8]
    assert tss(log.after(3, 10)) == [4, 6, 8]  # ts between entries
    assert tss(log.after(4, 10)) == [6, 8]  # strictly after
    assert tss(log.after(8, 10)) == []
    assert tss(log.after(100, 10)) == []
    assert tss(log.after(0, 2)) == [2, 4]
    assert tss(log.after(0, 0)) == []


def test_after_cuts_at_entries_applied_alone() -> None:
    log = log_of(1, 2, (3, EntryKind.DDL), (4, EntryKind.RESET), 5, (6, EntryKind.DDL))
    assert tss(log.after(0, 100)) == [1, 2]  # cut before the DDL
    assert tss(log.after(1, 100)) == [2]
    assert tss(log.after(2, 100)) == [3]  # the DDL alone
    assert tss(log.after(3, 100)) == [4]  # the RESET alone
    assert tss(log.after(4, 100)) == [5]
    assert tss(log.after(5, 100)) == [6]
    assert tss(log.after(2, 1)) == [3]
    # a NOOP and a TXN batch with writes
    log2 = log_of(1, (2, EntryKind.NOOP), (3, EntryKind.TXN), (4, EntryKind.DDL))
    assert tss(log2.after(0, 100)) == [1, 2, 3]


def test_after_limit_before_alone_entry() -> None:
    log = log_of(1, 2, 3, (4, EntryKind.DDL))
    assert tss(log.after(0, 2)) == [1, 2]
    assert tss(log.after(0, 3)) == [1, 2, 3]


def test_trim_and_floor() -> None:
    log = log_of(*range(1, 11))
    log.trim(20)  # nothing to drop
    assert log.floor_ts == 0 and len(log.entries) == 10
    log.trim(4)
    assert tss(log.entries) == [7, 8, 9, 10]
    assert log.floor_ts == 6 and log.last_ts == 10
    assert log.after(5, 100) is None  # entry 6 is gone
    assert log.after(0, 100) is None
    assert tss(log.after(6, 100)) == [7, 8, 9, 10]
    assert tss(log.after(8, 1)) == [9]
    log.trim(0)
    assert log.entries == [] and log.floor_ts == 10 and log.last_ts == 10
    assert log.after(10, 5) == []
    assert log.after(9, 5) is None
    log.append([entry(11)])
    assert tss(log.after(10, 5)) == [11]


def test_reset() -> None:
    log = log_of(1, 2, 3)
    log.reset(last_ts=50)
    assert log.entries == [] and log.last_ts == 50 and log.floor_ts == 50
    with pytest.raises(ValueError):
        log.append([entry(50)])
    assert log.after(49, 10) is None
    assert log.after(50, 10) == []
    log.append([entry(51)])
    assert tss(log.after(50, 10)) == [51]
    log.reset()
    assert (log.entries, log.last_ts, log.floor_ts) == ([], 0, 0)
    log.append([entry(1)])
    assert tss(log.after(0, 1)) == [1]


# --- model-based -----------------------------------------------------------------------------


def reference_after(held: list[Entry], floor: int, ts: int, limit: int) -> list[Entry] | None:
    if ts < floor:
        return None
    out: list[Entry] = []
    for e in held:
        if e.ts <= ts:
            continue
        if len(out) == limit:
            break
        if e.alone:
            if not out:
                out.append(e)
            break
        out.append(e)
    return out


KINDS = st.sampled_from([EntryKind.WRITE, EntryKind.WRITE, EntryKind.TXN, EntryKind.NOOP, EntryKind.DDL,
                         EntryKind.RESET])
OPS = st.lists(
    st.one_of(
        st.tuples(st.just("append"), st.lists(st.tuples(st.integers(1, 3), KINDS), max_size=6)),
        st.tuples(st.just("trim"), st.integers(0, 12)),
        st.tuples(st.just("reset"), st.integers(0, 5)),
        st.tuples(st.just("after"), st.integers(-1, 60), st.integers(0, 8)),
    ),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(OPS)
def test_log_matches_model(ops: list[tuple]) -> None:
    log = ReplicatedLog()
    held: list[Entry] = []
    floor = last = 0
    for op in ops:
        if op[0] == "append":
            batch = []
            ts = last
            for gap, kind in op[1]:
                ts += gap
                batch.append(entry(ts, kind))
            log.append(batch)
            held += batch
            last = ts
        elif op[0] == "trim":
            excess = len(held) - op[1]
            if excess > 0:
                floor = held[excess - 1].ts
                held = held[excess:]
            log.trim(op[1])
        elif op[0] == "reset":
            last = floor = last + op[1]
            held = []
            log.reset(last)
        else:
            _, ts, limit = op
            got = log.after(ts, limit)
            assert got == reference_after(held, floor, ts, limit)
            if got:
                assert len(got) <= limit
                assert all(not e.alone for e in got) or len(got) == 1
                assert all(e.ts > ts for e in got)
        assert log.entries == held
        assert (log.last_ts, log.floor_ts) == (last, floor)
        # every held entry can be reached from the floor, in order, batch by batch
        pos, seen = floor, []
        while (chunk := log.after(pos, 3)):
            seen += chunk
            pos = chunk[-1].ts
        assert seen == held
