from __future__ import annotations

import asyncio
import csv
import dataclasses
import datetime as dt
import io
import json
import re
import sqlite3
from collections import Counter
from pathlib import Path

import asyncpg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from consentmw.cli import main
from consentmw.core.store import ConsentRecord, open_store
from consentmw.core.store import cli as store_cli
from consentmw.core.store.export import _cell, _uncell, read
from tests.store_support import (  # noqa: F401
    REFUSED_BY_BOTH,
    REFUSED_BY_POSTGRES,
    T0,
    log_url,
    make_record,
    postgres_url,
    sqlite_url,
    with_query,
)

NOW = dt.datetime.now(dt.UTC)
DAY = dt.timedelta(days=1)
# What visitors control ends up in cells: none of it may run as a spreadsheet formula.
HOSTILE = [
    make_record("plain", at=T0),
    make_record("formula", at=T0 + DAY, path='=HYPERLINK("http://evil.example","x")', user_agent="+cmd|' /C calc'!A0"),
    make_record("quoted", at=T0 + 2 * DAY, path="'=already quoted", user_agent="@SUM(1)", policy_id=None),
    make_record(
        "unicode", at=T0 + 3 * DAY, path="/상품/장바구니?q=쿠키", choices={"necessary": True, "personalisation": True},
        region="KR-11", mode="opt-in", language="ko-KR",
    ),
    make_record(
        "newline", at=T0 + 4 * DAY, path="/a,b\n-c", user_agent="\tTab", method="opt-out",
        region="US-CA", mode="opt-out", language="en", scan=True,
    ),
]


def seed(url: str, records: list[ConsentRecord]) -> None:
    async def write() -> None:
        store = open_store(url)
        for record in records:
            await store.record(record)
        await store.close()

    asyncio.run(write())


def logged(url: str) -> list[ConsentRecord]:
    async def fetch() -> list[ConsentRecord]:
        store = open_store(url)
        try:
            return [r async for r in store.history()]  # type: ignore[attr-defined]
        finally:
            await store.close()

    return asyncio.run(fetch())


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    status = main(list(args))
    out, err = capsys.readouterr()
    return status, out, err


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_export_round_trips_exactly(log_url: str, fmt: str, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    seed(log_url, HOSTILE)
    status, out, err = cli(capsys, "log", "export", "--store", log_url, "--format", fmt)
    assert status == 0
    assert "5 record(s) exported" in err
    assert list(read(io.StringIO(out), fmt)) == logged(log_url)


def test_csv_export_opens_safely_in_a_spreadsheet(sqlite_url: str, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    seed(sqlite_url, HOSTILE)
    _, out, _ = cli(capsys, "log", "export", "--store", sqlite_url)
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [row["consent_id"] for row in rows] == ["plain", "formula", "quoted", "unicode", "newline"]
    assert not [cell for row in rows for cell in row.values() if cell[:1] in ("=", "+", "-", "@", "\t", "\r")]
    assert rows[1]["path"] == '\'=HYPERLINK("http://evil.example","x")'
    assert json.loads(rows[3]["choices"]) == {"necessary": True, "personalisation": True}


@given(st.text())
def test_cell_escaping_is_reversible_and_never_starts_a_formula(text: str) -> None:
    cell = _cell(text)
    assert _uncell(cell) == text
    assert cell[:1] not in ("=", "+", "-", "@", "\t", "\r")


def test_export_selects_a_period_and_writes_a_file(sqlite_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    seed(sqlite_url, HOSTILE)
    target = tmp_path / "march.jsonl"
    since, until = (T0 + DAY).date().isoformat(), (T0 + 3 * DAY).isoformat()
    status, out, _ = cli(
        capsys, "log", "export", "--store", sqlite_url, "--since", since, "--until", until, "--format", "jsonl", "-o", str(target)
    )
    assert (status, out) == (0, "")
    with target.open(encoding="utf-8") as lines:
        assert [r.consent_id for r in read(lines, "jsonl")] == ["formula", "quoted"]


def test_show_lists_one_visitors_history(sqlite_url: str, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    seed(
        sqlite_url,
        [
            make_record("visitor-7", at=T0, choices={"necessary": True, "analytics": True}, path="/pricing"),
            make_record("someone-else", at=T0),
            make_record(
                "visitor-7", at=T0 + DAY, choices={"necessary": True, "analytics": False}, method="opt-out",
                region="US-CA", mode="opt-out", language="en-US",
            ),
        ],
    )
    status, out, _ = cli(capsys, "log", "show", "visitor-7", "--store", sqlite_url)
    assert status == 0
    lines = out.splitlines()
    assert lines[0] == "consent id visitor-7: 2 record(s), oldest first (times in UTC)"
    assert "2026-03-01 12:00:00  banner  policy 1  necessary yes, analytics yes" in lines[1]
    assert "page /pricing  network 203.0.113.0  browser Firefox" in lines[2]
    assert "2026-03-02 12:00:00  opt-out  policy 1  necessary yes, analytics no" in lines[3]
    assert lines[5] == "    region US-CA  mode opt-out  language en-US" and len(lines) == 6
    assert "someone-else" not in out
    status, out, _ = cli(capsys, "log", "show", "visitor-7", "--store", sqlite_url, "--format", "jsonl")
    assert [json.loads(line)["method"] for line in out.splitlines()] == ["banner", "opt-out"]


def test_show_an_unknown_consent_id_fails(sqlite_url: str, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    seed(sqlite_url, [make_record("known")])
    status, out, err = cli(capsys, "log", "show", "unknown", "--store", sqlite_url)
    assert (status, out) == (1, "")
    assert "no record of consent id 'unknown'" in err


def test_prune_keeps_the_retention_period(log_url: str, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    seed(log_url, [make_record("old", at=NOW - 400 * DAY), make_record("edge", at=NOW - 364 * DAY), make_record("new", at=NOW)])
    status, out, _ = cli(capsys, "log", "prune", "--older-than", "365", "--dry-run", "--store", log_url)
    assert status == 0 and out.startswith("1 record(s) older than") and "would be deleted" in out
    assert len(logged(log_url)) == 3
    status, out, _ = cli(capsys, "log", "prune", "--older-than", "365", "--store", log_url)
    assert status == 0 and out.startswith("1 record(s) older than") and "deleted" in out
    assert [r.consent_id for r in logged(log_url)] == ["edge", "new"]


def test_stats_per_category_and_choice(log_url: str, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    yes, no = {"necessary": True, "analytics": True}, {"necessary": True, "analytics": False}
    seed(
        log_url,
        [
            make_record("a", at=T0, choices=yes),
            make_record("a", at=T0 + DAY, choices=no, method="settings"),
            make_record("b", at=T0 + DAY, choices=no),
            make_record("c", at=T0 + 60 * DAY, choices=yes),
        ],
    )
    status, out, _ = cli(capsys, "log", "stats", "--store", log_url, "--until", "2026-04-01")
    assert status == 0
    lines = out.splitlines()
    assert lines[0] == "from the first record to before 2026-04-01 00:00 (UTC), every choice"
    assert lines[1] == "3 record(s) from 2 visitor(s)"
    assert lines[3].split() == ["analytics", "1", "2", "33.3"]
    assert lines[4].split() == ["necessary", "3", "0", "100.0"]
    assert "method banner: 2" in lines and "method settings: 1" in lines
    status, out, _ = cli(capsys, "log", "stats", "--store", log_url, "--latest", "--format", "json")
    assert json.loads(out)["categories"]["analytics"] == {"allowed": 1, "refused": 2}


def test_import_moves_a_log_to_another_store(
    sqlite_url: str, log_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]  # noqa: F811
) -> None:
    # Growing from one server on SQLite to several on PostgreSQL: export, import, same records.
    source = f"sqlite:///{tmp_path / 'source.db'}"
    seed(source, HOSTILE)
    dump = tmp_path / "log.csv"
    assert cli(capsys, "log", "export", "--store", source, "-o", str(dump))[0] == 0
    status, out, _ = cli(capsys, "log", "import", str(dump), "--store", log_url)
    assert status == 0 and out.startswith("5 record(s) imported")
    moved = [dataclasses.replace(r, id=None) for r in logged(log_url)]
    assert moved == [dataclasses.replace(r, id=None) for r in logged(source)]


def test_import_refuses_a_file_that_is_not_an_export(sqlite_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(make_record().as_dict()) + "\n" + '{"consent_id": "x", "choices": {"analytics": "yes"}}\n')
    status, _, err = cli(capsys, "log", "import", str(bad), "--store", sqlite_url)
    assert status == 1
    assert "line 2: not a consent record" in err
    other = tmp_path / "other.csv"
    other.write_text("name,email\nkim,kim@example.com\n")
    status, _, err = cli(capsys, "log", "import", str(other), "--store", sqlite_url)
    assert status == 1 and "not a consent log export" in err


def jsonl_lines(records: list[ConsentRecord]) -> list[str]:
    # As `log export --format jsonl` writes them, but ASCII-escaped so that a lone surrogate or a
    # NUL the target will refuse still makes a valid UTF-8 file.
    return [json.dumps(r.as_dict()) + "\n" for r in records]


def import_file(capsys: pytest.CaptureFixture[str], url: str, path: Path, *args: str) -> tuple[int, str, str]:
    return cli(capsys, "log", "import", str(path), "--store", url, *args)


def named_lines(err: str) -> list[int]:
    """The input lines the import says it did not write, in the order it names them."""
    return [int(n) for n in re.findall(r"^consentmw: line (\d+): ", err, re.MULTILINE)]


def same_records(records: list[ConsentRecord]) -> list[tuple[str, dt.datetime]]:
    return sorted((r.consent_id, r.created_at) for r in records)


SECOND = dt.timedelta(seconds=1)
REFUSED_ON = {
    "sqlite": REFUSED_BY_BOTH,
    "postgres": {**REFUSED_BY_BOTH, **REFUSED_BY_POSTGRES},
}


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_import_writes_every_record_the_log_accepts_and_names_each_it_refuses(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A log moved from SQLite (which took these values) to PostgreSQL (which does not), over
    # several import chunks: one refused record must not stop the import or hide the rest.
    url = request.getfixturevalue(f"{backend}_url")
    good = [make_record(f"visitor-{i}", at=T0 + i * SECOND) for i in range(1200)]
    refused = [make_record(**{"consent_id": f"refused-{name}", **fields}, at=T0) for name, fields in REFUSED_ON[backend].items()]
    lines = jsonl_lines(good)
    spots = [0, 250, 499, 500, 777, 1000, len(lines)][: len(refused)]  # first, either side of a chunk, last
    for spot, record in reversed(list(zip(spots, refused))):
        lines[spot:spot] = jsonl_lines([record])
    dump = tmp_path / "log.jsonl"
    dump.write_text("".join(lines), encoding="utf-8")
    status, out, err = import_file(capsys, url, dump)
    assert status == 1
    assert out.startswith("1200 record(s) imported into")
    refused_at = [lines.index(line) + 1 for line in jsonl_lines(refused)]
    assert named_lines(err) == sorted(refused_at)
    assert f"{len(refused)} record(s) not imported" in err
    assert same_records(logged(url)) == same_records(good)


BEFORE_REGIONS = Path(__file__).parent / "data" / "before-regions"


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_an_export_from_before_regions_imports_with_the_new_fields_unknown(
    log_url: str, tmp_path: Path, fmt: str, capsys: pytest.CaptureFixture[str]  # noqa: F811
) -> None:
    # Written by `log export` before region, mode, language and scan existed: it has none of them.
    dump = BEFORE_REGIONS / f"export.{fmt}"
    status, out, err = import_file(capsys, log_url, dump)
    assert (status, err) == (0, "")
    assert out.startswith("4 record(s) imported")
    imported = logged(log_url)
    old = [json.loads(line) for line in (BEFORE_REGIONS / "export.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [(r.consent_id, r.path, r.choices, r.created_at.isoformat()) for r in imported] == [
        (o["consent_id"], o["path"], o["choices"], o["created_at"]) for o in old
    ]
    assert {(r.region, r.mode, r.language, r.scan) for r in imported} == {("", "", "", False)}
    # The same file again, and the log's own export of it: nothing is taken for new.
    assert import_file(capsys, log_url, dump)[1].startswith("0 record(s) imported")
    cli(capsys, "log", "export", "--store", log_url, "--format", fmt, "--output", str(tmp_path / f"now.{fmt}"))
    assert import_file(capsys, log_url, tmp_path / f"now.{fmt}")[1].startswith("0 record(s) imported")


@pytest.mark.parametrize(
    ("fmt", "line"),
    [
        ("jsonl", {"scan": "yes"}),
        ("jsonl", {"region": 49}),
        ("jsonl", {"region": "Bavaria"}),
        ("jsonl", {"language": "en_US"}),
        ("jsonl", {"mode": "maybe"}),
        ("csv", {"scan": "yes"}),
        ("csv", {"region": "Bavaria"}),
    ],
)
def test_an_import_names_a_record_with_a_bad_new_field(
    sqlite_url: str, tmp_path: Path, fmt: str, line: dict[str, object], capsys: pytest.CaptureFixture[str]  # noqa: F811
) -> None:
    good, bad = make_record("good", at=T0).as_dict(), {**make_record("bad", at=T0).as_dict(), **line}
    dump = tmp_path / f"log.{fmt}"
    if fmt == "jsonl":
        dump.write_text(json.dumps(good) + "\n" + json.dumps(bad) + "\n", encoding="utf-8")
    else:
        with dump.open("w", encoding="utf-8", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=list(good))
            writer.writeheader()
            for row in (good, bad):
                writer.writerow({**row, "choices": json.dumps(row["choices"]), "scan": str(row["scan"]).lower()})
    status, out, err = import_file(capsys, sqlite_url, dump)
    assert status == 1 and out.startswith("1 record(s) imported")
    assert named_lines(err) == [2 if fmt == "jsonl" else 3]  # the header is line 1 of a CSV
    assert [r.consent_id for r in logged(sqlite_url)] == ["good"]


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_import_names_malformed_lines_and_writes_the_others(
    sqlite_url: str, tmp_path: Path, fmt: str, capsys: pytest.CaptureFixture[str]  # noqa: F811
) -> None:
    source = f"sqlite:///{tmp_path / 'source.db'}"
    seed(source, HOSTILE)
    dump = tmp_path / f"log.{fmt}"
    assert cli(capsys, "log", "export", "--store", source, "--format", fmt, "-o", str(dump))[0] == 0
    lines = dump.read_bytes().splitlines(keepends=True)
    if fmt == "jsonl":
        # After "newline" (the fifth record): bad JSON, a record with a bad choice, a byte that is
        # not UTF-8, then a good record again.
        lines[4:4] = [b"{not json\n", b'{"consent_id": "x", "choices": {"analytics": "yes"}}\n', b'{"consent_id": "\xff"}\n']
        bad = [5, 6, 7]
    else:
        # The "newline" record spans lines 6 and 7: the count is of lines in the file, not of rows.
        lines[5:5] = [b"1,2026-03-01,short row\n"]
        lines[1:1] = [b'99,2026-03-01T12:00:00+00:00,x,,1,{"analytics": yes},banner,/,,\n']
        bad = [2, 7]
    dump.write_bytes(b"".join(lines))
    status, out, err = import_file(capsys, sqlite_url, dump)
    assert status == 1
    assert out.startswith("5 record(s) imported")
    assert named_lines(err) == bad
    assert "not a consent record" in err
    assert [dataclasses.replace(r, id=None) for r in logged(sqlite_url)] == [
        dataclasses.replace(r, id=None) for r in logged(source)
    ]


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_importing_the_same_export_again_writes_nothing_twice(
    log_url: str, tmp_path: Path, fmt: str, capsys: pytest.CaptureFixture[str]  # noqa: F811
) -> None:
    # Includes what each database normalises (PostgreSQL reorders choices, CSV has no NULL policy
    # id) and what a CSV reader must not (a carriage return inside a cell).
    source = f"sqlite:///{tmp_path / 'source.db'}"
    seed(source, [*HOSTILE, make_record("carriage-return", at=T0 + 5 * DAY, path="/a\r\nb", user_agent="Fire\rfox")])
    dump = tmp_path / f"log.{fmt}"
    assert cli(capsys, "log", "export", "--store", source, "--format", fmt, "-o", str(dump))[0] == 0
    assert import_file(capsys, log_url, dump)[:2] == (0, f"6 record(s) imported into {open_store(log_url)!r}\n")
    before = logged(log_url)
    assert [r.identity() for r in before] == [r.identity() for r in logged(source)]
    status, out, err = import_file(capsys, log_url, dump)
    assert (status, err) == (0, "")
    assert out.startswith("0 record(s) imported") and "6 already in the log" in out
    assert logged(log_url) == before
    # Back into the log it came from, which the app wrote: nothing new either.
    assert import_file(capsys, source, dump)[0] == 0
    assert len(logged(source)) == 6


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_an_import_run_again_after_fixing_refused_lines_writes_only_those(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = request.getfixturevalue(f"{backend}_url")
    records = [make_record(f"visitor-{i}", at=T0 + i * SECOND) for i in range(10)]
    broken = dataclasses.replace(records[4], path="/cart\ud800")
    dump = tmp_path / "log.jsonl"
    dump.write_text("".join(jsonl_lines([*records[:4], broken, *records[5:]])), encoding="utf-8")
    status, out, err = import_file(capsys, url, dump)
    assert status == 1 and out.startswith("9 record(s) imported")
    assert named_lines(err) == [5]
    dump.write_text("".join(jsonl_lines(records)), encoding="utf-8")  # the auditor fixes line 5
    status, out, err = import_file(capsys, url, dump)
    assert (status, err) == (0, "")
    assert out.startswith("1 record(s) imported") and "9 already in the log" in out
    assert same_records(logged(url)) == same_records(records)


NEAR_COPIES = {
    "consent id": {"consent_id": "visitor-2"},
    "a microsecond later": {"at": T0 + dt.timedelta(microseconds=1)},
    "a choice": {"choices": {"necessary": True, "analytics": True, "advertising": False}},
    "a category more": {"choices": {"necessary": True, "analytics": False, "advertising": False, "x": False}},
    "policy id": {"policy_id": "other"},
    "policy version": {"policy_version": "2"},
    "method": {"method": "settings"},
    "page": {"path": "/other"},
    "network": {"ip": "198.51.100.0"},
    "browser": {"user_agent": "Chrome"},
    "region": {"region": "DE"},
    "mode": {"mode": "opt-in"},
    "language": {"language": "de"},
    "scan": {"scan": True},
}


def test_a_record_that_differs_in_any_field_from_a_logged_one_is_imported(
    log_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]  # noqa: F811
) -> None:
    # "Already in the log" means identical in every field but the id; anything less would drop proof.
    logged_one = make_record("visitor-1", at=T0)
    seed(log_url, [logged_one])
    near = [make_record(**{"consent_id": "visitor-1", "at": T0, **fields}) for fields in NEAR_COPIES.values()]
    dump = tmp_path / "log.jsonl"
    dump.write_text("".join(jsonl_lines([logged_one, *near])), encoding="utf-8")
    status, out, _ = import_file(capsys, log_url, dump)
    assert status == 0
    assert out.startswith(f"{len(near)} record(s) imported") and "1 already in the log" in out
    assert Counter(r.identity() for r in logged(log_url)) == Counter(r.identity() for r in [logged_one, *near])


@pytest.mark.postgres
async def test_an_import_the_log_stops_partway_finishes_when_run_again(
    postgres_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]  # noqa: F811
) -> None:
    # Another session holds a lock that blocks inserts (a long migration, a backup tool) longer
    # than the import may wait: the import stops, says where, and a second run completes it.
    url = with_query(postgres_url, lock_timeout="200")
    records = [make_record(f"visitor-{i}", at=T0 + i * SECOND) for i in range(1200)]
    dump = tmp_path / "log.jsonl"
    dump.write_text("".join(jsonl_lines(records[:600])), encoding="utf-8")
    assert (await asyncio.to_thread(import_file, capsys, url, dump))[0] == 0
    dump.write_text("".join(jsonl_lines(records)), encoding="utf-8")
    blocker = await asyncpg.connect(postgres_url)
    try:
        async with blocker.transaction():
            await blocker.execute("LOCK TABLE consent_log IN SHARE MODE")
            status, out, err = await asyncio.to_thread(import_file, capsys, url, dump)
    finally:
        await blocker.close()
    assert status == 1
    assert out.startswith("0 record(s) imported") and "600 already in the log" in out
    assert named_lines(err) == []  # a log that fails is not blamed on the records
    assert "consentmw: stopped at line 501: " in err and "lock timeout" in err
    status, out, err = await asyncio.to_thread(import_file, capsys, url, dump)
    assert (status, err) == (0, "")
    assert out.startswith("600 record(s) imported") and "600 already in the log" in out
    assert same_records(await asyncio.to_thread(logged, url)) == same_records(records)


@pytest.mark.parametrize("chunk", [2, 3, 500])
def test_overlapping_exports_import_as_their_union(
    sqlite_url: str, tmp_path: Path, chunk: int, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]  # noqa: F811
) -> None:
    # Two exports whose periods overlap, put in one file: the record in both is written once,
    # whether its two copies are read in one chunk or in two.
    monkeypatch.setattr(store_cli, "IMPORT_CHUNK", chunk)
    source = f"sqlite:///{tmp_path / 'source.db'}"
    seed(source, HOSTILE)
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    for path, since, until in [(first, T0, T0 + 3 * DAY), (second, T0 + 2 * DAY, T0 + 5 * DAY)]:
        args = ("--since", since.isoformat(), "--until", until.isoformat(), "--format", "jsonl", "-o", str(path))
        assert cli(capsys, "log", "export", "--store", source, *args)[0] == 0
    both = tmp_path / "both.jsonl"
    both.write_text(first.read_text(encoding="utf-8") + second.read_text(encoding="utf-8"), encoding="utf-8")
    status, out, _ = import_file(capsys, sqlite_url, both)
    assert status == 0
    assert out.startswith("5 record(s) imported") and "1 already in the log" in out
    assert same_records(logged(sqlite_url)) == same_records(HOSTILE)


def test_import_reads_a_csv_saved_with_a_byte_order_mark(
    sqlite_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]  # noqa: F811
) -> None:
    # Spreadsheets save "CSV UTF-8" with a BOM: the file an auditor fixed by hand must still import.
    source = f"sqlite:///{tmp_path / 'source.db'}"
    seed(source, HOSTILE)
    dump = tmp_path / "log.csv"
    assert cli(capsys, "log", "export", "--store", source, "-o", str(dump))[0] == 0
    dump.write_bytes(b"\xef\xbb\xbf" + dump.read_bytes())
    status, out, _ = import_file(capsys, sqlite_url, dump)
    assert status == 0 and out.startswith("5 record(s) imported")


def test_migrate_creates_the_log(log_url: str, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    assert cli(capsys, "migrate", "--store", log_url)[:2] == (0, f"consent log ready: {open_store(log_url)!r}\n")
    assert cli(capsys, "migrate", "--store", log_url)[0] == 0  # again: nothing changes
    assert cli(capsys, "log", "stats", "--store", log_url, "--format", "json")[1].startswith('{\n  "records": 0')


def test_the_store_comes_from_the_environment(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]  # noqa: F811
) -> None:
    seed(sqlite_url, [make_record("from-env")])
    monkeypatch.setenv("CONSENTMW_STORE", sqlite_url)
    status, out, _ = cli(capsys, "log", "show", "from-env")
    assert status == 0 and "from-env" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["log", "export", "--since", "last tuesday"], "is not a date"),
        (["log", "prune", "--older-than", "-3"], "is not a number of days"),
        (["log", "prune"], "--older-than"),
        (["log", "export", "--format", "xlsx"], "invalid choice"),
    ],
)
def test_bad_arguments_are_named(args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_a_missing_sqlite_log_is_not_created_by_reading(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = cli(capsys, "log", "export", "--store", f"sqlite:///{tmp_path / 'typo.db'}")
    assert status == 1 and "there is no consent log at" in err
    assert not (tmp_path / "typo.db").exists()


def test_sqlite_file_is_readable_with_the_sqlite3_shell(sqlite_url: str) -> None:  # noqa: F811
    # A data-protection officer may open the file directly: times are readable UTC text, choices JSON.
    seed(sqlite_url, [make_record("direct", at=T0)])
    with sqlite3.connect(sqlite_url.removeprefix("sqlite:///")) as conn:
        row = conn.execute("SELECT created_at, json_extract(choices, '$.analytics') FROM consent_log").fetchone()
    assert row == ("2026-03-01T12:00:00.000000Z", 0)
