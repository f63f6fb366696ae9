from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from consentmw import ConsentMiddleware
from consentmw.core.response import WATCHED_NAMES
from consentmw.core.store import MemoryStore
from tests.conftest import SECRET, client_for

Scope = dict[str, Any]


def raw_app(headers: list[tuple[bytes, bytes]], body: bytes = b"ok", seen: list[Scope] | None = None):
    async def app(scope: Scope, receive, send) -> None:
        if seen is not None:
            seen.append(scope)
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app


def wrap(app, **options: Any) -> ConsentMiddleware:
    options.setdefault("store", MemoryStore())
    return ConsentMiddleware(app, secret_key=SECRET, **options)


async def test_scope_is_copied_not_mutated() -> None:
    seen: list[Scope] = []
    mw = wrap(raw_app([(b"content-type", b"text/plain")], seen=seen))
    scope = {"type": "http", "method": "GET", "path": "/", "headers": [], "query_string": b""}
    sent: list[dict] = []

    async def receive():
        return {"type": "http.request", "body": b""}

    async def send(message):
        sent.append(message)

    await mw(scope, receive, send)
    assert "consent" not in scope
    assert seen[0]["consent"].decided is False
    assert sent[1]["body"] == b"ok"


async def test_app_sees_consent_after_a_choice() -> None:
    from tests.conftest import make_app

    async with client_for(make_app()) as client:
        assert (await client.get("/")).json()["decided"] is False
        await client.post("/_consent", json={"choices": {"analytics": True}})
        state = (await client.get("/")).json()
    assert state["decided"] is True and state["analytics"] is True


REPEATED = [
    (b"content-type", b"text/plain"),
    (b"set-cookie", b"sessionid=abc; Path=/; HttpOnly"),
    (b"set-cookie", b"_ga=GA1.1.1; Path=/; Domain=.example.com"),
    (b"set-cookie", b"_ga_XYZ=GS1; Path=/"),
    (b"set-cookie", b"_fbp=fb.1; Path=/"),
    (b"set-cookie", b"prefs=dark; Path=/"),
    (b"set-cookie", b"unknown=1; Path=/"),
    (b"set-cookie", b"_fbc=; Max-Age=0; Path=/"),
]


@pytest.mark.parametrize(
    ("body", "kept"),
    [
        (None, ["sessionid", "unknown", "_fbc"]),
        ({"accept": "necessary"}, ["sessionid", "unknown", "_fbc"]),
        ({"choices": {"analytics": True}}, ["sessionid", "_ga", "_ga_XYZ", "unknown", "_fbc"]),
        ({"choices": {"personalisation": True, "advertising": True}}, ["sessionid", "_fbp", "prefs", "unknown", "_fbc"]),
        ({"accept": "all"}, ["sessionid", "_ga", "_ga_XYZ", "_fbp", "prefs", "unknown", "_fbc"]),
    ],
)
async def test_set_cookie_of_refused_categories_is_dropped(body: dict | None, kept: list[str]) -> None:
    async with client_for(wrap(raw_app(REPEATED))) as client:
        if body is not None:
            await client.post("/_consent", json=body)
        r = await client.get("/page")
    names = [c.split("=", 1)[0] for c in r.headers.get_list("set-cookie")]
    assert names == kept
    assert r.text == "ok"
    # Kept or dropped, these tracker cookies follow the visitor's choice: a shared cache must not
    # hand one visitor's answer (and its cookies) to the next.
    assert r.headers.get_list("vary") == ["Cookie"]


async def test_an_answer_setting_only_the_sites_own_cookies_does_not_vary() -> None:
    headers = [(b"content-type", b"text/plain"), (b"set-cookie", b"sessionid=abc; Path=/")]
    async with client_for(wrap(raw_app(headers))) as client:
        await client.post("/_consent", json={"accept": "all"})
        r = await client.get("/page")
    assert r.headers.get_list("set-cookie") == ["sessionid=abc; Path=/"]
    assert "vary" not in r.headers


@pytest.mark.parametrize("name", [b"set-cookie", b"Set-Cookie", b"SET-COOKIE", b"set-Cookie", b"sEt-CoOkIe"])
async def test_set_cookie_is_filtered_whatever_the_case_of_its_name(name: bytes) -> None:
    # ASGI asks for lowercase header names; an app that ignores that must not slip a tracker cookie out.
    headers = [(b"content-type", b"text/plain"), (name, b"_ga=GA1.1.1; Path=/"), (name, b"sessionid=abc; Path=/")]
    async with client_for(wrap(raw_app(headers))) as client:
        r = await client.get("/page")
    assert [c.split("=", 1)[0] for c in r.headers.get_list("set-cookie")] == ["sessionid"]


LINK_VALUE = b"<https://www.googletagmanager.com/gtag/js?id=G-7QX2LCE5N1>; rel=preload; as=script, </app.js>; rel=preload; as=script"
RULES_VALUE = b'"https://www.google-analytics.com/rules.json", "/rules.json"'


@pytest.mark.parametrize(
    ("link", "rules"),
    [(b"link", b"speculation-rules"), (b"Link", b"Speculation-Rules"), (b"LINK", b"SPECULATION-RULES"), (b"lInK", b"sPeCuLaTiOn-RuLeS"), (None, b"Speculation-Rules")],
)
async def test_tracker_links_are_held_whatever_the_case_of_the_header_names(link: bytes | None, rules: bytes) -> None:
    headers = [(b"content-type", b"application/json"), *([(link, LINK_VALUE)] if link else []), (rules, RULES_VALUE)]
    async with client_for(wrap(raw_app(headers))) as client:
        held = await client.get("/data")
        await client.post("/_consent", json={"accept": "all"})
        allowed = await client.get("/data")
    assert held.headers.get_list("link") == (["</app.js>; rel=preload; as=script"] if link else [])
    assert held.headers.get_list("speculation-rules") == ['"/rules.json"']
    assert allowed.headers.get_list("link") == ([LINK_VALUE.decode()] if link else [])
    assert allowed.headers.get_list("speculation-rules") == [RULES_VALUE.decode()]


async def test_header_names_are_remembered_up_to_a_bound_and_judged_after_it() -> None:
    # An app may make header names up as it goes (x-request-<id>): the memory of names stays small.
    count = 0

    async def app(scope: Scope, receive, send) -> None:
        nonlocal count
        count += 1
        headers = [(f"x-made-up-{count}".encode(), b"1"), (b"LINK" if count % 2 else b"Link", LINK_VALUE), (b"content-type", b"text/plain")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"ok"})

    async with client_for(wrap(app)) as client:
        for _ in range(300):
            assert (await client.get("/")).headers.get_list("link") == ["</app.js>; rel=preload; as=script"]
    assert 0 < len(WATCHED_NAMES) <= 256


@pytest.mark.parametrize(
    ("cookie", "kept"),
    [
        (b"_ga=; Max-Age=0; Path=/", True),
        (b"_ga=; max-age = -1", True),
        (b"_ga=; Expires=Thu, 01 Jan 1970 00:00:00 GMT", True),
        (b"_ga=; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0", True),
        # Browsers read Max-Age as a number, and the last one wins over any other and over Expires.
        (b"_ga=GA1.1.1; Max-Age=0123456", False),
        (b"_ga=GA1.1.1; Max-Age=0; Max-Age=31536000", False),
        (b"_ga=GA1.1.1; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=31536000", False),
        (b"_ga=GA1.1.1; Max-Age=-5x; Max-Age=31536000", False),
    ],
)
async def test_only_a_real_deletion_of_a_refused_cookie_passes(cookie: bytes, kept: bool) -> None:
    async with client_for(wrap(raw_app([(b"content-type", b"text/plain"), (b"set-cookie", cookie)]))) as client:
        r = await client.get("/")
    assert (r.headers.get_list("set-cookie") == [cookie.decode()]) is kept


async def test_vary_is_merged_into_the_apps() -> None:
    headers = [(b"content-type", b"text/plain"), (b"vary", b"Accept-Encoding"), (b"set-cookie", b"_ga=1")]
    async with client_for(wrap(raw_app(headers))) as client:
        r = await client.get("/")
    assert r.headers.get_list("vary") == ["Accept-Encoding, Cookie"]


async def test_response_without_cookies_passes_untouched() -> None:
    headers = [(b"content-type", b"application/json"), (b"x-custom", b"1")]
    async with client_for(wrap(raw_app(headers, b'{"a":1}'))) as client:
        r = await client.get("/api")
    assert r.content == b'{"a":1}'
    assert "vary" not in r.headers and r.headers["x-custom"] == "1"


async def test_gpc_refuses_marked_categories_in_the_app() -> None:
    from tests.conftest import make_app

    async with client_for(make_app()) as client:
        await client.post("/_consent", json={"accept": "all"})
        state = (await client.get("/", headers={"sec-gpc": "1"})).json()
    assert state["gpc"] is True
    assert state["choices"] == {"necessary": True, "personalisation": True, "analytics": False, "advertising": False}


@pytest.mark.parametrize(
    ("lines", "gpc"),
    [
        ([b"1"], True),
        ([b" 1 "], True),
        ([b"0"], False),
        ([b"true"], False),
        # Repeated lines (a proxy adding its own): a signal to refuse is never undone by another line.
        ([b"1", b"0"], True),
        ([b"0", b"1"], True),
    ],
)
async def test_sec_gpc_values(lines: list[bytes], gpc: bool) -> None:
    from tests.conftest import http_scope, make_app

    app = make_app()
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b""}

    async def send(message: dict) -> None:
        sent.append(message)

    await app(http_scope("GET", "/_consent", [(b"sec-gpc", line) for line in lines]), receive, send)
    assert json.loads(sent[1]["body"])["gpc"] is gpc


async def test_bad_cookies_never_fail_the_request() -> None:
    from tests.conftest import make_app

    async with client_for(make_app()) as client:
        for value in [b"", b"x", b"a.b.c.d.e", b"\xff" * 300, b'"quoted"', b"7.zzzz.id.ts.sig", b"\xc3\x28.a.b"]:
            r = await client.get("/", headers={"cookie": b"consentmw=" + value + b"; bad cookie ;;=;"})
            assert r.status_code == 200 and r.json()["decided"] is False


async def test_lifespan_passes_through_and_closes_the_store() -> None:
    events: list[str] = []

    class Store(MemoryStore):
        async def close(self) -> None:
            events.append("store closed")

    async def app(scope, receive, send):
        assert scope["type"] == "lifespan"
        while True:
            message = await receive()
            events.append(message["type"])
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return

    mw = wrap(app, store=Store())
    incoming = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[str] = []

    async def receive():
        return incoming.pop(0)

    async def send(message):
        sent.append(message["type"])

    await mw({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send)
    assert events == ["lifespan.startup", "lifespan.shutdown", "store closed"]
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]


async def test_websocket_scope_passes_through() -> None:
    seen: list[Scope] = []

    async def app(scope, receive, send):
        seen.append(scope)

    scope = {"type": "websocket", "path": "/ws", "headers": []}
    await wrap(app)(scope, None, None)
    assert seen == [scope]


async def test_prefix_is_configurable() -> None:
    async with client_for(wrap(raw_app([(b"content-type", b"text/plain")]), prefix="/privacy/consent")) as client:
        assert (await client.get("/privacy/consent")).json()["decided"] is False
        assert (await client.get("/_consent")).text == "ok"
        assert (await client.get("/privacy/consentx")).text == "ok"


def test_repr_hides_the_secret() -> None:
    mw = wrap(raw_app([]))
    assert SECRET not in repr(mw)


def mounted_site(store: MemoryStore) -> Any:
    """A shop mounted under /shop (starlette's Mount: the scope's path keeps the mount, root_path names it)."""
    from starlette.applications import Starlette
    from starlette.responses import HTMLResponse
    from starlette.routing import Mount, Route

    async def page(request: Any) -> HTMLResponse:
        return HTMLResponse("<html><head></head><body>shop</body></html>")

    shop = Starlette(routes=[Route("/", page), Route("/cart", page)])
    shop.add_middleware(ConsentMiddleware, secret_key=SECRET, store=store)
    return Starlette(routes=[Mount("/shop", shop)])


def root_path_site(store: MemoryStore) -> Any:
    """uvicorn --root-path /shop behind a proxy that strips /shop: uvicorn puts it back in front of the
    path (the ASGI spec's path includes root_path) and names it in root_path."""
    inner = wrap(raw_app([(b"content-type", b"text/html")], b"<html><head></head><body>shop</body></html>"), store=store)

    async def server(scope: Scope, receive, send) -> None:
        if scope["type"] == "http":
            scope = {**scope, "root_path": "/shop"}
        await inner(scope, receive, send)

    return server


@pytest.mark.parametrize("site", [mounted_site, root_path_site], ids=["starlette-mount", "uvicorn-root-path"])
async def test_an_app_under_a_root_path_gets_working_endpoints_banner_and_form(site) -> None:
    store = MemoryStore()
    async with client_for(site(store)) as client:
        page = (await client.get("/shop/cart")).text
        assert 'src="/shop/_consent/banner.js?v=' in page and 'href="/shop/_consent/banner.css?v=' in page
        assert 'action="/shop/_consent"' in page and 'name="next" value="/shop/cart"' in page
        assert (await client.get("/shop/_consent")).json()["decided"] is False
        assert (await client.get("/shop/_consent/banner.js")).status_code == 200
        r = await client.post("/shop/_consent", data={"accept": "all", "next": "/shop/cart"})
        assert r.status_code == 303 and r.headers["location"] == "/shop/cart"
        assert (await client.get("/shop/_consent")).json()["decided"] is True
        assert len(store.records) == 1
        # The pages link to the endpoints and the site under the mount too.
        opt_out = (await client.get("/shop/_consent/opt-out?lang=en")).text
        assert 'action="/shop/_consent/opt-out"' in opt_out and 'href="/shop/_consent/banner.css?v=' in opt_out
        assert 'href="/shop/"' in opt_out and 'href="/shop/_consent/browsers?lang=en"' in opt_out
        r = await client.post("/shop/_consent/opt-out", data={"lang": "en"})
        assert r.status_code == 303 and r.headers["location"].startswith("/shop/_consent/opt-out?")
        browsers = (await client.get("/shop/_consent/browsers?lang=en")).text
        assert 'action="/shop/_consent"' in browsers and 'href="/shop/_consent/browsers?browser=' in browsers
        assert 'value="/shop/_consent/browsers?' in browsers


async def test_a_root_path_holding_markup_is_escaped_in_what_is_injected() -> None:
    # A Mount("/{tenant}") puts what the visitor typed into root_path.
    inner = wrap(raw_app([(b"content-type", b"text/html")], b"<html><head></head><body>x</body></html>"))
    tenant = '/a"><script>alert(1)</script>'

    async def server(scope: Scope, receive, send) -> None:
        await inner({**scope, "root_path": tenant, "path": tenant + scope["path"]}, receive, send)

    async with client_for(server) as client:
        page = (await client.get("/")).text
        assert "<script>alert(1)" not in page
        assert 'src="/a%22%3E%3Cscript%3Ealert%281%29%3C/script%3E/_consent/banner.js?v=' in page


async def test_the_app_and_get_consent_agree_on_the_newest_of_duplicate_consent_cookies() -> None:
    from tests.conftest import consent_value, make_app

    older = consent_value({"personalisation", "analytics", "advertising"}, "older", ago=3600)
    newer = consent_value({"personalisation"}, "newer", ago=60)
    # The older one first, as a browser sends a cookie of a longer path; and on a line of its own.
    headers = [("cookie", f"consentmw={older}; theme=dark"), ("cookie", f"consentmw={newer}")]
    async with client_for(make_app()) as client:
        in_app = (await client.get("/", headers=headers)).json()
        from_api = (await client.get("/_consent", headers=headers)).json()
    expected = {"necessary": True, "personalisation": True, "analytics": False, "advertising": False}
    assert in_app["choices"] == from_api["choices"] == expected
    assert in_app["analytics"] is False
    assert from_api["id"] == "newer"
