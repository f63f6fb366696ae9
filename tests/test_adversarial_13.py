"""Responses whose headers were read before (PageRewriting.shape) are what they were when every
response's headers were read anew: shapes the first look at them missed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from consentmw import ConsentMiddleware
from consentmw.core.store import MemoryStore
from tests.conftest import SECRET, client_for
from tests.corpus.pages import live_trackers, shop_page

PAGE = shop_page(["ga4-gtag", "meta-pixel"], 2).encode()
DATE = "Wed, 21 Oct 2026 07:28:00 GMT"


def raw_app(headers: list, body: bytes = PAGE):
    async def app(scope, receive, send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app


async def test_headers_sent_as_two_item_lists_as_the_asgi_spec_writes_them() -> None:
    """The ASGI spec's headers are "an iterable of [name, value] two-item iterables" (its own
    examples write lists): such a page is rewritten, and such a response's cookies filtered, the
    first time and the next (a list cannot be a key of the remembered shapes: it was a 500)."""
    page = raw_app([[b"content-type", b"text/html; charset=utf-8"], [b"content-length", str(len(PAGE)).encode()]])
    cookie = raw_app([[b"content-type", b"application/json"], [b"set-cookie", b"_ga=GA1.1.1; Path=/"]], b"{}")
    for app in (page, cookie):
        mw = ConsentMiddleware(app, secret_key=SECRET, store=MemoryStore())
        async with client_for(mw) as client:
            for _ in range(2):
                r = await client.get("/")
                assert r.status_code == 200
                assert "_ga" not in r.headers.get("set-cookie", "")  # analytics refused until chosen
                if app is page:
                    assert live_trackers(r.text) == set() and b"/_consent/banner.js" in r.content
                    assert r.headers["content-length"] == str(len(r.content))


@pytest.mark.parametrize("spelling", [b"last-modified", b"Last-Modified"])
async def test_a_page_with_an_etag_keeps_its_last_modified(spelling: bytes) -> None:
    """Last-Modified is dropped only from a page without an ETag (a date cannot tell consent
    variants apart; with an ETag, If-Modified-Since is ignored). A page with both validators
    (Starlette's FileResponse and StaticFiles, Django's ConditionalGetMiddleware with
    @last_modified) keeps its date (document.lastModified, heuristic freshness)."""
    headers = [(b"content-type", b"text/html; charset=utf-8"), (b"etag", b'"v1"'), (spelling, DATE.encode())]
    mw = ConsentMiddleware(raw_app(headers), secret_key=SECRET, store=MemoryStore())
    async with client_for(mw) as client:
        for _ in range(2):
            r = await client.get("/")
            assert r.headers["etag"].startswith('W/"v1-')
            assert r.headers.get("last-modified") == DATE


async def test_a_static_html_file_keeps_its_last_modified(tmp_path: Path) -> None:
    """The same with a real app: Starlette's StaticFiles serving an HTML file."""
    from starlette.staticfiles import StaticFiles

    (tmp_path / "index.html").write_bytes(PAGE)
    os.utime(tmp_path / "index.html", (1_700_000_000, 1_700_000_000))
    mw = ConsentMiddleware(StaticFiles(directory=tmp_path, html=True), secret_key=SECRET, store=MemoryStore())
    async with client_for(mw) as client:
        r = await client.get("/index.html")
    assert r.status_code == 200 and live_trackers(r.text) == set()
    assert r.headers.get("last-modified") == "Tue, 14 Nov 2023 22:13:20 GMT"
    assert r.headers["etag"].startswith('W/"')


def test_a_django_page_with_both_validators_keeps_its_last_modified(tmp_path: Path) -> None:
    """Django's @condition(etag_func=..., last_modified_func=...) sends both: the date stays."""
    import types

    from tests.test_django import MIDDLEWARE, urls  # configures Django (the example project's settings)

    from django.http import HttpResponse
    from django.test import Client, override_settings
    from django.urls import path

    module = types.ModuleType("adv13_urls")
    module.urlpatterns = [  # type: ignore[attr-defined]
        *urls(tmp_path).urlpatterns,
        path("both", lambda request: HttpResponse(PAGE, headers={"ETag": '"d1"', "Last-Modified": DATE})),
    ]
    with override_settings(ROOT_URLCONF=module, MIDDLEWARE=MIDDLEWARE, CONSENTMW={"STORE": MemoryStore()}, DEBUG=False):
        r = Client().get("/both")
    assert r.status_code == 200 and live_trackers(r.content.decode()) == set()
    assert r.headers["ETag"].startswith('W/"d1-') and r.headers.get("Last-Modified") == DATE
