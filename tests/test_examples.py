"""The example sites, booted in-process through httpx.ASGITransport, and the demo command that serves them."""

from __future__ import annotations

import importlib
import os
import re
import shlex
import signal
import sqlite3
import subprocess
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest

from consentmw import demo
from consentmw.cli import main
from consentmw.core.errors import ConfigError
from consentmw.core.store import MemoryStore
from tests.conftest import SECRET, client_for
from tests.demo_support import demo_server

PRESETS = {"starlette": "naver-cloud-en", "fastapi": "kakao-enterprise", "django": "naver-cloud", "flask": "kakao-enterprise"}
GA_ID = "G-CONSENTMW1"
ALLOWED_WORDS = {"allowed", "허용"}
REFUSED_WORDS = {"refused", "거부"}
ACCEPT_ALL = {"accept": "all"}
REJECT_ALL = {"accept": "necessary"}
ONLY_PERSONALISATION = {"choices": {"personalisation": True}}
ONLY_ANALYTICS = {"choices": {"analytics": True}}


@dataclass
class ScriptTag:
    attrs: dict[str, str | None]
    text: str = ""

    @property
    def address(self) -> str:
        return self.attrs.get("src") or self.attrs.get("data-consentmw-src") or ""


class ScriptTags(HTMLParser):
    def __init__(self, page: str) -> None:
        super().__init__()
        self.tags: list[ScriptTag] = []
        self.open: ScriptTag | None = None
        self.feed(page)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "script":
            self.open = ScriptTag(dict(attrs))
            self.tags.append(self.open)

    def handle_data(self, data: str) -> None:
        if self.open is not None:
            self.open.text += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self.open = None


# The four tags of the vendors' snippets every example page carries.
TRACKER_TAGS: dict[str, Callable[[ScriptTag], bool]] = {
    "gtag.js loader": lambda tag: "googletagmanager.com/gtag/js?id=" + GA_ID in tag.address,
    "gtag config": lambda tag: f"gtag('config', '{GA_ID}')" in tag.text,
    "wcslog.js loader": lambda tag: tag.address == "//wcs.naver.net/wcslog.js",
    "wcs_do call": lambda tag: "wcs_do();" in tag.text,
}
LOADERS = {"gtag.js loader", "wcslog.js loader"}


def tracker_tags(page: str) -> dict[str, ScriptTag]:
    tags = ScriptTags(page).tags
    found = {}
    for name, matches in TRACKER_TAGS.items():
        hits = [tag for tag in tags if matches(tag)]
        assert len(hits) == 1, f"{name}: expected one tag, found {len(hits)}"
        found[name] = hits[0]
    return found


def is_inert(tag: ScriptTag) -> bool:
    return tag.attrs.get("type") == "text/plain" and "src" not in tag.attrs and tag.attrs.get("data-consentmw-category") == "analytics"


def is_live(tag: ScriptTag, name: str) -> bool:
    runs = tag.attrs.get("type") in (None, "text/javascript")
    return runs and "data-consentmw-category" not in tag.attrs and (name not in LOADERS or "src" in tag.attrs)


def consent_state(page: str) -> dict[str, str]:
    """What the page's server-side helper said about each category: "allowed" or "refused"."""
    states = {}
    for category, word in re.findall(r'<dd data-category="([\w-]+)">([^<]*)</dd>', page):
        assert word in ALLOWED_WORDS | REFUSED_WORDS, word
        states[category] = "allowed" if word in ALLOWED_WORDS else "refused"
    return states


@pytest.fixture(params=sorted(PRESETS))
def site_name(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


class WSGIClient:
    """httpx's WSGI client behind the awaitable calls the tests make of an ASGI one."""

    def __init__(self, app: Callable[..., object]) -> None:
        self.client = httpx.Client(transport=httpx.WSGITransport(app), base_url="http://testserver", headers={"origin": "http://testserver"})
        self.cookies = self.client.cookies

    async def get(self, *args: object, **kwargs: object) -> httpx.Response:
        return self.client.get(*args, **kwargs)  # type: ignore[arg-type]

    async def post(self, *args: object, **kwargs: object) -> httpx.Response:
        return self.client.post(*args, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
async def site(site_name: str, store: MemoryStore) -> AsyncIterator[httpx.AsyncClient]:
    app = demo.load_site(site_name).create_app(secret_key=SECRET, store=store)
    if demo.SITES[site_name][3] == "wsgi":
        wsgi = WSGIClient(app)
        yield wsgi  # type: ignore[misc]
        wsgi.client.close()
        return
    async with client_for(app) as client:
        yield client


async def choose(site: httpx.AsyncClient, choice: dict) -> None:
    r = await site.post("/_consent", json=choice)
    assert r.status_code == 200, r.text


async def test_home_page_renders_with_banner_and_links(site: httpx.AsyncClient) -> None:
    r = await site.get("/")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    page = r.text
    assert "<h1>consentmw" in page
    assert re.search(r'<script src="/_consent/banner\.js\?v=\w+" defer', page)
    assert "data-consent-open" in page
    assert 'href="/_consent/browsers"' in page
    assert 'href="/_consent/opt-out"' in page
    assert set(tracker_tags(page)) == set(TRACKER_TAGS)


@pytest.mark.parametrize("choice", [None, REJECT_ALL, ONLY_PERSONALISATION], ids=["undecided", "rejected", "other-category"])
async def test_analytics_tags_are_inert_without_consent(site: httpx.AsyncClient, choice: dict | None) -> None:
    if choice is not None:
        await choose(site, choice)
    page = (await site.get("/")).text
    for name, tag in tracker_tags(page).items():
        assert is_inert(tag), f"{name} would run: {tag.attrs}"
    assert f"ga-disable-{GA_ID}" in page


@pytest.mark.parametrize("choice", [ACCEPT_ALL, ONLY_ANALYTICS], ids=["accept-all", "analytics-only"])
async def test_analytics_tags_run_after_consent(site: httpx.AsyncClient, choice: dict) -> None:
    await choose(site, choice)
    page = (await site.get("/")).text
    tags = tracker_tags(page)
    for name, tag in tags.items():
        assert is_live(tag, name), f"{name} stayed inert: {tag.attrs}"
    assert tags["gtag.js loader"].attrs["src"] == f"https://www.googletagmanager.com/gtag/js?id={GA_ID}"
    assert f"ga-disable-{GA_ID}" not in page


async def test_gpc_keeps_analytics_off_even_after_accept_all(site: httpx.AsyncClient) -> None:
    await choose(site, ACCEPT_ALL)
    page = (await site.get("/", headers={"sec-gpc": "1"})).text
    for name, tag in tracker_tags(page).items():
        assert is_inert(tag), f"{name} would run despite Sec-GPC: {tag.attrs}"
    assert consent_state(page)["analytics"] == "refused"
    assert re.search(r'<dd data-state="gpc">(sent|보냄)</dd>', page)


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        (None, {"personalisation": "refused", "analytics": "refused"}),
        (ONLY_ANALYTICS, {"personalisation": "refused", "analytics": "allowed"}),
        (ACCEPT_ALL, {"personalisation": "allowed", "analytics": "allowed"}),
    ],
    ids=["undecided", "analytics-only", "accept-all"],
)
async def test_page_code_sees_the_visitors_consent(site: httpx.AsyncClient, choice: dict | None, expected: dict) -> None:
    # Django reads it through the context processor and the `allows` template filter.
    if choice is not None:
        await choose(site, choice)
    states = consent_state((await site.get("/")).text)
    assert states["necessary"] == "allowed"
    assert {k: states[k] for k in expected} == expected


async def test_preferences_cookie_is_kept_only_with_personalisation_allowed(site: httpx.AsyncClient) -> None:
    r = await site.get("/preferences", params={"theme": "dark"})
    assert r.status_code == 200
    assert 'class="theme-dark"' in r.text  # this page still shows the choice
    assert "prefs_theme" not in site.cookies
    assert 'class="theme-light"' in (await site.get("/")).text

    await choose(site, ONLY_PERSONALISATION)
    r = await site.get("/preferences", params={"theme": "dark"})
    assert site.cookies["prefs_theme"] == "dark"
    assert 'class="theme-dark"' in (await site.get("/")).text


async def test_each_site_uses_its_own_preset_with_its_analytics_declared(site: httpx.AsyncClient, site_name: str) -> None:
    policy = (await site.get("/_consent/policy")).json()
    assert policy["id"] == PRESETS[site_name]
    analytics = next(c for c in policy["categories"] if c["id"] == "analytics")
    services = {s["id"]: s for s in analytics["services"]}
    assert services["google-analytics"]["ids"] == [GA_ID]
    assert "naver-analytics" in services


@pytest.mark.parametrize("path", ["/_consent/browsers", "/_consent/opt-out"])
async def test_linked_consent_pages_open(site: httpx.AsyncClient, path: str) -> None:
    r = await site.get(path, headers={"user-agent": "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")


async def test_opt_out_page_names_the_sites_measurement_id(site: httpx.AsyncClient) -> None:
    assert GA_ID in (await site.get("/_consent/opt-out")).text


async def test_fastapi_dependency_reports_consent(store: MemoryStore) -> None:
    app = demo.load_site("fastapi").create_app(secret_key=SECRET, store=store)
    async with client_for(app) as site:
        assert (await site.get("/api/consent")).json()["decided"] is False
        await choose(site, ONLY_ANALYTICS)
        body = (await site.get("/api/consent")).json()
    assert body["decided"] is True
    assert body["choices"]["analytics"] is True
    assert body["choices"]["personalisation"] is False


def test_django_project_passes_its_system_checks() -> None:
    demo.load_site("django")
    from django.core.management import call_command

    call_command("check", fail_level="WARNING", verbosity=0)


def test_demo_says_when_it_cannot_find_the_examples(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(demo, "SOURCE_CHECKOUT", tmp_path)
    # The command sets these for the example modules; let the test put them back.
    monkeypatch.setenv("CONSENTMW_SECRET_KEY", SECRET)
    monkeypatch.setenv("CONSENTMW_STORE", "memory://")
    with pytest.raises(ConfigError, match="example sites are not installed"):
        demo.examples_package()
    assert main(["demo", "--port", "0"]) == 1
    assert "not installed" in capsys.readouterr().err


# -- the examples README's commands -----------------------------------------------------------

EXAMPLES_README = (Path(__file__).resolve().parents[1] / "examples" / "README.md").read_text("utf-8")


@pytest.mark.parametrize("target", re.findall(r"^uvicorn (examples\.\S+)$", EXAMPLES_README, re.MULTILINE))
def test_readme_uvicorn_commands_name_real_apps(target: str) -> None:
    module, _, attribute = target.partition(":")
    assert callable(getattr(importlib.import_module(module), attribute))


# -- the demo command, as the README runs it ---------------------------------------------------


def log_records(path: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(path) as db:
        return db.execute("SELECT policy_id, choices FROM consent_log").fetchall()


@pytest.mark.slow
@pytest.mark.parametrize("site_name", sorted(PRESETS))
async def test_demo_serves_the_example_and_logs_choices_in_sqlite(tmp_path: Path, site_name: str) -> None:
    log = tmp_path / "demo-log.db"
    with demo_server(tmp_path, "--site", site_name, "--store", f"sqlite:///{log}") as server:
        async with httpx.AsyncClient(base_url=server.url, headers={"origin": server.url.rstrip("/")}) as visitor:
            page = await visitor.get("/")
            assert page.status_code == 200
            assert "wcslog.js" in page.text
            assert (await visitor.post("/_consent", json=ACCEPT_ALL)).status_code == 200
        assert server.stop() in (0, -signal.SIGINT)
    [(policy_id, choices)] = log_records(log)
    assert policy_id == PRESETS[site_name]
    assert '"analytics":true' in choices
    # The command it prints to read the log works as printed, whatever python3 is on PATH.
    [command] = [line.split("read the log", 1)[1] for line in server.printed.splitlines() if "read the log" in line]
    stats = subprocess.run(shlex.split(command), capture_output=True, text=True, timeout=60, env={**os.environ, "PATH": "/nonexistent"})
    assert stats.returncode == 0, stats.stderr
    assert "1 record(s) from 1 visitor(s)" in stats.stdout


@pytest.mark.slow
@pytest.mark.parametrize("site_name", sorted(PRESETS))
async def test_demo_stops_on_ctrl_c_when_started_as_a_background_job(tmp_path: Path, site_name: str) -> None:
    # A background job of a shell without job control starts with SIGINT ignored; the demo, which
    # says "stop: Ctrl+C", must stop on it all the same, its choices recorded.
    log = tmp_path / "demo-log.db"
    with demo_server(tmp_path, "--site", site_name, "--store", f"sqlite:///{log}", sigint=signal.SIG_IGN) as server:
        async with httpx.AsyncClient(base_url=server.url, headers={"origin": server.url.rstrip("/")}) as visitor:
            assert (await visitor.post("/_consent", json=ACCEPT_ALL)).status_code == 200
        assert server.stop() in (0, -signal.SIGINT)
    assert len(log_records(log)) == 1
