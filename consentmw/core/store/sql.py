from __future__ import annotations

import datetime as dt
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

from consentmw.core.store.base import ConsentRecord, LogStats, build_stats

# What the SQL stores share: the columns of the log, the filters of the read side, the stats queries.

COLUMNS = (
    "id", "created_at", "consent_id", "policy_id", "policy_version", "choices", "method", "path", "ip", "user_agent",
    "region", "mode", "language", "scan",
)
# Added to logs made before them: (column, SQLite type, PostgreSQL type), each with a default.
ADDED_COLUMNS = (
    ("region", "TEXT NOT NULL DEFAULT ''", "text NOT NULL DEFAULT ''"),
    ("mode", "TEXT NOT NULL DEFAULT ''", "text NOT NULL DEFAULT ''"),
    ("language", "TEXT NOT NULL DEFAULT ''", "text NOT NULL DEFAULT ''"),
    ("scan", "INTEGER NOT NULL DEFAULT 0", "boolean NOT NULL DEFAULT false"),
)
INSERT_COLUMNS = COLUMNS[1:]
PAGE = 1000  # rows per read while exporting
SELECT = f"SELECT {', '.join(COLUMNS)} FROM consent_log"


def row_values(record: ConsentRecord, created_at: Any) -> tuple[Any, ...]:
    """A record as the values of INSERT_COLUMNS, its time already in the database's form."""
    return (
        created_at,
        record.consent_id,
        record.policy_id,
        record.policy_version,
        json.dumps(record.choices, separators=(",", ":")),
        record.method,
        record.path,
        record.ip,
        record.user_agent,
        record.region,
        record.mode,
        record.language,
        record.scan,
    )


def from_row(row: Sequence[Any], created_at: Callable[[Any], dt.datetime]) -> ConsentRecord:
    """A row of COLUMNS as a record; `created_at` reads the database's form of the time."""
    id_, stored_at, consent_id, policy_id, policy_version, choices, method, path, ip, user_agent, region, mode, language, scan = row
    return ConsentRecord(
        consent_id=consent_id,
        policy_id=policy_id,
        policy_version=policy_version,
        choices=json.loads(choices),
        method=method,
        path=path,
        ip=ip,
        user_agent=user_agent,
        created_at=created_at(stored_at),
        id=id_,
        region=region,
        mode=mode,
        language=language,
        scan=bool(scan),
    )


def where(
    placeholder: Callable[[int], str],
    convert: Callable[[dt.datetime], Any],
    *,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    consent_id: str | None = None,
    after: tuple[Any, int] | None = None,
    scan: bool | None = None,
) -> tuple[str, list[Any]]:
    """A WHERE clause (or '') and its parameters; `after` continues a listing past (created_at, id)."""
    conditions: list[str] = []
    params: list[Any] = []

    def add(condition: str, *values: Any) -> None:
        marks = [placeholder(len(params) + i + 1) for i in range(len(values))]
        conditions.append(condition.format(*marks))
        params.extend(values)

    if since is not None:
        add("created_at >= {}", convert(since))
    if until is not None:
        add("created_at < {}", convert(until))
    if consent_id is not None:
        add("consent_id = {}", consent_id)
    if after is not None:
        add("(created_at, id) > ({}, {})", *after)
    if scan is not None:
        add("scan = {}", scan)
    return (" WHERE " + " AND ".join(conditions) if conditions else ""), params


def selection(filter_sql: str, latest: bool) -> str:
    # The records of a period, or with `latest` each visitor's last record in it (their standing choice).
    if not latest:
        return f"SELECT * FROM consent_log{filter_sql}"
    ranked = (
        "SELECT *, row_number() OVER (PARTITION BY consent_id ORDER BY created_at DESC, id DESC) AS newest"
        f" FROM consent_log{filter_sql}"
    )
    return f"SELECT * FROM ({ranked}) AS ranked WHERE newest = 1"


def stats_query(filter_sql: str, latest: bool, expand: str, allowed: str) -> str:
    """`log stats` in one pass over the period: (kind, value, allowed, count) rows, kind one of
    'records', 'visitors' (without `latest`: a second pass, for the distinct consent ids),
    'choice' (category, allowed 1 or 0, count) and 'method' (method, NULL, count).

    The selection is folded by (method, choices) first: a log has a handful of distinct answers,
    so the categories are read from those rows, not from every record. `expand` turns `f.choices`
    into rows named `choice` with a `key`; `allowed` reads one as a boolean."""
    visitors = (
        "SELECT 'visitors', NULL, NULL, sum(n) FROM f" if latest else f"SELECT 'visitors', NULL, NULL, count(DISTINCT consent_id) FROM consent_log{filter_sql}"
    )
    # The categories first: PostgreSQL types a UNION's columns from the left, and only they have all three.
    return (
        f"WITH f AS MATERIALIZED (SELECT method, choices, count(*) AS n FROM ({selection(filter_sql, latest)}) AS sel GROUP BY method, choices) "
        f"SELECT 'choice', choice.key, CASE WHEN {allowed} THEN 1 ELSE 0 END, sum(n) FROM f, {expand} AS choice GROUP BY 2, 3"
        " UNION ALL SELECT 'records', NULL, NULL, sum(n) FROM f"
        " UNION ALL SELECT 'method', method, NULL, sum(n) FROM f GROUP BY 2"
        f" UNION ALL {visitors}"
    )


def read_stats(rows: Sequence[Sequence[Any]], scans: int) -> LogStats:
    """The LogStats of stats_query's rows."""
    counts: dict[str, int] = {"records": 0, "visitors": 0}
    choices, methods = [], []
    for kind, value, allowed, n in rows:
        if kind == "choice":
            choices.append((value, allowed, int(n)))
        elif kind == "method":
            methods.append((value, int(n)))
        else:
            counts[kind] = int(n or 0)
    return build_stats(counts["records"], counts["visitors"], choices, methods, scans)


async def page_through(
    fetch: Callable[[str, list[Any]], Awaitable[Sequence[Sequence[Any]]]],
    placeholder: Callable[[int], str],
    convert: Callable[[dt.datetime], Any],
    from_row: Callable[[Sequence[Any]], ConsentRecord],
    **filters: Any,
) -> AsyncIterator[ConsentRecord]:
    # Keyset pages in (created_at, id) order: an export of millions of records holds one page at a
    # time and no transaction open against a live log.
    after: tuple[Any, int] | None = None
    while True:
        filter_sql, params = where(placeholder, convert, after=after, **filters)
        rows = await fetch(f"{SELECT}{filter_sql} ORDER BY created_at, id LIMIT {PAGE}", params)
        for row in rows:
            yield from_row(row)
        if len(rows) < PAGE:
            return
        after = (rows[-1][1], rows[-1][0])
