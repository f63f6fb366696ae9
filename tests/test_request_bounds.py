"""What a server or client hands consentmw and browsers read their own way, on every adapter: the
Content-Type read by Fetch's "extract a MIME type", a root path that is not a path, and the rate
limit on consent posts (with the rule for posts that say nowhere where they come from)."""

from __future__ import annotations

import logging
from urllib.parse import urlencode

import pytest

from consentmw.core.errors import ConfigError
from consentmw.core.ratelimit import RateLimit, client_key
from consentmw.core.response import extract_media_type
from consentmw.core.store import MemoryStore
from tests.adapters import ADAPTERS, PAGE, TRACKERS, client_for
from tests.conftest import SECRET, make_app
from tests.corpus.pages import live_trackers

pytestmark = pytest.mark.filterwarnings("ignore:StreamingHttpResponse must consume synchronous iterators")


# -- Content-Type, as Fetch extracts a MIME type -------------------------------------------------

# (the combined Content-Type values, the type a browser renders). The first ones are the Fetch
# standard's own examples; the quoted comma is what an app may well send with a parameter.
MIME_CASES = [
    ('text/plain;charset=gbk, text/html', "text/html"),
    ('text/html;charset=gbk;a=b, text/html;x=y', "text/html"),
    ('text/html, cannot-parse', "text/html"),
    ('text/html, */*', "text/html"),
    ('text/html, ', "text/html"),
    ('text/html;x="a,b/c"', "text/html"),
    ('text/html;x="a\\",b/c"', "text/html"),
    ('text/html;x="unclosed, text/plain', "text/html"),
    ('Text/HTML ; charset=utf-8', "text/html"),
    ('text/html, text/plain', "text/plain"),
    ('text/plain;x="a,b", text/html', "text/html"),
    ('text/ html', ""),
    ('"text/html"', ""),
]


@pytest.mark.parametrize(("value", "expected"), MIME_CASES)
def test_the_media_type_is_extracted_as_fetch_does(value: str, expected: str) -> None:
    assert extract_media_type(value.encode()) == expected.encode()


@pytest.mark.parametrize("adapter", ADAPTERS)
@pytest.mark.parametrize(
    "content_types",
    [['text/html;x="a,b/c"'], ['x/y;q="1,text/plain", text/html;x="a,b/c"'], ["text/plain", "text/html"]],
    ids=["quoted-comma", "html-last-after-quoted-comma", "two-headers"],
)
def test_a_page_whose_content_type_reads_as_html_is_rewritten_on_every_adapter(adapter: str, content_types: list[str]) -> None:
    if adapter.startswith("django") and len(content_types) > 1:
        pytest.skip("Django keeps one value per header name")
    query = urlencode([("h", f"Content-Type:{value}") for value in content_types])
    with client_for(adapter, {"secret_key": SECRET, "store": MemoryStore()}) as site:
        r = site.get(f"/headers?{query}")
        assert r.status_code == 200
        assert live_trackers(PAGE) == TRACKERS
        assert live_trackers(r.text) == set()
        assert "/_consent/banner.js?v=" in r.text


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_a_page_whose_last_type_is_not_html_passes_unchanged(adapter: str) -> None:
    query = urlencode([("h", 'Content-Type:text/html;x="1", text/plain;y="a,text/html"')])
    with client_for(adapter, {"secret_key": SECRET, "store": MemoryStore()}) as site:
        assert site.get(f"/headers?{query}").text == PAGE


# -- root paths --------------------------------------------------------------------------------


def page_url(adapter: str, root: str) -> str:
    # An ASGI path holds the root path; a WSGI PATH_INFO is what comes below SCRIPT_NAME.
    return (root if adapter.endswith("asgi") and root.startswith("/") and not root.startswith("//") else "") + "/page"


@pytest.mark.parametrize("adapter", ADAPTERS)
@pytest.mark.parametrize("root", ["//evil.example", "/\\evil.example", "https://evil.example", "evil.example"])
def test_a_root_path_that_is_not_a_path_never_reaches_markup(adapter: str, root: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="consentmw")
    with client_for(adapter, {"secret_key": SECRET, "store": MemoryStore()}, root_path=root) as site:
        for _ in range(2):
            r = site.get(page_url(adapter, root))
            assert r.status_code == 200
            assert "evil" not in r.text
            assert '<script src="/_consent/banner.js?v=' in r.text
            assert 'action="/_consent"' in r.text
            assert 'name="next" value="/page"' in r.text
    warnings = [m for m in caplog.messages if "root path" in m]
    assert len(warnings) == 1 and repr(root) in warnings[0]


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_a_root_path_that_is_a_path_is_kept(adapter: str, caplog: pytest.LogCaptureFixture) -> None:
    with client_for(adapter, {"secret_key": SECRET, "store": MemoryStore()}, root_path="/shop") as site:
        r = site.get(page_url(adapter, "/shop"))
        assert '<script src="/shop/_consent/banner.js?v=' in r.text
        assert 'action="/shop/_consent"' in r.text
    assert not [m for m in caplog.messages if "root path" in m]


# -- the rate limit on consent posts -----------------------------------------------------------


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_posts_beyond_the_rate_limit_get_429_record_nothing_and_keep_the_cookie(adapter: str) -> None:
    store = MemoryStore()
    with client_for(adapter, {"secret_key": SECRET, "store": store, "rate_limit": 3}) as site:
        assert site.post("/_consent", json={"accept": "all"}).status_code == 200
        chosen = site.cookies["consentmw"]
        assert site.post("/_consent", data={"accept": "necessary", "next": "/"}).status_code == 303
        assert site.post("/_consent", json={"accept": "all"}).status_code == 200
        chosen = site.cookies["consentmw"]
        for post in ({"json": {"accept": "necessary"}}, {"data": {"accept": "necessary", "next": "/"}}):
            r = site.post("/_consent", **post)
            assert r.status_code == 429
            assert r.json()["error"] == "too_many_posts"
            assert 1 <= int(r.headers["retry-after"]) <= 20  # 3 a minute: a token every 20 s
            assert "set-cookie" not in r.headers
        assert len(store.records) == 3
        assert site.cookies["consentmw"] == chosen
        assert site.get("/").json()["analytics"] is True  # the choice made before the limit stands
    with client_for(adapter, {"secret_key": SECRET, "store": store, "rate_limit": 3}, client="192.0.2.9") as other:
        assert other.post("/_consent", json={"accept": "all"}).status_code == 200  # another client's own share


@pytest.mark.parametrize("adapter", ["asgi", "wsgi"])
def test_the_rate_limit_can_be_raised_or_turned_off(adapter: str) -> None:
    for limit, accepted in ((None, 40), (0, 40), (35, 35)):
        store = MemoryStore()
        with client_for(adapter, {"secret_key": SECRET, "store": store, "rate_limit": limit}) as site:
            codes = [site.post("/_consent", json={"accept": "all"}).status_code for _ in range(40)]
        assert codes.count(200) == accepted and len(store.records) == accepted


def test_the_default_rate_limit_is_30_posts_a_minute() -> None:
    store = MemoryStore()
    with client_for("asgi", {"secret_key": SECRET, "store": store}) as site:
        codes = [site.post("/_consent", json={"accept": "all"}).status_code for _ in range(31)]
    assert codes == [200] * 30 + [429]


@pytest.mark.parametrize("bad", ["30", -1, 2.5, True])
def test_a_rate_limit_that_is_not_a_count_is_a_config_error(bad: object) -> None:
    with pytest.raises(ConfigError, match="rate_limit"):
        make_app(rate_limit=bad).build_middleware_stack()


def test_a_bucket_refills_at_the_rate_and_memory_stays_bounded() -> None:
    now = [0.0]
    limit = RateLimit(60, max_clients=100, clock=lambda: now[0])
    assert [limit.take("192.0.2.1") for _ in range(60)] == [0.0] * 60
    assert limit.take("192.0.2.1") == pytest.approx(1.0)
    now[0] += 1.0
    assert limit.take("192.0.2.1") == 0.0  # one token a second at 60 a minute
    assert limit.take("192.0.2.1") > 0
    for i in range(1000):
        limit.take(f"10.0.{i // 256}.{i % 256}")
    assert len(limit.buckets) == 100


def test_an_ipv6_client_is_counted_by_its_64_prefix() -> None:
    assert client_key("2001:db8:1:2:aaaa::1") == client_key("2001:db8:1:2:bbbb::2") == "2001:db8:1:2::/64"
    assert client_key("2001:db8:1:3::1") != client_key("2001:db8:1:2::1")
    assert client_key("::ffff:192.0.2.1") == client_key("192.0.2.1") == "192.0.2.1"


# -- where a post comes from -------------------------------------------------------------------


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_a_post_that_says_nowhere_where_it_comes_from_is_refused(adapter: str) -> None:
    store = MemoryStore()
    with client_for(adapter, {"secret_key": SECRET, "store": store}) as site:
        del site.headers["origin"]
        for post in ({"json": {"accept": "all"}}, {"data": {"accept": "all", "next": "/"}}):
            r = site.post("/_consent", **post)
            assert (r.status_code, r.json()["error"]) == (403, "cross_site")
            assert "set-cookie" not in r.headers
        assert store.records == []
        # What browsers send for a same-origin post: any one of these is enough.
        for headers in ({"sec-fetch-site": "same-origin"}, {"origin": "http://testserver"}, {"referer": "http://testserver/page"}):
            assert site.post("/_consent", json={"accept": "all"}, headers=headers).status_code == 200
        assert len(store.records) == 3
