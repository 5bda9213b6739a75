"""coordinator.gcpolicy: full collections skip what survived the last one, garbage made afterwards is
still collected, and a refresh hands the frozen objects back. In-process (the GC is process-wide):
each test uninstalls the policy, whatever happens."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from coordinator.gcpolicy import GcPolicy


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


def cycle() -> weakref.ref[Node]:
    a, b = Node(), Node()
    a.other, b.other = b, a
    return weakref.ref(a)


@pytest.fixture
def policy() -> Iterator[GcPolicy]:
    p = GcPolicy(refresh_s=3600)
    p.install()
    try:
        yield p
    finally:
        p.uninstall()


def test_survivors_of_a_full_collection_are_frozen_and_new_cycles_still_collected(policy: GcPolicy) -> None:
    kept = [Node() for _ in range(5000)]
    before = gc.get_freeze_count()
    gc.collect()
    assert gc.get_freeze_count() >= before + 5000, "what survived is frozen"
    assert all(gc.is_tracked(k) for k in kept[:3])
    garbage = cycle()
    gc.collect()
    assert garbage() is None, "a cycle made after the freeze is collected by the next full collection"


def test_objects_freed_by_reference_counting_leave_the_frozen_set(policy: GcPolicy) -> None:
    kept = [Node() for _ in range(5000)]
    gc.collect()
    frozen = gc.get_freeze_count()
    del kept
    assert gc.get_freeze_count() <= frozen - 5000, "the log's trimmed entries do not stay behind"


def test_a_refresh_hands_frozen_objects_back(policy: GcPolicy) -> None:
    gc.collect()
    assert gc.get_freeze_count() > 0
    policy.refresh_s = 0
    gc.collect()
    assert gc.get_freeze_count() == 0, "refreshed: the next full collection walks everything"
    policy.refresh_s = 3600
    gc.collect()
    assert gc.get_freeze_count() > 0, "the full collection after a refresh freezes its survivors again"


def test_uninstall_leaves_the_collector_as_it_was() -> None:
    p = GcPolicy()
    p.install()
    p.uninstall()
    assert p._callback not in gc.callbacks and gc.get_freeze_count() == 0
