from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import logging
import sqlite3
import time
from pathlib import Path

import asyncpg
import pytest

from consentmw.core.errors import ConfigError
from consentmw.core.store import ConsentRecord, MemoryStore, RefusedRecord, SQLiteStore, StoreError, open_store, sql
from consentmw.core.store.postgres import PostgresStore
from tests.store_support import (  # noqa: F401
    REFUSED_BY_BOTH,
    REFUSED_BY_POSTGRES,
    T0,
    log_url,
    make_record,
    postgres_url,
    sqlite_url,
    with_query,
)

DAY = dt.timedelta(days=1)

REFUSALS = [
    *(pytest.param("sqlite", fields, id=f"sqlite-{name}") for name, fields in REFUSED_BY_BOTH.items()),
    *(
        pytest.param("postgres", fields, id=f"postgresql-{name}", marks=pytest.mark.postgres)
        for name, fields in {**REFUSED_BY_BOTH, **REFUSED_BY_POSTGRES}.items()
    ),
]


async def history(store: object, **filters: object) -> list[ConsentRecord]:
    return [r async for r in store.history(**filters)]  # type: ignore[attr-defined]


def without_id(record: ConsentRecord) -> ConsentRecord:
    return dataclasses.replace(record, id=None)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres), "memory"])
def any_log_url(request: pytest.FixtureRequest) -> str:
    """An empty consent log on a real SQLite file, a real PostgreSQL server, and in memory: the
    memory store (tests, demos) must answer every question as the databases do."""
    fixture = {"sqlite": "sqlite_url", "postgresql": "postgres_url"}.get(request.param)
    return request.getfixturevalue(fixture) if fixture else "memory://"


@pytest.fixture
async def log(any_log_url: str):
    store = open_store(any_log_url)
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
    # Looked up by the id as a request carries it: an equal string, never the same object.
    assert await history(log, consent_id="".join(["visitor-", "ü"])) == [stored]


async def test_region_mode_language_and_scan_read_back(log) -> None:
    scanned = make_record("scan-1", region="US-CA", mode="opt-out", language="en-US", scan=True)
    visitor = make_record("visitor-1", region="KR", mode="opt-in", language="ko")
    unknown = make_record("visitor-2")
    for record in (scanned, visitor, unknown):
        await log.record(record)
    stored = {r.consent_id: r for r in await history(log)}
    assert [without_id(stored[r.consent_id]) for r in (scanned, visitor, unknown)] == [scanned, visitor, unknown]
    assert (unknown.region, unknown.mode, unknown.language, unknown.scan) == ("", "", "", False)


BEFORE_REGIONS = Path(__file__).parent / "data" / "before-regions"
# The records in tests/data/before-regions, as the code that wrote them read them back.
OLD_RECORDS = [
    ("visitor-c", "gpc", "=1+1", dt.datetime(2026, 10, 30, 9, 30, tzinfo=dt.UTC)),
    ("visitor-a", "banner", "/", dt.datetime(2026, 11, 2, 9, 30, tzinfo=dt.UTC)),
    ("visitor-b", "form", "/상품/42", dt.datetime(2026, 11, 2, 14, 30, tzinfo=dt.UTC)),
    ("visitor-a", "settings", "/settings", dt.datetime(2026, 11, 3, 9, 30, tzinfo=dt.UTC)),
]


async def check_upgraded(url: str) -> None:
    # Read first: a reader opening an old log must not fail on the columns it does not have yet.
    reader = open_store(url)
    old = await history(reader)
    await reader.close()
    assert [(r.consent_id, r.method, r.path, r.created_at) for r in old] == OLD_RECORDS
    assert {(r.region, r.mode, r.language, r.scan) for r in old} == {("", "", "", False)}
    assert old[2].policy_id is None and old[0].choices == {"necessary": True, "analytics": True, "advertising": True}
    writer = open_store(url)
    await writer.record(make_record("new", at=OLD_RECORDS[-1][3] + DAY, region="FR", mode="opt-in", language="fr", scan=True))
    await writer.migrate()  # again: nothing to add, nothing lost
    after = await history(writer)
    await writer.close()
    assert after[:4] == old
    assert [(r.consent_id, r.region, r.mode, r.language, r.scan, r.id) for r in after[4:]] == [("new", "FR", "opt-in", "fr", True, 5)]


async def test_a_sqlite_log_from_before_regions_opens_and_gets_the_new_columns(tmp_path: Path) -> None:
    path = tmp_path / "consent.db"
    path.write_bytes((BEFORE_REGIONS / "log.sqlite3").read_bytes())
    await check_upgraded(f"sqlite:///{path}")
    columns = [row[1] for row in sqlite3.connect(path).execute("PRAGMA table_info(consent_log)")]
    assert columns == list(sql.COLUMNS)


@pytest.mark.postgres
async def test_a_postgresql_log_from_before_regions_opens_and_gets_the_new_columns(postgres_url: str) -> None:  # noqa: F811
    conn = await asyncpg.connect(postgres_url)
    try:
        await conn.execute((BEFORE_REGIONS / "postgresql.sql").read_text(encoding="utf-8"))
    finally:
        await conn.close()
    await check_upgraded(postgres_url)
    conn = await asyncpg.connect(postgres_url)
    try:
        columns = [row[0] for row in await conn.fetch(
            "SELECT attname FROM pg_attribute WHERE attrelid = 'consent_log'::regclass AND attnum > 0 ORDER BY attnum"
        )]
    finally:
        await conn.close()
    assert columns == list(sql.COLUMNS)


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"region": "California"}, "region"),
        ({"region": "U"}, "region"),
        ({"region": "US-CALIF"}, "region"),
        ({"region": "US CA"}, "region"),
        ({"region": "DE\n"}, "region"),
        ({"region": None}, "region"),
        ({"mode": "opt_in"}, "mode"),
        ({"mode": "OPT-IN"}, "mode"),
        ({"language": "english please"}, "language"),
        ({"language": "en_US"}, "language"),
        ({"language": "e"}, "language"),
        ({"language": "en-" + "-".join(["abcdefgh"] * 4)}, "language"),  # each part fits, the whole is too long
        ({"language": "<script>"}, "language"),
        ({"scan": "yes"}, "scan"),
        ({"scan": 1}, "scan"),
    ],
)
async def test_a_bad_region_mode_language_or_scan_is_refused_by_every_store(
    log_url: str, fields: dict[str, object], named: str  # noqa: F811
) -> None:
    for log in (MemoryStore(), open_store(log_url)):
        await log.migrate()
        with pytest.raises(RefusedRecord, match=named):
            await log.record(make_record(**fields))
        assert await history(log) == []
        await log.close()


async def test_region_codes_and_language_tags_that_are_kept() -> None:
    memory = MemoryStore()
    kept = [
        {"region": "us-ca"}, {"region": "GB-ENG"}, {"region": "FR-75C"}, {"region": "KR"},
        {"language": "zh-Hant-TW"}, {"language": "es-419"}, {"language": "sr-Latn-RS"}, {"language": "ko"},
    ]
    for fields in kept:
        await memory.record(make_record(**fields))
    assert [r.region for r in memory.records[:4]] == ["US-CA", "GB-ENG", "FR-75C", "KR"]
    assert [r.language for r in memory.records[4:]] == ["zh-Hant-TW", "es-419", "sr-Latn-RS", "ko"]


async def test_200_concurrent_writers_lose_and_duplicate_nothing(log) -> None:
    await asyncio.gather(*(log.record(make_record(f"visitor-{i}")) for i in range(200)))
    records = await history(log)
    assert sorted(r.consent_id for r in records) == sorted(f"visitor-{i}" for i in range(200))
    assert len({r.id for r in records}) == 200


def wal_commits(wal: bytes) -> int:
    """Commits in a SQLite WAL file: frames whose header gives the database's size after them."""
    page_size = int.from_bytes(wal[8:12], "big")
    frames = range(32, len(wal) - 24, 24 + page_size)
    return sum(1 for at in frames if int.from_bytes(wal[at + 4 : at + 8], "big"))


async def test_sqlite_choices_arriving_together_share_their_commits(tmp_path: Path) -> None:
    # One fsync per commit: a busy site's visitors must share them, or the log falls behind.
    path = tmp_path / "consent.db"
    log = SQLiteStore(path)
    await log.migrate()
    # A reader's snapshot from before the writes keeps every commit's frames in the WAL file.
    reader = sqlite3.connect(path, isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM consent_log").fetchall()
    try:
        before = wal_commits(Path(f"{path}-wal").read_bytes())
        await asyncio.gather(*(log.record(make_record(f"visitor-{i}")) for i in range(200)))
        commits = wal_commits(Path(f"{path}-wal").read_bytes()) - before
    finally:
        reader.close()
        await log.close()
    assert len(await history(SQLiteStore(path))) == 200
    assert 0 < commits < 20


async def test_history_filters_by_period_and_visitor_in_time_order(log) -> None:
    # Written out of order: the log answers in the order things happened.
    for consent_id, at in [("a", T0 + 2 * DAY), ("b", T0), ("a", T0), ("b", T0 + DAY)]:
        await log.record(make_record(consent_id, at=at))
    assert [(r.consent_id, r.created_at) for r in await history(log)] == [
        ("b", T0), ("a", T0), ("b", T0 + DAY), ("a", T0 + 2 * DAY)
    ]  # fmt: skip
    assert [r.created_at for r in await history(log, consent_id="a")] == [T0, T0 + 2 * DAY]
    assert [r.created_at for r in await history(log, consent_id="b")] == [T0, T0 + DAY]
    assert await history(log, consent_id="c") == []
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


async def test_a_sqlite_prune_bigger_than_one_delete_removes_and_counts_every_older_record(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    # A big prune deletes in chunks (the write lock is never held for long); every chunk counts.
    from consentmw.core.store import sqlite as sqlite_store

    monkeypatch.setattr(sqlite_store, "PRUNE_CHUNK", 3)
    log = open_store(sqlite_url)
    for i in range(8):
        await log.record(make_record(f"old-{i}", at=T0 - DAY + i * dt.timedelta(seconds=1)))
    await log.record(make_record("kept", at=T0))
    assert await log.prune(T0) == 8
    assert [r.consent_id for r in await history(log)] == ["kept"]
    await log.close()


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
        "scans_left_out": 0,
    }
    latest = await log.stats(until=T0 + 30 * DAY, latest=True)
    assert latest.categories["analytics"] == {"allowed": 1, "refused": 1}
    assert (latest.records, latest.visitors) == (2, 2)
    assert (await log.stats(since=T0 + 30 * DAY)).methods == {"opt-out": 1}


async def test_stats_leave_out_what_a_scan_recorded_unless_asked(log) -> None:
    # `consentmw scan` posts choices like a visitor; the operator's figures are about visitors.
    await log.record(make_record("visitor", choices={"necessary": True, "analytics": True}))
    await log.record(make_record("scan-1", at=T0 + DAY, choices={"necessary": True, "analytics": False}, method="form", scan=True))
    assert (await log.stats()).as_dict() == {
        "records": 1,
        "visitors": 1,
        "categories": {"analytics": {"allowed": 1, "refused": 0}, "necessary": {"allowed": 1, "refused": 0}},
        "methods": {"banner": 1},
        "scans_left_out": 1,
    }
    assert (await log.stats(include_scans=True)).as_dict() == {
        "records": 2,
        "visitors": 2,
        "categories": {"analytics": {"allowed": 1, "refused": 1}, "necessary": {"allowed": 2, "refused": 0}},
        "methods": {"banner": 1, "form": 1},
        "scans_left_out": 0,
    }
    assert (await log.stats(since=T0 + DAY)).as_dict()["scans_left_out"] == 1
    assert (await log.stats(until=T0 + DAY)).as_dict()["scans_left_out"] == 0


async def test_stats_of_an_empty_period(log) -> None:
    await log.record(make_record())
    empty = await log.stats(since=T0 + DAY)
    assert (empty.records, empty.visitors, empty.categories, empty.methods) == (0, 0, {}, {})


async def test_a_record_the_log_holds_is_told_from_any_that_differs(log) -> None:
    # What `consentmw log import` skips as already there, and how a PostgreSQL commit whose answer
    # was lost is settled: the same proof of consent, to the microsecond and every field.
    held = make_record("a", choices={"necessary": True, "analytics": True}, region="KR", language="ko")
    other = make_record("b", at=T0 + DAY)
    await log.record(held)
    await log.record(other)
    asked = [
        held,
        dataclasses.replace(held, choices={"analytics": True, "necessary": True}),  # the same choices in another order
        other,
        dataclasses.replace(held, choices={"necessary": True, "analytics": False}),
        dataclasses.replace(held, created_at=T0 + dt.timedelta(microseconds=1)),
        dataclasses.replace(held, consent_id="c"),
        dataclasses.replace(held, region="DE"),
        make_record("new", at=T0 + 2 * DAY),
    ]
    assert await log.already_logged(asked) == [True, True, True, False, False, False, False, False]
    assert await log.already_logged([]) == []


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


async def test_sqlite_write_gives_up_after_the_timeout_and_recovers(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "consent.db"
    log = SQLiteStore(path, timeout=0.3)
    await log.migrate()
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")  # another process holding the write lock as the server opens the log
    started = time.monotonic()
    with pytest.raises(StoreError, match="took more than 0.3 s; the record was not kept") as refused:
        await log.record(make_record("refused-by-timeout"))
    assert not isinstance(refused.value, RefusedRecord)  # the log's fault, not the record's: worth trying again
    assert time.monotonic() - started < 2
    # The operator hears why while the lock is still held, not silence while the server waits on.
    for _ in range(40):
        if "not written" in caplog.text:
            break
        await asyncio.sleep(0.05)
    assert "1 record(s) not written: SQLITE_BUSY: database is locked" in caplog.text
    blocker.execute("ROLLBACK")
    blocker.close()
    await log.record(make_record("after"))
    assert [r.consent_id for r in await history(log)] == ["after"]
    await log.close()


@pytest.mark.postgres
async def test_a_postgresql_commit_that_outlasts_its_own_timeout_tells_the_visitor_what_the_log_holds(postgres_url: str, caplog: pytest.LogCaptureFixture) -> None:  # noqa: F811
    # The COMMIT takes 1.5 s (a slow disk, a synchronous standby), past its 1 s timeout: the store
    # stops waiting for its answer, but the server goes on and commits. Asked at once, the log did
    # not hold the record yet, and the visitor was told 503 for a choice that was then recorded.
    store = PostgresStore(postgres_url, timeout=1.0)
    await store.migrate()
    conn = await asyncpg.connect(postgres_url)
    try:
        await conn.execute(
            """
            CREATE FUNCTION slow_commit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(1.5); RETURN NULL; END $$;
            CREATE CONSTRAINT TRIGGER slow_commit AFTER INSERT ON consent_log DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION slow_commit();
            """
        )
        await store.record(make_record("lost-answer"))  # told: recorded
        assert [r.consent_id for r in await history(store)] == ["lost-answer"]
    finally:
        await conn.close()
        await store.close()
    assert "the commit's answer was lost" in caplog.text


async def test_a_sqlite_write_waits_out_another_process_holding_the_log_briefly(tmp_path: Path) -> None:
    # `consentmw log prune` or a backup holding the write lock for a moment must not cost a visitor
    # the choice: the write waits for the lock, within the visitor's time.
    path = tmp_path / "consent.db"
    log = SQLiteStore(path, timeout=3.0)
    await log.record(make_record("first"))  # the writer has the log open
    blocker = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    blocker.execute("BEGIN EXCLUSIVE")
    asyncio.get_running_loop().call_later(0.5, blocker.execute, "ROLLBACK")
    started = time.monotonic()
    try:
        await log.record(make_record("waited"))
        assert time.monotonic() - started >= 0.4
        assert [r.consent_id for r in await history(log)] == ["first", "waited"]
    finally:
        blocker.close()
        await log.close()


@pytest.mark.postgres
async def test_a_postgresql_commit_that_outlasts_the_visitors_wait_answers_what_the_log_holds(postgres_url: str) -> None:  # noqa: F811
    # The INSERT takes 1 s of the 1.6 s write budget; the COMMIT then takes 1.5 s, ending past the
    # visitor's 2 s wait but within its own 2 s limit. The record is committed: the visitor must be
    # told so (a little late), not answered 503 for a choice the log holds.
    store = PostgresStore(postgres_url, timeout=2.0)
    await store.migrate()
    conn = await asyncpg.connect(postgres_url)
    try:
        await conn.execute(
            """
            CREATE FUNCTION slow_insert() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(1.0); RETURN NEW; END $$;
            CREATE FUNCTION slow_commit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(1.5); RETURN NULL; END $$;
            CREATE TRIGGER slow_insert BEFORE INSERT ON consent_log FOR EACH ROW EXECUTE FUNCTION slow_insert();
            CREATE CONSTRAINT TRIGGER slow_commit AFTER INSERT ON consent_log DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION slow_commit();
            """
        )
        started = time.monotonic()
        await store.record(make_record("slow-commit"))
        assert 2.0 < time.monotonic() - started < 4.0
        assert [r.consent_id for r in await history(store)] == ["slow-commit"]
    finally:
        await conn.close()
        await store.close()


@pytest.mark.postgres
async def test_a_postgresql_log_whose_connections_were_dropped_records_the_next_choice(postgres_url: str) -> None:  # noqa: F811
    # A restarted server or a killed backend leaves the pool holding dead connections: the next
    # visitor's choice must still be recorded, not answered 503.
    store = PostgresStore(with_query(postgres_url, application_name="consentmw-dropped"), timeout=5.0, min_size=3, max_size=3)
    admin = await asyncpg.connect(postgres_url)
    try:
        await store.record(make_record("before"))
        ours = "application_name = 'consentmw-dropped'"
        assert await admin.fetchval(f"SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE {ours}") == 3
        for _ in range(50):  # until the server has ended them
            if not await admin.fetchval(f"SELECT count(*) FROM pg_stat_activity WHERE {ours}"):
                break
            await asyncio.sleep(0.05)
        await store.record(make_record("after"))
        assert [r.consent_id for r in await history(store)] == ["before", "after"]
    finally:
        await admin.close()
        await store.close()


@pytest.mark.postgres
async def test_a_postgresql_write_slower_than_the_visitors_wait_keeps_nothing(postgres_url: str) -> None:  # noqa: F811
    # Told 503, a visitor's choice must not turn up in the log afterwards. Here the one pooled
    # connection is busy with another choice for 1 s of this visitor's two, then this INSERT takes
    # 1 s: each step is within the store's timeout, but together they outlast the time the
    # visitor's write has, so the INSERT is cut off then and nothing is committed.
    store = PostgresStore(postgres_url, timeout=2.0, min_size=1, max_size=1)
    admin = await asyncpg.connect(postgres_url)
    try:
        await store.migrate()
        await admin.execute(
            """
            CREATE FUNCTION slow_insert() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN PERFORM pg_sleep(1.0); RETURN NEW; END $$;
            CREATE TRIGGER slow_insert BEFORE INSERT ON consent_log FOR EACH ROW EXECUTE FUNCTION slow_insert();
            """
        )
        first = asyncio.ensure_future(store.record(make_record("first")))
        await asyncio.sleep(0.05)  # its batch holds the connection
        with pytest.raises(StoreError):
            await store.record(make_record("told-503"))
        await first
        await asyncio.sleep(1.5)  # the second INSERT would have ended by now
        assert [r.consent_id for r in await history(store)] == ["first"]
    finally:
        await admin.close()
        await store.close()


@pytest.mark.postgres
async def test_a_postgresql_backend_ended_in_the_middle_of_a_write_costs_the_visitor_nothing(postgres_url: str) -> None:  # noqa: F811
    # The server ends the backend while it runs the INSERT (an operator's pg_terminate_backend, a
    # failover): nothing was committed, so the choice is written on another connection, once.
    store = PostgresStore(postgres_url, timeout=1.0)  # a second: the retry takes what is left of it
    admin = await asyncpg.connect(postgres_url)
    try:
        await store.migrate()
        await admin.execute(
            """
            CREATE SEQUENCE writes_seen;
            CREATE FUNCTION end_first_writer() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF nextval('writes_seen') = 1 THEN PERFORM pg_terminate_backend(pg_backend_pid()); END IF;
                RETURN NEW;
            END $$;
            CREATE TRIGGER end_first_writer BEFORE INSERT ON consent_log FOR EACH ROW EXECUTE FUNCTION end_first_writer();
            """
        )
        await store.record(make_record("retried"))
        assert await admin.fetchval("SELECT last_value FROM writes_seen") == 2  # the first try did end its backend
        assert [r.consent_id for r in await history(store)] == ["retried"]
    finally:
        await admin.close()
        await store.close()


@pytest.mark.postgres
async def test_closing_a_postgresql_log_records_the_choices_in_flight_and_leaves_no_connection(postgres_url: str) -> None:  # noqa: F811
    # A server shutting down (a deploy) has visitors' choices still on their way to the log: each is
    # recorded, and no connection outlives the store (a restart loop would use up max_connections).
    store = PostgresStore(with_query(postgres_url, application_name="consentmw-closing"), timeout=5.0)
    admin = await asyncpg.connect(postgres_url)
    try:
        await store.migrate()
        choices = [asyncio.create_task(store.record(make_record(f"in-flight-{i}"))) for i in range(30)]
        await asyncio.sleep(0)  # the writers have started
        await store.close()
        await asyncio.gather(*choices)
        ours = "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'consentmw-closing'"
        for _ in range(40):  # a backend ends a moment after its connection is closed
            if not await admin.fetchval(ours):
                break
            await asyncio.sleep(0.05)
        assert await admin.fetchval(ours) == 0
        recorded = await admin.fetchval("SELECT count(*) FROM consent_log WHERE consent_id LIKE 'in-flight-%'")
        assert recorded == 30
    finally:
        await admin.close()
        await store.close()


async def test_sqlite_reopens_a_log_file_replaced_under_it_before_the_next_write(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # Backups restored under the running server: one made before the log was (an older file), one
    # after it. Each write goes into the file at the path then, whatever the new file's identity.
    async def backup(name: str, consent_id: str) -> Path:
        copy = SQLiteStore(tmp_path / name)
        await copy.record(make_record(consent_id))
        await copy.close()
        return tmp_path / name

    older = await backup("older.db", "in-the-older-backup")
    path = tmp_path / "consent.db"
    store = SQLiteStore(path, timeout=2.0)
    try:
        await store.record(make_record("before"))
        newer = await backup("newer.db", "in-the-newer-backup")
        path.rename(tmp_path / "old.db")
        older.rename(path)
        await store.record(make_record("after-older"))  # the first write after it succeeds, into the file now at the path
        assert [r.consent_id for r in await history(store)] == ["in-the-older-backup", "after-older"]
        path.rename(tmp_path / "older-again.db")
        newer.rename(path)
        await store.record(make_record("after-newer"))
        assert [r.consent_id for r in await history(store)] == ["in-the-newer-backup", "after-newer"]
    finally:
        await store.close()
    assert caplog.text.count("the file was deleted or replaced while in use; opening it again") == 2
    assert "not written" not in caplog.text


async def test_a_sqlite_log_replaced_during_a_write_does_not_keep_the_choice_in_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # A backup restored at the very moment a batch is written: committed into the file no longer at
    # the path, the choice would be proof nobody can find. The visitor hears 503 (nothing is kept
    # anywhere) and the next choice goes into the file now at the path.
    import consentmw.core.store.sqlite as sqlite_store

    path = tmp_path / "consent.db"
    restored = SQLiteStore(tmp_path / "restored.db")
    await restored.record(make_record("in-the-backup"))
    await restored.close()
    store = SQLiteStore(path, timeout=2.0)
    insert = sqlite_store._insert

    def insert_then_restore(conn: sqlite3.Connection, writes: list) -> dict:
        refused = insert(conn, writes)
        if any(w.record.consent_id == "during" for w in writes):
            path.rename(tmp_path / "old.db")
            (tmp_path / "restored.db").rename(path)
        return refused

    try:
        await store.record(make_record("before"))
        monkeypatch.setattr(sqlite_store, "_insert", insert_then_restore)
        with pytest.raises(StoreError, match="replaced during the write"):
            await store.record(make_record("during"))
        await store.record(make_record("after"))
        assert [r.consent_id for r in await history(store)] == ["in-the-backup", "after"]
        assert [r.consent_id for r in await history(SQLiteStore(tmp_path / "old.db"))] == ["before"]
    finally:
        await store.close()


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


@pytest.fixture
def backend_url(request: pytest.FixtureRequest) -> str:
    """The URL of an empty log on the backend the test is parametrized with ("sqlite" or "postgres")."""
    return request.getfixturevalue(f"{request.param}_url")


def refused_record(fields: dict[str, object]) -> ConsentRecord:
    return make_record(**{"consent_id": "refused", **fields})  # type: ignore[arg-type]


async def written_alone(url: str, record: ConsentRecord) -> StoreError:
    """The error the record's visitor gets when nobody else is writing at the same moment."""
    store = open_store(url)
    try:
        with pytest.raises(StoreError) as refused:
            await store.record(record)
        return refused.value
    finally:
        await store.close()


def first_line(error: BaseException) -> str:
    # PostgreSQL's DETAIL for a NOT NULL violation shows the row with its (always new) id.
    return str(error).splitlines()[0]


@pytest.mark.parametrize(("backend_url", "fields"), REFUSALS, indirect=["backend_url"])
async def test_a_refused_record_fails_alone_and_the_records_written_with_it_are_kept(
    backend_url: str, fields: dict[str, object]
) -> None:
    bad = refused_record(fields)
    alone = await written_alone(backend_url, bad)
    good = [make_record(f"visitor-{i}") for i in range(20)]
    log = open_store(backend_url)
    # Submitted together, so the store writes them as one batch.
    results = await asyncio.gather(*map(log.record, [*good[:10], bad, *good[10:]]), return_exceptions=True)
    stored = await history(log)
    await log.close()
    # RefusedRecord: the record is at fault, not the log (an import goes on past it).
    assert isinstance(alone, RefusedRecord) and isinstance(results[10], RefusedRecord)
    assert first_line(results[10]) == first_line(alone)
    assert results[:10] + results[11:] == [None] * 20
    assert sorted(r.consent_id for r in stored) == sorted(r.consent_id for r in good)


@pytest.mark.parametrize(
    ("backend_url", "refusals"),
    [
        pytest.param("sqlite", REFUSED_BY_BOTH, id="sqlite"),
        pytest.param("postgres", {**REFUSED_BY_BOTH, **REFUSED_BY_POSTGRES}, id="postgresql", marks=pytest.mark.postgres),
    ],
    indirect=["backend_url"],
)
async def test_each_of_several_refused_records_in_one_batch_gets_its_own_error(
    backend_url: str, refusals: dict[str, dict[str, object]]
) -> None:
    bad = {name: refused_record(fields) for name, fields in refusals.items()}
    alone = {name: first_line(await written_alone(backend_url, record)) for name, record in bad.items()}
    good = [make_record(f"visitor-{i}") for i in range(200)]
    # Refused records first, last and in between; inserted from the end so earlier spots stay put.
    step = len(good) // (len(bad) - 1)
    batch = list(good)
    for n, record in reversed(list(enumerate(bad.values()))):
        batch.insert(n * step, record)
    # Finding the refused ones splits the batch down to single records: on a loaded machine that
    # takes longer than the default 5 s, and the timeout is not what this test is about.
    log = open_store(backend_url, timeout=60.0)
    results = dict(zip(map(id, batch), await asyncio.gather(*map(log.record, batch), return_exceptions=True)))
    stored = await history(log)
    await log.close()
    assert {name: first_line(results[id(record)]) for name, record in bad.items()} == alone  # type: ignore[arg-type]
    assert [results[id(record)] for record in good] == [None] * len(good)
    assert sorted(r.consent_id for r in stored) == sorted(r.consent_id for r in good)


async def test_a_database_that_is_down_fails_a_batch_once_not_record_by_record(caplog: pytest.LogCaptureFixture) -> None:
    # Splitting a batch only helps when a record is at fault; against a database that is down it
    # would only repeat the failure (and the wait) for every part.
    log = open_store("postgresql://consentmw@127.0.0.1:9/nowhere", timeout=1.0)
    with caplog.at_level(logging.ERROR, logger="consentmw.core.store"):
        results = await asyncio.gather(*(log.record(make_record(f"visitor-{i}")) for i in range(20)), return_exceptions=True)
    await log.close()
    assert all(isinstance(r, StoreError) and not isinstance(r, RefusedRecord) for r in results)
    [logged] = caplog.records
    assert "20 record(s) not written" in logged.getMessage()
