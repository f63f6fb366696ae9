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


def _add(kind: str, key: str, n: str, where: str = "") -> str:
    return (
        f"INSERT INTO consent_report (kind, key, n) SELECT '{kind}', {key}, {n} WHERE {where or 'true'}"
        " ON CONFLICT (kind, key) DO UPDATE SET n = n + excluded.n;"
    )


def _others(r: str, scope: str) -> str:
    # The other records of r's visitor in the scope: o is any of them. r itself is excluded by id,
    # which also covers a delete trigger, where r is gone already.
    return f"FROM consent_log AS o WHERE o.consent_id = {r}.consent_id AND NOT o.scan AND o.id <> {r}.id{scope}"


def _newest(r: str, scope: str, what: str) -> str:
    return f"(SELECT {what} {_others(r, scope)} ORDER BY o.created_at DESC, o.id DESC LIMIT 1)"


def _withdraws(before: str, after: str) -> str:
    """1 if the choices `after` refuse a category the choices `before` allowed, else 0 (0 if either is NULL)."""
    return (
        f"(SELECT count(*) FROM (SELECT 1 FROM json_each({before}) AS was, json_each({after}) AS now"
        " WHERE was.key = now.key AND was.type = 'true' AND now.type <> 'true' LIMIT 1))"
    )


def _neighbours(r: str) -> tuple[str, str]:
    """The choices of the visitor's record just before r and just after it (NULL when none)."""
    before = f"(SELECT o.choices {_others(r, '')} AND (o.created_at, o.id) < ({r}.created_at, {r}.id) ORDER BY o.created_at DESC, o.id DESC LIMIT 1)"
    after = f"(SELECT o.choices {_others(r, '')} AND (o.created_at, o.id) > ({r}.created_at, {r}.id) ORDER BY o.created_at, o.id LIMIT 1)"
    return before, after


def _on_insert() -> str:
    r = "new"
    body = [_add("records", RECORDS_KEY.format(r=r), "1")]
    for kind, (key, scope) in SCOPES.items():
        scope = scope.format(r=r)
        newest = f"NOT EXISTS (SELECT 1 {_others(r, scope)} AND (o.created_at, o.id) > (new.created_at, new.id))"
        # The new record is the newest of its scope: it takes the place of the one that was.
        body.append(_add(kind, key.format(r=r), "1", newest))
        body.append(_add(kind, _newest(r, scope, key.format(r="o")), "-1", f"{newest} AND {_newest(r, scope, 'o.id')} IS NOT NULL"))
    before, after = _neighbours(r)
    body.append(
        _add("withdrawals", NO_KEY, f"{_withdraws(before, 'new.choices')} + {_withdraws('new.choices', after)} - {_withdraws(before, after)}")
    )
    return "\n    ".join(body)


def _on_delete() -> str:
    r = "old"
    body = [_add("records", RECORDS_KEY.format(r=r), "-1")]
    for kind, (key, scope) in SCOPES.items():
        scope = scope.format(r=r)
        newest = f"NOT EXISTS (SELECT 1 {_others(r, scope)} AND (o.created_at, o.id) > (old.created_at, old.id))"
        # The record gone was the newest of its scope: the one before it, if any, takes its place.
        body.append(_add(kind, key.format(r=r), "-1", newest))
        body.append(_add(kind, _newest(r, scope, key.format(r="o")), "1", f"{newest} AND {_newest(r, scope, 'o.id')} IS NOT NULL"))
    before, after = _neighbours(r)
    body.append(
        _add("withdrawals", NO_KEY, f"{_withdraws(before, after)} - {_withdraws(before, 'old.choices')} - {_withdraws('old.choices', after)}")
    )
    return "\n    ".join(body)


STATEMENTS = [
    "CREATE TABLE IF NOT EXISTS consent_report (kind TEXT NOT NULL, key TEXT NOT NULL, n INTEGER NOT NULL,"
    " PRIMARY KEY (kind, key)) WITHOUT ROWID",
    f"CREATE TRIGGER IF NOT EXISTS consent_report_insert AFTER INSERT ON consent_log WHEN NOT new.scan BEGIN\n    {_on_insert()}\nEND",
    f"CREATE TRIGGER IF NOT EXISTS consent_report_delete AFTER DELETE ON consent_log WHEN NOT old.scan BEGIN\n    {_on_delete()}\nEND",
    f"CREATE TRIGGER IF NOT EXISTS consent_report_insert_scan AFTER INSERT ON consent_log WHEN new.scan BEGIN {_add('scans', NO_KEY, '1')} END",
    f"CREATE TRIGGER IF NOT EXISTS consent_report_delete_scan AFTER DELETE ON consent_log WHEN old.scan BEGIN {_add('scans', NO_KEY, '-1')} END",
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
