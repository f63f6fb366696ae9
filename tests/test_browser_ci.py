"""The browser tests skip themselves without Chromium on a developer's machine, but fail a CI run:
a CI without a browser would otherwise pass with the banner untested."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run_browser_tests(ci: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["CONSENTMW_CHROMIUM"] = str(ROOT / "no-such-chromium")
    if ci is not None:
        env["CI"] = ci
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/browser/test_banner_xhtml.py"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("ci", ["true", "1"])
def test_a_missing_chromium_fails_a_ci_run(ci: str) -> None:
    result = run_browser_tests(ci)
    assert result.returncode == 1, result.stdout
    assert "no-such-chromium is missing" in result.stdout and "passed" not in result.stdout


def test_a_missing_chromium_skips_outside_ci() -> None:
    result = run_browser_tests(None)
    assert result.returncode == 0, result.stdout
    assert "skipped" in result.stdout and "failed" not in result.stdout
