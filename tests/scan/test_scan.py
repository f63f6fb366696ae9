"""`consentmw scan` against local sites in real Chromium; third-party hosts are requested by the
page but never leave the machine (--offline: Chromium's resolver answers "not found")."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from consentmw import demo, load_policy
from consentmw.cli import main
from consentmw.core.store import MemoryStore
from consentmw.scan.report import schema
from tests.demo_support import demo_server

from .site import CDN_AND_CRITEO, SCRIPT_COOKIE, UNKNOWN_PIXEL, serve, shop

pytestmark = [pytest.mark.browser, pytest.mark.slow]

GA_HOST = "www.googletagmanager.com"
PIXEL_HOST = "connect.facebook.net"
UNKNOWN_HOST = "px.unknown-vendor.example"


@dataclass
class Scan:
    status: int
    output: str
    report: dict[str, Any]
    html: Path
    draft: Path

    def violations(self, pass_name: str | None = None) -> set[tuple[str, str, str | None]]:
        return {(v["kind"], v["subject"], v["category"]) for v in self.report["violations"] if pass_name in (None, v["pass"])}

    def seen(self, pass_name: str) -> tuple[set[str], set[str]]:
        """Hosts requested and cookie names held in this pass, over all pages."""
        runs = [p["passes"][pass_name] for p in self.report["pages"] if pass_name in p["passes"]]
        return {r["host"] for run in runs for r in run["requests"]}, {c["name"] for run in runs for c in run["cookies"]}


def scan(capsys: pytest.CaptureFixture[str], folder: Path, url: str, *args: str) -> Scan:
    paths = {name: folder / f"report.{name}" for name in ("json", "html")}
    draft = folder / "policy-draft.json"
    status = main(["scan", url, "--offline", "--json", str(paths["json"]), "--html", str(paths["html"]), "--policy-draft", str(draft), *args])
    report = json.loads(paths["json"].read_text("utf-8"))
    jsonschema.validate(report, schema())
    return Scan(status, capsys.readouterr().out, report, paths["html"], draft)


@pytest.fixture(scope="module")
def bare_shop() -> Iterator[str]:
    with serve(shop(with_consentmw=False, extra={"/products": SCRIPT_COOKIE, "/about": UNKNOWN_PIXEL + CDN_AND_CRITEO})) as url:
        yield url


@pytest.fixture
def bare_scan(bare_shop: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], chromium_path: str) -> Scan:
    return scan(capsys, tmp_path, bare_shop, "--pages", "3", "--browser", chromium_path)


def test_a_site_without_consentmw_fails_on_ga_the_meta_pixel_and_the_server_set_ga_cookie(bare_scan: Scan) -> None:
    assert bare_scan.status == 1
    violations = bare_scan.violations("fresh")
    assert ("request", GA_HOST, "analytics") in violations
    assert ("request", PIXEL_HOST, "advertising") in violations
    assert ("cookie", "_ga", "analytics") in violations
    assert ("local-storage", "_hjid", "analytics") in violations
    assert ("request", UNKNOWN_HOST, None) in violations  # no catalog knows it: someone must look
    assert ("request", "static.criteo.net", "advertising") in violations  # from the host catalog
    assert not any(host == "cdnjs.cloudflare.com" for _, host, _ in violations)  # a CDN needs no consent
    assert bare_scan.report["summary"]["unknown_third_party_hosts"] == [UNKNOWN_HOST]
    assert bare_scan.report["passes"] == ["fresh"]
    assert any("only the fresh-visitor pass" in note for note in bare_scan.report["notes"])
    assert [p["url"].rsplit("/", 1)[1] for p in bare_scan.report["pages"]] == ["", "products", "about"]  # example.org is not followed
    cookies = {c["name"]: c for p in bare_scan.report["pages"] for c in p["passes"]["fresh"]["cookies"]}
    assert cookies["_ga"]["source"] == "set-cookie" and cookies["_ga"]["third_party"] is False
    assert cookies["_ga"]["expires"] is not None
    assert cookies["_fbp"]["source"] == "script" and cookies["_fbp"]["category"] == "advertising"
    assert cookies["_ga"]["entity"] == "Google Analytics"  # the vendor, from the cookie catalog
    requests = [r for p in bare_scan.report["pages"] for r in p["passes"]["fresh"]["requests"] if r["host"] == GA_HOST]
    assert requests and all(r["third_party"] and r["failure"] and r["entity"] == "Google" for r in requests)
    assert "VIOLATIONS" in bare_scan.output and "_ga" in bare_scan.output


def test_the_policy_draft_validates_and_declares_what_was_found(bare_scan: Scan) -> None:
    draft = load_policy(str(bare_scan.draft))
    services = {s["id"]: c.id for c in draft.categories for s in c.services}
    assert services["google-analytics"] == "analytics"
    assert services["meta-pixel"] == "advertising"
    assert draft.cookie_category("_ga") == "analytics"
    assert draft.cookie_category("_fbp") == "advertising"
    # Declared, not only known to the catalog: the cookie declaration page lists them.
    assert draft.declared_cookie_category("_ga") == "analytics"
    assert draft.declared_cookie_category("_fbp") == "advertising"
    # The unknown vendor is declared where consentmw keeps it inert until the owner decides.
    unclassified = draft.by_id["unclassified"]
    assert not unclassified.required
    assert services["px-unknown-vendor-example"] == "unclassified"
    criteo = next(s for c in draft.categories for s in c.services if s["id"] == "criteo")
    assert services["criteo"] == "advertising" and criteo["match"]["src"]


def test_the_html_report_shows_the_violations_first(bare_scan: Scan, chromium_path: str, artifacts: Path) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path, args=["--headless", "--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(bare_scan.html.as_uri())
            table = page.locator("table#violations")
            assert table.is_visible()
            assert table.locator("caption").inner_text() == "Violations"
            rows = table.locator("tbody tr")
            assert rows.count() == bare_scan.report["summary"]["violations"]
            text = table.inner_text()
            assert GA_HOST in text and PIXEL_HOST in text and "_ga" in text
            # The violations table comes before any page's tables.
            assert page.locator("table").nth(1).get_attribute("id") == "violations"
            page.screenshot(path=artifacts / "scan-report.png", full_page=True)
        finally:
            browser.close()


def test_the_same_site_behind_consentmw_passes_and_sees_the_trackers_after_accept_all(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], chromium_path: str
) -> None:
    log = MemoryStore()
    with serve(shop(with_consentmw=True, extra={}, store=log)) as url:
        result = scan(capsys, tmp_path, url, "--pages", "2", "--browser", chromium_path)
    assert result.status == 0, result.output
    # Its "reject" and "accept" posts are in the site's consent log, marked: no visitor chose them.
    assert len(log.records) == 4 and all(r.scan for r in log.records)
    stats = asyncio.run(log.stats())
    assert (stats.records, stats.scans) == (0, 4)
    assert result.report["violations"] == []
    assert result.report["passes"] == ["fresh", "refused", "accepted"]
    assert result.report["consentmw"]["detected"] is True
    for before in ("fresh", "refused"):
        hosts, cookies = result.seen(before)
        assert GA_HOST not in hosts and PIXEL_HOST not in hosts and "_ga" not in cookies
    hosts, cookies = result.seen("accepted")
    assert {GA_HOST, PIXEL_HOST} <= hosts
    assert "_ga" in cookies
    assert "no violations" in result.output


def test_the_scan_waits_out_the_sites_rate_limit_on_consent_posts(tmp_path: Path, capsys: pytest.CaptureFixture[str], chromium_path: str) -> None:
    # The site's own limiter (one post a second), its bucket for this address emptied just before
    # the scan's first post: that post is answered 429 and must be made again after Retry-After.
    log = MemoryStore()
    site = shop(with_consentmw=True, extra={}, store=log, rate_limit=60)
    statuses: list[int] = []

    async def observed(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and not statuses:
            while site.api.rate_limit.take(scope["client"][0]) == 0:
                pass

        async def send_status(message: Any) -> None:
            if message["type"] == "http.response.start" and scope["method"] == "POST":
                statuses.append(message["status"])
            await send(message)

        await site(scope, receive, send_status)

    with serve(observed) as url:
        result = scan(capsys, tmp_path, url, "--pages", "2", "--browser", chromium_path)
    assert statuses[0] == 429, statuses
    assert result.status == 0, result.output
    assert "error:" not in result.output and "refused the choice" not in result.output
    # Every choice the scan made is recorded once: the posts refused with 429 wrote nothing.
    assert statuses.count(200) == len(log.records) == 4 and all(r.scan for r in log.records)
    hosts, _ = result.seen("accepted")
    assert {GA_HOST, PIXEL_HOST} <= hosts


def test_a_pass_that_could_not_run_is_not_called_clean(tmp_path: Path, capsys: pytest.CaptureFixture[str], chromium_path: str) -> None:
    # A proxy in front of the site answers its consent posts 503 (as during a deploy): no choice is
    # made, so the "reject" and "accept" passes never ran. That is not "no violations".
    site = shop(with_consentmw=True, extra={})

    async def failing(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            await send({"type": "http.response.start", "status": 503, "headers": [(b"content-type", b"text/plain")]})
            await send({"type": "http.response.body", "body": b"upstream unavailable"})
            return
        await site(scope, receive, send)

    with serve(failing) as url:
        result = scan(capsys, tmp_path, url, "--pages", "1", "--browser", chromium_path)
    assert result.status == 2, result.output
    assert "HTTP 503 upstream unavailable" in result.output and "2 pass(es) could not run" in result.output
    assert "\nno violations\n" not in result.output


@pytest.mark.parametrize("site", sorted(demo.SITES))
def test_the_example_sites_scan_clean(site: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], chromium_path: str) -> None:
    with demo_server(tmp_path, "--site", site, "--store", "memory://") as server:
        result = scan(capsys, tmp_path, server.url, "--pages", "2", "--browser", chromium_path)
    assert result.status == 0, result.output
    assert len(result.report["pages"]) == 2
    hosts, _ = result.seen("accepted")
    assert "www.googletagmanager.com" in hosts  # the scan did see the analytics, once allowed


def test_usage_errors_exit_2_and_say_what_to_do(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scan", "ftp://example.com/"]) == 2
    assert "not an http(s) address" in capsys.readouterr().err
    assert main(["scan", "http://127.0.0.1:9/", "--browser", str(tmp_path / "no-chromium")]) == 2
    err = capsys.readouterr().err
    assert "--browser" in err and "apt-get install chromium" in err
    with pytest.raises(SystemExit) as exc:
        main(["scan", "http://127.0.0.1:9/", "--pages", "many"])
    assert exc.value.code == 2


def test_a_start_page_that_does_not_load_exits_2(capsys: pytest.CaptureFixture[str], chromium_path: str) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}/"  # nothing listens there
    assert main(["scan", closed, "--browser", chromium_path, "--timeout", "10"]) == 2
    assert "could not be loaded" in capsys.readouterr().err


@pytest.mark.parametrize("option", ["--json", "--html"])
def test_a_report_that_cannot_be_written_exits_2_not_1(option: str, bare_shop: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], chromium_path: str) -> None:
    # The site has violations (exit 1 when the reports are written): 2 says the command itself failed.
    missing = tmp_path / "no-such-folder" / "report"
    assert main(["scan", bare_shop, "--offline", "--pages", "1", "--browser", chromium_path, option, str(missing)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("consentmw scan: ") and "no-such-folder" in err


# An address computed at run time: no literal in the code names the host, so the rewriter cannot
# see it (docs/blocking.md); the scan is what reports it.
RUN_TIME_ADDRESS = (
    "<script>var parts = ['atm', 'acecounter', 'com'];"
    " var s = document.createElement('script'); s.src = 'https://' + parts.join('.') + '/ac.js';"
    " document.head.appendChild(s);</script>"
)


def test_an_address_built_at_run_time_is_left_live_by_the_rewriter_and_reported_by_the_scan(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], chromium_path: str
) -> None:
    with serve(shop(with_consentmw=True, extra={"/": RUN_TIME_ADDRESS})) as url:
        result = scan(capsys, tmp_path, url, "--pages", "1", "--browser", chromium_path)
    assert result.status == 1
    assert ("request", "atm.acecounter.com", "analytics") in result.violations("fresh")
    assert GA_HOST not in result.seen("fresh")[0]  # what the rewriter does see stays held
    assert "atm.acecounter.com" in result.output
