"""What consentmw does to an app's HTML responses, on the way out.

- Tracker tags of categories the visitor has not allowed become inert (see ``consentmw.core.html``).
- At the very start of ``<head>``: the Google Consent Mode v2 defaults (when the policy uses Google
  tags), then the banner's ``<link>`` and ``<script defer>``; before ``</body>`` a ``<noscript>``
  form that records a choice without JavaScript. XHTML (``application/xhtml+xml``) gets them
  well-formed, and no ``<noscript>``, which XML documents do not have.
- Headers: Content-Length is fixed (one body message) or dropped (streamed), ``Vary: Cookie`` is
  merged in (and ``Sec-GPC`` when the policy honours it), a validator (ETag) gets the consent
  variant appended so caches never mix variants up; without an ETag, Last-Modified is dropped
  (a date cannot tell the variants apart).

Left alone: bodies with a Content-Encoding (put GZipMiddleware *outside* ConsentMiddleware so it
compresses what consentmw rewrote), partial content (206: a byte range of the app's document;
rewritten pages carry no Accept-Ranges, and their weak ETag fails any If-Range), non-HTML types,
downloads (``Content-Disposition: attachment``: a file to save, not a page),
``http.response.pathsend`` (a file the server sends itself) and HEAD responses, which have no
body: their headers are fixed the same way.

CSP nonces: the injected inline script, stylesheet link and banner script carry the page's nonce
when the app exposes one, looked up in this order:

1. ``scope[csp_nonce_key]`` (default key ``"csp_nonce"``) on the scope the app received, or
   ``scope["state"][csp_nonce_key]`` (Starlette's ``request.state.csp_nonce = ...``); a ``str`` or
   a callable returning one;
2. the ``'nonce-...'`` source in the response's ``Content-Security-Policy`` header (its
   ``script-src``, else ``default-src`` directive).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable
from html import escape
from typing import Any
from urllib.parse import quote

from starlette.types import Message, Scope, Send

from consentmw.core.consent import Consent
from consentmw.core.consentmode import ConsentModeDefaults
from consentmw.core.html import HTMLRewriter, RewriteStream
from consentmw.core.policy import Policy, localized
from consentmw.core.response import logger, merge_vary

NONCE = re.compile(rb"(?:^|;)\s*(script-src|default-src)\s[^;]*?'nonce-([A-Za-z0-9+/=_-]+)'", re.IGNORECASE)
WIDE_CHARSET = re.compile(rb"charset\s*=\s*\"?(?:utf-?16|utf-?32|ucs-?2)", re.IGNORECASE)
SAFE_NONCE = re.compile(r"[A-Za-z0-9+/=_-]{1,256}")
META_CHARSET = re.compile(rb"""<meta\s[^>]*?charset\s*=\s*["']?\s*([A-Za-z0-9._:-]{1,40})""", re.IGNORECASE)
COMMENT = re.compile(rb"<!--.*?(?:-->|\Z)", re.DOTALL)
# Browsers look for <meta charset> in this many bytes at the start of a page.
PRESCAN = 1024
# What a browser leaves as it is in a URL's path and query (RFC 3986 pchar, with '%' itself encoded
# since the path arrives decoded, but kept in the raw query, which arrives encoded).
PATH_SAFE = "/!$&'()*+,;=:@-._~"
QUERY_SAFE = PATH_SAFE + "?%"


def declare_charset(headers: list[tuple[bytes, bytes]], start: bytes) -> None:
    """Put the page's own <meta charset> into a Content-Type that names none. What consentmw adds
    at the start of <head> can push that tag past the bytes browsers look through for it, and an
    EUC-KR page would then be read in another encoding."""
    for i, (key, value) in enumerate(headers):
        if key.lower() == b"content-type":
            if value.lower().find(b"charset") < 0 and (m := META_CHARSET.search(COMMENT.sub(b"", start[:PRESCAN]))):
                label = m.group(1)
                if not WIDE_CHARSET.match(b"charset=" + label):  # a meta saying UTF-16 means UTF-8
                    headers[i] = (key, value + b"; charset=" + label)
            return


def header_nonce(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    found: dict[bytes, str] = {}
    for key, value in headers:
        if key.lower() == b"content-security-policy":
            for m in NONCE.finditer(value):
                found.setdefault(m.group(1).lower(), m.group(2).decode("ascii"))
    return found.get(b"script-src") or found.get(b"default-src")


def scope_nonce(scope: Scope, key: str) -> str | None:
    value = scope.get(key)
    if value is None:
        state = scope.get("state")
        value = state.get(key) if isinstance(state, dict) else getattr(state, key, None)
    if callable(value):
        value = value()
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    return value if isinstance(value, str) and SAFE_NONCE.fullmatch(value) else None


class PageRewriting:
    """Per-middleware: everything about HTML responses that can be worked out once."""

    def __init__(
        self,
        policy: Policy,
        *,
        prefix: str,
        asset_versions: dict[str, str],
        banner_exclude: Iterable[str] | Callable[[str], bool] = (),
        csp_nonce_key: str = "csp_nonce",
        rewriter: HTMLRewriter | None = None,
    ) -> None:
        self.policy = policy
        self.prefix = prefix
        self.rewriter = rewriter if rewriter is not None else HTMLRewriter(policy)
        self.consent_mode = ConsentModeDefaults(policy)
        if callable(banner_exclude):
            self.banner_excluded: Callable[[str], bool] = banner_exclude
        else:
            prefixes = tuple(banner_exclude)
            self.banner_excluded = lambda path: path.startswith(prefixes) if prefixes else False
        self.csp_nonce_key = csp_nonce_key
        self.vary = (b"Cookie", b"Sec-GPC") if policy.gpc_refuses else (b"Cookie",)
        css = f"{prefix}/banner.css?v={asset_versions['banner.css']}"
        js = f"{prefix}/banner.js?v={asset_versions['banner.js']}"
        self.assets = f'<link rel="stylesheet" href="{css}"{{nonce}}><script src="{js}" defer{{nonce}}></script>'
        # An XHTML page is parsed as XML: one tag that is not well-formed and the visitor gets a
        # parse error instead of the page.
        self.xml_assets = f'<link rel="stylesheet" href="{css}"{{nonce}}/><script src="{js}" defer="defer"{{nonce}}></script>'
        self._forms: dict[str, str] = {}
        self.warned_encoded = False

    def start(self, scope: Scope, consent: Consent, message: Message, send: Send) -> PageResponse | None:
        """A per-response rewriter for this ``http.response.start``, or None to leave it alone."""
        if message.get("status") == 206:
            # A byte range of the app's document: rewriting the slice would break what Content-Range
            # says. Rewritten pages drop Accept-Ranges, so clients that follow it do not ask.
            return None
        headers = message.get("headers") or ()
        xml = False
        for key, value in headers:
            key = key.lower()
            if key == b"content-disposition" and value.lstrip()[:10].lower() == b"attachment":
                return None  # a file to save, not a page the site shows: the visitor gets it as it is
            if key == b"content-encoding" and value.strip().lower() not in (b"", b"identity"):
                if not self.warned_encoded:
                    # Silent, this looks like working consent while every tracker on the site runs.
                    self.warned_encoded = True
                    logger.warning(
                        "consentmw: the HTML response to %s came %s-encoded, so its trackers were NOT blocked and it got "
                        "no banner; put compression outside ConsentMiddleware (in Starlette/FastAPI, add GZipMiddleware "
                        "after it; in Django, drop django.middleware.gzip.GZipMiddleware). Said once per app.",
                        scope.get("path"),
                        value.strip().decode("latin-1"),
                    )
                return None
            if key == b"content-type":
                if WIDE_CHARSET.search(value):
                    return None  # UTF-16/32: not ASCII-compatible, nothing to find byte-wise
                xml = value.split(b";")[0].strip().lower() == b"application/xhtml+xml"
        return PageResponse(self, scope, consent, message, send, xml)

    def head(self, allowed: frozenset[str], nonce: str | None, banner: bool, xml: bool = False) -> bytes:
        attr = f' nonce="{nonce}"' if nonce else ""
        code = self.consent_mode.code(allowed)
        if code and xml:
            code = f"//<![CDATA[\n{code}\n//]]>"
        parts = [f"<script{attr}>{code}</script>" if code else ""]
        if banner:
            parts.append((self.xml_assets if xml else self.assets).replace("{nonce}", attr))
        return "".join(parts).encode()

    def noscript_form(self, next_url: str) -> bytes:
        lang = self.policy.language
        form = self._forms.get(lang)
        if form is None:
            text = lambda key: escape(self.policy.text(key, lang))  # noqa: E731
            boxes = "".join(
                f'<label><input type="checkbox" name="category" value="{c.id}"> {escape(localized(c.name, lang))}</label> '
                for c in self.policy.categories
                if not c.required
            )
            form = self._forms[lang] = (
                f'<noscript><form class="consentmw-noscript" method="post" action="{self.prefix}" lang="{lang}">'
                f"<p>{text('noscript_body')}</p>{boxes}"
                '<input type="hidden" name="next" value="{next}">'
                f'<button name="accept" value="custom">{text("save")}</button> '
                f'<button name="accept" value="all">{text("accept_all")}</button> '
                f'<button name="accept" value="necessary">{text("reject_all")}</button>'
                "</form></noscript>"
            )
        # ASCII with character references: the same bytes are right in UTF-8, EUC-KR or any
        # other ASCII-compatible charset the page may be in.
        return form.replace("{next}", escape(next_url)).encode("ascii", "xmlcharrefreplace")


class PageResponse:
    """Per-response: holds ``http.response.start`` until the first body message, like Starlette's
    GZipMiddleware, so that Content-Length can be set when the whole body comes at once."""

    __slots__ = ("page", "scope", "consent", "start_message", "send", "stream", "xml")

    def __init__(self, page: PageRewriting, scope: Scope, consent: Consent, message: Message, send: Send, xml: bool = False) -> None:
        self.page = page
        self.scope = scope
        self.consent = consent
        self.start_message = message
        self.send = send
        self.stream: RewriteStream | None = None
        self.xml = xml  # application/xhtml+xml

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.body" and self.start_message is not None:
            await self.first_body(message)
        elif message["type"] == "http.response.body" and self.stream is not None:
            body = self.stream.feed(message.get("body", b""))
            if not message.get("more_body", False):
                body += self.stream.close()
            await self.send({**message, "body": body})
        else:
            # pathsend and anything else: the body is not ours to change; the original start goes first.
            if self.start_message is not None:
                start, self.start_message = self.start_message, None
                await self.send(start)
            await self.send(message)

    async def first_body(self, message: Message) -> None:
        start, self.start_message = self.start_message, None
        page = self.page
        # Ranges of the app's bytes mean nothing in the rewritten page: no Accept-Ranges for it.
        headers = [(k, v) for k, v in start.get("headers") or () if k.lower() not in (b"content-length", b"accept-ranges")]
        for name in page.vary:
            merge_vary(headers, name)
        allowed = self.consent.allowed
        if not self.variant_etag(headers, allowed):
            # A date cannot tell consent variants apart: a browser revalidating with only
            # If-Modified-Since would get 304 and show the page of the visitor's earlier choice
            # (after a withdrawal, with its trackers live). With an ETag it is ignored, so it stays.
            headers = [(k, v) for k, v in headers if k.lower() != b"last-modified"]
        if self.scope.get("method") == "HEAD" or start.get("status") in (204, 304):
            # No body to rewrite; the GET body's length would be wrong after rewriting, so none.
            await self.send({**start, "headers": headers})
            await self.send(message)
            return
        nonce = scope_nonce(self.scope, page.csp_nonce_key) or header_nonce(headers)
        path = self.scope.get("path", "/")
        banner = not page.banner_excluded(path)
        query = self.scope.get("query_string", b"").decode("latin-1")
        # XHTML has no <noscript>: the form would show to everyone.
        # The path arrives percent-decoded: encoded again, a page such as /a%20b returns to itself
        # instead of giving the form a "next" with a space, which the API refuses.
        back = quote(path, safe=PATH_SAFE) + ("?" + quote(query, safe=QUERY_SAFE) if query else "")
        body_end = page.noscript_form(back) if banner and not self.xml else b""
        self.stream = stream = page.rewriter.stream(allowed, head=page.head(allowed, nonce, banner, self.xml), body_end=body_end)
        if not self.xml:
            declare_charset(headers, message.get("body", b""))
        body = stream.feed(message.get("body", b""))
        more_body = message.get("more_body", False)
        if not more_body:
            body += stream.close()
            headers.append((b"content-length", str(len(body)).encode()))
        await self.send({**start, "headers": headers})
        await self.send({**message, "body": body})

    @staticmethod
    def variant_etag(headers: list[tuple[bytes, bytes]], allowed: frozenset[str]) -> bool:
        """Whether the response has an ETag; it now names the consent variant."""
        # The same URL now has one body per consent state: a validator must tell them apart.
        found = False
        for i, (key, value) in enumerate(headers):
            if key.lower() == b"etag" and value.endswith(b'"'):
                variant = hashlib.sha256(" ".join(sorted(allowed)).encode()).hexdigest()[:8].encode()
                weak = value if value.startswith(b"W/") else b"W/" + value
                headers[i] = (key, weak[:-1] + b"-" + variant + b'"')
                found = True
        return found
