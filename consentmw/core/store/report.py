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

from consentmw.core.store import sql
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
    names = list(QUERIES)
    rows = dict(zip(names, await store.aggregate([QUERIES[name](d, since, until, bucket) for name in names])))
    return assemble(rows, d, since=since, until=until, bucket=bucket, now=now or dt.datetime.now(dt.UTC))


# -- the queries -----------------------------------------------------------------------------------
# Three window passes (standing choices, choices per day or week, each record against the one before)
# and plain scans. Rows are grouped by their choices before the JSON is read: a log has a handful of
# distinct answers, so json_each/jsonb_each runs over a few hundred rows, not over every record.

Query = tuple[str, list[Any]]


def _period(d: Dialect, since: dt.datetime | None, until: dt.datetime | None, scans: bool = False) -> Query:
    where, params = sql.where(d.mark, d.param_time, since=since, until=until)
    return where + (" AND " if where else " WHERE ") + ("scan" if scans else "NOT scan"), params


def _ranked(partition: str, source: str) -> str:
    """The rows of `source` that are the newest of their partition."""
    return (
        f"SELECT * FROM (SELECT src.*, row_number() OVER (PARTITION BY {partition} ORDER BY created_at DESC, id DESC)"
        f" AS newest FROM ({source}) AS src) AS ranked WHERE newest = 1"
    )


def _each_dimension(table: str, columns: str) -> str:
    return " UNION ALL ".join(f"SELECT '{dim}' AS dim, {dim} AS value, {columns} FROM {table}" for dim in DIMENSIONS)


def span(d: Dialect, since: dt.datetime | None, until: dt.datetime | None, bucket: str = "") -> Query:
    where, params = _period(d, since, until)
    return f"SELECT min(created_at), max(created_at) FROM consent_log{where}", params


def _scans(d: Dialect, since: dt.datetime | None, until: dt.datetime | None, bucket: str) -> Query:
    where, params = _period(d, since, until, scans=True)
    return f"SELECT count(*) FROM consent_log{where}", params


def _standing(d: Dialect, since: dt.datetime | None, until: dt.datetime | None, bucket: str) -> Query:
    """(kind, dim, value, category, a, b) rows about each visitor's standing choice:
    ('category', dim, value, category, allowed, of), ('visitors', dim, value, NULL, visitors, 0),
    ('in force', policy_id, policy_version, NULL, 0, 0) and ('decided', '', '', NULL, decided, 0).
    dim '' is the whole period."""
    where, params = _period(d, since, until)
    records = f"SELECT id, created_at, consent_id, policy_id, policy_version, choices, method, language, region FROM consent_log{where}"
    allowed = d.allowed.format("choice")
    query = (
        "WITH answers AS MATERIALIZED (SELECT policy_id, method, policy_version, language, region, choices, count(*) AS n"
        f" FROM ({_ranked('consent_id', records)}) AS latest"
        " GROUP BY policy_id, method, policy_version, language, region, choices), "
        # The version of each policy id's newest record: found through the created_at index.
        f"in_force AS (SELECT p.policy_id, (SELECT policy_version FROM consent_log{where} AND policy_id {d.same} p.policy_id"
        f" ORDER BY created_at DESC, id DESC LIMIT 1) AS policy_version FROM (SELECT DISTINCT policy_id FROM answers) AS p), "
        f"s AS (SELECT '' AS dim, '' AS value, choices, n FROM answers UNION ALL {_each_dimension('answers', 'choices, n')}) "
        f"SELECT 'category', s.dim, s.value, choice.key, sum({allowed} * s.n), sum(s.n)"
        f" FROM s, {d.each_choice.format('s.choices')} AS choice GROUP BY s.dim, s.value, choice.key"
        " UNION ALL SELECT 'visitors', dim, value, NULL, sum(n), 0 FROM s GROUP BY dim, value"
        " UNION ALL SELECT 'in force', policy_id, policy_version, NULL, 0, 0 FROM in_force"
        " UNION ALL SELECT 'decided', '', '', NULL, sum(n), 0 FROM answers JOIN in_force"
        f" ON answers.policy_id {d.same} in_force.policy_id AND answers.policy_version = in_force.policy_version"
    )
    return query, params


def _records(d: Dialect, since: dt.datetime | None, until: dt.datetime | None, bucket: str) -> Query:
    """(dim, value, records, first, last) rows, with dim 'bucket' for each day or week; dim '' is
    the whole period."""
    where, params = _period(d, since, until)
    dims = " UNION ALL ".join(
        f"SELECT '{dim}' AS dim, {dim} AS value, n, first, last FROM r" for dim in (*DIMENSIONS, "bucket")
    )
    return (
        "WITH r AS MATERIALIZED (SELECT method, policy_version, language, region, bucket, count(*) AS n,"
        " min(created_at) AS first, max(created_at) AS last"
        f" FROM (SELECT *, {d.buckets[bucket]} AS bucket FROM consent_log{where}) AS c"
        " GROUP BY method, policy_version, language, region, bucket) "
        f"SELECT dim, value, sum(n), min(first), max(last) FROM ({dims}) AS c"
        " GROUP BY dim, value UNION ALL SELECT '', '', sum(n), min(first), max(last) FROM r",
        params,
    )


def _series(d: Dialect, since: dt.datetime | None, until: dt.datetime | None, bucket: str) -> Query:
    """('category', start, category, allowed, of) and ('visitors', start, NULL, visitors, 0) rows
    per day or week."""
    where, params = _period(d, since, until)
    allowed = d.allowed.format("choice")
    records = f"SELECT {d.buckets[bucket]} AS bucket, id, created_at, consent_id, choices FROM consent_log{where}"
    return (
        "WITH answers AS MATERIALIZED (SELECT bucket, choices, count(*) AS n"
        f" FROM ({_ranked('consent_id, bucket', records)}) AS latest GROUP BY bucket, choices) "
        f"SELECT 'category', bucket, choice.key, sum({allowed} * n), sum(n)"
        f" FROM answers, {d.each_choice.format('answers.choices')} AS choice GROUP BY bucket, choice.key"
        " UNION ALL SELECT 'visitors', bucket, NULL, sum(n), 0 FROM answers GROUP BY bucket",
        params,
    )


def _withdrawals(d: Dialect, since: dt.datetime | None, until: dt.datetime | None, bucket: str) -> Query:
    # The previous record may be older than the period: it is what the visitor withdrew from.
    where, params = _period(d, None, until)
    in_period = ""
    if since is not None:
        params.append(d.param_time(since))
        in_period = f" AND created_at >= {d.mark(len(params))}"
    now, was = d.each_choice.format("changes.choices"), d.each_choice.format("changes.previous")
    return (
        "WITH h AS (SELECT created_at, choices,"
        " lag(choices) OVER (PARTITION BY consent_id ORDER BY created_at, id) AS previous"
        f" FROM consent_log{where}), "
        "changes AS (SELECT previous, choices, count(*) AS n FROM h"
        f" WHERE previous IS NOT NULL AND previous <> choices{in_period} GROUP BY previous, choices) "
        f"SELECT coalesce(sum(n), 0) FROM changes WHERE EXISTS (SELECT 1 FROM {now} AS now, {was} AS was"
        f" WHERE now.key = was.key AND {d.allowed.format('was')} = 1 AND {d.allowed.format('now')} = 0)",
        params,
    )


QUERIES = {
    "span": span,
    "scans": _scans,
    "standing": _standing,
    "records": _records,
    "series": _series,
    "withdrawals": _withdrawals,
}


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
