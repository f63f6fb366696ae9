"""Adversarial checks of the running totals of a PostgreSQL log (core/store/postgres_summary.py):
deployments and writers the totals must survive, each against the figures counted from the records
(tests.test_report.oracle) or against what a visitor must never see (a consent not recorded)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from typing import Any

import asyncpg
import pytest

from consentmw.core.store import open_store, postgres_summary, report
from consentmw.core.store.base import StoreError
from tests.store_support import T0, make_record, postgres_url, with_query  # noqa: F401
from tests.test_report import DAY
from tests.test_report import build, history, oracle, random_log
from tests.test_report_postgres import has_totals, sql, write_from_servers

pytestmark = pytest.mark.postgres

async def figures_of(url: str) -> dict[str, Any]:
    """The report's figures, not checked against its JSON schema (a negative count breaks that)."""
    store = open_store(url)
    try:
        return await report.build(store, now=T0)
    finally:
        await store.close()  # type: ignore[attr-defined]


INSERT_ONE = (
    "INSERT INTO consent_log (created_at, consent_id, policy_id, policy_version, choices, method)"
    " VALUES ($1, $2, 'shop', '1', $3::jsonb, 'banner')"
)


async def test_a_site_whose_database_defaults_to_repeatable_read_still_records_consents(postgres_url: str) -> None:  # noqa: F811
    # Sites set default_transaction_isolation for their role or database (ALTER ROLE ... SET), and
    # consentmw's writer opens its transactions with a plain BEGIN: with the totals' triggers, every
    # consent a visitor gives is refused ("READ COMMITTED transactions only"), and they get a 503.
    url = with_query(postgres_url, default_transaction_isolation="repeatable%20read")
    store = open_store(url)
    try:
        await store.record(make_record("a", at=T0))  # type: ignore[attr-defined]
        await store.record(make_record("a", at=T0 + dt.timedelta(hours=1), choices={"necessary": True}))  # type: ignore[attr-defined]
    except StoreError as exc:
        pytest.fail(f"a visitor's consent was not recorded on a log whose role defaults to REPEATABLE READ: {exc}")
    finally:
        await store.close()  # type: ignore[attr-defined]
    logged = await history(postgres_url)
    assert len(logged) == 2
    assert await build(postgres_url) == oracle(logged, now=T0)


async def test_a_repeatable_read_write_across_the_migration_is_counted_or_refused(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    # A log from before the totals, too big to be counted when a server opens it: the server
    # installs the capture, `consentmw migrate` counts.
    await write_from_servers(postgres_url, random_log(31, count=120, visitors=30))
    await sql(postgres_url, postgres_summary.UNINSTALL)
    monkeypatch.setattr(postgres_summary, "COUNTED_AT_START", 10)
    await write_from_servers(postgres_url, random_log(32, count=10, visitors=30))
    assert not await has_totals(postgres_url)
    # An operator's (or a job's) REPEATABLE READ transaction that reads the log, then writes to it:
    # its snapshot is from before `consentmw migrate` counted the part, so its trigger takes the
    # part for not counted yet and leaves the record to a count that has already happened.
    conn = await asyncpg.connect(postgres_url)
    try:
        await conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        await conn.fetchval("SELECT count(*) FROM consent_log")
        store = open_store(postgres_url)
        await store.migrate()  # type: ignore[attr-defined]
        await store.close()  # type: ignore[attr-defined]
        refused = False
        try:
            await conn.execute(INSERT_ONE, T0 + 30 * dt.timedelta(days=1), "late-visitor", json.dumps({"necessary": True, "analytics": True}))
            await conn.execute("COMMIT")
        except asyncpg.PostgresError:
            refused = True  # refused by name, as any other REPEATABLE READ writer: fine
            await conn.execute("ROLLBACK")
    finally:
        await conn.close()
    assert await has_totals(postgres_url)
    logged = await history(postgres_url)
    assert ("late-visitor" in {r.consent_id for r in logged}) is not refused
    figures = await build(postgres_url)
    expected = oracle(logged, now=T0)
    assert figures["totals"] == expected["totals"], "the report's totals leave out a record the log holds"
    assert figures == expected


async def test_an_insert_that_does_nothing_on_conflict_is_not_counted(postgres_url: str) -> None:  # noqa: F811
    # An operator puts records back from a copy of the log (a backup table, another database), with
    # their ids, skipping those the log still holds: INSERT ... ON CONFLICT (id) DO NOTHING. The BEFORE
    # trigger counts every row before PostgreSQL finds the conflict and skips it.
    await write_from_servers(postgres_url, random_log(41, count=80, visitors=20))
    assert await has_totals(postgres_url)
    await sql(postgres_url, "CREATE TABLE consent_log_copy AS SELECT * FROM consent_log")
    await sql(postgres_url, "DELETE FROM consent_log WHERE id % 4 = 0")
    await sql(
        postgres_url,
        "INSERT INTO consent_log OVERRIDING SYSTEM VALUE SELECT * FROM consent_log_copy ON CONFLICT (id) DO NOTHING;",
    )
    logged = await history(postgres_url)
    assert len(logged) == 80
    figures = await figures_of(postgres_url)
    expected = oracle(logged, now=T0)
    assert figures["totals"] == expected["totals"], "the report counts records the log does not hold"
    assert figures == expected


# What an app server still running the consentmw before the totals writes (its INSERT_MANY, rows
# in the order the visitors came) and how it prunes: a rolling upgrade runs both side by side, and
# the first upgraded server to start installs the triggers on a log this small.
OLD_INSERT_MANY = (
    "INSERT INTO consent_log (created_at, consent_id, policy_id, policy_version, choices, method)"
    " SELECT * FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::text[], $5::jsonb[], $6::text[])"
)


async def test_servers_of_the_previous_version_keep_recording_during_a_rolling_upgrade(postgres_url: str) -> None:  # noqa: F811
    # Upgraded server first: it installs the triggers (the log is small) and records a consent.
    await write_from_servers(postgres_url, [make_record("first", at=T0)])
    assert await has_totals(postgres_url)
    # Two servers (or one, with its batches in flight at once) of the previous version go on
    # writing batches of the visitors of the moment, in no particular order of the totals' parts.
    # Each row's trigger now waits for the part's lock, in that order: two such batches wait for
    # each other, PostgreSQL ends one as a deadlock, and its visitors are told their consent was
    # not recorded.
    async def old_server(name: str, rounds: int) -> list[str]:
        conn = await asyncpg.connect(postgres_url)
        failures = []
        try:
            for n in range(rounds):
                ids = [f"{name}-{n}-{i}" for i in range(120)]
                at = [T0 + dt.timedelta(seconds=i) for i in range(len(ids))]
                try:
                    async with conn.transaction():
                        await conn.execute(
                            OLD_INSERT_MANY, at, ids, ["shop"] * len(ids), ["1"] * len(ids),
                            [json.dumps({"necessary": True})] * len(ids), ["banner"] * len(ids),
                        )  # fmt: skip
                except asyncpg.PostgresError as exc:
                    failures.append(f"{type(exc).__name__}: {exc}")
        finally:
            await conn.close()
        return failures

    results = await asyncio.gather(*(old_server(name, 4) for name in ("old-a", "old-b", "old-c")))
    failures = [f for r in results for f in r]
    assert not failures, f"{len(failures)} batches of consents of the previous version's servers were lost: {failures[0]}"
    logged = await history(postgres_url)
    assert len(logged) == 1 + 3 * 4 * 120
    assert await build(postgres_url) == oracle(logged, now=T0)


async def test_a_period_ending_on_a_day_the_servers_time_zone_changes_its_clocks(postgres_url: str) -> None:  # noqa: F811
    # Many PostgreSQL servers run in their country's time zone (postgresql.conf's timezone, which
    # Debian's initdb takes from the machine). The report's end of the period's last day is its
    # first moment plus interval '1 day', which PostgreSQL adds in the session's time zone: on the
    # day New York moves its clocks (2026-03-08) that is 23 hours, and a visitor who came back in
    # the last hour of that day (UTC) after the period ended drops out of the period's figures.
    url = with_query(postgres_url, TimeZone="America/New_York")
    dst_day = dt.datetime(2026, 3, 8, tzinfo=dt.UTC)
    records = [
        make_record("regular", at=dst_day - dt.timedelta(hours=14), choices={"necessary": True, "analytics": True}),
        make_record("regular", at=dst_day + dt.timedelta(hours=23, minutes=30), choices={"necessary": True, "analytics": False}),
        make_record("other", at=dst_day - dt.timedelta(hours=30)),
        make_record("other", at=dst_day + dt.timedelta(hours=3)),
    ]
    await write_from_servers(url, records)
    assert await has_totals(url)
    logged = await history(url)
    period = {"since": None, "until": dst_day + dt.timedelta(hours=12)}
    store = open_store(url)
    try:
        figures = await report.build(store, now=T0, **period)
        latest = (await store.stats(latest=True, **period)).as_dict()  # type: ignore[attr-defined]
    finally:
        await store.close()  # type: ignore[attr-defined]
    expected = oracle(logged, now=T0, **period)
    assert figures["totals"] == expected["totals"], "a visitor of the period is missing from its report"
    assert figures == expected
    assert latest["visitors"] == 2, "`log stats --latest --until` leaves out a visitor of the period"


async def test_a_record_dated_at_the_last_moment_python_knows_is_counted_in_a_period(postgres_url: str) -> None:  # noqa: F811
    # A record dated 9999-12-31T23:59:59.999999Z (a SQLite log holds one; `log import` moves it): asyncpg
    # writes datetime.max as 'infinity' (and 0001-01-01T00:00Z as '-infinity'), whose day to_char
    # gives as NULL. Its totals' keys start with null: a period from a date on leaves it out of every
    # figure, and the whole log's report stops on a TypeError (None among the series' days).
    last = dt.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=dt.UTC)
    await write_from_servers(postgres_url, [make_record("a", at=T0), make_record("b", at=last), make_record("c", at=last - dt.timedelta(days=1))])
    assert await has_totals(postgres_url)
    logged = await history(postgres_url)
    assert max(r.created_at for r in logged) == last
    store = open_store(postgres_url)
    try:
        period = {"since": T0 + dt.timedelta(days=1)}
        figures = await report.build(store, now=T0, **period)
        assert figures["totals"]["records"] == 2, "the record of 9999-12-31 is missing from the period's report"
        assert figures == oracle(logged, now=T0, **period)
        assert await report.build(store, now=T0) == oracle(logged, now=T0)
    finally:
        await store.close()  # type: ignore[attr-defined]


async def test_a_write_naming_the_log_by_its_schema_counts_in_that_logs_totals(postgres_url: str) -> None:  # noqa: F811
    # consentmw finds its log through the URL's search_path (a schema per site, as these tests do);
    # an operator's psql session names it by its schema instead, with its own search_path, in which
    # another site's log is found first. The triggers' functions name their tables without a schema,
    # so the delete below is counted in the OTHER log's totals: both sites' reports go wrong.
    import secrets
    from urllib.parse import parse_qs, urlsplit

    shop = parse_qs(urlsplit(postgres_url).query)["search_path"][0]
    other = f"consentmw_test_{secrets.token_hex(6)}"
    await sql(postgres_url, f"CREATE SCHEMA {other};")
    other_url = postgres_url.replace(f"search_path={shop}", f"search_path={other}")
    try:
        await write_from_servers(postgres_url, random_log(51, count=60, visitors=15))
        await write_from_servers(other_url, random_log(52, count=60, visitors=15))
        assert await has_totals(postgres_url) and await has_totals(other_url)
        conn = await asyncpg.connect(other_url)  # the operator's session, on the other site's schema
        try:
            await conn.execute(f"DELETE FROM {shop}.consent_log WHERE id % 3 = 0")
        finally:
            await conn.close()
        for url in (postgres_url, other_url):
            logged = await history(url)
            figures = await figures_of(url)
            expected = oracle(logged, now=T0)
            assert figures["totals"] == expected["totals"], f"the report of {url.rpartition('=')[2]} is wrong"
            assert figures == expected
    finally:
        await sql(postgres_url, f"DROP SCHEMA {other} CASCADE;")


async def test_a_role_without_temporary_tables_records_consents_on_a_fresh_log(postgres_url: str) -> None:  # noqa: F811
    # Hardened databases revoke TEMPORARY from PUBLIC: the site's role owns its schema and nothing
    # more. Counting the totals makes a temporary table (_PART_ROWS), and a server counts them when it
    # opens a new or small log: opening fails, and no visitor's consent is recorded.
    import secrets
    from urllib.parse import parse_qs, urlsplit

    schema = parse_qs(urlsplit(postgres_url).query)["search_path"][0]
    role = f"consentmw_site_{secrets.token_hex(6)}"
    db = urlsplit(postgres_url).path.lstrip("/")
    await sql(postgres_url, f"CREATE ROLE {role} LOGIN; GRANT ALL ON SCHEMA {schema} TO {role}; REVOKE TEMPORARY ON DATABASE {db} FROM PUBLIC;")
    try:
        url = postgres_url.replace("postgres@", f"{role}@", 1)
        store = open_store(url)
        try:
            await store.record(make_record("a", at=T0))  # type: ignore[attr-defined]
        except StoreError as exc:
            pytest.fail(f"a visitor's consent was not recorded for a role that cannot make temporary tables: {exc}")
        finally:
            await store.close()  # type: ignore[attr-defined]
        logged = await history(postgres_url)
        assert [r.consent_id for r in logged] == ["a"]
        assert await build(postgres_url) == oracle(logged, now=T0)
    finally:
        await sql(postgres_url, f"GRANT TEMPORARY ON DATABASE {db} TO PUBLIC; DROP OWNED BY {role}; DROP ROLE {role};")


async def test_a_site_role_that_may_only_append_to_the_log_records_consents(postgres_url: str) -> None:  # noqa: F811
    # The log is append-only, and careful operators make it so for the site too: the owner creates the
    # log (here, a first server or `consentmw migrate` run as the owner), the site's role gets SELECT
    # and INSERT on consent_log and nothing more. The totals' triggers run as the writer and need its
    # rights on consent_report, consent_report_pending and consent_report_counted: the server opens the
    # log without a word (its start-up skips the schema statements on a current log), then every
    # consent fails. (Before the totals such a role could not start a server at all: loud, at least.)
    import secrets
    from urllib.parse import parse_qs, urlsplit

    schema = parse_qs(urlsplit(postgres_url).query)["search_path"][0]
    await write_from_servers(postgres_url, [make_record("first", at=T0)])  # the owner opens the log
    assert await has_totals(postgres_url)
    role = f"consentmw_site_{secrets.token_hex(6)}"
    await sql(postgres_url, f"CREATE ROLE {role} LOGIN; GRANT USAGE ON SCHEMA {schema} TO {role}; GRANT SELECT, INSERT ON consent_log TO {role};")
    try:
        store = open_store(postgres_url.replace("postgres@", f"{role}@", 1))
        try:
            await store.record(make_record("a", at=T0 + dt.timedelta(hours=1)))  # type: ignore[attr-defined]
        except StoreError as exc:
            pytest.fail(f"a visitor's consent was not recorded by a role that may append to the log: {exc}")
        finally:
            await store.close()  # type: ignore[attr-defined]
        logged = await history(postgres_url)
        assert [r.consent_id for r in logged] == ["first", "a"]
        assert await build(postgres_url) == oracle(logged, now=T0)
    finally:
        await sql(postgres_url, f"DROP OWNED BY {role}; DROP ROLE {role};")


async def prune_many_within_the_budget(postgres_url: str, count: int, spacing: str, visitors: int, timeout: float | None = None) -> None:
    """Writes ``count`` old records, one per ``spacing``, of ``visitors`` visitors and one kept, and
    checks that the store's prune deletes them all within its time budget, the totals still right."""
    await write_from_servers(postgres_url, [make_record("kept", at=T0 + 400 * DAY)])
    assert await has_totals(postgres_url)
    await sql(
        postgres_url,
        "INSERT INTO consent_log (created_at, consent_id, policy_id, policy_version, choices, method)"
        f" SELECT $1::timestamptz + i * interval '{spacing}', 'v-' || (i % {visitors}), 'shop', '1',"
        f" jsonb_build_object('necessary', true, 'analytics', i % 3 = 0), 'banner' FROM generate_series(1, {count}) AS i",
        T0,
    )
    store = open_store(postgres_url) if timeout is None else open_store(postgres_url, timeout=timeout)
    try:
        assert await store.prune(T0 + 300 * DAY) == count  # type: ignore[attr-defined]
    finally:
        await store.close()  # type: ignore[attr-defined]
    logged = await history(postgres_url)
    assert [r.consent_id for r in logged] == ["kept"]
    assert await build(postgres_url) == oracle(logged, now=T0)


async def test_a_prune_of_64000_records_ends_within_the_stores_time_budget(postgres_url: str) -> None:  # noqa: F811
    # `consentmw log prune` (and a site's scheduled prune) deletes months of records in one call,
    # within the store's timeout: the totals' upkeep of each deleted record must not make it fail.
    await prune_many_within_the_budget(postgres_url, 64000, "1 minute", 9000)


@pytest.mark.parametrize("zone", ["Asia/Seoul", "America/Los_Angeles", "Pacific/Kiritimati"])
async def test_periods_follow_utc_days_in_any_session_time_zone(postgres_url: str, zone: str) -> None:  # noqa: F811
    # The same as above in zones ahead of UTC and behind it: a day's end computed in the session's
    # zone takes hours from the period's last day or adds hours of the next.
    import random

    from tests.test_report import latest_stats, stats_of
    from tests.test_report_postgres import random_periods

    url = with_query(postgres_url, TimeZone=zone)
    await write_from_servers(url, random_log(61, count=240, visitors=20, days=5))
    assert await has_totals(url)
    logged = await history(url)
    for since, until in random_periods(random.Random(zone), logged, 8, bounded=True):
        period = {"since": since, "until": until}
        assert await build(url, **period) == oracle(logged, now=T0, **period), period
        assert await latest_stats(url, since, until) == stats_of(oracle(logged, now=T0, **period)), period
