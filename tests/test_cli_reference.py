"""docs/cli.md's command reference is generated from the argument parser: a command or option
added to the parser without running scripts/cli_reference.py fails here."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import cli_reference  # noqa: E402

from consentmw import cli  # noqa: E402


def test_docs_cli_md_is_what_the_parser_says() -> None:
    check = subprocess.run([sys.executable, str(ROOT / "scripts" / "cli_reference.py"), "--check"], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr


def test_every_command_has_a_row_with_its_arguments() -> None:
    page = (ROOT / "docs" / "cli.md").read_text("utf-8")
    for name, _ in cli.subcommands(cli.build_parser()):
        assert f"| `{name}" in page and f"### `consentmw {name}`" in page
    assert "| `scan URL [--pages N]" in page and "`--policy-draft FILE` | write a policy JSON" in page
    assert "`log prune [--store STORE] --older-than DAYS [--dry-run]`" in page  # a required option has no brackets


def test_a_new_command_makes_the_page_stale(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def with_more() -> argparse.ArgumentParser:
        parser = cli.build_parser()
        commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        extra = commands.add_parser("forget", help="erase one visitor's records")
        extra.add_argument("--before", metavar="DATE", help="only records before DATE")
        return parser

    page = tmp_path / "cli.md"
    page.write_text((ROOT / "docs" / "cli.md").read_text("utf-8"), "utf-8")
    monkeypatch.setattr(cli_reference, "PAGE", page)
    monkeypatch.setattr(cli_reference, "ROOT", tmp_path)
    monkeypatch.setattr(cli_reference, "build_parser", with_more)
    assert cli_reference.main(["--check"]) == 1
    assert "out of date" in capsys.readouterr().err
    assert cli_reference.main([]) == 0
    text = page.read_text("utf-8")
    assert "| `forget [--before DATE]` | erase one visitor's records |" in text
    assert "| `--before DATE` | only records before DATE |" in text
    assert text.endswith((ROOT / "docs" / "cli.md").read_text("utf-8").partition(cli_reference.END)[2])  # the prose stays
