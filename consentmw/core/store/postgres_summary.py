"""The report's running totals in a PostgreSQL log: what summary.py keeps in SQLite, kept exact
under any number of concurrent writers and app servers.

The totals have summary.py's kinds and keys (a key is the text of a jsonb array, compared byte by
byte, so that a range of keys is a range of days). Differences, all for concurrency:

- A row trigger runs BEFORE each insert or delete: it sees the rows an INSERT ... SELECT wrote
  before this one and not this one, so a batch of records is counted as one record after the
  other, as SQLite does. It first takes a lock on the visitor's part (one of 64 by the hash of the
  consent id; a transaction advisory lock): a second writer of the same part waits for the first to
  commit, and then its trigger reads the visitor's records again (READ COMMITTED: a fresh snapshot
  per statement). A writer in REPEATABLE READ or SERIALIZABLE would not see them, so its write is
  refused with a message saying so. A lock per part, not per visitor: a transaction holds 64 locks
  at most (PostgreSQL's lock table is small: a lock per visitor fails a prune of a big log). The
  store writes a batch in part order, and prunes part by part, so that writers never deadlock.
- Writers never update a shared row: each change is appended to consent_report_pending. At the end
  of a statement, the one transaction that gets the fold lock without waiting moves the pending
  changes into consent_report; the others leave theirs for the next. No writer waits for another
  on the totals, and none can deadlock on them. Readers add the two (consent_report_totals).
- The totals of an existing log are counted in 64 parts by the visitor's hash, each in its own
  short transaction (`consentmw migrate`, with progress). A part's writers count their records
  only once the part is counted; counting a part takes the part's lock, so it sees every record
  committed before it, and every later one is counted by its trigger. Until all parts are counted
  the report counts from the records. A new or small log is counted in the transaction that
  creates the triggers (which keeps writers out until it commits).

The visitor index starts with the part, so that one index finds a record's neighbours and a
part's records.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

logger = logging.getLogger("consentmw.core.store")

PARTS = 64
# Logs with fewer records than this get their totals counted when an app server opens them; a
# larger one waits for `consentmw migrate` (its index alone takes a while to build).
COUNTED_AT_START = 20_000
LONG = 3600.0  # a statement of the migration: minutes on a big log are fine for a command an operator runs

DAY = "to_char(({}) AT TIME ZONE 'UTC', 'YYYY-MM-DD')"
WEEK = "to_char(date_trunc('week', ({}) AT TIME ZONE 'UTC'), 'YYYY-MM-DD')"


def fields(r: str) -> str:
    return f"jsonb_build_array({r}.policy_id, {r}.method, {r}.policy_version, {r}.language, {r}.region, {r}.choices)"


def _records_key(r: str) -> str:
    return f"jsonb_build_array({DAY.format(f'{r}.created_at')}, {r}.method, {r}.policy_version, {r}.language, {r}.region)::text"


FUNCTIONS = f"""
CREATE OR REPLACE FUNCTION consent_report_part(consent_id text) RETURNS int
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT (hashtextextended(consent_id, 0) & {PARTS - 1})::int $$;
-- 1 if the choices `after` refuse a category the choices `before` allowed, else 0 (0 if either is
-- NULL). PL/pgSQL: as an SQL function with a subquery each call in a trigger costs ~200 us.
CREATE OR REPLACE FUNCTION consent_report_withdraws(before jsonb, after jsonb) RETURNS int
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    category text;
    allowed jsonb;
BEGIN
    IF before IS NULL OR after IS NULL OR before = after THEN
        RETURN 0;
    END IF;
    FOR category, allowed IN SELECT * FROM jsonb_each(before) LOOP
        IF allowed = 'true'::jsonb AND after -> category <> 'true'::jsonb THEN
            RETURN 1;
        END IF;
    END LOOP;
    RETURN 0;
END
$$;
"""

TABLES = """
CREATE TABLE IF NOT EXISTS consent_report (
    kind text NOT NULL, key text COLLATE "C" NOT NULL, n bigint NOT NULL, PRIMARY KEY (kind, key)
);
CREATE TABLE IF NOT EXISTS consent_report_pending (kind text NOT NULL, key text COLLATE "C" NOT NULL, n bigint NOT NULL);
CREATE TABLE IF NOT EXISTS consent_report_counted (part int PRIMARY KEY);
CREATE OR REPLACE VIEW consent_report_totals AS
    SELECT kind, key, sum(n)::bigint AS n FROM (
        SELECT kind, key, n FROM consent_report UNION ALL SELECT kind, key, n FROM consent_report_pending
    ) AS t GROUP BY kind, key;
"""
INDEX = "consent_log_visitor"
INDEX_COLUMNS = "(consent_report_part(consent_id), consent_id, created_at, id)"

# Moves the pending changes into the totals, in the one transaction that gets the lock at once.
FOLD = """
    IF pg_try_advisory_xact_lock('consent_log'::regclass::oid::int, -1) THEN
        WITH moved AS (DELETE FROM consent_report_pending RETURNING kind, key, n)
        INSERT INTO consent_report (kind, key, n) SELECT kind, key, sum(n) FROM moved GROUP BY kind, key
        ON CONFLICT (kind, key) DO UPDATE SET n = consent_report.n + excluded.n;
    END IF;
"""


def _neighbour(r: str, op: str, order: str) -> str:
    # The visitor's other record just before (op "<") or after (">") r, scans left out.
    return (
        f"SELECT o.created_at, o.choices, {fields('o')} AS fields FROM consent_log AS o"
        f" WHERE consent_report_part(o.consent_id) = consent_report_part({r}.consent_id) AND o.consent_id = {r}.consent_id"
        f" AND NOT o.scan AND o.id <> {r}.id AND (o.created_at, o.id) {op} ({r}.created_at, {r}.id)"
        f" ORDER BY o.created_at {order}, o.id {order} LIMIT 1"
    )


def _on_change(r: str) -> str:
    """The changes to every total when r comes (NEW) or goes (OLD): summary._on_change's, from the
    visitor's records just before r (p) and just after it (x)."""
    sign, back = ("1", "-1") if r == "NEW" else ("-1", "1")
    day, week = DAY.format(f"{r}.created_at"), WEEK.format(f"{r}.created_at")
    c = (
        f"SELECT {DAY.format('p.created_at')} AS p_day, {DAY.format('x.created_at')} AS x_day, {WEEK.format('p.created_at')} AS p_week,"
        f" p.choices AS p_choices, p.fields AS p_fields, {fields(r)} AS r_fields, x.created_at IS NULL AS newest,"
        f" x.created_at IS NULL OR {DAY.format('x.created_at')} <> {day} AS of_day,"
        f" x.created_at IS NULL OR {WEEK.format('x.created_at')} <> {week} AS of_week, p.created_at IS NOT NULL AS p_is,"
        f" consent_report_withdraws(p.choices, {r}.choices) AS w_pr,"
        f" consent_report_withdraws({r}.choices, x.choices) - consent_report_withdraws(p.choices, x.choices) AS w_x"
        f" FROM (SELECT 1) AS one LEFT JOIN LATERAL ({_neighbour(r, '<', 'DESC')}) AS p ON true"
        f" LEFT JOIN LATERAL ({_neighbour(r, '>', '')}) AS x ON true"
    )
    alone = f"(c.of_day AND c.p_is AND c.p_day <> {day})"
    rows = [
        ("records", _records_key(r), sign),
        ("standing", "c.r_fields::text", f"{sign} * c.newest::int"),
        ("standing", "c.p_fields::text", f"{back} * (c.newest AND c.p_is)::int"),
        ("day", f"jsonb_build_array({day}, {r}.choices)::text", f"{sign} * c.of_day::int"),
        ("day", f"jsonb_build_array({day}, c.p_choices)::text", f"{back} * (c.of_day AND c.p_day = {day})::int"),
        ("week", f"jsonb_build_array({week}, {r}.choices)::text", f"{sign} * c.of_week::int"),
        ("week", "jsonb_build_array(c.p_week, c.p_choices)::text", f"{back} * (c.of_week AND c.p_week = {week})::int"),
        ("last", f"jsonb_build_array({day}, c.x_day, c.r_fields)::text", f"{sign} * c.of_day::int"),
        ("last", f"jsonb_build_array({day}, c.x_day, c.p_fields)::text", f"{back} * (c.of_day AND c.p_day = {day})::int"),
        ("last", "jsonb_build_array(c.p_day, c.x_day, c.p_fields)::text", f"{back} * {alone}::int"),
        ("last", f"jsonb_build_array(c.p_day, {day}, c.p_fields)::text", f"{sign} * {alone}::int"),
        ("withdrawals", f"jsonb_build_array({day})::text", f"{sign} * c.w_pr"),
        ("withdrawals", "jsonb_build_array(c.x_day)::text", f"{sign} * c.w_x"),
    ]
    values = ", ".join(f"('{kind}', {key}, {n})" for kind, key, n in rows)
    return (
        f"INSERT INTO consent_report_pending (kind, key, n) SELECT v.kind, v.key, v.n FROM ({c}) AS c,"
        f" LATERAL (VALUES {values}) AS v (kind, key, n) WHERE v.n <> 0"
    )


def _trigger_function(r: str) -> str:
    name = "consent_report_insert" if r == "NEW" else "consent_report_delete"
    sign = "1" if r == "NEW" else "-1"
    return f"""
CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- The part's writers one at a time (and its counting, see count_parts); in part order, since
    -- the store writes a batch in that order: no two writers wait for each other both ways.
    PERFORM pg_advisory_xact_lock(TG_RELID::int, consent_report_part({r}.consent_id));
    IF NOT EXISTS (SELECT 1 FROM consent_report_counted WHERE part = consent_report_part({r}.consent_id)) THEN
        RETURN {r};  -- counted with its part
    END IF;
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'consentmw keeps the consent log''s report totals in READ COMMITTED transactions only (this one is %)',
            current_setting('transaction_isolation')
            USING HINT = 'write to consent_log in a READ COMMITTED transaction';
    END IF;
    IF {r}.scan THEN
        INSERT INTO consent_report_pending VALUES ('scans', jsonb_build_array({DAY.format(f'{r}.created_at')})::text, {sign});
        RETURN {r};
    END IF;
    {_on_change(r)};
    RETURN {r};
END
$$;
"""


TRIGGERS = f"""
{_trigger_function('NEW')}
{_trigger_function('OLD')}
CREATE OR REPLACE FUNCTION consent_report_fold() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
{FOLD}
    RETURN NULL;
END
$$;
CREATE OR REPLACE FUNCTION consent_report_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM consent_report;
    DELETE FROM consent_report_pending;
    RETURN NULL;
END
$$;
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'consent_report_insert' AND tgrelid = 'consent_log'::regclass) THEN
        CREATE TRIGGER consent_report_insert BEFORE INSERT ON consent_log FOR EACH ROW EXECUTE FUNCTION consent_report_insert();
        CREATE TRIGGER consent_report_delete BEFORE DELETE ON consent_log FOR EACH ROW EXECUTE FUNCTION consent_report_delete();
        CREATE TRIGGER consent_report_fold AFTER INSERT OR DELETE ON consent_log FOR EACH STATEMENT EXECUTE FUNCTION consent_report_fold();
        CREATE TRIGGER consent_report_truncate AFTER TRUNCATE ON consent_log FOR EACH STATEMENT EXECUTE FUNCTION consent_report_truncate();
    END IF;
END
$$;
"""

# Whether the triggers are there (then the totals are kept from now on), and how many parts are counted.
STATE = (
    "SELECT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'consent_report_insert' AND tgrelid = to_regclass('consent_log')),"
    " to_regclass('consent_report_counted') IS NOT NULL"
)
COUNTED = "SELECT count(*) FROM consent_report_counted"
HAS_FUNCTIONS = "SELECT to_regprocedure('consent_report_withdraws(jsonb, jsonb)') IS NOT NULL"
# A CREATE INDEX CONCURRENTLY cut short leaves an invalid index behind: built again.
HAS_INDEX = "SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass('consent_log_visitor')"
SMALL = "SELECT count(*) < $1 FROM (SELECT 1 FROM consent_log LIMIT $1) AS r"

# Counting one part from its records: summary.BUILD over the part, into the pending changes.
_PART_ROWS = (
    "CREATE TEMPORARY TABLE consent_report_part_rows ON COMMIT DROP AS SELECT * FROM consent_log"
    " WHERE consent_report_part(consent_id) = ANY($1::int[])"
)
_RANKED = (
    "SELECT *, row_number() OVER (PARTITION BY consent_id{by} ORDER BY created_at DESC, id DESC) AS newest"
    " FROM consent_report_part_rows WHERE NOT scan"
)
_ADD = "INSERT INTO consent_report_pending (kind, key, n) "
BUILD = [
    f"{_ADD}SELECT 'records', {_records_key('c')}, count(*) FROM consent_report_part_rows AS c WHERE NOT scan GROUP BY 2",
    *(
        f"{_ADD}SELECT '{kind}', {key}::text, count(*) FROM ({_RANKED.format(by=by)}) AS c WHERE newest = 1 GROUP BY 2"
        for kind, by, key in (
            ("standing", "", fields("c")),
            ("day", f", {DAY.format('created_at')}", f"jsonb_build_array({DAY.format('c.created_at')}, c.choices)"),
            ("week", f", {WEEK.format('created_at')}", f"jsonb_build_array({WEEK.format('c.created_at')}, c.choices)"),
        )
    ),
    # A visitor's newest record of a day is the one whose next record is on another day, or none.
    f"{_ADD}SELECT 'last', jsonb_build_array(c.day, c.following, {fields('c')})::text, count(*) FROM"
    f" (SELECT *, {DAY.format('created_at')} AS day, lead({DAY.format('created_at')}) OVER (PARTITION BY consent_id ORDER BY created_at, id)"
    " AS following FROM consent_report_part_rows WHERE NOT scan) AS c WHERE c.following IS NULL OR c.following <> c.day GROUP BY 2",
    f"{_ADD}SELECT 'withdrawals', jsonb_build_array(day)::text, count(*) FROM (SELECT {DAY.format('created_at')} AS day, choices,"
    " lag(choices) OVER (PARTITION BY consent_id ORDER BY created_at, id) AS previous FROM consent_report_part_rows WHERE NOT scan) AS c"
    " WHERE consent_report_withdraws(previous, choices) = 1 GROUP BY day",
    f"{_ADD}SELECT 'scans', jsonb_build_array({DAY.format('created_at')})::text, count(*) FROM consent_report_part_rows WHERE scan GROUP BY 2",
]


async def install(conn: Any) -> None:
    """The totals' tables, functions and triggers, in the caller's transaction (under the schema
    lock). Counting does not start until the parts are counted (count_parts)."""
    await conn.execute(FUNCTIONS)
    await conn.execute(TABLES)
    await conn.execute(TRIGGERS)


async def create_index(conn: Any, concurrently: bool) -> None:
    """The visitor index; CONCURRENTLY (outside a transaction) lets writers go on while it is built."""
    await conn.execute(FUNCTIONS)  # the index's expression
    valid = await conn.fetchval(HAS_INDEX)
    if valid:
        return
    if valid is not None:
        await conn.execute(f"DROP INDEX {INDEX}")
    how = "CONCURRENTLY " if concurrently else ""
    await conn.execute(f"CREATE INDEX {how}IF NOT EXISTS {INDEX} ON consent_log {INDEX_COLUMNS}", timeout=LONG)


async def count_parts(conn: Any, groups: list[list[int]], progress: Callable[[int, int], None] | None = None) -> None:
    """Counts the totals of the parts not counted yet, a group of parts per transaction. Several
    may run at once (app servers starting, `consentmw migrate`): each part is counted once."""
    done = 0
    for parts in groups:
        async with conn.transaction():
            # Waits for the parts' writers in flight; their next ones wait for this, in the same order.
            await conn.execute(
                "SELECT pg_advisory_xact_lock('consent_log'::regclass::oid::int, part) FROM unnest($1::int[]) AS part", parts, timeout=LONG
            )
            counted = {row[0] for row in await conn.fetch("SELECT part FROM consent_report_counted WHERE part = ANY($1::int[])", parts)}
            todo = [part for part in parts if part not in counted]
            if todo:
                await conn.execute(_PART_ROWS, todo, timeout=LONG)
                for statement in BUILD:
                    await conn.execute(statement, timeout=LONG)
                await conn.execute("INSERT INTO consent_report_counted SELECT unnest($1::int[])", todo)
                await conn.execute(f"DO $$ BEGIN {FOLD} END $$", timeout=LONG)
        done += len(parts)
        if progress is not None:
            progress(done, PARTS)


# A prune, part by part (each in its transaction, after the part's lock): each part's writers wait
# for their own part only.
LOCK_PART = "SELECT pg_advisory_xact_lock('consent_log'::regclass::oid::int, $1)"
PRUNE_PART = "DELETE FROM consent_log WHERE consent_report_part(consent_id) = $1 AND created_at < $2"


# -- reading the totals ----------------------------------------------------------------------------

TOTALS = "consent_report_totals"
_STANDING = f"FROM {TOTALS} AS t WHERE t.kind = 'standing' AND t.n <> 0"
# `log stats --latest` of the whole log, in one statement: (kind, value, allowed, count) rows as sql.read_stats reads them.
STATS = (
    f"SELECT 'choice', choice.key, (choice.value = 'true'::jsonb)::int, sum(t.n) {_STANDING.replace('WHERE', ', jsonb_each((t.key::jsonb) -> 5) AS choice WHERE')}"
    " GROUP BY 2, 3"
    f" UNION ALL SELECT 'records', NULL, NULL, coalesce(sum(t.n), 0) {_STANDING}"
    f" UNION ALL SELECT 'visitors', NULL, NULL, coalesce(sum(t.n), 0) {_STANDING}"
    f" UNION ALL SELECT 'method', (t.key::jsonb) ->> 1, NULL, sum(t.n) {_STANDING} GROUP BY 2"
    f" UNION ALL SELECT 'scans', NULL, NULL, coalesce(sum(n), 0) FROM {TOTALS} WHERE kind = 'scans'"
)

# What a log from before the totals has (for tests and benches that make one).
UNINSTALL = """
DROP TRIGGER IF EXISTS consent_report_insert ON consent_log;
DROP TRIGGER IF EXISTS consent_report_delete ON consent_log;
DROP TRIGGER IF EXISTS consent_report_fold ON consent_log;
DROP TRIGGER IF EXISTS consent_report_truncate ON consent_log;
DROP VIEW IF EXISTS consent_report_totals;
DROP TABLE IF EXISTS consent_report, consent_report_pending, consent_report_counted;
DROP INDEX IF EXISTS consent_log_visitor;
"""
