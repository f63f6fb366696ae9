from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import glob
import hashlib
import os
import secrets
import shlex
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from consentmw.core.store import ConsentRecord
from tests.conftest import missing

POSTGRES_ENV = "CONSENTMW_TEST_POSTGRES_URL"
T0 = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)

# Records a log refuses, found by writing them to each database rather than guessed. Both: a NULL
# consent id (NOT NULL) and a lone surrogate (neither asyncpg nor sqlite3 can encode it as UTF-8).
# PostgreSQL only: NUL in text (22021) or as \u0000 in jsonb (22P05), both of which SQLite stores,
# and a consent id too big for the btree index on it (54000, past 2704 bytes: hex does not compress).
REFUSED_BY_BOTH = {
    "null-consent-id": {"consent_id": None},
    "lone-surrogate-in-path": {"path": "/\ud800"},
    # Refused by every store alike, before the database is asked.
    "region-not-a-code": {"region": "California"},
    "language-not-a-tag": {"language": "en-" + "x" * 300},
}
REFUSED_BY_POSTGRES = {
    "nul-in-path": {"path": "/a\x00b"},
    "nul-in-a-choice-name": {"choices": {"analytics\x00": True}},
    "consent-id-too-long-for-its-index": {"consent_id": "".join(hashlib.sha256(bytes([i])).hexdigest() for i in range(50))},
}


def with_query(url: str, **params: str) -> str:
    extra = "&".join(f"{k}={v}" for k, v in params.items())
    return f"{url}{'&' if '?' in url else '?'}{extra}"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A URL whose search_path is a fresh schema, dropped afterwards: each test starts on an empty log."""
    base = os.environ.get(POSTGRES_ENV)
    if not base:
        missing(f"{POSTGRES_ENV} is not set: run the tests through scripts/test.sh, which starts PostgreSQL")
    schema = f"consentmw_test_{secrets.token_hex(6)}"
    asyncio.run(_admin(base, f"CREATE SCHEMA {schema}"))
    yield with_query(base, search_path=schema)
    asyncio.run(_admin(base, f"DROP SCHEMA {schema} CASCADE"))


async def _admin(url: str, statement: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'consent.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def log_url(request: pytest.FixtureRequest) -> str:
    """The URL of an empty consent log on a real SQLite file, then on a real PostgreSQL server."""
    return request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "postgres_url")


def make_record(consent_id: str = "visitor-1", *, at: dt.datetime = T0, **fields: Any) -> ConsentRecord:
    values: dict[str, Any] = {
        "policy_id": "default",
        "policy_version": "1",
        "choices": {"necessary": True, "analytics": False, "advertising": False},
        "method": "banner",
        "path": "/",
        "ip": "203.0.113.0",
        "user_agent": "Firefox",
    }
    values.update(fields)
    return ConsentRecord(consent_id=consent_id, created_at=at, **values)


class OwnPostgres:
    """A throwaway PostgreSQL cluster of this test run's own, on a port of its own, for tests that
    restart the server or kill its connections: the shared server of scripts/test.sh is left alone."""

    def __init__(self) -> None:
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
        if not found:
            missing("no PostgreSQL server binaries in /usr/lib/postgresql (scripts/test.sh installs them)")
        self.bin = os.path.dirname(found[-1])
        # Under /tmp and handed to the postgres user when running as root, as scripts/test.sh does.
        self.data = tempfile.mkdtemp(prefix="consentmw-faults-pg-", dir="/tmp")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        if os.geteuid() == 0:
            shutil.chown(self.data, "postgres", "postgres")
        self._run("initdb", "-D", self.data, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync")
        self.start()

    def _run(self, tool: str, *args: str) -> None:
        command = [os.path.join(self.bin, tool), *args]
        if os.geteuid() == 0:
            command = ["su", "postgres", "-s", "/bin/sh", "-c", " ".join(map(shlex.quote, command))]
        subprocess.run(command, check=True, capture_output=True, timeout=120)

    def _ctl(self, *args: str) -> None:
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.data} -c fsync=off"
        self._run("pg_ctl", "-D", self.data, "-l", os.path.join(self.data, "server.log"), "-w", "-t", "60", "-o", options, *args)

    def start(self) -> None:
        self._ctl("start")

    def restart(self) -> None:
        self._ctl("-m", "fast", "restart")

    def stop(self) -> None:
        with contextlib.suppress(subprocess.SubprocessError):
            self._ctl("-m", "immediate", "stop")
        shutil.rmtree(self.data, ignore_errors=True)
