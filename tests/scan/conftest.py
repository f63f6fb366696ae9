from __future__ import annotations

import os
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"  # screenshots kept for review (.gitignored)


@pytest.fixture(scope="session")
def chromium_path() -> str:
    if not os.path.exists(CHROMIUM):
        reason = f"{CHROMIUM} is missing; install Debian's chromium package to run the scanner tests"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            # A CI run without a browser would pass while the scanner goes untested.
            pytest.fail(reason + " (CI is set: the scanner tests must run there)", pytrace=False)
        pytest.skip(reason)
    return CHROMIUM


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
