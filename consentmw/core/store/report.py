"""`consentmw log report`: what visitors chose over a period, counted by the database.

Every figure is an SQL aggregate, so the process holds a few hundred rows whatever the size of the
log. What the figures mean (docs/cli.md says the same to the reader):

- records: the records of the period, without those `consentmw scan` wrote (counted apart);
- visitors: distinct consent ids among those records;
- a visitor's standing choice: their latest record in the period (latest by time, then by id);
- decided visitors: visitors whose standing choice was made under the policy version now in force,
  i.e. the version of the newest record of the same policy id in the period: the others would see
  the banner again;
- withdrawals: records that refuse a category the same visitor's previous record (in the period or
  before it) allowed;
- allow rate of a category: among visitors whose standing choice names the category, the share
  that allowed it. Per day or week: the same, with each visitor's latest record of that day or week;
- by method, policy version, language and region: records with that value, visitors whose standing
  choice has it, and the allow rates among those standing choices.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Callable, Protocol

from consentmw.core.store import postgres_summary, sql, summary
from consentmw.core.store.base import StoreError, utc

SCHEMA_VERSION = 1
BUCKETS = ("day", "week")
DIMENSIONS = ("method", "policy_version", "language", "region")
# A period longer than this is drawn per week: a line of more points than that is unreadable.
DAYS_DRAWN_BY_DAY = 92


@dataclass(frozen=True)
class Dialect:
    """What differs between SQLite and PostgreSQL in the report's queries."""

    mark: Callable[[int], str]  # the n-th parameter's placeholder
    param_time: Callable[[dt.datetime], Any]  # a time as a query parameter
    read_time: Callable[[Any], dt.datetime]  # a created_at as the database returns it
    each_choice: str  # "{}" is a column of choices: a table of (key, value) rows
    allowed: str  # "{}" is such a row: 1 if it allows its category, else 0
    same: str  # equality that takes NULL for equal to NULL
    buckets: dict[str, str]  # day/week -> the UTC start date of created_at's, as YYYY-MM-DD text
    totals: bool = False  # keeps running totals (summary.py, postgres_summary.py)
    # Reading the totals, written for SQLite's: the table, item n of a key (text, and as JSON),
    # a created_at's day, a day's first moment and the first moment after it, a day's day or week.
    totals_table: str = "consent_report"
    item: str = "json_extract({}, '$[{}]')"
    json_item: str = "json_extract({}, '$[{}]')"
    day_of: str = "substr({}, 1, 10)"
    in_day: str = "{col} >= {day} AND {col} < {day} || 'Z'"  # column {col} is a time of day {day} (text)
    bucket_of_day: dict[str, str] = field(default_factory=lambda: dict(summary.BUCKET_OF_DAY))
    postgres: bool = False  # a period read from the totals: PostgreSQL's queries, not SQLite's


class Aggregating(Protocol):
    dialect: Dialect

    async def aggregate(self, statements: Sequence[tuple[str, Sequence[Any]]]) -> list[list[Sequence[Any]]]:
        """Every statement's rows, all read from one snapshot of the log."""
        ...


def schema() -> dict[str, Any]:
    return json.loads(resources.files("consentmw.core.store").joinpath("report.schema.json").read_text("utf-8"))


async def build(
    store: Any,
    *,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    bucket: str | None = None,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """The report's figures, as its JSON form (report.schema.json)."""
    if not callable(getattr(store, "aggregate", None)):
        raise StoreError(f"{store!r} cannot report: the report reads a SQLite or PostgreSQL log")
    d: Dialect = store.dialect
    if bucket is None:
        [[(first, last)]] = await store.aggregate([span(d, since, until)])
        days = (d.read_time(last) - d.read_time(first)).days if first is not None else 0
        bucket = "day" if days <= DAYS_DRAWN_BY_DAY else "week"
    if bucket not in BUCKETS:
        raise ValueError(f"bucket {bucket!r}: use 'day' or 'week'")
    whole = since is None and until is None
    span_rows = scans = figures = None
    if d.postgres:
        # The totals once the changes are folded in, read in the fold's snapshot; None: from the records.
        in_totals = [span(d, since, until), _scans_from_totals(d, bucket), _from_totals(d, bucket)] if whole else [
            span(d, since, until), *reversed(_pg_from_totals_in_period(d, since, until, bucket))]
        read = await store.aggregate_totals(in_totals)
        if read is not None:
            span_rows, scans, figures = read
    elif d.totals and (await store.aggregate([(summary.PRESENT, [])]))[0][0][0]:
        # A SQLite log's running totals: of the whole log, a read of a few thousand rows; of a
        # period, the totals of its whole days and the records of the rest.
        queries = [span(d, since, until), _scans_from_totals(d, bucket), _from_totals(d, bucket)] if whole else [
            span(d, since, until), *reversed(_from_totals_in_period(d, since, until, bucket))]
        span_rows, scans, figures = await store.aggregate(queries)
    if figures is None:
        queries = [span(d, since, until), _scans(d, since, until, bucket), _figures(d, since, until, bucket)]
        span_rows, scans, figures = await store.aggregate(queries)
    rows = {"span": span_rows, "scans": scans, **split(figures)}
    return assemble(rows, d, since=since, until=until, bucket=bucket, now=now or dt.datetime.now(dt.UTC))


# -- the queries -----------------------------------------------------------------------------------
# One window pass over the log, in each visitor's order, marks every record: the visitor's newest (their
# standing choice), the newest of its day or week, and the choice it replaced. One GROUP BY folds the
# marked records into a few thousand rows (a log has a handful of distinct answers), and every figure is
# summed from those: sorting a big log once costs more than all the rest. json_each/jsonb_each runs over
# the folded rows only, not over every record.

Query = tuple[str, list[Any]]


def _period(d: Dialect, since: dt.datetime | None, until: dt.datetime | None, scans: bool = False) -> Query:
    where, params = sql.where(d.mark, d.param_time, since=since, until=until)
    return where + (" AND " if where else " WHERE ") + ("scan" if scans else "NOT scan"), params


def _each_dimension(table: str, columns: str, dims: Sequence[str] = DIMENSIONS) -> str:
    return " UNION ALL ".join(f"SELECT '{dim}' AS dim, {dim} AS value, {columns} FROM {table}" for dim in dims)


def span(d: Dialect, since: dt.datetime | None, until: dt.datetime | None, bucket: str = "") -> Query:
    # Both ends through the created_at index, not a pass over the log.
    where, params = _period(d, since, until)
    return (
        f"SELECT (SELECT created_at FROM consent_log{where} ORDER BY created_at LIMIT 1),"
        f" (SELECT created_at FROM consent_log{where} ORDER BY created_at DESC LIMIT 1)",
        params,
    )


def _scans(d: Dialect, since: dt.datetime | None, until: dt.datetime | None, bucket: str) -> Query:
    where, params = _period(d, since, until, scans=True)
    return f"SELECT count(*) FROM consent_log{where}", params


def _figures(d: Dialect, since: dt.datetime | None, until: dt.datetime | None, bucket: str) -> Query:
    """(part, kind, dim, value, category, a, b, first, last) rows; part is one of

    - 'standing': (kind, dim, value, category, a, b) about each visitor's standing choice:
      ('category', dim, value, category, allowed, of), ('visitors', dim, value, NULL, visitors, 0),
      ('in force', policy_id, policy_version, NULL, 0, 0) and ('decided', '', '', NULL, decided, 0);
    - 'records': (dim, value, records, first, last), dim 'bucket' for each day or week;
    - 'series': ('category', start, category, allowed, of) and ('visitors', start, NULL, visitors, 0);
    - 'withdrawals': (count).

    dim '' is the whole period."""
    # The records before the period are read too: the choice a visitor withdrew from may be older.
    where, params = _period(d, None, until)
    in_period, period = "", where
    if since is not None:
        params.append(d.param_time(since))
        in_period = f" WHERE created_at >= {d.mark(len(params))}"
        period = f"{where} AND created_at >= {d.mark(len(params))}"
    start = d.buckets[bucket]
    allowed = d.allowed.format("choice")
    marked = (
        f"SELECT created_at, policy_id, policy_version, choices, method, language, region, {start} AS bucket,"
        f" lead(id) OVER visitor IS NULL AS latest, lead({start}) OVER visitor AS next_bucket,"
        " lag(choices) OVER visitor AS previous"
        f" FROM consent_log{where} WINDOW visitor AS (PARTITION BY consent_id ORDER BY created_at, id)"
    )
    folded = (
        "SELECT latest, next_bucket IS NULL OR next_bucket <> bucket AS bucket_latest, bucket, policy_id, method,"
        " policy_version, language, region, choices, CASE WHEN previous <> choices THEN previous END AS replaced,"
        f" count(*) AS n, min(created_at) AS first, max(created_at) AS last FROM ({marked}) AS marked{in_period}"
        " GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10"
    )
    now, was = d.each_choice.format("changes.choices"), d.each_choice.format("changes.replaced")
    sources = (
        f"g AS MATERIALIZED ({folded}), "
        "answers AS MATERIALIZED (SELECT policy_id, method, policy_version, language, region, choices, sum(n) AS n"
        " FROM g WHERE latest GROUP BY 1, 2, 3, 4, 5, 6), "
        "per_bucket AS (SELECT bucket, choices, sum(n) AS n FROM g WHERE bucket_latest GROUP BY bucket, choices), "
        "changes AS (SELECT replaced, choices, sum(n) AS n FROM g WHERE replaced IS NOT NULL GROUP BY replaced, choices)"
    )
    withdrawals = (
        f"SELECT coalesce(sum(n), 0) FROM changes WHERE EXISTS (SELECT 1 FROM {now} AS now, {was} AS was"
        f" WHERE now.key = was.key AND {d.allowed.format('was')} = 1 AND {d.allowed.format('now')} = 0)"
    )
    return _tail(d, sources, "g", period, withdrawals), params


def _tail(d: Dialect, sources: str, records: str, period: str, withdrawals: str) -> str:
    """The rows of _figures from `sources`, CTEs that define answers (policy_id, method, policy_version,
    language, region, choices, n: standing choices), per_bucket (bucket, choices, n: each visitor's
    newest of the day or week) and `records` (method, policy_version, language, region, bucket, n,
    first, last: records); `withdrawals` selects their count."""
    allowed = d.allowed.format("choice")
    return (
        f"WITH {sources}, "
        # The version of each policy id's newest record: found through the created_at index.
        f"in_force AS (SELECT p.policy_id, (SELECT policy_version FROM consent_log{period} AND policy_id {d.same} p.policy_id"
        f" ORDER BY created_at DESC, id DESC LIMIT 1) AS policy_version FROM (SELECT DISTINCT policy_id FROM answers) AS p), "
        f"s AS (SELECT '' AS dim, '' AS value, choices, n FROM answers UNION ALL {_each_dimension('answers', 'choices, n')}) "
        # The records first: PostgreSQL types a UNION's columns pairwise from the left, and only they have times.
        "SELECT 'records', NULL, dim, value, NULL, sum(n), 0, min(first), max(last)"
        f" FROM ({_each_dimension(records, 'n, first, last', (*DIMENSIONS, 'bucket'))}) AS r GROUP BY dim, value"
        f" UNION ALL SELECT 'records', NULL, '', '', NULL, sum(n), 0, min(first), max(last) FROM {records}"
        f" UNION ALL SELECT 'standing', 'category', s.dim, s.value, choice.key, sum({allowed} * s.n), sum(s.n), NULL, NULL"
        f" FROM s, {d.each_choice.format('s.choices')} AS choice GROUP BY s.dim, s.value, choice.key"
        " UNION ALL SELECT 'standing', 'visitors', dim, value, NULL, sum(n), 0, NULL, NULL FROM s GROUP BY dim, value"
        " UNION ALL SELECT 'standing', 'in force', policy_id, policy_version, NULL, 0, 0, NULL, NULL FROM in_force"
        " UNION ALL SELECT 'standing', 'decided', '', '', NULL, sum(n), 0, NULL, NULL FROM answers JOIN in_force"
        f" ON answers.policy_id {d.same} in_force.policy_id AND answers.policy_version = in_force.policy_version"
        f" UNION ALL SELECT 'series', 'category', NULL, bucket, choice.key, sum({allowed} * n), sum(n), NULL, NULL"
        f" FROM per_bucket, {d.each_choice.format('per_bucket.choices')} AS choice GROUP BY bucket, choice.key"
        " UNION ALL SELECT 'series', 'visitors', NULL, bucket, NULL, sum(n), 0, NULL, NULL FROM per_bucket GROUP BY bucket"
        f" UNION ALL SELECT 'withdrawals', NULL, NULL, NULL, NULL, ({withdrawals}), 0, NULL, NULL"
    )


def _at(column: str, n: int, d: Dialect | None = None) -> str:
    """Item n of the JSON array in `column` (the totals' keys are such arrays)."""
    return (d.item if d is not None else "json_extract({}, '$[{}]')").format(column, n)


def _answer_columns(column: str, d: Dialect | None = None) -> str:
    """The columns of an answer from the JSON array of its fields (summary.FIELDS) in `column`."""
    names = ("policy_id", "method", "policy_version", "language", "region")
    choices = (d.json_item if d is not None else "json_extract({}, '$[{}]')").format(column, 5)
    return ", ".join([*(f"{_at(column, n, d)} AS {name}" for n, name in enumerate(names)), f"{choices} AS choices"])


def _days(d: Dialect, bucket: str, within: str) -> str:
    """CTEs: `days` (day, method, policy_version, language, region, n), the 'records' totals of the
    days whose keys are `within`, and `whole_days` (method, policy_version, language, region, bucket,
    n, first, last) from them. A value's first and last record are looked up in the days that hold
    them, through the created_at index: the first and last days, mostly."""
    dims = "method, policy_version, language, region"
    return (
        f"days AS MATERIALIZED (SELECT {_at('key', 0, d)} AS day, {_at('key', 1, d)} AS method, {_at('key', 2, d)} AS policy_version,"
        f" {_at('key', 3, d)} AS language, {_at('key', 4, d)} AS region, n FROM {d.totals_table} WHERE kind = 'records' AND n <> 0{within}), "
        "ends AS (SELECT DISTINCT day FROM (SELECT min(day) AS day FROM"
        f" ({_each_dimension('days', 'day')}) AS v GROUP BY dim, value UNION ALL SELECT max(day) FROM"
        f" ({_each_dimension('days', 'day')}) AS v GROUP BY dim, value) AS e), "
        f"times AS (SELECT {dims}, {d.day_of.format('created_at')} AS day, min(created_at) AS first, max(created_at) AS last"
        f" FROM ends JOIN consent_log ON {d.in_day.format(col='created_at', day='ends.day')}"
        f" WHERE NOT scan GROUP BY {dims}, 5), "
        f"whole_days AS (SELECT days.method AS method, days.policy_version AS policy_version, days.language AS language,"
        f" days.region AS region, {d.bucket_of_day[bucket].format('day')} AS bucket, n, first, last"
        f" FROM days LEFT JOIN times USING (day, {dims}))"
    )


def _from_totals(d: Dialect, bucket: str) -> Query:
    """_figures' rows for the whole log, from the totals a SQLite log keeps (summary.py), not from the log."""
    where, params = _period(d, None, None)
    per_bucket = f"SELECT {_at('key', 0, d)} AS bucket, {d.json_item.format('key', 1)} AS choices, n FROM t WHERE kind = '{bucket}'"
    sources = (
        f"t AS MATERIALIZED (SELECT kind, key, n FROM {d.totals_table} WHERE kind IN ('standing', '{bucket}', 'withdrawals') AND n <> 0), "
        f"answers AS (SELECT {_answer_columns('key', d)}, n FROM t WHERE kind = 'standing'), "
        f"per_bucket AS ({per_bucket}), {_days(d, bucket, '')}"
    )
    withdrawals = "SELECT coalesce(sum(n), 0) FROM t WHERE kind = 'withdrawals'"
    return _tail(d, sources, "whole_days", where, withdrawals), params


# A day (YYYY-MM-DD) after every day: the upper end of a period without one.
NO_END = "9999-12-31~"
# Keys whose text starts with a day from ?3 (included) to ?4 (excluded).
_KEY_DAYS = " AND key > '[\"' || ?3 AND key < '[\"' || ?4"


def _whole_days(since: dt.datetime | None, until: dt.datetime | None) -> tuple[str, str]:
    """The days (YYYY-MM-DD) a period's whole days run from and to (A, B): '' from the first, NO_END
    to the last."""
    first_whole = ""
    if since is not None:
        day = utc(since).date()
        if utc(since) != dt.datetime.combine(day, dt.time(), dt.UTC):
            day = day + dt.timedelta(days=1) if day < dt.date.max else None  # type: ignore[assignment]
        first_whole = day.isoformat() if day is not None else NO_END
    return first_whole, NO_END if until is None else utc(until).date().isoformat()


def _bounds(d: Dialect, since: dt.datetime | None, until: dt.datetime | None) -> list[str]:
    """The parameters of _from_totals_in_period: the period's ends as times (a, b) and as the days
    its whole days run from and to (A, B), all as SQLite text."""
    return ["" if since is None else d.param_time(since), NO_END if until is None else d.param_time(until), *_whole_days(since, until)]


def _from_totals_in_period(d: Dialect, since: dt.datetime | None, until: dt.datetime | None, bucket: str) -> tuple[Query, Query]:
    """_figures' rows and the scans of a period, from the totals of its whole days and the records
    of the rest."""
    sources, params = _period_sources(d, since, until, bucket)
    withdrawals = (
        f"SELECT (SELECT coalesce(sum(n), 0) FROM consent_report WHERE kind = 'withdrawals'{_KEY_DAYS})"
        f" + (SELECT count(*) FROM e WHERE {summary._withdraws('previous', 'choices')} = 1)"
    )
    period = " WHERE created_at >= ?1 AND created_at < ?2 AND NOT scan"
    return (_tail(d, sources, "rec", period, withdrawals), params), (_SCANS_IN_PERIOD, params)


def stats_in_period(d: Dialect, since: dt.datetime | None, until: dt.datetime | None) -> tuple[str, str, list[str]]:
    """`log stats --latest` of a period from the totals: a query of sql.stats_query's rows, one of
    the period's scans, and their parameters."""
    sources, params = _period_sources(d, since, until, "day")
    query = (
        f"WITH {sources} SELECT 'choice', choice.key, choice.value, sum(n) FROM answers, json_each(answers.choices) AS choice"
        " GROUP BY 2, 3 UNION ALL SELECT 'records', NULL, NULL, sum(n) FROM answers"
        " UNION ALL SELECT 'visitors', NULL, NULL, sum(n) FROM answers"
        " UNION ALL SELECT 'method', method, NULL, sum(n) FROM answers GROUP BY 2"
    )
    return query, _SCANS_IN_PERIOD, params


# The part of a period before its first whole day (from ?1 to ?3), and from the end of its last
# (?4 to ?2); a period within one day is all "before" (?3 > ?4 then).
_ENDS = (
    "r.created_at >= ?1 AND r.created_at < min(?3, ?2)",
    "r.created_at >= max(?4, ?3) AND r.created_at < ?2",
)
_SCANS_IN_PERIOD = (
    f"SELECT (SELECT coalesce(sum(n), 0) FROM consent_report WHERE kind = 'scans'{_KEY_DAYS})"
    f" + (SELECT count(*) FROM consent_log AS r WHERE r.scan AND ({_ENDS[0]} OR {_ENDS[1]}))"
)


def _period_sources(d: Dialect, since: dt.datetime | None, until: dt.datetime | None, bucket: str) -> tuple[str, list[str]]:
    """The CTEs _tail reads, for a period, from the totals of its whole days (A to B) and the
    records of its ends: the part of a day before A and after B.

    A visitor's newest record in the period is one of these:
    - a record of the ends whose visitor has no later record before the end of the period (b);
    - a 'last' row of the whole days whose next day is after B's, or none;
    - the newest record before B of a visitor whose first record of B's day is at b or later, when
      that record is in the whole days (its 'last' row's next day is B's: the row cannot tell).
    Each bucket's newest records are found in the same way, with "later in the same bucket"."""
    params = _bounds(d, since, until)
    of_time = lambda t: summary.BUCKET_OF_DAY[bucket].format(f"substr({t}, 1, 10)")  # noqa: E731
    of_day = summary.BUCKET_OF_DAY[bucket].format
    fields = summary.FIELDS
    neighbour = (
        "(SELECT {what} FROM consent_log AS o WHERE o.consent_id = {r}.consent_id AND NOT o.scan"
        " AND (o.created_at, o.id) {op} ({r}.created_at, {r}.id) ORDER BY o.created_at {order}, o.id {order} LIMIT 1)"
    )
    following = neighbour.format(what="o.created_at", r="r", op=">", order="")
    previous = neighbour.format(what="o.choices", r="r", op="<", order="DESC")
    marked = " UNION ALL ".join(
        f"SELECT r.created_at, r.policy_id, r.method, r.policy_version, r.language, r.region, r.choices,"
        f" {of_time('r.created_at')} AS bucket, {following} AS following, {previous} AS previous"
        f" FROM consent_log AS r WHERE NOT r.scan AND {part}"
        for part in _ENDS
    )
    before_b = neighbour.format(what=f"json_array(o.created_at, json({fields.format(r='o')}))", r="x", op="<", order="DESC")
    unsure = (
        f"SELECT p, {of_time('x.created_at')} AS bucket FROM (SELECT x.created_at, {before_b} AS p FROM consent_log AS x"
        " WHERE NOT x.scan AND x.created_at >= ?2 AND x.created_at < ?4 || 'Z') AS x"
        " WHERE json_extract(p, '$[0]') >= ?3 AND json_extract(p, '$[0]') < ?4"
    )
    before_b_at = "json_extract(p, '$[0]')"
    sources = (
        f"e AS MATERIALIZED ({marked}), "
        "l AS MATERIALIZED (SELECT json_extract(key, '$[0]') AS day, json_extract(key, '$[1]') AS following,"
        f" json_extract(key, '$[2]') AS fields, n FROM consent_report WHERE kind = 'last' AND n <> 0{_KEY_DAYS}), "
        f"u AS MATERIALIZED ({unsure}), "
        f"standing AS (SELECT {fields.format(r='e')} AS fields, 1 AS n FROM e WHERE following IS NULL OR following >= ?2"
        " UNION ALL SELECT fields, n FROM l WHERE following IS NULL OR following > ?4"
        " UNION ALL SELECT json_extract(p, '$[1]'), 1 FROM u), "
        f"answers AS MATERIALIZED (SELECT {_answer_columns('fields')}, sum(n) AS n FROM standing GROUP BY fields), "
        "per_bucket AS (SELECT bucket, choices, sum(n) AS n FROM ("
        f"SELECT bucket, choices, 1 AS n FROM e WHERE following IS NULL OR following >= ?2 OR {of_time('following')} <> bucket"
        f" UNION ALL SELECT {of_day('day')}, {_at('fields', 5)}, n FROM l WHERE following IS NULL OR following > ?4"
        f" OR {of_day('following')} <> {of_day('day')}"
        f" UNION ALL SELECT bucket, json_extract(p, '$[1][5]'), 1 FROM u WHERE {of_time(before_b_at)} = bucket"
        ") GROUP BY bucket, choices), "
        f"{_days(d, bucket, _KEY_DAYS)}, "
        "rec AS (SELECT * FROM whole_days UNION ALL SELECT method, policy_version, language, region, bucket, count(*),"
        " min(created_at), max(created_at) FROM e GROUP BY 1, 2, 3, 4, 5)"
    )
    return sources, params


# -- a period from the totals of a PostgreSQL log: the queries above, with times as timestamptz --
# $1 and $2 the period's ends (NULL: none), $3 and $4 the days its whole days run from and to (A,
# B; text), $5 and $6 the first moments (UTC) of those days (NULL: no whole day; no end). A key's
# text starts with its day, compared byte by byte (the key column is COLLATE "C"). No interval
# arithmetic in the session's time zone: the ends of days are computed in UTC.
_PG = {
    "a": "coalesce($1::timestamptz, '-infinity')",
    "b": "$2::timestamptz",
    "B": "$4::text",
    # The last moment of day B; 'infinity' (datetime.max) on the last day there is.
    "B_last": "CASE WHEN $4::text >= '9999-12-31' THEN 'infinity'::timestamptz"
    " ELSE ((left($4::text, 10)::date + 1)::timestamp - interval '1 microsecond') AT TIME ZONE 'UTC' END",
}
_PG_KEY_DAYS = " AND key > '[\"' || $3::text AND key < '[\"' || $4::text"
_PG_BEFORE_B = "($2::timestamptz IS NULL OR {} < $2::timestamptz)"
_PG_ENDS = (
    f"r.created_at >= {_PG['a']} AND ($5::timestamptz IS NULL OR r.created_at < $5::timestamptz) AND {_PG_BEFORE_B.format('r.created_at')}",
    "$5::timestamptz IS NOT NULL AND $6::timestamptz IS NOT NULL AND r.created_at >= greatest($6::timestamptz, $5::timestamptz)"
    f" AND {_PG_BEFORE_B.format('r.created_at')}",
)


def _pg_bounds(since: dt.datetime | None, until: dt.datetime | None) -> list[Any]:
    first_whole, last = _whole_days(since, until)

    def start(day: str) -> dt.datetime | None:
        if day == NO_END:
            return None
        return dt.datetime.combine(dt.date.fromisoformat(day) if day else dt.date.min, dt.time(), dt.UTC)

    return [None if since is None else utc(since), None if until is None else utc(until), first_whole, last, start(first_whole), start(last)]


def _pg_period_sources(d: Dialect, since: dt.datetime | None, until: dt.datetime | None, bucket: str) -> tuple[str, list[Any]]:
    """_period_sources for PostgreSQL."""
    fields = postgres_summary.fields
    of_time = d.buckets[bucket].replace("created_at", "{}").format
    of_day = d.bucket_of_day[bucket].format
    same_visitor = "o.consent_id = {r}.consent_id AND NOT o.scan"
    following = (
        f"(SELECT o.created_at FROM consent_log AS o WHERE {same_visitor.format(r='r')} AND (o.created_at, o.id) > (r.created_at, r.id)"
        " ORDER BY o.created_at, o.id LIMIT 1)"
    )
    previous = (
        f"(SELECT o.choices FROM consent_log AS o WHERE {same_visitor.format(r='r')} AND (o.created_at, o.id) < (r.created_at, r.id)"
        " ORDER BY o.created_at DESC, o.id DESC LIMIT 1)"
    )
    marked = " UNION ALL ".join(
        f"SELECT r.created_at, r.policy_id, r.method, r.policy_version, r.language, r.region, r.choices,"
        f" {of_time('r.created_at')} AS bucket, {following} AS following, {previous} AS previous"
        f" FROM consent_log AS r WHERE NOT r.scan AND {part}"
        for part in _PG_ENDS
    )
    # A visitor whose first record of B's day is at b or later: their newest record before it.
    unsure = (
        f"SELECT p.fields, p.choices, p.created_at AS p_at, {of_time('x.created_at')} AS bucket FROM consent_log AS x,"
        f" LATERAL (SELECT o.created_at, o.choices, {fields('o')} AS fields FROM consent_log AS o WHERE {same_visitor.format(r='x')}"
        " AND (o.created_at, o.id) < (x.created_at, x.id) ORDER BY o.created_at DESC, o.id DESC LIMIT 1) AS p"
        " WHERE NOT x.scan AND x.created_at >= $2::timestamptz AND x.created_at <= {B_last}"
        " AND p.created_at >= $5::timestamptz AND p.created_at < $6::timestamptz".format(**_PG)
    )
    sources = (
        f"e AS MATERIALIZED ({marked}), "
        # Each key parsed once (OFFSET 0 keeps the subquery apart): there are tens of thousands.
        "l AS MATERIALIZED (SELECT k ->> 0 AS day, (k ->> 1) COLLATE \"C\" AS following, k -> 2 AS fields, n FROM"
        f" (SELECT key::jsonb AS k, n FROM {d.totals_table} WHERE kind = 'last' AND n <> 0{_PG_KEY_DAYS} OFFSET 0) AS t), "
        f"u AS MATERIALIZED ({unsure}), "
        f"standing AS (SELECT {fields('e')} AS fields, 1 AS n FROM e WHERE following IS NULL OR following >= $2::timestamptz"
        f" UNION ALL SELECT fields, n FROM l WHERE following IS NULL OR following > {_PG['B']}"
        " UNION ALL SELECT fields, 1 FROM u), "
        f"answers AS MATERIALIZED (SELECT {_answer_columns('fields', d)}, sum(n) AS n FROM standing GROUP BY fields), "
        "per_bucket AS (SELECT bucket, choices, sum(n) AS n FROM ("
        f"SELECT bucket, choices, 1 AS n FROM e WHERE following IS NULL OR following >= $2::timestamptz OR {of_time('following')} <> bucket"
        f" UNION ALL SELECT {of_day('day')}, fields -> 5, n FROM l WHERE following IS NULL OR following > {_PG['B']}"
        f" OR {of_day('following')} <> {of_day('day')}"
        f" UNION ALL SELECT bucket, choices, 1 FROM u WHERE {of_time('p_at')} = bucket"
        ") AS b GROUP BY bucket, choices), "
        f"{_days(d, bucket, _PG_KEY_DAYS)}, "
        "rec AS (SELECT * FROM whole_days UNION ALL SELECT method, policy_version, language, region, bucket, count(*),"
        " min(created_at), max(created_at) FROM e GROUP BY 1, 2, 3, 4, 5)"
    )
    return sources, _pg_bounds(since, until)


_PG_SCANS_IN_PERIOD = (
    f"SELECT ((SELECT coalesce(sum(n), 0) FROM {postgres_summary.TOTALS} WHERE kind = 'scans'{_PG_KEY_DAYS})"
    f" + (SELECT count(*) FROM consent_log AS r WHERE r.scan AND ({_PG_ENDS[0]} OR {_PG_ENDS[1]})))::bigint"
)


def _pg_from_totals_in_period(d: Dialect, since: dt.datetime | None, until: dt.datetime | None, bucket: str) -> tuple[Query, Query]:
    """_from_totals_in_period for PostgreSQL."""
    sources, params = _pg_period_sources(d, since, until, bucket)
    withdrawals = (
        f"SELECT (SELECT coalesce(sum(n), 0) FROM {d.totals_table} WHERE kind = 'withdrawals'{_PG_KEY_DAYS})"
        " + (SELECT count(*) FROM e WHERE consent_report_withdraws(previous, choices) = 1)"
    )
    period = f" WHERE created_at >= {_PG['a']} AND {_PG_BEFORE_B.format('created_at')} AND NOT scan"
    return (_tail(d, sources, "rec", period, withdrawals), params), (_PG_SCANS_IN_PERIOD, params)


def pg_stats_in_period(d: Dialect, since: dt.datetime | None, until: dt.datetime | None) -> tuple[str, str, list[Any]]:
    """stats_in_period for PostgreSQL."""
    sources, params = _pg_period_sources(d, since, until, "day")
    query = (
        f"WITH {sources} SELECT 'choice', choice.key, (choice.value = 'true'::jsonb)::int, sum(n)"
        " FROM answers, jsonb_each(answers.choices) AS choice GROUP BY 2, 3"
        " UNION ALL SELECT 'records', NULL, NULL, sum(n) FROM answers"
        " UNION ALL SELECT 'visitors', NULL, NULL, sum(n) FROM answers"
        " UNION ALL SELECT 'method', method, NULL, sum(n) FROM answers GROUP BY 2"
    )
    return query, _PG_SCANS_IN_PERIOD, params


def _scans_from_totals(d: Dialect, bucket: str) -> Query:
    return f"SELECT coalesce(sum(n), 0) FROM {d.totals_table} WHERE kind = 'scans'", []


def split(rows: Sequence[Sequence[Any]]) -> dict[str, list[Sequence[Any]]]:
    """_figures' rows as the parts assemble() reads."""
    parts: dict[str, list[Sequence[Any]]] = {"standing": [], "records": [], "series": [], "withdrawals": []}
    for part, kind, dim, value, category, a, b, first, last in rows:
        if part == "standing":
            parts[part].append((kind, dim, value, category, a, b))
        elif part == "records":
            parts[part].append((dim, value, a, first, last))
        elif part == "series":
            parts[part].append((kind, value, category, a, b))
        else:
            parts[part].append((a,))
    return parts


# -- from rows to the report -----------------------------------------------------------------------


def _rate(allowed: int, of: int) -> dict[str, Any]:
    return {"allowed": allowed, "of": of, "rate": round(allowed / of, 6) if of else None}


def _iso(moment: dt.datetime | None) -> str | None:
    return utc(moment).isoformat() if moment is not None else None


def _starts(first: str, last: str, bucket: str) -> list[str]:
    """Every day or week from the first bucket to the last, so that a quiet day shows as a gap."""
    step = dt.timedelta(days=1 if bucket == "day" else 7)
    day, end = dt.date.fromisoformat(first), dt.date.fromisoformat(last)
    starts = []
    while day <= end:
        starts.append(day.isoformat())
        if end - day < step:
            break  # the last: a step past 9999-12-31 has no date
        day += step
    return starts


def assemble(
    rows: dict[str, list[Sequence[Any]]],
    d: Dialect,
    *,
    since: dt.datetime | None,
    until: dt.datetime | None,
    bucket: str,
    now: dt.datetime,
) -> dict[str, Any]:
    [(first, last)] = rows["span"]
    [(scans,)] = rows["scans"]
    [(withdrawals,)] = rows["withdrawals"]

    rates: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
    visitors: dict[tuple[str, str], int] = {}
    in_force: list[dict[str, Any]] = []
    decided = 0
    for kind, dim, value, category, a, b in rows["standing"]:
        if kind == "category":
            rates.setdefault((dim, value), {})[category] = _rate(int(a), int(b))
        elif kind == "visitors":
            visitors[(dim, value)] = int(a)
        elif kind == "in force":
            in_force.append({"policy_id": dim, "policy_version": value})
        else:
            decided = int(a or 0)
    records: dict[tuple[str, str], int] = {}
    breakdowns: dict[str, list[dict[str, Any]]] = {dim: [] for dim in DIMENSIONS}
    counts: dict[str, dict[str, int]] = {}
    for dim, value, count, first_seen, last_seen in rows["records"]:
        records[(dim, value)] = int(count or 0)
        if dim == "bucket":
            counts[value] = {"records": int(count), "visitors": 0}
        elif dim:
            breakdowns[dim].append(
                {
                    "value": value,
                    "records": int(count),
                    "visitors": visitors.get((dim, value), 0),
                    "first_record": _iso(d.read_time(first_seen)),
                    "last_record": _iso(d.read_time(last_seen)),
                    "categories": dict(sorted(rates.get((dim, value), {}).items())),
                }
            )
    for entries in breakdowns.values():
        entries.sort(key=lambda e: (-e["visitors"], -e["records"], e["value"]))

    per_bucket: dict[str, dict[str, dict[str, Any]]] = {}
    for kind, start, category, a, b in rows["series"]:
        if kind == "category":
            per_bucket.setdefault(start, {})[category] = _rate(int(a), int(b))
        else:
            counts[start]["visitors"] = int(a)
    series = [
        {
            "start": start,
            "records": counts.get(start, {}).get("records", 0),
            "visitors": counts.get(start, {}).get("visitors", 0),
            "categories": dict(sorted(per_bucket.get(start, {}).items())),
        }
        for start in (_starts(min(counts), max(counts), bucket) if counts else [])
    ]
    return {
        "schema_version": SCHEMA_VERSION,
        "generated_at": _iso(now),
        "period": {
            "since": _iso(since),
            "until": _iso(until),
            "first_record": _iso(d.read_time(first)) if first is not None else None,
            "last_record": _iso(d.read_time(last)) if last is not None else None,
            "bucket": bucket,
        },
        "totals": {
            "records": records.get(("", ""), 0),
            "visitors": visitors.get(("", ""), 0),
            "decided_visitors": decided,
            "withdrawals": int(withdrawals),
            "scans_left_out": int(scans),
        },
        "current_policies": sorted(in_force, key=lambda p: (p["policy_id"] is not None, p["policy_id"] or "")),
        "categories": dict(sorted(rates.get(("", ""), {}).items())),
        "series": series,
        "breakdowns": breakdowns,
    }
