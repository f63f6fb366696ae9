from __future__ import annotations

import logging
from typing import Any

import pytest

from consentmw import PolicyError, load_policy
from consentmw.core.trackers import TrackerRules, catalog

PRESET = load_policy("default")

SRC_CASES = [
    # (url as written in a page, tracker ids it belongs to)
    ("https://www.googletagmanager.com/gtag/js?id=G-7QX2LCE5N1", {"google-analytics"}),
    ("https://www.googletagmanager.com/gtag/js?id=AW-961247304", {"google-ads"}),
    ("https://www.googletagmanager.com/gtag/js?id=DC-9284712", {"doubleclick"}),
    ("https://www.googletagmanager.com/gtag/js?id=GT-K8Q2ZP3", {"google-analytics", "google-ads"}),
    ("https://www.googletagmanager.com/gtag/js?l=dataLayer2&id=G-ABC", {"google-analytics"}),
    ("https://www.googletagmanager.com/gtag/js?id=XY-123", {"google-tag"}),
    ("HTTPS://WWW.GOOGLETAGMANAGER.COM/gtm.js?id=GTM-K4R7ZQ2", {"google-tag-manager"}),
    ("https://www.googletagmanager.com/ns.html?id=GTM-K4R7ZQ2", {"google-tag-manager"}),
    ("https://www.google-analytics.com/analytics.js", {"google-analytics"}),
    ("https://ssl.google-analytics.com/ga.js", {"google-analytics"}),
    ("//googleads.g.doubleclick.net/pagead/viewthroughconversion/961247304/?guid=ON", {"google-ads"}),
    ("https://www.googleadservices.com/pagead/conversion.js", {"google-ads"}),
    ("https://ad.doubleclick.net/ddm/activity/src=9284712;type=sales0", {"doubleclick"}),
    ("https://securepubads.g.doubleclick.net/tag/js/gpt.js", {"doubleclick"}),
    ("https://pagead2.googlesyndication.com/pagead/js/adsbygoogle.js?client=ca-pub-1", {"google-adsense"}),
    ("https://connect.facebook.net/en_US/fbevents.js", {"meta-pixel"}),
    ("https://www.facebook.com/tr?id=402918374651238&ev=PageView&noscript=1", {"meta-pixel"}),
    ("//wcs.naver.net/wcslog.js", {"naver-analytics"}),
    ("//t1.daumcdn.net/kas/static/kp.js", {"kakao-pixel"}),
    ("https://static.hotjar.com/c/hotjar-3518247.js?sv=6", {"hotjar"}),
    ("https://www.clarity.ms/tag/k3v9qz1m2x", {"microsoft-clarity"}),
    # Not trackers: the site's own files, other pages on tracker-owning hosts, look-alike hosts.
    ("/static/js/app.js", set()),
    # Any other address on a catalogued tracker's host: the host catalog's entity (docs/catalog.md).
    ("https://www.facebook.com/sharer/sharer.php?u=x", {"catalog:Facebook"}),
    ("https://analytics.tiktok.com/i18n/pixel/events.js?sdkid=C1", {"catalog:TikTok"}),
    ("https://snap.licdn.com/li.lms-analytics/insight.min.js", {"catalog:LinkedIn Ads"}),
    ("https://t1.daumcdn.net/mapjsapi/bundle/postcode/prod/postcode.v2.js", set()),
    ("https://dapi.kakao.com/v2/maps/sdk.js?appkey=k", set()),
    ("https://oapi.map.naver.com/openapi/v3/maps.js?ncpKeyId=k", set()),
    ("https://t1.daumcdn.net/postcode/api/core/postcode.js", set()),
    ("https://fonts.googleapis.com/css2?family=Noto+Sans+KR", set()),
    ("https://notgoogletagmanager.com/gtag/js?id=G-1", set()),
]


@pytest.mark.parametrize(("url", "expected"), SRC_CASES)
def test_src_is_recognised_by_address_and_id(url: str, expected: set[str]) -> None:
    rules = TrackerRules(PRESET)
    assert {t.id for t in rules.match_src(url.encode())} == expected


INLINE_CASES = [
    ("gtag('config', 'G-7QX2LCE5N1');", {"google-analytics"}),
    ('gtag("config","AW-961247304");', {"google-ads"}),
    ("gtag('event', 'conversion', {'send_to': 'AW-961247304/abc'});", {"google-ads"}),
    ("gtag('config', 'G-1'); gtag('config', 'AW-2');", {"google-analytics", "google-ads"}),
    ("ga('create', 'UA-1-1', 'auto'); ga('send', 'pageview');", {"google-analytics"}),
    ("var _gaq = _gaq || []; _gaq.push(['_setAccount', 'UA-1-1']);", {"google-analytics"}),
    ("j.src='https://www.googletagmanager.com/gtm.js?id='+i+dl;", {"google-tag-manager"}),
    ("fbq('init', '402918374651238');", {"meta-pixel"}),
    ('wcs_add["wa"] = "s_1"; wcs_do();', {"naver-analytics"}),
    ('var _nasa={}; if(window.wcs) _nasa["cnv"] = wcs.cnv("1","10000");', {"naver-ads"}),
    ("kakaoPixel('5172038461926437021').pageView();", {"kakao-pixel"}),
    ("h._hjSettings={hjid:3518247,hjsv:6};", {"hotjar"}),
    ('t.src="https://www.clarity.ms/tag/"+i;', {"microsoft-clarity"}),
    ("(adsbygoogle = window.adsbygoogle || []).push({});", {"google-adsense"}),
    # Loaders written another way: the tracker's address in a string, however it is put in the page.
    ("var s=d.createElement('script');s.src='https://www.googletagmanager.com/gtag/js?id=G-1';d.head.appendChild(s);", {"google-analytics"}),
    ("s.src='https://www.googletagmanager.com/gtag/js?id=AW-961247304';", {"google-ads"}),
    ("s.src='https://www.googletagmanager.com/gtag/js?id='+id;", {"google-tag"}),
    ("document.write('<script src=\"https://www.googletagmanager.com/gtag/js?id=G-1\"><\\/script>')", {"google-analytics"}),
    ("document.write('<img src=\"https://www.facebook.com/tr?id=1&ev=PageView\">')", {"meta-pixel"}),
    ("s.src='//t1.daumcdn.net/kas/static/kp.js';", {"kakao-pixel"}),
    ("s.src='https://pagead2.googlesyndication.com/pagead/js/adsbygoogle.js?client=ca-pub-1';", {"google-adsense"}),
    ('j.src="https:\\/\\/www.googletagmanager.com\\/gtm.js?id="+i;', {"google-tag-manager"}),
    # The site's own code that only mentions similar words.
    ("function gtag(){dataLayer.push(arguments);} gtag('js', new Date());", set()),
    ("const omega = mega(1); console.log('ga');", set()),
    ("window.__CONFIG__ = {api: '/api'};", set()),
]


@pytest.mark.parametrize(("code", "expected"), INLINE_CASES)
def test_inline_code_is_recognised_by_its_calls(code: str, expected: set[str]) -> None:
    rules = TrackerRules(PRESET)
    assert {t.id for t in rules.match_inline(code.encode())} == expected


def test_catalog_covers_the_issue_list_with_default_categories() -> None:
    defaults = {t.id: t.category for t in catalog()}
    assert defaults["google-analytics"] == "analytics"
    assert defaults["google-tag-manager"] == "analytics"
    assert defaults["google-ads"] == defaults["doubleclick"] == defaults["google-adsense"] == "advertising"
    assert defaults["meta-pixel"] == defaults["kakao-pixel"] == defaults["naver-ads"] == "advertising"
    assert defaults["naver-analytics"] == defaults["hotjar"] == defaults["microsoft-clarity"] == "analytics"


def policy_with(categories: list[dict[str, Any]], **extra: Any) -> Any:
    return load_policy({"version": "1", "categories": [{"id": "necessary", "required": True, "name": {"en": "Necessary"}}, *categories], **extra})


def test_policy_placement_moves_a_tracker_to_its_category() -> None:
    policy = policy_with(
        [
            {"id": "analytics", "name": {"en": "Stats"}},
            {"id": "marketing", "name": {"en": "Ads"}, "services": [{"id": "google-tag-manager"}]},
        ],
        google_consent_mode={"signals": {"ad_storage": "marketing"}},
    )
    rules = TrackerRules(policy)
    found = rules.match_src(b"https://www.googletagmanager.com/gtm.js?id=GTM-1")
    assert rules.categories(found) == ("marketing",)


def test_aliases_map_default_categories_onto_the_policy() -> None:
    policy = policy_with([{"id": "statistics", "name": {"en": "Stats"}}])
    policy = load_policy({**policy.data, "aliases": {"analytics": "statistics"}})
    rules = TrackerRules(policy)
    assert rules.categories(rules.match_src(b"//wcs.naver.net/wcslog.js")) == ("statistics",)


def test_policy_match_patterns_add_site_specific_trackers() -> None:
    policy = policy_with(
        [
            {
                "id": "analytics",
                "name": {"en": "Stats"},
                "services": [{"id": "matomo", "name": "Matomo", "match": {"src": ["/matomo\\.js$"], "inline": ["_paq\\.push"]}}],
            }
        ]
    )
    rules = TrackerRules(policy)
    assert [t.id for t in rules.match_src(b"/stats/matomo.js")] == ["matomo"]
    assert rules.categories(rules.match_inline(b"var _paq = window._paq || []; _paq.push(['trackPageView']);")) == ("analytics",)
    assert rules.match_src(b"/stats/app.js") == ()


def test_a_policy_inline_pattern_holds_code_no_catalog_tracker_knows() -> None:
    policy = policy_with([{"id": "analytics", "name": {"en": "Stats"}, "services": [{"id": "own-stats", "match": {"inline": ["ownstats\\.track\\("]}}]}])
    rules = TrackerRules(policy)
    assert [t.id for t in rules.match_inline(b"window.ownStats.track('view', {page: location.pathname});")] == ["own-stats"]
    assert rules.match_inline(b"window.ownStats.ready = true;") == ()


@pytest.mark.parametrize(
    "url",
    [
        "https://stats.shop.example/t.js",
        "https://stats.shop.example./t.js",  # the same host to DNS and to the browser
        "//STATS.Shop.Example./t.js",
        "https://stats.shop.example.:443/t.js",
        "https://stats%2Eshop.example./t.js",
        "https://stats。shop。example。/t.js",  # ideographic full stops, mapped to "." by the URL parser
    ],
)
def test_a_policy_match_pattern_sees_the_host_as_the_browser_connects_to_it(url: str) -> None:
    policy = policy_with([{"id": "analytics", "name": {"en": "Stats"}, "services": [{"id": "own-stats", "match": {"src": ["//stats\\.shop\\.example/"]}}]}])
    assert [t.id for t in TrackerRules(policy).match_src(url.encode())] == ["own-stats"]


def test_policy_match_extends_a_catalog_tracker() -> None:
    policy = policy_with(
        [{"id": "analytics", "name": {"en": "Stats"}, "services": [{"id": "google-tag-manager", "match": {"src": ["^/gtm/gtm\\.js"]}}]}]
    )
    rules = TrackerRules(policy)
    assert rules.categories(rules.match_src(b"/gtm/gtm.js?id=GTM-1")) == ("analytics",)
    assert rules.categories(rules.match_src(b"https://www.googletagmanager.com/gtm.js?id=GTM-1")) == ("analytics",)


def test_a_broken_match_pattern_names_its_json_path() -> None:
    with pytest.raises(PolicyError) as info:
        policy_with([{"id": "analytics", "name": {"en": "Stats"}, "services": [{"id": "x", "match": {"inline": ["ok", "(unclosed"]}}]}])
    assert info.value.path == "$.categories[1].services[0].match.inline[1]"


def test_undeclared_category_is_never_allowed_and_warned_once_per_vendor(caplog: pytest.LogCaptureFixture) -> None:
    policy = policy_with([{"id": "analytics", "name": {"en": "Stats"}}])
    rules = TrackerRules(policy)
    caplog.set_level(logging.WARNING, logger="consentmw.core.trackers")
    for _ in range(3):
        cats = rules.categories(rules.match_src(b"https://connect.facebook.net/en_US/fbevents.js"))
        rules.categories(rules.match_inline(b"fbq('init', '1');"))
    assert cats == ("?advertising",) and cats[0] not in policy.by_id
    warnings = [r for r in caplog.records if r.name == "consentmw.core.trackers"]
    assert len(warnings) == 1 and "Meta" in warnings[0].getMessage()


# -- inline code: addresses in every form a browser accepts, vendors' globals, unknown hosts ------

RULES = TrackerRules(PRESET)


def inline(code: str) -> tuple[str, ...]:
    return RULES.categories(RULES.match_inline(code.encode()))


@pytest.mark.parametrize(
    "code",
    [
        # A catalogued tracker host (ACE Counter, analytics) written every way a loader writes it.
        "var s=document.createElement('script'); s.src='https://atm.acecounter.com/ac.js';",
        "var s=document.createElement('script'); s.src='//atm.acecounter.com/ac.js';",
        "var s=document.createElement('script'); s.src=location.protocol+'//'+'atm.acecounter.com/ac.js';",
        "var h='atm.acecounter.com/ac.js'; var s=document.createElement('script'); s.src='https://'+h;",
        "var s=document.createElement('script'); s.src='https://atm.' + 'acecounter.com' + '/ac.js';",
        "var s=document.createElement('script'); s.src='https://atm.acecoun' + 'ter.com/ac' + \".js\";",
        "var s=document.createElement('script'); s.src=`https://atm.acecounter.com/${id}.js`;",
        "var s=document.createElement('script'); s.src=new URL('/ac.js', 'https://atm.acecounter.com').href;",
        "(function(b,o){var s=document.createElement('script');s.src=location.protocol+'//'+b+'/'+o;})('atm.acecounter.com','ac.js');",
        "s.src = 'HTTPS:\\/\\/ATM.ACECOUNTER.COM\\/ac.js'; document.head.appendChild(s);",
        # Network calls to it.
        "fetch('https://atm.acecounter.com/collect', {method: 'POST', body: data});",
        "var x = new XMLHttpRequest(); x.open('POST', 'https://atm.acecounter.com/collect'); x.send(d);",
        "navigator.sendBeacon('//atm.acecounter.com/collect', payload);",
        "new Image().src = 'https://atm.acecounter.com/p.gif?u=' + id;",
        "import('https://atm.acecounter.com/ac.mjs');",
    ],
)
def test_a_tracker_address_in_any_form_holds_the_script(code: str) -> None:
    assert inline(code) == ("analytics",)


@pytest.mark.parametrize(
    "code",
    [
        # Share links and plain mentions: nothing is loaded from them.
        "var share = 'https://www.facebook.com/sharer/sharer.php?u=' + location.href;",
        "button.onclick = function () { window.open('https://www.facebook.com/sharer/sharer.php?u=' + u); };",
        "if (document.referrer.indexOf('www.facebook.com') >= 0) source = 'facebook';",
        # Never-blocked services, however written.
        "var s=document.createElement('script'); s.src='https://' + 'stdpay.inicis.com/stdjs/INIStdPay.js';",
        "fetch('https://api.nicepay.co.kr/v1/payments/' + tid);",
        # The site's own code.
        "var s=document.createElement('script'); s.src='/static/app.js'; fetch('/api/cart');",
        "var version = '1.2.3'; var file = 'jquery.min.js'; x.open('GET', 'data.json');",
    ],
)
def test_code_that_loads_nothing_from_a_tracker_stays_live(code: str) -> None:
    assert inline(code) == ()


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("ire('identify', {customerId: '', customerEmail: ''});", ("advertising",)),
        ("window.ire('trackConversion', 1234, {orderId: 'A1'});", ("advertising",)),
        ("fbq('track', 'Purchase', {value: 39000, currency: 'KRW'});", ("advertising",)),
        ("ttq.track('CompletePayment');", ("advertising",)),
        ("_hmt.push(['_trackEvent', 'cart', 'add']);", ("analytics",)),
        ("kakaoPixel('1234567890').purchase({total: '39000'});", ("advertising",)),
        ("var cn = new EN(); cn.setData('uid', 'shop'); cn.sendConv();", ("advertising",)),
        ("var cn = new EN('shop'); cn.sendConv();", ("advertising",)),
        ("var cn = new EN(0); cn.sendConv();", ("advertising",)),
        ("_AceTM.Product = {pCode: '1'};", ("analytics",)),
        ("airbridge.events.send('airbridge.ecommerce.order.completed', {value: 1});", ("advertising",)),
        ("ChannelIO('boot', {pluginKey: 'k'});", ("personalisation",)),
        ("posthog.capture('signed_up');", ("analytics",)),
        # Not a vendor's global: a member of something else, a declaration of the site's own, a comparison.
        ("shop.fbq('x'); obj.ttq.track(); var mine = fire('x'); desire('y');", ()),
        ("if (typeof fbq === 'undefined') { console.log('no pixel'); }", ()),
        ("var renew = new ENGINE(); var en = 'english';", ()),
        ("if (window.airbridge) { }", ()),
    ],
)
def test_a_call_of_a_held_vendors_global_waits_with_it(code: str, expected: tuple[str, ...]) -> None:
    assert inline(code) == expected


@pytest.mark.parametrize("spec", ["fbq", "new EN.", "new EN=", "new EN[", "new EN('", "fbq(x", "fbq;", "1fbq("])
def test_a_vendor_global_of_another_form_is_refused_naming_its_place(spec: str) -> None:
    raw = {"trackers": [{"id": "x", "category": "analytics", "globals": ["ttq.", spec]}]}
    from consentmw.core.trackers import tracker_from_json

    with pytest.raises(PolicyError, match=r"\$\.trackers\[0\]\.globals\[1\]"):
        tracker_from_json(raw["trackers"][0], "$.trackers[0]")


@pytest.mark.parametrize("spec", ["fbq(", "ire('", "ym(0", "ttq.", "_paq=", "wcs_add[", "new EN("])
def test_every_documented_form_of_a_vendor_global_is_taken(spec: str) -> None:
    from consentmw.core.trackers import tracker_from_json

    assert tracker_from_json({"id": "x", "category": "analytics", "globals": [spec]}).globals == (spec,)


def test_an_unknown_third_party_address_in_inline_code_is_logged_once_per_host(caplog: pytest.LogCaptureFixture) -> None:
    rules = TrackerRules(PRESET)
    page = (b"www.shop.example", "/cart")
    with caplog.at_level(logging.WARNING, logger="consentmw"):
        assert rules.match_inline(b"var s=document.createElement('script'); s.src='https://cdn.unknown-metrics.example/t.js';", page) == ()
        rules.match_inline(b"fetch('//cdn.unknown-metrics.example/collect')", page)
        rules.match_inline(b"var h = 'edge.other-tracker.example/s/x.js'; s.src = 'https://' + h;", (b"www.shop.example", "/"), "event handler")
        # Known, first-party, bare host names and relative paths say nothing.
        rules.match_inline(b"fetch('https://www.google-analytics.com/g/collect'); fetch('https://img.shop.example/a.png');", page)
        rules.match_inline(b"wcs.inflow('shop.example.kr'); var u = '/api/x';", page)
    messages = [r.getMessage() for r in caplog.records if "left live" in r.getMessage()]
    assert messages == [
        "consentmw: left live: unknown third-party host cdn.unknown-metrics.example on /cart (inline script https://cdn.unknown-metrics.example/t.js); declare it in the policy if it tracks",
        "consentmw: left live: unknown third-party host edge.other-tracker.example on / (event handler //edge.other-tracker.example/s/x.js); declare it in the policy if it tracks",
    ]


def test_a_left_live_warning_names_the_first_200_characters_of_the_address(caplog: pytest.LogCaptureFixture) -> None:
    address = "https://cdn.unknown-metrics.example/t.js?" + "q" * 300
    with caplog.at_level(logging.WARNING, logger="consentmw"):
        TrackerRules(PRESET).match_inline(f"fetch('{address}');".encode(), (b"www.shop.example", "/"))
    assert [r.getMessage() for r in caplog.records] == [
        f"consentmw: left live: unknown third-party host cdn.unknown-metrics.example on / (inline script {address[:200]}); declare it in the policy if it tracks"
    ]


def test_unknown_host_warnings_from_inline_code_are_bounded(caplog: pytest.LogCaptureFixture) -> None:
    from consentmw.core.trackers import LEFT_LIVE_LIMIT

    rules = TrackerRules(PRESET)
    with caplog.at_level(logging.WARNING, logger="consentmw"):
        for i in range(LEFT_LIVE_LIMIT + 50):
            rules.match_inline(b"fetch('https://h%d.unknown.example/x');" % i, (b"shop.example", "/"))
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == LEFT_LIVE_LIMIT + 1
    assert messages[-1] == f"consentmw: more than {LEFT_LIVE_LIMIT} unknown third-party hosts left live; no more such warnings"


@pytest.mark.parametrize(
    ("host", "site", "first"),
    [
        (b"shop.example", b"www.shop.example", True),  # the www-less domain
        (b"www.shop.example", b"www.shop.example", True),
        (b"img.shop.example", b"www.shop.example", True),  # a sibling under it
        (b"example", b"shop.example", True),  # a domain above the page's host
        (b"static.shop-cdn.example", b"www.shop.example", True),  # under the policy's cookie_domains
        (b"a.example", b"www.shop.example", False),
        (b"www.other.example", b"www.shop.example", False),
        (b"notshop.example", b"www.shop.example", False),
        (b"shop.example.evil", b"www.shop.example", False),
    ],
)
def test_first_party_is_the_page_its_domain_and_the_policys_cookie_domains(host: bytes, site: bytes, first: bool) -> None:
    rules = TrackerRules(policy_with([], cookie_domains=["shop-cdn.example"]))
    assert rules.first_party(host, site) is first
