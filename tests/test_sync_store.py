"""The consent log from sync code: gunicorn with threads in front of the WSGI middleware and of
Django's native one, on SQLite and PostgreSQL, as a site runs them."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from consentmw.core.store import open_store
from tests.conftest import SECRET
from tests.demo_support import app_server, free_port
from tests.store_support import postgres_url  # noqa: F401  (fixture)

pytestmark = pytest.mark.slow
APPS = {"wsgi": "tests.sync_site:app", "django": "examples.django_site.wsgi:application"}


@contextmanager
def gunicorn(app: str, store: str, tmp_path: Path, **env: str) -> Iterator[str]:
    settings = {"CONSENTMW_SECRET_KEY": SECRET, "CONSENTMW_STORE": store, **env}
    with app_server("gunicorn", app, free_port(), tmp_path / "gunicorn.log", settings, threads=32) as url:
        yield url


def post_choice(url: str) -> httpx.Response:
    return httpx.post(url + "/_consent", json={"accept": "all"}, headers={"origin": url}, timeout=40)


def records(store: str, *, create: bool = False) -> int:
    async def count() -> int:
        log = open_store(store)
        try:
            if create:
                await log.migrate()
            return (await log.stats()).records
        finally:
            await log.close()

    return asyncio.run(count())


# Both adapters reach the log through the same core (ConsentCore.respond_sync): each store is run
# once, behind one of them, to keep the suite short.
@pytest.mark.parametrize(("app", "database"), [("wsgi", "sqlite"), ("django", "postgresql")])
def test_a_hundred_concurrent_choices_are_all_answered_and_recorded(app: str, database: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    store_url = f"sqlite:///{tmp_path / 'consent.db'}" if database == "sqlite" else request.getfixturevalue("postgres_url")
    # A generous deadline: on a loaded machine 5 s can pass in the queue; the deadline has its own tests.
    # The hundred posts come from one address: the per-client limit (tested on its own) is lifted.
    with gunicorn(APPS[app], store_url, tmp_path, CONSENTMW_STORE_TIMEOUT="30", CONSENTMW_RATE_LIMIT="0") as url, ThreadPoolExecutor(100) as pool:
        answers = list(pool.map(lambda _: post_choice(url), range(100)))
    assert [r.status_code for r in answers] == [200] * 100
    assert all("consentmw=" in r.headers["set-cookie"] for r in answers)
    assert records(store_url) == 100


def test_concurrent_posts_from_one_client_are_held_to_its_rate_limit(tmp_path: Path) -> None:
    # The limit's bucket is shared by gunicorn's 32 threads: a hundred posts at once from one
    # address get 30 answers (and one more for each 2 s the burst takes), every other one a 429
    # that records nothing and sets no cookie.
    store_url = f"sqlite:///{tmp_path / 'consent.db'}"
    with gunicorn(APPS["wsgi"], store_url, tmp_path) as url, ThreadPoolExecutor(100) as pool:
        started = time.monotonic()
        answers = list(pool.map(lambda _: post_choice(url), range(100)))
        elapsed = time.monotonic() - started
    accepted = [r for r in answers if r.status_code == 200]
    refused = [r for r in answers if r.status_code != 200]
    assert 30 <= len(accepted) <= 30 + int(elapsed / 2) + 1
    assert {r.status_code for r in refused} == {429}
    assert all("set-cookie" not in r.headers and int(r.headers["retry-after"]) >= 1 for r in refused)
    assert records(store_url) == len(accepted)


def test_a_locked_sqlite_log_answers_503_in_time_without_a_cookie(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'consent.db'}"
    assert records(store, create=True) == 0
    with gunicorn(APPS["wsgi"], store, tmp_path, CONSENTMW_STORE_TIMEOUT="1") as url:
        lock = sqlite3.connect(tmp_path / "consent.db", isolation_level=None)
        lock.execute("BEGIN EXCLUSIVE")
        try:
            started = time.monotonic()
            r = post_choice(url)
            elapsed = time.monotonic() - started
        finally:
            lock.execute("ROLLBACK")
            lock.close()
    assert (r.status_code, r.json()["error"]) == (503, "store_unavailable")
    assert "set-cookie" not in r.headers
    assert elapsed < 3


def test_a_postgresql_server_that_is_down_answers_503_without_a_cookie(tmp_path: Path) -> None:
    store = f"postgresql://consentmw@127.0.0.1:{free_port()}/nothing"  # nothing listens there
    with gunicorn(APPS["wsgi"], store, tmp_path, CONSENTMW_STORE_TIMEOUT="1") as url:
        started = time.monotonic()
        r = post_choice(url)
        elapsed = time.monotonic() - started
    assert (r.status_code, r.json()["error"]) == (503, "store_unavailable")
    assert "set-cookie" not in r.headers
    assert elapsed < 3
