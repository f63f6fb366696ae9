"""One uvicorn server and one Chromium for the browser tests; a fresh browser context per test.

Package scope, not session: Playwright's sync API holds an event loop marked as running until it
stops, and the asyncio tests that run after this package need the thread's loop to themselves."""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from consentmw.core.store import MemoryStore
from consentmw.scan.browser import CHROMIUM_FLAGS
from tests.demo_support import serve

from .site import make_site

CHROMIUM = os.environ.get("CONSENTMW_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

TRACKER_HOSTS = re.compile(
    r"^https?://([\w-]+\.)*(googletagmanager\.com|google-analytics\.com|doubleclick\.net|connect\.facebook\.net"
    r"|facebook\.com|wcs\.naver\.net|t1\.daumcdn\.net)/"
)
# What each tracker's script does when it runs, reduced to leaving a mark the tests can read.
STUBS = {
    "/gtag/js": 'window.__ran.push("gtag.js")',
    "/gtm.js": 'window.__ran.push("gtm.js")',
    "/en_US/fbevents.js": 'window.__ran.push("fbevents.js")',
    "/wcslog.js": 'window.wcs = {}; window.wcs_do = function () { window.__ran.push("wcs_do") }; window.__ran.push("wcslog.js")',
    "/kas/static/kp.js": 'window.kakaoPixel = function () { return { pageView: function () { window.__ran.push("kakao pageView") } } }; window.__ran.push("kp.js")',
}
PIXEL_GIF = bytes.fromhex("47494638396101000100800000000000ffffff21f90401000000002c00000000010001000002024401003b")

pytestmark = pytest.mark.browser


@dataclass
class Trackers:
    """Requests the page made to tracker hosts, as (host, path)."""

    requests: list[tuple[str, str]] = field(default_factory=list)

    @property
    def hosts(self) -> set[str]:
        return {host for host, _ in self.requests}

    def clear(self) -> None:
        self.requests.clear()


@pytest.fixture(scope="package")
def chromium() -> Iterator[object]:
    if not os.path.exists(CHROMIUM):
        reason = f"{CHROMIUM} is missing; install Debian's chromium package to run the browser tests"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            # A CI run without a browser would pass while the banner goes untested.
            pytest.fail(reason + " (CI is set: the browser tests must run there)", pytrace=False)
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=list(CHROMIUM_FLAGS))
        yield browser
        browser.close()


ELSEWHERE = re.compile(r"^https?://(?!127\.0\.0\.1[:/]).*")


@contextlib.contextmanager
def visitor(browser, site: str, choice: dict | None, hosts: set[str]) -> Iterator[object]:
    """A fresh context on ``site`` whose visitor has posted ``choice`` to the consent API (None:
    undecided). Every other host is answered with an empty 200 and added to ``hosts``."""
    context = browser.new_context(base_url=site)

    def record(route) -> None:
        hosts.add(re.match(r"^\w+://([^/:]+)", route.request.url).group(1))
        route.fulfill(status=200, body="")

    try:
        context.route(ELSEWHERE, record)
        if choice is not None:
            assert context.request.post("/_consent", data=choice, headers={"origin": site}).ok
        yield context
    finally:
        context.close()


@pytest.fixture(scope="package")
def site() -> Iterator[str]:
    with serve(make_site(store=MemoryStore())) as port:
        yield f"http://127.0.0.1:{port}"


@pytest.fixture
def trackers() -> Trackers:
    return Trackers()


@pytest.fixture
def new_context(chromium, site: str, trackers: Trackers):
    """Opens browser contexts (visitors) whose tracker requests go to local stubs and are recorded."""
    contexts = []

    def route_tracker(route) -> None:
        url = route.request.url
        host, path = re.match(r"^https?://([^/]+)(/[^?]*)", url).groups()
        trackers.requests.append((host, path))
        body = STUBS.get(path)
        if body is not None:
            route.fulfill(status=200, content_type="text/javascript", body=body)
        elif path == "/tr":
            route.fulfill(status=200, content_type="image/gif", body=PIXEL_GIF)
        else:
            route.fulfill(status=204, body="")

    def route_elsewhere(route) -> None:
        route.abort()

    def factory(**options):
        options.setdefault("base_url", site)
        options.setdefault("locale", "ko-KR")
        context = chromium.new_context(**options)
        context.route(ELSEWHERE, route_elsewhere)
        context.route(TRACKER_HOSTS, route_tracker)
        context.set_default_timeout(5000)
        contexts.append(context)
        return context

    yield factory
    for context in contexts:
        context.close()


@pytest.fixture
def page(new_context):
    return new_context().new_page()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
