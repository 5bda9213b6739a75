"""Short nemesis campaign for CI (NEMESIS_DURATION / NEMESIS_SEED to change it)."""

from __future__ import annotations

import os

import pytest

from tests.chaos.nemesis import run_campaign

pytestmark = pytest.mark.mariadb


async def test_nemesis_short_campaign(cluster, tmp_path) -> None:
    seed = int(os.environ.get("NEMESIS_SEED", "20261127"))
    duration = float(os.environ.get("NEMESIS_DURATION", "40"))
    report = await run_campaign(cluster, tmp_path, duration, seed)
    print("\nfault schedule:\n  " + "\n  ".join(report.schedule))
    print(report.summary())
    assert report.faults >= 5
    assert report.acked_inserts > 50 and report.acked_transfers > 20 and report.reads_ok > 20
    assert not report.lost, f"lost acknowledged inserts: {report.lost[:5]}"
    assert report.duplicates == 0
    assert not report.problems, report.problems
