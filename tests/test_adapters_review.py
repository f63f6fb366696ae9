"""Where the WSGI and Django adapters once let through what the ASGI middleware stops, found by
trying them the way a hostile visitor or an unusual app would; each runs against every adapter."""

from __future__ import annotations

import asyncio
import io
import re
import sys
from collections.abc import Callable, Iterator
from typing import Any
from wsgiref.handlers import SimpleHandler

import httpx
import pytest

from consentmw.core.store import MemoryStore
from consentmw.wsgi import ConsentMiddleware
from tests.adapters import ADAPTERS, PAGE, client_for
from tests.conftest import SECRET
from tests.corpus.pages import live_trackers

pytestmark = pytest.mark.filterwarnings("ignore:StreamingHttpResponse must consume synchronous iterators")


@pytest.fixture(params=ADAPTERS)
def site(request: pytest.FixtureRequest) -> Iterator[httpx.Client]:
    with client_for(request.param, {"secret_key": SECRET, "store": MemoryStore()}) as client:
        yield client


def test_a_refused_cookie_the_app_writes_as_a_plain_header_is_dropped(site: httpx.Client) -> None:
    # Django: response["Set-Cookie"] = ... on a JSON answer, not response.set_cookie().
    r = site.get("/raw-cookies?name=_ga")
    assert r.status_code == 200
    assert r.headers.get_list("set-cookie") == []
    assert "cookie" in r.headers["vary"].lower()
    assert site.post("/_consent", json={"accept": "all"}).status_code == 200
    assert set(site.get("/raw-cookies?name=_ga").cookies) == {"_ga"}


def test_the_no_javascript_form_on_a_page_at_a_non_ascii_path_returns_to_that_page(site: httpx.Client) -> None:
    r = site.get("/caf%C3%A9")
    assert r.status_code == 200
    next_url = re.search(r'name="next" value="([^"]*)"', r.text).group(1)  # type: ignore[union-attr]
    assert next_url == "/caf%C3%A9"
    r = site.post("/_consent", data={"accept": "necessary", "next": next_url})
    assert (r.status_code, r.headers["location"]) == (303, "/caf%C3%A9")


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_a_prefix_that_is_not_ascii_is_answered_on_every_adapter(adapter: str) -> None:
    with client_for(adapter, {"secret_key": SECRET, "store": MemoryStore(), "prefix": "/동의"}) as site:
        assert "/동의/banner.js?v=" in site.get("/page").text
        assert site.get("/동의/policy").status_code == 200
        r = site.post("/동의", data={"accept": "all", "next": "/page"})
        assert (r.status_code, r.headers["location"]) == (303, "/page")
        assert site.get("/").json()["analytics"] is True


def wsgi_get(app: Callable[..., Any]) -> tuple[str, dict[str, str], bytes]:
    """One GET through consentmw.wsgi, called as a WSGI server calls an app."""
    got: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], None]:
        got["status"], got["headers"] = status, {k.lower(): v for k, v in headers}
        return lambda data: pytest.fail("the server's write() was used for a page consentmw holds")

    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/", "SERVER_NAME": "testserver", "SERVER_PORT": "80", "wsgi.url_scheme": "http"}
    result = ConsentMiddleware(app, secret_key=SECRET, store=MemoryStore())(environ, start_response)
    try:
        body = b"".join(result)
    finally:
        getattr(result, "close", lambda: None)()
    return got["status"], got["headers"], body


@pytest.mark.parametrize("returned", [[], [b"<p>returned after the writes</p>"]], ids=["all-written", "written-then-returned"])
def test_a_wsgi_app_that_writes_its_page_through_write_gets_it_rewritten(returned: list[bytes]) -> None:
    # PEP 3333's legacy write() callable: legal, and once a 500 for every page.
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        write = start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
        data = PAGE.encode()
        write(data[:100])
        write(data[100:])
        return returned

    status, headers, body = wsgi_get(app)
    assert status == "200 OK"
    assert live_trackers(body.decode()) == set()
    assert b"/_consent/banner.js?v=" in body
    assert all(body.index(chunk) > body.index(b"</html>") for chunk in returned)  # what came after the writes, after them
    assert int(headers["content-length"]) == len(body)  # all of it came before the page was released


@pytest.mark.parametrize("etag", ["abc", '"abc', "W/abc"])
def test_an_unquoted_etag_is_not_sent_unchanged_across_consent_states(etag: str) -> None:
    # Browsers send back whatever ETag they got; an app comparing it as a string would answer 304
    # and the visitor who just withdrew consent would see the cached page with its trackers live.
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        modified = ("Last-Modified", "Wed, 21 Oct 2015 07:28:00 GMT")
        start_response("200 OK", [("Content-Type", "text/html; charset=utf-8"), ("ETag", etag), modified])
        return [PAGE.encode()]

    status, headers, body = wsgi_get(app)
    assert status == "200 OK" and b"/_consent/banner.js" in body
    assert headers.get("etag") != etag
    assert "last-modified" not in headers or headers["etag"].endswith('"')


@pytest.mark.parametrize(
    "content_types",
    [["text/plain", "text/html; charset=utf-8"], ["text/plain, text/html"], ["application/json, application/xhtml+xml"]],
    ids=["two-headers", "one-list", "xhtml-last"],
)
def test_a_page_whose_content_type_ends_in_html_is_rewritten(content_types: list[str]) -> None:
    # Browsers take the last type of a Content-Type list (Fetch: "extract a MIME type") and render
    # HTML; read by its first type, the page went out with its trackers live.
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        start_response("200 OK", [("Content-Type", value) for value in content_types])
        return [PAGE.encode()]

    status, headers, body = wsgi_get(app)
    assert live_trackers(body.decode()) == set()
    assert b"/_consent/banner.js" in body


def test_an_error_after_the_page_started_is_raised_to_the_server_as_pep_3333_says() -> None:
    # start_response with exc_info once the headers are out must raise; swallowed, the error page
    # was spliced into the page the visitor was already getting, under its 200.
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
        data = PAGE.encode()
        yield data[:200]
        try:
            raise ValueError("the database went away")
        except ValueError:
            start_response("500 Internal Server Error", [("Content-Type", "text/html")], sys.exc_info())
            yield b"<p>error page</p>"

    out, errors = io.BytesIO(), io.StringIO()
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/", "SERVER_NAME": "testserver", "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1"}
    handler = SimpleHandler(io.BytesIO(), out, errors, environ)
    handler.run(ConsentMiddleware(app, secret_key=SECRET, store=MemoryStore()))
    assert out.getvalue().startswith(b"HTTP/1.0 200 OK")
    assert b"error page" not in out.getvalue()
    assert "the database went away" in errors.getvalue()  # the server logged what went wrong


UNKNOWN_TRACKER = '<html><head><script src="https://cdn.newtracker.example/t.js"></script></head><body>shop</body></html>'


def left_live(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "left live" in r.getMessage()]


def test_wsgi_names_an_unknown_third_party_script_left_live(caplog: pytest.LogCaptureFixture) -> None:
    # Fail loudly: what consentmw cannot block, it names (page and host), on WSGI as on ASGI.
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
        return [UNKNOWN_TRACKER.encode()]

    wsgi_get(app)
    assert left_live(caplog) == [
        "consentmw: left live: unknown third-party host cdn.newtracker.example on / (script https://cdn.newtracker.example/t.js); "
        "declare it in the policy if it tracks"
    ]


def test_django_names_an_unknown_third_party_script_left_live(caplog: pytest.LogCaptureFixture) -> None:
    from django.http import HttpResponse
    from django.test import Client, override_settings
    from django.urls import path

    from tests.adapters import django_settings

    urls = type(sys)("consentmw_review_urls")
    urls.urlpatterns = [path("shop", lambda request: HttpResponse(UNKNOWN_TRACKER))]  # type: ignore[attr-defined]
    with django_settings({"store": MemoryStore()}), override_settings(ROOT_URLCONF=urls):
        assert Client().get("/shop").status_code == 200
    assert [m.split(" (")[0] for m in left_live(caplog)] == ["consentmw: left live: unknown third-party host cdn.newtracker.example on /shop"]


@pytest.mark.parametrize("length", ["\u00b2", "\u00b9\u00b2", "-1", "1e3", " 5"])
def test_a_content_length_that_is_not_a_number_gets_a_4xx_not_a_500(length: str) -> None:
    # wsgiref passes the header as sent, read as latin-1: "Content-Length: \\xb2" is "²", which
    # str.isdigit() takes for a digit and int() refuses.
    body = b'{"accept":"all"}'
    environ = {
        "REQUEST_METHOD": "POST", "PATH_INFO": "/_consent", "SERVER_NAME": "testserver", "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1", "CONTENT_TYPE": "application/json", "CONTENT_LENGTH": length, "HTTP_ORIGIN": "http://testserver",
    }  # fmt: skip
    out, errors = io.BytesIO(), io.StringIO()
    store = MemoryStore()
    SimpleHandler(io.BytesIO(body), out, errors, environ).run(ConsentMiddleware(lambda e, s: [], secret_key=SECRET, store=store))
    status = int(out.getvalue().split(b" ", 2)[1])
    assert 400 <= status < 500, out.getvalue()[:300]
    assert errors.getvalue() == ""
    assert store.records == []


def test_asgi_answers_a_content_length_of_superscripts_with_a_4xx() -> None:
    from consentmw import ConsentMiddleware as ASGIConsentMiddleware

    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b'{"accept":"all"}', "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    headers = [(b"host", b"testserver"), (b"origin", b"http://testserver"), (b"content-type", b"application/json"), (b"content-length", b"\xb2")]
    scope = {"type": "http", "method": "POST", "path": "/_consent", "raw_path": b"/_consent", "query_string": b"", "headers": headers, "root_path": ""}
    middleware = ASGIConsentMiddleware(lambda s, r, se: None, secret_key=SECRET, store=MemoryStore())
    asyncio.run(middleware(scope, receive, send))
    assert 400 <= sent[0]["status"] < 500
