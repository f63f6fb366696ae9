from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import urlencode, urljoin

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import HTMLResponse
from starlette.routing import Route

from consentmw import ConsentMiddleware
from consentmw.core.store import MemoryStore
from tests.conftest import ORIGIN, SECRET, client_for, consent_value, http_scope, make_app

ALL = {"necessary": True, "personalisation": True, "analytics": True, "advertising": True}
NONE = {"necessary": True, "personalisation": False, "analytics": False, "advertising": False}


async def test_get_before_any_choice(client: httpx.AsyncClient) -> None:
    r = await client.get("/_consent")
    assert r.status_code == 200
    assert r.json() == {"decided": False, "choices": NONE, "gpc": False, "policy_version": "1", "id": None, "region": "", "mode": "opt-in"}
    assert r.headers["cache-control"] == "no-store"


@pytest.mark.parametrize(
    ("body", "choices"),
    [
        ({"accept": "all"}, ALL),
        ({"accept": "necessary"}, NONE),
        ({"choices": {"analytics": True}}, {**NONE, "analytics": True}),
        ({"choices": {"statistics": True, "marketing": False}}, {**NONE, "analytics": True}),
        ({"choices": {"necessary": True, "personalisation": True, "analytics": False}}, {**NONE, "personalisation": True}),
    ],
)
async def test_json_post_records_and_sets_cookie(client: httpx.AsyncClient, store: MemoryStore, body: dict, choices: dict) -> None:
    r = await client.post("/_consent", json=body)
    assert r.status_code == 200, r.text
    assert r.json()["choices"] == choices and r.json()["decided"]
    cookie = next(c for c in r.headers.get_list("set-cookie") if c.startswith("consentmw="))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    assert (await client.get("/_consent")).json()["choices"] == choices
    assert (await client.get("/")).json()["choices"] == choices
    assert [rec.choices for rec in store.records] == [choices]
    assert store.records[0].consent_id == r.json()["id"]


async def test_later_choice_keeps_the_consent_id(client: httpx.AsyncClient, store: MemoryStore) -> None:
    first = (await client.post("/_consent", json={"accept": "all"})).json()["id"]
    second = (await client.post("/_consent", json={"accept": "necessary"})).json()["id"]
    assert first == second
    assert [r.choices["analytics"] for r in store.records] == [True, False]


async def test_secure_cookie_on_https(store: MemoryStore) -> None:
    async with client_for(make_app(store=store), base_url="https://example.com") as client:
        r = await client.post("/_consent", json={"accept": "all"})
    assert "Secure" in r.headers["set-cookie"]


async def test_form_post_without_javascript_redirects_back(client: httpx.AsyncClient, store: MemoryStore) -> None:
    r = await client.post("/_consent", data={"accept": "custom", "category": ["analytics", "personalisation"], "next": "/shop?page=2"})
    assert r.status_code == 303
    assert r.headers["location"] == "/shop?page=2"
    assert (await client.get("/_consent")).json()["choices"] == {**NONE, "analytics": True, "personalisation": True}
    assert store.records[0].method == "form"


@pytest.mark.parametrize(
    ("next_url", "referer", "location"),
    [
        ("//evil.example/x", None, None),
        ("https://evil.example/", None, None),
        ("/\\evil.example", None, None),
        ("/ok\r\nSet-Cookie: x=1", None, None),
        ("/ok\n", None, None),
        ("javascript:alert(1)", None, None),
        ("", f"{ORIGIN}/from/here?q=1", "/from/here?q=1"),
        ("", "https://evil.example/page", "/"),
        ("", f"{ORIGIN}/from/a b", "/"),
    ],
)
async def test_form_return_url_stays_on_site(client: httpx.AsyncClient, store: MemoryStore, next_url: str, referer: str | None, location: str | None) -> None:
    headers = {"referer": referer} if referer else {}
    r = await client.post("/_consent", data={"accept": "all", "next": next_url}, headers=headers)
    if location is None:  # a tampered return URL: refused by name, nothing recorded
        assert r.status_code == 400 and r.json()["error"] == "invalid_next"
        assert "set-cookie" not in r.headers and store.records == []
    else:
        assert r.status_code == 303
        assert r.headers["location"] == location
        assert len(store.records) == 1


CROSS_SITE = [
    pytest.param({"origin": "https://evil.example"}, id="foreign-origin"),
    pytest.param({"origin": "null"}, id="null-origin"),
    pytest.param({"origin": ORIGIN, "sec-fetch-site": "cross-site"}, id="fetch-cross-site"),
    pytest.param({"origin": ORIGIN, "sec-fetch-site": "same-site"}, id="fetch-same-site"),
]


@pytest.mark.parametrize("headers", CROSS_SITE)
async def test_cross_site_posts_are_refused(client: httpx.AsyncClient, store: MemoryStore, headers: dict) -> None:
    await client.post("/_consent", json={"accept": "necessary"})
    r = await client.post("/_consent", json={"accept": "all"}, headers=headers)
    assert r.status_code == 403
    assert r.json()["error"] == "cross_site"
    assert "set-cookie" not in r.headers
    assert (await client.get("/_consent")).json()["choices"] == NONE
    assert len(store.records) == 1


async def test_trusted_origin_may_post(store: MemoryStore) -> None:
    app = make_app(store=store, trusted_origins=["https://shop.example"])
    async with client_for(app) as client:
        r = await client.post("/_consent", json={"accept": "all"}, headers={"origin": "https://shop.example", "sec-fetch-site": "same-site"})
    assert r.status_code == 200


# Behind a reverse proxy that rewrites Host (nginx's default), the app sees Host 127.0.0.1:8000
# while the browser is on https://shop.example.
PROXIED = "http://127.0.0.1:8000"
BROWSER = {"origin": "https://shop.example", "referer": "https://shop.example/products?sort=new"}


async def test_a_browser_saying_same_origin_may_post_through_a_proxy_that_rewrites_host(store: MemoryStore) -> None:
    async with client_for(make_app(store=store), base_url=PROXIED) as client:
        r = await client.post("/_consent", json={"accept": "all"}, headers={**BROWSER, "sec-fetch-site": "same-origin"})
        form = await client.post("/_consent", data={"accept": "necessary"}, headers={**BROWSER, "sec-fetch-site": "same-origin"})
    assert r.status_code == 200 and r.json()["choices"] == ALL
    # The no-JS form goes back to the page it came from.
    assert form.status_code == 303 and form.headers["location"] == "/products?sort=new"
    # The log names that page by its path only, as for JSON posts: a query string may carry personal data.
    assert [rec.path for rec in store.records] == ["/products", "/products"]


async def test_without_sec_fetch_site_a_post_through_a_host_rewriting_proxy_needs_trusted_origins(store: MemoryStore) -> None:
    # An older browser (no Sec-Fetch-Site): only Origin against Host is left, and they differ.
    async with client_for(make_app(store=store), base_url=PROXIED) as client:
        refused = await client.post("/_consent", json={"accept": "all"}, headers=BROWSER)
    async with client_for(make_app(store=store, trusted_origins=["https://shop.example"]), base_url=PROXIED) as client:
        trusted = await client.post("/_consent", json={"accept": "all"}, headers=BROWSER)
    assert refused.status_code == 403 and refused.json()["error"] == "cross_site"
    assert trusted.status_code == 200 and len(store.records) == 1


BAD_BODIES = [
    pytest.param(b"{not json", "application/json", 400, "malformed_json", id="malformed-json"),
    pytest.param(b"[1, 2]", "application/json", 422, "invalid_body", id="not-an-object"),
    pytest.param(b"{}", "application/json", 422, "invalid_body", id="empty-object"),
    pytest.param(b'{"accept": "some"}', "application/json", 422, "invalid_accept", id="bad-accept"),
    pytest.param(b'{"choices": {"analytics": "yes"}}', "application/json", 422, "invalid_choice", id="non-bool"),
    pytest.param(b'{"choices": {"tracking": true}}', "application/json", 422, "unknown_category", id="unknown-category"),
    pytest.param(b'{"choices": {"necessary": false}}', "application/json", 422, "required_category", id="refuse-required"),
    pytest.param(b'{"choices": {"statistics": true, "analytics": false}}', "application/json", 422, "conflicting_choices", id="alias-disagrees"),
    # A lone surrogate is valid JSON but cannot be written back in UTF-8: the error naming it must not fail.
    pytest.param(b'{"choices": {"\\ud800": true}}', "application/json", 422, "unknown_category", id="lone-surrogate-category"),
    pytest.param(b'{"choices": {"\\udfff": "yes"}}', "application/json", 422, "invalid_choice", id="lone-surrogate-non-bool"),
    # Both forms at once: which one the visitor meant is unknown, so neither is recorded.
    pytest.param(b'{"accept": "all", "choices": {"analytics": false}}', "application/json", 422, "invalid_body", id="accept-and-choices"),
    pytest.param(b"accept=custom&category=nope", "application/x-www-form-urlencoded", 422, "unknown_category", id="form-unknown"),
    pytest.param(b"accept=maybe", "application/x-www-form-urlencoded", 422, "invalid_accept", id="form-bad-accept"),
    pytest.param(b"\xff\xfe=1", "application/x-www-form-urlencoded", 400, "malformed_form", id="form-not-utf8"),
    pytest.param(b"accept=all", "text/plain", 415, "unsupported_media_type", id="text-plain"),
    pytest.param(b"x" * 9000, "application/json", 413, "body_too_large", id="oversize"),
    pytest.param(b"[" * 5000 + b"]" * 5000, "application/json", 413, "body_too_large", id="deep-nesting"),
]


@pytest.mark.parametrize(("body", "content_type", "status", "code"), BAD_BODIES)
async def test_bad_input_is_a_4xx_and_the_earlier_choice_stands(
    client: httpx.AsyncClient, store: MemoryStore, body: bytes, content_type: str, status: int, code: str
) -> None:
    await client.post("/_consent", json={"accept": "all"})
    r = await client.post("/_consent", content=body, headers={"content-type": content_type})
    assert r.status_code == status
    assert r.json()["error"] == code and r.json()["message"]
    assert "set-cookie" not in r.headers
    assert len(store.records) == 1
    assert (await client.get("/_consent")).json()["choices"] == ALL


async def test_a_page_that_utf8_cannot_hold_is_dropped_not_a_503(tmp_path) -> None:
    # "page" only labels the record; a lone surrogate in it made every store fail to write (503, logged).
    async with client_for(make_app(store=f"sqlite:///{tmp_path}/consent.db")) as client:
        r = await client.post("/_consent", content=b'{"accept": "all", "page": "/shop\\ud800"}', headers={"content-type": "application/json"})
        assert r.status_code == 200, r.text
        assert (await client.get("/_consent")).json()["decided"] is True


async def test_the_page_logged_keeps_no_query_string(store: MemoryStore) -> None:
    # A query string may carry a search, an e-mail address, a token: the log needs only the page.
    async with client_for(make_app(store=store)) as client:
        await client.post("/_consent", json={"accept": "all", "page": "/search?q=kim%40example.kr"})
        await client.post("/_consent", json={"accept": "all"}, headers={"referer": f"{ORIGIN}/search?q=kim%40example.kr"})
        await client.post("/_consent", data={"accept": "all", "next": "/search?q=kim%40example.kr"})
    assert [r.path for r in store.records] == ["/search"] * 3


@pytest.mark.parametrize("path", ["/a\x00b", "/a\x01b", "/a b\x7f"])
async def test_the_page_logged_from_the_referer_holds_no_control_characters(store: MemoryStore, path: str) -> None:
    # PostgreSQL text cannot hold NUL, and one such record failed its whole write batch: a 503 for
    # every visitor choosing at that moment. Servers that pass such a Referer exist.
    app = make_app(store=store)
    headers = [(b"origin", ORIGIN.encode()), (b"referer", f"{ORIGIN}{path}".encode("latin-1")), (b"content-type", b"application/json")]
    messages = [{"type": "http.request", "body": b'{"accept": "all"}'}]
    sent: list[dict] = []

    async def receive() -> dict:
        return messages.pop(0)

    async def send(message: dict) -> None:
        sent.append(message)

    await app(http_scope("POST", "/_consent", headers), receive, send)
    assert sent[0]["status"] == 200
    assert [r.path for r in store.records] == [""]


async def test_json_nesting_within_the_size_cap_is_a_4xx(client: httpx.AsyncClient) -> None:
    r = await client.post("/_consent", content=b"[" * 4000 + b"]" * 4000, headers={"content-type": "application/json"})
    assert r.status_code in (400, 422)


async def test_oversize_streamed_body_without_length_is_refused(client: httpx.AsyncClient, store: MemoryStore) -> None:
    async def chunks():
        for _ in range(20):
            yield b'{"accept": "all", "pad": "' + b"x" * 1000

    r = await client.post("/_consent", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert not store.records


@pytest.mark.parametrize(("method", "path"), [("PUT", "/_consent"), ("DELETE", "/_consent"), ("POST", "/_consent/policy"), ("POST", "/_consent/banner.js")])
async def test_wrong_method(client: httpx.AsyncClient, method: str, path: str) -> None:
    r = await client.request(method, path)
    assert r.status_code == 405
    assert r.json()["error"] == "method_not_allowed"
    assert "GET" in r.headers["allow"]


async def test_unknown_endpoint_is_404_json(client: httpx.AsyncClient) -> None:
    r = await client.get("/_consent/nope")
    assert r.status_code == 404 and r.json()["error"] == "not_found"


async def test_withdrawal_expires_the_refused_categories_cookies(client: httpx.AsyncClient) -> None:
    await client.post("/_consent", json={"accept": "all"})
    client.cookies.set("_ga", "GA1.1.5")
    client.cookies.set("_ga_ABC", "GS1.1")
    client.cookies.set("_fbp", "fb.1")
    client.cookies.set("sessionid", "keep")
    r = await client.post("/_consent", json={"choices": {"advertising": True}})
    expired = [c for c in r.headers.get_list("set-cookie") if "Max-Age=0" in c]
    assert sorted(c.split("=", 1)[0] for c in expired) == ["_ga", "_ga_ABC"]
    assert all("Path=/" in c for c in expired)


async def test_withdrawal_expires_cookies_sent_on_several_cookie_lines(client: httpx.AsyncClient) -> None:
    # HTTP/2 browsers may send each cookie as its own header line; every line is the request's cookies.
    state = await client.post("/_consent", json={"accept": "all"})
    consent = f"consentmw={state.cookies['consentmw']}"
    client.cookies.clear()
    headers = [("cookie", consent), ("cookie", "_ga=GA1.1.5"), ("cookie", "_fbp=fb.1; sessionid=keep"), ("content-type", "application/json")]
    r = await client.post("/_consent", content=b'{"choices": {"personalisation": true}}', headers=headers)
    assert r.status_code == 200 and r.json()["id"] == state.json()["id"]
    expired = [c for c in r.headers.get_list("set-cookie") if "Max-Age=0" in c]
    assert sorted(c.split("=", 1)[0] for c in expired) == ["_fbp", "_ga"]


async def test_expiry_covers_the_policys_domain_and_path_variants(store: MemoryStore) -> None:
    from consentmw.core.policy import load_policy

    data = load_policy("default").data
    data["cookie_domains"] = ["", ".example.com"]
    data["cookie_paths"] = ["/", "/app"]
    async with client_for(make_app(store=store, policy=data)) as client:
        client.cookies.set("_gid", "1")
        r = await client.post("/_consent", json={"accept": "necessary"})
    expired = sorted(c for c in r.headers.get_list("set-cookie") if c.startswith("_gid="))
    assert len(expired) == 4
    assert sum("Domain=.example.com" in c for c in expired) == 2
    assert sum("Path=/app" in c for c in expired) == 2


async def test_policy_endpoint_is_public_and_cacheable(client: httpx.AsyncClient) -> None:
    r = await client.get("/_consent/policy")
    assert r.status_code == 200
    body = r.json()
    assert [c["id"] for c in body["categories"]] == ["necessary", "personalisation", "analytics", "advertising"]
    assert body["categories"][0]["required"] is True
    assert body["texts"]["accept_all"]["ko"] == "모두 허용" and body["texts"]["accept_all"]["de"] == "Alle akzeptieren"
    assert all("match" not in s for c in body["categories"] for s in c["services"])
    again = await client.get("/_consent/policy", headers={"if-none-match": r.headers["etag"]})
    assert again.status_code == 304


@pytest.mark.parametrize(("path", "media"), [("/_consent/banner.js", "text/javascript"), ("/_consent/banner.css", "text/css")])
async def test_banner_assets_have_etags(client: httpx.AsyncClient, path: str, media: str) -> None:
    r = await client.get(path)
    assert r.status_code == 200 and r.headers["content-type"].startswith(media)
    assert r.content
    assert (await client.get(path, headers={"if-none-match": r.headers["etag"]})).status_code == 304


async def test_gpc_visitor_accepting_all_still_refuses_gpc_categories(client: httpx.AsyncClient) -> None:
    r = await client.post("/_consent", json={"accept": "all"}, headers={"sec-gpc": "1"})
    assert r.json()["gpc"] is True
    assert r.json()["choices"] == {**ALL, "analytics": False, "advertising": False}
    assert (await client.get("/", headers={"sec-gpc": "1"})).json()["analytics"] is False
    assert (await client.get("/")).json()["analytics"] is True


# -- several consent cookies on one request ----------------------------------------------------

OLDER_ALL = ("older", {"personalisation", "analytics", "advertising"}, 3600)
NEWER_SOME = ("newer", {"personalisation", "analytics"}, 60)


def duplicate_consent_cookies() -> str:
    # The older first: a browser orders by path length, then age, never by which choice is newest.
    return "; ".join(f"consentmw={consent_value(allowed, cid, ago=ago)}" for cid, allowed, ago in (OLDER_ALL, NEWER_SOME))


async def test_a_new_choice_keeps_the_consent_id_of_the_newest_cookie(client: httpx.AsyncClient, store: MemoryStore) -> None:
    r = await client.post("/_consent", json={"accept": "necessary"}, headers={"cookie": duplicate_consent_cookies()})
    assert r.status_code == 200
    assert r.json()["id"] == "newer"
    assert [rec.consent_id for rec in store.records] == ["newer"]


async def test_opt_out_keeps_the_other_categories_of_the_newest_choice(client: httpx.AsyncClient, store: MemoryStore) -> None:
    r = await client.post("/_consent/opt-out", json={}, headers={"cookie": duplicate_consent_cookies()})
    assert r.status_code == 200
    assert r.json()["choices"] == {**NONE, "personalisation": True}
    assert store.records[0].choices == {**NONE, "personalisation": True}


async def test_opt_out_page_shows_the_newest_choice(client: httpx.AsyncClient) -> None:
    older = consent_value({"analytics"}, "older", ago=3600)
    newer = consent_value(set(), "newer", ago=60)
    r = await client.get("/_consent/opt-out?lang=en", headers={"cookie": f"consentmw={older}; consentmw={newer}"})
    assert r.status_code == 200
    assert "You have refused analytics." in r.text
    assert 'action="/_consent/opt-out"' not in r.text  # nothing left to opt out of


CONSENT_COOKIE_CASES = [
    # (cookie_domain, host, the request carries a consent cookie, a host-only expiry is sent)
    pytest.param(".example.com", "www.example.com", True, True, id="subdomain-with-domain-cookie"),
    pytest.param(".example.com", "example.com", True, True, id="apex-with-domain-cookie"),
    pytest.param("example.com", "shop.example.com:8000", True, True, id="domain-without-dot-and-port"),
    pytest.param(".example.com", "www.example.com", False, False, id="no-consent-cookie-to-expire"),
    pytest.param(None, "www.example.com", True, False, id="host-only-is-the-cookie-itself"),
    # The browser refuses a Domain cookie this host is not in: the visitor's only cookie must stay.
    pytest.param(".example.com", "www.example.org", True, False, id="host-outside-the-domain"),
]


@pytest.mark.parametrize(("cookie_domain", "host", "carries", "expired"), CONSENT_COOKIE_CASES)
async def test_a_choice_expires_the_host_only_twin_of_a_domain_consent_cookie(
    store: MemoryStore, cookie_domain: str | None, host: str, carries: bool, expired: bool
) -> None:
    # A site that set cookie_domain after visitors had chosen: they hold a host-only cookie beside the
    # shared one. The new choice replaces the shared one; the host-only one can only be expired.
    base_url = f"http://{host}"
    headers = {"cookie": f"consentmw={consent_value(set(), 'old', ago=3600)}"} if carries else {}
    async with client_for(make_app(store=store, cookie_domain=cookie_domain), base_url=base_url) as client:
        r = await client.post("/_consent", json={"accept": "all"}, headers=headers)
    assert r.status_code == 200
    consent_cookies = [c for c in r.headers.get_list("set-cookie") if c.startswith("consentmw=")]
    if expired:
        # The expiry goes first: where a browser takes the two for one cookie, the new one is set last.
        assert consent_cookies[0] == "consentmw=; Max-Age=0; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; SameSite=Lax"
        assert f"Domain={cookie_domain}" in consent_cookies[1] and "Max-Age=0" not in consent_cookies[1]
        assert len(consent_cookies) == 2
    else:
        assert len(consent_cookies) == 1 and "Max-Age=0" not in consent_cookies[0]


class NoscriptForm(HTMLParser):
    """The no-JavaScript consent form of a page, read with the standard library's HTML parser: what a
    browser with scripts off submits (method, action, hidden fields, checkboxes, buttons)."""

    def __init__(self) -> None:
        super().__init__()
        self.form: dict[str, str] | None = None
        self.inside = False
        self.fields: list[tuple[str, str]] = []
        self.checkboxes: list[str] = []
        self.buttons: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and "consentmw-noscript" in a.get("class", "").split():
            self.form, self.inside = a, True
        elif self.inside and tag == "input":
            if a.get("type") == "hidden":
                self.fields.append((a["name"], a["value"]))
            elif a.get("type") == "checkbox":
                self.checkboxes.append(a["value"])
        elif self.inside and tag == "button":
            self.buttons.append((a["name"], a["value"]))

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.inside = False


async def html_page(request):
    return HTMLResponse("<!doctype html><html><head><title>t</title></head><body><p>shop</p></body></html>")


@pytest.mark.parametrize(("button", "checked", "analytics"), [("all", [], True), ("necessary", [], False), ("custom", ["analytics"], True), ("custom", [], False)])
async def test_the_no_javascript_form_posts_a_choice_and_returns_to_the_page(store: MemoryStore, button: str, checked: list[str], analytics: bool) -> None:
    """Held at the HTTP level, not only in Chromium: a form switched to GET, or pointing elsewhere,
    would silently record nothing for visitors without JavaScript."""
    app = Starlette(routes=[Route("/shop/item", html_page)])
    app.add_middleware(ConsentMiddleware, secret_key=SECRET, store=store)
    async with client_for(app) as client:
        page = await client.get("/shop/item", params={"id": "3"})
        reader = NoscriptForm()
        reader.feed(page.text)
        assert reader.form is not None, page.text
        assert reader.form.get("method", "get").lower() == "post"
        assert reader.form.get("action") == "/_consent"
        assert reader.form.get("enctype", "application/x-www-form-urlencoded") == "application/x-www-form-urlencoded"
        # The return address, and the language the form was shown in (kept in the consent log).
        assert reader.fields == [("next", "/shop/item?id=3"), ("lang", "en")]
        assert set(reader.checkboxes) == {"personalisation", "analytics", "advertising"}
        assert ("accept", button) in reader.buttons
        # As a browser submits it: the hidden field, the ticked boxes, then the button pressed.
        data = [*reader.fields, *(("category", c) for c in checked), ("accept", button)]
        r = await client.post(urljoin(str(page.url), reader.form["action"]), content=urlencode(data), headers={"content-type": "application/x-www-form-urlencoded"})
        assert r.status_code == 303 and r.headers["location"] == "/shop/item?id=3"
        assert (await client.get("/_consent")).json()["choices"]["analytics"] is analytics
    assert [rec.method for rec in store.records] == ["form"] and store.records[0].path == "/shop/item"
    assert store.records[0].language == "en"
