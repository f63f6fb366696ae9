from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import AsyncIterator
from functools import cache
from html.parser import HTMLParser
from importlib import resources
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from consentmw.core import browsers, pages
from consentmw.core.model import SHIPPED, default_texts
from consentmw.core.store import MemoryStore
from tests.conftest import client_for, make_app
from tests.test_browsers import (
    CHROME_ANDROID,
    CHROME_WINDOWS,
    CURL,
    FIREFOX_IPHONE,
    IE11_WINDOWS10,
    KAKAOTALK_ANDROID,
    NAVER_APP_IPHONE,
    OWN_MENUS,
    SAFARI_IPHONE,
    SAMSUNG_PHONE,
    WHALE_WINDOWS,
)

GA_ID = "G-TEST12345"
HOSTILE = "<script>alert(1)</script>"


class Page(HTMLParser):
    """What a visitor's browser would make of a page: its text, links, forms and scripts."""

    def __init__(self, body: str) -> None:
        super().__init__()
        self.links: list[str] = []
        self.forms: list[dict[str, str]] = []
        self.inputs: dict[str, str] = {}
        self.scripts = 0
        self.styles: list[str] = []
        self.codes: list[str] = []
        self.headings: list[str] = []
        self.text_parts: list[str] = []
        self._open: list[str] = []
        self.lang = ""
        self.feed(body)
        self.text = " ".join(" ".join(self.text_parts).split())

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {k: v or "" for k, v in attrs}
        self._open.append(tag)
        if tag == "a":
            self.links.append(attributes.get("href", ""))
        elif tag == "form":
            self.forms.append(attributes)
        elif tag == "input":
            self.inputs[attributes.get("name", "")] = attributes.get("value", "")
        elif tag == "script":
            self.scripts += 1
        elif tag == "html":
            self.lang = attributes.get("lang", "")
        elif tag in ("h1", "h2", "h3", "code", "style"):
            getattr(self, {"code": "codes", "style": "styles"}.get(tag, "headings")).append("")

    def handle_endtag(self, tag: str) -> None:
        if self._open and self._open[-1] == tag:
            self._open.pop()

    def handle_data(self, data: str) -> None:
        current = self._open[-1] if self._open else ""
        if current == "style":
            self.styles[-1] += data
            return
        self.text_parts.append(data)
        if current == "code":
            self.codes[-1] += data
        elif current in ("h1", "h2", "h3"):
            self.headings[-1] += data


def kakao_enterprise_with(**changes: Any) -> dict[str, Any]:
    data = json.loads(resources.files("consentmw.core").joinpath("presets", "kakao-enterprise.json").read_text("utf-8"))
    data["categories"][2]["services"][0]["ids"] = [GA_ID]
    data.update(changes)
    return data


@cache
def shared_site(policy: str = "default") -> Starlette:
    # Read only by the GET tests; every test that posts gets its own site and store.
    return make_app(policy=policy, store=MemoryStore())


@pytest.fixture
async def reader() -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(shared_site()) as client:
        client.headers["accept-language"] = "ko-KR,ko;q=0.9"  # the seeds' visitors; tests that care send their own
        yield client


async def get_page(client: httpx.AsyncClient, url: str, **headers: str) -> tuple[httpx.Response, Page]:
    r = await client.get(url, headers=headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/html")
    return r, Page(r.text)


# -- the browser guide page -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("user_agent", "guide"),
    [
        (CHROME_WINDOWS, "chrome"),
        (CHROME_ANDROID, "chrome-android"),
        (SAMSUNG_PHONE, "samsung"),
        (WHALE_WINDOWS, "whale"),
        (SAFARI_IPHONE, "safari-ios"),
        (FIREFOX_IPHONE, "firefox-ios"),
        (IE11_WINDOWS10, "ie"),
    ],
)
async def test_browsers_page_shows_the_visitors_own_browser(reader: httpx.AsyncClient, user_agent: str, guide: str) -> None:
    _, page = await get_page(reader, "/_consent/browsers", **{"user-agent": user_agent})
    name = browsers.guides()[guide]["name"]["ko"]
    assert page.lang == "ko"
    assert f"사용 중인 브라우저: {name}" in page.text
    assert name in page.headings
    assert [h for h in page.headings if h.startswith(("모든 쿠키", "서드 파티", "이 사이트("))] == [
        "모든 쿠키 차단",
        "서드 파티(제3자) 쿠키만 차단",
        "이 사이트(testserver)의 쿠키 삭제",
    ]
    # Blocking everything also blocks the consent cookie: the page says the banner comes back.
    assert "쿠키 배너가 다시 나타나고" in page.text
    assert browsers.guides()[guide]["help_url"]["ko"] in page.links


@pytest.mark.parametrize(("user_agent", "app_name"), [(KAKAOTALK_ANDROID, "카카오톡"), (NAVER_APP_IPHONE, "네이버 앱")])
async def test_in_app_browser_is_told_to_open_the_page_in_a_real_browser(reader: httpx.AsyncClient, user_agent: str, app_name: str) -> None:
    _, page = await get_page(reader, "/_consent/browsers", **{"user-agent": user_agent})
    assert f"지금 이 페이지는 {app_name} 안의 브라우저로 열려 있습니다" in page.text
    assert "평소 쓰는 브라우저로 열기" in page.headings
    assert "모든 쿠키 차단" not in page.headings
    # ...and, once it is open there, every browser's guide is one link away.
    assert "/_consent/browsers?browser=samsung&lang=ko" in page.links


async def test_unknown_browser_gets_the_list_of_all_browsers(reader: httpx.AsyncClient) -> None:
    _, page = await get_page(reader, "/_consent/browsers", **{"user-agent": CURL})
    assert "사용 중인 브라우저를 알아내지 못했습니다" in page.text
    listed = [link for link in page.links if "browser=" in link]
    assert len(listed) == len(browsers.guides())


async def test_policy_browsers_are_listed_first() -> None:
    async with client_for(shared_site("kakao-enterprise")) as client:
        _, page = await get_page(client, "/_consent/browsers?lang=en", **{"user-agent": CHROME_WINDOWS})
    listed = [re.search(r"browser=([a-z-]+)", link).group(1) for link in page.links if "browser=" in link]
    assert listed[:5] == ["ie", "safari", "safari-ios", "firefox", "firefox-android"]


@pytest.mark.parametrize("lang", ["ko", "en"])
@pytest.mark.parametrize("guide_id", list(browsers.guides()))
async def test_every_guide_renders_in_both_languages(reader: httpx.AsyncClient, guide_id: str, lang: str) -> None:
    _, page = await get_page(reader, f"/_consent/browsers?browser={guide_id}&lang={lang}", **{"user-agent": CURL})
    guide = browsers.localized_guide(browsers.guides()[guide_id], lang)
    assert page.lang == lang
    assert guide["name"] in page.headings
    for action in guide["actions"].values():
        for step in action["path"]:
            assert step in page.text
        if action["address"]:
            assert action["address"] in page.codes
    other = "ko" if lang == "en" else "en"
    assert f"/_consent/browsers?browser={guide_id}&lang={other}" in page.links


async def test_refusing_on_this_site_only_without_javascript(client: httpx.AsyncClient, store: MemoryStore) -> None:
    await client.post("/_consent", json={"accept": "all"})
    _, page = await get_page(client, "/_consent/browsers?browser=safari&lang=en")
    assert "Refuse on this site only" in page.headings
    assert page.forms == [{"method": "post", "action": "/_consent"}]
    # The form the page carries, posted as a browser with JavaScript off posts it.
    assert page.inputs == {"accept": "necessary", "next": "/_consent/browsers?browser=safari&lang=en&refused=1"}
    r = await client.post("/_consent", data=page.inputs, follow_redirects=True)
    page = Page(r.text)
    assert "All of this site's non-essential cookies are now refused." in page.text
    assert r.headers["cache-control"] == "no-store"
    assert (await client.get("/_consent")).json()["choices"] == {"necessary": True, "personalisation": False, "analytics": False, "advertising": False}
    assert [rec.method for rec in store.records] == ["api", "form"]


async def test_refused_confirmation_needs_a_real_refusal(reader: httpx.AsyncClient) -> None:
    _, page = await get_page(reader, "/_consent/browsers?lang=en&refused=1")
    assert "are now refused" not in page.text


async def test_settings_addresses_are_text_to_copy_never_links(reader: httpx.AsyncClient) -> None:
    for guide_id in ("chrome", "edge", "whale", "opera", "firefox"):
        _, page = await get_page(reader, f"/_consent/browsers?browser={guide_id}&lang=en")
        assert any(re.match(r"^(chrome|edge|whale|opera|about):", code) for code in page.codes)
        assert all(link.startswith(("/", "https://")) for link in page.links), page.links


@pytest.mark.parametrize(
    ("accept_language", "lang"),
    [
        ("en-US,en;q=0.9", "en"),
        ("ko-KR,ko;q=0.9,en;q=0.8", "ko"),
        ("fr-FR,en;q=0.5,ko;q=0.4", "fr"),
        ("de", "de"),
        ("", "en"),  # the default policy's language
        ("sv-SE,sv;q=0.9", "en"),  # no Swedish: the default, not a guess
        ("sv-SE, th;q=0.2", "th"),
        ("zh-HK", "zh-TW"),
        ("zh-Hans-SG", "zh-CN"),
        ("pt-PT", "pt-BR"),
        ("in", "id"),  # the withdrawn code for Indonesian
        ("ca, *;q=0.1", "es"),  # nothing closer than Spanish for a Catalan reader
        ("en;q=0, ja;q=0.5", "ja"),
        ("de;q=abc, ko;q=0.5", "ko"),  # a broken weight counts as none
        ("fr;q=0.3, th;q=0.9", "th"),  # by weight, not by place
    ],
)
async def test_language_follows_accept_language(reader: httpx.AsyncClient, accept_language: str, lang: str) -> None:
    _, page = await get_page(reader, "/_consent/browsers", **{"accept-language": accept_language, "user-agent": CHROME_WINDOWS})
    assert page.lang == lang


async def test_lang_parameter_beats_accept_language(reader: httpx.AsyncClient) -> None:
    _, page = await get_page(reader, "/_consent/browsers?lang=en", **{"accept-language": "ko", "user-agent": CHROME_WINDOWS})
    assert page.lang == "en"
    assert "Block third-party cookies only" in page.headings


async def test_english_policy_defaults_to_english() -> None:
    async with client_for(shared_site("naver-cloud-en")) as client:
        _, page = await get_page(client, "/_consent/browsers", **{"user-agent": CHROME_WINDOWS})
    assert page.lang == "en" and "Your browser: Chrome (computer)" in page.text


async def test_browsers_json_when_asked(reader: httpx.AsyncClient) -> None:
    r = await reader.get("/_consent/browsers?lang=en", headers={"accept": "application/json", "user-agent": SAMSUNG_PHONE})
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    body = r.json()
    assert body["detected"] == {"id": "samsung", "family": "samsung", "platform": "android", "in_app": False}
    assert body["guide"]["name"] == "Samsung Internet"
    assert list(body["guide"]["actions"]) == ["block_all", "block_third_party", "delete_site"]
    assert "banner will ask again" in body["consent_cookie_warning"]
    assert len(body["guides"]) == len(browsers.guides())
    assert "User-Agent" in r.headers["vary"]


async def test_browser_parameter_overrides_detection_in_json(reader: httpx.AsyncClient) -> None:
    r = await reader.get("/_consent/browsers?browser=ie", headers={"accept": "application/json", "user-agent": CHROME_ANDROID})
    assert r.json()["detected"]["id"] == "chrome-android"
    assert r.json()["guide"]["id"] == "ie"
    assert r.json()["guide"]["actions"]["block_all"]["path"][:2] == ["도구(톱니바퀴) 메뉴", "인터넷 옵션"]


@pytest.mark.parametrize(
    ("url", "status", "code"),
    [
        ("/_consent/browsers?browser=netscape", 404, "unknown_browser"),
        ("/_consent/browsers?browser=%3Cscript%3E", 404, "unknown_browser"),
        ("/_consent/browsers?lang=sv", 400, "unknown_language"),
        ("/_consent/opt-out?lang=xx", 400, "unknown_language"),
    ],
)
async def test_bad_parameters_get_a_json_error_naming_them(reader: httpx.AsyncClient, url: str, status: int, code: str) -> None:
    r = await reader.get(url)
    assert r.status_code == status
    assert r.json()["error"] == code
    assert "known" in r.json()


@pytest.mark.parametrize("path", ["/_consent/browsers", "/_consent/opt-out", "/_consent/cookies"])
async def test_wrong_method_is_refused(reader: httpx.AsyncClient, path: str) -> None:
    r = await reader.put(path)
    assert r.status_code == 405 and r.json()["error"] == "method_not_allowed"


@pytest.mark.parametrize("path", ["/_consent/browsers", "/_consent/opt-out", "/_consent/cookies"])
async def test_pages_run_under_a_strict_csp(reader: httpx.AsyncClient, path: str) -> None:
    r, page = await get_page(reader, path)
    csp = r.headers["content-security-policy"]
    assert "unsafe-inline" not in csp and "script-src" not in csp and "default-src 'none'" in csp
    assert page.scripts == 0
    # The one inline style is allowed by its hash, so it applies even under this CSP.
    (style,) = page.styles
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    assert f"'sha256-{digest}'" in csp
    assert r.headers["x-content-type-options"] == "nosniff"


# -- the analytics opt-out page ---------------------------------------------------------------


@pytest.fixture
async def ga_client(store: MemoryStore) -> Any:
    async with client_for(make_app(policy=kakao_enterprise_with(), store=store)) as client:
        yield client


async def test_opt_out_page_says_what_analytics_collects(ga_client: httpx.AsyncClient) -> None:
    _, page = await get_page(ga_client, "/_consent/opt-out")
    assert page.headings[0] == "방문 분석 거부"
    assert "Google Analytics" in page.headings
    assert "접속 시간과 빈도" in page.text  # the category's description
    assert "개인을 식별할 수 없는 행태정보" in page.text  # the service's "collects"
    assert GA_ID in page.codes
    assert "https://tools.google.com/dlpage/gaoptout?hl=ko" in page.links
    assert "https://policies.google.com/privacy" in page.links
    assert "아직 선택하지 않으셨습니다" in page.text
    assert page.forms == [{"method": "post", "action": "/_consent/opt-out"}]


async def test_opt_out_page_in_english(ga_client: httpx.AsyncClient) -> None:
    _, page = await get_page(ga_client, "/_consent/opt-out?lang=en")
    assert page.lang == "en" and page.headings[0] == "Opt out of analytics"
    assert "Behavioural information that cannot identify you" in page.text
    assert "https://tools.google.com/dlpage/gaoptout?hl=en" in page.links


async def test_opt_out_without_javascript_changes_get_consent(ga_client: httpx.AsyncClient, store: MemoryStore) -> None:
    await ga_client.post("/_consent", json={"accept": "all"})
    assert (await ga_client.get("/_consent")).json()["choices"]["analytics"] is True
    _, page = await get_page(ga_client, "/_consent/opt-out")
    assert "방문 분석을 허용한 상태입니다" in page.text

    # A plain HTML form post, as a browser with JavaScript off sends it.
    r = await ga_client.post("/_consent/opt-out", data={"lang": "ko"})
    assert r.status_code == 303
    assert r.headers["location"] == "/_consent/opt-out?done=1&lang=ko"
    assert any(c.startswith("consentmw=") for c in r.headers.get_list("set-cookie"))

    _, page = await get_page(ga_client, r.headers["location"])
    assert "방문 분석 거부를 기록했습니다" in page.text
    assert "방문 분석을 거부한 상태입니다" in page.text
    assert page.forms == []

    state = (await ga_client.get("/_consent")).json()
    assert state["decided"] is True
    assert state["choices"] == {"necessary": True, "personalisation": True, "analytics": False}
    assert [(rec.method, rec.choices["analytics"]) for rec in store.records] == [("api", True), ("opt-out", False)]
    assert store.records[1].consent_id == store.records[0].consent_id
    assert store.records[1].user_agent == "other"  # the browser family, never the raw string


async def test_opt_out_expires_analytics_cookies(ga_client: httpx.AsyncClient) -> None:
    await ga_client.post("/_consent", json={"accept": "all"})
    ga_client.cookies.set("_ga", "GA1.1.123.456", domain="testserver.local")
    r = await ga_client.post("/_consent/opt-out", data={"lang": "ko"})
    expired = [c for c in r.headers.get_list("set-cookie") if c.startswith("_ga=")]
    assert expired and all("Max-Age=0" in c for c in expired)
    assert "_ga" not in ga_client.cookies


async def test_opt_out_before_any_choice_refuses_analytics(ga_client: httpx.AsyncClient, store: MemoryStore) -> None:
    r = await ga_client.post("/_consent/opt-out", data={"lang": "en"}, follow_redirects=True)
    assert "Your refusal of analytics has been recorded" in Page(r.text).text
    state = (await ga_client.get("/_consent")).json()
    assert state["decided"] is True and state["choices"]["analytics"] is False
    assert store.records[0].method == "opt-out"


async def test_confirmation_when_the_browser_keeps_no_cookie(ga_client: httpx.AsyncClient) -> None:
    _, page = await get_page(ga_client, "/_consent/opt-out?done=1&lang=en")
    assert "did not keep the cookie" in page.text


async def test_no_confirmation_claimed_while_analytics_is_allowed(ga_client: httpx.AsyncClient) -> None:
    await ga_client.post("/_consent", json={"accept": "all"})
    _, page = await get_page(ga_client, "/_consent/opt-out?done=1&lang=en")
    assert "has been recorded" not in page.text and "You have allowed analytics" in page.text


async def test_opt_out_as_json(ga_client: httpx.AsyncClient, store: MemoryStore) -> None:
    r = await ga_client.post("/_consent/opt-out", json={})
    assert r.status_code == 200
    assert r.json()["choices"]["analytics"] is False and r.json()["decided"] is True
    assert store.records[0].method == "opt-out"


async def test_cross_site_opt_out_is_refused(ga_client: httpx.AsyncClient, store: MemoryStore) -> None:
    r = await ga_client.post("/_consent/opt-out", data={"lang": "ko"}, headers={"origin": "https://evil.example"})
    assert r.status_code == 403 and r.json()["error"] == "cross_site"
    assert store.records == [] and "set-cookie" not in r.headers


async def test_gpc_is_shown_on_the_opt_out_page(ga_client: httpx.AsyncClient) -> None:
    await ga_client.post("/_consent", json={"accept": "all"})
    _, page = await get_page(ga_client, "/_consent/opt-out?lang=en", **{"sec-gpc": "1"})
    assert "Global Privacy Control" in page.text


async def test_policy_without_analytics_has_nothing_to_opt_out_of(app_factory: Any, store: MemoryStore) -> None:
    async with client_for(app_factory(policy="kakaopage")) as client:
        _, page = await get_page(client, "/_consent/opt-out")
        assert "방문 분석 도구를 사용하지 않습니다" in page.text and page.forms == []
        r = await client.post("/_consent/opt-out", data={"lang": "ko"})
    assert r.status_code == 422 and r.json()["error"] == "unknown_category"
    assert store.records == []


# -- escaping ---------------------------------------------------------------------------------


def hostile_policy() -> dict[str, Any]:
    data = kakao_enterprise_with()
    data["texts"] = {key: {"ko": HOSTILE, "en": HOSTILE} for key in ("opt_out_title", "browsers_title", "language_switch", "consent_cookie_warning")}
    for category in data["categories"]:
        category["name"] = {"ko": HOSTILE, "en": HOSTILE}
        category["description"] = {"ko": HOSTILE, "en": HOSTILE}
        category["consequence"] = {"ko": HOSTILE, "en": HOSTILE}
    service = data["categories"][2]["services"][0]
    service.update(name=HOSTILE, provider=HOSTILE, collects={"ko": HOSTILE}, purpose={"ko": HOSTILE}, retention={"ko": HOSTILE})
    return data


@cache
def hostile_site() -> Starlette:
    return make_app(policy=hostile_policy(), store=MemoryStore())


@pytest.mark.parametrize("path", ["/_consent/browsers?browser=chrome", "/_consent/opt-out", "/_consent/opt-out?done=1"])
async def test_policy_texts_with_markup_stay_text(path: str) -> None:
    async with client_for(hostile_site()) as client:
        r, page = await get_page(client, path, host="<b>evil</b>")
    assert page.scripts == 0
    assert "<script" not in r.text and "<b>evil" not in r.text
    assert HOSTILE in page.text  # shown to the visitor as the literal characters


async def test_hostile_host_header_stays_text(reader: httpx.AsyncClient) -> None:
    r, page = await get_page(reader, "/_consent/browsers?browser=chrome", host='x"><script>alert(1)</script>')
    assert page.scripts == 0 and "<script>" not in r.text


def test_every_text_is_written_in_every_shipped_language() -> None:
    texts = default_texts()
    assert len(texts) > 50
    for key, text in texts.items():
        if key.endswith("_few"):  # a plural form only some languages have (Polish: 2-4 years, "2 lata")
            assert set(text) <= set(SHIPPED) and key.replace("_few", "_other") in texts, key
            continue
        assert set(text) == set(SHIPPED), key
        for lang, value in text.items():
            assert value.strip(), (key, lang)
            # A placeholder lost in translation would show as "{host}" or not at all.
            assert set(re.findall(r"{\w+}", value)) == set(re.findall(r"{\w+}", text["en"])), (key, lang)


@pytest.mark.parametrize(("user_agent", "guide", "family_name", "platform"), OWN_MENUS)
async def test_no_browser_is_shown_another_browsers_menus(reader: httpx.AsyncClient, user_agent: str, guide: str, family_name: str, platform: str) -> None:
    r = await reader.get("/_consent/browsers?lang=en", headers={"accept": "application/json", "user-agent": user_agent})
    body = r.json()
    assert body["detected"]["family"] == family_name
    assert (body["guide"] or {}).get("id") in (None, "in-app")
    _, page = await get_page(reader, "/_consent/browsers?lang=en", **{"user-agent": user_agent})
    assert "chrome://" not in page.text and "Chrome (" not in " ".join(page.headings)
    assert "Safari" not in " ".join(page.headings)
