from __future__ import annotations

import asyncio
import csv
import dataclasses
import datetime as dt
import io
import json
import sqlite3
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consentmw.cli import main
from consentmw.store import ConsentRecord, open_store
from consentmw.store.export import _cell, _uncell, read
from tests.store_support import T0, log_url, make_record, postgres_url, sqlite_url  # noqa: F401

NOW = dt.datetime.now(dt.UTC)
DAY = dt.timedelta(days=1)
# What visitors control ends up in cells: none of it may run as a spreadsheet formula.
HOSTILE = [
    make_record("plain", at=T0),
    make_record("formula", at=T0 + DAY, path='=HYPERLINK("http://evil.example","x")', user_agent="+cmd|' /C calc'!A0"),
    make_record("quoted", at=T0 + 2 * DAY, path="'=already quoted", user_agent="@SUM(1)", policy_id=None),
    make_record("unicode", at=T0 + 3 * DAY, path="/상품/장바구니?q=쿠키", choices={"necessary": True, "personalisation": True}),
    make_record("newline", at=T0 + 4 * DAY, path="/a,b\n-c", user_agent="\tTab", method="opt-out"),
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
            make_record("visitor-7", at=T0 + DAY, choices={"necessary": True, "analytics": False}, method="opt-out"),
        ],
    )
    status, out, _ = cli(capsys, "log", "show", "visitor-7", "--store", sqlite_url)
    assert status == 0
    lines = out.splitlines()
    assert lines[0] == "consent id visitor-7: 2 record(s), oldest first (times in UTC)"
    assert "2026-03-01 12:00:00  banner  policy 1  necessary yes, analytics yes" in lines[1]
    assert "page /pricing  network 203.0.113.0  browser Firefox" in lines[2]
    assert "2026-03-02 12:00:00  opt-out  policy 1  necessary yes, analytics no" in lines[3]
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
