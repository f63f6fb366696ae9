"""The running totals of a PostgreSQL log (core/store/postgres_summary.py): figures read from them
equal the definitions computed record by record, with several app servers writing the same visitors
at once, through prunes, deletes and late records, for a log from before the totals, counted by
`consentmw migrate` while visitors go on choosing, and with folds at any point of concurrent writes."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import random
from collections.abc import Iterator
from typing import Any

import asyncpg
import pytest

from consentmw.cli import main
from consentmw.core.store import open_store, postgres, postgres_summary, report
from consentmw.core.store import sql as sql_rows
from tests.store_support import T0, make_record, postgres_url  # noqa: F401
from tests.test_report import DAY, _moments, build, history, latest_stats, oracle, random_log, stats_of

pytestmark = pytest.mark.postgres


async def sql(url: str, statement: str, *args: Any) -> Any:
    conn = await asyncpg.connect(url)
    try:
        if not args and ";" in statement:
            return await conn.execute(statement)
        return await conn.fetch(statement, *args)
    finally:
        await conn.close()


async def write_from_servers(url: str, records: list[Any], servers: int = 3, waves: int = 4) -> None:
    """The records written by several app servers (a store each, its own pool) at once, in waves:
    each server's batch goes in one INSERT, and batches of different servers hold the same visitors."""
    stores = [open_store(url) for _ in range(servers)]
    try:
        size = -(-len(records) // waves)
        for start in range(0, len(records), size):
            wave = records[start : start + size]
            await asyncio.gather(*(stores[i % servers].record(r) for i, r in enumerate(wave)))  # type: ignore[attr-defined]
    finally:
        for store in stores:
            await store.close()  # type: ignore[attr-defined]


async def latest(url: str, **period: Any) -> dict[str, Any]:
    store = open_store(url)
    try:
        return (await store.stats(latest=True, **period)).as_dict()  # type: ignore[attr-defined]
    finally:
        await store.close()  # type: ignore[attr-defined]


async def has_totals(url: str) -> bool:
    store = open_store(url)
    try:
        return await store.has_totals()  # type: ignore[attr-defined]
    finally:
        await store.close()  # type: ignore[attr-defined]


@pytest.mark.parametrize("seed", [3, 4])
async def test_totals_stay_exact_with_servers_writing_the_same_visitors_at_once(postgres_url: str, seed: int) -> None:  # noqa: F811
    # Few visitors, many records: the servers' batches hold the same visitors, often twice each.
    await write_from_servers(postgres_url, random_log(seed, count=320, visitors=12, days=9))
    assert await has_totals(postgres_url)
    logged = await history(postgres_url)
    assert await build(postgres_url) == oracle(logged, now=T0)
    assert await build(postgres_url, bucket="week") == oracle(logged, now=T0, bucket="week")

    store = open_store(postgres_url)
    assert await store.prune(T0 + 3 * DAY + dt.timedelta(hours=5)) > 0  # type: ignore[attr-defined]
    await store.close()  # type: ignore[attr-defined]
    assert await sql(postgres_url, "DELETE FROM consent_log WHERE id % 7 = 0 RETURNING id")  # by hand, mid-history
    # Late: records older than the newest of their visitor, of their day and of their week.
    rng = random.Random(seed)
    visitors = sorted({r.consent_id for r in await history(postgres_url)})
    late = [
        make_record(rng.choice(visitors), at=T0 + dt.timedelta(seconds=rng.randrange(4 * 86400, 9 * 86400)),
                    choices={"necessary": True, "analytics": rng.random() < 0.5}, method="settings", policy_id="shop")
        for _ in range(60)
    ]  # fmt: skip
    # A visitor standing on each policy id: a policy id no visitor stands on is left out of the
    # report's current policies (found while writing this test, left as it is: see the report).
    late += [make_record(f"new-{p}", at=T0 + 8 * DAY, policy_id=p) for p in ("shop", None)]
    await write_from_servers(postgres_url, late)
    logged = await history(postgres_url)
    assert await build(postgres_url) == oracle(logged, now=T0)
    assert await build(postgres_url, bucket="week") == oracle(logged, now=T0, bucket="week")
    # `log stats --latest` of the whole log reads the totals; with a period it counts the records.
    fast = await latest(postgres_url)
    assert fast == await latest(postgres_url, since=T0 - 365 * DAY)
    assert fast["visitors"] == len({r.consent_id for r in logged if not r.scan}) and fast["scans_left_out"] > 0
    # The report folded every change into the totals.
    assert await sql(postgres_url, "SELECT count(*) FROM consent_report_changes") == [(0,)]


async def test_a_log_from_before_the_totals_is_counted_by_migrate_while_visitors_choose(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture  # noqa: F811
) -> None:
    await write_from_servers(postgres_url, random_log(5, count=300, visitors=40))
    await sql(postgres_url, postgres_summary.UNINSTALL)
    # Too big to be counted when a server opens it: the server installs the capture and says who counts.
    monkeypatch.setattr(postgres_summary, "COUNTED_AT_START", 10)
    await write_from_servers(postgres_url, random_log(15, count=40, visitors=40))
    assert "`consentmw migrate` counts them" in caplog.text
    assert not await has_totals(postgres_url)
    logged = await history(postgres_url)
    caplog.clear()
    assert await build(postgres_url) == oracle(logged, now=T0)  # counted from the records meanwhile
    assert "counting from the records instead" in caplog.text

    # The migration, while a visitor's write is in flight (it commits after the count's snapshot,
    # so the next fold counts it) and visitors go on choosing. Writers never wait for it.
    writing = await asyncpg.connect(postgres_url)
    try:
        await writing.execute("BEGIN")
        await writing.execute(
            "INSERT INTO consent_log (created_at, consent_id, policy_id, policy_version, choices, method)"
            " VALUES ($1, 'visitor-5-1', 'shop', '2', '{\"necessary\": true, \"analytics\": false}', 'settings')",
            T0 + 25 * DAY,
        )
        migration = asyncio.create_task(asyncio.to_thread(main, ["migrate", "--store", postgres_url]))
        await write_from_servers(postgres_url, random_log(5, count=300, visitors=60)[::3], waves=20)
        assert await migration == 0
    finally:
        await writing.execute("COMMIT")
        await writing.close()
    assert "report totals: counted in" in capsys.readouterr().err
    assert await has_totals(postgres_url)
    await write_from_servers(postgres_url, random_log(25, count=50, visitors=60))
    await write_from_servers(postgres_url, [make_record(f"new-{p}", at=T0 + 30 * DAY, policy_id=p) for p in ("shop", None)])
    logged = await history(postgres_url)
    assert "visitor-5-1" in {r.consent_id for r in logged}
    assert await build(postgres_url) == oracle(logged, now=T0)
    assert await build(postgres_url, bucket="week") == oracle(logged, now=T0, bucket="week")
    # Run again, it has nothing left to count and changes nothing.
    assert await asyncio.to_thread(main, ["migrate", "--store", postgres_url]) == 0
    assert await build(postgres_url) == oracle(logged, now=T0)


async def test_a_small_log_from_before_the_totals_is_counted_when_a_server_opens_it(postgres_url: str) -> None:  # noqa: F811
    await write_from_servers(postgres_url, random_log(9, count=120, visitors=30))
    await sql(postgres_url, postgres_summary.UNINSTALL)
    assert not (await sql(postgres_url, "SELECT to_regclass('consent_report') IS NOT NULL"))[0][0]
    assert await has_totals(postgres_url)  # this store counted them on opening the log
    logged = await history(postgres_url)
    assert await build(postgres_url) == oracle(logged, now=T0)
    await write_from_servers(postgres_url, random_log(19, count=30, visitors=30))
    logged = await history(postgres_url)
    assert await build(postgres_url) == oracle(logged, now=T0)


@pytest.mark.parametrize("isolation", ["repeatable_read", "serializable"])
async def test_writers_in_any_isolation_level_are_counted(postgres_url: str, isolation: str) -> None:  # noqa: F811
    await write_from_servers(postgres_url, [make_record("a")])
    conn = await asyncpg.connect(postgres_url)
    try:
        async with conn.transaction(isolation=isolation):
            await conn.execute(
                "INSERT INTO consent_log (created_at, consent_id, policy_version, choices, method) VALUES (now(), 'b', '1', '{}', 'api')"
            )
            await conn.execute("DELETE FROM consent_log WHERE consent_id = 'a'")
    finally:
        await conn.close()
    logged = await history(postgres_url)
    assert [r.consent_id for r in logged] == ["b"]
    assert await build(postgres_url) == oracle(logged, now=T0)


async def test_truncating_the_log_empties_the_totals(postgres_url: str) -> None:  # noqa: F811
    await write_from_servers(postgres_url, random_log(11, count=50))
    await sql(postgres_url, "TRUNCATE consent_log")
    await write_from_servers(postgres_url, [make_record("a", at=T0 + DAY)])
    logged = await history(postgres_url)
    assert await build(postgres_url) == oracle(logged, now=T0)
    assert (await build(postgres_url))["totals"]["records"] == 1


def random_periods(rng: random.Random, logged: list[Any], count: int, *, bounded: bool = False) -> Iterator[tuple[Any, Any]]:
    """`count` periods between moments of the log, `since` before `until`; open at either end (None)
    unless `bounded` (then `until` is always a moment)."""
    while count:
        since, until = rng.choice(_moments(rng, logged)), rng.choice(_moments(rng, logged))
        if (bounded and until is None) or (since is not None and until is not None and since >= until):
            continue
        count -= 1
        yield since, until


@pytest.mark.parametrize("seed", [6, 7])
async def test_periods_read_from_the_totals_follow_the_definitions(postgres_url: str, seed: int) -> None:  # noqa: F811
    # Dense: visitors come back the same day and the next, so their records straddle the ends.
    records = random_log(seed, count=260, visitors=25, days=8) + random_log(seed + 100, count=60)
    await write_from_servers(postgres_url, records)
    assert await has_totals(postgres_url)
    logged = await history(postgres_url)
    for since, until in random_periods(random.Random(seed), logged, 16):
        for bucket in ("day", "week"):
            period = {"since": since, "until": until, "bucket": bucket}
            assert await build(postgres_url, **period) == oracle(logged, now=T0, **period), period
        stats = await latest_stats(postgres_url, since, until)
        assert stats == stats_of(oracle(logged, now=T0, since=since, until=until))
        json.dumps(stats)  # `log stats --format json` writes it: counts are ints, not Decimal
    # Within one day, and a day exactly.
    day = {"since": T0 + 2 * DAY + dt.timedelta(hours=1), "until": T0 + 2 * DAY + dt.timedelta(hours=9)}
    assert await build(postgres_url, **day) == oracle(logged, now=T0, **day)
    midnight = dt.datetime.combine((T0 + 3 * DAY).date(), dt.time(), dt.UTC)
    day = {"since": midnight, "until": midnight + DAY}
    assert await build(postgres_url, **day) == oracle(logged, now=T0, **day)


async def insert(conn: Any, records: list[Any]) -> None:
    """One multi-row INSERT, as an app server's batch (or an import by hand) writes it."""
    rows = [sql_rows.row_values(r, r.created_at) for r in records]
    await conn.execute(postgres.INSERT_MANY, *[list(column) for column in zip(*rows)])


async def counted_from_the_records(url: str, bucket: str | None = None, **period: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The report and `log stats --latest` of a period as the store counts them from the records
    (its way without the totals)."""
    store = open_store(url)

    async def no_totals(*args: Any) -> None:
        return None

    store.aggregate_totals = no_totals  # type: ignore[attr-defined]
    store._from_totals = no_totals  # type: ignore[attr-defined]
    try:
        figures = await report.build(store, now=T0, bucket=bucket, **period)
        return figures, (await store.stats(latest=True, **period)).as_dict()  # type: ignore[attr-defined]
    finally:
        await store.close()  # type: ignore[attr-defined]


def _but_policies(figures: dict[str, Any]) -> dict[str, Any]:
    # A policy id no visitor stands on any more (its records deleted) is left out of the current
    # policies by the report, from the records as from the totals, and not by the oracle.
    return {k: v for k, v in figures.items() if k != "current_policies"}


async def figures_everywhere(url: str, logged: list[Any], rng: random.Random) -> None:
    """Every figure of the report (whole log and periods) and of `log stats --latest`, read from the
    totals, equals the figures counted from the records, and the definitions."""
    periods: list[dict[str, Any]] = [{}, *({"since": since, "until": until} for since, until in random_periods(rng, logged, 3))]
    for period in periods:
        figures, stats = await build(url, **period), await latest(url, **period)
        assert (figures, stats) == await counted_from_the_records(url, **period), period
        assert _but_policies(figures) == _but_policies(oracle(logged, now=T0, **period)), period


@pytest.mark.parametrize("seed", [31, 32])
async def test_folds_at_any_point_of_concurrent_writes_leave_the_figures_of_the_records(postgres_url: str, seed: int) -> None:  # noqa: F811
    # Random batches (times out of order, scans, the same visitors), deletes by hand and prunes, by
    # three writers at once, with folds (reports, two at a time now and then) at random points;
    # and a writer whose transaction stays open across folds: its changes have smaller seqs than
    # changes a fold reads, and commit after that fold's snapshot.
    rng = random.Random(seed)
    pool = random_log(seed, count=600, visitors=25, days=10)
    await write_from_servers(postgres_url, pool[:20])
    assert await has_totals(postgres_url)
    pool = pool[20:]
    writers = [await asyncpg.connect(postgres_url) for _ in range(3)]
    held = await asyncpg.connect(postgres_url)
    holding = 0
    try:
        for step in range(30):
            work: list[Any] = []
            for conn in writers:
                what = rng.random()
                if what < 0.7 and pool:
                    size = rng.randrange(1, 30)
                    batch, pool = pool[:size], pool[size:]
                    work.append(insert(conn, batch))
                elif what < 0.9:
                    work.append(conn.execute("DELETE FROM consent_log WHERE id % $1 = $2", rng.randrange(20, 60), rng.randrange(20)))
                else:
                    cutoff = T0 + dt.timedelta(seconds=rng.randrange(0, 86400))
                    work.append(conn.execute("DELETE FROM consent_log WHERE created_at < $1", cutoff))
            if rng.random() < 0.5:
                work.append(build(postgres_url))
            if rng.random() < 0.2:
                work.append(latest(postgres_url))
            if not holding and pool and rng.random() < 0.3:
                # Its seq is taken now; it commits a few steps (and folds) later.
                await held.execute("BEGIN")
                batch, pool = pool[:5], pool[5:]
                await insert(held, batch)
                await held.execute("DELETE FROM consent_log WHERE id = (SELECT max(id) FROM consent_log WHERE id % 3 = 0)")
                holding = rng.randrange(2, 5)
            await asyncio.gather(*work)
            if holding:
                holding -= 1
                if not holding:
                    await held.execute("COMMIT")
            if not holding and step % 10 == 9:
                await figures_everywhere(postgres_url, await history(postgres_url), rng)
        if holding:
            await held.execute("COMMIT")
    finally:
        for conn in (*writers, held):
            await conn.close()
    logged = await history(postgres_url)
    assert len(logged) > 50
    await figures_everywhere(postgres_url, logged, rng)
    assert await build(postgres_url, bucket="week") == (await counted_from_the_records(postgres_url, bucket="week"))[0]


async def test_roles_that_cannot_keep_the_totals_record_and_report_from_the_records(
    postgres_url: str, caplog: pytest.LogCaptureFixture  # noqa: F811
) -> None:
    import secrets
    from urllib.parse import parse_qs, urlsplit

    schema = parse_qs(urlsplit(postgres_url).query)["search_path"][0]
    await write_from_servers(postgres_url, random_log(41, count=60, visitors=15))
    await sql(postgres_url, postgres_summary.UNINSTALL)  # a log from before the totals
    site, reader = (f"consentmw_{what}_{secrets.token_hex(6)}" for what in ("site", "reader"))
    await sql(
        postgres_url,
        f"CREATE ROLE {site} LOGIN; CREATE ROLE {reader} LOGIN; GRANT USAGE ON SCHEMA {schema} TO {site}, {reader};"
        f" GRANT SELECT, INSERT ON consent_log TO {site}; GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO {reader};",
    )
    try:
        # The site's role may only append: it cannot install the capture, says so once, and records.
        site_url = postgres_url.replace("postgres@", f"{site}@", 1)
        await write_from_servers(site_url, random_log(42, count=30, visitors=15), servers=1)
        warnings = [r.getMessage() for r in caplog.records if "cannot be kept by this role" in r.getMessage()]
        assert len(warnings) == 1 and "owner" in warnings[0]
        logged = await history(postgres_url)
        assert len(logged) == 90
        assert await build(site_url) == oracle(logged, now=T0)
        # The owner installs and counts them; a role that may only read cannot fold the changes:
        # its reports count from the records, and say so.
        assert await asyncio.to_thread(main, ["migrate", "--store", postgres_url]) == 0
        await sql(postgres_url, f"GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO {reader}; GRANT INSERT ON consent_log TO {site};")
        await write_from_servers(site_url, random_log(43, count=30, visitors=15), servers=1)
        logged = await history(postgres_url)
        caplog.clear()
        reader_url = postgres_url.replace("postgres@", f"{reader}@", 1)
        assert await build(reader_url) == oracle(logged, now=T0)
        assert await latest(reader_url) == stats_of(oracle(logged, now=T0))
        assert "cannot fold the changes" in caplog.text and "counting from the records" in caplog.text
        assert await build(postgres_url) == oracle(logged, now=T0)  # the owner's report folds them
    finally:
        await sql(postgres_url, f"DROP OWNED BY {site}, {reader}; DROP ROLE {site}; DROP ROLE {reader};")


async def test_a_truncate_in_a_repeatable_read_transaction_leaves_the_figures_of_the_records(postgres_url: str) -> None:  # noqa: F811
    # The operator's transaction took its snapshot before a server's batch and a prune committed:
    # the TRUNCATE cannot see their changes.
    await write_from_servers(postgres_url, random_log(71, count=60, visitors=10))
    operator = await asyncpg.connect(postgres_url)
    server = await asyncpg.connect(postgres_url)
    try:
        await operator.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        await operator.fetchval("SELECT count(*) FROM consent_log")
        await insert(server, random_log(72, count=20, visitors=10))
        await server.execute("DELETE FROM consent_log WHERE id % 3 = 0")  # a prune, by hand
        await operator.execute("TRUNCATE consent_log")
        await operator.execute("COMMIT")
    finally:
        await operator.close()
        await server.close()
    assert await build(postgres_url) == oracle([], now=T0)
    await write_from_servers(postgres_url, random_log(73, count=30, visitors=10))
    logged = await history(postgres_url)
    assert len(logged) == 30
    assert await build(postgres_url) == oracle(logged, now=T0)
    assert await latest(postgres_url) == stats_of(oracle(logged, now=T0))


async def test_rows_loaded_with_the_triggers_off_are_counted_again_as_the_docs_say(postgres_url: str) -> None:  # noqa: F811
    await write_from_servers(postgres_url, random_log(81, count=40, visitors=10))
    conn = await asyncpg.connect(postgres_url)
    try:
        # What pg_restore --disable-triggers does around a data-only load.
        await conn.execute("ALTER TABLE consent_log DISABLE TRIGGER ALL")
        await insert(conn, random_log(82, count=20, visitors=10))
        await conn.execute("ALTER TABLE consent_log ENABLE TRIGGER ALL")
        await conn.execute("DELETE FROM consent_report_state")  # docs/cli.md: then `consentmw migrate`
    finally:
        await conn.close()
    assert await asyncio.to_thread(main, ["migrate", "--store", postgres_url]) == 0
    logged = await history(postgres_url)
    assert len(logged) == 60
    assert await build(postgres_url) == oracle(logged, now=T0)


async def test_a_read_only_session_reports_from_the_records_and_says_so(
    postgres_url: str, caplog: pytest.LogCaptureFixture  # noqa: F811
) -> None:
    # A reporting connection to a hot standby, or a role whose sessions default to read-only: it
    # cannot fold, and reports as it did before the totals.
    from tests.store_support import with_query

    await write_from_servers(postgres_url, random_log(91, count=60, visitors=15))
    assert await has_totals(postgres_url)
    await insert_by_hand(postgres_url, random_log(92, count=20, visitors=15))
    read_only = with_query(postgres_url, default_transaction_read_only="on")
    logged = await history(postgres_url)
    assert await build(read_only) == oracle(logged, now=T0)
    assert await latest(read_only) == stats_of(oracle(logged, now=T0))
    assert "cannot fold the changes" in caplog.text and "counting from the records" in caplog.text
    assert await build(postgres_url) == oracle(logged, now=T0)


async def insert_by_hand(url: str, records: list[Any]) -> None:
    conn = await asyncpg.connect(url)
    try:
        await insert(conn, records)
    finally:
        await conn.close()
