"""The README as a first-time user meets it: short, its commands run on a stock Python, and each
quickstart, copied block by block into an empty directory, serves a page with the banner."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text("utf-8")
# Debian's own python3 when this machine has one, as a new user would type it.
STOCK_PYTHON = "/usr/bin/python3" if Path("/usr/bin/python3").exists() else sys.executable
VENV_LINE = "python3 -m venv .venv && . .venv/bin/activate"


def test_readme_is_short_and_its_first_screen_states_the_requirements() -> None:
    assert len(README.encode()) <= 12 * 1024
    first_screen = README[: README.index("## Two commands")]
    for needed in ("Python 3.11", "ASGI", "WSGI", "Django", "not on PyPI", "docs/banner.png"):
        assert needed in first_screen, needed


def test_readme_and_docs_links_resolve() -> None:
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text("utf-8")):
            if re.match(r"[a-z]+:", target):
                continue
            path = (page.parent / target).resolve()
            assert path.exists(), f"{page.relative_to(ROOT)} links to {target}, which does not exist"


def test_every_policy_in_the_readme_and_docs_validates() -> None:
    from consentmw import load_policy

    found = 0
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for block in re.findall(r"^```json\n(.*?)^```", page.read_text("utf-8"), re.M | re.S):
            data = json.loads(block)
            if "categories" in data and "schema_version" not in data:  # not a `log report --json`
                load_policy(data)
                found += 1
    assert found >= 2


@dataclass
class Quickstart:
    name: str
    shell: list[str] = field(default_factory=list)
    files: list[tuple[str, str, bool]] = field(default_factory=list)  # (path, text, append)
    serve: str = ""


def parse_quickstart(name: str, section: str) -> Quickstart:
    """Shell blocks and files in order; the first shell block after a file is the one that serves
    the site, and its last line the serving command."""
    quick = Quickstart(name)
    seen_file = False
    for lang, text in re.findall(r"^```(\w+)\n(.*?)^```", section, re.M | re.S):
        if lang == "sh":
            lines = text.strip().splitlines()
            if seen_file:
                *lines, quick.serve = lines
                quick.shell += lines
                break
            quick.shell += lines
        else:
            header, _, rest = text.partition("\n")
            m = re.fullmatch(r"(?:#|\{#) (add to )?(\S+)(?: #\})?", header)
            assert m, f"the {name} quickstart's {lang} block must start with '# path' or '# add to path'"
            quick.files.append((m.group(2), rest, bool(m.group(1))))
            seen_file = True
    return quick


def quickstarts() -> dict[str, Quickstart]:
    part = README[README.index("## Quickstart") : README.index("## A policy")]
    return {name: parse_quickstart(name, body) for name, body in re.findall(r"^### (\w+)\n(.*?)(?=^### |\Z)", part, re.M | re.S)}


DOC_PAGES = ("starlette", "fastapi", "django", "flask")


def doc_quickstart(page: str) -> Quickstart:
    """The "## Quickstart" section of docs/<page>.md."""
    text = (ROOT / "docs" / f"{page}.md").read_text("utf-8")
    section = re.search(r"^## Quickstart\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert section, f"docs/{page}.md has no '## Quickstart' section"
    return parse_quickstart(f"docs/{page}.md", section.group(1))


def test_readme_has_the_three_quickstarts() -> None:
    found = quickstarts()
    assert list(found) == ["Starlette", "FastAPI", "Django"]
    for quick in found.values():
        assert quick.shell[0] == VENV_LINE and quick.serve and quick.files


def copy_checkout(to: Path) -> Path:
    skip = shutil.ignore_patterns(".git", ".venv", "test-artifacts", "__pycache__", ".pytest_cache", ".hypothesis", "*.db", "build", "dist")
    shutil.copytree(ROOT, to, ignore=skip)
    return to


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def served(command: list[str] | str, cwd: Path, port: int, env: dict[str, str], timeout: float) -> Iterator[str]:
    """Runs ``command`` until the page on ``port`` answers; yields its HTML, then stops it."""
    log = cwd / "server.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, shell=isinstance(command, str))
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
                    assert response.status == 200
                    yield response.read().decode("utf-8")
                    return
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"nothing answered on port {port}; the server said:\n{log.read_text('utf-8', 'replace')[-3000:]}")
                time.sleep(0.25)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def clean_env(**extra: str) -> dict[str, str]:
    """A new user's shell: no virtualenv, no settings module or key left by other tests."""
    keep = ("HOME", "LANG", "LC_ALL", "TMPDIR", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE")
    env = {k: v for k, v in os.environ.items() if k in keep or k.startswith("PIP_") or k.lower().endswith("_proxy")}
    return {**env, "PATH": "/usr/local/bin:/usr/bin:/bin", **extra}


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the checkout at ./consentmw and one virtual environment the quickstarts share."""
    root = tmp_path_factory.mktemp("first-hour")
    copy_checkout(root / "consentmw")
    subprocess.run([STOCK_PYTHON, "-m", "venv", str(root / "venv")], check=True, timeout=120)
    return root


def test_every_framework_page_has_a_whole_quickstart() -> None:
    for page in DOC_PAGES:
        quick = doc_quickstart(page)
        assert quick.shell[0] == VENV_LINE and quick.serve and quick.files, page
        assert any(line.startswith("pip install ../consentmw") for line in quick.shell), page


def serve_command(serve: str, port: int) -> str:
    if serve.startswith(("uvicorn", "flask")):
        return f"{serve} --port {port}"
    return f"{serve} --noreload 127.0.0.1:{port}"  # manage.py runserver


def run_quickstart(workspace: Path, quick: Quickstart, folder: str) -> None:
    """The quickstart's commands as written, in an empty directory beside the checkout, in the
    shared virtual environment; then its server, asked for its page."""
    project = workspace / folder
    project.mkdir()
    script = [f". {workspace / 'venv'}/bin/activate", "set -e"]
    script += [line for line in quick.shell if line != VENV_LINE]
    (project / "setup.sh").write_text("\n".join(script) + "\n", "utf-8")
    env = clean_env(PIP_DISABLE_PIP_VERSION_CHECK="1")
    done = subprocess.run(["bash", "-e", "setup.sh"], cwd=project, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    for path, text, append in quick.files:
        target = project / path
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "a" if append else "w", encoding="utf-8") as f:
            f.write(("\n" if append else "") + text)
    # The export line set the key in setup.sh's own shell; the server's shell makes its own the same way.
    port = free_port()
    exports = [line for line in quick.shell if line.startswith("export ")]
    command = "\n".join([f". {workspace / 'venv'}/bin/activate", *exports, "exec " + serve_command(quick.serve, port)])
    with served(command, project, port, env, timeout=60) as html:
        assert "My shop" in html
        assert "/_consent/banner.js" in html and "/_consent/banner.css" in html
        # The banner speaks for the site that init named, with its texts in the page.
        assert 'id="consentmw-data"' in html and "Kakao" not in html and "NAVER" not in html
        assert json.loads((project / "policy.json").read_text("utf-8"))["controller"]["name"]["en"] == "My Shop Ltd."
    installed = subprocess.run(
        [str(workspace / "venv" / "bin" / "python"), "-c", "import consentmw; print(consentmw.__file__)"],
        capture_output=True,
        text=True,
        env=env,
        cwd=project,
    )
    assert str(workspace / "venv") in installed.stdout  # a real install, not the checkout on sys.path


@pytest.mark.slow
@pytest.mark.parametrize("name", ["Starlette", "FastAPI", "Django"])
def test_quickstart_serves_a_page_with_the_banner(workspace: Path, name: str) -> None:
    run_quickstart(workspace, quickstarts()[name], name.lower())


@pytest.mark.slow
@pytest.mark.parametrize("page", DOC_PAGES)
def test_framework_page_quickstart_serves_a_page_with_the_banner(workspace: Path, page: str) -> None:
    quick = doc_quickstart(page)
    if any((q.shell, q.files, q.serve) == (quick.shell, quick.files, quick.serve) for q in quickstarts().values()):
        pytest.skip("the same as the README's quickstart, which runs above")  # one venv, run once
    run_quickstart(workspace, quick, f"docs-{page}")


@pytest.mark.slow
def test_demo_command_works_on_the_stock_python(tmp_path: Path) -> None:
    """`bash scripts/demo.sh` on a fresh checkout with Debian's python3, which refuses pip outside a venv."""
    if STOCK_PYTHON != "/usr/bin/python3":
        pytest.skip("this machine has no /usr/bin/python3")
    assert "```sh\nbash scripts/demo.sh\n```" in README and "```sh\nbash scripts/test.sh\n```" in README
    checkout = copy_checkout(tmp_path / "consentmw")
    port = free_port()
    with served(["bash", "scripts/demo.sh", "--port", str(port)], checkout, port, clean_env(), timeout=300) as html:
        assert "/_consent/banner.js" in html
    assert (checkout / ".venv" / "bin" / "python").exists()


def test_policy_field_reference_is_generated_from_the_schema(tmp_path: Path) -> None:
    check = [sys.executable, str(ROOT / "scripts" / "policy_reference.py"), "--check"]
    assert subprocess.run(check, capture_output=True, text=True).returncode == 0, "run: python scripts/policy_reference.py"
    # ...and the check notices a schema change: a field the page does not describe yet.
    copy = copy_checkout(tmp_path / "checkout")
    schema_path = copy / "consentmw" / "core" / "policy.schema.json"
    schema = json.loads(schema_path.read_text("utf-8"))
    schema["properties"]["banner_position"] = {"type": "string", "description": "Where the banner sits."}
    schema_path.write_text(json.dumps(schema), "utf-8")
    stale = subprocess.run([sys.executable, str(copy / "scripts" / "policy_reference.py"), "--check"], capture_output=True, text=True)
    assert stale.returncode == 1 and "out of date" in stale.stderr
    subprocess.run([sys.executable, str(copy / "scripts" / "policy_reference.py")], check=True)
    assert "| `banner_position` | string |  | Where the banner sits. |" in (copy / "docs" / "policy.md").read_text("utf-8")


def test_no_install_line_asks_a_package_index_for_consentmw() -> None:
    # consentmw is not published: `pip install 'consentmw[scan]'` fails for every reader.
    from_index = re.compile(r"""pip install\s+(?:-\S+\s+)*['"]?consentmw\b""")
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / "consentmw").rglob("*.py"))]:
        for number, line in enumerate(path.read_text("utf-8").splitlines(), 1):
            assert not from_index.search(line), f"{path.relative_to(ROOT)}:{number}: {line.strip()}"


def test_a_missing_extra_is_named_by_its_packages() -> None:
    import tomllib

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]["optional-dependencies"]
    # The scanner without Playwright, as after a plain `pip install ../consentmw`.
    code = "import sys; sys.modules['playwright'] = None; from consentmw.cli import main; sys.exit(main(['scan', 'http://127.0.0.1:9/']))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    wanted = "pip install " + " ".join(f"'{p}'" for p in sorted(extras["scan"]))
    assert done.stderr.strip() == f"consentmw scan needs playwright: {wanted}"
