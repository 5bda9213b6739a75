"""The shell's guard around ``Core.step_all``: the writes of one turn of the loop are stepped in
together, so a bug that makes the core raise must still answer each of them (stepped one by one,
the exception reached each caller). The fault is injected by replacing ``step_all``; no server is
needed because the writes never get as far as an applier."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from coordinator import config
from coordinator.core.outcomes import ApiError
from coordinator.core.replog import EntryKind
from coordinator.events import EventLog
from coordinator.replicator import Replicator


def _replicator() -> Replicator:
    replicas = [{"id": f"r{i}", "name": f"mysql-r{i}", "host": "127.0.0.1", "port": 1 + i, "leader": i == 0}
                for i in range(3)]
    return Replicator(config.from_dict({"replicas": replicas}, env={}), EventLog())


async def test_a_raising_step_all_answers_every_write_of_the_turn() -> None:
    rep = _replicator()
    calls: list[int] = []

    def broken(evs: list[Any], now: float, wall_us: int) -> None:
        calls.append(len(evs))
        raise RuntimeError("planted core bug")

    rep.core.step_all = broken  # type: ignore[method-assign]
    writes = [asyncio.create_task(rep.submit(EntryKind.WRITE, (f"INSERT INTO t VALUES ({i})",), timeout_s=5))
              for i in range(3)]
    done = await asyncio.wait_for(asyncio.gather(*writes, return_exceptions=True), 5)
    assert calls == [3], "the three writes of one turn are stepped in together"
    for outcome in done:
        assert isinstance(outcome, ApiError)
        assert outcome.status == 500 and "outcome is unknown" in outcome.message
    assert rep._futures == {}, "no caller is left waiting"


async def test_writes_after_a_failed_turn_are_stepped_again() -> None:
    rep = _replicator()
    real = rep.core.step_all
    seen: list[int] = []

    def once_broken(evs: list[Any], now: float, wall_us: int) -> None:
        seen.append(len(evs))
        if len(seen) == 1:
            raise RuntimeError("planted core bug")
        real(evs, now, wall_us)

    rep.core.step_all = once_broken  # type: ignore[method-assign]
    first = asyncio.create_task(rep.submit(EntryKind.WRITE, ("INSERT INTO t VALUES (1)",), timeout_s=0.3))
    with pytest.raises(ApiError):
        await asyncio.wait_for(first, 5)
    # the core was not started (no leader): the next write is taken and times out normally, which shows
    # the proposal list was reset and the next turn steps the core again
    second = asyncio.create_task(rep.submit(EntryKind.WRITE, ("INSERT INTO t VALUES (2)",), timeout_s=0.3))
    with pytest.raises(ApiError) as info:
        await asyncio.wait_for(second, 5)
    assert seen == [1, 1]
    assert "outcome is unknown" not in info.value.message
