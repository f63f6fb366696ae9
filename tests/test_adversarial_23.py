"""Adversarial tests against issue 23's speed work on the HTML rewriter (core/html.py): the jumps
over uninteresting markup, the image jump, the event-handler and ping look-ahead and the
accepted-all fast path. Each test asserts what a visitor or a site would notice: a tracker left
live, a pixel not named, output that depends on how the body is cut, a page that costs more than
linear time."""

from __future__ import annotations

import logging
import time

import pytest

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from consentmw import ConsentMiddleware, load_policy
from consentmw.core.html import HTMLRewriter
from consentmw.core.store import MemoryStore
from tests.conftest import SECRET, client_for

POLICY = load_policy("default")
NOBODY = POLICY.required
EVERYTHING = frozenset(c.id for c in POLICY.categories)
SITE = (b"www.shop.example.kr", "/search")
HEAD, BODY_END = b"<!--h-->", b"<!--b-->"


def rewrite(data: bytes, allowed: frozenset[str] = NOBODY, chunk: int = 0, rewriter: HTMLRewriter | None = None) -> bytes:
    stream = (rewriter or HTMLRewriter(POLICY)).stream(allowed, head=HEAD, body_end=BODY_END, page=SITE)
    size = chunk or len(data) or 1
    return b"".join(stream.feed(data[i : i + size]) for i in range(0, len(data), size)) + stream.close()


def seconds(data: bytes, allowed: frozenset[str] = NOBODY) -> float:
    rewriter = HTMLRewriter(POLICY)
    # CPU time of this process: a loaded machine stretches wall time, not this.
    started = time.process_time()
    rewrite(data, allowed, rewriter=rewriter)
    return time.process_time() - started


# -- time ------------------------------------------------------------------------------------------


def test_a_page_echoing_quote_on_runs_costs_linear_time() -> None:
    # A search page (or a JSON blob in a script) echoing what a visitor typed: '"on"on"on...'. The
    # event-handler look-ahead (HANDLER) reads an attribute name from every '"on' to the end of the
    # page (quotes may stand in a name), so 64 KB took seconds. The same bytes without "on" take a
    # millisecond; the bound leaves a hundredfold margin for a loaded machine.
    hostile = b"<p>" + b'"on' * 21845 + b"</p>"
    assert len(hostile) >= 65536
    assert seconds(hostile) < 1.0


def test_a_page_of_ping_attributes_costs_linear_time() -> None:
    # Each stop at a "ping=" (in text, or a tag with one) searched the rest of the page for an
    # event handler again: 256 KB of " ping=" took 4 s, 1 MB a minute. Linear, it is a few ms.
    for unit in (b" ping=", b"<a ping=x>"):
        hostile = b"<p>" + unit * (262144 // len(unit))
        assert seconds(hostile) < 2.0, unit  # linear: 0.03-0.4 s; quadratic it was 4 s


def test_an_image_or_link_whose_value_repeats_src_or_href_costs_linear_time() -> None:
    # The image and link jump's host scan (SRC_HOSTS, HREF_HOSTS) reads each host in a lookahead
    # so that a "src=" inside a value does not hide the real one; but then every "src=" of
    # 'src=src=src=...' reads the rest of the tag again. 32 KB of it: well under a millisecond on
    # 980477d, seconds with the lookahead (64 KB: 22 s).
    for tag in (
        b"<img src=" + b"src=" * 8192 + b">",
        b'<img alt="' + b"src=" * 8192 + b'" src=//cdn.unknown.example/a.png>',
        b"<link rel=preload href=" + b"href=" * 6554 + b">",
    ):
        assert seconds(b"<p>" + tag) < 1.0, tag[:30]


def test_where_head_goes_does_not_depend_on_where_the_body_is_cut() -> None:
    # A document that leaves out <head> (legal HTML) gets head before its first tag that has a
    # closer look. The image jump passes over an image whose alt holds "data-" or "@", the closer
    # look does not (another tool's marking, user info): so the image was jumped when it came
    # whole and looked at when a chunk's end cut it, and head moved with the cut.
    page = b'<!DOCTYPE html><title>x</title><img src="/logo.png" alt="data-driven @ shop"><p>x</p>'
    whole = rewrite(page)
    for chunk in (1, 7, 40):
        assert rewrite(page, chunk=chunk) == whole, chunk


def named_hosts(caplog: pytest.LogCaptureFixture, pages: list[bytes], rewriter: HTMLRewriter | None = None) -> list[str]:
    """The hosts the "left live" warnings name, for an undecided visitor's pages in turn."""
    rewriter = rewriter or HTMLRewriter(POLICY)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="consentmw"):
        for page in pages:
            rewrite(page, rewriter=rewriter)
    return [r.getMessage().split("host ")[1].split(" ")[0] for r in caplog.records if "left live" in r.getMessage()]


@pytest.mark.parametrize(
    "shows_nothing",
    [b"width=1 height=1", b"hidden", b'width="01" height="01"', b'width=" 1" height=" 1"', b'width="1.0" height="1.0"', b'style="width:1px;height:1px"'],
)
def test_a_pixel_of_an_unknown_third_party_is_named_however_it_is_made_invisible(caplog: pytest.LogCaptureFixture, shows_nothing: bytes) -> None:
    # A browser shows nothing of each of these images (the hidden attribute is display:none; "01",
    # " 1" and "1.0" are one pixel by the rules for dimension values): a tracking pixel from a
    # host no catalog knows, which the site is told about like one written width=1 height=1.
    page = b'<!DOCTYPE html><html><head></head><body><img src="https://px.adnet.example/p.gif?id=1" ' + shows_nothing + b"></body></html>"
    assert named_hosts(caplog, [page]) == ["px.adnet.example"]


@pytest.mark.parametrize("style", [b'style="height:0"', b"style='height: 1px'", b'style="margin:0;height:0"'])
def test_a_css_pixel_from_a_third_party_host_seen_before_is_named_when_the_image_comes_whole(caplog: pytest.LogCaptureFixture, style: bytes) -> None:
    # An ad network's banner on one page (its host, unknown to any catalog, is now one the image
    # jump passes over unless the image may be a pixel), its pixel on the next. The closer look
    # names a CSS height of 0 or 1 as a pixel (1-byte chunks, where no image can be jumped, name
    # it); the jump's no_pixel grammar looked for a size only after "h:" or " :", which "height:"
    # ends with neither.
    banner = b'<!DOCTYPE html><html><head></head><body><img src="https://ads.adnet.example/banner.jpg" alt="sale"></body></html>'
    pixel = b'<!DOCTYPE html><html><head></head><body><img src="https://ads.adnet.example/p.gif?id=1" ' + style + b"></body></html>"
    rewriter = HTMLRewriter(POLICY)
    assert named_hosts(caplog, [banner], rewriter) == []
    assert named_hosts(caplog, [pixel], rewriter) == ["ads.adnet.example"]


@pytest.mark.parametrize("style", [b'style="border-width:0"', b'style="line-height:1"', b'style="border-top-width:1px"', b'style="width:1em;height:1em"', b'width="1%"'])
def test_a_visible_image_of_a_third_party_is_not_named_as_a_pixel(caplog: pytest.LogCaptureFixture, style: bytes) -> None:
    # A partner's banner with a border width, a line height, an icon 1em wide or an image 1% of
    # its box shows: naming it as a tracking pixel left live tells the site to declare a host
    # that tracks no one. The closer look took any CSS "width:"/"height:" ending in 0 or 1
    # (border-width, line-height, ...) and any "1" before a unit or "%" for a pixel.
    page = b'<!DOCTYPE html><html><head></head><body><img src="https://img.partner-cdn.example/banner.jpg" ' + style + b"></body></html>"
    assert named_hosts(caplog, [page]) == []


async def test_a_vanilla_cookieconsent_script_with_a_valueless_data_service_is_served() -> None:
    # vanilla-cookieconsent's markup with data-service written without a value: the rewriter read
    # the missing value (None) as text and raised, so every visitor got a 500 for the page.
    page = '<!DOCTYPE html><html><head><script type="text/plain" data-category="analytics" data-service>ga()</script></head><body><p>hi</p></body></html>'

    async def show(request: Request) -> HTMLResponse:
        return HTMLResponse(page)

    app = Starlette(routes=[Route("/", show)])
    app.add_middleware(ConsentMiddleware, secret_key=SECRET, store=MemoryStore())
    async with client_for(app) as client:
        answer = await client.get("/")
    assert answer.status_code == 200 and "<p>hi</p>" in answer.text
    assert 'type="text/plain"' in answer.text  # an undecided visitor: the script stays inert


@pytest.mark.parametrize("tag", [b'<img src="https://www.facebook&#46;com/tr?id=1&ev=PageView" width="1" height="1">', b'<source srcset="https://www.facebook&#46;com/tr?id=1">'])
def test_a_tracker_host_written_with_a_character_reference_stays_inert_after_other_pages(tag: bytes) -> None:
    # A long-lived rewriter had looked up the host as the tag shows it cut at "#" ("www.facebook&",
    # from an earlier page's script) and found no tracker; its next image from that host was then
    # taken for the site's own and left live. A browser decodes "&#46;" and loads Meta's pixel.
    rewriter = HTMLRewriter(POLICY)
    rewrite(b'<script>new Image().src = "https://www.facebook&#46;com/tr";</script>', rewriter=rewriter)
    page = b"<p>" + tag + b"</p>"
    out = rewrite(page, rewriter=rewriter)
    assert out == rewrite(page), "a long-lived rewriter gave another answer than a new one"
    assert b"data-consentmw-src" in out, out


def test_a_tag_inside_a_single_quoted_value_is_no_tag_however_the_body_is_cut() -> None:
    # Until its closing quote comes, a single-quoted value may hold anything: the jump over tags
    # must not read "'x" as an unquoted value and end the tag at the first ">" (the image is text of
    # the title, which a browser never loads; rewriting it would change the title).
    page = b"<p><div title='x><img src=\"https://www.facebook.com/tr?id=1\" width=1 height=1>'>text</div></p>"
    for cut in (0, page.index(b"'>"), page.index(b"<img"), len(page) - 1):
        stream = HTMLRewriter(POLICY).stream(NOBODY, page=SITE)
        assert stream.feed(page[:cut]) + stream.feed(page[cut:]) + stream.close() == page, cut


# -- a long-lived rewriter's verdicts on image tags ----------------------------------------------

GA_HANDLER = b"""onerror="fetch('https://www.google-analytics.com/g/collect?v=2')\""""
META_PIXEL = b'src="https://www.facebook.com/tr?id=1&ev=PageView" width="1" height="1">'


def test_an_image_whose_value_holds_a_gt_is_judged_whole_on_every_page() -> None:
    # The verdict on an image is remembered under its bytes up to the first ">": a safe image whose
    # alt text holds one must not pass its verdict to a pixel written with the same alt text.
    rewriter = HTMLRewriter(POLICY)
    safe = b'<p><img alt="a>b" src="/logo.png"></p>'
    assert rewrite(safe, rewriter=rewriter) == safe
    pixel = b'<p><img alt="a>b" ' + META_PIXEL + b"</p>"
    out = rewrite(pixel, rewriter=rewriter)
    assert b"data-consentmw-src" in out and b' src="https://www.facebook' not in out, out
    assert out == rewrite(pixel)


def test_an_image_with_a_tracking_handler_in_noscript_leaves_no_verdict_for_scripting_pages() -> None:
    # Inside <noscript> a handler never runs, so the same tag may be jumped over there; on the next
    # page, outside <noscript>, its handler runs and must be held.
    rewriter = HTMLRewriter(POLICY)
    tag = b'<img src="/logo.png" ' + GA_HANDLER + b">"
    rewrite(b"<noscript>" + tag + b"</noscript>" * 3, rewriter=rewriter)
    out = rewrite(b"<p>" + tag + b"</p>", rewriter=rewriter)
    assert b"data-consentmw-onerror" in out and b" onerror=" not in out, out


@pytest.mark.parametrize("chunk", [0, 1, 7])
def test_the_same_images_on_many_pages_give_what_a_new_rewriter_gives(chunk: int) -> None:
    rewriter = HTMLRewriter(POLICY)
    images = [
        b'<img src="/p/1.webp" srcset="/p/1@2x.webp 2x" alt="x" width="160" height="160">',
        b'<img src="/p/1.webp" ' + GA_HANDLER + b">",
        b'<img src="/p/1.webp" width="1" height="1">',
        b"<img " + META_PIXEL,
        b'<IMG SRC="/p/1.webp" alt="x" width="160" height="160">',
        b'<source srcset="/p/1.webp 1x, https://www.facebook.com/tr?id=1 2x">',
    ]
    for n in range(3):
        for first in range(len(images)):
            page = b"<p>" + b"".join(images[first:] + images[:first]) + b"</p>"
            assert rewrite(page, chunk=chunk, rewriter=rewriter) == rewrite(page, chunk=chunk), (n, first)


# -- CDATA sections in SVG -------------------------------------------------------------------------

FBQ = b"new Image().src='https://www.facebook.com/tr?id=1&ev=PageView';fbq('init','1');"


@pytest.mark.parametrize(
    "page",
    [
        b"<svg><script><![CDATA[ if (1 > 0) {} " + FBQ + b" ]]></script></svg>",
        b"<svg><script><![CDATA[ if (1 > 0) {} ]]>" + FBQ + b"</script></svg>",
        b"<svg><script><![CDATA[ a > b ]]><![CDATA[ " + FBQ + b" ]]></script></svg>",
        b"<svg><script><![CDATA[ 1 </script>/; " + FBQ + b" ]]></script></svg>",
    ],
)
@pytest.mark.parametrize("chunk", [0, 1, 7])
def test_an_svg_script_whose_cdata_section_holds_a_gt_is_judged_on_all_its_code(page: bytes, chunk: int) -> None:
    # Chromium runs an SVG script's CDATA section as its code (it fetched the Meta pixel from these
    # pages as rewritten): the script was judged on its code up to the section's first ">" only.
    out = rewrite(page, chunk=chunk)
    assert out.count(b'<script type="text/plain" data-consentmw-category="advertising">') == 1, out
    assert rewrite(page, EVERYTHING, chunk=chunk) == page


@pytest.mark.parametrize("unit", [b"<svg><![CDATA[>", b"<math><![CDATA[x>", b"<svg><![CDATA[><noscript>", b"<svg><script><![CDATA[</script><svg>"])
def test_nested_cdata_sections_cost_linear_time_and_raise_nothing(unit: bytes) -> None:
    # The text of a CDATA section after its first ">" is read again as HTML (where the tree builder
    # may have left foreign content) by a stream of its own; a section inside that text had one
    # inside that one, and so on: 400 nested sections (6 KB) raised RecursionError (a 500 for
    # every visitor), 300 took 0.2 s (quadratic).
    page = unit * 6000
    started = time.process_time()
    out = HTMLRewriter(POLICY).rewrite(NOBODY, page, page=SITE)
    assert time.process_time() - started < 2.0
    assert len(out) >= len(page)


@pytest.mark.parametrize("depth", [1, 2, 50])
@pytest.mark.parametrize("chunk", [0, 1])
def test_a_pixel_inside_nested_cdata_sections_read_as_html_stays_inert(depth: int, chunk: int) -> None:
    # Where the browser reads each section's start as a bogus comment, the pixel is an HTML image.
    page = b"<p>" + b"<svg></p><![CDATA[>" * depth + b'<img src="https://www.facebook.com/tr?id=1&ev=PageView" width="1" height="1">'
    out = rewrite(page, chunk=chunk)
    assert b' src="https://www.facebook.com' not in out and b"data-consentmw-src" in out, out


def test_a_noscript_read_inside_a_cdata_sections_text_leaves_no_verdict_for_other_pages() -> None:
    # Inside a CDATA section's text a nested section is read on in the same stream, without
    # scripting inside <noscript>; elsewhere that section's text has a stream of its own, with
    # scripting. A long-lived rewriter keeps a <noscript>'s rewritten content: not across the two.
    inner = b"""<noscript><svg><![CDATA[><img src=/a.png onerror="fbq('track')"></noscript>"""
    rewriter = HTMLRewriter(POLICY)
    rewrite(b"<svg><![CDATA[>" + inner + b"]]></svg>", rewriter=rewriter)
    assert rewrite(b"<p>" + inner, rewriter=rewriter) == rewrite(b"<p>" + inner)


@pytest.mark.parametrize("tag", [b'<img src="/%x.png">', b'<img src="/uploads/%x.webp" alt="' + b"x" * 150 + b'">'])
def test_a_long_lived_rewriter_forgets_image_verdicts_past_their_bound(tag: bytes) -> None:
    # A site whose pages show ever new images (uploads, a large catalog) must not grow the process.
    # The bound once counted only the tags' bytes: a short tag's verdict costs five times its bytes
    # (the key's object, the dict's entry), and short, ever new tags held 1.3 MB, not 256 KB (80 MB
    # for the 64 sites a process keeps).
    import tracemalloc

    rewriter = HTMLRewriter(POLICY)
    rewrite(b'<p><img src="/warm.png"></p>', rewriter=rewriter)
    tracemalloc.start()
    try:
        before, most = tracemalloc.get_traced_memory()[0], 0
        for n in range(20):
            rewrite(b"<p>" + b"".join(tag % (n * 1000 + i) for i in range(1000)) + b"</p>", rewriter=rewriter)
            most = max(most, tracemalloc.get_traced_memory()[0] - before)
    finally:
        tracemalloc.stop()
    assert most < 600_000, f"{most:,} bytes kept for 20,000 distinct image tags"
