from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import sqlite3
import time
from pathlib import Path

import asyncpg
import pytest

from consentmw.errors import ConfigError
from consentmw.store import ConsentRecord, MemoryStore, SQLiteStore, StoreError, open_store, sql
from consentmw.store.postgres import PostgresStore
from tests.store_support import T0, log_url, make_record, postgres_url, sqlite_url  # noqa: F401

DAY = dt.timedelta(days=1)


async def history(store: object, **filters: object) -> list[ConsentRecord]:
    return [r async for r in store.history(**filters)]  # type: ignore[attr-defined]


def without_id(record: ConsentRecord) -> ConsentRecord:
    return dataclasses.replace(record, id=None)


@pytest.fixture
async def log(log_url: str):  # noqa: F811
    store = open_store(log_url)
    yield store
    await store.close()


async def test_a_record_reads_back_exactly(log) -> None:
    original = make_record(
        "visitor-ü",
        policy_id=None,
        choices={"necessary": True, "personalisation": True, "analytics": False},
        path="/상품/42",
        user_agent="Samsung Internet",
    )
    await log.record(original)
    [stored] = await history(log)
    assert stored.id is not None
    assert without_id(stored) == original


async def test_200_concurrent_writers_lose_and_duplicate_nothing(log) -> None:
    await asyncio.gather(*(log.record(make_record(f"visitor-{i}")) for i in range(200)))
    records = await history(log)
    assert sorted(r.consent_id for r in records) == sorted(f"visitor-{i}" for i in range(200))
    assert len({r.id for r in records}) == 200


async def test_history_filters_by_period_and_visitor_in_time_order(log) -> None:
    # Written out of order: the log answers in the order things happened.
    for consent_id, at in [("a", T0 + 2 * DAY), ("b", T0), ("a", T0), ("b", T0 + DAY)]:
        await log.record(make_record(consent_id, at=at))
    assert [(r.consent_id, r.created_at) for r in await history(log)] == [
        ("b", T0), ("a", T0), ("b", T0 + DAY), ("a", T0 + 2 * DAY)
    ]  # fmt: skip
    assert [r.created_at for r in await history(log, consent_id="a")] == [T0, T0 + 2 * DAY]
    assert [r.consent_id for r in await history(log, since=T0 + DAY)] == ["b", "a"]
    assert [r.consent_id for r in await history(log, until=T0 + DAY)] == ["b", "a"]
    # A naive time means UTC; an aware one in another zone is converted.
    seoul = dt.timezone(dt.timedelta(hours=9))
    assert len(await history(log, since=(T0 + DAY).replace(tzinfo=None))) == 2
    assert len(await history(log, since=(T0 + DAY).astimezone(seoul))) == 2


async def test_history_pages_through_records_with_equal_times(log, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sql, "PAGE", 7)
    await asyncio.gather(*(log.record(make_record(f"v{i}", at=T0 + (i // 10) * DAY)) for i in range(30)))
    records = await history(log)
    assert sorted(r.consent_id for r in records) == sorted(f"v{i}" for i in range(30))
    assert [r.created_at for r in records] == sorted(r.created_at for r in records)


async def test_prune_removes_only_older_records(log) -> None:
    cutoff = T0
    times = [T0 - 30 * DAY, T0 - dt.timedelta(microseconds=1), T0, T0 + DAY]
    for i, at in enumerate(times):
        await log.record(make_record(f"v{i}", at=at))
    assert await log.prune(cutoff) == 2
    assert [r.created_at for r in await history(log)] == [T0, T0 + DAY]
    assert await log.prune(cutoff) == 0


async def test_stats_count_every_choice_or_each_visitors_last(log) -> None:
    yes = {"necessary": True, "analytics": True}
    no = {"necessary": True, "analytics": False}
    await log.record(make_record("a", at=T0, choices=yes))
    await log.record(make_record("a", at=T0 + DAY, choices=no, method="settings"))  # a withdrawal
    await log.record(make_record("b", at=T0 + DAY, choices=yes))
    await log.record(make_record("c", at=T0 + 40 * DAY, choices=no, method="opt-out"))

    every = await log.stats(until=T0 + 30 * DAY)
    assert every.as_dict() == {
        "records": 3,
        "visitors": 2,
        "categories": {"analytics": {"allowed": 2, "refused": 1}, "necessary": {"allowed": 3, "refused": 0}},
        "methods": {"banner": 2, "settings": 1},
    }
    latest = await log.stats(until=T0 + 30 * DAY, latest=True)
    assert latest.categories["analytics"] == {"allowed": 1, "refused": 1}
    assert (latest.records, latest.visitors) == (2, 2)
    assert (await log.stats(since=T0 + 30 * DAY)).methods == {"opt-out": 1}


async def test_stats_of_an_empty_period(log) -> None:
    await log.record(make_record())
    empty = await log.stats(since=T0 + DAY)
    assert (empty.records, empty.visitors, empty.categories, empty.methods) == (0, 0, {}, {})


async def test_memory_store_answers_like_the_databases() -> None:
    memory = MemoryStore()
    await memory.record(make_record("a", choices={"analytics": True}))
    await memory.record(make_record("a", at=T0 + DAY, choices={"analytics": False}))
    assert (await memory.stats(latest=True)).categories == {"analytics": {"allowed": 0, "refused": 1}}
    assert [r.id for r in await history(memory, consent_id="a")] == [1, 2]
    assert await memory.prune(T0 + DAY) == 1


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("203.0.113.77", "203.0.113.0"),
        ("2001:db8:85a3:8d3:1319:8a2e:370:7348", "2001:db8:85a3::"),
        ("::ffff:198.51.100.9", "198.51.100.0"),
        ("not an address", ""),
    ],
)
async def test_a_raw_address_is_never_stored(sqlite_url: str, given: str, stored: str) -> None:  # noqa: F811
    log = open_store(sqlite_url)
    await log.record(make_record(ip=given))
    await log.close()
    with sqlite3.connect(sqlite_url.removeprefix("sqlite:///")) as conn:
        assert conn.execute("SELECT ip FROM consent_log").fetchall() == [(stored,)]


async def test_sqlite_log_is_append_only(sqlite_url: str) -> None:  # noqa: F811
    log = open_store(sqlite_url)
    await log.record(make_record())
    await log.close()
    with sqlite3.connect(sqlite_url.removeprefix("sqlite:///")) as conn, pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("UPDATE consent_log SET choices = '{\"analytics\": true}'")


@pytest.mark.postgres
async def test_postgres_log_is_append_only(postgres_url: str) -> None:  # noqa: F811
    log = open_store(postgres_url)
    await log.record(make_record())
    await log.close()
    conn = await asyncpg.connect(postgres_url)
    try:
        with pytest.raises(asyncpg.RaiseError, match="append-only"):
            await conn.execute("UPDATE consent_log SET method = 'forged'")
        assert await conn.fetchval("SELECT method FROM consent_log") == "banner"
    finally:
        await conn.close()


async def test_sqlite_write_gives_up_after_the_timeout_and_recovers(tmp_path: Path) -> None:
    path = tmp_path / "consent.db"
    log = SQLiteStore(path, timeout=0.3)
    await log.migrate()
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")  # another process holding the write lock
    started = time.monotonic()
    with pytest.raises(StoreError, match="consent log"):
        await log.record(make_record("refused-by-timeout"))
    assert time.monotonic() - started < 2
    blocker.execute("ROLLBACK")
    blocker.close()
    await log.record(make_record("after"))
    assert [r.consent_id for r in await history(log)] == ["after"]
    await log.close()


async def test_unreachable_postgres_fails_fast_with_a_store_error() -> None:
    log = open_store("postgresql://consentmw@127.0.0.1:9/nowhere", timeout=1.0)
    started = time.monotonic()
    with pytest.raises(StoreError):
        await log.record(make_record())
    assert time.monotonic() - started < 3
    await log.close()


async def test_reading_a_missing_sqlite_log_says_so(tmp_path: Path) -> None:
    log = SQLiteStore(tmp_path / "typo.db")
    with pytest.raises(StoreError, match="no consent log"):
        await log.stats()
    assert not (tmp_path / "typo.db").exists()


async def test_two_stores_on_one_log_both_write_and_create_the_table_once(log_url: str) -> None:  # noqa: F811
    # Two app servers (or workers) starting on an empty database at the same moment.
    first, second = open_store(log_url), open_store(log_url)
    await asyncio.gather(
        *(first.record(make_record(f"first-{i}")) for i in range(50)),
        *(second.record(make_record(f"second-{i}")) for i in range(50)),
    )
    records = await history(first)
    await first.close()
    await second.close()
    assert sorted(r.consent_id for r in records) == sorted([f"first-{i}" for i in range(50)] + [f"second-{i}" for i in range(50)])


async def test_a_closed_store_opens_again_on_next_use(log) -> None:
    await log.record(make_record("before"))
    await log.close()
    await log.record(make_record("after"))
    assert [r.consent_id for r in await history(log)] == ["before", "after"]


def test_store_url_forms(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "logs").mkdir()
    default = open_store(None)
    assert isinstance(default, SQLiteStore) and default.path == "consent.db"
    assert open_store("sqlite:///logs/site.db").path == "logs/site.db"  # type: ignore[attr-defined]
    assert open_store(f"sqlite:///{tmp_path}/logs/site.db").path == f"{tmp_path}/logs/site.db"  # type: ignore[attr-defined]
    assert isinstance(open_store("memory://"), MemoryStore)
    for url in ("postgresql://app:pw@db.internal/site", "postgres://db/site", "postgresql+asyncpg://db/site"):
        store = open_store(url)
        assert isinstance(store, PostgresStore) and store.dsn.startswith("postgresql://")
    assert "pw" not in repr(open_store("postgresql://app:pw@db.internal/site"))
    mine = MemoryStore()
    assert open_store(mine) is mine


@pytest.mark.parametrize(
    ("store", "message"),
    [
        ("consent.db", "unknown consent store"),
        ("mysql://db/site", "unknown consent store"),
        ("sqlite://", "sqlite:///relative.db"),
        ("sqlite:///:memory:", "memory://"),
        ("sqlite:///no/such/dir/consent.db", "does not exist"),
        (object(), "record()"),
    ],
)
def test_store_settings_that_cannot_work_are_refused(store: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        open_store(store)  # type: ignore[arg-type]


async def test_servers_opening_a_new_sqlite_log_at_the_same_moment_all_write(tmp_path: Path) -> None:
    # Several app servers started together on one new file: creating it must not fail any of them.
    path = tmp_path / "consent.db"
    for attempt in range(12):
        path.unlink(missing_ok=True)
        stores = [SQLiteStore(path) for _ in range(6)]
        try:
            await asyncio.gather(*(s.record(make_record(consent_id=f"visitor-{attempt}-{i}")) for i, s in enumerate(stores)))
        finally:
            for s in stores:
                await s.close()
        assert len(await history(SQLiteStore(path))) == 6
