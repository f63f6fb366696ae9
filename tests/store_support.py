from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from consentmw.core.store import ConsentRecord

POSTGRES_ENV = "CONSENTMW_TEST_POSTGRES_URL"
T0 = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)

# Records a log refuses, found by writing them to each database rather than guessed. Both: a NULL
# consent id (NOT NULL) and a lone surrogate (neither asyncpg nor sqlite3 can encode it as UTF-8).
# PostgreSQL only: NUL in text (22021) or as \u0000 in jsonb (22P05), both of which SQLite stores,
# and a consent id too big for the btree index on it (54000, past 2704 bytes: hex does not compress).
REFUSED_BY_BOTH = {
    "null-consent-id": {"consent_id": None},
    "lone-surrogate-in-path": {"path": "/\ud800"},
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
        pytest.skip(f"{POSTGRES_ENV} is not set")
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
