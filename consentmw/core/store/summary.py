"""The report's running totals in a SQLite log, kept by triggers in the transaction of every write.

`consentmw log report` reads these instead of the log: over the whole log a few thousand rows,
and over a period the rows of its whole days, whatever the size of the log. The log itself stays
as it was (append-only, the proof); the totals are figures about it, kept exact by the database
for every writer (the server, `log import`, an older consentmw, sqlite3 by hand) and for
`log prune`, in any order of times.

consent_report holds (kind, key, n): key is a JSON array, so a NULL policy id stays apart from '',
and its text starts with the day where it has one, so that a range of keys is a range of days.

- 'records' [day, method, policy_version, language, region]: records of that day with those values;
- 'standing' [policy_id, method, policy_version, language, region, choices]: visitors whose newest
  record has those values;
- 'last' [day, next day, [policy_id, method, policy_version, language, region, choices]]: visitors
  whose newest record of that day has those values, by the next day the visitor has a record (NULL
  if none). A period's visitors are read from these: the newest record of a visitor in a run of
  whole days is their newest of a day in it whose next day is after the run;
- 'week' [monday, choices]: visitors whose newest record of that week has those choices;
- 'withdrawals' [day]: records of that day refusing a category the same visitor's previous record
  allowed;
- 'scans' [day]: records `consentmw scan` wrote that day (left out of everything above).

"Newest" is by (created_at, id), as in the report's definitions. Each write touches a handful of
rows found through the (consent_id, created_at) index: the cost of a record does not grow with the
log, nor with the number of records of one visitor. No date arithmetic: SQLite's date() gives NULL
past 9999-12-31, and a record may be dated then; a day's records are those from 'YYYY-MM-DD' to
'YYYY-MM-DDZ' (every time of the day sorts between the two).

PostgreSQL logs have no such totals: concurrent writers would have to lock the same rows, and
PostgreSQL computes the report from the log.
"""

from __future__ import annotations

import sqlite3

DAY = "substr({r}.created_at, 1, 10)"
WEEK = "date(substr({r}.created_at, 1, 10), 'weekday 0', '-6 days')"
# The end of a day as text: after every time of that day, before the next day.
END_OF_DAY = "{} || 'Z'"
FIELDS = "json_array({r}.policy_id, {r}.method, {r}.policy_version, {r}.language, {r}.region, {r}.choices)"
# Each scope: the key of a record's row, and the records of the same visitor that compete with it
# for "newest" (besides the consent id, and scans left out).
SCOPES = {
    "standing": ("json_array({r}.policy_id, {r}.method, {r}.policy_version, {r}.language, {r}.region, {r}.choices)", ""),
    "week": (
        f"json_array({WEEK}, {{r}}.choices)",
        # SQLite's date() has no day after 9999-12-31: the last week ends with the last day it has.
        f" AND o.created_at >= {WEEK} AND o.created_at < coalesce(date({WEEK}, '+7 days'), '9999-12-31Z')",
    ),
}
# A day's (YYYY-MM-DD text) day or week, as the report draws them.
BUCKET_OF_DAY = {"day": "{}", "week": "date({}, 'weekday 0', '-6 days')"}
NO_KEY = "'[]'"
RECORDS_KEY = f"json_array({DAY}, {{r}}.method, {{r}}.policy_version, {{r}}.language, {{r}}.region)"
DAY_KEY = f"json_array({DAY})"


def last_key(day: str, following: str, fields: str) -> str:
    """A 'last' key; `fields` is a JSON array's text (FIELDS)."""
    return f"json_array({day}, {following}, json({fields}))"


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


def _last(r: str) -> str:
    """For record r coming (sign 1) or going (sign -1), the change to the 'last' rows. When r is, or
    was, the newest of its day: its row replaces (or gives way to) that of the day's newest other;
    when it is, or was, the visitor's only record of the day, the row of their day before points
    to r's day (or back to the next day after it)."""
    day = DAY.format(r=r)
    sign, back = ("1", "-1") if r == "new" else ("-1", "1")
    same_day = (
        f"SELECT o.created_at AS at, o.id AS id, {FIELDS.format(r='o')} AS fields {_others(r)}"
        f" AND o.created_at >= {day} AND o.created_at < {END_OF_DAY.format(day)} ORDER BY o.created_at DESC, o.id DESC LIMIT 1"
    )
    following = f"SELECT {DAY.format(r='o')} AS day {_others(r)} AND o.created_at > {END_OF_DAY.format(day)} ORDER BY o.created_at LIMIT 1"
    before = f"SELECT {DAY.format(r='o')} AS day, {FIELDS.format(r='o')} AS fields {_others(r)} AND o.created_at < {day} ORDER BY o.created_at DESC, o.id DESC LIMIT 1"
    newest = f"(s.at IS NULL OR (s.at, s.id) < ({r}.created_at, {r}.id))"
    alone = "(s.at IS NULL AND b.day IS NOT NULL)"
    return (
        f"SELECT 'last' AS kind, CASE k.value"
        f" WHEN 1 THEN {last_key(day, 'f.day', FIELDS.format(r=r))} WHEN 2 THEN {last_key(day, 'f.day', 's.fields')}"
        f" WHEN 3 THEN {last_key('b.day', 'f.day', 'b.fields')} ELSE {last_key('b.day', day, 'b.fields')} END AS key,"
        f" CASE k.value WHEN 1 THEN {sign} * {newest} WHEN 2 THEN {back} * (s.at IS NOT NULL AND {newest})"
        f" WHEN 3 THEN {back} * {alone} ELSE {sign} * {alone} END AS n"
        f" FROM (SELECT 1) LEFT JOIN ({same_day}) AS s ON 1 LEFT JOIN ({following}) AS f ON 1 LEFT JOIN ({before}) AS b ON 1,"
        " json_each('[1, 2, 3, 4]') AS k"
    )


def _withdraws(before: str, after: str) -> str:
    """1 if the choices `after` refuse a category the choices `before` allowed, else 0 (0 if either is NULL)."""
    return (
        f"(SELECT count(*) FROM (SELECT 1 FROM json_each({before}) AS was, json_each({after}) AS now"
        " WHERE was.key = now.key AND was.type = 'true' AND now.type <> 'true' LIMIT 1))"
    )


def _withdrawals(r: str) -> str:
    """For record r coming or going: it stands between the visitor's records just before and just
    after it, so it changes the withdrawals of the one after (on that one's day) and adds (or
    takes) its own."""
    before = f"(SELECT o.choices {_others(r)} AND (o.created_at, o.id) < ({r}.created_at, {r}.id) ORDER BY o.created_at DESC, o.id DESC LIMIT 1)"
    after = f"SELECT o.created_at, o.choices {_others(r)} AND (o.created_at, o.id) > ({r}.created_at, {r}.id) ORDER BY o.created_at, o.id LIMIT 1"
    sign = "" if r == "new" else "-"
    own = f"SELECT 'withdrawals' AS kind, {DAY_KEY.format(r=r)} AS key, {sign}{_withdraws('b', f'{r}.choices')} AS n FROM (SELECT {before} AS b)"
    change = f"{_withdraws(f'{r}.choices', 'a.choices')} - {_withdraws('b', 'a.choices')}"
    return f"{own} UNION ALL SELECT 'withdrawals', {DAY_KEY.format(r='a')}, {sign}({change}) FROM (SELECT {before} AS b), ({after}) AS a"


def _on_change(r: str) -> str:
    sign = "1" if r == "new" else "-1"
    parts = [f"SELECT 'records' AS kind, {RECORDS_KEY.format(r=r)} AS key, {sign} AS n"]
    parts += [_newest(r, kind) for kind in SCOPES]
    parts.append(_last(r))
    parts.append(_withdrawals(r))
    return _add("\n    UNION ALL ".join(parts))


SCAN = "SELECT 'scans' AS kind, json_array(substr({r}.created_at, 1, 10)) AS key, {n} AS n"
# Named for what they count: a log whose triggers have other names counts its totals again.
TRIGGERS = ("consent_report_insert_2", "consent_report_delete_2", "consent_report_insert_scan_2", "consent_report_delete_scan_2")
EARLIER_TRIGGERS = ("consent_report_insert", "consent_report_delete", "consent_report_insert_scan", "consent_report_delete_scan")
TABLE = (
    "CREATE TABLE IF NOT EXISTS consent_report (kind TEXT NOT NULL, key TEXT NOT NULL, n INTEGER NOT NULL,"
    " PRIMARY KEY (kind, key)) WITHOUT ROWID"
)
STATEMENTS = [
    f"CREATE TRIGGER IF NOT EXISTS {TRIGGERS[0]} AFTER INSERT ON consent_log WHEN NOT new.scan BEGIN\n    {_on_change('new')}\nEND",
    f"CREATE TRIGGER IF NOT EXISTS {TRIGGERS[1]} AFTER DELETE ON consent_log WHEN NOT old.scan BEGIN\n    {_on_change('old')}\nEND",
    f"CREATE TRIGGER IF NOT EXISTS {TRIGGERS[2]} AFTER INSERT ON consent_log WHEN new.scan BEGIN {_add(SCAN.format(r='new', n=1))} END",
    f"CREATE TRIGGER IF NOT EXISTS {TRIGGERS[3]} AFTER DELETE ON consent_log WHEN old.scan BEGIN {_add(SCAN.format(r='old', n=-1))} END",
]

# The totals of a log made before them, counted from the log in one go (in the transaction that
# creates the triggers, so no record is counted twice or missed).
_RANKED = (
    "SELECT *, row_number() OVER (PARTITION BY consent_id{by} ORDER BY created_at DESC, id DESC) AS newest"
    " FROM consent_log WHERE NOT scan"
)
_NEXT_DAY = (
    f"SELECT *, {DAY.format(r='consent_log')} AS day, lead({DAY.format(r='consent_log')})"
    " OVER (PARTITION BY consent_id ORDER BY created_at, id) AS following FROM consent_log WHERE NOT scan"
)
BUILD = [
    f"INSERT INTO consent_report SELECT 'records', {RECORDS_KEY.format(r='c')}, count(*) FROM consent_log AS c WHERE NOT scan GROUP BY 2",
    *(
        f"INSERT INTO consent_report SELECT '{kind}', {key.format(r='c')}, count(*)"
        f" FROM ({_RANKED.format(by=by)}) AS c WHERE newest = 1 GROUP BY 2"
        for kind, by in (("standing", ""), ("week", f", {WEEK.format(r='consent_log')}"))
        for key in [SCOPES[kind][0]]
    ),
    # A visitor's newest record of a day is the one whose next record is on another day, or none.
    f"INSERT INTO consent_report SELECT 'last', {last_key('c.day', 'c.following', FIELDS.format(r='c'))}, count(*)"
    f" FROM ({_NEXT_DAY}) AS c WHERE c.following IS NULL OR c.following <> c.day GROUP BY 2",
    "INSERT INTO consent_report SELECT 'withdrawals', json_array(day), sum(n) FROM"
    " (SELECT day, previous, choices, count(*) AS n FROM (SELECT substr(created_at, 1, 10) AS day, choices,"
    " lag(choices) OVER (PARTITION BY consent_id ORDER BY created_at, id) AS previous FROM consent_log WHERE NOT scan)"
    f" WHERE previous <> choices GROUP BY day, previous, choices) WHERE {_withdraws('previous', 'choices')} = 1 GROUP BY day",
    "INSERT INTO consent_report SELECT 'scans', json_array(substr(created_at, 1, 10)), count(*) FROM consent_log WHERE scan GROUP BY 2",
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
# Totals as these triggers keep them: an older log's (other triggers, or none) are counted again.
PRESENT = f"SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND name = '{TRIGGERS[0]}'"


def install(conn: sqlite3.Connection) -> None:
    """The totals and their triggers, in the caller's write transaction; counted from the log when
    it was made before them, or before these triggers."""
    if conn.execute(PRESENT).fetchone()[0]:
        return
    for name in EARLIER_TRIGGERS:
        conn.execute(f"DROP TRIGGER IF EXISTS {name}")
    conn.execute("DROP TABLE IF EXISTS consent_report")
    conn.execute(TABLE)
    for statement in (*STATEMENTS, *BUILD):
        conn.execute(statement)
