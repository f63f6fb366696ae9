"""Chromium as the judge of what an undecided visitor's browser fetches from the ways a page or its
headers name a tracker, and of where the banner sends its requests."""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import quote

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from consentmw import ConsentMiddleware
from consentmw.core.store import MemoryStore
from tests.demo_support import serve

from .site import GA4, SECRET, site_policy

pytestmark = pytest.mark.browser

BANNER_KO = "쿠키 사용에 대한 선택"
ACCEPT_KO = "모두 허용"
TRACKER = re.compile(r"^https?://([\w-]+\.)*(googletagmanager\.com|google-analytics\.com|doubleclick\.net|facebook\.net|facebook\.com)/")

# name -> (extra response headers, page). Each page is shown to an undecided visitor.
PAGES: dict[str, tuple[list[tuple[str, str]], str]] = {}


def add(name: str, body: str, headers: list[tuple[str, str]] | None = None, head: str = "") -> None:
    page = f'<!doctype html><html lang="ko"><head><meta charset="utf-8">{head}<title>{name}</title></head><body><p>{name}</p>{body}</body></html>'
    PAGES[name] = (headers if headers is not None else [("content-type", "text/html; charset=utf-8")], page)


add("quoted-comma-content-type", GA4, [("content-type", 'text/html;x="a,b/c"')])
add("html-after-plain", GA4, [("content-type", "text/plain"), ("content-type", "text/html")])
add("base-elsewhere", "", head='<base href="http://elsewhere.invalid/x/">')


async def show(request: Request) -> Response:
    headers, page = PAGES[request.path_params["name"]]
    response = Response(page.encode())
    response.raw_headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers] + [(b"content-length", str(len(page.encode())).encode())]
    return response


@pytest.fixture(scope="module")
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture(scope="module")
def origin(store: MemoryStore) -> Iterator[str]:
    app = Starlette(routes=[Route("/p/{name}", show)])
    # Every test visits from 127.0.0.1: the per-client limit would count all of them as one visitor.
    app.add_middleware(ConsentMiddleware, secret_key=SECRET, policy=site_policy(), store=store, rate_limit=None)
    with serve(app) as port:
        yield f"http://127.0.0.1:{port}"


@pytest.fixture
def visit(chromium, origin: str):
    """Opens a page for a fresh undecided visitor; returns the page and every URL it requested
    elsewhere (each answered empty, never reaching the network)."""
    contexts = []

    def open_page(name: str, wait_for_banner: bool = True):
        context = chromium.new_context(locale="ko-KR")
        contexts.append(context)
        requested: list[str] = []
        context.on("request", lambda request: requested.append(request.url))
        context.route(re.compile(r"^https?://(?!127\.0\.0\.1[:/])"), lambda route: route.fulfill(status=200, body=""))
        page = context.new_page()
        page.goto(f"{origin}/p/{quote(name)}")
        if wait_for_banner:
            page.get_by_role("region", name=BANNER_KO).wait_for(timeout=5000)
        page.wait_for_load_state("networkidle")
        return page, requested

    yield open_page
    for context in contexts:
        context.close()


@pytest.mark.parametrize("name", ["quoted-comma-content-type", "html-after-plain"])
def test_a_page_chromium_renders_as_html_gets_its_tracker_held(visit, name: str) -> None:
    page, requested = visit(name)
    assert page.evaluate("document.contentType") == "text/html"
    assert [url for url in requested if TRACKER.match(url)] == []


def test_a_base_elsewhere_moves_none_of_the_banners_requests(visit, origin: str, store: MemoryStore) -> None:
    before = len(store.records)
    page, requested = visit("base-elsewhere")
    page.get_by_role("button", name=ACCEPT_KO).click()
    page.wait_for_function("consentmw.decided === true", timeout=5000)
    assert [url for url in requested if "elsewhere.invalid" in url] == []
    assert any(url.startswith(f"{origin}/_consent") for url in requested)
    assert len(store.records) == before + 1
