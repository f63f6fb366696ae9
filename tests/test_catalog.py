"""The host catalog: generated from the pinned third-party-web, curated, and applied to pages."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from consentmw import PolicyError, load_policy
from consentmw.core.catalog import HostEntry, cookie_details, cookies, hosts, lookup_cookie, lookup_host
from consentmw.core.html import HTMLRewriter
from consentmw.core.trackers import LEFT_LIVE_LIMIT, TrackerRules
from tests.conftest import missing

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import gen_catalog  # noqa: E402

SHIPPED = ROOT / "consentmw" / "core" / "data" / "hosts.json"
LOCK = json.loads((ROOT / "scripts" / "third-party-web.lock.json").read_text("utf-8"))
CONSENT_CATEGORIES = {"advertising", "analytics", "functional", None}


@pytest.fixture(scope="module")
def pinned_tarball(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The pinned npm tarball, fetched with npm; the test using it is skipped where npm cannot fetch."""
    if shutil.which("npm") is None:
        missing("npm is not installed: the shipped catalog is checked against the pinned checksums only")
    folder = tmp_path_factory.mktemp("npm")
    try:
        return gen_catalog.fetch_tarball(LOCK, folder)
    except (subprocess.SubprocessError, OSError, StopIteration) as exc:
        missing(f"npm could not fetch {LOCK['package']}@{LOCK['version']}: {exc}")


def test_shipped_catalog_is_what_the_generator_makes_from_the_pinned_tarball(pinned_tarball: Path) -> None:
    text, license_text = gen_catalog.generate(pinned_tarball)
    assert SHIPPED.read_text("utf-8") == text
    assert (SHIPPED.parent / "third-party-web.LICENSE").read_bytes() == license_text


def test_generator_refuses_a_tarball_that_is_not_the_pinned_one(tmp_path: Path) -> None:
    other = tmp_path / "third-party-web-0.30.0.tgz"
    other.write_bytes(b"not the pinned tarball")
    with pytest.raises(ValueError, match="not third-party-web@0.30.0 as pinned"):
        gen_catalog.generate(other)


def test_shipped_catalog_records_the_pinned_input_and_the_current_curation() -> None:
    # Without the tarball: editing the curation or the pin without regenerating fails here.
    source = json.loads(SHIPPED.read_text("utf-8"))["source"]
    assert (source["package"], source["version"], source["sha256"]) == (LOCK["package"], LOCK["version"], LOCK["sha256"])
    assert source["curation_sha256"] == hashlib.sha256((ROOT / "scripts" / "catalog-curation.json").read_bytes()).hexdigest()
    assert "MIT" in (SHIPPED.parent / "third-party-web.LICENSE").read_text("utf-8")


def test_shipped_catalog_is_whole_and_maps_only_onto_consent_categories() -> None:
    data = json.loads(SHIPPED.read_text("utf-8"))
    assert len(data["entities"]) >= 2143 and len(data["domains"]) >= 3132
    assert all(0 <= i < len(data["entities"]) for i in data["domains"].values())
    assert {e[2] for e in data["entities"]} <= CONSENT_CATEGORIES
    curation = json.loads((ROOT / "scripts" / "catalog-curation.json").read_text("utf-8"))
    curated = set(curation["entities"]) | {n for rule in curation["services"].values() for n in rule["entities"]}
    kinds: dict[str, set[str | None]] = {}
    for name, kind, category in data["entities"]:
        if name not in curated:
            kinds.setdefault(kind, set()).add(category)
    # The mapping docs/catalog.md documents, one category per kind.
    assert {k: c.pop() for k, c in kinds.items() if len(c) == 1} == {
        "ad": "advertising",
        "marketing": "advertising",
        "social": "advertising",
        "analytics": "analytics",
        "tag-manager": "analytics",
        "customer-success": "functional",
        **dict.fromkeys(["video", "cdn", "hosting", "utility", "content", "consent-provider", "other"]),
    }


CURATION = json.loads((ROOT / "scripts" / "catalog-curation.json").read_text("utf-8"))


def test_every_curated_entry_says_why_and_names_its_source() -> None:
    entries = [
        *(("entities." + n, e) for n, e in CURATION["entities"].items()),
        *(("add." + e["name"], e) for e in CURATION["add"]),
        *(("services." + n, e) for n, e in CURATION["services"].items()),
        *(("reviewed." + n, e) for n, e in CURATION["reviewed"].items()),
    ]
    assert len(entries) > 100
    for where, entry in entries:
        assert len(entry.get("why", "")) >= 20, f"{where} says no reason"
        source = entry.get("source", "")
        assert source.startswith("https://") or source == "third-party-web 0.30.0 (the pinned dataset)", f"{where} names no source"


def test_one_rule_per_kind_of_service_holds_for_every_vendor_of_that_kind() -> None:
    data = json.loads(SHIPPED.read_text("utf-8"))
    category = {name: cat for name, _, cat in data["entities"]}
    for service, rule in CURATION["services"].items():
        assert rule["entities"], service
        for name in rule["entities"]:
            assert category[name] == rule["category"], f"{name} ({service}) is {category[name]}, the rule says {rule['category']}"
    # Chat widgets the dataset files under customer-success are all in the rule's list.
    chats = {n for n, kind, _ in data["entities"] if kind == "customer-success" and any(w in n.lower() for w in ("chat", "desk", "help", "intercom", "zopim"))}
    assert chats <= set(CURATION["services"]["support-chat"]["entities"])


def test_a_curation_naming_an_unknown_entity_is_refused(tmp_path: Path) -> None:
    bad = {"entities": {}, "add": [], "reviewed": {}, "services": {"video": {"category": None, "why": "x", "source": "https://x", "entities": ["No Such Player"]}}}
    with pytest.raises(ValueError, match="No Such Player"):
        gen_catalog.build(b"", [], json.dumps(bad).encode(), LOCK)


KOREAN_TRACKERS = ["ACE Counter", "Wisetracker", "Beusable", "BizSpring Logger", "Airbridge", "Adbrix (IGAWorks DFINERY)", "MOBON (Enliple)",
                   "Cauly", "Groobee", "Widerplanet", "RealClick", "TG360", "ADN (rainbownine)", "NHN AD tag", "Mezzo Media A-Plus", "ADinsight (Emnet)"]


@pytest.mark.parametrize(
    ("host", "category"),
    [
        ("atm.acecounter.com", "analytics"),
        ("ads.wisetracker.co.kr", "advertising"),
        ("rum.beusable.net", "analytics"),
        ("fs.bizspring.net", "analytics"),
        ("ssl.logger.co.kr", "analytics"),
        ("static.airbridge.io", "advertising"),
        ("cm.igaw.io", "advertising"),
        ("cdn.megadata.co.kr", "advertising"),
        ("log.dreamsearch.or.kr", "advertising"),
        ("image.cauly.co.kr", "advertising"),
        ("static.groobee.io", "advertising"),
        ("cdn-aitg.widerplanet.com", "advertising"),
        ("ssp.realclick.co.kr", "advertising"),
        ("cam.kbdmp.com", "advertising"),
        ("fin.rainbownine.net", "advertising"),
        ("static.tagmanager.toast.com", "advertising"),
        ("mtag.mman.kr", "advertising"),
        ("analysis.adinsight.co.kr", "advertising"),
        ("cdn.channel.io", "functional"),
        ("us.i.posthog.com", "analytics"),
        ("static.cloudflareinsights.com", "analytics"),
        ("cloudflareinsights.com", "analytics"),
        ("x.clarity.ms", "analytics"),
        ("bam.nr-data.net", "analytics"),
        ("cdn.logr-in.com", "analytics"),
        ("browser-intake-datadoghq.com", "analytics"),
        ("region1.analytics.google.com", "analytics"),
        ("events.eu1.segmentapis.com", "analytics"),
        ("js.driftt.com", "functional"),  # the support-chat rule, whatever the dataset's kind
        # Korean functional services: known, never blocked by host.
        ("stdpay.inicis.com", None),
        ("pay.kcp.co.kr", None),
        ("pay.nicepay.co.kr", None),
        ("nsp.pay.naver.com", None),
        ("xpay.uplus.co.kr", None),
        ("business.juso.go.kr", None),
        ("js.hcaptcha.com", None),
        ("challenges.cloudflare.com", None),
        ("cdn.jwplayer.com", None),  # the video rule
    ],
)
def test_korean_and_gap_hosts(host: str, category: str | None) -> None:
    found = lookup_host(host)
    assert found is not None and found.category == category, (host, found)


@pytest.mark.parametrize("host", ["static.toast.com", "api-storage.cloud.toast.com", "toast.com"])
def test_only_nhns_ad_hosts_are_catalogued_not_its_cloud(host: str) -> None:
    # NHN Cloud serves sites' own files from *.toast.com: blocking it would break them.
    assert lookup_host(host) is None


def test_at_least_fifteen_korean_trackers_are_catalogued_with_their_hosts() -> None:
    added = {e["name"]: e for e in CURATION["add"]}
    assert len(KOREAN_TRACKERS) >= 15
    for name in KOREAN_TRACKERS:
        assert added[name]["kind"] in ("ad", "analytics") and added[name]["domains"], name


@pytest.mark.parametrize(
    ("host", "entity", "category"),
    [
        ("analytics.tiktok.com", "TikTok", "advertising"),
        ("snap.licdn.com", "LinkedIn Ads", "advertising"),
        ("px.ads.linkedin.com", "LinkedIn Ads", "advertising"),
        ("static.ads-twitter.com", "Twitter Online Conversion Tracking", "advertising"),
        ("cdn.segment.com", "Segment", "analytics"),
        ("WWW.Google-Analytics.com.", "Google Analytics", "analytics"),
        ("widget.intercom.io", "Intercom", "functional"),
        ("bat.bing.com", "Microsoft Advertising UET", "advertising"),
        ("wcs.naver.net", "Naver Analytics", "analytics"),  # an exact host beats "*.naver.net"
        ("static.dable.io", "Dable", "advertising"),
        ("mc.yandex.by", "Yandex Metrica", "analytics"),
        # Known and never blocked by host.
        ("t1.daumcdn.net", "Kakao", None),
        ("dapi.kakao.com", "Kakao (kakao.com)", None),
        ("oapi.map.naver.com", "Naver", None),
        ("www.microsoft.com", "Bing Ads", None),
        ("tr.snapchat.com", "Snapchat", "advertising"),  # curated: the dataset says analytics
        ("js.tosspayments.com", "Toss Payments", None),
        ("cdn.iamport.kr", "PortOne", None),
        ("fonts.gstatic.com", "Google Fonts", None),
        ("www.youtube.com", "YouTube", None),
    ],
)
def test_lookup_host(host: str, entity: str, category: str | None) -> None:
    found = lookup_host(host)
    assert found is not None and (found.entity, found.category) == (entity, category)


@pytest.mark.parametrize("host", ["1rx.io", "www.1rx.io", "a.b.1rx.io", "1RX.IO."])
def test_a_wildcard_entry_covers_its_bare_domain_and_every_subdomain(host: str) -> None:
    # "*.1rx.io" is the only entry: the bare domain serves the same tracker as its subdomains.
    assert lookup_host(host) == HostEntry("Burst Media", "advertising", "*.1rx.io", "ad")


def test_a_tracker_served_from_a_wildcard_entrys_bare_domain_waits_for_its_category() -> None:
    tag = '<script src="https://1rx.io/sync.js"></script>'
    assert rewrite(tag) == '<script data-consentmw-src="https://1rx.io/sync.js" type="text/plain" data-consentmw-category="advertising"></script>'
    assert rewrite(tag, allowed=("advertising",)) == tag


def test_unknown_and_look_alike_hosts_are_not_in_the_catalog() -> None:
    assert lookup_host("shop.example") is None
    assert lookup_host("nottiktok.com") is None
    assert lookup_host("") is None


def rewrite(html: str, policy: object = "default", allowed: tuple[str, ...] = ()) -> str:
    pol = load_policy(policy)  # type: ignore[arg-type]
    stream = HTMLRewriter(pol).stream(pol.required | set(allowed), page=(b"www.shop.example", "/cart"))
    return (stream.feed(html.encode()) + stream.close()).decode()


TIKTOK_LOADER = """<script>
!function (w, d, t) {
  w.TiktokAnalyticsObject=t;var ttq=w[t]=w[t]||[];ttq.methods=["page","track"];
  ttq.load=function(e,n){var r="https://analytics.tiktok.com/i18n/pixel/events.js";
  var o=d.createElement("script");o.type="text/javascript";o.async=!0;o.src=r+"?sdkid="+e;
  var a=d.getElementsByTagName("script")[0];a.parentNode.insertBefore(o,a)};
  ttq.load('CK1EXAMPLE'); ttq.page();
}(window, document, 'ttq');
</script>"""


def test_an_inline_loader_naming_a_catalogued_host_waits_for_its_category() -> None:
    held = TIKTOK_LOADER.replace("<script>", '<script type="text/plain" data-consentmw-category="advertising">', 1)
    assert rewrite(TIKTOK_LOADER) == held
    assert rewrite(TIKTOK_LOADER, allowed=("advertising",)) == TIKTOK_LOADER


def test_inline_code_that_only_mentions_a_tracker_address_stays_live() -> None:
    page = '<script>var share = "https://www.facebook.com/sharer/sharer.php?u=" + location.href;</script>'
    assert rewrite(page) == page


def policy_with(catalog: dict[str, object]) -> dict[str, object]:
    data = json.loads(json.dumps(load_policy("default").data))
    data["catalog"] = catalog
    return data


def test_a_policy_can_block_an_entity_the_mapping_leaves_live_and_free_one_it_blocks() -> None:
    video = '<iframe src="https://www.youtube.com/embed/xyz"></iframe>'
    sdk = '<script src="https://connect.facebook.net/en_US/sdk.js"></script>'
    assert rewrite(video + sdk) == video + rewrite(sdk)
    assert 'data-consentmw-src="https://connect.facebook.net/en_US/sdk.js"' in rewrite(sdk)
    changed = policy_with({"entities": {"YouTube": "marketing", "Facebook": None}})
    assert rewrite(video + sdk, changed) == '<iframe data-consentmw-src="https://www.youtube.com/embed/xyz" data-consentmw-category="advertising"></iframe>' + sdk


@pytest.mark.parametrize(
    ("catalog", "path", "message"),
    [
        ({"entities": {"YuoTube": "advertising"}}, "$.catalog.entities.YuoTube", "no entity of the host catalog"),
        ({"entities": {"YouTube": "video-ads"}}, "$.catalog.entities.YouTube", "not a category or alias"),
    ],
)
def test_policy_overrides_name_known_entities_and_categories(catalog: dict[str, object], path: str, message: str) -> None:
    with pytest.raises(PolicyError, match=message) as info:
        TrackerRules(load_policy(policy_with(catalog)))
    assert path in str(info.value)


LEFT_LIVE_PAGE = """<!doctype html><html><head><link rel="stylesheet" href="https://fonts.googleapis.com/css2?family=Noto"></head><body>
<script src="/static/app.js"></script>
<script src="https://static.shop.example/app.js"></script>
<script src="https://cdn.newtracker.example/t.js"></script>
<script src="https://cdn.newtracker.example/other.js"></script>
<img src="https://px.pixelco.example/p.gif" width="1" height="1" alt="">
<img src="https://images.photos.example/shoe.jpg" alt="shoe">
<iframe src="https://widgets.chatco.example/frame"></iframe>
<embed src="https://media.embedco.example/clip" type="video/mp4">
<video poster="https://images.photos.example/poster.jpg" src="https://images.photos.example/clip.mp4"></video>
<script src="https://js.tosspayments.com/v2/standard"></script>
</body></html>"""


def test_third_party_tags_left_live_are_named_once_per_host_and_process(caplog: pytest.LogCaptureFixture) -> None:
    pol = load_policy("default")
    rewriter = HTMLRewriter(pol)
    with caplog.at_level(logging.WARNING, logger="consentmw"):
        for _ in range(2):
            stream = rewriter.stream(pol.required, page=(b"www.shop.example", "/cart"))
            assert stream.feed(LEFT_LIVE_PAGE.encode()) + stream.close() == LEFT_LIVE_PAGE.encode()
    messages = [r.getMessage() for r in caplog.records]
    assert sorted(messages) == [
        "consentmw: left live: unknown third-party host cdn.newtracker.example on /cart (script https://cdn.newtracker.example/t.js); declare it in the policy if it tracks",
        "consentmw: left live: unknown third-party host media.embedco.example on /cart (embed https://media.embedco.example/clip); declare it in the policy if it tracks",
        "consentmw: left live: unknown third-party host px.pixelco.example on /cart (pixel https://px.pixelco.example/p.gif); declare it in the policy if it tracks",
        "consentmw: left live: unknown third-party host widgets.chatco.example on /cart (iframe https://widgets.chatco.example/frame); declare it in the policy if it tracks",
    ]


def test_hosts_remembered_for_left_live_warnings_are_bounded(caplog: pytest.LogCaptureFixture) -> None:
    pol = load_policy("default")
    rewriter = HTMLRewriter(pol)
    page = "".join(f'<script src="https://h{i}.example/t.js"></script>' for i in range(1050))
    with caplog.at_level(logging.WARNING, logger="consentmw"):
        stream = rewriter.stream(pol.required, page=(b"shop.example", "/"))
        stream.feed(page.encode())
        stream.close()
    # docs/catalog.md: at most 1,000 hosts are remembered, then one last warning.
    assert LEFT_LIVE_LIMIT == 1000 and len(rewriter.trackers.left_live) == 1001
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 1001
    assert messages[999].startswith("consentmw: left live: unknown third-party host h999.example on / (script")
    assert messages[-1] == "consentmw: more than 1000 unknown third-party hosts left live; no more such warnings"


def test_catalog_loads_once() -> None:
    assert hosts() is hosts()
    assert cookies() is cookies()


def test_catalog_entries_are_shared_and_cannot_be_changed() -> None:
    # Every request gets the same entries: one that a caller could change would change them for all.
    entry = lookup_host("www.googletagmanager.com")
    cookie = lookup_cookie("_ga")
    assert entry is not None and cookie is not None
    with pytest.raises(dataclasses.FrozenInstanceError):
        entry.category = None  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        cookie.category = "necessary"  # type: ignore[misc]
    details = cookie_details(cookie)
    with pytest.raises(dataclasses.FrozenInstanceError):
        details.lifetime = "session"  # type: ignore[misc]


def test_vendor_globals_wait_in_the_category_of_their_vendors_hosts() -> None:
    data = json.loads(SHIPPED.read_text("utf-8"))
    category = {name: cat for name, _, cat in data["entities"]}
    trackers = json.loads((ROOT / "consentmw" / "core" / "trackers.json").read_text("utf-8"))["trackers"]
    linked = [t for t in trackers if "entity" in t]
    assert len(linked) >= 15
    for tracker in linked:
        assert tracker["globals"] and tracker["source"].startswith("https://"), tracker["id"]
        assert category[tracker["entity"]] == tracker["category"], tracker["id"]


def test_event_handlers_and_javascript_urls_naming_an_unknown_host_are_logged_like_tags(caplog: pytest.LogCaptureFixture) -> None:
    page = (
        '<img src="/logo.png" alt="" onload="new Image().src=\'https://px.unknown-beacon.example/p?u=\'+location.href">'
        "<iframe src=\"javascript:fetch('https://edge.unknown-collect.example/c')\"></iframe>"
        '<button onclick="fetch(\'https://px.unknown-beacon.example/click\')">담기</button>'
        "<button onclick=\"fbq('track', 'AddToCart')\">담기</button>"
    )
    pol = load_policy("default")
    rewriter = HTMLRewriter(pol, trackers=TrackerRules(pol))  # a process's first look at these hosts
    with caplog.at_level(logging.WARNING, logger="consentmw"):
        stream = rewriter.stream(pol.required, page=(b"www.shop.example", "/cart"))
        out = (stream.feed(page.encode()) + stream.close()).decode()
    # Once per host: the second handler naming px.unknown-beacon.example is not logged again.
    assert [r.getMessage() for r in caplog.records] == [
        "consentmw: left live: unknown third-party host px.unknown-beacon.example on /cart (event handler https://px.unknown-beacon.example/p?u=); declare it in the policy if it tracks",
        "consentmw: left live: unknown third-party host edge.unknown-collect.example on /cart (javascript: or data: URL https://edge.unknown-collect.example/c); declare it in the policy if it tracks",
    ]
    # A held vendor's call in a handler waits with the vendor; the unknown hosts stay live.
    assert out == page.replace("<button onclick=\"fbq(", "<button data-consentmw-onclick=\"fbq(")


@pytest.mark.parametrize(
    "img",
    [
        '<img src="https://px.hidden.example/p.gif" width=1>',
        "<img height='0' src=https://px.hidden.example/p.gif>",
        '<img src="https://px.hidden.example/p.gif" style="display: none">',
        '<img style="visibility:hidden" src="//px.hidden.example/p.gif">',
        '<img srcset="/a.gif 1x, https://px.hidden.example/p.gif 2x" width="1" height="1">',
    ],
)
def test_an_invisible_image_from_an_unknown_host_is_named_as_a_pixel(img: str, caplog: pytest.LogCaptureFixture) -> None:
    pol = load_policy("default")
    rewriter = HTMLRewriter(pol)
    page = f'<img src="https://img.photos.example/a.jpg" width="160" height="160">{img}'.encode()
    with caplog.at_level(logging.WARNING, logger="consentmw"):
        assert rewriter.rewrite(pol.required, page, page=(b"www.shop.example", "/p")) == page
    assert [r.getMessage().split(" on ")[0] for r in caplog.records] == ["consentmw: left live: unknown third-party host px.hidden.example"]


def test_a_pixel_from_an_unknown_host_is_named_when_the_remembered_hosts_are_full(caplog: pytest.LogCaptureFixture) -> None:
    # The hosts remembered per site are bounded; a new host after that is not remembered, and its
    # pixel must still get the closer look that names it.
    pol = load_policy("default")
    rewriter = HTMLRewriter(pol)
    site = (b"www.shop.example", "/p")
    rewriter.rewrite(pol.required, b"".join(b'<img src="https://img%d.photos.example/a.jpg" width="160">' % i for i in range(4100)), page=site)
    assert len(rewriter.safe_hosts(site[0])) == 4096
    pixel = b'<img src="https://px.late.example/p.gif" width="1" height="1">'
    with caplog.at_level(logging.WARNING, logger="consentmw"):
        assert rewriter.rewrite(pol.required, pixel, page=site) == pixel
    assert [r.getMessage().split(" on ")[0] for r in caplog.records] == ["consentmw: left live: unknown third-party host px.late.example"]


@pytest.mark.parametrize(
    "pixel",
    [
        '<img src="https://img.adco.example/p.gif" width="1" height="1">',
        '<img src="https://img.adco.example/p.gif" alt="" style="display:none">',
        "<img src='https://img.adco.example/p.gif' width='1' height='1'>",
        '<img height="0" src=https://img.adco.example/p.gif>',
        '<img srcset="/a.jpg 1x, https://img.adco.example/p.gif 2x" width=1>',
        '<img src="https://img.adco.example/p.gif" width=\x0b1>',
    ],
)
def test_a_pixel_is_named_after_visible_images_from_its_host_on_earlier_pages(pixel: str, caplog: pytest.LogCaptureFixture) -> None:
    # An unknown third party's images are remembered as no tracker's, and jumped over as the site's
    # own are, but a pixel from its host is still named (the first time it comes, whatever its shape).
    pol = load_policy("default")
    rewriter = HTMLRewriter(pol)
    shown = b'<img src="https://img.adco.example/banner.jpg" width="300" height="250"><img src="https://img.adco.example/b.jpg" alt="">'
    with caplog.at_level(logging.WARNING, logger="consentmw"):
        for page in (shown, shown, shown + pixel.encode() + shown, pixel.encode()):
            assert rewriter.rewrite(pol.required, page, page=(b"www.shop.example", "/p")) == page
    assert [r.getMessage() for r in caplog.records] == [
        f"consentmw: left live: unknown third-party host img.adco.example on /p (pixel https://img.adco.example/p.gif); declare it in the policy if it tracks"
    ]


def test_tags_remembered_for_one_site_are_still_named_as_left_live_on_another(caplog: pytest.LogCaptureFixture) -> None:
    # A site's own CDN is first party on its pages and a third party on every other site's.
    pol = load_policy("default")
    rewriter = HTMLRewriter(pol)
    page = (
        b'<script src="https://static.b-shop.example/app.js"></script>'
        b'<noscript><img src="https://px.b-shop.example/p.gif" width="1" height="1"></noscript>'
    )
    with caplog.at_level(logging.WARNING, logger="consentmw"):
        for site in (b"www.b-shop.example", b"www.b-shop.example", b"www.a-shop.example"):
            assert rewriter.rewrite(pol.required, page, page=(site, "/p")) == page
    assert sorted(r.getMessage().split(" (")[0] for r in caplog.records) == [
        "consentmw: left live: unknown third-party host px.b-shop.example on /p",
        "consentmw: left live: unknown third-party host static.b-shop.example on /p",
    ]
