"""Debian's chromium driven by Playwright (no ``playwright install``): shared by browser tests.

Importing this module skips the importing test module when playwright or chromium is missing.
The README's test command (scripts/test.sh) installs both and sets QC_NO_SKIPS=1, under which
tests/conftest.py turns this collection-time skip into a collection error, so there these tests
always run or the run fails."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# Flags for a closed network: no background connections, no first-run work.
ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]

try:
    from playwright.async_api import Page, async_playwright
except ImportError:  # pragma: no cover - depends on the environment
    pytest.skip("playwright is not installed (pip install playwright; no `playwright install` needed)",
                allow_module_level=True)
if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
    pytest.skip(f"chromium not found at {CHROMIUM} (apt-get install -y chromium)", allow_module_level=True)

__all__ = ["ARGS", "CHROMIUM", "Page", "async_playwright"]
