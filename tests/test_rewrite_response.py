from __future__ import annotations

import gzip
import json
import re
from typing import Any

import html5lib
import httpx
import pytest

from consentmw import ConsentMiddleware
from consentmw.core.filtering import needs_filter
from consentmw.core.store import MemoryStore
from tests.conftest import SECRET, client_for
from tests.corpus.pages import HERE, live_trackers, shop_page

Message = dict[str, Any]
PAGE = shop_page(["ga4-gtag", "meta-pixel"], 2).encode()
GTAG = b'<script async src="https://www.googletagmanager.com/gtag/js?id=G-7QX2LCE5N1"></script>'


def app_sending(start_headers: list[tuple[bytes, bytes]], *bodies: bytes, extra: list[Message] | None = None, seen: list[dict] | None = None):
    """A raw ASGI app that sends these headers, then each body as its own message."""

    async def app(scope, receive, send) -> None:
        if seen is not None:
            seen.append(scope)
        await send({"type": "http.response.start", "status": 200, "headers": start_headers})
        for message in extra or ():
            await send(message)
        for i, body in enumerate(bodies):
            await send({"type": "http.response.body", "body": body, "more_body": i < len(bodies) - 1})

    return app


def html_headers(body: bytes = PAGE, *more: tuple[bytes, bytes]) -> list[tuple[bytes, bytes]]:
    return [(b"content-type", b"text/html; charset=utf-8"), (b"content-length", str(len(body)).encode()), *more]


async def run(app, method: str = "GET", path: str = "/", headers: list[tuple[bytes, bytes]] | None = None, **options: Any) -> list[Message]:
    options.setdefault("store", MemoryStore())
    mw = ConsentMiddleware(app, secret_key=SECRET, **options)
    scope = {"type": "http", "method": method, "path": path, "raw_path": path.encode(), "query_string": b"", "headers": headers or [], "scheme": "http", "server": ("testserver", 80)}
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    async def send(message: Message) -> None:
        sent.append(message)

    await mw(scope, receive, send)
    return sent


def header(message: Message, name: bytes) -> list[bytes]:
    return [v for k, v in message["headers"] if k.lower() == name]


def body_of(sent: list[Message]) -> bytes:
    return b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


async def test_single_body_gets_the_exact_new_content_length() -> None:
    sent = await run(app_sending(html_headers(), PAGE))
    body = body_of(sent)
    assert header(sent[0], b"content-length") == [str(len(body)).encode()]
    assert body != PAGE and live_trackers(body.decode()) == set()
    assert b"/_consent/banner.js?v=" in body


async def test_vary_is_merged_into_the_apps() -> None:
    sent = await run(app_sending(html_headers(PAGE, (b"vary", b"Accept-Language")), PAGE))
    assert header(sent[0], b"vary") == [b"Accept-Language, Cookie, Sec-GPC"]


async def test_streamed_body_is_rewritten_chunk_by_chunk_without_content_length() -> None:
    cut = PAGE.index(b"googletagmanager.com/gtag/js") - 20  # inside the gtag <script> tag
    parts = [PAGE[:cut], PAGE[cut : cut + 9], PAGE[cut + 9 :]]
    sent = await run(app_sending(html_headers(), *parts))
    assert header(sent[0], b"content-length") == []
    bodies = [m for m in sent if m["type"] == "http.response.body"]
    assert len(bodies) == 3 and [m["more_body"] for m in bodies] == [True, True, False]
    assert live_trackers(body_of(sent).decode()) == set()
    whole = body_of(await run(app_sending(html_headers(), PAGE)))
    assert body_of(sent) == whole


async def test_first_chunk_goes_out_before_the_app_has_finished() -> None:
    order: list[str] = []

    async def app(scope, receive, send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/html")]})
        await send({"type": "http.response.body", "body": b"<html><head></head><body>" + b"x" * 5000, "more_body": True})
        order.append("app: second chunk")
        await send({"type": "http.response.body", "body": b"</body></html>"})

    mw = ConsentMiddleware(app, secret_key=SECRET, store=MemoryStore())

    async def send(message: Message) -> None:
        order.append(message["type"])

    async def receive() -> Message:
        return {"type": "http.request"}

    await mw({"type": "http", "method": "GET", "path": "/", "query_string": b"", "headers": []}, receive, send)
    assert order == ["http.response.start", "http.response.body", "app: second chunk", "http.response.body"]


@pytest.mark.parametrize("name", [b"Content-Type", b"CONTENT-TYPE", b"content-TYPE", b"cOnTeNt-TyPe"])
async def test_html_is_rewritten_whatever_the_case_of_the_content_type_name(name: bytes) -> None:
    sent = await run(app_sending([(name, b"text/html; charset=utf-8")], PAGE))
    page = body_of(sent).decode()
    assert live_trackers(PAGE.decode()) == {"ga4-gtag", "meta-pixel"}
    assert live_trackers(page) == set() and 'data-consentmw-category="analytics"' in page


async def test_html_file_served_in_ranges_stays_consistent(tmp_path) -> None:
    # StaticFiles answers Range requests with 206 and a Content-Range over the file's bytes: a
    # rewritten slice would no longer be that range, and reassembled ranges would be a broken page.
    from starlette.applications import Starlette
    from starlette.staticfiles import StaticFiles

    (tmp_path / "index.html").write_bytes(PAGE)
    app = Starlette()
    app.mount("/", StaticFiles(directory=tmp_path, html=True))
    app.add_middleware(ConsentMiddleware, secret_key=SECRET, store=MemoryStore())
    async with client_for(app) as client:
        whole = await client.get("/index.html")
        first = await client.get("/index.html", headers={"range": "bytes=0-99"})
        rest = await client.get("/index.html", headers={"range": "bytes=100-"})
        if_range = await client.get("/index.html", headers={"range": "bytes=0-99", "if-range": whole.headers["etag"]})
    assert whole.status_code == 200 and "accept-ranges" not in whole.headers and live_trackers(whole.text) == set()
    assert first.status_code == rest.status_code == 206
    assert first.content + rest.content == PAGE
    assert first.headers["content-range"] == f"bytes 0-99/{len(PAGE)}" and int(first.headers["content-length"]) == 100
    # A range asked against the rewritten page's validator gets the whole rewritten page.
    assert if_range.status_code == 200 and if_range.content == whole.content


async def test_encoded_body_passes_untouched() -> None:
    zipped = gzip.compress(PAGE)
    headers = html_headers(zipped, (b"content-encoding", b"gzip"))
    sent = await run(app_sending(headers, zipped))
    assert sent[0]["headers"] == headers and body_of(sent) == zipped


async def test_compression_inside_consentmw_is_reported_once(caplog: pytest.LogCaptureFixture) -> None:
    # GZipMiddleware added before ConsentMiddleware ends up inside it: every page then passes with
    # its trackers live. The site owner is told, once, instead of believing the site is compliant.
    from starlette.applications import Starlette
    from starlette.middleware.gzip import GZipMiddleware
    from starlette.responses import HTMLResponse
    from starlette.routing import Route

    app = Starlette(routes=[Route("/shop", lambda request: HTMLResponse(PAGE))])
    app.add_middleware(GZipMiddleware, minimum_size=10)
    app.add_middleware(ConsentMiddleware, secret_key=SECRET, store=MemoryStore())
    async with client_for(app) as client:
        with caplog.at_level("WARNING", logger="consentmw"):
            first = await client.get("/shop", headers={"accept-encoding": "gzip"})
            second = await client.get("/shop", headers={"accept-encoding": "gzip"})
    assert first.headers["content-encoding"] == "gzip" and live_trackers(second.text) == {"ga4-gtag", "meta-pixel"}
    # The start-up warning of a policy without a controller (the neutral default) is another matter.
    warnings = [r.getMessage() for r in caplog.records if r.name == "consentmw" and r.levelname == "WARNING" and "no controller" not in r.getMessage()]
    assert len(warnings) == 1
    assert "/shop" in warnings[0] and "gzip" in warnings[0] and "NOT blocked" in warnings[0] and "GZipMiddleware" in warnings[0]


async def test_compression_outside_consentmw_compresses_the_rewritten_page_without_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    from starlette.applications import Starlette
    from starlette.middleware.gzip import GZipMiddleware
    from starlette.responses import HTMLResponse
    from starlette.routing import Route

    app = Starlette(routes=[Route("/shop", lambda request: HTMLResponse(PAGE))])
    app.add_middleware(ConsentMiddleware, secret_key=SECRET, store=MemoryStore())
    app.add_middleware(GZipMiddleware, minimum_size=10)
    async with client_for(app) as client:
        with caplog.at_level("WARNING", logger="consentmw"):
            r = await client.get("/shop", headers={"accept-encoding": "gzip"})
    assert r.headers["content-encoding"] == "gzip" and live_trackers(r.text) == set()
    assert not [rec for rec in caplog.records if rec.name == "consentmw" and rec.levelname == "WARNING" and "no controller" not in rec.getMessage()]


@pytest.mark.parametrize("content_type", [b"application/json", b"text/plain; charset=utf-8", b"text/javascript"])
async def test_other_types_pass_untouched(content_type: bytes) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(GTAG)).encode())]
    sent = await run(app_sending(headers, GTAG))
    assert sent[0]["headers"] == headers and body_of(sent) == GTAG


JSON = (b"content-type", b"application/json")


@pytest.mark.parametrize(
    ("headers", "filtered"),
    [
        ([JSON, (b"content-length", b"2")], False),
        ([(b"content-length", b"9"), (b"Content-Type", b"image/png")], False),
        ([JSON, JSON], False),
        ([JSON, (b"set-cookie", b"_ga=1")], True),
        ([(b"Set-Cookie", b"_ga=1"), JSON], True),
        ([JSON, (b"content-type", b"text/html")], True),
        ([(b"content-type", b"text/html; charset=utf-8")], True),
        ([(b"content-length", b"9")], True),  # untyped: a browser sniffs it, and may find a page
        ([], True),
    ],
)
def test_only_responses_that_set_cookies_or_may_be_pages_are_filtered(headers: list[tuple[bytes, bytes]], filtered: bool) -> None:
    # The rest pass as the app sent them, after this one look at their headers (the adapters' fast path).
    assert needs_filter(headers) is filtered


async def test_pathsend_passes_through_with_its_headers() -> None:
    headers = html_headers()
    pathsend = {"type": "http.response.pathsend", "path": "/srv/www/index.html"}
    sent = await run(app_sending(headers, extra=[pathsend]))
    assert sent[0]["type"] == "http.response.start" and sent[0]["headers"] == headers
    assert sent[1] == pathsend


@pytest.mark.parametrize(("method", "status"), [("HEAD", 200), ("GET", 304)])
async def test_bodiless_responses_get_the_same_headers_and_no_body(method: str, status: int) -> None:
    async def app(scope, receive, send) -> None:
        await send({"type": "http.response.start", "status": status, "headers": html_headers()})
        await send({"type": "http.response.body", "body": b""})

    sent = await run(app, method=method)
    assert header(sent[0], b"content-length") == []
    # No <html lang> to read: the banner's language would come from Accept-Language, which Vary names.
    assert header(sent[0], b"vary") == [b"Cookie, Sec-GPC, Accept-Language"]
    assert body_of(sent) == b""


@pytest.mark.parametrize("name", [b"etag", b"ETag"])
async def test_etag_names_the_consent_variant(name: bytes) -> None:
    # Two pages with the same headers through one middleware: the second is answered from what
    # the first one's headers were found to hold.
    mw = ConsentMiddleware(app_sending(html_headers(PAGE, (name, b'"abc123"')), PAGE), secret_key=SECRET, store=MemoryStore())
    async with client_for(mw) as client:
        for _ in range(2):
            etag = (await client.get("/")).headers["etag"]
            assert etag.startswith('W/"abc123-') and etag != 'W/"abc123"'


@pytest.mark.parametrize("spelling", [bytes.lower, bytes.title, bytes.upper])
async def test_a_page_served_again_has_one_true_length_and_no_validator_of_the_apps(spelling) -> None:
    """The app's Content-Length, Accept-Ranges and Last-Modified, in any spelling, name its own
    bytes: every rewritten page, the first and those after it with the same headers, drops them
    and says its own length once."""
    headers = [
        (spelling(b"content-type"), b"text/html; charset=utf-8"),
        (spelling(b"content-length"), str(len(PAGE)).encode()),
        (spelling(b"accept-ranges"), b"bytes"),
        (spelling(b"last-modified"), b"Wed, 21 Oct 2026 07:28:00 GMT"),
    ]
    for _ in range(3):
        sent = await run(app_sending(headers, PAGE))
        names = [k.lower() for k, _ in sent[0]["headers"]]
        assert names.count(b"content-length") == 1 and header(sent[0], b"content-length") == [str(len(body_of(sent))).encode()]
        assert b"accept-ranges" not in names and b"last-modified" not in names
    mw = ConsentMiddleware(app_sending(headers, PAGE), secret_key=SECRET, store=MemoryStore())
    async with client_for(mw) as client:
        for _ in range(3):
            r = await client.get("/")
            assert r.headers.get_list("content-length") == [str(len(r.content))] and b"</html>" in r.content
            assert "accept-ranges" not in r.headers and "last-modified" not in r.headers


async def test_the_inlined_state_follows_each_visitors_choice_on_the_same_page() -> None:
    """A page's banner data holds the visitor's state: the next page after a change of mind says
    so, and no visitor's state reaches another's page."""
    mw = ConsentMiddleware(app_sending(html_headers(), PAGE), secret_key=SECRET, store=MemoryStore())

    def analytics(r: httpx.Response) -> object:
        data = json.loads(re.search(rb'id="consentmw-data">(.*?)</script>', r.content, re.S).group(1))  # type: ignore[union-attr]
        return data["state"]["decided"], data["state"]["choices"]["analytics"]

    async with client_for(mw) as first, client_for(mw) as second:
        assert analytics(await first.get("/shop?a=1")) == (False, False)
        await first.post("/_consent", json={"accept": "all"})
        assert analytics(await first.get("/shop?a=1")) == (True, True)
        assert analytics(await second.get("/shop?a=1")) == (False, False)
        await second.post("/_consent", json={"accept": "necessary"})
        assert analytics(await second.get("/shop?a=1")) == (True, False)
        assert analytics(await first.get("/shop?a=1")) == (True, True)
        await first.post("/_consent", json={"accept": "necessary"})  # withdrawn
        assert analytics(await first.get("/shop?a=1")) == (True, False)


NONCE_CASES = [
    ({"csp_nonce": "r4nd0m"}, [], "r4nd0m"),
    ({"csp_nonce": lambda: "fromcallable"}, [], "fromcallable"),
    ({"state": {"csp_nonce": "fromstate"}}, [], "fromstate"),
    ({}, [(b"content-security-policy", b"default-src 'self'; script-src 'self' 'nonce-fromheader' 'strict-dynamic'")], "fromheader"),
    ({"csp_nonce": 'bad" onload="x'}, [], None),
]


@pytest.mark.parametrize(("scope_keys", "csp", "nonce"), NONCE_CASES)
async def test_injected_tags_carry_the_csp_nonce(scope_keys: dict, csp: list, nonce: str | None) -> None:
    async def app(scope, receive, send) -> None:
        scope.update(scope_keys)  # as an inner middleware would
        await app_sending(html_headers(PAGE, *csp), PAGE)(scope, receive, send)

    body = body_of(await run(app))
    head = body[: body.index(b"<meta")]
    if nonce is None:
        assert b"nonce=" not in head
    else:
        assert head.count(f' nonce="{nonce}"'.encode()) == 3  # consent defaults, stylesheet, banner script


async def test_each_response_carries_its_own_csp_nonce() -> None:
    """An app whose Content-Security-Policy names a new nonce per response, through one middleware:
    every page's injected tags carry that response's nonce."""
    nonces = iter(["first1", "second2", "first1", "third3"])

    async def app(scope, receive, send) -> None:
        csp = f"script-src 'self' 'nonce-{next(nonces)}'".encode()
        await app_sending(html_headers(PAGE, (b"content-security-policy", csp)), PAGE)(scope, receive, send)

    mw = ConsentMiddleware(app, secret_key=SECRET, store=MemoryStore())
    async with client_for(mw) as client:
        for nonce in ("first1", "second2", "first1", "third3"):
            body = (await client.get("/")).content
            assert body[: body.index(b"<meta")].count(f' nonce="{nonce}"'.encode()) == 3


async def test_banner_can_be_turned_off_per_path_but_trackers_stay_blocked() -> None:
    sent = await run(app_sending(html_headers(), PAGE), path="/embed/widget", banner_exclude=["/embed/"])
    body = body_of(sent)
    assert b"banner.js" not in body and b"<noscript><form" not in body
    assert b"gtag('consent','default'" in body and live_trackers(body.decode()) == set()


async def test_noscript_form_returns_to_the_same_page_escaped() -> None:
    sent = await run(app_sending(html_headers(), PAGE), path='/p/"><script>')
    body = body_of(sent)
    # Percent-encoded as the browser's address bar has it, so nothing is left to escape.
    assert b'name="next" value="/p/%22%3E%3Cscript%3E"' in body


@pytest.mark.parametrize(
    ("url", "next_url"),
    [
        ("/shop/a-1_b.c~d", "/shop/a-1_b.c~d"),
        ("/a%20b/x&amp;y?q=1&lt;2&r=a%20b", "/a%20b/x&amp;y?q=1&lt;2&r=a%20b"),
        ("/%ED%95%9C?q=%ED%95%9C", "/%ED%95%9C?q=%ED%95%9C"),
        ("/p'q?a='", "/p'q?a='"),
        ("/100%25?off=10%25", "/100%25?off=10%25"),
    ],
)
async def test_noscript_form_returns_to_the_address_the_browser_asked_for(url: str, next_url: str) -> None:
    mw = ConsentMiddleware(app_sending(html_headers(), PAGE), secret_key=SECRET, store=MemoryStore())
    async with client_for(mw) as client:
        r = await client.get(url)
    # As a browser without scripts reads the attribute: character references decoded.
    tree = html5lib.parse(r.text, namespaceHTMLElements=False)
    assert [i.get("value") for i in tree.iter("input") if i.get("name") == "next"] == [next_url]


async def test_every_page_of_a_site_returns_to_itself() -> None:
    """One middleware, many addresses: each page's no-JS form returns to that page, the first ones
    too when asked again."""
    mw = ConsentMiddleware(app_sending(html_headers(), PAGE), secret_key=SECRET, store=MemoryStore())
    urls = [url for i in range(70) for url in (f"/p/{i}", f"/p/{i}?q={i}")]
    async with client_for(mw) as client:
        for url in urls + urls[:4]:
            r = await client.get(url)
            assert re.findall(rb'name="next" value="([^"]*)"', r.content) == [url.encode()]


async def test_one_address_speaks_each_visitors_language() -> None:
    """A page without <html lang> gets the banner's data and the no-JS form in the language each
    visitor's browser asks for, visitor after visitor at the same address."""
    page = PAGE.replace(b'<html lang="ko">', b"<html>", 1)
    assert page != PAGE
    mw = ConsentMiddleware(app_sending(html_headers(page), page), secret_key=SECRET, store=MemoryStore())
    async with client_for(mw) as client:
        for lang in ("ko", "en", "ja", "ko"):
            r = await client.get("/shop", headers={"accept-language": lang})
            data = json.loads(re.search(rb'id="consentmw-data">(.*?)</script>', r.content, re.S).group(1))  # type: ignore[union-attr]
            assert data["lang"] == lang
            assert re.findall(rb'<form class="consentmw-noscript"[^>]* lang="([^"]+)"', r.content) == [lang.encode()]


async def test_visitor_who_accepted_gets_live_trackers_and_granted_defaults() -> None:
    async def home(scope, receive, send) -> None:
        await app_sending(html_headers(), PAGE)(scope, receive, send)

    mw = ConsentMiddleware(home, secret_key=SECRET, store=MemoryStore())
    async with client_for(mw) as client:
        before = await client.get("/")
        assert live_trackers(before.text) == set() and '"analytics_storage":"denied"' in before.text
        await client.post("/_consent", json={"accept": "all"})
        after = await client.get("/")
    assert live_trackers(after.text) == {"ga4-gtag", "meta-pixel"}
    assert '"analytics_storage":"granted"' in after.text and '"ad_storage":"granted"' in after.text
    assert int(after.headers["content-length"]) == len(after.content)


async def test_gpc_refuses_analytics_even_after_accept_all() -> None:
    mw = ConsentMiddleware(app_sending(html_headers(), PAGE), secret_key=SECRET, store=MemoryStore())
    async with client_for(mw) as client:
        await client.post("/_consent", json={"accept": "all"})
        page = await client.get("/", headers={"sec-gpc": "1"})
    assert live_trackers(page.text) == set()


async def test_cookie_filtering_still_applies_to_html_responses() -> None:
    headers = html_headers(PAGE, (b"set-cookie", b"_ga=GA1.1.1; Path=/"), (b"set-cookie", b"sessionid=abc; Path=/"))
    sent = await run(app_sending(headers, PAGE))
    assert header(sent[0], b"set-cookie") == [b"sessionid=abc; Path=/"]
    assert live_trackers(body_of(sent).decode()) == set()


async def test_euc_kr_page_stays_euc_kr() -> None:
    page = (HERE / "legacy-euckr.html").read_bytes()
    headers = [(b"content-type", b"text/html; charset=euc-kr")]
    sent = await run(app_sending(headers, page[:301], page[301:]), headers=[(b"accept-language", b"ko-KR")])
    text = body_of(sent).decode("euc-kr")  # strict: one stray UTF-8 byte would fail here
    assert "한국상사" in text and "&#" in text and live_trackers(text) == set()


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        (b"text/html", b"text/html; charset=euc-kr"),  # Django's FileResponse or static serve of an .html file
        (b"text/html; charset=utf-8", b"text/html; charset=utf-8"),  # the header names one: it wins anyway
    ],
)
async def test_a_page_whose_meta_charset_the_injection_pushes_out_of_reach_names_it_in_its_header(content_type: bytes, expected: bytes) -> None:
    # Browsers look for <meta charset> in the first 1,024 bytes; what consentmw adds after <head>
    # can push it beyond them, and an EUC-KR page would then be read in a guessed encoding.
    legacy = (HERE / "legacy-euckr.html").read_bytes()
    page = legacy.replace(b"<HEAD>", b"<!-- " + b"site header, kept by the CMS " * 24 + b"-->\n<HEAD>", 1)
    assert 700 < page.find(b"<META") < 1024
    sent = await run(app_sending([(b"content-type", content_type)], page))
    out = body_of(sent)
    assert out.find(b"<META") > 1024 and out.decode("euc-kr").count("한국상사") == legacy.decode("euc-kr").count("한국상사")
    assert header(sent[0], b"content-type") == [expected]


async def test_a_meta_charset_in_a_comment_or_past_the_first_kilobyte_is_not_taken() -> None:
    late = b"<html><head>" + b" " * 1100 + b'<meta charset="euc-kr"></head><body>x</body></html>'
    commented = b'<html><head><!-- <meta charset="iso-8859-1"> --><meta charset="utf-8"></head><body>x</body></html>'
    assert header((await run(app_sending([(b"content-type", b"text/html")], late)))[0], b"content-type") == [b"text/html"]
    assert header((await run(app_sending([(b"content-type", b"text/html")], commented)))[0], b"content-type") == [b"text/html; charset=utf-8"]


async def test_utf16_pages_are_read_as_text_and_sent_in_utf8() -> None:
    page = "<html><head></head><body><p>한국어</p><script src='https://connect.facebook.net/en_US/fbevents.js'></script></body></html>"
    headers = [(b"content-type", b"text/html; charset=UTF-16")]
    sent = await run(app_sending(headers, page.encode("utf-16")))
    assert header(sent[0], b"content-type") == [b"text/html; charset=utf-8"]
    body = body_of(sent).decode("utf-8")
    assert "<p>한국어</p>" in body and "data-consentmw-src='https://connect.facebook.net" in body.replace('"', "'")


async def test_fragment_responses_get_no_banner() -> None:
    fragment = b"<li><img src='/a.png'></li>"
    sent = await run(app_sending(html_headers(fragment), fragment))
    assert body_of(sent) == fragment


async def test_through_starlette_and_httpx() -> None:
    from starlette.applications import Starlette
    from starlette.responses import HTMLResponse, StreamingResponse
    from starlette.routing import Route

    async def page(request) -> HTMLResponse:
        return HTMLResponse(PAGE)

    async def stream(request) -> StreamingResponse:
        async def parts():
            for i in range(0, len(PAGE), 1000):
                yield PAGE[i : i + 1000]

        return StreamingResponse(parts(), media_type="text/html")

    app = Starlette(routes=[Route("/", page), Route("/stream", stream)])
    app.add_middleware(ConsentMiddleware, secret_key=SECRET, store=MemoryStore())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://testserver") as client:
        whole, streamed = await client.get("/"), await client.get("/stream")
    assert whole.text == streamed.text.replace('value="/stream"', 'value="/"')
    assert live_trackers(whole.text) == set() and "content-length" not in streamed.headers
