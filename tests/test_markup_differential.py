"""Differential: on generated hostile documents around tracker tags, html5lib (the standard's
parser) and the rewriter must agree on what loads: after rewriting, no tracker loads for a visitor
who refused, everything else loads as before, and the document has the same shape."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.html_oracle import loads, shape
from tests.test_markup import EVERYTHING, PIXEL, TRACKER_HOSTS, rewrite

TRACKERS = [
    '<script async src="https://www.googletagmanager.com/gtag/js?id=G-7QX2LCE5N1"></script>',
    f'<img src="{PIXEL}" height=1>',
    f"<img src={PIXEL}>",
    '<iframe src="https://www.googletagmanager.com/ns.html?id=GTM-1"></iframe>',
    '<link rel="preload" as="script" href="https://connect.facebook.net/en_US/fbevents.js">',
    "<script>fbq('init', '402918374651238');</script>",
]
OWN = ['<script src="/static/app.js"></script>', '<img src="/logo.png">', "<script>var n = 1 < 2;</script>", "<p>text</p>"]
# Fragments that switch the tokenizer's state, or look as if they do.
HOSTILE = [
    '<div title="', "<span title='", '"', "'", ">", "<!--", "-->", "--!>", "<!-->", "<!", "<?", "</", "</div x='>'>",
    "<script>", "</script>", "<script/>", "<style>", "</style>", "<style/>", "<textarea>", "</textarea>", "<title>",
    "</title>", "<xmp>", "</xmp>", "<noscript>", "</noscript>", "<iframe>", "</iframe>", "<svg>", "</svg>", "<svg/>",
    "<math>", "</math>", "<mi>", "</mi>", "<foreignObject>", "</foreignObject>", "<desc>", "<![CDATA[", "]]>",
    "<b>", "</p>", "<br>", "<a href=/x/>", "<img alt=a\" title=\">\" ", "<!DOCTYPE html>", "<head>", "</head>", "<body>",
    "x", " ", "\n", "=", "/", '<div a = "', "<p b= '", '<i c ="', '<b d="e"="', "<u =",
]


@st.composite
def documents(draw: st.DrawFn) -> str:
    parts = draw(st.lists(st.sampled_from(HOSTILE + OWN), max_size=12))
    for tag in draw(st.lists(st.sampled_from(TRACKERS), min_size=1, max_size=3)):
        parts.insert(draw(st.integers(0, len(parts))), tag)
    return "".join(parts)


def is_tracker(load: str) -> bool:
    return any(h in load for h in TRACKER_HOSTS) or "fbq(" in load


@settings(max_examples=300, deadline=None)
@given(documents(), st.sampled_from([0, 1, 3, 17]))
def test_rewriter_and_html5lib_agree_on_what_loads(page: str, chunk: int) -> None:
    out = rewrite(page, chunk=chunk)
    before, after = loads(page), loads(out)
    assert [x for x in after if is_tracker(x)] == [], out
    assert after == [x for x in before if not is_tracker(x)], out
    assert shape(out) == shape(page), out
    assert rewrite(page, EVERYTHING, chunk=chunk) == page
