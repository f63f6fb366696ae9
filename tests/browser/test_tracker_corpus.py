"""The whole tracker corpus in a real Chromium: what the browser actually requests, before and
after consent. Third-party requests never leave the machine: they are recorded and answered
with empty bodies, which is enough for the inline loaders to ask for their next script."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from consentmw import ConsentMiddleware
from consentmw.core.store import MemoryStore
from tests.conftest import SECRET
from tests.demo_support import serve
from tests.corpus.pages import SNIPPETS, shop_page

from .conftest import visitor

PAGE = shop_page(sorted(SNIPPETS), 4)
# Hosts each category's snippets reach when they run.
# (With scripting on, the <noscript> pixels are not loaded whatever the choice.)
ANALYTICS = {"www.googletagmanager.com", "www.google-analytics.com", "wcs.naver.net", "static.hotjar.com", "www.clarity.ms"}
# Google Ads' gtag.js (id AW-...) comes from the same host as Google Analytics' (id G-...).
ADVERTISING = {"www.googletagmanager.com", "connect.facebook.net", "t1.daumcdn.net", "pagead2.googlesyndication.com", "securepubads.g.doubleclick.net"}
SITE_CDN = "img.shop.example.kr"  # the shop's own product images

pytestmark = pytest.mark.browser


async def shop(request: Request) -> HTMLResponse:
    return HTMLResponse(PAGE)


@pytest.fixture(scope="module")
def shop_site() -> Iterator[str]:
    app = Starlette(routes=[Route("/", shop)])
    app.add_middleware(ConsentMiddleware, secret_key=SECRET, store=MemoryStore())
    with serve(app) as port:
        yield f"http://127.0.0.1:{port}"


def third_party_hosts(browser, site: str, choice: dict | None) -> set[str]:
    """Hosts other than the site that a visitor's browser asked for while loading the page."""
    hosts: set[str] = set()
    with visitor(browser, site, choice, hosts) as context:
        page = context.new_page()
        page.goto("/", wait_until="load")
        page.wait_for_timeout(300)  # loaders that add a script after load
    return hosts - {SITE_CDN}


def test_undecided_visitor_requests_no_tracker(chromium, shop_site: str) -> None:
    assert third_party_hosts(chromium, shop_site, None) == set()


def test_refusing_requests_no_tracker(chromium, shop_site: str) -> None:
    assert third_party_hosts(chromium, shop_site, {"accept": "necessary"}) == set()


@pytest.mark.parametrize(("category", "expected"), [("analytics", ANALYTICS), ("advertising", ADVERTISING)])
def test_allowing_one_category_requests_its_trackers_only(chromium, shop_site: str, category: str, expected: set[str]) -> None:
    assert third_party_hosts(chromium, shop_site, {"choices": {category: True}}) == expected


def test_accepting_all_requests_every_tracker(chromium, shop_site: str) -> None:
    assert third_party_hosts(chromium, shop_site, {"accept": "all"}) == ANALYTICS | ADVERTISING
