"""The response side of the contract, whatever the server speaks: what an app's response loses
(Set-Cookie lines of refused categories) and which responses get their HTML rewritten."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator

from consentmw.core.consent import Consent
from consentmw.core.regions import OPT_OUT
from consentmw.core.response import HTML_VERDICTS, WATCHED_NAMES, filter_cookies, html_verdict, is_html, untyped, watched_name
from consentmw.core.rewriting import PageRequest, PageRewriting, PageStream, held_header_links


def needs_filter(headers: list[tuple[bytes, bytes]]) -> bool:
    """Whether a response sets cookies, has Link or Speculation-Rules headers, or may be HTML (a
    browser sniffs a body sent without any Content-Type). Most (no cookies, not HTML) pass after
    this one scan; a content type already judged not HTML is settled by the lookup alone."""
    typed = False
    for key, value in headers:
        name = WATCHED_NAMES.get(key)  # watched_name(key), without its call for names seen before
        if name is None:
            name = watched_name(key)
        if name:
            if name != b"content-type" or (HTML_VERDICTS.get(value, True) and html_verdict(value)):
                return True
            typed = True
    return not typed


class ResponseFilter:
    """Per response, made only for those needs_filter picks. Adapters send ``headers`` instead of the
    app's; when ``page`` is set, the headers wait for ``page.first(...)`` and every body chunk goes
    through the page stream."""

    __slots__ = ("headers", "page")

    def __init__(self, html: PageRewriting, consent: Consent, request: PageRequest, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        shape = html.shape(headers)  # headers read before, of a page with nothing in them to take out
        if shape is None:
            names = {watched_name(key) for key, _ in headers}
            if b"set-cookie" in names:
                headers = filter_cookies(html.policy, consent.allowed, list(headers), html.region_vary)
            if (b"link" in names or b"speculation-rules" in names) and not html.rewriter.all_allowed(consent.allowed):
                # On any response: Chromium preloads a Link header's script for a JSON or image document
                # it shows as for a page, and for a page it was told not to rewrite (a range, compressed).
                headers = held_header_links(headers, html.rewriter.trackers, consent.allowed)
        self.headers = headers
        if shape is not None or is_html(headers) or untyped(headers):
            variant = f"{consent.mode} {consent.region}" if html.region_vary else ""
            opt_out = bool(html.region_vary) and consent.mode == OPT_OUT and not consent.decided
            self.page: PageStream | None = html.start(request, consent.allowed, status, headers, variant, opt_out, lambda: html.state_json(consent), shape)
        else:
            self.page = None


def rewritten(page: PageStream, first: bytes, chunks: Iterable[bytes]) -> Iterator[bytes]:
    """The rest of a streamed page through its stream, after `first` (what page.first returned)."""
    if first:
        yield first
    for chunk in chunks:
        if body := page.feed(chunk, True):
            yield body
    if tail := page.feed(b"", False):
        yield tail


async def arewritten(page: PageStream, first: bytes, chunks: AsyncIterable[bytes]) -> AsyncIterator[bytes]:
    """rewritten() for an async iterator (a Django StreamingHttpResponse on the async path)."""
    if first:
        yield first
    async for chunk in chunks:
        if body := page.feed(chunk, True):
            yield body
    if tail := page.feed(b"", False):
        yield tail
