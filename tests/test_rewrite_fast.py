"""A visitor who allowed everything gets the insertions alone (the fast path), byte for byte what
the full rewriter sends, whatever the page and however the full rewriter's input is chunked. Under
a policy that leaves categories undeclared (kakaopage: no analytics; nexcore: no advertising), a
tracker of such a category stays inert for everyone, so "everything" is never enough for the fast
path on a page that holds one."""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from consentmw import load_policy
from consentmw.core.html import HTMLRewriter
from tests.corpus.pages import HERE, SNIPPETS, live_trackers, shop_page
from tests.test_markup_differential import HOSTILE, OWN, TRACKERS
from tests.test_rewrite import OTHER_TOOLS, OWN_CODE
from tests.test_rewrite_properties import cut_lists, pages

POLICY = load_policy("default")
REWRITER = HTMLRewriter(POLICY)
EVERYTHING = frozenset(c.id for c in POLICY.categories)
HEAD, BODY_END = b"<!--h-->", b"<!--b-->"
# The default policy declares every category the catalog maps to; these two leave one out.
REWRITERS = {name: HTMLRewriter(load_policy(name)) for name in ("default", "kakaopage", "nexcore")}
policies = st.sampled_from(sorted(REWRITERS))
# Presets that declare no advertising (kakao-enterprise) or no analytics (kakaopage) category.
UNDECLARED = {name: HTMLRewriter(load_policy(name)) for name in ("kakao-enterprise", "kakaopage")}

CORPUS = [
    shop_page(list(SNIPPETS)).encode(),
    shop_page([]).encode(),
    (HERE / "legacy-euckr.html").read_bytes(),
    *(f"<!doctype html><html><head>{m}</head><body>{m}</body></html>".encode() for m, _, _ in OTHER_TOOLS),
    *(f"<html><head></head><body>{m}</body></html>".encode() for m in OWN_CODE),
    # A vanilla-cookieconsent script with its type written with a character reference, on a page
    # whose product cards carry data-category too: the visitor who allowed it gets it switched on.
    b'<!doctype html><html><head><script type="t&#101;xt/plain" data-category="analytics" src="/a.js"></script>'
    b'</head><body><li data-category="fresh">x</li></body></html>',
    b'<html><head><SCRIPT DATA-CATEGORY=analytics TYPE="TEXT/PLAIN">x()</SCRIPT></head><body data-category=x></body></html>',
    b'<html><head></head><body><div data-category="a"><script type=text/plain title=">" data-category=ads></script></div></body></html>',
    # Starts the fast path reads with one match, and look-alikes it must not take for <head>.
    b'\xef\xbb\xbf<!-- a -->\n<!DOCTYPE html>\n<!---->\n<HTML lang="ko" data-x=">"><HEAD class=a>x</HEAD><body></body></HTML>',
    b"<!DOCTYPE html><html><header>x</header><body><p>y</p></body></html>",
    b"<!DOCTYPE html><html><head/><title>t</title><body></body></html>",
    b'<!DOCTYPE html><html onload="fbq()"><head></head><body></body></html>',
    b"<!DOCTYPE html><svg><head></head></svg><body></body>",
    # Cookiebot's marking after a product card's data-category, and before one: switched on all the same.
    b'<!DOCTYPE html><html><head></head><body><li data-category="fresh">x</li>'
    b'<script type="text/plain" data-cookieconsent="statistics" src="https://www.googletagmanager.com/gtag/js?id=G-1"></script></body></html>',
    b'<!DOCTYPE html><html><head></head><body><script type="text/plain" data-cookieconsent="statistics" '
    b'src="https://www.googletagmanager.com/gtag/js?id=G-1"></script><li data-category="fresh">x</li></body></html>',
    # Scripts marked with data-category that only the full attribute grammar reads right: a name
    # that begins with "=" (the quote after it is no value's), a ">" in a quoted value, capitals,
    # before a product card's data-category and after one.
    b'<!doctype html><html><head><script =" x="a>b" data-category=analytics type=text/plain src="/a.js"></script></head>'
    b'<body><li data-category="fresh">x</li></body></html>',
    b'<!doctype html><html><head></head><body><li data-category="fresh">x</li>'
    b'<script =" x="a>b" data-category=analytics type=text/plain src="/a.js"></script></body></html>',
    b'<!doctype html><html><head></head><body><li data-category="fresh">x</li>'
    b'<SCRIPT TYPE=TEXT/PLAIN title="a>b" DATA-Category=analytics SRC="/a.js"></SCRIPT></body></html>',
    # A "<" in a script's attribute name or unquoted value, before its data-category and in runs
    # (the fast path hands such a tag to the tokenizer; read by its own search, runs took quadratic time).
    b'<!doctype html><html><head></head><body><li data-category="fresh">x</li>'
    b"<script <x data-category=analytics type=text/plain src=/a.js></script>" + b"<script a=<script " * 40 + b"></body></html>",
    b'<!doctype html><html><head><script a=b<c data-category=analytics type=text/plain>x()</script></head>'
    b'<body><li data-category="fresh">x</li>' + b'<script title="a" ' * 40 + b"></body></html>",
    # The closing tags far from the end (the fast path looks at the last bytes first).
    b"<!doctype html><html><head></head><body><p>x</p></body>" + b"\n" * 600 + b"</html>\n" + b" " * 600,
    # A pixel named in srcset alone, its address held in data-src: the visitor who allowed it gets a src.
    b'<html><head></head><body><img srcset="https://www.facebook.com/tr?id=1 1x" DATA-SRC="https://www.facebook.com/tr?id=1"></body></html>',
]


def everything(policy: str) -> frozenset[str]:
    return frozenset(c.id for c in REWRITERS[policy].policy.categories)


def fast(data: bytes, policy: str = "default") -> bytes:
    return REWRITERS[policy].rewrite(everything(policy), data, head=HEAD, body_end=BODY_END)


def full(data: bytes, policy: str, cuts: list[int]) -> bytes:
    """What the full rewriter sends for the page cut into chunks at ``cuts``."""
    stream = REWRITERS[policy].stream(everything(policy), head=HEAD, body_end=BODY_END)
    bounds = [0, *sorted(c % (len(data) + 1) for c in cuts), len(data)]
    return b"".join(stream.feed(data[a:b]) for a, b in zip(bounds, bounds[1:])) + stream.close()


def test_the_fast_path_is_taken_for_a_page_with_trackers_and_adds_only_the_insertions() -> None:
    page = shop_page(list(SNIPPETS))
    assert REWRITER._insert_only(EVERYTHING, page.encode(), HEAD, BODY_END, None) is not None
    before, after = page.replace("<head>", "<head>" + HEAD.decode(), 1).rsplit("</body>", 1)
    assert fast(page.encode()) == (before + BODY_END.decode() + "</body>" + after).encode()


@pytest.mark.parametrize(
    ("policy", "tag", "category"),
    [
        ("kakaopage", '<script async src="https://www.googletagmanager.com/gtag/js?id=G-1"></script>', "?analytics"),
        ("nexcore", '<img src="https://www.facebook.com/tr?id=1&ev=PageView" width="1" height="1">', "?advertising"),
    ],
)
def test_a_tracker_of_a_category_the_policy_does_not_declare_stays_inert_for_a_visitor_who_accepted_all(policy: str, tag: str, category: str) -> None:
    page = f"<!DOCTYPE html><html><head>{tag}</head><body><p>x</p></body></html>".encode()
    out = fast(page, policy)
    assert f'data-consentmw-category="{category}"'.encode() in out and live_trackers(out.decode()) == set()
    assert out == full(page, policy, [])


@pytest.mark.parametrize("data", CORPUS)
@settings(max_examples=6, deadline=None)
@given(policy=policies, cuts=cut_lists)
def test_corpus_pages_come_out_as_the_full_rewriter_sends_them(data: bytes, policy: str, cuts: list[int]) -> None:
    assert fast(data, policy) == full(data, policy, cuts)


@settings(max_examples=150, deadline=None)
@given(pages(), policies, cut_lists)
def test_generated_pages_come_out_as_the_full_rewriter_sends_them(page: tuple[bytes, list[str]], policy: str, cuts: list[int]) -> None:
    data, _ = page
    assert fast(data, policy) == full(data, policy, cuts)


hostile = st.lists(st.sampled_from(HOSTILE + OWN + TRACKERS + ["</body>", "</BODY >", "</html>", "<head>", "\n"]), max_size=14).map("".join)


@settings(max_examples=300, deadline=None)
@given(hostile, hostile, policies, cut_lists)
# Found by Hypothesis: the quote before the address ends the title, so the tag ends at the script's
# ">" and the fragment's "</body>" is the one the tokenizer reads to find where head goes.
@example(before='<div title="<head>' + TRACKERS[0] + "</body>", after="", policy="default", cuts=[])
def test_hostile_pages_come_out_as_the_full_rewriter_sends_them(before: str, after: str, policy: str, cuts: list[int]) -> None:
    data = f"<!DOCTYPE html><html><head>{before}</head><body>{after}".encode()
    assert fast(data, policy) == full(data, policy, cuts)
    assert fast(before.encode(), policy) == full(before.encode(), policy, cuts)


def test_a_card_marked_data_category_leaves_the_fast_path_open() -> None:
    page = shop_page(list(SNIPPETS)).encode()
    assert b'data-category="fresh"' in page
    assert REWRITER._insert_only(EVERYTHING, page, HEAD, BODY_END, None) is not None


def test_scripts_of_any_attribute_shape_before_and_after_the_cards_leave_the_fast_path_open() -> None:
    script = b'<script type = "module" src=/m.js data-x=\'a>b\' async></script>'
    page = b"<!DOCTYPE html><html><head>" + script + b'</head><body><li data-category="fresh">x</li>' + script + b"</body></html>"
    assert REWRITER._insert_only(EVERYTHING, page, HEAD, BODY_END, None) is not None
    assert fast(page) == full(page, "default", [])


# Other tools' markings and consentmw's own, after a product card's data-category (the search for them
# starts there).
AFTER_A_CARD = [
    f'<!DOCTYPE html><html><head></head><body><li data-category="fresh">x</li>{m}</body></html>'.encode()
    for m in [markup for markup, _, _ in OTHER_TOOLS] + [
        '<script type="text/plain" data-consentmw-category="analytics" src="/a.js"></script>',
        '<script type="text/plain" data-name="googleAnalytics">ga("create")</script>',  # Klaro, no held address
    ]
]


@pytest.mark.parametrize("page", AFTER_A_CARD)
def test_markings_after_a_cards_data_category_come_out_as_the_full_rewriter_sends_them(page: bytes) -> None:
    assert fast(page) == full(page, "default", [])


@pytest.mark.parametrize("page", [p for p in CORPUS if b"data-cookieconsent" in p and b"fresh" in p])
def test_a_marking_before_or_after_a_cards_data_category_is_switched_on(page: bytes) -> None:
    out = fast(page)
    assert b'type="text/plain"' not in out and b"data-consentmw-category" not in out
    assert out == full(page, "default", [])


@pytest.mark.parametrize("name", UNDECLARED)
@settings(max_examples=40, deadline=None)
@given(page=pages(), cuts=cut_lists)
def test_undeclared_categories_stay_inert_for_a_visitor_who_accepted_all(name: str, page: tuple[bytes, list[str]], cuts: list[int]) -> None:
    rewriter = UNDECLARED[name]
    everything = frozenset(c.id for c in rewriter.policy.categories)
    data, names = page
    whole = rewriter.rewrite(everything, data, head=HEAD, body_end=BODY_END)
    stream = rewriter.stream(everything, head=HEAD, body_end=BODY_END)
    bounds = [0, *sorted(c % (len(data) + 1) for c in cuts), len(data)]
    assert whole == b"".join(stream.feed(data[a:b]) for a, b in zip(bounds, bounds[1:])) + stream.close()
    live = live_trackers(whole.decode())
    for tracker in names:
        assert (tracker in live) == (SNIPPETS[tracker].categories <= everything), tracker
