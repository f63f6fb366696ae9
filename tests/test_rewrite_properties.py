from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from consentmw import load_policy
from consentmw.core.html import HTMLRewriter
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
