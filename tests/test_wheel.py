"""The built wheel, installed into a fresh virtualenv, carries and serves its package data."""

from __future__ import annotations

from consentmw.core.api import StaticAsset

import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

SERVE_BANNER = """
import asyncio, sys
from consentmw import ConsentMiddleware

async def app(scope, receive, send):
    raise AssertionError("the banner must be served by consentmw itself")

async def main():
    mw = ConsentMiddleware(app, secret_key="wheel-test-secret-0123456789", policy=sys.argv[1], store="memory://")
    sent = []
    async def receive():
        return {"type": "http.request", "body": b""}
    async def send(message):
        sent.append(message)
    scope = {"type": "http", "method": "GET", "path": "/_consent/banner.js", "headers": [], "query_string": b""}
    await mw(scope, receive, send)
    assert sent[0]["status"] == 200, sent[0]
    sys.stdout.buffer.write(sent[1]["body"])

asyncio.run(main())
"""


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(ROOT)],
        check=True, capture_output=True, timeout=300,
    )
    return next(out.glob("consentmw-*.whl"))


@pytest.mark.slow
def test_wheel_contains_schema_presets_and_static(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "consentmw/core/policy.schema.json" in names
    assert "consentmw/core/presets/default.json" in names
    assert {"consentmw/static/banner.js", "consentmw/static/banner.css"} <= names
    assert {"consentmw/examples/fastapi_site/app.py", "consentmw/examples/snippets/analytics.html"} <= names


@pytest.mark.slow
def test_installed_wheel_serves_the_banner(wheel: Path, tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    subprocess.run([python, "-m", "pip", "install", "-q", str(wheel)], check=True, capture_output=True, timeout=300)
    # Run from an empty directory so that the source checkout cannot be imported by accident.
    served = subprocess.run([python, "-c", SERVE_BANNER, "default"], cwd=tmp_path, capture_output=True, timeout=60)
    assert served.returncode == 0, served.stderr.decode()
    # As the checkout serves it: the file without its whole-line comments (StaticAsset).
    assert served.stdout == StaticAsset(ROOT / "static" / "banner.js", "text/javascript").body
    cli = subprocess.run([env_dir / "bin" / "consentmw", "validate", "default"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert cli.returncode == 0 and "valid" in cli.stdout
