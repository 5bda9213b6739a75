"""TimestampAllocator: unique, strictly increasing, never reused — also across crashes.

The property test drives the allocator with random operation sequences against a
model of what the outside world may have seen (docstring of ``run_history``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coordinator.core.timestamps import TimestampAllocator


@dataclass
class Pending:
    values: list[int]  # timestamps carried by this batch (empty for a mark-only NOOP)
    mark: int | None  # the mark the batch must persist, if any


@dataclass
class World:
    """What the replicas hold and what clients may have seen, across incarnations."""

    window: int
    cls: type[TimestampAllocator] = TimestampAllocator
    alloc: TimestampAllocator = field(init=False)
    pending: list[Pending] = field(default_factory=list)
    persisted_marks: list[int] = field(default_factory=list)  # every mark that reached a quorum
    highest_seen: int = 0  # highest timestamp of a batch that reached a quorum
    exposed_max: int = 0  # highest value that may have been exposed in any earlier incarnation
    incarnation_last: int = 0  # last value handed out by the current incarnation (0 = none)
    maybe_exposed: list[int] = field(default_factory=list)  # values of this incarnation possibly seen
    unresolved_batch_values: list[int] = field(default_factory=list)
    handed_out: int = 0
    crashes: int = 0

    def __post_init__(self) -> None:
        self.alloc = self.cls(window=self.window)

    def handed(self, values: list[int]) -> None:
        for v in values:
            assert v > self.incarnation_last, f"{v} not above {self.incarnation_last} in the same incarnation"
            assert v > self.exposed_max, f"{v} reuses/undercuts a value that may have been exposed ({self.exposed_max})"
            self.incarnation_last = v
        self.handed_out += len(values)


def run_history(window: int, ops: list[tuple], cls: type[TimestampAllocator] = TimestampAllocator) -> World:
    """Apply ``ops`` to an allocator and check I3 after every step.

    Model of the outside world (what may have been exposed, what survives a crash):

    * ``take_for_batch(k)`` values travel inside a log batch to a quorum before any
      client learns them. While the batch is pending they are exposed to nobody.
      The batch is then *persisted* (reached a quorum: its values and its mark, if
      any, are durable together, so recovery sees both) or *failed* (it reached no
      quorum: values and mark are lost; the caller reports ``mark_failed``).
      Conservatively, a batch value <= ``durable`` at any time is also treated as
      possibly exposed even if its batch failed.
    * ``take_single`` values are handed to a client at once, but only when they are
      <= ``durable``, a mark already persisted on a quorum.
    * ``needs_mark`` yields a mark-only batch (a NOOP) that is persisted or failed
      like any other batch.
    * A crash loses the allocator. Each batch still pending at that moment either
      reached a quorum after all (it then counts as persisted: its values are seen
      and its mark counts) or did not (lost). Recovery gets ``highest_seen`` = the
      highest value of any persisted batch and ``persisted_mark`` = the highest mark
      that was persisted — nothing else.

    Checked: every value handed out is above every earlier value of the same
    incarnation and above every value any earlier incarnation may have exposed;
    ``take_single`` never exceeds ``durable`` and respects parity; ``durable`` only
    grows within an incarnation; a returned mark lies above every value handed out.
    """
    w = World(window, cls)
    for op in ops:
        a = w.alloc
        durable_before = a.durable
        kind = op[0]
        if kind == "batch":
            rng, mark = a.take_for_batch(op[1])
            values = list(rng)
            assert len(values) == op[1]
            w.handed(values)
            if mark is not None:
                assert mark > values[-1]
            w.pending.append(Pending(values, mark))
        elif kind == "single":
            parity = op[1]
            v = a.take_single(parity)
            if v is not None:
                w.handed([v])
                assert v <= a.durable, f"single {v} above durable {a.durable}"
                if parity is not None:
                    assert v % 2 == parity
                w.maybe_exposed.append(v)
        elif kind == "needs_mark":
            mark = a.needs_mark()
            if mark is not None:
                assert mark > a.last
                w.pending.append(Pending([], mark))
        elif kind in ("persist", "fail"):
            if not w.pending:
                continue
            b = w.pending.pop(op[1] % len(w.pending))
            if kind == "persist":
                w.highest_seen = max([w.highest_seen, *b.values])
                w.maybe_exposed.extend(b.values)
                if b.mark is not None:
                    w.persisted_marks.append(b.mark)
                    a.mark_persisted(b.mark)
            else:
                w.unresolved_batch_values.extend(b.values)
                if b.mark is not None:
                    a.mark_failed()
        elif kind == "crash":
            reached = op[1]
            for i, b in enumerate(w.pending):
                if i < len(reached) and reached[i]:
                    w.highest_seen = max([w.highest_seen, *b.values])
                    w.maybe_exposed.extend(b.values)
                    if b.mark is not None:
                        w.persisted_marks.append(b.mark)
            w.pending.clear()
            # conservative: failed batch values at or below durable count as possibly exposed
            w.maybe_exposed.extend(v for v in w.unresolved_batch_values if v <= a.durable)
            w.exposed_max = max([w.exposed_max, *w.maybe_exposed])
            w.maybe_exposed.clear()
            w.unresolved_batch_values.clear()
            w.alloc = cls.recovered(w.highest_seen, max(w.persisted_marks, default=0), window)
            w.incarnation_last = 0
            w.crashes += 1
            assert w.alloc.last >= w.exposed_max
        else:  # pragma: no cover
            raise AssertionError(op)
        if kind != "crash":
            assert w.alloc.durable >= durable_before
            assert w.alloc.last >= w.incarnation_last
    return w


OPS = st.lists(
    st.one_of(
        st.tuples(st.just("batch"), st.integers(1, 40)),
        st.tuples(st.just("single"), st.sampled_from([0, 1, None])),
        st.tuples(st.just("single"), st.sampled_from([0, 1, None])),
        st.tuples(st.just("needs_mark")),
        st.tuples(st.just("persist"), st.integers(0, 7)),
        st.tuples(st.just("persist"), st.integers(0, 7)),
        st.tuples(st.just("fail"), st.integers(0, 7)),
        st.tuples(st.just("crash"), st.lists(st.booleans(), max_size=6)),
    ),
    max_size=120,
)


@settings(max_examples=400, deadline=None)
@given(window=st.integers(2, 64), ops=OPS)
def test_unique_increasing_across_crashes(window: int, ops: list[tuple]) -> None:
    run_history(window, ops)


def test_model_can_fail() -> None:
    """The checker catches a recovery that resumes below the persisted mark."""

    class Forgetful(TimestampAllocator):
        @classmethod
        def recovered(cls, highest_seen: int, persisted_mark: int, window: int) -> TimestampAllocator:
            return TimestampAllocator(last=highest_seen, durable=highest_seen, window=window)

    ops = [("needs_mark",), ("persist", 0), ("single", None), ("single", None), ("crash", []),
           ("needs_mark",), ("persist", 0), ("single", None)]
    with pytest.raises(AssertionError, match="exposed"):
        run_history(10, ops, Forgetful)
    w = run_history(10, ops)  # the real allocator passes the same history
    assert w.crashes == 1 and w.handed_out == 3


# --- example-based ---------------------------------------------------------------------------


def test_fresh_allocator_needs_a_mark_before_single() -> None:
    a = TimestampAllocator(window=100)
    assert a.take_single() is None
    mark = a.needs_mark()
    assert mark == 100
    assert a.take_single() is None  # not persisted yet
    a.mark_persisted(mark)
    assert [a.take_single() for _ in range(3)] == [1, 2, 3]


def test_parity() -> None:
    a = TimestampAllocator(window=100)
    a.mark_persisted(a.needs_mark())
    assert a.take_single(1) == 1
    assert a.take_single(1) == 3
    assert a.take_single(0) == 4
    assert a.take_single(0) == 6
    assert a.take_single(None) == 7
    assert a.take_single(0) == 8


def test_single_stops_at_durable() -> None:
    a = TimestampAllocator(window=4)
    a.mark_persisted(a.needs_mark())  # durable 4
    assert [a.take_single() for _ in range(4)] == [1, 2, 3, 4]
    assert a.take_single() is None
    assert a.last == 4
    a2 = TimestampAllocator(window=4)
    a2.mark_persisted(a2.needs_mark())
    assert a2.take_single(1) == 1 and a2.take_single(1) == 3
    assert a2.take_single(1) is None  # 5 > 4
    assert a2.take_single(0) == 4


def test_batches_run_past_durable_and_block_singles() -> None:
    a = TimestampAllocator(window=10)
    rng, mark = a.take_for_batch(3)
    assert list(rng) == [1, 2, 3]
    assert mark == 13 and a.reserving == 13
    rng, mark = a.take_for_batch(2)
    assert list(rng) == [4, 5] and mark is None  # 5 + 5 <= 13: the reservation has room
    rng, mark = a.take_for_batch(4)
    assert list(rng) == [6, 7, 8, 9] and mark == 19  # 9 + 5 > 13
    assert a.take_single() is None  # durable is still 0
    a.mark_persisted(13)
    assert a.reserving == 19  # a later reservation is still outstanding
    assert a.take_single() == 10
    a.mark_persisted(19)
    assert a.reserving == 0 and a.durable == 19


def test_failed_mark_is_retried() -> None:
    a = TimestampAllocator(window=10)
    _, mark = a.take_for_batch(1)
    assert mark == 11
    _, again = a.take_for_batch(1)
    assert again is None  # reserving covers it
    a.mark_failed()
    assert a.reserving == 0
    _, retry = a.take_for_batch(1)
    assert retry == 13


def test_stale_mark_does_not_lower_durable() -> None:
    a = TimestampAllocator(window=10)
    a.mark_persisted(50)
    a.mark_persisted(20)
    assert a.durable == 50


@pytest.mark.parametrize("window", [2, 3, 10])
@pytest.mark.parametrize("parity", [0, 1, None])
def test_single_makes_progress_after_needs_mark(window: int, parity: int | None) -> None:
    a = TimestampAllocator(window=window)
    got = []
    for _ in range(20):
        v = a.take_single(parity)
        if v is None:
            mark = a.needs_mark()
            assert mark is not None
            a.mark_persisted(mark)
            v = a.take_single(parity)
            assert v is not None, "a freshly persisted mark must leave room for one value"
        got.append(v)
    assert got == sorted(set(got))


def test_recovered_resumes_above_everything() -> None:
    a = TimestampAllocator.recovered(highest_seen=120, persisted_mark=100, window=50)
    assert (a.last, a.durable) == (120, 120)
    b = TimestampAllocator.recovered(highest_seen=10, persisted_mark=10_000, window=50)
    assert (b.last, b.durable) == (10_000, 10_000)
    assert b.take_single() is None  # must persist a new mark first
    assert list(b.take_for_batch(1)[0]) == [10_001]
