"""Adversarial checks, second round, of the running totals of a PostgreSQL log
(core/store/postgres_summary.py: statement-level capture, folded by the reader): what a visitor, a
site owner or a privacy officer would notice, against the figures counted from the records and
against what the log did before the totals."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import secrets
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import asyncpg
import pytest

from consentmw.core.store import open_store, postgres_summary, report
from consentmw.core.store.base import StoreError
from tests.store_support import T0, make_record, postgres_url, with_query  # noqa: F401
from tests.test_report import DAY, build, history, oracle, random_log
from tests.test_report_postgres_adversarial import prune_many_within_the_budget
from tests.test_report_postgres import counted_from_the_records, has_totals, latest, sql, write_from_servers

pytestmark = pytest.mark.postgres


async def test_records_deleted_and_put_back_between_two_reports_are_counted_once(postgres_url: str) -> None:  # noqa: F811
    await write_from_servers(postgres_url, random_log(61, count=80, visitors=20))
    assert await has_totals(postgres_url)
    await build(postgres_url)  # a report folds the writes so far
    await sql(postgres_url, "CREATE TABLE consent_log_copy AS SELECT * FROM consent_log")
    await sql(postgres_url, "DELETE FROM consent_log WHERE id % 4 = 0")
    await sql(postgres_url, "INSERT INTO consent_log OVERRIDING SYSTEM VALUE SELECT * FROM consent_log_copy ON CONFLICT (id) DO NOTHING;")
    logged = await history(postgres_url)
    assert len(logged) == 80
    figures = await build(postgres_url)
    assert figures["totals"] == oracle(logged, now=T0)["totals"]
    assert (figures, await latest(postgres_url)) == await counted_from_the_records(postgres_url)


def _schema_of(url: str) -> str:
    return parse_qs(urlsplit(url).query)["search_path"][0]


async def _pruning(url: str) -> asyncpg.Connection:
    """A prune under way (main's `consentmw log prune` of a big log takes seconds; an import, a
    job's own transaction): a DELETE of old records not committed yet. It holds the log's ROW
    EXCLUSIVE lock, as every writer does, which never stopped another writer."""
    await sql(
        url,
        "INSERT INTO consent_log (created_at, consent_id, policy_id, policy_version, choices, method)"
        " SELECT $1::timestamptz - i * interval '1 day', 'old-' || i, 'shop', '1', '{\"necessary\": true}', 'banner'"
        " FROM generate_series(1, 50) AS i",
        T0 - 400 * DAY,
    )
    conn = await asyncpg.connect(url)
    await conn.execute("BEGIN")
    await conn.execute("DELETE FROM consent_log WHERE created_at < $1", T0 - 395 * DAY)
    return conn


async def _record_while_a_server_starts(running: Any, starting_url: str) -> list[str]:
    """A consent recorded by a running server while another one starts (its first record opens its
    pool), and one at the new server; the refusals their visitors get."""
    starting = open_store(starting_url, timeout=2.0)
    refused: list[str] = []

    async def visitor(store: Any, name: str, delay: float) -> None:
        await asyncio.sleep(delay)
        try:
            await store.record(make_record(name, at=T0 + dt.timedelta(minutes=1)))
        except StoreError as exc:
            refused.append(f"{name}: {exc}")

    try:
        await asyncio.gather(visitor(starting, "at-the-new-server", 0), visitor(running, "at-a-running-server", 0.5))
    finally:
        await starting.close()  # type: ignore[attr-defined]
    return refused


# A log main made: no capture, no totals, no function of theirs (UNINSTALL keeps the withdrawals').
MAIN_LOG = postgres_summary.UNINSTALL + "DROP FUNCTION IF EXISTS consent_report_withdraws(jsonb, jsonb);"


class MainServer:
    """An app server still running main's consentmw (no totals) during a rolling upgrade: its
    batch INSERT within the store's time budget."""

    def __init__(self, url: str, timeout: float) -> None:
        self.url, self.timeout = url, timeout

    async def record(self, record: Any) -> None:
        from tests.test_report_postgres import insert

        conn = await asyncpg.connect(self.url)
        try:
            async with asyncio.timeout(self.timeout), conn.transaction():
                await insert(conn, [record])
        except TimeoutError:
            raise StoreError(f"writing to the consent log took more than {self.timeout:.2f} s") from None
        finally:
            conn.terminate()


async def test_a_server_starting_during_a_prune_does_not_stop_the_others_recording(postgres_url: str) -> None:  # noqa: F811
    # A rolling upgrade from main: the log has no capture yet, main's servers write, and a prune is
    # under way. The upgraded server's start installs the capture: CREATE TRIGGER waits for the
    # prune's lock, and every INSERT of every server queues behind it until the new server gives
    # up. (Main did this on every start: its CREATE INDEX IF NOT EXISTS took the table's SHARE lock;
    # the new start skips the schema on a current log, but not the capture's install.)
    await write_from_servers(postgres_url, [make_record("first", at=T0)])
    await sql(postgres_url, MAIN_LOG)
    prune = await _pruning(postgres_url)
    try:
        refused = await _record_while_a_server_starts(MainServer(postgres_url, 2.0), postgres_url)
    finally:
        await prune.execute("COMMIT")
        await prune.close()
    assert not refused, f"consents refused while a server started during a prune: {refused}"
    assert {"at-the-new-server", "at-a-running-server"} <= {r.consent_id for r in await history(postgres_url)}


async def test_a_server_of_a_role_that_is_not_the_owner_starting_during_a_prune_does_not_stop_the_others(postgres_url: str) -> None:  # noqa: F811
    # The site's role may append to the log (SELECT, INSERT) and create in its schema (a schema
    # made before PostgreSQL 15 lets PUBLIC create in public), but is not the log's owner: it
    # cannot install the capture, and tries on every start, for good if the owner never runs
    # `consentmw migrate`. Its CREATE TRIGGER takes the log's lock before PostgreSQL finds it is not
    # the owner: during a prune, every server's writes wait until it gives up, on each start.
    # (Main could not start such a role at all: its CREATE INDEX needs the owner.)
    schema = _schema_of(postgres_url)
    await write_from_servers(postgres_url, [make_record("first", at=T0)])
    await sql(postgres_url, MAIN_LOG)
    role = f"consentmw_site_{secrets.token_hex(6)}"
    await sql(postgres_url, f"CREATE ROLE {role} LOGIN; GRANT USAGE, CREATE ON SCHEMA {schema} TO {role}; GRANT SELECT, INSERT ON consent_log TO {role};")
    site_url = postgres_url.replace("postgres@", f"{role}@", 1)
    try:
        running = open_store(site_url, timeout=2.0)
        await running.record(make_record("before", at=T0))  # type: ignore[attr-defined]
        prune = await _pruning(postgres_url)
        try:
            refused = await _record_while_a_server_starts(running, site_url)
        finally:
            await prune.execute("COMMIT")
            await prune.close()
            await running.close()  # type: ignore[attr-defined]
        assert not refused, f"consents refused while a server of the site's role started during a prune: {refused}"
    finally:
        await sql(postgres_url, f"DROP OWNED BY {role}; DROP ROLE {role};")


async def _tables_naming(url: str, text: str) -> list[str]:
    """The tables of the log's schema with a row whose text holds `text` (how a privacy officer
    checks that a visitor's data is gone)."""
    conn = await asyncpg.connect(url)
    try:
        tables = await conn.fetch(
            "SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) FROM pg_class AS c JOIN pg_namespace AS n"
            " ON n.oid = c.relnamespace WHERE c.relkind = 'r' AND n.nspname = current_schema()"
        )
        return [t for (t,) in tables if await conn.fetchval(f"SELECT count(*) FROM {t} AS r WHERE strpos(r::text, $1) > 0", text)]
    finally:
        await conn.close()


async def test_a_pruned_visitor_is_gone_from_the_database(postgres_url: str) -> None:  # noqa: F811
    # `consentmw log prune --older-than DAYS` deletes the records older than the retention period:
    # what a privacy policy promises. The capture copies every deleted record (consent id, time,
    # choices, policy, language, region) into consent_report_changes, where it stays until someone
    # runs a report: on a site that never does, for good.
    await write_from_servers(postgres_url, [make_record("expired-visitor", at=T0), make_record("kept", at=T0 + 400 * DAY)])
    assert await has_totals(postgres_url)
    await build(postgres_url)
    store = open_store(postgres_url)
    try:
        assert await store.prune(T0 + 300 * DAY) == 1  # type: ignore[attr-defined]
    finally:
        await store.close()  # type: ignore[attr-defined]
    assert [r.consent_id for r in await history(postgres_url)] == ["kept"]
    assert await _tables_naming(postgres_url, "expired-visitor") == [], "the pruned visitor's consent id and choices are still in the database"


async def test_a_log_whose_totals_are_never_counted_does_not_keep_copies_of_its_records_for_good(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    # A log from main too big to be counted when a server opens it: the server installs the capture
    # and says `consentmw migrate` counts the totals. Nobody runs it (the warning is one line in a
    # server's log). From then on every record written adds a row to consent_report_changes, every
    # prune a copy of each record it deletes, and nothing ever removes them: reports count from the
    # records and never fold. The database grows by about 130 bytes per record (400 for the record
    # itself) for good, and pruned visitors stay in it.
    await write_from_servers(postgres_url, random_log(66, count=60, visitors=20))
    await sql(postgres_url, MAIN_LOG)
    monkeypatch.setattr(postgres_summary, "COUNTED_AT_START", 10)
    await write_from_servers(postgres_url, [make_record("expired-visitor", at=T0 - 400 * DAY), *random_log(67, count=40, visitors=20)])
    assert not await has_totals(postgres_url)
    store = open_store(postgres_url)
    try:
        assert await store.prune(T0 - 300 * DAY) == 1  # type: ignore[attr-defined]
    finally:
        await store.close()  # type: ignore[attr-defined]
    for _ in range(2):
        await build(postgres_url)  # the site's reports, from the records
    assert "expired-visitor" not in {r.consent_id for r in await history(postgres_url)}
    installed = (await sql(postgres_url, "SELECT to_regclass('consent_report_changes') IS NOT NULL"))[0][0]
    kept = (await sql(postgres_url, "SELECT count(*) FROM consent_report_changes"))[0][0] if installed else 0
    assert kept == 0, f"{kept} copies of records kept after the site's reports"
    assert await _tables_naming(postgres_url, "expired-visitor") == [], "the pruned visitor is still in the database"


@pytest.mark.parametrize("isolation", ["repeatable%20read", "serializable"])
async def test_servers_opening_a_new_log_at_once_in_a_database_that_defaults_to_repeatable_read(postgres_url: str, isolation: str) -> None:  # noqa: F811
    # Three app servers start at once on a new log, in a database whose role defaults to REPEATABLE
    # READ (or SERIALIZABLE). The schema's transaction takes its snapshot with its first statement,
    # the schema lock it then waits for: behind the first server's commit, the others do not see the
    # table's columns and triggers it made, run the schema again, and fail ("column region of relation
    # consent_log already exists"): their first visitors' consents are refused. (Main did this too.)
    url = with_query(postgres_url, default_transaction_isolation=isolation)
    stores = [open_store(url) for _ in range(3)]
    try:
        outcomes = await asyncio.gather(*(s.record(make_record(f"first-{i}", at=T0)) for i, s in enumerate(stores)), return_exceptions=True)  # type: ignore[attr-defined]
    finally:
        for store in stores:
            await store.close()  # type: ignore[attr-defined]
    refused = [str(o) for o in outcomes if isinstance(o, BaseException)]
    assert not refused, f"{len(refused)} of 3 first consents refused: {refused[0]}"
    assert len(await history(postgres_url)) == 3


# How an operator moves the log: its schema renamed (ALTER SCHEMA ... RENAME TO, a reorganisation
# of a database shared by sites: the log, its triggers and the totals' tables and functions go with
# the schema), or the log alone moved to another schema (ALTER TABLE ... SET SCHEMA, which takes its
# indexes and triggers along but not the totals' tables). Then the servers' search_path names the
# new schema. The capture's functions named their table by the old schema, and a start found the
# triggers without their tables: every visitor's consent was refused. Main's log went on recording.
MOVES = {
    "schema renamed": ("ALTER SCHEMA {old} RENAME TO {new};", "ALTER SCHEMA {new} RENAME TO {old};"),
    "log moved to another schema": ("CREATE SCHEMA {new}; ALTER TABLE {old}.consent_log SET SCHEMA {new};", "DROP SCHEMA {new} CASCADE;"),
}


@pytest.mark.parametrize("move", MOVES)
async def test_a_log_in_another_schema_still_records_consents(postgres_url: str, move: str) -> None:  # noqa: F811
    await write_from_servers(postgres_url, [make_record("before", at=T0)])
    assert await has_totals(postgres_url)
    old = _schema_of(postgres_url)
    names = {"old": old, "new": f"{old}_moved"}
    there, back = (statement.format(**names) for statement in MOVES[move])
    await sql(postgres_url, there)
    url = postgres_url.replace(f"search_path={old}", f"search_path={names['new']}")
    try:
        store = open_store(url)
        try:
            await store.record(make_record("after", at=T0 + DAY))  # type: ignore[attr-defined]
        except StoreError as exc:
            pytest.fail(f"a visitor's consent was refused after the {move}: {exc}")
        finally:
            await store.close()  # type: ignore[attr-defined]
        assert [r.consent_id for r in await history(url)] == ["before", "after"]
        assert (await build(url), await latest(url)) == await counted_from_the_records(url)
    finally:
        await sql(url, back)


async def test_migrate_during_a_prune_waits_for_it_without_stopping_the_servers(postgres_url: str) -> None:  # noqa: F811
    # `consentmw migrate` installs the capture on a log main made while a prune is under way: its
    # CREATE TRIGGER must not queue every server's INSERT behind it until the prune ends. It tries
    # again until the log is free, and then keeps and counts the totals.
    from consentmw.cli import main

    await write_from_servers(postgres_url, [make_record("first", at=T0)])
    await sql(postgres_url, MAIN_LOG)
    prune = await _pruning(postgres_url)
    running = MainServer(postgres_url, 2.0)
    migration = asyncio.create_task(asyncio.to_thread(main, ["migrate", "--store", postgres_url]))
    refused: list[str] = []
    try:
        for i in range(3):
            await asyncio.sleep(0.5)
            try:
                await running.record(make_record(f"during-{i}", at=T0 + dt.timedelta(minutes=i)))
            except StoreError as exc:
                refused.append(str(exc))
        assert not migration.done(), "migrate ended while the prune held the log"
    finally:
        await prune.execute("COMMIT")
        await prune.close()
    assert await migration == 0
    assert not refused, f"consents refused while migrate waited for a prune: {refused}"
    assert await has_totals(postgres_url)
    logged = await history(postgres_url)
    assert {"during-0", "during-1", "during-2"} <= {r.consent_id for r in logged}
    assert await build(postgres_url) == oracle(logged, now=T0)


async def test_a_prune_of_many_records_deletes_them_within_the_stores_time_budget_each_time(postgres_url: str) -> None:  # noqa: F811
    # A site that prunes months of records at once: with the capture, one DELETE of them all took
    # longer than the store's time budget (a million records: 5.5-6.9 s against 5 s), and the prune
    # failed, deleting nothing. It deletes in parts, each within the budget.
    await prune_many_within_the_budget(postgres_url, 300000, "1 second", 30000, timeout=0.7)
