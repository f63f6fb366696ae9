"""`consentmw log report`: its figures against a log written through the consent API, and against
the definitions (docs/cli.md) computed record by record in Python from `log export`'s reading."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import random
import re
import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest

from consentmw.cli import main
from consentmw.core.store import ConsentRecord, open_store
from consentmw.core.store import report
from tests.conftest import client_for, make_app
from tests.store_support import T0, log_url, make_record, postgres_url, sqlite_url  # noqa: F401
from tests.test_pages import kakao_enterprise_with

DAY = dt.timedelta(days=1)


async def history(url: str) -> list[ConsentRecord]:
    store = open_store(url)
    try:
        return [r async for r in store.history()]  # type: ignore[attr-defined]
    finally:
        await store.close()


async def build(url: str, **options: Any) -> dict[str, Any]:
    store = open_store(url)
    try:
        figures = await report.build(store, now=T0, **options)
    finally:
        await store.close()
    jsonschema.validate(figures, report.schema())
    return figures


def rate(allowed: int, of: int) -> dict[str, Any]:
    return {"allowed": allowed, "of": of, "rate": round(allowed / of, 6) if of else None}


# -- a log written through the API -----------------------------------------------------------------


async def choose(*posts: tuple[Any, str, dict[str, Any]]) -> str:
    """One visitor (one browser, one cookie jar) posting choices in turn, each to a site (an app);
    their consent id."""
    cookies = httpx.Cookies()
    for app, path, post in posts:
        async with client_for(app) as client:
            client.cookies = cookies
            response = await client.post(path, **post)
            assert response.status_code in (200, 303), response.text
            cookies = client.cookies
            state = (await client.get("/_consent")).json()
    return state["id"]


def banner(app: Any, accept: str) -> tuple[Any, str, dict[str, Any]]:
    return app, "/_consent", {"json": {"accept": accept, "method": "banner"}}


async def test_figures_of_a_log_written_through_the_consent_api(log_url: str) -> None:  # noqa: F811
    store = open_store(log_url)
    v1 = make_app(policy=kakao_enterprise_with(version="1"), store=store)
    v2 = make_app(policy=kakao_enterprise_with(version="2"), store=store)
    # Allowed everything, then took analytics back in the settings dialog: a withdrawal.
    a = await choose(banner(v1, "all"), (v1, "/_consent", {"json": {"choices": {"personalisation": True}, "method": "settings"}}))
    # Refused everything in the form a browser without JavaScript posts.
    b = await choose((v1, "/_consent", {"data": {"accept": "necessary"}}))
    # Allowed everything, then opted out of analytics on the opt-out page: a withdrawal.
    c = await choose(banner(v1, "all"), (v1, "/_consent/opt-out", {"data": {"lang": "en"}}))
    # Refused under version 1, allowed everything under version 2: no withdrawal.
    f = await choose(banner(v1, "necessary"), banner(v2, "all"))
    d = await choose(banner(v2, "all"))
    e = await choose((v2, "/_consent", {"json": {"choices": {"analytics": True}}}))
    # What `consentmw scan` writes: left out of every figure but its own.
    await store.record(make_record("scanner", at=dt.datetime.now(dt.UTC), scan=True, policy_version="2"))
    await store.close()

    logged = await history(log_url)
    assert len(logged) == 10 and {a, b, c, d, e, f} == {r.consent_id for r in logged if not r.scan}
    figures = await build(log_url)
    assert figures == oracle(logged, now=T0)  # the definitions, record by record
    assert figures["totals"] == {
        "records": 9, "visitors": 6, "decided_visitors": 3, "withdrawals": 2, "scans_left_out": 1,
    }  # fmt: skip
    assert figures["current_policies"] == [{"policy_id": "kakao-enterprise", "policy_version": "2"}]
    # Standing choices: a {p}, b {}, c {p}, then under version 2 f {p, an}, d {p, an}, e {an}.
    assert figures["categories"] == {"analytics": rate(3, 6), "necessary": rate(6, 6), "personalisation": rate(4, 6)}
    method = {e["value"]: (e["records"], e["visitors"]) for e in figures["breakdowns"]["method"]}
    assert method == {"banner": (5, 2), "settings": (1, 1), "form": (1, 1), "opt-out": (1, 1), "api": (1, 1)}
    version = {
        e["value"]: (e["records"], e["visitors"], e["categories"]["analytics"]["rate"])
        for e in figures["breakdowns"]["policy_version"]
    }
    assert version == {"1": (6, 3, 0.0), "2": (3, 3, 1.0)}
    [today] = figures["series"]
    assert (today["records"], today["visitors"], today["categories"]["analytics"]) == (9, 6, rate(3, 6))


# -- the definitions, record by record -------------------------------------------------------------


def _rates(records: list[ConsentRecord]) -> dict[str, dict[str, Any]]:
    allowed: Counter[str] = Counter()
    named: Counter[str] = Counter()
    for r in records:
        for category, yes in r.choices.items():
            named[category] += 1
            allowed[category] += yes
    return {c: rate(allowed[c], named[c]) for c in sorted(named)}


def _newest(records: list[ConsentRecord], key: Any) -> dict[Any, ConsentRecord]:
    newest: dict[Any, ConsentRecord] = {}
    for r in sorted(records, key=lambda r: (r.created_at, r.id)):
        newest[key(r)] = r
    return newest


def oracle(
    records: list[ConsentRecord],
    *,
    now: dt.datetime,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    bucket: str | None = None,
) -> dict[str, Any]:
    """What docs/cli.md says each figure is, computed from the records one by one."""

    def within(r: ConsentRecord) -> bool:
        return (since is None or r.created_at >= since) and (until is None or r.created_at < until)

    visits = [r for r in records if within(r) and not r.scan]
    latest = _newest(visits, lambda r: r.consent_id)
    in_force = {pid: r.policy_version for pid, r in _newest(visits, lambda r: r.policy_id).items()}
    withdrawals = 0
    earlier = [r for r in records if not r.scan and (until is None or r.created_at < until)]
    for visitor in {r.consent_id for r in earlier}:
        mine = sorted((r for r in earlier if r.consent_id == visitor), key=lambda r: (r.created_at, r.id))
        for before, after in zip(mine, mine[1:]):
            if within(after) and any(yes and after.choices.get(c) is False for c, yes in before.choices.items()):
                withdrawals += 1
    first = min((r.created_at for r in visits), default=None)
    last = max((r.created_at for r in visits), default=None)
    if bucket is None:
        bucket = "day" if first is None or (last - first).days <= report.DAYS_DRAWN_BY_DAY else "week"

    def start(r: ConsentRecord) -> dt.date:
        day = r.created_at.date()
        return day if bucket == "day" else day - dt.timedelta(days=day.weekday())

    series = []
    if visits:
        starts = {start(r) for r in visits}
        step = dt.timedelta(days=1 if bucket == "day" else 7)
        for n in range((max(starts) - min(starts)) // step + 1):
            day = min(starts) + n * step
            these = [r for r in visits if start(r) == day]
            standing = _newest(these, lambda r: r.consent_id)
            series.append(
                {"start": day.isoformat(), "records": len(these), "visitors": len(standing), "categories": _rates(list(standing.values()))}
            )
    breakdowns = {}
    for dim in report.DIMENSIONS:
        entries = []
        for value in {getattr(r, dim) for r in visits}:
            these = [r for r in visits if getattr(r, dim) == value]
            standing = [r for r in latest.values() if getattr(r, dim) == value]
            entries.append(
                {
                    "value": value,
                    "records": len(these),
                    "visitors": len(standing),
                    "first_record": min(r.created_at for r in these).isoformat(),
                    "last_record": max(r.created_at for r in these).isoformat(),
                    "categories": _rates(standing),
                }
            )
        breakdowns[dim] = sorted(entries, key=lambda e: (-e["visitors"], -e["records"], e["value"]))
    return {
        "schema_version": 1,
        "generated_at": now.isoformat(),
        "period": {
            "since": since.astimezone(dt.UTC).isoformat() if since else None,
            "until": until.astimezone(dt.UTC).isoformat() if until else None,
            "first_record": first.isoformat() if first else None,
            "last_record": last.isoformat() if last else None,
            "bucket": bucket,
        },
        "totals": {
            "records": len(visits),
            "visitors": len(latest),
            "decided_visitors": sum(r.policy_version == in_force[r.policy_id] for r in latest.values()),
            "withdrawals": withdrawals,
            "scans_left_out": sum(r.scan for r in records if within(r)),
        },
        "current_policies": [
            {"policy_id": pid, "policy_version": version}
            for pid, version in sorted(in_force.items(), key=lambda p: (p[0] is not None, p[0] or ""))
        ],
        "categories": _rates(list(latest.values())),
        "series": series,
        "breakdowns": breakdowns,
    }


def random_log(seed: int, count: int = 300, visitors: int = 70, days: int = 21) -> list[ConsentRecord]:
    """Visitors over three weeks who come back and change their minds, under two policies, one of
    which changes version; a few scan records, some older records without the newer fields."""
    rng = random.Random(seed)
    ids = [f"visitor-{seed}-{i}" for i in range(visitors)]
    records = []
    for _ in range(count):
        at = T0 + dt.timedelta(seconds=rng.randrange(days * 86400))
        # Two records in the same microsecond happen: the id breaks the tie.
        if records and rng.random() < 0.05:
            at = records[-1].created_at
        after_update = at >= T0 + 9 * DAY
        policy_id = rng.choice(["shop", "shop", "shop", None])
        categories = ["necessary", "analytics", "advertising"] + (["personalisation"] if after_update else [])
        records.append(
            make_record(
                rng.choice(ids),
                at=at,
                policy_id=policy_id,
                policy_version=("2" if after_update and rng.random() < 0.9 else "1"),
                choices={c: c == "necessary" or rng.random() < 0.5 for c in categories},
                method=rng.choice(["banner", "banner", "settings", "form", "opt-out", "gpc", "api"]),
                region=rng.choice(["", "KR-11", "US-CA", "DE"]),
                mode=rng.choice(["", "opt-in", "opt-out"]),
                language=rng.choice(["", "ko", "en", "de"]),
                scan=rng.random() < 0.05,
            )
        )
    return records


async def write(url: str, records: list[ConsentRecord]) -> None:
    store = open_store(url)
    try:
        # Concurrent writes: the stores put them into shared transactions.
        await asyncio.gather(*map(store.record, records))
    finally:
        await store.close()


@pytest.mark.parametrize("seed", [1, 2])
async def test_every_figure_follows_its_definition(log_url: str, seed: int) -> None:  # noqa: F811
    await write(log_url, random_log(seed))
    logged = await history(log_url)
    assert await build(log_url) == oracle(logged, now=T0)
    # A period that starts after visitors' earlier records: they still count against withdrawals.
    window = {"since": T0 + 5 * DAY + dt.timedelta(hours=7), "until": T0 + 16 * DAY}
    assert await build(log_url, **window) == oracle(logged, now=T0, **window)
    assert await build(log_url, bucket="week", **window) == oracle(logged, now=T0, bucket="week", **window)


async def test_a_long_period_is_drawn_per_week_starting_on_monday(sqlite_url: str) -> None:  # noqa: F811
    # T0 is Sunday 1 March 2026.
    await write(sqlite_url, [make_record("a", at=T0), make_record("b", at=T0 + DAY), make_record("c", at=T0 + 100 * DAY)])
    figures = await build(sqlite_url)
    assert figures["period"]["bucket"] == "week"
    starts = [entry["start"] for entry in figures["series"]]
    assert starts[:2] == ["2026-02-23", "2026-03-02"] and starts[-1] == "2026-06-08" and len(starts) == 16
    assert [e["visitors"] for e in figures["series"]][:3] == [1, 1, 0]
    short = await build(sqlite_url, until=T0 + 50 * DAY)
    assert short["period"]["bucket"] == "day" and [e["start"] for e in short["series"]] == ["2026-03-01", "2026-03-02"]


async def test_an_empty_period(log_url: str) -> None:  # noqa: F811
    await write(log_url, [make_record("a", at=T0), make_record("scanner", at=T0 + DAY, scan=True)])
    figures = await build(log_url, since=T0 + DAY)
    assert figures["totals"] == {"records": 0, "visitors": 0, "decided_visitors": 0, "withdrawals": 0, "scans_left_out": 1}
    assert (figures["categories"], figures["series"], figures["current_policies"]) == ({}, [], [])
    assert figures["breakdowns"] == {dim: [] for dim in report.DIMENSIONS}


# -- the running totals of a SQLite log ------------------------------------------------------------


def _path(url: str) -> str:
    return url.removeprefix("sqlite:///")


def _without_totals(url: str) -> None:
    """The log as a consentmw from before the running totals left it."""
    conn = sqlite3.connect(_path(url))
    with conn:
        for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'consent_report%'").fetchall():
            conn.execute(f"DROP TRIGGER {name}")
        conn.execute("DROP TABLE consent_report")
    conn.close()


def _tables(url: str) -> set[str]:
    conn = sqlite3.connect(_path(url))
    try:
        return {name for (name,) in conn.execute("SELECT name FROM sqlite_master")}
    finally:
        conn.close()


@pytest.mark.parametrize("seed", [3, 4])
async def test_the_totals_stay_exact_through_prunes_deletes_and_late_records(sqlite_url: str, seed: int) -> None:  # noqa: F811
    # Written concurrently: records reach the log out of time order, two at the same time now and then.
    await write(sqlite_url, random_log(seed))
    store = open_store(sqlite_url)
    assert await store.prune(T0 + 6 * DAY + dt.timedelta(hours=5)) > 0  # type: ignore[attr-defined]
    await store.close()
    conn = sqlite3.connect(_path(sqlite_url))
    with conn:  # by hand, from the middle of visitors' histories
        assert conn.execute("DELETE FROM consent_log WHERE id % 7 = 0").rowcount > 0
    conn.close()
    # Late: records older than the newest of their visitor, of their day and of their week.
    rng = random.Random(seed)
    visitors = sorted({r.consent_id for r in await history(sqlite_url)})
    late = [
        make_record(rng.choice(visitors), at=T0 + dt.timedelta(seconds=rng.randrange(7 * 86400, 21 * 86400)),
                    choices={"necessary": True, "analytics": rng.random() < 0.5}, method="settings")
        for _ in range(40)
    ]  # fmt: skip
    await write(sqlite_url, late)
    logged = await history(sqlite_url)
    assert await build(sqlite_url) == oracle(logged, now=T0)
    assert await build(sqlite_url, bucket="week") == oracle(logged, now=T0, bucket="week")
    # `log stats --latest` of the whole log reads the same totals; with a period it reads the records.
    store = open_store(sqlite_url)
    try:
        fast = (await store.stats(latest=True)).as_dict()  # type: ignore[attr-defined]
        counted = (await store.stats(latest=True, since=T0 - 365 * DAY)).as_dict()  # type: ignore[attr-defined]
    finally:
        await store.close()
    assert fast == counted and fast["visitors"] == len({r.consent_id for r in logged if not r.scan})


async def test_a_log_from_before_the_totals_gets_them_counted_from_its_records(sqlite_url: str) -> None:  # noqa: F811
    await write(sqlite_url, random_log(5))
    _without_totals(sqlite_url)
    logged = await history(sqlite_url)
    # A reader leaves the log as it is: the figures are counted from the records.
    assert await build(sqlite_url) == oracle(logged, now=T0)
    assert "consent_report" not in _tables(sqlite_url)
    # The first writer counts the totals from the log, and the triggers keep them from then on.
    writer = open_store(sqlite_url)
    await writer.record(make_record(logged[-1].consent_id, at=T0 + 22 * DAY, choices={"necessary": True, "analytics": False}))
    await writer.close()
    assert {"consent_report", "consent_log_visitor"} <= _tables(sqlite_url)
    assert "consent_log_consent_id" not in _tables(sqlite_url)  # the visitor index serves its look-ups
    logged = await history(sqlite_url)
    assert await build(sqlite_url) == oracle(logged, now=T0)
    assert await build(sqlite_url, bucket="week") == oracle(logged, now=T0, bucket="week")


def _moments(rng: random.Random, logged: list[ConsentRecord]) -> list[dt.datetime | None]:
    """Ends of periods as an operator may give them: a date (midnight UTC), a time, the time of a
    record (since takes it, until leaves it out), a microsecond either side of midnight, in other
    time zones, or none."""
    record = rng.choice(logged).created_at
    midnight = dt.datetime.combine(record.date(), dt.time(), dt.UTC) + rng.choice([0, 1]) * DAY
    zone = dt.timezone(dt.timedelta(hours=rng.choice([9, -5, 14])))
    return [
        None,
        midnight,
        midnight + rng.choice([-1, 1]) * dt.timedelta(microseconds=1),
        record,
        record.astimezone(zone),
        (record + dt.timedelta(seconds=rng.randrange(-86400, 86400))).astimezone(zone),
        T0 + dt.timedelta(seconds=rng.randrange(-86400, 23 * 86400)),
    ]


async def latest_stats(url: str, since: dt.datetime | None, until: dt.datetime | None) -> dict[str, Any]:
    store = open_store(url)
    try:
        return (await store.stats(since=since, until=until, latest=True)).as_dict()  # type: ignore[attr-defined]
    finally:
        await store.close()


def stats_of(figures: dict[str, Any]) -> dict[str, Any]:
    """What `log stats --latest` shows of a period, from the report's figures of the same period."""
    methods = {e["value"]: e["visitors"] for e in figures["breakdowns"]["method"] if e["visitors"]}
    return {
        "records": figures["totals"]["visitors"],
        "visitors": figures["totals"]["visitors"],
        "categories": {c: {"allowed": r["allowed"], "refused": r["of"] - r["allowed"]} for c, r in figures["categories"].items()},
        "methods": dict(sorted(methods.items())),
        "scans_left_out": figures["totals"]["scans_left_out"],
    }


async def test_stats_of_each_visitors_latest_choice_in_a_period(log_url: str) -> None:  # noqa: F811
    await write(log_url, random_log(8, count=200, visitors=20, days=6))
    logged = await history(log_url)
    for since, until in [(None, None), (T0 + dt.timedelta(hours=30), T0 + 4 * DAY), (T0 + 2 * DAY, None), (None, T0 + dt.timedelta(hours=50))]:
        assert await latest_stats(log_url, since, until) == stats_of(oracle(logged, now=T0, since=since, until=until)), (since, until)


@pytest.mark.parametrize("seed", [6, 7])
async def test_periods_read_from_the_totals_follow_the_definitions(sqlite_url: str, seed: int) -> None:  # noqa: F811
    # Dense: visitors come back the same day and the next, so their records straddle the ends.
    records = random_log(seed, count=260, visitors=25, days=8) + random_log(seed + 100, count=60)
    await write(sqlite_url, records)
    logged = await history(sqlite_url)
    assert "consent_report" in _tables(sqlite_url)
    rng = random.Random(seed)
    checked = 0
    while checked < 24:
        since, until = rng.choice(_moments(rng, logged)), rng.choice(_moments(rng, logged))
        if since is not None and until is not None and since >= until:
            continue
        for bucket in ("day", "week"):
            period = {"since": since, "until": until, "bucket": bucket}
            assert await build(sqlite_url, **period) == oracle(logged, now=T0, **period), period
        assert await latest_stats(sqlite_url, since, until) == stats_of(oracle(logged, now=T0, since=since, until=until))
        checked += 1
    # Within one day, and a day exactly.
    day = {"since": T0 + 2 * DAY + dt.timedelta(hours=1), "until": T0 + 2 * DAY + dt.timedelta(hours=9)}
    assert await build(sqlite_url, **day) == oracle(logged, now=T0, **day)
    midnight = dt.datetime.combine((T0 + 3 * DAY).date(), dt.time(), dt.UTC)
    day = {"since": midnight, "until": midnight + DAY}
    assert await build(sqlite_url, **day) == oracle(logged, now=T0, **day)


async def test_records_dated_on_the_last_day_python_knows_are_counted(log_url: str) -> None:  # noqa: F811
    end = dt.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=dt.UTC)
    allowed, refused = {"necessary": True, "analytics": True}, {"necessary": True, "analytics": False}
    records = [
        make_record("a", at=end - dt.timedelta(hours=2), choices=allowed),
        make_record("a", at=end, choices=refused),
        make_record("a", at=end - dt.timedelta(hours=1), choices=allowed),  # late, between the two
        make_record("b", at=end - 3 * DAY, choices=allowed),  # Monday of the last week
        make_record("b", at=end - DAY, choices=refused),
        make_record("c", at=end - 12 * DAY, choices=allowed),
        make_record("c", at=end - 5 * DAY, choices=refused),  # in the week before
        make_record("scanner", at=end, scan=True),
    ]
    for record in records:
        await write(log_url, [record])
    logged = await history(log_url)
    figures = await build(log_url, bucket="week")
    assert figures == oracle(logged, now=T0, bucket="week")
    assert figures["totals"]["withdrawals"] == 3 and figures["series"][-1]["start"] == "9999-12-27"
    assert figures["series"][-1] == {"start": "9999-12-27", "records": 5, "visitors": 2, "categories": {
        "analytics": rate(0, 2), "necessary": rate(2, 2)}}  # fmt: skip
    for period in ({"since": end - dt.timedelta(hours=3)}, {"since": end - 2 * DAY, "bucket": "day"}, {"until": end}):
        assert await build(log_url, **period) == oracle(logged, now=T0, **period), period
        assert await latest_stats(log_url, period.get("since"), period.get("until")) == stats_of(oracle(logged, now=T0, **period))
    store = open_store(log_url)
    try:
        assert (await store.stats(latest=True)).as_dict()["visitors"] == 3  # type: ignore[attr-defined]
    finally:
        await store.close()


# -- the command -----------------------------------------------------------------------------------


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    status = main(list(args))
    out, err = capsys.readouterr()
    return status, out, err


def test_log_report_writes_the_page_and_the_json(sqlite_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    yes = {"necessary": True, "analytics": True}
    no = {"necessary": True, "analytics": False}
    asyncio.run(
        write(
            sqlite_url,
            [
                make_record("a", at=T0, choices=yes, language="ko", region="KR-11"),
                make_record("b", at=T0 + DAY, choices=yes, method="form", language="en", region="US-CA"),
                make_record("c", at=T0 + DAY, choices=yes),
                make_record("d", at=T0 + 2 * DAY, choices=no, method="opt-out"),
                make_record("scanner", at=T0, scan=True),
            ],
        )
    )
    page, data = tmp_path / "report.html", tmp_path / "report.json"
    status, out, err = cli(capsys, "log", "report", "--store", sqlite_url, "--html", str(page), "--json", str(data))
    assert (status, err) == (0, "")
    assert out.startswith("4 record(s) from 4 visitor(s) (1 scan record(s) left out)")
    figures = json.loads(data.read_text(encoding="utf-8"))
    jsonschema.validate(figures, report.schema())
    assert figures["categories"]["analytics"] == rate(3, 4)
    html = page.read_text(encoding="utf-8")
    assert "<b>analytics</b> allowed by <b>75.0 %</b> of visitors" in html
    assert "What visitors chose, 1 – 3 Mar 2026" in html
    for shown in ("No-JavaScript form", "Opt-out page", "KR-11", "US-CA", "en", "ko", "not recorded"):
        assert f"<td>{shown}</td>" in html
    # Nothing to fetch: no script at all, no address to load anything from.
    assert "<script" not in html and "src=" not in html and "href=" not in html and "url(" not in html


def test_log_report_since_until_and_by(sqlite_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    asyncio.run(write(sqlite_url, [make_record(f"v{i}", at=T0 + i * DAY) for i in range(10)]))
    data = tmp_path / "r.json"
    args = ("log", "report", "--store", sqlite_url, "--json", str(data), "--since", "2026-03-03", "--until", "2026-03-06T12:00:00+09:00")
    assert cli(capsys, *args, "--by", "week")[0] == 0
    figures = json.loads(data.read_text(encoding="utf-8"))
    assert figures["period"]["since"] == "2026-03-03T00:00:00+00:00" and figures["period"]["until"] == "2026-03-06T03:00:00+00:00"
    assert figures["totals"]["records"] == 3 and figures["period"]["bucket"] == "week"


def test_log_report_of_a_period_given_in_local_times(sqlite_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    # Seoul's 09:30 on 3 March is 00:30 UTC: the whole UTC days start on the 4th; the period ends
    # at 18:00 UTC on the 6th, mid-way through a day in UTC and in New York.
    asyncio.run(write(sqlite_url, random_log(9, count=240, visitors=20, days=8)))
    logged = asyncio.run(history(sqlite_url))
    data = tmp_path / "r.json"
    since, until = "2026-03-03T09:30:00+09:00", "2026-03-06T13:00:00-05:00"
    assert cli(capsys, "log", "report", "--store", sqlite_url, "--json", str(data), "--since", since, "--until", until)[0] == 0
    figures = json.loads(data.read_text(encoding="utf-8"))
    expected = oracle(logged, now=T0, since=dt.datetime.fromisoformat(since), until=dt.datetime.fromisoformat(until))
    assert figures["period"]["since"] == "2026-03-03T00:30:00+00:00" and figures["totals"]["visitors"] > 0
    assert {**figures, "generated_at": None} == {**expected, "generated_at": None}


@pytest.mark.parametrize(
    ("args", "status", "message"),
    [
        ([], 2, "name a file to write: --html FILE, --json FILE or both"),
        (["--html", "/nonexistent-dir/r.html"], 1, "cannot write the report"),
        (["--json", "x.json", "--since", "yesterday"], 2, "'yesterday' is not a date"),
        (["--json", "x.json", "--by", "month"], 2, "invalid choice: 'month'"),
    ],
)
def test_log_report_names_what_is_wrong(
    sqlite_url: str, args: list[str], status: int, message: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path  # noqa: F811
) -> None:
    monkeypatch.chdir(tmp_path)
    asyncio.run(write(sqlite_url, [make_record()]))
    try:
        got = cli(capsys, "log", "report", "--store", sqlite_url, *args)
    except SystemExit as exit_:
        got = (exit_.code, *capsys.readouterr())  # type: ignore[assignment]
    assert got[0] == status and message in got[2] and "Traceback" not in got[2]
    assert list(tmp_path.glob("*.json")) == [] and list(tmp_path.glob("*.html")) == []


def test_log_report_of_a_memory_log_says_it_cannot(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    status, _, err = cli(capsys, "log", "report", "--store", "memory://", "--json", str(tmp_path / "r.json"))
    assert status == 1 and "cannot report: the report reads a SQLite or PostgreSQL log" in err


def test_log_report_reads_a_log_from_before_regions(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "consent.db"
    log.write_bytes((Path(__file__).parent / "data" / "before-regions" / "log.sqlite3").read_bytes())
    data = tmp_path / "r.json"
    assert cli(capsys, "log", "report", "--store", f"sqlite:///{log}", "--json", str(data))[0] == 0
    figures = json.loads(data.read_text(encoding="utf-8"))
    assert figures["totals"] == {"records": 4, "visitors": 3, "decided_visitors": 2, "withdrawals": 1, "scans_left_out": 0}
    assert [e["value"] for e in figures["breakdowns"]["region"]] == [""]


def test_values_from_the_log_are_text_on_the_page(sqlite_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    # Nothing checks a method or a policy version on its way into the log from an import.
    hostile = '<img src=x onerror="alert(1)">'
    asyncio.run(write(sqlite_url, [make_record(method=hostile, policy_version=hostile, choices={"<b>x</b>": False, "y": True})]))
    page = tmp_path / "r.html"
    assert cli(capsys, "log", "report", "--store", sqlite_url, "--html", str(page))[0] == 0
    html = page.read_text(encoding="utf-8")
    assert "<img" not in html and "<b>x</b>" not in html
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in html


def test_the_json_in_the_docs_follows_the_schema() -> None:
    page = (Path(__file__).parents[1] / "docs" / "cli.md").read_text(encoding="utf-8")
    [example] = [block for block in re.findall(r"^```json\n(.*?)^```", page, re.M | re.S) if "schema_version" in block]
    jsonschema.validate(json.loads(example), report.schema())
