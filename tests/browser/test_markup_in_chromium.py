"""Markup whose reading once went wrong, judged by Chromium: each page makes the browser request a
tracker host when served as written, none for an undecided visitor behind consentmw, and the host
again once the visitor accepts all. Pages are sent whole (one body), the rewriter's fast scan."""

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

from .conftest import visitor

pytestmark = pytest.mark.browser

GTAG = '<script async src="https://www.googletagmanager.com/gtag/js?id=G-7QX2LCE5N1"></script>'
BODIES = {
    # "<!--->" is a whole comment: the tracker after it is markup, not the comment's text.
    "comment": f"<!--->{GTAG}<!-- -->",
    # A catalog entry "*.1rx.io" covers the bare domain too.
    "bare-domain": '<script src="https://1rx.io/sync.js"></script>',
    # "</titlex>" does not end a title; "</title>" does, and the "<!--" before it is text.
    "title": f"<title></titlex><!--</title>{GTAG}",
    # "<!-->" inside a script ends its escape at once: "</script>" ends the script.
    "script-escape": f"<script><!--><script></script>{GTAG}",
}
HOSTS = {"comment": "www.googletagmanager.com", "bare-domain": "1rx.io", "title": "www.googletagmanager.com", "script-escape": "www.googletagmanager.com"}


def page(name: str) -> str:
    return f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"></head><body><p>x</p>{BODIES[name]}</body></html>'


async def show(request: Request) -> HTMLResponse:
    return HTMLResponse(page(request.path_params["name"]))


@pytest.fixture(scope="module")
def sites() -> Iterator[dict[str, str]]:
    """The same pages as written ("bare") and behind consentmw ("guarded")."""
    bare = Starlette(routes=[Route("/{name}", show)])
    guarded = Starlette(routes=[Route("/{name}", show)])
    guarded.add_middleware(ConsentMiddleware, secret_key=SECRET, store=MemoryStore())
    with serve(bare) as bare_port, serve(guarded) as guarded_port:
        yield {"bare": f"http://127.0.0.1:{bare_port}", "guarded": f"http://127.0.0.1:{guarded_port}"}


def requested(browser, site: str, name: str, choice: dict | None) -> set[str]:
    hosts: set[str] = set()
    with visitor(browser, site, choice, hosts) as context:
        tab = context.new_page()
        tab.goto(f"/{name}", wait_until="load")
        if choice is not None:
            tab.evaluate("() => window.consentmw.ready")
        tab.wait_for_timeout(300)
    return hosts


@pytest.mark.parametrize("name", sorted(BODIES))
def test_chromium_requests_the_tracker_only_once_the_visitor_accepts(chromium, sites: dict[str, str], name: str) -> None:
    host = HOSTS[name]
    assert requested(chromium, sites["bare"], name, None) == {host}  # the page as written loads it
    assert requested(chromium, sites["guarded"], name, None) == set()
    assert requested(chromium, sites["guarded"], name, {"accept": "all"}) == {host}
