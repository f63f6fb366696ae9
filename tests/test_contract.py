"""The contract every adapter keeps (consentmw.asgi, consentmw.wsgi, consentmw.django on WSGI and
on ASGI), asserted once and run against each, so they cannot drift apart."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from consentmw.core.store import MemoryStore
from tests.adapters import ADAPTERS, TRACKERS, client_for
from tests.conftest import SECRET
from tests.corpus.pages import live_trackers

# Django's ASGI handler says so for a sync iterator (the /stream page); the page is still streamed.
pytestmark = pytest.mark.filterwarnings("ignore:StreamingHttpResponse must consume synchronous iterators")

ACCEPT_ALL = {"accept": "all"}


class HangingStore(MemoryStore):
    """A consent log that never answers (a locked SQLite file, a PostgreSQL server gone quiet)."""

    async def record(self, record: Any) -> None:
        await asyncio.sleep(30)


@pytest.fixture(params=ADAPTERS)
def adapter(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def site(adapter: str, store: MemoryStore) -> Iterator[httpx.Client]:
    with client_for(adapter, {"secret_key": SECRET, "store": store}) as client:
        yield client


def consent_cookie(response: httpx.Response) -> str:
    return response.cookies["consentmw"]


def test_a_new_visitor_has_not_decided_and_allows_nothing_optional(site: httpx.Client) -> None:
    assert site.get("/").json() == {"decided": False, "analytics": False, "gpc": False}


def test_accepting_all_sets_the_cookie_logs_the_choice_and_the_app_sees_it(site: httpx.Client, store: MemoryStore) -> None:
    r = site.post("/_consent", json=ACCEPT_ALL)
    assert r.status_code == 200, r.text
    assert r.json()["decided"] is True
    assert consent_cookie(r)
    assert [rec.choices["analytics"] for rec in store.records] == [True]
    assert site.get("/").json() == {"decided": True, "analytics": True, "gpc": False}


def test_a_form_post_without_javascript_redirects_back_with_the_cookie(site: httpx.Client, store: MemoryStore) -> None:
    r = site.post("/_consent", data={"accept": "necessary", "next": "/page?x=1"})
    assert r.status_code == 303
    assert r.headers["location"] == "/page?x=1"
    assert consent_cookie(r)
    assert [(rec.method, rec.path, rec.choices["analytics"]) for rec in store.records] == [("form", "/page", False)]


@pytest.mark.parametrize(
    ("kwargs", "status", "error"),
    [
        ({"content": b"{not json", "headers": {"content-type": "application/json"}}, 400, "malformed_json"),
        ({"json": {"choices": {"nonsense": True}}}, 422, "unknown_category"),
        ({"json": {"choices": {"necessary": False}}}, 422, "required_category"),
        ({"json": ACCEPT_ALL, "headers": {"origin": "https://evil.example", "sec-fetch-site": "cross-site"}}, 403, "cross_site"),
        ({"content": b"{" + b" " * 9000 + b"}", "headers": {"content-type": "application/json"}}, 413, "body_too_large"),
        ({"content": b"accept=all", "headers": {"content-type": "text/plain"}}, 415, "unsupported_media_type"),
    ],
)
def test_bad_input_is_refused_with_a_named_error_and_nothing_recorded(
    site: httpx.Client, store: MemoryStore, kwargs: dict[str, Any], status: int, error: str
) -> None:
    r = site.post("/_consent", **kwargs)
    assert (r.status_code, r.json()["error"]) == (status, error)
    assert "set-cookie" not in r.headers
    assert store.records == []


def test_the_wrong_method_and_unknown_endpoints_get_json_errors(site: httpx.Client) -> None:
    r = site.delete("/_consent")
    assert (r.status_code, r.json()["error"], r.headers["allow"]) == (405, "method_not_allowed", "GET, HEAD, POST")
    r = site.get("/_consent/nothing-here")
    assert (r.status_code, r.json()["error"]) == (404, "not_found")


def test_policy_banner_and_pages_are_served(site: httpx.Client) -> None:
    assert site.get("/_consent/policy").json()["categories"]
    r = site.get("/_consent/banner.js")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/javascript")
    assert site.get("/_consent/banner.js", headers={"if-none-match": r.headers["etag"]}).status_code == 304
    r = site.get("/_consent/opt-out?lang=en")
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    assert r.headers["x-content-type-options"] == "nosniff"
    r = site.get("/_consent/cookies?lang=en")
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    assert "<code>_ga</code>" in r.text and "2 years" in r.text


def test_cookies_of_refused_categories_are_dropped_until_allowed(site: httpx.Client) -> None:
    r = site.get("/cookies?name=_ga&name=csrftoken")
    assert set(r.cookies) == {"csrftoken"}
    assert "cookie" in r.headers["vary"].lower()
    assert consent_cookie(site.post("/_consent", json=ACCEPT_ALL))
    r = site.get("/cookies?name=_ga&name=csrftoken")
    assert set(r.cookies) == {"_ga", "csrftoken"}


@pytest.mark.parametrize("path", ["/page", "/stream"])
def test_trackers_stay_inert_until_consent(site: httpx.Client, path: str) -> None:
    r = site.get(path)
    assert r.status_code == 200
    assert live_trackers(r.text) == set()
    assert "/_consent/banner.js?v=" in r.text
    assert "cookie" in r.headers["vary"].lower()
    if path == "/page":
        assert int(r.headers["content-length"]) == len(r.content)
    else:
        assert "content-length" not in r.headers
    assert consent_cookie(site.post("/_consent", json=ACCEPT_ALL))
    r = site.get(path)
    assert live_trackers(r.text) == TRACKERS


def test_a_streamed_page_reaches_the_visitor_whole(site: httpx.Client) -> None:
    # /stream sends /page in two chunks: the visitor gets the same page either way (its consent
    # form returning to its own path), its start and its end included, before and after consent.
    for _ in ("undecided", "accepted"):
        whole = site.get("/page").text
        assert 'name="next" value="/page"' in whole
        assert site.get("/stream").text == whole.replace('name="next" value="/page"', 'name="next" value="/stream"')
        assert consent_cookie(site.post("/_consent", json=ACCEPT_ALL))


def test_gpc_refuses_what_the_policy_says_whatever_the_cookie(site: httpx.Client) -> None:
    assert consent_cookie(site.post("/_consent", json=ACCEPT_ALL))
    r = site.get("/", headers={"sec-gpc": "1"})
    assert r.json() == {"decided": True, "analytics": False, "gpc": True}


def test_a_consent_log_that_does_not_answer_gets_503_in_time_and_no_cookie(adapter: str) -> None:
    with client_for(adapter, {"secret_key": SECRET, "store": HangingStore(), "store_timeout": 0.3}) as client:
        r = client.post("/_consent", json=ACCEPT_ALL, timeout=5)
    assert (r.status_code, r.json()["error"]) == (503, "store_unavailable")
    assert "set-cookie" not in r.headers
    assert r.elapsed.total_seconds() < 2


@pytest.mark.parametrize("path", ["/help/_consent", "/_consentful", "/help/_consent/policy"])
def test_a_page_whose_path_only_holds_the_prefix_is_the_apps(site: httpx.Client, path: str) -> None:
    # A site's own article about consent: the app answers it (here its 404), not consentmw's API.
    r = site.get(path)
    assert r.status_code == 404
    assert not r.headers["content-type"].startswith("application/json"), r.text


def test_a_choice_exactly_at_the_body_limit_is_read_whole_and_a_byte_more_is_refused(site: httpx.Client, store: MemoryStore) -> None:
    # 8,192 bytes (the default limit) with the choice at the end: a body read short is malformed JSON.
    body = b'{"accept": "all"}'.rjust(8192)
    r = site.post("/_consent", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 200, r.text
    assert [rec.choices["analytics"] for rec in store.records] == [True]
    r = site.post("/_consent", content=b" " + body, headers={"content-type": "application/json"})
    assert (r.status_code, r.json()["error"]) == (413, "body_too_large")
    assert len(store.records) == 1


@pytest.mark.parametrize("adapter", ["asgi", "django-asgi"])  # WSGI servers give a body without a length only when they mark it terminated (test_wsgi.py)
@pytest.mark.parametrize("limit", [8192, 1001])
def test_a_choice_sent_without_a_length_is_held_to_the_body_limit(adapter: str, limit: int) -> None:
    async def chunked(body: bytes) -> AsyncIterator[bytes]:
        yield body  # an iterator: httpx sends it chunked, with no Content-Length

    store = MemoryStore()
    with client_for(adapter, {"secret_key": SECRET, "store": store, "max_body_size": limit}) as client:
        fits = b'{"accept": "all"}'.ljust(limit)  # valid JSON however much of its padding is read
        r = client.post("/_consent", content=chunked(fits + b" "), headers={"content-type": "application/json"})
        assert (r.status_code, r.json()["error"]) == (413, "body_too_large")
        assert store.records == []
        r = client.post("/_consent", content=chunked(fits), headers={"content-type": "application/json"})
        assert r.status_code == 200, r.text
    assert len(store.records) == 1
