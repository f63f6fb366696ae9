"""The rewriter reads markup as browsers do: each page below hides a tracker behind markup that
an ad-hoc scanner misreads, and html5lib (the HTML standard's parser) says what loads."""

from __future__ import annotations

import asyncio
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consentmw import ConsentMiddleware, load_policy
from consentmw.core.html import SIMPLE_ATTRIBUTES, TAG_REST, HTMLRewriter
from consentmw.core.store import MemoryStore
from tests.html_oracle import loads, shape
from tests.test_hostile import call

POLICY = load_policy("default")
REWRITER = HTMLRewriter(POLICY)
NOBODY = POLICY.required
EVERYTHING = frozenset(c.id for c in POLICY.categories)
GTAG = '<script async src="https://www.googletagmanager.com/gtag/js?id=G-7QX2LCE5N1"></script>'
PIXEL = "https://www.facebook.com/tr?id=402918374651238&ev=PageView&noscript=1"
TRACKER_HOSTS = ("googletagmanager.com", "facebook.com", "facebook.net")


def rewrite(page: str, allowed: frozenset[str] = NOBODY, chunk: int = 0) -> str:
    data = page.encode()
    stream = REWRITER.stream(allowed)
    size = chunk or len(data) or 1
    return (b"".join(stream.feed(data[i : i + size]) for i in range(0, len(data), size)) + stream.close()).decode()


def trackers_loaded(page: str) -> list[str]:
    return [x for x in loads(page) if x.startswith("src ") and any(h in x for h in TRACKER_HOSTS)]


# Markup before a tracker that browsers read as text, attribute values or closed constructs.
BEFORE_GTAG = {
    "comment opener in a double-quoted value": '<div title="<!--"></div>',
    "script tag in a single-quoted value": "<span title='<script>'></span>",
    "bogus comment holding <!--": "<! <!-- >",
    "processing instruction holding <!--": "<?php <!-- ?>",
    "end tag with an attribute holding <!--": '</div title="<!--">',
    "CDATA outside foreign content": "<![CDATA[<!--]]>",
    "noscript holding an unclosed comment": "<noscript><!--</noscript>",
    "script/ with a comment opener in a string": '<script/>var a="<!--";</script>',
    "style/ holding a textarea start tag": "<style/><textarea></style>",
    "script double escape": '<script>"<!--<script>"</script> <!-- "</script>',
    "unquoted value ending in a slash": "<title/x/></title>",
    "</script> with an attribute holding >": '<script>1</script title=">">',
    "svg title is an integration point": "<svg><title><style>x</style></title></svg>",
    "textarea inside svg is no RCDATA": "<svg><textarea></svg>",
    "uppercase and odd spacing": "<DIV\fTITLE='<!--'\n>x</DIV>",
    "spaces around = before a quoted value holding <script>": '<div a = "x><script>y">z</div>',
    "a space after = before a quoted value holding <!--": "<p b= '<!--'>",
    "</titlex> does not end a title": "<title></titlex><!--</title>",
    "</style-> does not end a style": "<style></style-><!--</style>",
    "<!--> in a script ends its escape at once": "<script><!--><script></script>",
    "<!---> in a script ends its escape at once": "<script><!---><script></script>",
    "an empty end tag </>, which is nothing": "<p>x</>y</p>",
    "text holding on= right before a tag": "<p>switch on=",
    "= right after a quoted value starts a name": '<div title="x"="a>',
    "= after an unquoted value and a space starts a name": '<div a=b ="x><p a=b ="y>',
    "nested svg groups and a stray end tag": "<svg><g><g></g></g></svg><svg></g></svg>",
    "a template script holding an HTML comment": '<script type="text/template"><!-- one row --><li></li></script>',
}
# Trackers that load although markup before them looks like it hides them.
HIDDEN_ELSEWHERE = {
    "style in SVG is no raw text": f"<svg><style><img src={PIXEL}>",
    "a '>' inside a quoted value": f'<img alt=a" title=">" src="{PIXEL}">',
    "script in SVG is markup": f'<svg><script>"<img src="{PIXEL}">"</script></svg>',
    "pixel in noscript (visitors without JavaScript)": f'<noscript><img src="{PIXEL}"></noscript>',
    "mathml text integration point": f"<math><mi><textarea></textarea><img src={PIXEL}></mi></math>",
    "CDATA in SVG hides a comment opener": f"<svg><![CDATA[<!--]]></svg><img src={PIXEL}>",
    "an end tag the tree builder ignores": '<svg><script><desc><div title="x"></script><iframe src="https://www.googletagmanager.com/ns.html?id=GTM-1"></iframe>',
    "</p> in SVG, as parsers before it left foreign content read it": f"<svg></p><title>{GTAG}",
    "a pixel inside an SVG script's code": f'<svg><script><div title="x"><img src="{PIXEL}" height=1>{GTAG}',
    "after <!--->, a whole comment, before the next -->": f"<!--->{GTAG}<!-- -->",
    "after <!-->, a whole comment, before the next -->": f"<!-->{GTAG}<!-- -->",
    "style in SVG after a CDATA section": f"<svg><![CDATA[x]]><style><img src={PIXEL}></style></svg>",
    "an SVG circle with a color attribute stays in SVG": f'<svg><circle r="4" color="red"/><style><img src={PIXEL}></style></svg>',
    "a pixel in a page's second noscript": f'<noscript><p>Enable JavaScript</p></noscript><noscript><img src="{PIXEL}"></noscript>',
    "an end tag of an SVG element closed in an earlier svg": f"<svg><title>a</title></svg><svg></title><style><img src={PIXEL}></style></svg>",
}


@pytest.mark.parametrize("before", BEFORE_GTAG.values(), ids=BEFORE_GTAG.keys())
def test_a_tracker_after_misleading_markup_is_made_inert(before: str) -> None:
    page = f"<!DOCTYPE html><html><head></head><body>{before}{GTAG}<p>x</p></body></html>"
    assert trackers_loaded(page)  # a browser loads it
    for chunk in (0, 1, 7):
        out = rewrite(page, chunk=chunk)
        assert trackers_loaded(out) == [], out
        assert shape(out) == shape(page)  # nothing but the tracker's attributes changed
    assert rewrite(page, EVERYTHING) == page


@pytest.mark.parametrize("page", HIDDEN_ELSEWHERE.values(), ids=HIDDEN_ELSEWHERE.keys())
def test_a_tracker_inside_misleading_markup_is_made_inert(page: str) -> None:
    assert trackers_loaded(page)
    for chunk in (0, 1, 5):
        out = rewrite(page, chunk=chunk)
        assert trackers_loaded(out) == [], out
        assert shape(out) == shape(page)
    assert rewrite(page, EVERYTHING) == page


# Markup that looks like a tracker tag but is text: it must come out unchanged.
NOT_TAGS = {
    "in a textarea": f'<textarea>{GTAG}</textarea>',
    "in a title": f"<title>{GTAG}</title>",
    "in a comment with --!>": f"<!-- --!{GTAG}-->",
    "in an xmp": f"<xmp>{GTAG}</xmp>",
    "in an iframe's text": f"<iframe>{GTAG}</iframe>",
    "in an escaped script": "<script><!-- <script>var n = 1;</script> --></script>",
    "after plaintext": f"<plaintext>{GTAG}",
    "in an attribute value": f"<div title='{GTAG}'></div>",
    "in a bogus comment": f"<!{GTAG.replace('>', '')}>",
    "in a style after a self-closed svg": f"<svg/><style>{GTAG}</style>",
    "in a style after a self-closed math": f"<math />x<style>{GTAG}</style>",
    "in a style after a <font color> that leaves SVG": f"<p>some text</p><svg><font size=2 color=red><style>{GTAG}</style>",
    "in an attribute of a custom element whose name starts with z": f"<zoo-card title='{GTAG}'></zoo-card>",
    "in a value after a name, a space and a name starting with -": f"<div a -='x>{GTAG}'></div>",
}


@pytest.mark.parametrize("page", NOT_TAGS.values(), ids=NOT_TAGS.keys())
def test_tracker_markup_that_is_text_passes_unchanged(page: str) -> None:
    assert trackers_loaded(page) == []
    for chunk in (0, 1, 3):
        assert rewrite(page, chunk=chunk) == page


@pytest.mark.parametrize("chunk", [0, 1, 5])
def test_an_inline_tracker_script_the_page_never_closes_is_made_inert(chunk: int) -> None:
    page = "<!DOCTYPE html><html><head></head><body><p>x</p><script>fbq('init', '402918374651238'); fbq('track', 'PageView');"
    held = page.replace("<script>", '<script type="text/plain" data-consentmw-category="advertising">')
    assert rewrite(page, chunk=chunk) == held
    assert rewrite(page, EVERYTHING, chunk=chunk) == page


def test_a_long_inline_script_is_classified_on_its_first_bytes_without_waiting_for_its_end() -> None:
    # A stream holds an inline script back until it is classified: on its first inline_limit bytes,
    # not on the whole script, which could be megabytes sent over minutes.
    stream = HTMLRewriter(POLICY, inline_limit=1024).stream(NOBODY)
    out = stream.feed(b"<p>x</p><script>fbq('init', '402918374651238');" + b"var pad = 0;" * 200)
    out += stream.feed(b"var pad = 1;" * 200)
    assert out.startswith(b'<p>x</p><script type="text/plain" data-consentmw-category="advertising">fbq(')
    assert len(out) > 2048


def test_a_stream_sends_each_complete_tag_at_once() -> None:
    # Nothing is held back but a token cut by the chunk's end: a page streamed slowly shows as it comes.
    stream = REWRITER.stream(NOBODY)
    assert stream.feed(b"<p class=a>hello</p><div id=x>world</div><img src=/a.png>") == b"<p class=a>hello</p><div id=x>world</div><img src=/a.png>"
    # A tag cut by the chunk's end goes out with the chunk that ends it.
    assert stream.feed(b"<p>a</p><img src=/a.png") == b"<p>a</p>"
    assert stream.feed(b" alt=x><p>b</p><b") == b"<img src=/a.png alt=x><p>b</p>"
    assert stream.feed(b">x<p>c</p>") == b"<b>x<p>c</p>"
    assert stream.close() == b""


@pytest.mark.parametrize(("first", "rest"), [(b"<title>hello", b" world</title>"), (b"<style>a{}", b"b{}</style>"), (b"<textarea>abc", b"def</textarea>")])
def test_a_stream_sends_the_text_of_a_title_style_or_textarea_as_it_comes(first: bytes, rest: bytes) -> None:
    stream = REWRITER.stream(NOBODY)
    assert stream.feed(first) == first
    assert stream.feed(rest) == rest
    assert stream.close() == b""


def test_a_noscript_streamed_in_pieces_comes_out_once() -> None:
    stream = REWRITER.stream(NOBODY)
    out = stream.feed(b"<noscript><p>a") + stream.feed(b"b</p></noscript><p>") + stream.close()
    assert out == b"<noscript><p>ab</p></noscript><p>"


def test_what_follows_a_noscript_tag_cut_by_the_chunks_end_goes_out_with_the_chunk() -> None:
    stream = REWRITER.stream(NOBODY)
    assert stream.feed(b"<p>a</p><nosc") == b"<p>a</p>"
    assert stream.feed(b"ript><p>b</p></noscript><p>c</p>") == b"<noscript><p>b</p></noscript><p>c</p>"
    assert stream.close() == b""


def test_an_svg_script_loses_the_href_the_preload_scanner_fetches() -> None:
    page = '<svg><script href="https://www.googletagmanager.com/gtag/js?id=G-1"></script></svg>'
    out = rewrite(page)
    assert trackers_loaded(page) and trackers_loaded(out) == []
    assert out == page.replace(' href="', ' data-consentmw-href="').replace('"></script>', '" type="text/plain" data-consentmw-category="analytics"></script>')


def test_an_image_preload_loses_its_imagesrcset() -> None:
    page = f'<link rel="preload" as="image" imagesrcset="{PIXEL} 1x, /a.png 2x">'
    out = rewrite(page)
    assert trackers_loaded(page) and trackers_loaded(out) == []
    assert out == page.replace(" imagesrcset=", " data-consentmw-imagesrcset=").replace('2x">', '2x" data-consentmw-category="advertising">')


def test_a_start_tag_over_64_kib_cut_across_chunks_is_examined() -> None:
    page = f'<img alt="{"x" * 70_000}" src="{PIXEL}">'
    for chunk in (1024, 65536):
        assert trackers_loaded(rewrite(page, chunk=chunk)) == []


GTAG_URL = "https://www.googletagmanager.com/gtag/js?id=G-7QX2LCE5N1"
# Inline code that loads a tracker from an address written out anywhere in it.
ADDRESS_IN_CODE = {
    "a variable that becomes a src": f"var u = '{GTAG_URL}'; var s = document.createElement('script'); s.src = u;",
    "dynamic import": f"import('{GTAG_URL}');",
    "a loader function": f"load(`{GTAG_URL}`, function () {{}});",
    "document.write of a tag": "document.write('<script src=\"" + GTAG_URL.replace("/", "\\/") + "\"><\\/script>');",
    "full-width host": "var u = '//www.googletagmanager\uff0ecom/gtag/js?id=G-1'.normalize('NFKC');".replace("\\uff0e", "\uff0e"),
}


@pytest.mark.parametrize("code", ADDRESS_IN_CODE.values(), ids=ADDRESS_IN_CODE.keys())
def test_inline_code_holding_a_tracker_address_is_made_inert(code: str) -> None:
    page = f"<script>{code}</script>"
    assert rewrite(page) == f'<script type="text/plain" data-consentmw-category="analytics">{code}</script>'
    assert rewrite(page, EVERYTHING) == page


def test_an_import_map_pointing_at_a_tracker_is_made_inert() -> None:
    page = f'<script type="importmap">{{"imports": {{"ga": "{GTAG_URL}"}}}}</script><script type="module">import "ga";</script>'
    out = rewrite(page)
    assert out.startswith('<script data-consentmw-type="importmap" type="text/plain" data-consentmw-category="analytics">')
    assert rewrite(page, EVERYTHING) == page


# Spellings of googletagmanager.com that a browser's URL parser maps to it (UTS #46, percent-decoding).
HOST_SPELLINGS = {
    "ideographic full stop": "www.googletagmanager\u3002com",
    "full-width letters": "www.\uff47\uff4f\uff4f\uff47\uff4c\uff45tagmanager.com",
    "soft hyphen": "www.google\u00adtagmanager.com",
    "trailing dot": "www.googletagmanager.com.",
    "percent-encoded dot": "www.googletagmanager%2Ecom",
    "percent-encoded full stop": "www.googletagmanager%E3%80%82com",
    "upper case": "WWW.GoogleTagManager.COM",
}


@pytest.mark.parametrize("host", HOST_SPELLINGS.values(), ids=HOST_SPELLINGS.keys())
def test_a_tracker_host_spelled_as_browsers_read_it_is_recognised(host: str) -> None:
    for page in (f'<script src="https://{host}/gtag/js?id=G-1"></script>', f'<img src="https://{host}/ns.html?id=GTM-1">'):
        held = page.replace(" src=", " data-consentmw-src=").replace('1">', '1"' + (' type="text/plain"' if page.startswith("<script") else "") + ' data-consentmw-category="analytics">')
        assert rewrite(page) == held


def test_an_inline_svg_script_that_runs_a_tracker_is_made_inert() -> None:
    code = "(adsbygoogle = window.adsbygoogle || []).push({});"
    # An SVG script's code is its own text, around the elements in it (whose end tags do not end it).
    for page in (
        f"<svg><svg></svg><script>{code}</script></svg>",
        f"<svg><script>{code}<g></g></script></svg>",
        f"<svg><script><title>x</title>{code}</script></svg>",
        f"<svg><script><text>a</text>{code}</script></svg>",
    ):
        for chunk in (0, 1, 4):
            out = rewrite(page, chunk=chunk)
            assert out.startswith(page[: page.index("<script>")] + '<script type="text/plain" data-consentmw-category="advertising">'), out


def untyped_app(body: bytes, chunks: int = 1) -> ConsentMiddleware:
    async def app(scope: dict, receive: object, send: object) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"x-app", b"1")]})
        size = len(body) // chunks + 1
        parts = [body[i : i + size] for i in range(0, len(body), size)] or [b""]
        for i, part in enumerate(parts):
            await send({"type": "http.response.body", "body": part, "more_body": i < len(parts) - 1})

    return ConsentMiddleware(app, secret_key="markup-test-secret-0123456789abcdef", store=MemoryStore())


@pytest.mark.parametrize("chunks", [1, 3])
@pytest.mark.parametrize("start", ["<!DOCTYPE html>", "\n  <html>", "<HEAD>", "<script>", "<p>", "<!-- x -->"])
def test_a_page_sent_without_content_type_is_read_as_html_as_browsers_sniff_it(start: str, chunks: int) -> None:
    page = f"{start}<head></head><body>{GTAG}</body>"
    answer = asyncio.run(call(untyped_app(page.encode(), chunks), "GET", "/"))
    assert trackers_loaded(answer.text) == [], answer.text
    assert answer.headers("content-type") == ["text/html"]


@pytest.mark.parametrize("body", [b'{"html": "<script src=\\"https://www.googletagmanager.com/gtag/js?id=G-1\\">"}', b"", b"<?xml version='1.0'?><x/>"])
def test_a_body_without_content_type_that_browsers_do_not_take_for_html_passes_as_it_came(body: bytes) -> None:
    answer = asyncio.run(call(untyped_app(body), "GET", "/"))
    assert answer.body == body
    assert answer.headers("content-type") == [] and answer.headers("x-app") == ["1"]


ATTRIBUTE_SOUP = st.lists(st.sampled_from([" ", "\n", "/", "=", '"', "'", ">", "a", "b-c", "<", "x=y", "&", "\t"]), max_size=16).map("".join)


@settings(max_examples=400, deadline=None)
@given(ATTRIBUTE_SOUP)
def test_a_tag_jumped_over_ends_where_the_attribute_states_end_it(soup: str) -> None:
    # The jump over tags that load nothing (SKIP) reads their attributes with a shortcut grammar:
    # wherever it takes a tag, the tag must end where the tokenizer's attribute states end it.
    tag = f"<div {soup}>".encode()
    jumped = re.compile(rb"<div " + SIMPLE_ATTRIBUTES + rb">").match(tag)
    if jumped is not None:
        exact = TAG_REST.match(tag, 4)
        assert exact is not None and exact.end() == jumped.end(), tag


def test_what_the_rewriter_remembers_across_pages_is_bounded() -> None:
    # Pages that differ per visitor (a name in a <noscript>, tracker ids) on
    # many sites must not grow the process without end.
    rewriter = HTMLRewriter(POLICY)
    for i in range(1100):
        scripts = "".join(f'<script async src="https://www.googletagmanager.com/gtag/js?id=G-{i}-{j}"></script>' for j in range(4))
        page = f'<noscript><img src="/own.png" alt="visitor {i}"></noscript>{scripts}<img src="https://cdn.shop{i % 100}.example/a.png">'
        rewriter.rewrite(NOBODY, page.encode(), page=(f"shop{i % 100}.example".encode(), "/"))
    assert (len(rewriter.noscripts), len(rewriter.script_tags), len(rewriter.rewritten)) == (1024, 4096, 4096)
    assert (len(rewriter._safe_hosts), len(rewriter._safe_images)) == (64, 64)


def test_a_font_tag_that_begins_a_chunk_in_svg_is_read() -> None:
    # The rewriter drops what it has sent; a <font> in SVG right at the start of the next chunk
    # is where the buffer begins: it must be read there like anywhere else.
    first = "<svg><text>" + "x" * 5000
    rest = f"<font title=x><style><img src={PIXEL}></style></svg>"
    assert trackers_loaded(first + rest)
    stream = REWRITER.stream(NOBODY)
    out = (stream.feed(first.encode()) + stream.feed(rest.encode()) + stream.close()).decode()
    assert trackers_loaded(out) == [] and shape(out) == shape(first + rest), out
