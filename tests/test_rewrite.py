from __future__ import annotations

import json
import re
from collections.abc import Iterable

import pytest

from consentmw import load_policy
from consentmw.core.consentmode import ConsentModeDefaults
from consentmw.core.html import HTMLRewriter
from tests.corpus.pages import HERE, SNIPPETS, live_tags, live_trackers, shop_page

POLICY = load_policy("default")
REWRITER = HTMLRewriter(POLICY)
NOBODY = POLICY.required  # an undecided visitor: only the required category
EVERYTHING = frozenset(c.id for c in POLICY.categories)
HEAD = b"<!--consentmw:head-->"
BODY_END = b"<!--consentmw:body-end-->"


def rewrite(page: bytes | str, allowed: Iterable[str] = NOBODY, chunk: int | None = None, **kw: bytes) -> bytes:
    data = page.encode() if isinstance(page, str) else page
    stream = REWRITER.stream(frozenset(allowed), **kw)
    size = chunk or len(data) or 1
    return b"".join(stream.feed(data[i : i + size]) for i in range(0, len(data), size)) + stream.close()


def injected(page: str) -> bytes:
    """The page as consentmw should send it to a visitor who allowed everything."""
    before, after = page.replace("<head>", "<head>" + HEAD.decode(), 1).rsplit("</body>", 1)
    return (before + BODY_END.decode() + "</body>" + after).encode()


@pytest.mark.parametrize("name", sorted(SNIPPETS))
def test_refused_tracker_neither_runs_nor_loads(name: str) -> None:
    page = shop_page([name])
    assert live_trackers(page) == {name}  # the oracle sees the official snippet as live
    assert live_trackers(rewrite(page).decode()) == set()


@pytest.mark.parametrize("name", sorted(SNIPPETS))
def test_allowed_tracker_passes_byte_for_byte(name: str) -> None:
    page = shop_page([name])
    allowed = NOBODY | SNIPPETS[name].categories
    assert rewrite(page, allowed, head=HEAD, body_end=BODY_END) == injected(page)


def test_a_tag_of_two_purposes_needs_both() -> None:
    page = '<script async src="https://www.googletagmanager.com/gtag/js?id=GT-K8Q2ZP3"></script>'
    assert live_tags(rewrite(page, NOBODY | {"analytics"}).decode()) == []
    assert live_tags(rewrite(page, NOBODY | {"advertising"}).decode()) == []
    assert rewrite(page, EVERYTHING) == page.encode()
    assert rewrite(page) == page.replace(" src=", " data-consentmw-src=").replace('"></script>', '" type="text/plain" data-consentmw-category="analytics advertising"></script>').encode()


def test_each_category_only_releases_its_own_trackers() -> None:
    page = shop_page(list(SNIPPETS))
    for category in ("analytics", "advertising"):
        live = live_trackers(rewrite(page, NOBODY | {category}).decode())
        assert live == {n for n, s in SNIPPETS.items() if s.categories == {category}}


def test_inert_script_keeps_what_the_banner_needs_to_bring_it_back() -> None:
    out = rewrite('<script async type="text/javascript" src="https://www.googletagmanager.com/gtag/js?id=G-1"></script>')
    assert out == (
        b'<script async data-consentmw-type="text/javascript" data-consentmw-src="https://www.googletagmanager.com/gtag/js?id=G-1"'
        b' type="text/plain" data-consentmw-category="analytics"></script>'
    )


def test_inert_inline_script_keeps_its_code() -> None:
    code = "\n  fbq('init', '402918374651238');\n  fbq('track', 'PageView');\n"
    out = rewrite(f"<script>{code}</script>")
    assert out == f'<script type="text/plain" data-consentmw-category="advertising">{code}</script>'.encode()


def test_pixel_image_and_iframe_lose_their_address() -> None:
    out = rewrite(
        '<noscript><iframe src="https://www.googletagmanager.com/ns.html?id=GTM-1" height="0"></iframe>'
        '<img height="1" src="https://www.facebook.com/tr?id=1&amp;ev=PageView" /></noscript>'
    )
    assert out == (
        b'<noscript><iframe data-consentmw-src="https://www.googletagmanager.com/ns.html?id=GTM-1" height="0"'
        b' data-consentmw-category="analytics"></iframe>'
        b'<img height="1" data-consentmw-src="https://www.facebook.com/tr?id=1&amp;ev=PageView" data-consentmw-category="advertising"/></noscript>'
    )


HINTS = {
    '<link rel="preload" as="script" href="https://www.googletagmanager.com/gtag/js?id=G-1">': "analytics",
    "<link rel=preconnect href=https://connect.facebook.net crossorigin>": "advertising",
    '<link rel="dns-prefetch" href="//wcs.naver.net">': "analytics",
}


@pytest.mark.parametrize(("hint", "category"), HINTS.items())
def test_resource_hints_to_trackers_wait_for_consent(hint: str, category: str) -> None:
    held = hint.replace(" href=", " data-consentmw-href=").removesuffix(">") + f' data-consentmw-category="{category}">'
    assert rewrite(hint, chunk=5).decode() == held
    assert rewrite(hint, EVERYTHING) == hint.encode()


OWN_CODE = [
    '<link rel="preload" href="/static/app.js" as="script"><link rel="preconnect" href="https://img.shop.example.kr">',
    '<link rel="stylesheet" href="https://www.googletagmanager.com/x.css"><link rel="prev" href="/p/1">',
    '<script type="application/ld+json">{"note": "gtag(\'config\', \'G-1\') and fbq(\'init\', \'1\')"}</script>',
    '<script type="application/json" id="data">{"src": "https://connect.facebook.net/en_US/fbevents.js"}</script>',
    '<script type="importmap">{"imports": {"a": "/static/a.js"}}</script>',
    '<script type="text/template"><script src="https://www.googletagmanager.com/gtm.js?id=GTM-1"></script>',
    "<script>var tip = '<script> tags go in <head>'; if (1 < 2) { console.log('no gtag here'); }</script>",
    '<script src="/static/app.js" defer></script><script type="module" src="/static/cart.js"></script>',
    "<!-- <script async src=\"https://www.googletagmanager.com/gtag/js?id=G-OLD\"></script> -->",
    '<style>/* <img src="https://www.facebook.com/tr?id=1"> */ .a{color:red}</style>',
    '<textarea><script src="https://connect.facebook.net/en_US/fbevents.js"></script></textarea>',
    '<title>fbq(\'init\') <script> tutorial</title>',
    '<img src="https://img.shop.example.kr/p/1.webp" alt="a>b" data-src="/lazy.webp">',
    "<header><scripts><imgx src='https://www.facebook.com/tr?id=1'></header>",
    '<link rel="preload" as="image" imagesrcset="/a.png 1x, https://img.shop.example.kr/b.png 2x">',  # no href
]


@pytest.mark.parametrize("html", OWN_CODE)
def test_the_apps_own_scripts_json_and_text_are_never_altered(html: str) -> None:
    assert rewrite(html) == html.encode()
    assert rewrite(html, chunk=3) == html.encode()
    # Also on a page whose third-party tags left live are named in the log.
    assert REWRITER.rewrite(NOBODY, html.encode(), page=(b"www.shop.example", "/p")) == html.encode()


def test_frames_and_images_without_an_address_pass_on_a_page_whose_left_live_tags_are_named() -> None:
    page = b'<iframe name="x"></iframe><img alt="" width="1" height="1"><link rel="preload" as="image">'
    assert REWRITER.rewrite(NOBODY, page, page=(b"www.shop.example", "/p")) == page


OTHER_TOOLS = [
    # (markup, refused -> expected, allowed category)
    (
        '<script type="text/plain" data-category="analytics" src="https://example.com/a.js"></script>',
        '<script type="text/plain" data-category="analytics" data-consentmw-src="https://example.com/a.js" data-consentmw-category="analytics"></script>',
        "analytics",
    ),
    (
        '<script type="text/plain" data-cookieconsent="statistics, marketing">track()</script>',
        '<script type="text/plain" data-cookieconsent="statistics, marketing" data-consentmw-category="analytics advertising">track()</script>',
        "analytics advertising",
    ),
    (
        '<script data-cookieconsent="marketing" src="https://example.com/ads.js"></script>',
        '<script data-cookieconsent="marketing" data-consentmw-src="https://example.com/ads.js" type="text/plain" data-consentmw-category="advertising"></script>',
        "advertising",
    ),
    (
        '<script type="text/plain" class="optanon-category-C0002">track()</script>',
        '<script type="text/plain" class="optanon-category-C0002" data-consentmw-category="analytics">track()</script>',
        "analytics",
    ),
    (
        '<iframe class="optanon-category-C0004" data-src="https://ads.example.com/frame"></iframe>',
        '<iframe class="optanon-category-C0004" data-src="https://ads.example.com/frame" data-consentmw-src="https://ads.example.com/frame" data-consentmw-category="advertising"></iframe>',
        "advertising",
    ),
    (
        '<script type="text/plain" data-type="text/javascript" data-name="googleAnalytics" data-src="https://example.com/ga.js"></script>',
        '<script type="text/plain" data-type="text/javascript" data-name="googleAnalytics" data-src="https://example.com/ga.js" data-consentmw-src="https://example.com/ga.js" data-consentmw-type="text/javascript" data-consentmw-category="analytics"></script>',
        "analytics",
    ),
]


@pytest.mark.parametrize(("markup", "refused", "category"), OTHER_TOOLS)
def test_other_consent_tools_markup_is_made_inert_in_ours(markup: str, refused: str, category: str) -> None:
    assert rewrite(markup).decode() == refused
    assert live_tags(rewrite(markup).decode()) == []


@pytest.mark.parametrize(("markup", "refused", "category"), OTHER_TOOLS)
def test_other_consent_tools_markup_runs_once_allowed(markup: str, refused: str, category: str) -> None:
    out = rewrite(markup, NOBODY | set(category.split())).decode()
    assert len(live_tags(out)) == 1


def test_tags_the_site_marked_for_consentmw_follow_the_choice() -> None:
    markup = '<script type="text/plain" data-consentmw-category="statistics" data-consentmw-src="/stats.js"></script>'
    assert rewrite(markup) == markup.encode()  # already inert and marked: nothing to add
    assert live_tags(rewrite(markup, NOBODY | {"analytics"}).decode()) == ["src /stats.js"]


def test_other_tools_necessary_category_is_always_on() -> None:
    out = rewrite('<script type="text/plain" data-cookieconsent="necessary" src="/session.js"></script>').decode()
    assert live_tags(out) == ["src /session.js"]


@pytest.mark.parametrize(
    "markup",
    [
        '<script type="text/plain" data-category="sparkles" src="/s.js"></script>',
        '<script type="text/plain" data-cookieconsent="custom" src="/s.js"></script>',  # Cookiebot: only "ignore" means none
        '<script type="text/plain" data-cookieconsent="ignored" src="/s.js"></script>',
    ],
)
def test_unknown_category_of_another_tool_stays_inert_for_everyone(markup: str) -> None:
    assert live_tags(rewrite(markup, EVERYTHING).decode()) == []


def test_cookiebot_ignore_is_not_a_category() -> None:
    markup = '<script data-cookieconsent="ignore" src="/app.js"></script>'
    assert rewrite(markup) == markup.encode()


@pytest.mark.parametrize("comment", ["<!-->", "<!--->", "<!---->", "<!-- x -- y -->"])
def test_a_tracker_after_a_comment_is_still_found(comment: str) -> None:
    out = rewrite(comment + "<script src='https://connect.facebook.net/en_US/fbevents.js'></script>", chunk=2).decode()
    assert out.startswith(comment + "<script data-consentmw-src=")


def test_every_piece_the_stream_gives_is_bytes() -> None:
    # Adapters hand the pieces to the server as they come: ASGI and WSGI (PEP 3333) take bytes only.
    data = shop_page(["gtm"]).encode()
    for size in (len(data), 4096, 7):
        stream = REWRITER.stream(NOBODY, head=HEAD, body_end=BODY_END)
        pieces = [stream.feed(data[i : i + size]) for i in range(0, len(data), size)] + [stream.close()]
        assert {type(piece) for piece in pieces} == {bytes}
    for page in (b"<p>nothing to change</p>", data):
        assert type(REWRITER.rewrite(NOBODY, page)) is bytes


def test_head_injection_goes_first_and_body_end_before_body_closes() -> None:
    page = "<!DOCTYPE html>\n<HTML><HEAD lang=ko><script async src='https://www.googletagmanager.com/gtag/js?id=G-1'></script></HEAD><BODY>x</BODY></HTML>"
    out = rewrite(page, head=HEAD, body_end=BODY_END).decode()
    assert out.startswith("<!DOCTYPE html>\n<HTML><HEAD lang=ko><!--consentmw:head--><script ")
    assert out.endswith("x<!--consentmw:body-end--></BODY></HTML>")


@pytest.mark.parametrize(
    ("page", "ending"),
    [
        (b"<!DOCTYPE html><html><head></head><body><p>x</p></BODY >\n</html>\n", BODY_END + b"</BODY >\n</html>\n"),
        (b"<!DOCTYPE html><body><p>a</p></body><p>more</p></body></html>", b"</p>" + BODY_END + b"</body></html>"),  # the last one
        (b"<!DOCTYPE html><body><p>a</p></body><p>" + b"more " * 1000 + b"</p>", b"more </p>" + BODY_END),  # none near the end
        # In text that the tokenizer lets out to the last byte, a "</body" may be cut in two.
        (b"<!DOCTYPE html><body><textarea></body><p></textarea><plaintext>a</body></html>", b"a" + BODY_END + b"</body></html>"),
    ],
)
def test_body_end_goes_where_it_goes_however_the_page_is_cut(page: bytes, ending: bytes) -> None:
    whole = rewrite(page, head=HEAD, body_end=BODY_END)
    assert whole.count(BODY_END) == 1 and whole.endswith(ending), whole[-80:]
    for cut in range(1, len(page)):
        stream = REWRITER.stream(NOBODY, head=HEAD, body_end=BODY_END)
        assert stream.feed(page[:cut]) + stream.feed(page[cut:]) + stream.close() == whole, cut
    for size in (1, 3, 7):
        assert rewrite(page, head=HEAD, body_end=BODY_END, chunk=size) == whole, size


def test_head_injection_without_a_head_tag() -> None:
    out = rewrite("<html><script>fbq('init','1')</script><body>x</body></html>", head=HEAD, body_end=BODY_END).decode()
    assert out.startswith("<html><!--consentmw:head--><script type=")


def test_fragments_get_no_banner_but_lose_their_trackers() -> None:
    fragment = "<div><img src='https://www.facebook.com/tr?id=1'></div>"
    out = rewrite(fragment, head=HEAD, body_end=BODY_END).decode()
    assert "consentmw:" not in out and live_tags(out) == []


def test_euc_kr_page_is_not_corrupted() -> None:
    page = (HERE / "legacy-euckr.html").read_bytes()
    assert page.decode("euc-kr")  # the fixture really is EUC-KR
    out = rewrite(page, head=HEAD, body_end=BODY_END, chunk=7)
    assert out.decode("euc-kr").replace(HEAD.decode(), "").replace(BODY_END.decode(), "") != page.decode("euc-kr")
    untouched = rewrite(page, EVERYTHING, head=HEAD, body_end=BODY_END, chunk=7)
    assert untouched.replace(HEAD, b"").replace(BODY_END, b"") == page
    assert live_trackers(out.decode("euc-kr")) == set()


def test_consent_mode_defaults_follow_the_visitor() -> None:
    policy = load_policy({**POLICY.data, "categories": [
        *POLICY.data["categories"][:2],
        {**POLICY.data["categories"][2], "services": [{"id": "google-analytics", "ids": ["G-7QX2LCE5N1"]}]},
        POLICY.data["categories"][3],
    ]})
    defaults = ConsentModeDefaults(policy)
    undecided = defaults.code(policy.required)
    assert "window[\"ga-disable-G-7QX2LCE5N1\"]=true;" in undecided
    assert '"ad_storage":"denied","ad_user_data":"denied","ad_personalization":"denied","analytics_storage":"denied"' in undecided
    assert undecided.index("ga-disable") < undecided.index("gtag('consent','default'")
    analytics = defaults.code(policy.required | {"analytics"})
    assert "ga-disable" not in analytics and '"analytics_storage":"granted"' in analytics and '"ad_storage":"denied"' in analytics
    assert "ads_data_redaction" not in defaults.code(policy.required | {"advertising"})


def test_consent_mode_defaults_wait_for_the_banners_update() -> None:
    # wait_for_update holds Google tags back this long, so a choice made on this page arrives first.
    policy = load_policy({**POLICY.data, "categories": [
        *POLICY.data["categories"][:2],
        {**POLICY.data["categories"][2], "services": [{"id": "google-analytics", "ids": ["G-7QX2LCE5N1"]}]},
        POLICY.data["categories"][3],
    ]})
    default_command = re.search(r"gtag\('consent','default',(\{.*?\})\);", ConsentModeDefaults(policy).code(policy.required))
    assert default_command and json.loads(default_command.group(1))["wait_for_update"] == 500
    longer = load_policy({**policy.data, "google_consent_mode": {"wait_for_update": 2000}})
    assert '"wait_for_update":2000' in ConsentModeDefaults(longer).code(longer.required)
    none = load_policy({**policy.data, "google_consent_mode": {"wait_for_update": 0}})
    assert "wait_for_update" not in ConsentModeDefaults(none).code(none.required)


def test_consent_mode_is_off_when_the_policy_has_no_google_tags() -> None:
    policy = load_policy({"version": "1", "categories": [{"id": "necessary", "required": True, "name": {"en": "N"}}, {"id": "analytics", "name": {"en": "A"}}]})
    assert ConsentModeDefaults(policy).code(policy.required) == ""


SITE_IMAGES = "".join(f'<li data-id="{i}"><img src="https://img.shop.example.kr/p/{i}.webp" alt="item {i}"></li>' for i in range(6))
PIXEL = '<img height="1" width="1" style="display:none" src="https://www.facebook.com/tr?id=1&ev=PageView&noscript=1"/>'


@pytest.mark.parametrize("chunk", [None, 1, 3, 17, 64])
@pytest.mark.parametrize(
    "tag",
    [
        PIXEL,
        '<link rel="preload" as="script" href="https://www.googletagmanager.com/gtm.js?id=GTM-X">',
        '<link rel="preconnect" href="//www.google-analytics.com">',
    ],
)
def test_a_tracker_among_the_sites_images_is_found_at_any_chunk_size(tag: str, chunk: int | None) -> None:
    page = f"<body><ul>{SITE_IMAGES}{tag}{SITE_IMAGES}</ul></body>"
    out = rewrite(page, chunk=chunk).decode()
    assert out.count("data-consentmw-category=") == 1
    assert out.replace(out[out.index(tag[:10]) :].split(">", 1)[0] + ">", tag, 1) == page
    assert "https://img.shop.example.kr/p/5.webp" in out
    assert rewrite(page, EVERYTHING, chunk=chunk).decode() == page


@pytest.mark.parametrize("chunk", [None, 1, 9])
@pytest.mark.parametrize(
    "tag",
    [
        '<img alt="src=" src="https://www.facebook.com/tr?id=1&amp;ev=PageView">',
        "<img title='see src=' srcset=\"https://www.facebook.com/tr?id=1 2x\">",
        '<img alt="a, src=" src="/a.png" srcset="/a.png 1x, https://www.facebook.com/tr?id=1 2x">',
        '<link title="href=" href="https://www.googletagmanager.com/gtm.js?id=GTM-X" rel="preload" as="script">',
    ],
)
def test_an_address_attribute_named_inside_an_earlier_value_does_not_hide_the_real_one(tag: str, chunk: int | None) -> None:
    # "src=" or "href=" at the end of an alt or title text is text; the real attribute after it loads.
    page = f"<body><ul>{SITE_IMAGES}{tag}{SITE_IMAGES}</ul></body>".encode()
    size = chunk or len(page)
    for site in (None, (b"www.shop.example.kr", "/"), (b"127.0.0.1", "/")):
        stream = REWRITER.stream(NOBODY, page=site)
        out = (b"".join(stream.feed(page[i : i + size]) for i in range(0, len(page), size)) + stream.close()).decode()
        assert out.count("data-consentmw-category=") == 1, (site, out)
        assert not re.search(r"""[\s'"](?:src|srcset|href)="[^"]*(?:facebook|googletagmanager)""", out), out


@pytest.mark.parametrize("chunk", [None, 1, 4])
def test_an_image_with_a_tracker_only_in_data_src_loads_nothing_and_is_left_alone(chunk: int | None) -> None:
    page = f'{SITE_IMAGES}<img data-src="https://www.facebook.com/tr?id=1&amp;ev=PageView" alt="">{SITE_IMAGES}'
    assert rewrite(page, chunk=chunk).decode() == page


@pytest.mark.parametrize("chunk", [None, 1, 5, 13])
def test_a_quoted_value_holding_markup_is_part_of_its_tag_at_any_chunk_size(chunk: int | None) -> None:
    # A browser reads a quoted value to its closing quote, '>' and '<script' included: this is one
    # image with a long alt text, never a script. The text inside stays as the site wrote it.
    alt = 'a > b <script src="https://connect.facebook.net/en_US/fbevents.js"></script>'
    page = f"<body><p>{SITE_IMAGES}<img alt='{alt}' src=\"/x.png\"></p></body>"
    assert rewrite(page, chunk=chunk).decode() == page


@pytest.mark.parametrize("chunk", [None, 1, 7])
@pytest.mark.parametrize(
    ("page", "address"),
    [
        pytest.param('<img alt="x src=/a.png" src="https://www.facebook.com/tr?id=1&ev=PageView">', "https://www.facebook.com/tr", id="img"),
        pytest.param('<iframe title="x src=/a.html" src="https://www.googletagmanager.com/ns.html?id=GTM-X"></iframe>', "https://www.googletagmanager.com/ns.html", id="iframe"),
        pytest.param('<link title="a href=/x" rel=preload as=script href="https://www.googletagmanager.com/gtm.js?id=GTM-X">', "https://www.googletagmanager.com/gtm.js", id="link"),
        pytest.param('<script title="x src=/a.js" src="https://www.googletagmanager.com/gtag/js?id=G-1" async></script>', "https://www.googletagmanager.com/gtag/js", id="script"),
    ],
)
def test_an_address_written_inside_another_attribute_neither_hides_nor_fakes_the_real_one(page: str, address: str, chunk: int | None) -> None:
    out = rewrite(f"<p>{page}</p>", chunk=chunk).decode()
    assert f'data-consentmw-src="{address}' in out or f'data-consentmw-href="{address}' in out
    assert live_trackers(out) == set()
    # The other way round: a tracker's address in an alt text does not make the site's image inert.
    own = """<p><img alt='a > b src="https://www.facebook.com/tr"' src="/x.png"></p>"""
    assert rewrite(own, chunk=chunk).decode() == own


@pytest.mark.parametrize(
    "page",
    [
        pytest.param('<img src="https://www.facebook.com/tr?id=1" src="https://www.facebook.com/tr?id=2">', id="img-two-pixels"),
        pytest.param('<iframe src="https://www.googletagmanager.com/ns.html?id=GTM-1" SRC="https://www.googletagmanager.com/ns.html?id=GTM-2"></iframe>', id="iframe"),
    ],
)
def test_a_repeated_src_does_not_take_over_once_the_first_is_moved(page: str) -> None:
    # A browser reads the first of repeated attributes: moving only the first would hand the
    # element to the second, a tracker the page never loaded before.
    out = rewrite(page).decode()
    assert live_tags(out) == [] and " src" not in out.lower().replace("data-consentmw-src", "")
    assert rewrite(page, EVERYTHING).decode() == page


def test_a_policy_pattern_holds_what_it_matches_and_no_other_frame_or_image() -> None:
    policy = load_policy({"version": "1", "categories": [
        {"id": "necessary", "required": True, "name": {"en": "N"}},
        {"id": "analytics", "name": {"en": "Stats"}, "services": [{"id": "own-stats", "match": {"src": ["/stats\\.js$"]}}]},
    ]})
    own = '<iframe src="https://maps.example/embed?q=1"></iframe><img src="https://img.example/a.png" alt="">'
    page = own + '<script src="https://cdn.example/stats.js"></script>'
    held = own + '<script data-consentmw-src="https://cdn.example/stats.js" type="text/plain" data-consentmw-category="analytics"></script>'
    assert HTMLRewriter(policy).rewrite(policy.required, page.encode()) == held.encode()


@pytest.mark.parametrize("page", ["<script src=>fbq('init', '1');</script>", "<script async src=\"\">fbq('init', '1');</script>"])
def test_a_script_with_an_empty_src_runs_nothing_and_is_left_as_written(page: str) -> None:
    # A browser fires the script's error event and never runs the code inside it; held, the
    # banner would run that code after consent, which the page never did.
    assert rewrite(page) == page.encode()


def test_a_valueless_type_is_javascript_and_a_later_type_does_not_count() -> None:
    page = '<script type type="text/plain" src="https://connect.facebook.net/en_US/fbevents.js"></script>'
    assert rewrite(page).decode() == (
        '<script data-consentmw-type data-consentmw-type="text/plain" data-consentmw-src="https://connect.facebook.net/en_US/fbevents.js"'
        ' type="text/plain" data-consentmw-category="advertising"></script>'
    )


# Addresses a browser reads as a tracker's although they are not written the usual way: character
# references (decoded in attribute values), and what the URL parser forgives (spaces, tabs and
# newlines, backslashes, extra slashes, user info, the default port, a trailing dot, percent-escapes
# in the host, dot segments in the path).
GTM_JS = "https://www.googletagmanager.com/gtm.js?id=GTM-X"
GTM_HELD = f"<script async data-consentmw-src='{GTM_JS}' type=\"text/plain\" data-consentmw-category=\"analytics\"></script>"
DISGUISED = [
    "https:&#x2F;&#x2F;www.googletagmanager.com/gtm.js?id=GTM-X",
    "https&colon;&sol;&sol;www.googletagmanager.com/gtm.js?id=GTM-X",
    "https:&#47&#47www.googletagmanager.com/gtm.js?id=GTM-X",
    "https://www.googletagmanager&period;com/gtm&#46;js?id=GTM-X",
    "https://www.google&Tab;tagmanager.com/gtm.js&NewLine;?id=GTM-X",
    "https://www.google\ttagmanager.com/gtm.js?id=GTM-X",
    "\x01https://www.googletagmanager.com/gtm.js?id=GTM-X",
    "https:\\\\www.googletagmanager.com/gtm.js?id=GTM-X",
    "\\\\www.googletagmanager.com/gtm.js?id=GTM-X",
    "///www.googletagmanager.com/gtm.js?id=GTM-X",
    "https://x@www.googletagmanager.com/gtm.js?id=GTM-X",
    "https://shop.example:x@www.googletagmanager.com/gtm.js?id=GTM-X",  # user:password, a host-like user
    "//a:b@www.googletagmanager.com/gtm.js?id=GTM-X",
    "https://www.googletagmanager.com:443/gtm.js?id=GTM-X",
    "https://www.googletagmanager.com./gtm.js?id=GTM-X",
    "https://www.googletagmanager%2Ecom/gtm.js?id=GTM-X",
    "https://www.googletagmanager.com/x/../gtm%2Ejs?id=GTM-X",
    "ht\ntps:/\t/www.googletagmanager.com/gtm.js?id=GTM-X",
    "h&#116;tps://www.googletagmanager.com/gtm.js?id=GTM-X",
    "https:www.googletagmanager.com/gtm.js?id=GTM-X",
]


@pytest.mark.parametrize("chunk", [None, 3])
@pytest.mark.parametrize("address", DISGUISED)
@pytest.mark.parametrize(
    "template",
    [
        '<script async src="{}"></script>',
        '<iframe src="{}" height="0"></iframe>',
        '<p><img src="{}" alt=""></p>',
        '<link rel="preload" as="script" href="{}">',
    ],
)
def test_a_trackers_address_written_another_way_is_still_recognised(template: str, address: str, chunk: int | None) -> None:
    page = template.format(address)
    assert rewrite(page, chunk=chunk).decode() == DISGUISED_HELD[template].format(address)
    assert rewrite(page, EVERYTHING, chunk=chunk).decode() == page


DISGUISED_HELD = {
    '<script async src="{}"></script>': '<script async data-consentmw-src="{}" type="text/plain" data-consentmw-category="analytics"></script>',
    '<iframe src="{}" height="0"></iframe>': '<iframe data-consentmw-src="{}" height="0" data-consentmw-category="analytics"></iframe>',
    '<p><img src="{}" alt=""></p>': '<p><img data-consentmw-src="{}" alt="" data-consentmw-category="analytics"></p>',
    '<link rel="preload" as="script" href="{}">': '<link rel="preload" as="script" data-consentmw-href="{}" data-consentmw-category="analytics">',
}


def test_character_references_in_a_script_type_are_decoded_as_a_browser_does() -> None:
    page = f'<script type="text/javascript&#x20;" src="{GTM_JS}"></script>'
    assert rewrite(page).decode() == (
        f'<script data-consentmw-type="text/javascript&#x20;" data-consentmw-src="{GTM_JS}" type="text/plain" data-consentmw-category="analytics"></script>'
    )


def test_a_resource_hint_written_with_a_character_reference_is_still_a_hint() -> None:
    page = f'<link rel="p&#114;eload" as="script" href="{GTM_JS}">'
    assert rewrite(page).decode() == f'<link rel="p&#114;eload" as="script" data-consentmw-href="{GTM_JS}" data-consentmw-category="analytics">'


@pytest.mark.parametrize("chunk", [None, 1, 4])
@pytest.mark.parametrize("doctype", ["<!DOCTYPE html>", "\ufeff<!doctype html>\n", "<!-- build 7 -->\n<!doctype html>"])
def test_consent_mode_goes_before_the_first_tag_of_a_page_without_head_tags(doctype: str, chunk: int | None) -> None:
    # <html>, <head> and <body> may all be left out of a page; its doctype still makes it a whole
    # document, and an allowed Google tag must not run before the Consent Mode defaults.
    tag = "<script async src='https://www.googletagmanager.com/gtag/js?id=G-1'></script>"
    page = f"{doctype}<meta charset=utf-8>{tag}<title>x</title><p>hi"
    out = rewrite(page, NOBODY | {"analytics"}, chunk=chunk, head=HEAD, body_end=BODY_END).decode()
    assert out == f"{doctype}<meta charset=utf-8>{HEAD.decode()}{tag}<title>x</title><p>hi{BODY_END.decode()}"


@pytest.mark.parametrize("chunk", [None, 1, 4])
@pytest.mark.parametrize("page", ["<!doctype html><html><title>x</title>{}</head><body><p>hi</p></body></html>", "<!doctype html><title>x</title>{}</head><p>hi"])
def test_a_page_without_a_head_tag_gets_the_head_markup_before_its_head_end_tag(page: str, chunk: int | None) -> None:
    out = rewrite(page.format(""), NOBODY, chunk=chunk, head=HEAD, body_end=BODY_END).decode()
    before, after = page.format(HEAD.decode()).rsplit("<p>hi", 1)
    assert out == before + "<p>hi" + after.replace("</body>", BODY_END.decode() + "</body>") + ("" if "</body>" in after else BODY_END.decode())


@pytest.mark.parametrize("chunk", [None, 1, 5])
@pytest.mark.parametrize(
    ("page", "held"),
    [
        # The HTML parser reads <image> as <img>.
        pytest.param(
            '<p><image src="https://www.facebook.com/tr?id=1&amp;ev=PageView"></p>',
            '<p><image data-consentmw-src="https://www.facebook.com/tr?id=1&amp;ev=PageView" data-consentmw-category="advertising"></p>',
            id="image",
        ),
        # An SVG script loads and runs its href.
        pytest.param(
            '<svg><script href="https://www.googletagmanager.com/gtm.js?id=GTM-X"></script></svg>',
            '<svg><script data-consentmw-href="https://www.googletagmanager.com/gtm.js?id=GTM-X" type="text/plain" data-consentmw-category="analytics"></script></svg>',
            id="svg-href",
        ),
        pytest.param(
            '<svg><script xlink:href="https://connect.facebook.net/en_US/fbevents.js"/></svg>',
            '<svg><script data-consentmw-xlink-href="https://connect.facebook.net/en_US/fbevents.js" type="text/plain" data-consentmw-category="advertising"/></svg>',
            id="svg-xlink",
        ),
    ],
)
def test_other_spellings_of_a_tracker_tag_are_made_inert(page: str, held: str, chunk: int | None) -> None:
    assert rewrite(page, chunk=chunk).decode() == held
    assert rewrite(page, EVERYTHING, chunk=chunk).decode() == page


@pytest.mark.parametrize("chunk", [None, 1, 5])
@pytest.mark.parametrize("closed", ['<svg><style/></svg>', '<svg><title/></svg>', '<svg><script href="/icons.js"/></svg>'])
def test_a_self_closed_svg_element_does_not_hide_the_tags_after_it(closed: str, chunk: int | None) -> None:
    # In SVG "<style/>" and "<script/>" are whole elements: what follows is markup, not their text.
    page = f"<body>{closed}<script async src='{GTM_JS}'></script><p>x</p></body>"
    assert rewrite(page, chunk=chunk).decode() == page.replace(f"<script async src='{GTM_JS}'></script>", GTM_HELD)
    assert rewrite(page, EVERYTHING, chunk=chunk).decode() == page


@pytest.mark.parametrize("chunk", [None, 1, 2, 3, 5])
def test_a_comment_closed_with_bang_does_not_hide_the_tag_after_it(chunk: int | None) -> None:
    # Browsers end a comment at "--!>" as well as at "-->".
    page = f"<!-- x --!><script async src='{GTM_JS}'></script><!-- y -->"
    assert rewrite(page, chunk=chunk).decode() == page.replace(f"<script async src='{GTM_JS}'></script>", GTM_HELD)
    assert rewrite(page, EVERYTHING, chunk=chunk).decode() == page


@pytest.mark.parametrize("chunk", [None, 1, 6])
@pytest.mark.parametrize(
    "tag",
    [
        '<img srcset="https://www.facebook.com/tr?id=1&amp;ev=PageView 1x" alt="">',
        '<img src="/s.gif" srcset="/s.gif 1x, https://www.facebook.com/tr?id=1&amp;ev=PageView 2x">',
        '<img data-id="7" srcset="//www.facebook.com/tr?id=1 1x">',
        '<picture><source srcset="https://www.facebook.com/tr?id=1&amp;ev=PageView"><img src="/s.gif"></picture>',
        '<video><source src="https://www.facebook.com/tr?id=1&amp;ev=PageView"></video>',
    ],
)
def test_a_tracker_pixel_in_srcset_or_a_source_is_made_inert(tag: str, chunk: int | None) -> None:
    page = f"<body>{SITE_IMAGES}{tag}{SITE_IMAGES}</body>"
    out = rewrite(page, chunk=chunk).decode()
    assert out.count('data-consentmw-category="advertising"') == 1
    assert not any(f' {a}="{u}' in out for a in ("src", "srcset") for u in ("https://www.facebook", "//www.facebook", "/s.gif 1x, https"))
    assert "https://img.shop.example.kr/p/5.webp" in out
    assert rewrite(page, EVERYTHING, chunk=chunk).decode() == page


def test_consent_mode_denies_the_signals_no_category_can_grant() -> None:
    # A site with Google Analytics but no advertising category: nobody can allow ads, so the ad
    # signals are denied outright instead of being left without a default.
    policy = load_policy({"version": "1", "categories": [
        {"id": "necessary", "required": True, "name": {"en": "N"}},
        {"id": "analytics", "name": {"en": "A"}, "services": [{"id": "google-analytics", "ids": ["G-7QX2LCE5N1"]}]},
    ]})
    default_command = re.search(r"gtag\('consent','default',(\{.*?\})\);", ConsentModeDefaults(policy).code(policy.required | {"analytics"}))
    assert default_command is not None
    state = json.loads(default_command.group(1))
    assert {k: state[k] for k in ("ad_storage", "ad_user_data", "ad_personalization", "analytics_storage")} == {
        "ad_storage": "denied", "ad_user_data": "denied", "ad_personalization": "denied", "analytics_storage": "granted"}
