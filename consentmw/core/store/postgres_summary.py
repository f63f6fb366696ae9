"""The report's running totals in a PostgreSQL log: summary.py's kinds and keys, kept in a way that
cannot cost a visitor's consent.

Writers only capture. Two statement-level triggers append, for every row an INSERT, COPY or DELETE
really wrote, one row to consent_report_changes: "record `id` of visitor `consent_id` was absent
before this change" (an insert) or "was this row" (a delete, with its columns). No lock, no read of
the log, no unique key but the serial: a writer in any isolation level, of any version of consentmw
or by hand, waits for nobody and cannot deadlock. The functions are SECURITY DEFINER (owned by
whoever installed them, with a fixed search_path and every table named with the log's schema), so
a site role that may only append to the log writes its changes too.

The reader folds. `log report` and `log stats --latest` first move the changes into consent_report,
under a session advisory lock only folders take, in a REPEATABLE READ transaction begun once the
lock is held (so that it sees the previous fold's commit). For the visitors the changes touch, each
total is counted twice over the same relation of (sign, record): the visitor's records now (+1)
and as they were at the previous fold (-1): the records now that have no pending change, plus the
removed rows of those whose earliest pending change is a delete (a record deleted and put back
with its id has both, and was that removed row). The
totals are sums over visitors, so adding the difference keeps them equal to a count of the whole
log as of the fold's snapshot. The changes read are deleted in the same snapshot; those committed
after it (even with a smaller seq) are left for the next fold, which sees them with their records.

The first count of a log (all its records, +1) runs the same queries in a REPEATABLE READ
transaction under the fold lock, after the capture is installed, and deletes the changes its
snapshot sees. Until it has run (consent_report_state is empty), reports count from the records.
TRUNCATE marks the totals as not counted (and empties them); the next report counts the emptied log.

Days are UTC days as text (AT TIME ZONE 'UTC'), a key is the text of a jsonb array compared byte by
byte (COLLATE "C"), so that a range of keys is a range of days, as in SQLite. A record dated
'infinity' (asyncpg's datetime.max) counts on 9999-12-31, '-infinity' on 0001-01-01.
"""

from __future__ import annotations

from typing import Any

# Logs with fewer records than this are counted when an app server opens them; a larger one is
# counted by `consentmw migrate` (about 15 s per million records), or its reports count from the records.
COUNTED_AT_START = 20_000
LONG = 3600.0  # a count or a fold: minutes on a big log are fine for a command an operator runs

FINITE = "least(greatest({}, '0001-01-01 00:00:00+00'::timestamptz), '9999-12-31 23:59:59.999999+00'::timestamptz)"
DAY = f"to_char({FINITE} AT TIME ZONE 'UTC', 'YYYY-MM-DD')"
WEEK = f"to_char(date_trunc('week', {FINITE} AT TIME ZONE 'UTC'), 'YYYY-MM-DD')"
# The record columns the totals read; the changes keep them for a removed row.
COLUMNS = ("consent_id", "id", "created_at", "policy_id", "policy_version", "choices", "method", "language", "region", "scan")
_COLUMNS = ", ".join(COLUMNS)
TRIGGERS = ("consent_report_capture_insert", "consent_report_capture_delete", "consent_report_capture_truncate")
# The fold lock of a log: one bigint from its table's oid, so that each schema's log has its own.
FOLD_KEY = "hashtextextended('consentmw report totals ' || ({})::oid::text, 0)"


def fields(r: str) -> str:
    return f"jsonb_build_array({r}.policy_id, {r}.method, {r}.policy_version, {r}.language, {r}.region, {r}.choices)"


def install_sql(s: str) -> str:
    """The totals' tables, functions and triggers on the log of schema `s` (quoted): new, uncounted."""
    removed = ", ".join(COLUMNS[2:])
    return f"""
{uninstall_sql(s)}
CREATE TABLE {s}.consent_report (kind text NOT NULL, key text COLLATE "C" NOT NULL, n bigint NOT NULL, PRIMARY KEY (kind, key));
CREATE TABLE {s}.consent_report_changes (
    seq bigserial PRIMARY KEY, consent_id text NOT NULL, id bigint NOT NULL, removed boolean NOT NULL,
    created_at timestamptz, policy_id text, policy_version text, choices jsonb, method text, language text, region text, scan boolean
);
-- One row once the totals are counted: until then reports count from the records.
CREATE TABLE {s}.consent_report_state (counted_at timestamptz NOT NULL);
-- 1 if the choices `after` refuse a category the choices `before` allowed, else 0 (0 if either is NULL).
CREATE OR REPLACE FUNCTION {s}.consent_report_withdraws(before jsonb, after jsonb) RETURNS int
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
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
CREATE OR REPLACE FUNCTION {s}.consent_report_capture_insert() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    -- The log's schema as it is now (renamed, or the log moved to another, whose changes table the
    -- next server's start makes): a write is never refused for the totals' sake.
    IF to_regclass(format('%I.consent_report_changes', TG_TABLE_SCHEMA)) IS NOT NULL THEN
        EXECUTE format('INSERT INTO %I.consent_report_changes (consent_id, id, removed)'
            ' SELECT consent_id, id, false FROM consent_report_added', TG_TABLE_SCHEMA);
    END IF;
    RETURN NULL;
END
$$;
CREATE OR REPLACE FUNCTION {s}.consent_report_capture_delete() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF to_regclass(format('%I.consent_report_changes', TG_TABLE_SCHEMA)) IS NOT NULL THEN
        EXECUTE format('INSERT INTO %I.consent_report_changes (consent_id, id, removed, {removed})'
            ' SELECT consent_id, id, true, {removed} FROM consent_report_removed', TG_TABLE_SCHEMA);
    END IF;
    RETURN NULL;
END
$$;
-- An emptied log is counted again (at once: it is small), under the fold lock so that no fold is
-- half way. Marked, not merely emptied: a TRUNCATE in a REPEATABLE READ transaction would not see
-- the changes committed after its snapshot.
CREATE OR REPLACE FUNCTION {s}.consent_report_capture_truncate() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM pg_advisory_xact_lock({FOLD_KEY.format('TG_RELID')});
    IF to_regclass(format('%I.consent_report_state', TG_TABLE_SCHEMA)) IS NOT NULL THEN
        EXECUTE format('DELETE FROM %I.consent_report_state', TG_TABLE_SCHEMA);
        EXECUTE format('DELETE FROM %I.consent_report', TG_TABLE_SCHEMA);
        EXECUTE format('DELETE FROM %I.consent_report_changes', TG_TABLE_SCHEMA);
    END IF;
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION {s}.consent_report_capture_insert(), {s}.consent_report_capture_delete(),
    {s}.consent_report_capture_truncate() FROM PUBLIC;
CREATE TRIGGER consent_report_capture_insert AFTER INSERT ON {s}.consent_log REFERENCING NEW TABLE AS consent_report_added
    FOR EACH STATEMENT EXECUTE FUNCTION {s}.consent_report_capture_insert();
CREATE TRIGGER consent_report_capture_delete AFTER DELETE ON {s}.consent_log REFERENCING OLD TABLE AS consent_report_removed
    FOR EACH STATEMENT EXECUTE FUNCTION {s}.consent_report_capture_delete();
CREATE TRIGGER consent_report_capture_truncate AFTER TRUNCATE ON {s}.consent_log
    FOR EACH STATEMENT EXECUTE FUNCTION {s}.consent_report_capture_truncate();
"""


def uninstall_sql(s: str = "") -> str:
    """What a log from before the totals has (for tests and benches that make one)."""
    p = f"{s}." if s else ""
    drops = "\n".join(f"DROP TRIGGER IF EXISTS {name} ON {p}consent_log;" for name in TRIGGERS)
    return f"""{drops}
DROP TABLE IF EXISTS {p}consent_report, {p}consent_report_changes, {p}consent_report_state;
DROP FUNCTION IF EXISTS {p}consent_report_capture_insert(), {p}consent_report_capture_delete(), {p}consent_report_capture_truncate();
"""


UNINSTALL = uninstall_sql()

# The log's schema, quoted, as the session's search_path finds it.
SCHEMA_OF = "SELECT quote_ident(n.nspname) FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace WHERE c.oid = to_regclass('consent_log')"
# Whether the capture is there and on (then every write since is in the changes), with its tables
# in the log's schema (a log moved to another schema takes its triggers along, not its totals).
INSTALLED = (
    "SELECT count(*) = 2 AND bool_and(to_regclass(format('%I.consent_report_changes', n.nspname)) IS NOT NULL"
    " AND to_regclass(format('%I.consent_report_state', n.nspname)) IS NOT NULL AND to_regclass(format('%I.consent_report', n.nspname)) IS NOT NULL)"
    " FROM pg_trigger AS t JOIN pg_class AS c ON c.oid = t.tgrelid JOIN pg_namespace AS n ON n.oid = c.relnamespace"
    f" WHERE t.tgrelid = to_regclass('consent_log') AND t.tgenabled <> 'D' AND t.tgname IN ('{TRIGGERS[0]}', '{TRIGGERS[1]}')"
)
STATE = "SELECT EXISTS (SELECT 1 FROM consent_report_state)"
SMALL = "SELECT count(*) < $1 FROM (SELECT 1 FROM consent_log LIMIT $1) AS r"
_KEY = FOLD_KEY.format("'consent_log'::regclass")
LOCK = f"SELECT pg_advisory_lock({_KEY})"
UNLOCK = f"SELECT pg_advisory_unlock({_KEY})"


def sums(rel: str, s: str) -> tuple[str, str]:
    """CTEs and a query of (kind, key, n) rows: every total of the records of `rel` (sign, COLUMNS),
    each counted sign times. One window pass in each visitor's order (within its sign) marks every
    record: the visitor's newest, the newest of its day and week, its next record's day and the
    choices it replaced; one GROUP BY folds the marked records into far fewer rows (a log has a
    handful of distinct answers), from which every kind is summed."""
    day, week = DAY.format("created_at"), WEEK.format("created_at")
    marked = (
        f"SELECT sign, policy_id, method, policy_version, language, region, choices, {day} AS day, {week} AS week,"
        f" lead({day}) OVER visitor AS following, lead({week}) OVER visitor AS next_week, lead(id) OVER visitor IS NULL AS newest,"
        f" lag(choices) OVER visitor AS previous FROM {rel} AS r WHERE NOT scan"
        " WINDOW visitor AS (PARTITION BY sign, consent_id ORDER BY created_at, id)"
    )
    ctes = (
        "g AS MATERIALIZED (SELECT policy_id, method, policy_version, language, region, choices, day, week, following, newest,"
        " following IS NULL OR following <> day AS of_day, next_week IS NULL OR next_week <> week AS of_week,"
        f" CASE WHEN previous <> choices THEN previous END AS replaced, sum(sign) AS n FROM ({marked}) AS m"
        " GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13), "
    )
    parts = [
        "SELECT 'records'::text AS kind, jsonb_build_array(day, method, policy_version, language, region)::text AS key, sum(n) AS n"
        " FROM g GROUP BY 2",
        f"SELECT 'standing', {fields('g')}::text, sum(n) FROM g WHERE newest GROUP BY 2",
        "SELECT 'day', jsonb_build_array(day, choices)::text, sum(n) FROM g WHERE of_day GROUP BY 2",
        "SELECT 'week', jsonb_build_array(week, choices)::text, sum(n) FROM g WHERE of_week GROUP BY 2",
        # A visitor's newest record of a day is the one whose next record is on another day, or none.
        f"SELECT 'last', jsonb_build_array(day, following, {fields('g')})::text, sum(n) FROM g WHERE of_day GROUP BY 2",
        "SELECT 'withdrawals', jsonb_build_array(day)::text, sum(n) FROM g"
        f" WHERE replaced IS NOT NULL AND {s}.consent_report_withdraws(replaced, choices) = 1 GROUP BY 2",
        f"SELECT 'scans', jsonb_build_array({day})::text, sum(sign) FROM {rel} AS r WHERE scan GROUP BY 2",
    ]
    return ctes, " UNION ALL ".join(parts)


def _add(ctes: str, rel: str, s: str) -> str:
    more, rows = sums(rel, s)
    return (
        f"WITH {ctes}{more}sums AS (SELECT kind, key, sum(n) AS n FROM ({rows}) AS t GROUP BY kind, key HAVING sum(n) <> 0)"
        f" INSERT INTO {s}.consent_report AS t (kind, key, n) SELECT kind, key, n FROM sums"
        " ON CONFLICT (kind, key) DO UPDATE SET n = t.n + excluded.n"
    )


def count_sql(s: str) -> list[str]:
    """The first count, in a REPEATABLE READ transaction under the fold lock: every record its
    snapshot sees, and none of the changes it sees (they are in the records)."""
    return [
        f"DELETE FROM {s}.consent_report",
        _add("", f"(SELECT 1 AS sign, {_COLUMNS} FROM {s}.consent_log)", s),
        f"DELETE FROM {s}.consent_report_changes",
        f"DELETE FROM {s}.consent_report_state",
        f"INSERT INTO {s}.consent_report_state VALUES (now())",
    ]


def fold_sql(s: str) -> list[str]:
    """A fold, in a REPEATABLE READ transaction begun once the fold lock is held."""
    r = ", ".join(f"r.{c}" for c in COLUMNS)
    ctes = (
        f"gone AS MATERIALIZED (DELETE FROM {s}.consent_report_changes RETURNING *), "
        # Each record's earliest pending change says what it was at the previous fold.
        "earliest AS MATERIALIZED (SELECT DISTINCT ON (id) * FROM gone ORDER BY id, seq), "
        f"now AS MATERIALIZED (SELECT {_COLUMNS} FROM {s}.consent_log WHERE consent_id IN (SELECT DISTINCT consent_id FROM gone)), "
        f"rel AS MATERIALIZED (SELECT 1 AS sign, {_COLUMNS} FROM now"
        f" UNION ALL SELECT -1, {r} FROM now AS r WHERE NOT EXISTS (SELECT 1 FROM earliest AS e WHERE e.id = r.id)"
        f" UNION ALL SELECT -1, {r} FROM earliest AS r WHERE r.removed), "
    )
    return [_add(ctes, "rel", s), f"DELETE FROM {s}.consent_report WHERE n = 0"]


async def schema_of(conn: Any) -> str:
    return str(await conn.fetchval(SCHEMA_OF))


# -- reading the totals ----------------------------------------------------------------------------

TOTALS = "consent_report"
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
