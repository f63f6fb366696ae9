"""The command line as a site owner types it: real processes, real files, real pipes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

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


SITE = ("--name", "Example Shop", "--controller", "Example Shop Ltd.", "--contact", "privacy@example.com")


def test_init_writes_a_valid_policy_in_the_sites_name_and_prints_a_fresh_key(tmp_path: Path) -> None:
    first = run("init", *SITE, "--languages", "de,en,th", "--preset", "kakao-enterprise", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    written = json.loads((tmp_path / "policy.json").read_text("utf-8"))
    assert written["id"] == "example-shop"
    assert written["controller"] == {"name": {"de": "Example Shop Ltd.", "en": "Example Shop Ltd.", "th": "Example Shop Ltd."}, "contact": "privacy@example.com"}
    assert (written["language"], written["languages"]) == ("de", ["de", "en", "th"])
    assert "Kakao" not in json.dumps(written["controller"], ensure_ascii=False)
    assert [c["id"] for c in written["categories"]] == [c.id for c in load_policy("kakao-enterprise").categories]
    assert run("validate", "policy.json", cwd=tmp_path).returncode == 0
    key = first.stdout.split("CONSENTMW_SECRET_KEY='", 1)[1].split("'", 1)[0]
    assert len(key) >= 40
    again = run("init", *SITE, cwd=tmp_path)
    assert again.returncode == 1 and "--force" in again.stderr
    assert json.loads((tmp_path / "policy.json").read_text("utf-8")) == written  # not overwritten
    forced = run("init", *SITE, "--force", "-o", "policy.json", cwd=tmp_path)
    assert forced.returncode == 0
    assert forced.stdout.split("CONSENTMW_SECRET_KEY='", 1)[1].split("'", 1)[0] != key  # generated, not fixed


def test_init_keeps_the_category_texts_of_the_languages_chosen(tmp_path: Path) -> None:
    assert run("init", *SITE, "--languages", "ja, zh-tw", cwd=tmp_path).returncode == 0
    written = json.loads((tmp_path / "policy.json").read_text("utf-8"))
    assert written["languages"] == ["ja", "zh-TW"]
    assert {c["id"]: c["name"] for c in written["categories"]}["analytics"] == {"ja": "アクセス解析", "zh-TW": "造訪統計"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "give --name and --controller"),
        (("--name", "Shop"), "give --controller"),
        ((*SITE, "--languages", "en,sv"), "consentmw ships no texts in 'sv'"),
    ],
)
def test_init_without_a_terminal_says_what_is_missing_and_writes_nothing(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    done = subprocess.run([*CONSENTMW, "init", *args], capture_output=True, text=True, timeout=60, cwd=tmp_path, stdin=subprocess.DEVNULL)
    assert done.returncode == 2 and message in done.stderr
    assert not (tmp_path / "policy.json").exists()


def test_init_in_a_terminal_asks_for_what_the_flags_do_not_give(tmp_path: Path) -> None:
    import pty

    pid, fd = pty.fork()
    if pid == 0:  # the child: consentmw init on a terminal, as a site owner runs it
        os.chdir(tmp_path)
        os.execv(CONSENTMW[0], [*CONSENTMW, "init", "--contact", "privacy@example.de"])
    seen = pending = b""
    answers = [b"Beispiel Laden\n", b"Beispiel GmbH\n", b"de, en\n"]
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        seen += chunk
        pending += chunk
        if answers and pending.endswith(b": "):  # a question waits for its answer
            os.write(fd, answers.pop(0))
            pending = b""
    _, status = os.waitpid(pid, 0)
    text = seen.decode()
    assert os.waitstatus_to_exitcode(status) == 0, text
    assert "Your site's name" in text and "Languages to offer" in text
    assert "Where visitors send privacy questions" not in text  # given as a flag: not asked
    written = json.loads((tmp_path / "policy.json").read_text("utf-8"))
    assert written["id"] == "beispiel-laden" and written["controller"]["name"] == {"de": "Beispiel GmbH", "en": "Beispiel GmbH"}
    assert written["controller"]["contact"] == "privacy@example.de" and written["language"] == "de"


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
