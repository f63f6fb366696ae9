"""Real framework responses (Starlette, Django through its ASGI handler) as they come
through consentmw: what the visitor's browser gets."""

from __future__ import annotations

import datetime
import types
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import FileResponse, Response
from starlette.routing import Route
from starlette.staticfiles import StaticFiles

from consentmw import ConsentMiddleware, demo
from consentmw.core.store import MemoryStore
from tests.conftest import SECRET, client_for
from tests.corpus.pages import live_trackers, shop_page

# Django's ASGI handler says so for every FileResponse (it reads files with a sync iterator).
pytestmark = pytest.mark.filterwarnings("ignore:StreamingHttpResponse must consume synchronous iterators")

PAGE = shop_page(["ga4-gtag", "meta-pixel"], 2).encode()
BOTH = {"ga4-gtag", "meta-pixel"}
DJANGO_MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]


@pytest.fixture
def django_site() -> Any:
    """Wraps Django URL patterns in Django's own ASGI handler (the example project's settings, its
    URLs and middleware overridden), then in ConsentMiddleware as the README says."""
    demo.load_site("django")  # configures Django once per process
    from django.core.asgi import get_asgi_application
    from django.test import override_settings

    overrides: list[Any] = []

    def site(*urlpatterns: Any) -> ConsentMiddleware:
        urls = types.ModuleType("consentmw_test_urls")
        urls.urlpatterns = list(urlpatterns)  # type: ignore[attr-defined]
        override = override_settings(ROOT_URLCONF=urls, MIDDLEWARE=DJANGO_MIDDLEWARE, DEBUG=False)
        override.enable()
        overrides.append(override)
        return ConsentMiddleware(get_asgi_application(), secret_key=SECRET, store=MemoryStore())

    yield site
    for override in reversed(overrides):
        override.disable()


@pytest.fixture
def html_file(tmp_path: Path) -> Path:
    path = tmp_path / "report.html"
    path.write_bytes(PAGE)
    return path


def starlette_site(*routes: Any) -> Starlette:
    app = Starlette(routes=list(routes))
    app.add_middleware(ConsentMiddleware, secret_key=SECRET, store=MemoryStore())
    return app


# -- downloads --------------------------------------------------------------------------------


def starlette_download(path: Path) -> Any:
    return starlette_site(Route("/download", lambda request: FileResponse(path, filename="report.html")))


def django_download(path: Path, django_site: Callable[..., Any]) -> Any:
    from django.http import FileResponse as DjangoFileResponse
    from django.urls import path as url

    return django_site(url("download", lambda request: DjangoFileResponse(path.open("rb"), as_attachment=True)))


@pytest.mark.parametrize("make", [lambda f, d: starlette_download(f), django_download], ids=["starlette", "django"])
async def test_an_html_file_offered_as_a_download_is_saved_as_it_is(make: Callable[..., Any], html_file: Path, django_site: Any) -> None:
    # Content-Disposition: attachment: the browser saves the file, it does not show a page. A saved
    # report that came back with the banner's scripts and a consent form in it is not the file.
    async with client_for(make(html_file, django_site)) as client:
        r = await client.get("/download")
    assert r.status_code == 200 and r.headers["content-disposition"].startswith("attachment")
    assert r.content == PAGE


# -- XHTML ------------------------------------------------------------------------------------

XHTML = (
    b'<?xml version="1.0" encoding="utf-8"?>\n<!DOCTYPE html>\n'
    b'<html xmlns="http://www.w3.org/1999/xhtml"><head><meta charset="utf-8"/><title>Shop</title>'
    b'<script async="async" src="https://www.googletagmanager.com/gtag/js?id=G-7QX2LCE5N1"></script>'
    b"</head><body><p>Hello</p></body></html>"
)


async def test_an_xhtml_page_stays_well_formed_xml() -> None:
    # A browser parses application/xhtml+xml as XML: one tag that is not well-formed (a <link>
    # without "/>", a bare "defer") and the visitor sees a parse error instead of the page.
    app = starlette_site(Route("/", lambda request: Response(XHTML, media_type="application/xhtml+xml")))
    async with client_for(app) as client:
        r = await client.get("/")
    root = ET.fromstring(r.content)  # raises on a page the browser would not show
    ns = "{http://www.w3.org/1999/xhtml}"
    scripts = root.iter(f"{ns}script")
    assert [s.get("src") for s in scripts if s.get("src")] == [f"/_consent/banner.js?v={app_versions(app)['banner.js']}"]
    assert live_trackers(r.text) == set() and "gtag('consent','default'" in r.text
    # No <noscript> in XHTML: its form would show to every visitor.
    assert root.find(f".//{ns}noscript") is None and int(r.headers["content-length"]) == len(r.content)


def app_versions(app: Starlette) -> dict[str, str]:
    middleware = app.middleware_stack
    while not isinstance(middleware, ConsentMiddleware):
        middleware = middleware.app
    return middleware.core.asset_versions


# -- revalidation across consent states --------------------------------------------------------


def django_last_modified(path: Path, django_site: Callable[..., Any]) -> Any:
    from django.http import HttpResponse
    from django.urls import path as url
    from django.views.decorators.http import last_modified

    @last_modified(lambda request: datetime.datetime(2026, 1, 5, tzinfo=datetime.timezone.utc))
    def page(request: Any) -> HttpResponse:
        return HttpResponse(PAGE)

    return django_site(url("page", page))


def django_static_serve(path: Path, django_site: Callable[..., Any]) -> Any:
    from django.urls import path as url
    from django.views.static import serve

    return django_site(url("page", serve, {"path": path.name, "document_root": str(path.parent)}))


def starlette_file_response(path: Path, django_site: Any) -> Any:
    return starlette_site(Route("/page", lambda request: FileResponse(path)))


def starlette_static_files(path: Path, django_site: Any) -> Any:
    from starlette.routing import Mount

    return starlette_site(Mount("/page", StaticFiles(directory=path.parent, html=True)))


REVALIDATING_SITES = {
    "django-last_modified": (django_last_modified, "/page"),
    "django-static-serve": (django_static_serve, "/page"),
    "starlette-FileResponse": (starlette_file_response, "/page"),
    "starlette-StaticFiles": (starlette_static_files, "/page/report.html"),
}


def conditional_headers(response: httpx.Response) -> dict[str, str]:
    """What a browser sends to revalidate its cached copy of `response`."""
    headers = {}
    if "etag" in response.headers:
        headers["if-none-match"] = response.headers["etag"]
    if "last-modified" in response.headers:
        headers["if-modified-since"] = response.headers["last-modified"]
    return headers


@pytest.mark.parametrize(("make", "url"), REVALIDATING_SITES.values(), ids=REVALIDATING_SITES.keys())
async def test_a_cached_page_is_not_revalidated_into_another_consent_state(make: Callable[..., Any], url: str, html_file: Path, django_site: Any) -> None:
    # The page cached while the visitor allowed everything has live trackers. After a withdrawal
    # the banner reloads the page; a browser that revalidates it with only the Last-Modified date
    # got 304 and ran the cached trackers again.
    async with client_for(make(html_file, django_site)) as client:
        await client.post("/_consent", json={"accept": "all"})
        cached = await client.get(url)
        assert cached.status_code == 200 and live_trackers(cached.text) == BOTH
        await client.post("/_consent", json={"accept": "necessary"})
        revalidated = await client.get(url, headers=conditional_headers(cached))
    assert revalidated.status_code == 200 and live_trackers(revalidated.text) == set()


# -- error pages ------------------------------------------------------------------------------


async def test_a_starlette_app_wrapped_whole_gets_its_500_page_rewritten() -> None:
    # add_middleware puts consentmw inside ServerErrorMiddleware, which renders the 500 handler's
    # page (README limits); wrapping the whole app, as the README says to, covers that page too.
    from starlette.responses import HTMLResponse

    def fail(request: Any) -> None:
        raise RuntimeError("the database is down")

    async def error_page(request: Any, exc: Exception) -> HTMLResponse:
        return HTMLResponse(PAGE, status_code=500)

    site = Starlette(routes=[Route("/", fail)], exception_handlers={500: error_page})
    app = ConsentMiddleware(site, secret_key=SECRET, store=MemoryStore())
    transport = httpx.ASGITransport(app, raise_app_exceptions=False)  # Starlette re-raises for the server's log
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        r = await client.get("/")
    assert r.status_code == 500 and live_trackers(PAGE.decode()) == BOTH
    assert live_trackers(r.text) == set() and r.text.count("/_consent/banner.js") == 1
