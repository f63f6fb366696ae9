"""The banner's language and the data it carries in the page, as a visitor and a site owner meet
them: which language a page's banner, dialog and no-JS form speak, what Vary says, how the inline
data survives hostile texts, and what a shared cache may see."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from typing import Any

import html5lib
import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from consentmw import ConsentMiddleware
from consentmw.core.errors import PolicyError
from consentmw.core.model import SHIPPED, default_texts
from consentmw.core.policy import load_policy
from consentmw.core.store import MemoryStore
from tests.conftest import SECRET, client_for, consent_value

DATA = re.compile(r'<script type="application/json" id="consentmw-data"([^>]*)>(.*?)</script>', re.S)
HOSTILE = "</script><script>alert(1)</script><!-- \u2028\u2029 & <b> ]]> \"'"


def page(lang: str | None = None, body: str = "<p>hi</p>", head: str = "") -> str:
    attr = f' lang="{lang}"' if lang is not None else ""
    return f"<!doctype html>\n<!-- a comment -->\n<html{attr}>\n<head><title>t</title>{head}</head>\n<body>{body}</body>\n</html>\n"


async def html_page(request: Request) -> Response:
    lang = request.query_params.get("lang")
    headers = {"cache-control": request.query_params["cache"]} if "cache" in request.query_params else None
    media = request.query_params.get("type", "text/html")
    body = page(lang)
    if media == "application/xhtml+xml":
        body = f'<?xml version="1.0" encoding="utf-8"?>\n<html xmlns="http://www.w3.org/1999/xhtml" xml:lang="{lang}"><head><title>t</title></head><body><p>x</p></body></html>'
    return HTMLResponse(body, headers=headers, media_type=media)


def site(policy: Any = "default", **options: Any) -> Starlette:
    app = Starlette(routes=[Route("/", html_page)])
    app.add_middleware(ConsentMiddleware, secret_key=SECRET, store=options.pop("store", MemoryStore()), policy=policy, **options)
    return app


def data_of(text: str) -> dict[str, Any]:
    """The banner's data as a browser reads it: the script element's text, parsed by an HTML parser."""
    tree = html5lib.parse(text, namespaceHTMLElements=False)
    found = [s for s in tree.iter("script") if s.get("id") == "consentmw-data"]
    assert len(found) == 1
    assert found[0].get("type") == "application/json"
    return json.loads(found[0].text)


async def get(app: Starlette, url: str = "/", **headers: str) -> httpx.Response:
    async with client_for(app) as client:
        return await client.get(url, headers=headers)


def noscript_lang(text: str) -> str:
    found = re.search(r'<form class="consentmw-noscript"[^>]* lang="([^"]+)"', text)
    assert found is not None
    return found.group(1)


@pytest.mark.parametrize(
    ("query", "accept_language", "lang", "varies"),
    [
        ("?lang=ja", "de-DE,de;q=0.9", "ja", False),  # the page's language first
        ("?lang=de-AT", "ko", "de", False),  # a regional tag finds its language
        ("?lang=zh-Hant", "en", "zh-TW", False),
        ("?lang=sv", "fr-CH, en;q=0.5", "fr", True),  # a page language not offered: the browser's
        ("", "th-TH,th;q=0.9,en;q=0.5", "th", True),
        ("", "pt-PT", "pt-BR", True),
        ("", "sv", "en", True),  # nothing offered: the policy's default
        ("", "", "en", True),
    ],
)
async def test_banner_and_form_speak_the_page_then_the_browser_language(query: str, accept_language: str, lang: str, varies: bool) -> None:
    r = await get(site(), "/" + query, **{"accept-language": accept_language})
    data = data_of(r.text)
    assert data["lang"] == lang
    assert data["policy"]["texts"]["accept_all"] == default_texts()["accept_all"][lang]
    assert noscript_lang(r.text) == lang
    assert default_texts()["save"][lang] == html5lib_text(r.text, "form")[-3]
    assert ("Accept-Language" in r.headers["vary"]) is varies


def html5lib_text(text: str, tag: str) -> list[str]:
    """The texts of the buttons inside the first `tag` (inside <noscript>, read as a browser without JavaScript)."""
    inner = re.search(r"<noscript>(.*?)</noscript>", text, re.S)
    assert inner is not None
    tree = html5lib.parse(inner.group(1), namespaceHTMLElements=False)
    return ["".join(b.itertext()) for b in tree.iter("button")]


async def test_force_language_beats_page_and_browser() -> None:
    policy = {**json.loads(json.dumps(load_policy("default").data)), "force_language": "it"}
    r = await get(site(policy), "/?lang=ja", **{"accept-language": "de"})
    assert data_of(r.text)["lang"] == "it" and noscript_lang(r.text) == "it"
    assert "Accept-Language" not in r.headers["vary"]


async def test_the_policys_own_texts_win_per_language_and_the_rest_stays_shipped() -> None:
    policy = json.loads(json.dumps(load_policy("default").data))
    policy["texts"] = {"banner_title": {"de": "Cookies bei Beispiel GmbH", "pt-br": "Cookies na Exemplo"}}
    app = site(policy)
    german = data_of((await get(app, "/?lang=de")).text)["policy"]["texts"]
    assert german["banner_title"] == "Cookies bei Beispiel GmbH"
    assert german["accept_all"] == "Alle akzeptieren"
    # 'pt-br' in the policy is pt-BR: one language, whatever the case.
    assert data_of((await get(app, "/?lang=pt-BR")).text)["policy"]["texts"]["banner_title"] == "Cookies na Exemplo"
    # A language the override does not give keeps the shipped wording, not another language's.
    assert data_of((await get(app, "/?lang=fr")).text)["policy"]["texts"]["banner_title"] == default_texts()["banner_title"]["fr"]


async def test_a_policy_can_offer_fewer_languages_or_one_consentmw_does_not_ship() -> None:
    policy = json.loads(json.dumps(load_policy("default").data))
    policy["languages"] = ["ko", "en"]
    app = site(policy)
    assert data_of((await get(app, "/?lang=de")).text)["lang"] == "en"
    assert [tag for tag, _ in data_of((await get(app, "/")).text)["languages"]] == ["ko", "en"]

    swedish = {**policy, "languages": ["sv", "en"], "texts": {key: {"sv": f"sv:{key}"} for key in default_texts()}}
    app = site(swedish)
    data = data_of((await get(app, "/?lang=sv-SE")).text)
    assert data["lang"] == "sv" and data["policy"]["texts"]["accept_all"] == "sv:accept_all"
    assert ["sv", "sv:language_name"] in data["languages"]

    missing = {**policy, "languages": ["sv", "en"], "texts": {"accept_all": {"sv": "Godkänn alla"}}}
    with pytest.raises(PolicyError, match=r"\$\.languages\[0\]: consentmw ships no texts in 'sv'.*banner_body"):
        load_policy(missing)


@pytest.mark.parametrize("tag", ["en", "pt-BR", "zh-Hant-TW", "sr-Latn", "es-419", "de-CH-1996", "en-x-private"])
def test_the_schema_takes_any_bcp47_tag(tag: str) -> None:
    policy = json.loads(json.dumps(load_policy("default").data))
    policy["categories"][0]["name"][tag] = "x"
    load_policy(policy)


@pytest.mark.parametrize("tag", ["english", "e", "en_US", "en-", "-en", "ko kr", "x"])
def test_the_schema_refuses_what_is_not_a_language_tag(tag: str) -> None:
    policy = json.loads(json.dumps(load_policy("default").data))
    policy["categories"][0]["name"][tag] = "x"
    with pytest.raises(PolicyError, match=r"\$\.categories\[0\]\.name"):
        load_policy(policy)


async def test_hostile_policy_texts_stay_data_in_html() -> None:
    policy = json.loads(json.dumps(load_policy("default").data))
    policy["texts"] = {"banner_title": {"en": HOSTILE}}
    policy["categories"][1]["name"]["en"] = HOSTILE
    r = await get(site(policy), "/?lang=en")
    data = data_of(r.text)  # one script element, whose text is the JSON, whole
    assert data["policy"]["texts"]["banner_title"] == HOSTILE
    assert data["policy"]["categories"][1]["name"] == HOSTILE
    block = DATA.search(r.text)
    assert block is not None and block.group(2).isascii()
    assert "<" not in block.group(2) and "&" not in block.group(2) and "\u2028" not in block.group(2)


async def test_the_data_block_is_well_formed_in_an_xhtml_page() -> None:
    r = await get(site(), "/?type=application/xhtml%2Bxml&lang=de")
    root = ET.fromstring(r.content)  # a well-formedness error raises here
    scripts = [s for s in root.iter("{http://www.w3.org/1999/xhtml}script") if s.get("id") == "consentmw-data"]
    assert json.loads(scripts[0].text)["lang"] == "de"
    assert "<noscript" not in r.text


async def test_the_data_block_carries_the_pages_csp_nonce() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        csp = b"script-src 'nonce-abc123' 'strict-dynamic'"
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/html"), (b"content-security-policy", csp)]})
        await send({"type": "http.response.body", "body": page("en").encode()})

    mw = ConsentMiddleware(app, secret_key=SECRET, store=MemoryStore())
    async with client_for(mw) as client:
        r = await client.get("/")
    block = DATA.search(r.text)
    assert block is not None and block.group(1) == ' nonce="abc123"'


@pytest.mark.parametrize(
    ("cache_control", "inlined"),
    [
        (None, True),
        ("private, max-age=60", True),
        ("no-store", True),
        ("public, max-age=60", False),
        ("max-age=600", False),
        ("s-maxage=60", False),
        ("public, no-store", True),
    ],
)
async def test_the_visitors_state_is_inlined_only_where_no_shared_cache_may_keep_the_page(cache_control: str | None, inlined: bool) -> None:
    store = MemoryStore()
    app = site(store=store)
    async with client_for(app) as client:
        await client.post("/_consent", json={"accept": "all"})
        query = "" if cache_control is None else "?" + httpx.QueryParams({"cache": cache_control}).__str__()
        r = await client.get("/" + query)
        state = (await client.get("/_consent")).json()
    data = data_of(r.text)
    if inlined:
        assert data["state"] == {k: v for k, v in state.items() if k != "id"}
        assert data["state"]["decided"] is True
    else:
        assert data["state"] is None
    # The consent id identifies the visitor: never in a page.
    assert state["id"] not in r.text


async def test_each_visitor_gets_their_own_state_inlined_one_after_another() -> None:
    # One site, visitors in turn: whatever the page keeps from one visitor's state is never another's.
    app = site()
    visitors = [None, set(), {"analytics"}, {"personalisation", "analytics", "advertising"}]
    async with client_for(app) as client:
        for gpc in ("", "1", ""):
            for i, allowed in enumerate(visitors):
                headers = {"sec-gpc": gpc} if gpc else {}
                if allowed is not None:
                    headers["cookie"] = f"consentmw={consent_value(allowed, f'v{i}')}"
                page_state = data_of((await client.get("/", headers=headers)).text)["state"]
                state = (await client.get("/_consent", headers=headers)).json()
                assert page_state == {k: v for k, v in state.items() if k != "id"}
                assert page_state["gpc"] is bool(gpc) and page_state["decided"] is (allowed is not None)


async def test_each_language_and_state_gets_its_own_validator() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/html"), (b"etag", b'"v1"')]})
        await send({"type": "http.response.body", "body": page().encode()})

    mw = ConsentMiddleware(app, secret_key=SECRET, store=MemoryStore())
    async with client_for(mw) as client:
        german = await client.get("/", headers={"accept-language": "de"})
        french = await client.get("/", headers={"accept-language": "fr"})
        again = await client.get("/", headers={"accept-language": "fr", "if-none-match": german.headers["etag"]})
    assert german.headers["etag"] != french.headers["etag"]
    assert again.status_code == 200 and data_of(again.text)["lang"] == "fr"


async def test_policy_endpoint_in_a_language_is_what_the_banner_switches_to() -> None:
    app = site()
    async with client_for(app) as client:
        r = await client.get("/_consent/policy?lang=th")
        fallback = await client.get("/_consent/policy?lang=sv", headers={"accept-language": "ja"})
        whole = await client.get("/_consent/policy")
    assert r.json()["lang"] == "th" and r.json()["policy"]["texts"]["accept_all"] == "ยอมรับทั้งหมด"
    assert r.json()["policy"]["categories"][2]["name"] == "สถิติการเข้าชม"
    assert len(r.json()["languages"]) == len(SHIPPED)
    assert fallback.json()["lang"] == "ja" and "Accept-Language" in fallback.headers["vary"]
    # Without ?lang= the endpoint answers as it always has: every language of every text.
    assert set(whole.json()["texts"]["accept_all"]) == set(SHIPPED)


async def test_the_consent_log_keeps_the_language_the_visitor_read() -> None:
    store = MemoryStore()
    async with client_for(site(store=store)) as client:
        await client.post("/_consent", json={"accept": "all", "lang": "th"})
        await client.post("/_consent", json={"accept": "all", "lang": ["de"]}, headers={"accept-language": "ja"})
        await client.post("/_consent", data={"accept": "necessary", "lang": "pt-br"})
        await client.post("/_consent/opt-out", data={"lang": "vi"})
    assert [r.language for r in store.records] == ["th", "ja", "pt-BR", "vi"]


async def test_no_policy_means_neutral_texts_and_a_warning_that_no_controller_is_set(caplog: pytest.LogCaptureFixture) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/html")]})
        await send({"type": "http.response.body", "body": page().encode()})

    with caplog.at_level("WARNING", logger="consentmw"):
        mw = ConsentMiddleware(app, secret_key=SECRET, store=MemoryStore())
    assert any("names no controller" in r.getMessage() and "consentmw init" in r.getMessage() for r in caplog.records)
    companies = {
        name
        for preset in ("kakao-enterprise", "kakaopage", "naver-cloud", "naver-cloud-en", "nexcore")
        for name in load_policy(preset).data["controller"]["name"].values()
    } | {"Kakao", "카카오", "NAVER", "네이버"}
    async with client_for(mw) as client:
        for lang in SHIPPED:
            text = (await client.get("/", headers={"accept-language": lang})).text
            data = json.dumps(data_of(text), ensure_ascii=False)
            assert not [c for c in companies if c in data or c in text], lang


def test_a_policy_in_the_sites_name_starts_without_the_warning(caplog: pytest.LogCaptureFixture) -> None:
    policy = json.loads(json.dumps(load_policy("default").data))
    policy["controller"] = {"name": {"en": "Example Shop Ltd."}, "contact": "privacy@example.com"}
    with caplog.at_level("WARNING", logger="consentmw"):
        ConsentMiddleware(html_page, secret_key=SECRET, store=MemoryStore(), policy=policy)
    assert not [r for r in caplog.records if "controller" in r.getMessage()]
