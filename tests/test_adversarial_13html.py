"""Adversarial tests against session 13's speed work on the HTML rewriter (core/html.py, branch
undecided13): SKIP and the image pattern no longer jump over a tag holding an attribute named on...
or ping=, in place of a whole-page search for handlers and pings that bounded every jump. The
claim: the same bytes as main's for every page, chunking and visitor.

Each test asserts what main's rewriter gives (and what a site would notice: output that depends on
how the body is cut)."""

from __future__ import annotations

import time

from consentmw import load_policy
from consentmw.core.html import HTMLRewriter

POLICY = load_policy("default")
NOBODY = POLICY.required
SITE = (b"www.shop.example", "/")


def rewrite(data: bytes, chunk: int = 0) -> bytes:
    stream = HTMLRewriter(POLICY).stream(NOBODY, head=b"<!--h-->", body_end=b"<!--b-->", page=SITE)
    size = chunk or len(data) or 1
    return b"".join(stream.feed(data[i : i + size]) for i in range(0, len(data), size)) + stream.close()


# An SVG script whose code is cut short by a tag that leaves SVG (<p>) is held until its code is
# seen, and judged at the next </script> the tree builder reads (RewriteStream._end_tag). On main,
# SKIP stopped before every "on...=" and "ping=", so an end tag holding one always went to the tree
# builder: the script is judged on "<p>x" and stays as written, whole or cut. On the branch SKIP
# jumps over that end tag when the body comes whole (end tags' attributes are not looked at), so
# the script is judged on what follows up to the end of the page: the tracker call after it makes
# the script inert, and only when the body was not cut before "</script" (main does the same for a
# bare "</script>", which the branch leaves as main has it).
CUT_SVG_SCRIPT = b"<svg><script><p>x</script onclick=1>fbq('track','PageView')</p>"


def test_a_cut_svg_script_whose_end_tag_holds_a_handler_comes_out_as_on_main() -> None:
    assert rewrite(CUT_SVG_SCRIPT) == CUT_SVG_SCRIPT


def test_a_cut_svg_script_whose_end_tag_holds_a_handler_does_not_depend_on_chunking() -> None:
    for page in (CUT_SVG_SCRIPT, CUT_SVG_SCRIPT.replace(b" onclick=1", b" ping=x"), CUT_SVG_SCRIPT.replace(b" onclick=1", b"/ONLOAD=1")):
        assert rewrite(page) == rewrite(page, chunk=7) == rewrite(page, chunk=1), page


# -- time ------------------------------------------------------------------------------------------


def seconds(data: bytes) -> float:
    started = time.process_time()  # CPU time: a loaded machine stretches wall time, not this
    rewrite(data)
    return time.process_time() - started


def test_a_shop_page_of_tracker_handlers_costs_linear_time() -> None:
    # A category page whose every "add to cart" button calls the Meta pixel: each handler is
    # renamed in the buffer (RewriteStream._hold_attributes: buf[start:end] = new, and low too),
    # which moves every byte after the tag, up to the end of what was fed; an ASGI app sends the
    # page in one message, so the buffer is the whole page and the moves add up to n * n. Not new
    # on the branch (main: 1 MB 8-10 s, 13 times 256 KB's), but the claim is linear time: on the
    # branch 256 KB takes 0.05 s and 1 MB 0.5 s (10 times; linear would be 4).
    card = "<li><button onclick=\"fbq('track','AddToCart')\">담기</button></li>\n".encode()
    small, large = (card * (size // len(card)) for size in (262144, 1048576))
    assert b"data-consentmw-onclick" in rewrite(card)
    seconds(small)  # warm up
    assert seconds(large) / seconds(small) < 6
