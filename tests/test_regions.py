"""Regional rules: opt-out where the policy says so, opt-in everywhere else, the region read only
from the header (or callable) the site trusts. Each behaviour runs on every adapter."""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from consentmw.core.errors import PolicyError
from consentmw.core.policy import Policy, load_policy
from consentmw.core.regions import RegionRequest, RegionRules, RegionSource, region_code
from consentmw.core.store import MemoryStore
from tests.adapters import ADAPTERS, client_for
from tests.conftest import SECRET
from tests.corpus.pages import live_trackers

pytestmark = pytest.mark.filterwarnings("ignore:StreamingHttpResponse must consume synchronous iterators")

US, US_CA, DE, KR = "US", "US-CA", "DE", "KR"
GA, META = "ga4-gtag", "meta-pixel"
OPTIONAL = ("personalisation", "analytics", "advertising")


def regional_policy(**changes: Any) -> dict[str, Any]:
    """The default preset with the US opt-out, and analytics outside GPC's reach: a GPC visitor
    there keeps analytics and loses advertising, which tells the two rules apart."""
    data = json.loads(json.dumps(load_policy("default").data))
    data["regions"] = [{"where": [DE, KR], "mode": "opt-in"}, {"where": [US], "mode": "opt-out"}]
    data["controller"] = {"name": {"en": "Example Shop Ltd."}}  # a site's own policy: no controller warning
    for category in data["categories"]:
        if category["id"] == "analytics":
            category["gpc"] = False
    data.update(changes)
    return data


@pytest.fixture(params=ADAPTERS)
def adapter(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def site(adapter: str, store: MemoryStore) -> Iterator[httpx.Client]:
    options = {"secret_key": SECRET, "store": store, "policy": regional_policy(), "region_header": "CF-IPCountry"}
    with client_for(adapter, options) as client:
        yield client


def country(code: str) -> dict[str, str]:
    return {"cf-ipcountry": code}


def allowed(state: dict[str, Any]) -> set[str]:
    return {c for c in OPTIONAL if state["choices"][c]}


# -- where the visitor is ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sent", "region", "mode"),
    [
        (US, US, "opt-out"),
        (US_CA, US_CA, "opt-out"),  # one header holding country and subdivision
        ("us", US, "opt-out"),
        (DE, DE, "opt-in"),
        (KR, KR, "opt-in"),
        ("FR", "FR", "opt-in"),  # no rule names it
    ],
)
def test_the_region_header_picks_the_mode(site: httpx.Client, sent: str, region: str, mode: str) -> None:
    state = site.get("/state", headers=country(sent)).json()
    assert (state["region"], state["mode"], state["decided"]) == (region, mode, False)
    assert allowed(state) == (set(OPTIONAL) if mode == "opt-out" else set())


@pytest.mark.parametrize(
    "sent",
    [
        "XX",  # Cloudflare: unknown
        "T1",  # Cloudflare: Tor
        "EU",
        "USA",
        "U S",
        "US-XYZ1",
        "US-ZZ",  # no such subdivision
        "<script>",
        "US" * 40,
        "",
    ],
)
def test_a_garbage_region_is_unknown_and_opt_in_never_an_error(site: httpx.Client, sent: str) -> None:
    state = site.get("/state", headers=country(sent))
    assert state.status_code == 200
    assert (state.json()["region"], state.json()["mode"]) == ("", "opt-in")
    page = site.get("/page", headers=country(sent))
    assert page.status_code == 200
    assert live_trackers(page.text) == set()


def test_bytes_no_text_encoding_can_read_are_unknown_too(adapter: str, site: httpx.Client) -> None:
    if adapter in ("wsgi", "django-wsgi"):
        pytest.skip("httpx's WSGI transport sends ASCII only: test_wsgi_reads_latin1_garbage_as_unknown")
    r = site.get("/state", headers=[(b"cf-ipcountry", b"\xffU\xfeS")])
    assert r.status_code == 200
    assert r.json()["mode"] == "opt-in"


def test_wsgi_reads_latin1_garbage_as_unknown() -> None:
    from consentmw import wsgi

    from tests.adapters import wsgi_app

    middleware = wsgi.ConsentMiddleware(wsgi_app, secret_key=SECRET, store=MemoryStore(), policy=regional_policy(), region_header="CF-IPCountry")
    started: list[str] = []
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/state", "HTTP_CF_IPCOUNTRY": "\xffU\xfeS", "wsgi.url_scheme": "http"}
    body = b"".join(middleware(environ, lambda status, headers, exc_info=None: started.append(status)))
    middleware.close()
    assert started == ["200 OK"]
    assert json.loads(body)["mode"] == "opt-in"


def test_a_region_header_sent_twice_is_unknown(adapter: str, site: httpx.Client) -> None:
    # Which of the two the CDN set cannot be told: the safe reading. WSGI servers join the two
    # lines with a comma (httpx's WSGI transport keeps only the last, so it is sent joined there).
    assert site.get("/state", headers=country("DE, US")).json()["mode"] == "opt-in"
    if adapter in ("asgi", "django-asgi"):
        r = site.get("/state", headers=[(b"cf-ipcountry", b"DE"), (b"cf-ipcountry", b"US")])
        assert r.json()["mode"] == "opt-in"


def test_the_banner_is_told_to_be_the_notice_only_where_undecided_visitors_are_opt_out(site: httpx.Client) -> None:
    us = site.get("/_consent", headers=country(US)).json()
    assert us["swap"] == {"banner_title": "optout_title", "banner_body": "optout_body", "reject_all": "do_not_sell", "necessary": "do-not-sell"}
    assert "swap" not in site.get("/_consent", headers=country(DE)).json()
    site.post("/_consent", json={"accept": "all"}, headers=country(US))
    assert "swap" not in site.get("/_consent", headers=country(US)).json()


def test_without_the_header_a_visitor_is_opt_in(site: httpx.Client) -> None:
    state = site.get("/state").json()
    assert (state["region"], state["mode"], allowed(state)) == ("", "opt-in", set())


def test_an_unconfigured_site_trusts_no_header_and_says_so_at_start(adapter: str) -> None:
    options = {"secret_key": SECRET, "store": MemoryStore(), "policy": regional_policy()}
    with pytest.warns(UserWarning, match="opt-out regions, but no region_header"):
        with client_for(adapter, options) as client:
            state = client.get("/state", headers=country(US)).json()
            page = client.get("/page", headers=country(US))
    assert (state["region"], state["mode"], allowed(state)) == ("", "opt-in", set())
    assert live_trackers(page.text) == set()


# -- opt-out mode -----------------------------------------------------------------------------


def test_in_an_opt_out_region_tags_are_live_with_no_click(site: httpx.Client) -> None:
    assert live_trackers(site.get("/page", headers=country(US)).text) == {GA, META}
    assert live_trackers(site.get("/stream", headers=country(US_CA)).text) == {GA, META}
    assert live_trackers(site.get("/page", headers=country(DE)).text) == set()
    assert live_trackers(site.get("/page", headers=country(KR)).text) == set()


def test_in_an_opt_out_region_the_apps_cookies_pass(site: httpx.Client) -> None:
    names = "/cookies?name=_ga&name=_fbp&name=prefs"
    us = site.get(names, headers=country(US))
    assert sorted(us.cookies.keys()) == ["_fbp", "_ga", "prefs"]
    assert "cf-ipcountry" in us.headers.get("vary", "").lower()
    de = site.get(names, headers=country(DE))
    assert list(de.cookies.keys()) == []


def test_gpc_in_an_opt_out_region_refuses_what_the_policy_marks(site: httpx.Client) -> None:
    headers = {**country(US), "sec-gpc": "1"}
    state = site.get("/state", headers=headers).json()
    assert state["gpc"] is True and state["mode"] == "opt-out"
    assert allowed(state) == {"personalisation", "analytics"}  # advertising is gpc; analytics is not, in this policy
    assert live_trackers(site.get("/page", headers=headers).text) == {GA}
    cookies = site.get("/cookies?name=_ga&name=_fbp", headers=headers)
    assert list(cookies.cookies.keys()) == ["_ga"]


def test_do_not_sell_refuses_the_gpc_categories_and_is_recorded(site: httpx.Client, store: MemoryStore) -> None:
    r = site.post("/_consent", json={"accept": "do-not-sell", "method": "banner"}, headers=country(US))
    assert r.status_code == 200, r.text
    assert r.json()["decided"] is True
    assert allowed(r.json()) == {"personalisation", "analytics"}
    assert [(rec.choices["advertising"], rec.region, rec.mode) for rec in store.records] == [(False, US, "opt-out")]
    state = site.get("/state", headers=country(US)).json()
    assert state["decided"] and allowed(state) == {"personalisation", "analytics"}
    assert live_trackers(site.get("/page", headers=country(US)).text) == {GA}


def test_do_not_sell_works_as_a_form_without_javascript(site: httpx.Client, store: MemoryStore) -> None:
    r = site.post("/_consent", data={"accept": "do-not-sell", "next": "/page"}, headers=country(US_CA))
    assert r.status_code == 303
    assert [(rec.method, rec.region, rec.mode) for rec in store.records] == [("form", US_CA, "opt-out")]
    assert live_trackers(site.get("/page", headers=country(US)).text) == {GA}


def test_the_no_javascript_form_offers_do_not_sell_only_where_it_applies(site: httpx.Client) -> None:
    us = site.get("/page", headers=country(US)).text
    start = us.index('<form class="consentmw-noscript"')
    form = us[start : us.index("</form>", start)]
    assert '<button name="accept" value="do-not-sell">' in form
    assert 'value="do-not-sell"' not in site.get("/page", headers=country(DE)).text
    site.post("/_consent", json={"accept": "all"}, headers=country(US))
    assert 'value="do-not-sell"' not in site.get("/page", headers=country(US)).text  # decided: the dialog is the way


def test_a_refusal_in_an_opt_out_region_is_applied_like_any_choice(site: httpx.Client) -> None:
    r = site.post("/_consent", json={"accept": "necessary"}, headers=country(US))
    assert r.status_code == 200
    assert allowed(site.get("/state", headers=country(US)).json()) == set()
    assert live_trackers(site.get("/page", headers=country(US)).text) == set()
    assert list(site.get("/cookies?name=_ga", headers=country(US)).cookies.keys()) == []


def test_the_log_records_region_and_mode_with_each_choice(site: httpx.Client, store: MemoryStore) -> None:
    for where in (DE, KR, US_CA, "XX"):
        site.post("/_consent", json={"accept": "all"}, headers=country(where))
    site.post("/_consent", json={"accept": "necessary"})
    assert [(rec.region, rec.mode) for rec in store.records] == [(DE, "opt-in"), (KR, "opt-in"), (US_CA, "opt-out"), ("", "opt-in"), ("", "opt-in")]


@pytest.mark.parametrize(("chosen_in", "seen_in"), [(US, DE), (DE, US), (KR, US_CA)])
def test_a_decision_travels_with_the_visitor(site: httpx.Client, chosen_in: str, seen_in: str) -> None:
    site.post("/_consent", json={"choices": {"analytics": True, "advertising": False}}, headers=country(chosen_in))
    state = site.get("/state", headers=country(seen_in)).json()
    assert state["decided"] is True
    assert allowed(state) == {"analytics"}
    assert live_trackers(site.get("/page", headers=country(seen_in)).text) == {GA}


# -- consistency: Consent Mode, the log, caches -------------------------------------------------


def consent_defaults(page: str) -> dict[str, Any]:
    found = re.search(r"gtag\('consent','default',(\{.*?\})\);", page)
    assert found, "no Consent Mode defaults in the page"
    return json.loads(found.group(1))


def test_consent_mode_defaults_follow_the_mode(site: httpx.Client) -> None:
    us = consent_defaults(site.get("/page", headers=country(US)).text)
    assert (us["analytics_storage"], us["ad_storage"], us["ad_user_data"]) == ("granted", "granted", "granted")
    gpc = consent_defaults(site.get("/page", headers={**country(US), "sec-gpc": "1"}).text)
    assert (gpc["analytics_storage"], gpc["ad_storage"], gpc["ad_personalization"]) == ("granted", "denied", "denied")
    de = consent_defaults(site.get("/page", headers=country(DE)).text)
    assert {de[k] for k in ("analytics_storage", "ad_storage", "ad_user_data", "ad_personalization")} == {"denied"}


def test_pages_vary_on_the_region_header_and_their_etags_differ(site: httpx.Client) -> None:
    us = site.get("/page", headers=country(US))
    de = site.get("/page", headers=country(DE))
    for r in (us, de):
        assert "cf-ipcountry" in [v.strip().lower() for v in r.headers["vary"].split(",")]
    api = site.get("/_consent", headers=country(US))
    assert "cf-ipcountry" in api.headers["vary"].lower()
    assert api.json()["mode"] == "opt-out"
    opt_out_page = site.get("/_consent/opt-out", headers=country(US))
    assert "cf-ipcountry" in opt_out_page.headers["vary"].lower()


def test_a_cached_opt_out_page_never_validates_for_an_opt_in_visitor() -> None:
    # ETags: the app's own tag gets the consent variant; a visitor who allowed everything in DE and
    # an undecided one in the US allow the same categories, yet their pages differ (the banner's
    # state), so a cache revalidating with the US page's ETag must not be told it is fresh in DE.
    from starlette.applications import Starlette
    from starlette.responses import HTMLResponse
    from starlette.routing import Route

    from consentmw import ConsentMiddleware
    from tests.adapters import PAGE, asgi_client

    app = ConsentMiddleware(
        Starlette(routes=[Route("/", lambda r: HTMLResponse(PAGE, headers={"ETag": '"v1"'}))]),
        secret_key=SECRET,
        store=MemoryStore(),
        policy=regional_policy(),
        region_header="CF-IPCountry",
    )
    with asgi_client(app, base_url="http://testserver", headers={"origin": "http://testserver"}) as client:
        us = client.get("/", headers=country(US)).headers["etag"]
        client.post("/_consent", json={"accept": "all"}, headers=country(DE))
        de_all = client.get("/", headers=country(DE)).headers["etag"]
        us_all = client.get("/", headers=country(US)).headers["etag"]
    assert us != de_all
    assert de_all != us_all


def test_the_opt_out_page_works_in_both_modes(site: httpx.Client, store: MemoryStore) -> None:
    us = site.get("/_consent/opt-out?lang=en", headers=country(US))
    assert "analytics runs until you refuse it" in us.text
    de = site.get("/_consent/opt-out?lang=en", headers=country(DE))
    assert "analytics stays refused" in de.text
    # The refusal there keeps what the opt-out region allowed, but analytics.
    r = site.post("/_consent/opt-out", data={"lang": "en"}, headers=country(US))
    assert r.status_code == 303
    assert store.records[-1].choices == {"necessary": True, "personalisation": True, "analytics": False, "advertising": True}
    assert allowed(site.get("/state", headers=country(US)).json()) == {"personalisation", "advertising"}


def test_the_opt_out_page_offers_do_not_sell_without_javascript_where_it_applies(site: httpx.Client, store: MemoryStore) -> None:
    page = site.get("/_consent/opt-out?lang=en", headers=country(US)).text
    assert "Do Not Sell or Share My Personal Information</button>" in page
    assert 'name="accept" value="do-not-sell"' not in site.get("/_consent/opt-out?lang=en", headers=country(DE)).text
    r = site.post("/_consent", data={"accept": "do-not-sell", "next": "/_consent/opt-out?lang=en"}, headers=country(US))
    assert (r.status_code, r.headers["location"]) == (303, "/_consent/opt-out?lang=en")
    after = site.get("/_consent/opt-out?lang=en", headers=country(US)).text
    assert "You have opted out of the sale and sharing" in after
    assert store.records[-1].choices["advertising"] is False


def test_do_not_sell_keeps_the_visitors_other_refusals(site: httpx.Client) -> None:
    site.post("/_consent", json={"choices": {"analytics": False, "personalisation": True, "advertising": True}}, headers=country(US))
    r = site.post("/_consent", json={"accept": "do-not-sell"}, headers=country(US))
    assert allowed(r.json()) == {"personalisation"}


def test_the_cookie_declaration_is_the_same_in_both_modes(site: httpx.Client) -> None:
    us = site.get("/_consent/cookies?lang=en", headers=country(US))
    de = site.get("/_consent/cookies?lang=en", headers=country(DE))
    assert us.status_code == de.status_code == 200
    assert us.text == de.text


# -- a region= callable ------------------------------------------------------------------------


def from_test_header(request: RegionRequest) -> str | None:
    """A stand-in for a GeoIP lookup: what a site's callable reads is its own business."""
    assert request.request is not None
    return request.headers.get("x-test-geo")


def broken_lookup(request: RegionRequest) -> str | None:
    raise OSError("GeoLite2-Country.mmdb: no such file")


def test_a_region_callable_decides_on_every_adapter(adapter: str) -> None:
    options = {"secret_key": SECRET, "store": MemoryStore(), "policy": regional_policy(), "region": from_test_header}
    with client_for(adapter, options) as client:
        us = client.get("/state", headers={"x-test-geo": "us-ca"}).json()
        de = client.get("/state", headers={"x-test-geo": "DE"}).json()
        cdn = client.get("/state", headers=country(US)).json()  # no header is trusted now
        page = client.get("/page", headers={"x-test-geo": "US"})
        api = client.get("/_consent", headers={"x-test-geo": "US"}).json()
    assert (us["region"], us["mode"]) == (US_CA, "opt-out")
    assert (de["region"], de["mode"]) == (DE, "opt-in")
    assert (cdn["region"], cdn["mode"]) == ("", "opt-in")
    assert live_trackers(page.text) == {GA, META}
    # The callable may read the client's address, which no header names.
    assert "*" in [v.strip() for v in page.headers["vary"].split(",")]
    assert api["mode"] == "opt-out"


def test_a_failing_region_callable_is_opt_in_and_logged_not_a_500(adapter: str, caplog: pytest.LogCaptureFixture) -> None:
    options = {"secret_key": SECRET, "store": MemoryStore(), "policy": regional_policy(), "region": broken_lookup}
    with client_for(adapter, options) as client:
        r = client.get("/state")
        page = client.get("/page")
    assert r.status_code == 200 and r.json()["mode"] == "opt-in"
    assert page.status_code == 200 and live_trackers(page.text) == set()
    assert "region= callable raised" in caplog.text


def test_django_takes_the_callable_as_a_dotted_path() -> None:
    options = {"secret_key": SECRET, "store": MemoryStore(), "policy": regional_policy(), "region": "tests.test_regions.from_test_header"}
    with client_for("django-wsgi", options) as client:
        assert client.get("/state", headers={"x-test-geo": "US"}).json()["mode"] == "opt-out"


def test_django_check_warns_when_opt_out_regions_have_no_source() -> None:
    from django.core import checks

    from consentmw.django.checks import check_settings
    from tests.adapters import django_settings

    with django_settings({"policy": regional_policy()}):
        found = check_settings()
    assert [m.id for m in found] == ["consentmw.W002"]
    assert isinstance(found[0], checks.Warning)
    with django_settings({"policy": regional_policy(), "region_header": ["CloudFront-Viewer-Country", "CloudFront-Viewer-Country-Region"]}):
        assert check_settings() == []


# -- the pieces --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (("US",), US),
        ((" us ",), US),
        (("US-CA",), US_CA),
        (("US", "CA"), US_CA),  # CloudFront, Vercel: the subdivision alone in a second header
        (("US", "US-CA"), US_CA),
        (("US", ""), US),
        (("US", "ZZ"), ""),  # a subdivision the country does not have: not a guess at the country
        (("XX", "CA"), ""),
        (("KR", "11"), "KR-11"),
        (("US", "USCA"), US_CA),  # a CLDR subdivision id
        (("CA", "CAON"), "CA-ON"),
        (("US", "USZZ"), ""),
        (("", "CA"), ""),
        (("GB",), "GB"),
        (("UK",), ""),
        (("EU",), ""),
        (("A1",), ""),
    ],
)
def test_region_codes_are_read_as_iso_3166(values: tuple[str, ...], expected: str) -> None:
    assert region_code(*values) == expected


def test_a_header_pair_reads_country_then_subdivision() -> None:
    source = RegionSource(("CloudFront-Viewer-Country", "CloudFront-Viewer-Country-Region"))
    assert source.from_headers([(b"cloudfront-viewer-country", b"US"), (b"cloudfront-viewer-country-region", b"CA")]) == US_CA
    assert source.from_headers([(b"cloudfront-viewer-country", b"US")]) == US
    assert source.from_headers([(b"cloudfront-viewer-country-region", b"CA")]) == ""
    assert source.vary == (b"CloudFront-Viewer-Country", b"CloudFront-Viewer-Country-Region")


def test_values_read_before_are_read_the_same_again() -> None:
    source = RegionSource(("CloudFront-Viewer-Country", "CloudFront-Viewer-Country-Region"))
    sent = [(b"US", b"CA"), (b"US", None), (b"DE", None), (b"US", b"CA"), (b"XX", None), (b"US", None), (b"US", b"ZZ")] * 2
    read = []
    for country_value, subdivision in sent:
        headers = [(b"cloudfront-viewer-country", country_value)]
        if subdivision is not None:
            headers.append((b"cloudfront-viewer-country-region", subdivision))
        read.append(source.from_headers(headers))
    assert read == [US_CA, US, DE, US_CA, "", US, ""] * 2


def test_sequential_visitors_from_different_regions_each_get_their_own_rule(site: httpx.Client) -> None:
    modes = [site.get("/state", headers=country(where)).json()["mode"] for where in (US, DE, US, KR, US_CA, "XX", US)]
    assert modes == ["opt-out", "opt-in", "opt-out", "opt-in", "opt-out", "opt-in", "opt-out"]


@pytest.mark.parametrize("header", ["", "CF IPCountry", ("a", "b", "c"), ("x-country",) * 0, 42])
def test_a_bad_region_header_setting_is_refused_at_start(header: Any) -> None:
    from consentmw.core.errors import ConfigError

    with pytest.raises(ConfigError, match="region_header"):
        RegionSource(header)


def test_region_header_and_callable_together_are_refused() -> None:
    from consentmw.core.errors import ConfigError

    with pytest.raises(ConfigError, match="not both"):
        RegionSource("CF-IPCountry", from_test_header)


def test_first_matching_rule_wins_and_a_country_covers_its_subdivisions() -> None:
    rules = RegionRules([{"where": ["US-CA", "US-CO"], "mode": "opt-out"}, {"where": ["US"], "mode": "opt-in"}, {"where": ["BR"], "mode": "opt-out"}])
    asked = ("US-CA", "US", "US-CO", "US-NY", "BR-SP", "BR", "DE", "")
    expected = ["opt-out", "opt-in", "opt-out", "opt-in", "opt-out", "opt-out", "opt-in", "opt-in"]
    # Twice: the second round comes from what the first remembered.
    assert [rules.mode(r) for r in asked + asked] == expected + expected


def problems_of(data: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(PolicyError) as caught:
        Policy(data)
    return caught.value.problems


def test_policy_regions_are_validated_with_json_paths() -> None:
    found = problems_of(regional_policy(regions=[{"where": ["US", "us", "EU", "XX", "US-ZZ"], "mode": "opt-out"}, {"where": ["US-NY"], "mode": "opt-in"}]))
    assert [path for path, _ in found] == [
        "$.regions[0].where[1]",
        "$.regions[0].where[2]",
        "$.regions[0].where[3]",
        "$.regions[0].where[4]",
        "$.regions[1].where[0]",
    ]
    assert "not an ISO 3166 code" in found[0][1]
    assert "EU is no country" in found[1][1].replace("the EU", "EU")
    assert "no ISO 3166-2 subdivision of US" in found[3][1]
    assert "never opt-in" in found[4][1]


def test_policy_regions_schema_errors_name_the_field() -> None:
    found = problems_of(regional_policy(regions=[{"where": ["US"], "mode": "opt_out"}, {"mode": "opt-in"}]))
    assert [path for path, _ in found] == ["$.regions[1]", "$.regions[0].mode"]


def test_opt_out_regions_need_advertising_covered_by_gpc() -> None:
    data = regional_policy()
    for category in data["categories"]:
        if category["id"] == "advertising":
            category["gpc"] = False
    assert [path for path, _ in problems_of(data)] == ["$.categories[3].gpc"]
    data["regions"] = [{"where": [US], "mode": "opt-in"}]
    Policy(data)  # opt-in everywhere: GPC marking is the policy's own business, as before


def test_a_policy_without_regions_behaves_as_before() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        policy = load_policy("default")
    assert policy.regions.mode(US) == "opt-in"
