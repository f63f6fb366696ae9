"""The cookie declaration page, {prefix}/cookies: per category every service and cookie the policy
declares, with provider, purpose and lifetime, the policy's words first and the Open Cookie
Database's where it is silent; plain HTML, no script."""

from __future__ import annotations

import json
import re
import sys
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
import pytest

from consentmw.core.store import MemoryStore
from tests.conftest import client_for, make_app
from tests.test_pages import HOSTILE, Page, get_page

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
import gen_cookies  # noqa: E402


def preset(name: str) -> dict[str, Any]:
    return json.loads(resources.files("consentmw.core").joinpath("presets", f"{name}.json").read_text("utf-8"))


def rows(html: str) -> dict[str, list[str]]:
    """Each table row's cells as a visitor reads them, keyed by the first cell."""
    out: dict[str, list[str]] = {}
    for row in re.findall(r"<tr>(.*?)</tr>", html):
        cells = [Page(cell).text for cell in re.findall(r"<td[^>]*>(.*?)</td>", row)]
        if cells:
            out[cells[0].rstrip("†").strip()] = cells[1:]
    return out


async def declaration(policy: Any, url: str = "/_consent/cookies", **headers: str) -> tuple[httpx.Response, str]:
    async with client_for(make_app(policy=policy, store=MemoryStore())) as client:
        r, page = await get_page(client, url, **headers)
        assert page.scripts == 0
        return r, r.text


async def test_every_declared_cookie_and_service_is_listed_by_category() -> None:
    data = preset("default")
    r, html = await declaration(data, "/_consent/cookies?lang=en")
    page = Page(html)
    assert page.lang == "en"
    names = [c["name"]["en"] for c in data["categories"]]
    assert page.headings[0] == "Cookies and services on this site"
    assert [h for h in page.headings if h in names] == names
    found = rows(html)
    for category in data["categories"]:
        for rule in category.get("cookies", ()):
            assert (rule if isinstance(rule, str) else rule["name"]) in found
    assert found["Google Analytics"][0] == "Google LLC"  # the policy's provider of the service
    # The policy says nothing about _ga: the Open Cookie Database fills provider, purpose, lifetime.
    assert found["_ga"] == ["Google", "ID used to identify users", "2 years"]
    assert found["_gat*"][2] == "1 minute"
    assert found["_clsk"][2] == "Until the browser is closed"
    assert "Open Cookie Database" in page.text
    # Sections follow the policy's order, and the section of the required category says so.
    necessary = html.split('id="c-necessary"')[1].split("</section>")[0]
    assert "Always on" in necessary
    assert r.headers["cache-control"] == "private, max-age=300" and "Accept-Language" in r.headers["vary"]


async def test_the_policys_own_words_win_over_the_database() -> None:
    data = preset("default")
    data["categories"][2]["cookies"][0] = {
        "name": "_ga",
        "provider": "Our analytics vendor",
        "description": {"en": "Counts visits " + HOSTILE, "ko": "방문을 셉니다"},
        "lifetime": {"en": "13 months", "ko": "13개월"},
    }
    _, html = await declaration(data, "/_consent/cookies?lang=en")
    assert rows(html)["_ga"] == ["Our analytics vendor", "Counts visits " + HOSTILE, "13 months"]
    assert HOSTILE not in html  # escaped, shown as text
    _, html = await declaration(data, "/_consent/cookies?lang=ko")
    assert rows(html)["_ga"] == ["Our analytics vendor", "방문을 셉니다", "13개월"]


async def test_korean_page_says_which_texts_are_the_databases_english() -> None:
    _, html = await declaration("default", **{"accept-language": "ko-KR,ko;q=0.9"})
    assert Page(html).lang == "ko"
    found = rows(html)
    assert found["_ga"] == ["Google", "ID used to identify users", "2년"]
    assert '<td lang="en">ID used to identify users</td>' in html
    assert found["consentmw"][1:] == ["쿠키 사용에 대한 선택을 기억합니다.", "365일"]


async def test_the_consent_cookie_is_described_in_the_sites_name() -> None:
    data = preset("kakao-enterprise")
    data["consent_max_age_days"] = 180
    _, html = await declaration(data, "/_consent/cookies?lang=en")
    provider, purpose, lifetime = rows(html)["consentmw"]
    assert provider == data["controller"]["name"]["en"]
    assert (purpose, lifetime) == ("Remembers your choices about cookies.", "180 days")


async def test_a_category_with_nothing_declared_says_so() -> None:
    data = preset("default")
    data["categories"][1].pop("cookies")
    _, html = await declaration(data, "/_consent/cookies?lang=en")
    personalisation = html.split('id="c-personalisation"')[1].split("</section>")[0]
    assert "No cookie or service of this purpose." in personalisation


async def test_declaration_as_json() -> None:
    async with client_for(make_app(policy="default", store=MemoryStore())) as client:
        r = await client.get("/_consent/cookies?lang=en", headers={"accept": "application/json"})
    body = r.json()
    analytics = next(c for c in body["categories"] if c["id"] == "analytics")
    ga = next(c for c in analytics["cookies"] if c["name"] == "_ga")
    assert ga["lifetime"] == "2 years" and ga["from_database"] == ["provider", "purpose", "lifetime"]


async def test_linked_from_the_opt_out_page() -> None:
    async with client_for(make_app(policy="kakao-enterprise", store=MemoryStore())) as client:
        _, page = await get_page(client, "/_consent/opt-out?lang=en")
        assert "/_consent/cookies?lang=en" in page.links
        _, page = await get_page(client, "/_consent/cookies?lang=en")
        assert "/_consent/opt-out?lang=en" in page.links and "/_consent/cookies?lang=ko" in page.links


@pytest.mark.parametrize(
    ("text", "lifetime"),
    [("session", "session"), ("End of session (browser)", "session"), ("2 years", [2, "year"]), ("30 mins", [30, "minute"]),
     ("1 day", [1, "day"]), ("2 years after last activity", "2 years after last activity"), ("", "")],
)
def test_generator_reads_the_databases_retention(text: str, lifetime: Any) -> None:
    assert gen_cookies.lifetime(text) == lifetime
