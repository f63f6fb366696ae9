from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from consentmw import load_policy
from consentmw.core.html import SKIP, HTMLRewriter, is_pixel, safe_image_pattern
from tests.corpus.pages import SNIPPETS, live_trackers, products
from tests.test_rewrite import OTHER_TOOLS, OWN_CODE

POLICY = load_policy("default")
REWRITER = HTMLRewriter(POLICY)
OPTIONAL = [c.id for c in POLICY.categories if not c.required]
HEAD, BODY_END = b"<!--h-->", b"<!--b-->"

PLAIN = [
    "<p>오늘의 특가 상품을 확인하세요.</p>",
    "<div class='a' data-x=\"1 > 0\">x</div>",
    "<!-- a comment with <img src=x> -->",
    "<!---->",  # not "<!-->": the oracle (html.parser) reads past it, browsers end the comment there
    "<br/>",
    "<img src='/a.png' alt='<script>'>",
    products(1),
    "<ul><li><a href=/x>링크</a></li></ul>",
    "<noscript><p>자바스크립트를 켜 주세요</p></noscript>",
    *OWN_CODE,
]
# Already marked by another consent tool: a tracker for the chunking test, not for byte-for-byte.
MARKED = [markup for markup, _, _ in OTHER_TOOLS]
TRACKERS = sorted(SNIPPETS)

allowed_sets = st.sets(st.sampled_from(OPTIONAL)).map(lambda s: POLICY.required | s)
plain_parts = st.lists(st.sampled_from(PLAIN), max_size=8)
any_parts = st.lists(st.sampled_from(PLAIN + MARKED), max_size=8)


@st.composite
def pages(draw: st.DrawFn, trackers: bool = True) -> tuple[bytes, list[str]]:
    head = draw(any_parts if trackers else plain_parts)
    body = draw(plain_parts)
    names = draw(st.lists(st.sampled_from(TRACKERS), max_size=5, unique=True)) if trackers else []
    for name in names:  # each snippet at a random place in head or body
        part = head if SNIPPETS[name].where == "head" and draw(st.booleans()) else body
        part.insert(draw(st.integers(0, len(part))), SNIPPETS[name].text)
    page = "<!DOCTYPE html><html><head>" + "".join(head) + "</head><body>" + "".join(body) + "</body></html>"
    return page.encode(), names


def rewrite(data: bytes, allowed: frozenset[str], cuts: list[int], **kw: bytes) -> bytes:
    stream = REWRITER.stream(allowed, **kw)
    bounds = [0, *sorted(c % (len(data) + 1) for c in cuts), len(data)]
    out = [stream.feed(data[a:b]) for a, b in zip(bounds, bounds[1:])]
    return b"".join(out) + stream.close()


cut_lists = st.lists(st.integers(0, 1 << 20), max_size=40)


@settings(max_examples=150, deadline=None)
@given(pages(), allowed_sets, cut_lists)
def test_output_does_not_depend_on_chunking(page: tuple[bytes, list[str]], allowed: frozenset[str], cuts: list[int]) -> None:
    data, _ = page
    whole = rewrite(data, allowed, [], head=HEAD, body_end=BODY_END)
    assert rewrite(data, allowed, cuts, head=HEAD, body_end=BODY_END) == whole


@settings(max_examples=150, deadline=None)
@given(pages(), allowed_sets, cut_lists)
def test_no_tracker_of_a_refused_category_stays_live(page: tuple[bytes, list[str]], allowed: frozenset[str], cuts: list[int]) -> None:
    data, names = page
    live = live_trackers(rewrite(data, allowed, cuts).decode())
    for name in names:
        assert (name in live) == (SNIPPETS[name].categories <= allowed), name


@settings(max_examples=100, deadline=None)
@given(pages(trackers=False), allowed_sets, cut_lists)
def test_pages_without_trackers_pass_byte_for_byte(page: tuple[bytes, list[str]], allowed: frozenset[str], cuts: list[int]) -> None:
    data, _ = page
    assert rewrite(data, allowed, cuts) == data


TOKENS = [*"<>/!-= \"'\nsScriptimgfrahdbyxl", "<script", "</script", "<!--", "-->", "<IMG SRC=//facebook.com/tr ", "fbq('init')", "<head>", "</body>"]
TAGGY = st.lists(st.sampled_from(TOKENS), max_size=60).map("".join)


@settings(max_examples=200, deadline=None)
@given(st.one_of(TAGGY.map(str.encode), st.binary(max_size=200)), allowed_sets, cut_lists)
def test_any_bytes_rewrite_without_error_and_chunk_independently(data: bytes, allowed: frozenset[str], cuts: list[int]) -> None:
    whole = rewrite(data, allowed, [])
    assert rewrite(data, allowed, cuts) == whole


# Images whose hosts the rewriter has ruled out before are jumped over in one match (from an unknown
# third party's host, only if it is no pixel): whatever the tag, the page must come out as when each
# tag is read by the attribute states (a page fed one byte at a time never holds a whole tag), and
# the same unknown hosts be named as left live.
SITE = (b"www.shop.example", "/p")
PIXEL = "https://www.facebook.com/tr?id=1&amp;ev=PageView"
ADDRESSES = [
    "https://img.shop.example/a.jpg",
    "//img.shop.example/a.jpg?w=1&amp;h=2",
    "HTTPS://IMG.SHOP.EXAMPLE/A.JPG",
    "/a.jpg",
    "a.jpg",
    "",
    PIXEL,
    "//www.facebook.com/tr?id=1",
    "/\\www.facebook.com/tr?id=1",
    "\\\\www.facebook.com/tr?id=1",
    "/\t/www.facebook.com/tr?id=1",
    "&#47;/www.facebook.com/tr?id=1",
    " //www.facebook.com/tr?id=1",
    "https:www.facebook.com/tr?id=1",
    "https:///www.facebook.com/tr?id=1",
    "https://img.shop.example.www.facebook.com/tr?id=1",
    "https://img.shop.example@www.facebook.com/tr?id=1",
    "https://img.shop.example:1@www.facebook.com/tr?id=1",
    "https://img.shop.example%2ewww.facebook.com/tr?id=1",
    "https://img.shop.example\\@www.facebook.com/tr?id=1",
    "https://px.unknown-pixel.example/p.gif",
]
SRCSETS = ["/a.jpg 2x", "https://img.shop.example/a.jpg 640w, /b.jpg 320w", f"/a.jpg 1x, {PIXEL} 2x", "/a.jpg,//www.facebook.com/tr?id=1", "/a.jpg 1x,https://px.unknown-pixel.example/p.gif 2x"]
ADDRESS_ATTRIBUTES = [f'src="{a}"' for a in ADDRESSES] + [f'srcset="{s}"' for s in SRCSETS] + [f"src='{ADDRESSES[0]}'", f"src={ADDRESSES[3]}"]
OTHER_ATTRIBUTES = [
    'alt="a > b"',
    'class="thumb"',
    "loading=lazy",
    'width="1"',
    'style="display:none"',
    'sizes="(max-width: 600px) 50vw"',
    "alt",
    "alt='x\"y'",
    'alt = "src=//www.facebook.com/tr"',
    'class="x optanon-category-C0004"',
    f'data-src="{PIXEL}"',
    'data-consentmw-category="marketing"',
    'data-cookieconsent="statistics"',
    "onerror=\"fetch('https://www.google-analytics.com/g/collect?v=2')\"",
    f'src="{PIXEL}"',  # a second src: the first one loads
]


@st.composite
def image_tags(draw: st.DrawFn) -> str:
    attrs = draw(st.lists(st.sampled_from(OTHER_ATTRIBUTES), max_size=3))
    attrs.insert(draw(st.integers(0, len(attrs))), draw(st.sampled_from(ADDRESS_ATTRIBUTES)))
    seps = draw(st.lists(st.sampled_from([" ", " ", "\n", "/", ""]), min_size=len(attrs), max_size=len(attrs)))
    name = draw(st.sampled_from(["img", "img", "IMG", "image", "source", "iframe"]))
    return "<" + name + "".join(sep + attr for sep, attr in zip(seps, attrs)) + draw(st.sampled_from([">", "/>", " >"]))


def knows_an_image(learned: HTMLRewriter, allowed: frozenset[str], site: tuple[bytes, str]) -> None:
    learned.stream(allowed, page=site).feed(b'<img src="https://img.shop.example/a.jpg">')


def saw_only_new_images(learned: HTMLRewriter, allowed: frozenset[str], site: tuple[bytes, str]) -> None:
    # A shop whose pages show images not seen before: its image verdicts found next to nothing,
    # so its next pages are read with the images jumped over inside SKIP's own match.
    for k in range(4):
        learned.stream(allowed, page=site).feed(b"".join(b'<img src="https://img.shop.example/%d/%d.jpg">' % (k, i) for i in range(40)))


@pytest.mark.parametrize("learn", [knows_an_image, saw_only_new_images])
@settings(max_examples=300, deadline=None)
@given(st.lists(image_tags(), min_size=1, max_size=6), allowed_sets, st.booleans())
def test_images_from_hosts_ruled_out_before_come_out_as_tag_by_tag(learn: Callable[..., None], tags: list[str], allowed: frozenset[str], cdn: bool) -> None:
    page = ("<!DOCTYPE html><html><head></head><body><p>x</p>" + "<br>".join(tags) + "</body></html>").encode()
    # img.shop.example: the site's own host, or (the site on another domain) an unknown third
    # party's, whose images are jumped over all the same but whose pixels are still to be named.
    site = (b"www.shop-mall.example", "/p") if cdn else SITE
    learned = HTMLRewriter(POLICY)
    learn(learned, allowed, site)
    whole = learned.stream(allowed, page=site)  # rewrite() would take the fast path of a visitor who allowed all
    assert (whole.skip is SKIP) == (learn is knows_an_image)
    fresh = HTMLRewriter(POLICY)
    stream = fresh.stream(allowed, page=site)
    tag_by_tag = b"".join(stream.feed(page[i : i + 1]) for i in range(len(page))) + stream.close()
    assert whole.feed(page) + whole.close() == tag_by_tag
    assert learned.trackers.left_live == fresh.trackers.left_live


# An image from an unknown third party's host is jumped over only if it is no pixel: is_pixel's
# verdict, with "=", ":", 0/1, "px", none and hidden anywhere in the tag (names, values, addresses).
PIXEL_BITS = ["1", "0", "1px", "0px", "10", "160", "=", "= ", ":", " : ", "\x0b", "none", "hidden", "display", "visibility", "width", "height", "x", "/", " ", "?w=", "'", '"']
PIXEL_VALUES = ["1", "0", "1px", "0px ", "display:none", "display : none", "visibility:hidden", "visibility:\x0bhidden", "a;display:none", "160", "10", "0.5", "?width=1", "?w=2&height=0px", "a width=1 b", "height= 1px/"]
PIXEL_VALUES += ["01", " 1", "1.0", "001x", "0010", "width:1px;height:1px", "height : 0", "border:0", "width:10px", "h:1", "t:0", "a:1", "height:0"]
NAMES = ["width", "height", "style"] * 3 + ["alt", "class", "sizes", "xml:none", "display:none", "visibility:hidden", "border", "w", "hidden", "hiddenx"]


@st.composite
def third_party_images(draw: st.DrawFn) -> str:
    def value(quote: str) -> str:
        bits = draw(st.lists(st.sampled_from(PIXEL_BITS), max_size=4) | st.sampled_from(PIXEL_VALUES).map(lambda v: [v]))
        # Unquoted, a value runs to HTML's whitespace or a quote; a vertical tab is no whitespace there.
        return "".join(b for b in bits if quote not in b and (quote or not any(c in b for c in " \"'")))

    path = value('"').replace(" ", "")
    attrs = [f'src="https://cdn.other.example/{path}"']
    for _ in range(draw(st.integers(0, 3))):
        quote = draw(st.sampled_from(['"', "'", ""]))
        attrs.append(draw(st.sampled_from(NAMES)) + (f"={quote}{value(quote)}{quote}" if draw(st.booleans()) else ""))
    attrs = draw(st.permutations(attrs))
    return "<img " + " ".join(attrs) + draw(st.sampled_from([">", "/>", " >"]))


@settings(max_examples=500, deadline=None)
@given(third_party_images())
@example('<img src="https://cdn.other.example/p.gif" width=" 1" height=\'\x0c0\'>')  # a browser skips the spaces
@example('<img src="https://cdn.other.example/p.gif" alt="width=\' 1">')  # is_pixel reads values too
def test_a_pixel_from_an_unknown_host_is_never_jumped_over(tag: str) -> None:
    low = tag.encode().lower()
    loud = safe_image_pattern([b"img.shop.example", b"cdn.other.example"], no_pixel=True).match(low)
    if loud is not None:
        assert loud.end() == len(low) and not is_pixel(low, 0, len(low))
        assert safe_image_pattern([b"img.shop.example", b"cdn.other.example"]).match(low) is not None


def test_usual_images_from_an_unknown_host_are_jumped_over() -> None:
    # What keeps a site whose images come from a CDN on another domain as fast as one serving its own.
    loud = safe_image_pattern([b"cdn.other.example"], no_pixel=True)
    for tag in [
        products(1).split("<a", 2)[1].split(">", 1)[1].split("</a>")[0].replace("img.shop.example.kr", "cdn.other.example"),
        '<img src="https://cdn.other.example/a.jpg?w=320&amp;q=80" alt="제주 한라봉: 3kg" width="160" height="120" loading="lazy">',
        '<img src="//cdn.other.example/a.jpg" srcset="//cdn.other.example/b.jpg 2x" sizes="(max-width: 600px) 50vw" style="border:0">',
        '<source srcset="https://cdn.other.example/a.webp 1x, https://cdn.other.example/b.webp 2x" type="image/webp">',
    ]:
        assert loud.match(tag.encode().lower()) is not None, tag
    for tag in ['<img src="https://cdn.other.example/p.gif" width="1" height="1">', '<img src="//cdn.other.example/p.gif" style="display : none">', "<img src=//cdn.other.example/p.gif?height=0>", '<img src="//cdn.other.example/p.gif" width=\x0b1>']:
        assert loud.match(tag.encode().lower()) is None, tag
