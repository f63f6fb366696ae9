"""The report's running totals in a SQLite log, kept by triggers in the transaction of every write.

`consentmw log report` over the whole log reads these instead of the log: a few thousand rows,
whatever the size of the log. The log itself stays as it was (append-only, the proof); the totals
are figures about it, kept exact by the database for every writer (the server, `log import`, an
older consentmw, sqlite3 by hand) and for `log prune`, in any order of times.

consent_report holds (kind, key, n): key is a JSON array, so a NULL policy id stays apart from ''.

- 'records' [day, method, policy_version, language, region]: records of that day with those values;
- 'standing' [policy_id, method, policy_version, language, region, choices]: visitors whose newest
  record has those values;
- 'day' [day, choices] and 'week' [monday, choices]: visitors whose newest record of that day or
  week has those choices;
- 'withdrawals' []: records refusing a category the same visitor's previous record allowed;
- 'scans' []: records `consentmw scan` wrote (left out of everything above).

"Newest" is by (created_at, id), as in the report's definitions. Each write touches a handful of
rows found through the (consent_id, created_at) index: the cost of a record does not grow with the
log, nor with the number of records of one visitor.

PostgreSQL logs have no such totals: concurrent writers would have to lock the same rows, and
PostgreSQL computes the report from the log in good time anyway.
"""

from __future__ import annotations

import sqlite3

DAY = "substr({r}.created_at, 1, 10)"
WEEK = "date(substr({r}.created_at, 1, 10), 'weekday 0', '-6 days')"
# Each scope: the key of a record's row, and the records of the same visitor that compete with it
# for "newest" (besides the consent id, and scans left out).
SCOPES = {
    "standing": ("json_array({r}.policy_id, {r}.method, {r}.policy_version, {r}.language, {r}.region, {r}.choices)", ""),
    "day": (
        f"json_array({DAY}, {{r}}.choices)",
        f" AND o.created_at >= {DAY} AND o.created_at < date({DAY}, '+1 day')",
    ),
    "week": (
        f"json_array({WEEK}, {{r}}.choices)",
        f" AND o.created_at >= {WEEK} AND o.created_at < date({WEEK}, '+7 days')",
    ),
}
# A day's (YYYY-MM-DD text) day or week, as the report draws them.
BUCKET_OF_DAY = {"day": "{}", "week": "date({}, 'weekday 0', '-6 days')"}
NO_KEY = "'[]'"
RECORDS_KEY = f"json_array({DAY}, {{r}}.method, {{r}}.policy_version, {{r}}.language, {{r}}.region)"


def _add(rows: str) -> str:
    """Adds the n of `rows` (kind, key, n) to the totals. One statement for all: each statement of a
    trigger costs about as much as the insert that fires it."""
    return (
        f"INSERT INTO consent_report (kind, key, n) SELECT kind, key, n FROM ({rows}) WHERE n <> 0"
        " ON CONFLICT (kind, key) DO UPDATE SET n = n + excluded.n;"
    )


def _others(r: str, scope: str = "") -> str:
    # The other records of r's visitor (in the scope): o is any of them. r itself is excluded by
    # id, which also covers a delete trigger, where r is gone already.
    return f"FROM consent_log AS o WHERE o.consent_id = {r}.consent_id AND NOT o.scan AND o.id <> {r}.id{scope}"


def _newest(r: str, kind: str) -> str:
    """For record r coming (sign 1) or going (sign -1): the change to the kind's totals. When r is,
    or was, the newest of its scope, its key counts (or no longer counts) and the newest of the
    others stops counting (or counts again)."""
    key, scope = SCOPES[kind]
    scope = scope.format(r=r)
    newest_other = f"SELECT o.created_at, o.id, {key.format(r='o')} AS key {_others(r, scope)} ORDER BY o.created_at DESC, o.id DESC LIMIT 1"
    sign, back = ("1", "-1") if r == "new" else ("-1", "1")
    return (
        f"SELECT '{kind}' AS kind, {key.format(r=r)} AS key, {sign} AS n WHERE NOT EXISTS (SELECT 1 FROM ({newest_other}) AS l"
        f" WHERE (l.created_at, l.id) > ({r}.created_at, {r}.id))"
        f" UNION ALL SELECT '{kind}', l.key, {back} FROM ({newest_other}) AS l WHERE (l.created_at, l.id) < ({r}.created_at, {r}.id)"
    )


def _withdraws(before: str, after: str) -> str:
    """1 if the choices `after` refuse a category the choices `before` allowed, else 0 (0 if either is NULL)."""
    return (
        f"(SELECT count(*) FROM (SELECT 1 FROM json_each({before}) AS was, json_each({after}) AS now"
        " WHERE was.key = now.key AND was.type = 'true' AND now.type <> 'true' LIMIT 1))"
    )


def _withdrawals(r: str) -> str:
    """For record r coming or going: it stands between the visitor's records just before and just
    after it, so it changes the withdrawals of the one after and adds (or takes) its own."""
    before = f"(SELECT o.choices {_others(r)} AND (o.created_at, o.id) < ({r}.created_at, {r}.id) ORDER BY o.created_at DESC, o.id DESC LIMIT 1)"
    after = f"(SELECT o.choices {_others(r)} AND (o.created_at, o.id) > ({r}.created_at, {r}.id) ORDER BY o.created_at, o.id LIMIT 1)"
    sign = "" if r == "new" else "-"
    change = f"{_withdraws('b', f'{r}.choices')} + {_withdraws(f'{r}.choices', 'a')} - {_withdraws('b', 'a')}"
    return f"SELECT 'withdrawals', {NO_KEY}, {sign}({change}) FROM (SELECT {before} AS b, {after} AS a LIMIT 1)"


def _on_change(r: str) -> str:
    sign = "1" if r == "new" else "-1"
    parts = [f"SELECT 'records' AS kind, {RECORDS_KEY.format(r=r)} AS key, {sign} AS n"]
    parts += [_newest(r, kind) for kind in SCOPES]
    parts.append(_withdrawals(r))
    return _add("\n    UNION ALL ".join(parts))


SCAN = "SELECT 'scans' AS kind, '[]' AS key, {} AS n"
STATEMENTS = [
    "CREATE TABLE IF NOT EXISTS consent_report (kind TEXT NOT NULL, key TEXT NOT NULL, n INTEGER NOT NULL,"
    " PRIMARY KEY (kind, key)) WITHOUT ROWID",
    f"CREATE TRIGGER IF NOT EXISTS consent_report_insert AFTER INSERT ON consent_log WHEN NOT new.scan BEGIN\n    {_on_change('new')}\nEND",
    f"CREATE TRIGGER IF NOT EXISTS consent_report_delete AFTER DELETE ON consent_log WHEN NOT old.scan BEGIN\n    {_on_change('old')}\nEND",
    f"CREATE TRIGGER IF NOT EXISTS consent_report_insert_scan AFTER INSERT ON consent_log WHEN new.scan BEGIN {_add(SCAN.format(1))} END",
    f"CREATE TRIGGER IF NOT EXISTS consent_report_delete_scan AFTER DELETE ON consent_log WHEN old.scan BEGIN {_add(SCAN.format(-1))} END",
]

# The totals of a log made before them, counted from the log in one go (in the transaction that
# creates the triggers, so no record is counted twice or missed).
_RANKED = (
    "SELECT *, row_number() OVER (PARTITION BY consent_id{by} ORDER BY created_at DESC, id DESC) AS newest"
    " FROM consent_log WHERE NOT scan"
)
BUILD = [
    f"INSERT INTO consent_report SELECT 'records', {RECORDS_KEY.format(r='c')}, count(*) FROM consent_log AS c WHERE NOT scan GROUP BY 2",
    *(
        f"INSERT INTO consent_report SELECT '{kind}', {key.format(r='c')}, count(*)"
        f" FROM ({_RANKED.format(by=by)}) AS c WHERE newest = 1 GROUP BY 2"
        for kind, by in (("standing", ""), ("day", f", {DAY.format(r='consent_log')}"), ("week", f", {WEEK.format(r='consent_log')}"))
        for key in [SCOPES[kind][0]]
    ),
    "INSERT INTO consent_report SELECT 'withdrawals', '[]', coalesce(sum(n), 0) FROM"
    " (SELECT previous, choices, count(*) AS n FROM (SELECT choices, lag(choices) OVER (PARTITION BY consent_id ORDER BY created_at, id)"
    " AS previous FROM consent_log WHERE NOT scan) WHERE previous <> choices GROUP BY previous, choices)"
    f" WHERE {_withdraws('previous', 'choices')} = 1",
    "INSERT INTO consent_report SELECT 'scans', '[]', count(*) FROM consent_log WHERE scan",
]


# `log stats --latest` of the whole log: visitors, (category, allowed, visitors) and (method, visitors).
_STANDING = "FROM consent_report AS t WHERE t.kind = 'standing' AND t.n <> 0"
STATS = (
    f"SELECT coalesce(sum(t.n), 0) {_STANDING}",
    f"SELECT choice.key, choice.value, sum(t.n) FROM consent_report AS t, json_each(json_extract(t.key, '$[5]')) AS choice"
    " WHERE t.kind = 'standing' AND t.n <> 0 GROUP BY 1, 2",
    f"SELECT json_extract(t.key, '$[1]'), sum(t.n) {_STANDING} GROUP BY 1",
    "SELECT coalesce(sum(n), 0) FROM consent_report WHERE kind = 'scans'",
)
PRESENT = "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'consent_report'"


def install(conn: sqlite3.Connection) -> None:
    """The totals and their triggers, in the caller's write transaction; counted from the log when
    it was made before them."""
    absent = conn.execute(PRESENT).fetchone()[0] == 0
    for statement in STATEMENTS:
        conn.execute(statement)
    if absent:
        for statement in BUILD:
            conn.execute(statement)
