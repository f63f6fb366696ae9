"""Policy mistakes that would leak or break silently are refused, all at once, each at its JSON path."""

from __future__ import annotations

import copy
import re
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import HTMLResponse
from starlette.routing import Route

from consentmw import ConfigError, ConsentMiddleware, PolicyError, UnknownCategory, load_policy
from consentmw.core.store import MemoryStore
from tests.conftest import ORIGIN, SECRET, consent_value

NECESSARY = {"id": "necessary", "required": True, "name": {"en": "Necessary"}, "cookies": ["consentmw"]}


def policy(*categories: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"version": "1", "categories": [copy.deepcopy(NECESSARY), *categories], **extra}


def category(cid: str, *services: str | dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"id": cid, "name": {"en": cid.title()}, "services": [{"id": s} if isinstance(s, str) else s for s in services], **extra}


def problems(data: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(PolicyError) as info:
        load_policy(data)
    return info.value.problems


def test_a_misspelled_tracker_id_is_refused_with_a_suggestion() -> None:
    [(path, message)] = problems(policy(category("analytics", "naver-analytic")))
    assert path == "$.categories[1].services[0].id"
    assert "did you mean 'naver-analytics'?" in message


def test_a_service_of_the_sites_own_needs_match_patterns() -> None:
    [(path, message)] = problems(policy(category("analytics", {"id": "in-house-stats"})))
    assert path == "$.categories[1].services[0].id" and "match" in message
    load_policy(policy(category("analytics", {"id": "in-house-stats", "match": {"src": [r"/stats\.js$"]}})))


def test_a_required_category_may_disclose_services_but_not_hold_trackers() -> None:
    load_policy(policy(category("personalisation"), **{}) | {"categories": [NECESSARY | {"services": [{"id": "payment-gateway"}]}]})
    [(path, message)] = problems({"version": "1", "categories": [NECESSARY | {"services": [{"id": "google-analytics"}]}]})
    assert path == "$.categories[0].services[0].id"
    assert "required category 'necessary'" in message and "without consent" in message


def test_every_problem_is_reported_at_once() -> None:
    data = policy(
        category("analytics", "google-analytic", "hotjar"),
        category("advertising", "hotjar", "meta-pixl"),
        category("analytics"),
        aliases={"Stats": "analytics", "stats": "advertising", "advertising": "analytics", "ads": "advertsing"},
        browser_guides=["chrom"],
        texts={"banner_titel": {"en": "Cookies"}},
    )
    found = problems(data)
    paths = [p for p, _ in found]
    assert paths == [
        "$.categories[3].id",
        "$.aliases.stats",
        "$.aliases.advertising",
        "$.aliases.ads",
        "$.categories[1].services[0].id",
        "$.categories[2].services[0].id",
        "$.categories[2].services[1].id",
        "$.browser_guides[0]",
        "$.texts.banner_titel",
    ]
    messages = dict(found)
    assert "declared twice" in messages["$.categories[3].id"]
    assert "given twice" in messages["$.aliases.stats"]
    assert "would hide the category 'advertising'" in messages["$.aliases.advertising"]
    assert "did you mean 'advertising'?" in messages["$.aliases.ads"]
    assert "did you mean 'google-analytics'?" in messages["$.categories[1].services[0].id"]
    assert "already listed at $.categories[1].services[1].id" in messages["$.categories[2].services[0].id"]
    assert "did you mean 'meta-pixel'?" in messages["$.categories[2].services[1].id"]
    assert "did you mean 'chrome'?" in messages["$.browser_guides[0]"]
    assert "did you mean 'banner_title'?" in messages["$.texts.banner_titel"]


def test_schema_errors_are_all_reported_and_unknown_fields_get_a_suggestion() -> None:
    data = policy(category("analytics"), catgories=[], consent_max_age_days=0)
    found = dict(problems(data))
    assert found["$"] == "unknown field 'catgories'; did you mean 'categories'?"
    assert "$.consent_max_age_days" in found


def test_the_same_measurement_id_in_two_services_is_refused() -> None:
    ga = {"id": "google-analytics", "ids": ["G-AB12CD34EF"]}
    tag = {"id": "google-tag", "ids": ["G-AB12CD34EF"]}
    [(path, message)] = problems(policy(category("analytics", ga, tag)))
    assert path == "$.categories[1].services[1].ids[0]" and "$.categories[1].services[0].ids[0]" in message


def test_the_middleware_refuses_the_same_problems_at_start() -> None:
    data = policy(category("analytics", "naver-analytic"), browser_guides=["chrom"])
    with pytest.raises(ConfigError) as info:
        ConsentMiddleware(lambda *a: None, secret_key=SECRET, policy=data, store="memory://")
    assert str(info.value).splitlines() == [f"{p}: {m}" for p, m in problems(data)]
    assert len(str(info.value).splitlines()) == 2


# Consent Mode signals follow the services a category holds, whatever the category is called.


@pytest.mark.parametrize(
    ("categories", "signals"),
    [
        pytest.param(
            [category("measurement", "google-analytics")],
            {"analytics_storage": "measurement"},
            id="ga-in-measurement",
        ),
        pytest.param(
            [category("measurement", "google-analytics"), category("ads", "google-ads")],
            {"analytics_storage": "measurement", "ad_storage": "ads", "ad_user_data": "ads", "ad_personalization": "ads"},
            id="custom-names",
        ),
        pytest.param(
            [category("analytics"), category("measurement", "google-analytics")],
            {"analytics_storage": "measurement"},
            id="service-beats-name",
        ),
        pytest.param(
            [category("analytics", "naver-analytics"), category("advertising", "doubleclick")],
            {"analytics_storage": "analytics", "ad_storage": "advertising", "ad_user_data": "advertising", "ad_personalization": "advertising"},
            id="usual-names",
        ),
    ],
)
def test_consent_mode_signals_follow_the_google_services(categories: list[dict[str, Any]], signals: dict[str, str]) -> None:
    assert load_policy(policy(*categories)).consent_mode["signals"] == signals


def test_a_google_service_no_signal_follows_is_reported() -> None:
    [(path, message)] = problems(policy(category("tags", "google-tag-manager")))
    assert path == "$.categories[1].services[0].id"
    assert "no Consent Mode signal follows" in message and "google_consent_mode.signals" in message
    fixed = load_policy(policy(category("tags", "google-tag-manager"), google_consent_mode={"signals": {"analytics_storage": "tags"}}))
    assert fixed.consent_mode["signals"] == {"analytics_storage": "tags"}


def test_google_ads_services_split_over_two_categories_are_reported() -> None:
    [(path, message)] = problems(policy(category("ads", "google-ads"), category("remarketing", "doubleclick")))
    assert path == "$.categories[2].services[0].id" and "already follow category 'ads'" in message


def test_a_signal_naming_no_category_gets_a_suggestion() -> None:
    data = policy(category("measurement", "google-analytics"), google_consent_mode={"signals": {"analytics_storage": "measurment"}})
    assert ("$.google_consent_mode.signals.analytics_storage", "'measurment' is not a category of this policy; did you mean 'measurement'?") in problems(data)


GA_ID = "G-MEASURE123"
MEASUREMENT = policy(
    category("measurement", {"id": "google-analytics", "ids": [GA_ID]}),
    cookie_domains=[""],
)


async def page(request: Any) -> HTMLResponse:
    return HTMLResponse(f'<!doctype html><html><head><script async src="https://www.googletagmanager.com/gtag/js?id={GA_ID}"></script></head><body>hi</body></html>')


async def test_accept_all_grants_analytics_storage_to_a_custom_category() -> None:
    app = Starlette(routes=[Route("/", page)])
    app.add_middleware(ConsentMiddleware, secret_key=SECRET, policy=MEASUREMENT, store=MemoryStore())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url=ORIGIN) as client:
        before = (await client.get("/")).text
        assert '"analytics_storage":"denied"' in before
        public = (await client.get("/_consent/policy")).json()
        assert public["google_consent_mode"]["signals"] == {"analytics_storage": "measurement"}  # what the banner's update reads
        saved = await client.post("/_consent", json={"accept": "all"}, headers={"Origin": ORIGIN})
        assert saved.status_code == 200 and saved.json()["choices"]["measurement"] is True
        after = (await client.get("/")).text
    assert '"analytics_storage":"granted"' in after
    assert f"ga-disable-{GA_ID}" not in after
    assert re.search(r'<script async src="https://www.googletagmanager.com/gtag/js', after)


def test_allows_names_the_known_categories_when_asked_about_an_unknown_one() -> None:
    from consentmw.core.consent import ConsentReader
    from consentmw.core.cookie import ConsentCodec

    measurement = load_policy(MEASUREMENT)
    reader = ConsentReader(measurement, ConsentCodec([SECRET], measurement), "consentmw")
    value = consent_value({"measurement"}, "c1", policy=measurement)
    consent = reader({"headers": [(b"cookie", f"consentmw={value}".encode())]})
    assert consent.allows("measurement") and consent.allows("MEASUREMENT") and consent.allows("necessary")
    with pytest.raises(UnknownCategory) as info:
        consent.allows("analytics")
    assert isinstance(info.value, ValueError)
    assert str(info.value) == "'analytics' is not a category of this policy; its categories: necessary, measurement; aliases: c0001, essential, strictly-necessary, strictly_necessary"


def test_host_catalog_overrides_are_checked_with_the_rest() -> None:
    data = policy(category("analytics"), catalog={"entities": {"YuoTube": "analytics", "Facebook": "advertsing"}}, browser_guides=["chrom"])
    found = dict(problems(data))
    assert "did you mean 'YouTube'?" in found["$.catalog.entities.YuoTube"]
    assert "'advertsing' is not a category or alias" in found["$.catalog.entities.Facebook"]
    assert "$.browser_guides[0]" in found
