"""A visitor who allowed everything gets the insertions alone (the fast path), byte for byte what
the full rewriter sends, whatever the page and however the full rewriter's input is chunked."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from consentmw import load_policy
from consentmw.core.html import HTMLRewriter
from tests.corpus.pages import HERE, SNIPPETS, shop_page
from tests.test_markup_differential import HOSTILE, OWN, TRACKERS
from tests.test_rewrite import OTHER_TOOLS, OWN_CODE
from tests.test_rewrite_properties import cut_lists, pages, rewrite

POLICY = load_policy("default")
REWRITER = HTMLRewriter(POLICY)
EVERYTHING = frozenset(c.id for c in POLICY.categories)
HEAD, BODY_END = b"<!--h-->", b"<!--b-->"

CORPUS = [
    shop_page(list(SNIPPETS)).encode(),
    shop_page([]).encode(),
    (HERE / "legacy-euckr.html").read_bytes(),
    *(f"<!doctype html><html><head>{m}</head><body>{m}</body></html>".encode() for m, _, _ in OTHER_TOOLS),
    *(f"<html><head></head><body>{m}</body></html>".encode() for m in OWN_CODE),
]


def fast(data: bytes) -> bytes:
    return REWRITER.rewrite(EVERYTHING, data, head=HEAD, body_end=BODY_END)


def test_the_fast_path_is_taken_for_a_page_with_trackers_and_adds_only_the_insertions() -> None:
    page = shop_page(list(SNIPPETS))
    assert REWRITER._insert_only(EVERYTHING, page.encode(), HEAD, BODY_END, None) is not None
    before, after = page.replace("<head>", "<head>" + HEAD.decode(), 1).rsplit("</body>", 1)
    assert fast(page.encode()) == (before + BODY_END.decode() + "</body>" + after).encode()


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(CORPUS), cut_lists)
def test_corpus_pages_come_out_as_the_full_rewriter_sends_them(data: bytes, cuts: list[int]) -> None:
    assert fast(data) == rewrite(data, EVERYTHING, cuts, head=HEAD, body_end=BODY_END)


@settings(max_examples=150, deadline=None)
@given(pages(), cut_lists)
def test_generated_pages_come_out_as_the_full_rewriter_sends_them(page: tuple[bytes, list[str]], cuts: list[int]) -> None:
    data, _ = page
    assert fast(data) == rewrite(data, EVERYTHING, cuts, head=HEAD, body_end=BODY_END)


hostile = st.lists(st.sampled_from(HOSTILE + OWN + TRACKERS + ["</body>", "</BODY >", "</html>", "<head>", "\n"]), max_size=14).map("".join)


@settings(max_examples=300, deadline=None)
@given(hostile, hostile, cut_lists)
def test_hostile_pages_come_out_as_the_full_rewriter_sends_them(before: str, after: str, cuts: list[int]) -> None:
    data = f"<!DOCTYPE html><html><head>{before}</head><body>{after}".encode()
    assert fast(data) == rewrite(data, EVERYTHING, cuts, head=HEAD, body_end=BODY_END)
    assert fast(before.encode()) == rewrite(before.encode(), EVERYTHING, cuts, head=HEAD, body_end=BODY_END)
