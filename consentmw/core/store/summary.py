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
- 'day' [day, choices] and 'week' [monday, choices]: visitors whose newest record of that day or
  week has those choices (what the 'last' rows say too, in far fewer rows: the whole log's series);
- 'withdrawals' [day]: records of that day refusing a category the same visitor's previous record
  allowed;
- 'scans' [day]: records `consentmw scan` wrote that day (left out of everything above).

"Newest" is by (created_at, id), as in the report's definitions. Each write touches a handful of
rows found through the (consent_id, created_at) index: the cost of a record does not grow with the
log, nor with the number of records of one visitor. No date arithmetic but the Monday of a week:
SQLite's date() gives NULL past 9999-12-31, and a record may be dated then; a day's records are
those from 'YYYY-MM-DD' to 'YYYY-MM-DDZ' (every time of the day sorts between the two).

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
STANDING_KEY = FIELDS
BUCKET_KEYS = {"day": f"json_array({DAY}, {{r}}.choices)", "week": f"json_array({WEEK}, {{r}}.choices)"}
# A day's (YYYY-MM-DD text) day or week, as the report draws them.
BUCKET_OF_DAY = {"day": "{}", "week": "date({}, 'weekday 0', '-6 days')"}
RECORDS_KEY = f"json_array({DAY}, {{r}}.method, {{r}}.policy_version, {{r}}.language, {{r}}.region)"
DAY_KEY = f"json_array({DAY})"


def last_key(day: str, following: str, fields: str) -> str:
    """A 'last' key: json_array(day, following, fields) with `fields` a JSON array's text (FIELDS),
    put together as text: parsing `fields` again costs more than the rest of the key."""
    return f"'[' || json_quote({day}) || ',' || json_quote({following}) || ',' || {fields} || ']'"


def _add(rows: str) -> str:
    """Adds the n of `rows` (kind, key, n) to the totals. One statement for all: each statement of a
    trigger costs about as much as the insert that fires it."""
    return (
        f"INSERT INTO consent_report (kind, key, n) SELECT kind, key, n FROM ({rows}) WHERE n <> 0"
        " ON CONFLICT (kind, key) DO UPDATE SET n = n + excluded.n;"
    )


def _withdraws(before: str, after: str) -> str:
    """1 if the choices `after` refuse a category the choices `before` allowed, else 0 (0 if either is NULL)."""
    return (
        f"(CASE WHEN {before} = {after} THEN 0 ELSE (SELECT count(*) FROM (SELECT 1 FROM json_each({before}) AS was, json_each({after}) AS now"
        " WHERE was.key = now.key AND was.type = 'true' AND now.type <> 'true' LIMIT 1)) END)"
    )


def _neighbour(r: str, op: str, order: str) -> str:
    # The visitor's other record just before (op "<") or after (">") r, scans left out. r itself is
    # excluded by id, which also covers a delete trigger, where r is gone already.
    return (
        "SELECT o.created_at AS created_at, o.id AS id, o.policy_id AS policy_id, o.method AS method,"
        " o.policy_version AS policy_version, o.language AS language, o.region AS region, o.choices AS choices"
        f" FROM consent_log AS o WHERE o.consent_id = {r}.consent_id AND NOT o.scan AND o.id <> {r}.id"
        f" AND (o.created_at, o.id) {op} ({r}.created_at, {r}.id) ORDER BY o.created_at {order}, o.id {order} LIMIT 1"
    )


def _on_change(r: str) -> str:
    """For record r coming (sign 1) or going (sign -1): the change to every total, from r and the
    visitor's records just before it (p) and just after it (x), found through the visitor index.
    Whatever r changes, it changes between these two: the newest of its day, week or history is r
    when x is not in the same one, and was p when p is; r's day becomes the next day of p's when r
    is alone on its day; r stands between p and x for the withdrawals."""
    sign, back = ("1", "-1") if r == "new" else ("-1", "1")
    # Each value once (a subquery with LIMIT is computed once), then a row per total it may change.
    c = (
        f"SELECT {DAY.format(r='p')} AS p_day, {DAY.format(r='x')} AS x_day, {WEEK.format(r='p')} AS p_week, p.choices AS p_choices,"
        f" {FIELDS.format(r='p')} AS p_fields, {FIELDS.format(r=r)} AS r_fields,"
        f" x.created_at IS NULL AS newest, x.created_at IS NULL OR {DAY.format(r='x')} <> {DAY.format(r=r)} AS of_day,"
        f" x.created_at IS NULL OR {WEEK.format(r='x')} <> {WEEK.format(r=r)} AS of_week, p.created_at IS NOT NULL AS p_is,"
        f" {_withdraws('p.choices', f'{r}.choices')} AS w_pr, {_withdraws(f'{r}.choices', 'x.choices')} - {_withdraws('p.choices', 'x.choices')} AS w_x"
        f" FROM (SELECT 1) LEFT JOIN ({_neighbour(r, '<', 'DESC')}) AS p ON 1 LEFT JOIN ({_neighbour(r, '>', '')}) AS x ON 1 LIMIT 1"
    )
    day = DAY.format(r=r)
    alone = f"(c.of_day AND c.p_is AND c.p_day <> {day})"
    rows = [
        ("records", RECORDS_KEY.format(r=r), sign),
        ("standing", "c.r_fields", f"{sign} * c.newest"),
        ("standing", "c.p_fields", f"{back} * (c.newest AND c.p_is)"),
        ("day", BUCKET_KEYS["day"].format(r=r), f"{sign} * c.of_day"),
        ("day", f"json_array({day}, c.p_choices)", f"{back} * (c.of_day AND c.p_day = {day})"),
        ("week", BUCKET_KEYS["week"].format(r=r), f"{sign} * c.of_week"),
        ("week", "json_array(c.p_week, c.p_choices)", f"{back} * (c.of_week AND c.p_week = {WEEK.format(r=r)})"),
        ("last", last_key(day, "c.x_day", "c.r_fields"), f"{sign} * c.of_day"),
        ("last", last_key(day, "c.x_day", "c.p_fields"), f"{back} * (c.of_day AND c.p_day = {day})"),
        ("last", last_key("c.p_day", "c.x_day", "c.p_fields"), f"{back} * {alone}"),
        ("last", last_key("c.p_day", day, "c.p_fields"), f"{sign} * {alone}"),
        ("withdrawals", DAY_KEY.format(r=r), f"{sign} * c.w_pr"),
        ("withdrawals", "json_array(c.x_day)", f"{sign} * c.w_x"),
    ]
    case = lambda values: "CASE k.value " + " ".join(f"WHEN {n} THEN {v}" for n, v in enumerate(values)) + " END"  # noqa: E731
    return _add(
        f"SELECT {case(repr(kind) for kind, _, _ in rows)} AS kind, {case(key for _, key, _ in rows)} AS key,"
        f" {case(n for _, _, n in rows)} AS n FROM ({c}) AS c CROSS JOIN json_each('{list(range(len(rows)))}') AS k"
    )


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
        for kind, by, key in (
            ("standing", "", STANDING_KEY),
            ("day", f", {DAY.format(r='consent_log')}", BUCKET_KEYS["day"]),
            ("week", f", {WEEK.format(r='consent_log')}", BUCKET_KEYS["week"]),
        )
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
