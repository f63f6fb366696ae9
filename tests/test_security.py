"""Secrets, key rotation, cookie attributes and the headers of everything consentmw serves itself."""

from __future__ import annotations

import logging
import os
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.datastructures import Secret
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from consentmw import ConsentMiddleware
from consentmw.core.errors import ConfigError
from consentmw.core.store import MemoryStore, SQLiteStore
from tests.conftest import ORIGIN, SECRET, client_for, make_app

OLD_KEY = "old-signing-key-" + "o" * 32
NEW_KEY = "new-signing-key-" + "n" * 32
NOT_DECIDED = {"necessary": True, "personalisation": False, "analytics": False, "advertising": False}
ALL = {"necessary": True, "personalisation": True, "analytics": True, "advertising": True}
STRICT_FRAMING = {"'none'", "'self'"}


def consent_cookie(response: httpx.Response) -> str:
    return next(c for c in response.headers.get_list("set-cookie") if c.startswith("consentmw="))


def csp_directives(value: str) -> dict[str, list[str]]:
    directives: dict[str, list[str]] = {}
    for part in value.split(";"):
        name, *sources = part.split()
        directives.setdefault(name.lower(), sources)
    return directives


# -- the secret -----------------------------------------------------------------------------------


async def page(request: Request) -> HTMLResponse:
    response = HTMLResponse('<html><head></head><body><script src="https://www.googletagmanager.com/gtag/js?id=G-X1"></script></body></html>')
    response.set_cookie("_ga", "GA1.1.1")
    response.set_cookie("prefs", "dark")
    return response


async def test_the_secret_never_reaches_a_log_a_repr_or_a_response(tmp_path: Any, caplog: pytest.LogCaptureFixture) -> None:
    secret = "s3cret-" + os.urandom(16).hex()
    caplog.set_level(logging.DEBUG)
    broken = tmp_path / "log-is-a-directory.db"
    broken.mkdir()  # a real store failure: SQLite cannot open a directory as its database
    stores = {"ok": MemoryStore(), "broken": SQLiteStore(broken, timeout=1.0)}
    seen: list[str] = []
    for name, store in stores.items():
        app = Starlette(routes=[Route("/", page)])
        app.add_middleware(ConsentMiddleware, secret_key=[Secret(secret), OLD_KEY], store=store, store_timeout=1.0)
        async with client_for(app) as client:
            responses = [
                await client.get("/"),
                await client.post("/_consent", json={"accept": "all"}),
                await client.get("/", headers={"cookie": "consentmw=1.abc.forged.x.y"}),
                await client.post("/_consent", data={"accept": "custom", "category": "analytics", "next": "/x"}),
                await client.post("/_consent", content=b"{", headers={"content-type": "application/json"}),
                await client.get("/_consent"),
                await client.get("/_consent/policy"),
                await client.get("/_consent/opt-out"),
                await client.post("/_consent/opt-out", data={"lang": "en"}),
                await client.get("/_consent/nowhere"),
            ]
            # Make sure the flow did what it should, so the search below covers every path.
            assert responses[1].status_code == (200 if name == "ok" else 503)
            assert responses[9].status_code == 404
            middleware = app.middleware_stack
            while not isinstance(middleware, ConsentMiddleware):
                middleware = middleware.app
            seen += [repr(middleware), str(middleware), repr(middleware.api), repr(middleware.codec), repr(middleware.reader), repr(store)]
        for r in responses:
            seen += [r.text, *(f"{k}: {v}" for k, v in r.headers.multi_items())]
    assert any("could not write the consent log" in record.getMessage() for record in caplog.records)
    assert any(record.levelno == logging.DEBUG for record in caplog.records)
    seen += [record.getMessage() for record in caplog.records] + [caplog.text]
    leaks = [text for text in seen if secret in text or OLD_KEY in text]
    assert leaks == []


@pytest.mark.parametrize(
    ("secret_key", "problem"),
    [
        pytest.param([NEW_KEY, ""], "secret_key is required", id="one-empty-key-in-the-list"),
        pytest.param([], "secret_key is required", id="empty-list"),
    ],
)
def test_config_errors_about_keys_do_not_quote_them(secret_key: list[str], problem: str) -> None:
    with pytest.raises(ConfigError, match=problem) as error:
        ConsentMiddleware(make_app(), secret_key=secret_key, store=MemoryStore())
    assert NEW_KEY not in str(error.value)


def test_short_key_warning_does_not_quote_it() -> None:
    with pytest.warns(UserWarning, match="shorter than 16") as warned:
        ConsentMiddleware(make_app(), secret_key="tiny-key", store=MemoryStore())
    assert all("tiny-key" not in str(w.message) for w in warned)


# -- key rotation ---------------------------------------------------------------------------------


async def test_rotating_keys_keeps_every_visitors_choice() -> None:
    store = MemoryStore()
    # Before the rotation: one key.
    async with client_for(make_app(secret_key=OLD_KEY, store=store)) as client:
        old_cookie = consent_cookie(await client.post("/_consent", json={"accept": "all"})).split(";")[0]
    # The rotation: the new key first, the old one still accepted.
    async with client_for(make_app(secret_key=[NEW_KEY, OLD_KEY], store=store)) as client:
        state = (await client.get("/_consent", headers={"cookie": old_cookie})).json()
        assert state["decided"] and state["choices"] == ALL
        client.cookies.set("consentmw", old_cookie.split("=", 1)[1])
        renewed = (await client.post("/_consent", json={"choices": {"analytics": True}})).json()
        new_cookie = consent_cookie(await client.post("/_consent", json={"choices": {"analytics": True}})).split(";")[0]
    assert renewed["id"] == state["id"]  # the visitor's history stays one history across the rotation
    # After the old key is dropped: cookies signed with it ask again, the re-signed ones still hold.
    async with client_for(make_app(secret_key=NEW_KEY, store=store)) as client:
        assert (await client.get("/_consent", headers={"cookie": old_cookie})).json()["choices"] == NOT_DECIDED
        state = (await client.get("/_consent", headers={"cookie": new_cookie})).json()
    assert state["decided"] and state["choices"] == {**NOT_DECIDED, "analytics": True}
    assert {r.consent_id for r in store.records} == {renewed["id"]}


async def test_a_cookie_from_another_site_with_another_key_is_not_trusted() -> None:
    async with client_for(make_app(secret_key=OLD_KEY)) as other_site:
        foreign = consent_cookie(await other_site.post("/_consent", json={"accept": "all"})).split(";")[0]
    async with client_for(make_app(secret_key=NEW_KEY)) as client:
        r = await client.get("/", headers={"cookie": foreign})
    assert r.json()["decided"] is False and r.json()["analytics"] is False


# -- cookie attributes ----------------------------------------------------------------------------

COOKIE_CASES = [
    pytest.param("http://example.com", None, False, id="http"),
    pytest.param("https://example.com", None, True, id="https"),
    pytest.param("http://example.com", True, True, id="forced-secure-behind-a-tls-proxy"),
    pytest.param("https://example.com", False, False, id="explicitly-off"),
]


@pytest.mark.parametrize(("base_url", "cookie_secure", "secure"), COOKIE_CASES)
async def test_consent_cookie_attributes(base_url: str, cookie_secure: bool | None, secure: bool) -> None:
    app = make_app(cookie_secure=cookie_secure)
    async with client_for(app, base_url=base_url) as client:
        client.cookies.set("_ga", "GA1.1.1")
        r = await client.post("/_consent", json={"accept": "necessary"})
    consent, *expiries = r.headers.get_list("set-cookie")
    attributes = [a.strip() for a in consent.split(";")[1:]]
    assert "HttpOnly" in attributes and "SameSite=Lax" in attributes and "Path=/" in attributes
    assert ("Secure" in attributes) is secure
    assert not any(a.lower().startswith("domain=") for a in attributes)  # host-only unless configured
    assert expiries and all(e.startswith("_ga=;") and ("Secure" in e) is secure for e in expiries)


async def test_form_post_cookie_is_secure_on_https_too() -> None:
    async with client_for(make_app(), base_url="https://example.com") as client:
        r = await client.post("/_consent", data={"accept": "all", "next": "/"})
    assert r.status_code == 303
    assert "Secure" in consent_cookie(r) and "HttpOnly" in consent_cookie(r)


async def test_host_prefixed_cookie_is_always_secure_and_read_back() -> None:
    # Behind a TLS proxy the app may see http; a __Host- cookie without Secure would be dropped.
    async with client_for(make_app(cookie_name="__Host-consentmw"), base_url="https://example.com") as client:
        r = await client.post("/_consent", json={"accept": "all"})
        assert (await client.get("/")).json()["analytics"] is True
    consent = next(c for c in r.headers.get_list("set-cookie") if c.startswith("__Host-consentmw="))
    assert "Secure" in consent and "Path=/" in consent and "domain=" not in consent.lower()


@pytest.mark.parametrize(
    "options",
    [
        pytest.param({"cookie_name": "__Host-consentmw", "cookie_secure": False}, id="host-not-secure"),
        pytest.param({"cookie_name": "__Secure-consentmw", "cookie_secure": False}, id="secure-not-secure"),
        pytest.param({"cookie_name": "__Host-consentmw", "cookie_domain": ".example.com"}, id="host-with-domain"),
        pytest.param({"cookie_name": "__Host-consentmw", "cookie_path": "/shop"}, id="host-with-path"),
    ],
)
def test_prefixed_cookie_names_that_browsers_would_drop_are_refused(options: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match="__(Host|Secure)-consentmw"):
        ConsentMiddleware(Starlette(), secret_key=SECRET, store=MemoryStore(), **options)


# -- headers of what consentmw serves -------------------------------------------------------------

ENDPOINTS = [
    pytest.param("GET", "/_consent", {}, 200, id="state"),
    pytest.param("POST", "/_consent", {"json": {"accept": "all"}}, 200, id="json-post"),
    pytest.param("POST", "/_consent", {"data": {"accept": "all", "next": "/"}}, 303, id="form-post"),
    pytest.param("GET", "/_consent/policy", {}, 200, id="policy"),
    pytest.param("GET", "/_consent/banner.js", {}, 200, id="banner-js"),
    pytest.param("GET", "/_consent/banner.css", {}, 200, id="banner-css"),
    pytest.param("GET", "/_consent/browsers", {}, 200, id="browsers-page"),
    pytest.param("GET", "/_consent/browsers", {"headers": {"accept": "application/json"}}, 200, id="browsers-json"),
    pytest.param("GET", "/_consent/opt-out", {}, 200, id="opt-out-page"),
    pytest.param("POST", "/_consent/opt-out", {"data": {"lang": "en"}}, 303, id="opt-out-post"),
    pytest.param("GET", "/_consent/missing", {}, 404, id="not-found"),
    pytest.param("DELETE", "/_consent", {}, 405, id="wrong-method"),
    pytest.param("POST", "/_consent", {"json": {"accept": "all"}, "headers": {"origin": "https://evil.example"}}, 403, id="cross-site"),
    pytest.param("POST", "/_consent", {"content": b"x" * 9000, "headers": {"content-type": "application/json"}}, 413, id="too-large"),
]


@pytest.mark.parametrize(("method", "path", "kwargs", "status"), ENDPOINTS)
async def test_everything_consentmw_serves_has_a_strict_csp(client: httpx.AsyncClient, method: str, path: str, kwargs: dict, status: int) -> None:
    r = await client.request(method, path, **kwargs)
    assert r.status_code == status
    assert r.headers["x-content-type-options"] == "nosniff"
    assert len(r.headers.get_list("content-security-policy")) == 1
    csp = csp_directives(r.headers["content-security-policy"])
    scripts = csp.get("script-src", csp["default-src"])
    assert csp["default-src"] == ["'none'"]
    assert not {"'unsafe-inline'", "'unsafe-eval'", "*", "data:", "http:", "https:"} & set(scripts)
    assert csp.get("object-src", ["'none'"]) == ["'none'"]
    assert set(csp["frame-ancestors"]) <= STRICT_FRAMING and csp["base-uri"] == ["'none'"]
    assert set(csp["form-action"]) == {"'self'"}


async def test_the_apps_own_pages_keep_their_own_headers(client: httpx.AsyncClient) -> None:
    # consentmw's headers are for its own endpoints; the site's pages are the site's business.
    r = await client.get("/")
    assert "content-security-policy" not in r.headers and "x-content-type-options" not in r.headers


async def test_state_and_choices_are_never_cached_by_shared_caches(client: httpx.AsyncClient) -> None:
    for r in [await client.get("/_consent"), await client.post("/_consent", json={"accept": "all"}), await client.post("/_consent", data={"accept": "all"})]:
        assert r.headers["cache-control"] == "no-store"


async def test_origin_check_is_not_fooled_by_look_alike_hosts(client: httpx.AsyncClient, store: MemoryStore) -> None:
    for origin in [ORIGIN + ".evil.example", "http://evil.example#testserver", "http://testserver@evil.example", "http://evil-testserver"]:
        r = await client.post("/_consent", json={"accept": "all"}, headers={"origin": origin})
        assert r.status_code == 403, origin
    assert store.records == []
