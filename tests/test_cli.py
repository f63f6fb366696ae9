"""The command line as a site owner types it: real processes, real files, real pipes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from consentmw import load_policy
from consentmw.cli import EXAMPLES, build_parser, subcommands
from tests.store_support import make_record, sqlite_url  # noqa: F401
from tests.test_store_cli import seed

CONSENTMW = [sys.executable, "-m", "consentmw"]


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CONSENTMW, *args], capture_output=True, text=True, timeout=60, cwd=cwd)


def test_every_command_has_examples_in_its_help() -> None:
    commands = dict(subcommands(build_parser()))
    assert set(commands) == set(EXAMPLES)
    for name, parser in commands.items():
        examples = parser.format_help().split("examples:\n", 1)[1]
        assert f"consentmw {name}" in examples, name


def test_init_writes_a_valid_starter_policy_and_prints_a_fresh_key(tmp_path: Path) -> None:
    first = run("init", "--preset", "kakao-enterprise", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    written = json.loads((tmp_path / "policy.json").read_text("utf-8"))
    assert written["id"] == "my-site"
    assert [c["id"] for c in written["categories"]] == [c.id for c in load_policy("kakao-enterprise").categories]
    assert run("validate", "policy.json", cwd=tmp_path).returncode == 0
    key = first.stdout.split("CONSENTMW_SECRET_KEY='", 1)[1].split("'", 1)[0]
    assert len(key) >= 40
    again = run("init", cwd=tmp_path)
    assert again.returncode == 1 and "--force" in again.stderr
    assert json.loads((tmp_path / "policy.json").read_text("utf-8")) == written  # not overwritten
    forced = run("init", "--force", "-o", "policy.json", cwd=tmp_path)
    assert forced.returncode == 0
    assert forced.stdout.split("CONSENTMW_SECRET_KEY='", 1)[1].split("'", 1)[0] != key  # generated, not fixed


def test_validate_lists_every_problem_and_exits_1(tmp_path: Path) -> None:
    data = load_policy("default").data
    data["categories"][2]["services"] = [{"id": "naver-analytic"}]
    data["browser_guides"] = ["chrom"]
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(data), "utf-8")
    result = run("validate", str(path), "default")
    assert result.returncode == 1
    assert f"{path}: invalid, 2 problems:" in result.stderr
    assert "  $.categories[2].services[0].id: 'naver-analytic' is not in the tracker catalog; did you mean 'naver-analytics'?" in result.stderr
    assert "  $.browser_guides[0]: no browser guide is called 'chrom'; did you mean 'chrome'?" in result.stderr
    assert "default: valid" in result.stdout


def test_trackers_lists_the_catalog_ids() -> None:
    result = run("trackers", "--json")
    ids = [row["id"] for row in json.loads(result.stdout)]
    assert {"google-analytics", "naver-analytics", "kakao-pixel"} <= set(ids)


def test_output_cut_short_by_a_pipe_ends_quietly(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'consent.db'}"
    seed(url, [make_record(f"visitor-{i}") for i in range(2000)])  # more than a pipe's buffer holds
    shell = f"{' '.join(CONSENTMW)} log export --store {url} | head -1"
    result = subprocess.run(["bash", "-c", shell], capture_output=True, text=True, timeout=60)
    assert result.stdout.startswith("id,created_at,consent_id,") and len(result.stdout.splitlines()) == 1
    assert result.stderr == ""
