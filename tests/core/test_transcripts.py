"""Behaviour of the pure core as readable transcripts (``testdata/*.txt``): events in, Ready out.

``REWRITE=1 pytest tests/core`` rewrites the expected outputs from what the core does now
(then read the diff: every changed line is a changed decision)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.core.harness import run_file

DATA = Path(__file__).parent / "testdata"
FILES = sorted(DATA.glob("*.txt"))


def test_there_are_transcripts() -> None:
    assert len(FILES) >= 10


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_transcript(path: Path) -> None:
    expected, actual = run_file(str(path))
    if os.environ.get("REWRITE"):
        path.write_text(actual)
        return
    assert actual == expected, f"{path.name} differs (REWRITE=1 to accept):\n{actual}"
