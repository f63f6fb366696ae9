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
from dataclasses import dataclass
from importlib import resources
from typing import Any, Callable, Protocol

from consentmw.core.store import sql, summary
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
    totals: bool = False  # keeps the running totals of summary.py


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
    if whole and d.totals and (await store.aggregate([(summary.PRESENT, [])]))[0][0][0]:
        # The whole log of a SQLite store: its running totals, a read of a few thousand rows.
        queries = [span(d, since, until), _scans_from_totals(d, bucket), _from_totals(d, bucket)]
    else:
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


def _from_totals(d: Dialect, bucket: str) -> Query:
    """_figures' rows for the whole log, from the totals a SQLite log keeps (summary.py), not from the log.

    The totals count records per day; a value's first and last record are looked up in the days
    that hold them, through the created_at index: the first and last days, mostly."""
    where, params = _period(d, None, None)
    field = lambda n: f"json_extract(key, '$[{n}]')"  # noqa: E731
    start = summary.BUCKET_OF_DAY[bucket].format("day")
    dims = "method, policy_version, language, region"
    sources = (
        "t AS MATERIALIZED (SELECT kind, key, n FROM consent_report WHERE n <> 0), "
        f"answers AS (SELECT {field(0)} AS policy_id, {field(1)} AS method, {field(2)} AS policy_version,"
        f" {field(3)} AS language, {field(4)} AS region, {field(5)} AS choices, n FROM t WHERE kind = 'standing'), "
        f"per_bucket AS (SELECT {field(0)} AS bucket, {field(1)} AS choices, n FROM t WHERE kind = '{bucket}'), "
        f"days AS MATERIALIZED (SELECT {field(0)} AS day, {field(1)} AS method, {field(2)} AS policy_version,"
        f" {field(3)} AS language, {field(4)} AS region, n FROM t WHERE kind = 'records'), "
        "ends AS (SELECT DISTINCT day FROM (SELECT min(day) AS day FROM"
        f" ({_each_dimension('days', 'day')}) AS v GROUP BY dim, value UNION ALL SELECT max(day) FROM"
        f" ({_each_dimension('days', 'day')}) AS v GROUP BY dim, value) AS e), "
        f"times AS (SELECT {dims}, substr(created_at, 1, 10) AS day, min(created_at) AS first, max(created_at) AS last"
        f" FROM ends JOIN consent_log ON created_at >= ends.day AND created_at < date(ends.day, '+1 day')"
        f" WHERE NOT scan GROUP BY {dims}, 5), "
        f"r AS (SELECT days.method AS method, days.policy_version AS policy_version, days.language AS language,"
        f" days.region AS region, {start} AS bucket, n, first, last FROM days LEFT JOIN times USING (day, {dims}))"
    )
    withdrawals = "SELECT coalesce(sum(n), 0) FROM t WHERE kind = 'withdrawals'"
    return _tail(d, sources, "r", where, withdrawals), params


def _scans_from_totals(d: Dialect, bucket: str) -> Query:
    return "SELECT coalesce(sum(n), 0) FROM consent_report WHERE kind = 'scans'", []


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
