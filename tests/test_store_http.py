from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest

from consentmw.core.store import ConsentRecord, open_store
from tests.conftest import client_for, make_app
from tests.store_support import log_url, postgres_url, sqlite_url  # noqa: F401

CHOICES = [{"accept": "all"}, {"accept": "necessary"}, {"choices": {"analytics": True}}, {"choices": {"advertising": True}}]


async def visit(app: object, body: dict) -> httpx.Response:
    # A visitor of their own: no cookie from anyone else's choice.
    async with client_for(app) as client:
        return await client.post("/_consent", json=body)


async def logged(url: str) -> list[ConsentRecord]:
    reader = open_store(url)
    try:
        return [r async for r in reader.history()]  # type: ignore[attr-defined]
    finally:
        await reader.close()


@contextlib.asynccontextmanager
async def write_lock_held(url: str) -> AsyncIterator[None]:
    """Another process holding the log's write lock, as a long migration or backup would."""
    if url.startswith("sqlite"):
        blocker = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")
        try:
            yield
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        return
    conn = await asyncpg.connect(url)
    try:
        async with conn.transaction():
            await conn.execute("LOCK TABLE consent_log IN ACCESS EXCLUSIVE MODE")
            yield
    finally:
        await conn.close()


async def test_200_concurrent_consent_posts_make_200_records(log_url: str) -> None:  # noqa: F811
    store = open_store(log_url)
    app = make_app(store=store, rate_limit=None)  # 200 posts from one client: the log is tested here, not the limit
    responses = await asyncio.gather(*(visit(app, CHOICES[i % 4]) for i in range(200)))
    await store.close()
    assert [r.status_code for r in responses] == [200] * 200
    answered = {r.json()["id"]: r.json()["choices"] for r in responses}
    assert len(answered) == 200
    records = await logged(log_url)
    assert len(records) == 200
    assert {r.consent_id: r.choices for r in records} == answered


async def test_a_withdrawal_is_a_new_record_under_the_same_consent_id(log_url: str) -> None:  # noqa: F811
    store = open_store(log_url)
    async with client_for(make_app(store=store)) as client:
        first = await client.post(
            "/_consent", json={"accept": "all", "method": "banner"}, headers={"referer": "http://testserver/shop"}
        )
        second = await client.post("/_consent", json={"accept": "necessary", "method": "settings"})
    await store.close()
    assert first.json()["id"] == second.json()["id"]
    records = await logged(log_url)
    assert [(r.consent_id, r.method, r.choices["analytics"]) for r in records] == [
        (first.json()["id"], "banner", True),
        (first.json()["id"], "settings", False),
    ]
    assert records[0].path == "/shop"
    assert records[0].ip.endswith(".0") or records[0].ip == ""


async def test_a_store_that_cannot_write_answers_503_and_the_earlier_choice_stands(log_url: str) -> None:  # noqa: F811
    store = open_store(log_url, timeout=1.0)
    async with client_for(make_app(store=store, store_timeout=1.0)) as client:
        assert (await client.post("/_consent", json={"accept": "necessary"})).status_code == 200
        async with write_lock_held(log_url):
            started = time.monotonic()
            failed = await client.post("/_consent", json={"accept": "all"})
            waited = time.monotonic() - started
        after = await client.get("/_consent")
        retried = await client.post("/_consent", json={"accept": "all"})
    await store.close()

    assert failed.status_code == 503
    assert failed.json()["error"] == "store_unavailable"
    assert "set-cookie" not in failed.headers
    assert waited < 3
    assert after.json()["decided"] is True and after.json()["choices"]["analytics"] is False
    assert retried.status_code == 200 and retried.json()["choices"]["analytics"] is True
    assert [r.choices["analytics"] for r in await logged(log_url)] == [False, True]


async def test_an_unreachable_database_answers_503_without_a_cookie() -> None:
    store = open_store("postgresql://consentmw@127.0.0.1:9/nowhere", timeout=1.0)
    async with client_for(make_app(store=store, store_timeout=1.0)) as client:
        response = await client.post("/_consent", data={"accept": "all", "next": "/"})
        state = await client.get("/_consent")
    await store.close()
    assert response.status_code == 503
    assert response.json()["error"] == "store_unavailable"
    assert "set-cookie" not in response.headers
    assert state.json()["decided"] is False


async def test_two_app_instances_on_one_log_both_write(log_url: str) -> None:  # noqa: F811
    # Two app servers behind a load balancer: same secret, same policy, one shared log.
    stores = [open_store(log_url), open_store(log_url)]
    apps = [make_app(store=s) for s in stores]
    answers = await asyncio.gather(*(visit(app, {"accept": "all"}) for _ in range(25) for app in apps))
    async with client_for(apps[0]) as one, client_for(apps[1]) as two:
        # A visitor who chose on one server and changes their mind on the other keeps one consent id.
        first = await one.post("/_consent", json={"accept": "all"})
        two.cookies = one.cookies
        second = await two.post("/_consent", json={"accept": "necessary"})
    for s in stores:
        await s.close()
    assert all(a.status_code == 200 for a in answers)
    records = await logged(log_url)
    assert len(records) == 52
    assert [r.choices["analytics"] for r in records if r.consent_id == first.json()["id"]] == [True, False]
    assert second.json()["id"] == first.json()["id"]


@pytest.mark.postgres
async def test_the_table_is_created_on_first_use(postgres_url: str) -> None:  # noqa: F811
    store = open_store(postgres_url)
    async with client_for(make_app(store=store)) as client:
        assert (await client.post("/_consent", json={"accept": "all"})).status_code == 200
    await store.close()
    assert len(await logged(postgres_url)) == 1
