"""What consentmw does to an app's HTML responses, on the way out.

- Tracker tags of categories the visitor has not allowed become inert (see ``consentmw.core.html``).
- At the very start of ``<head>``: the Google Consent Mode v2 defaults (when the policy uses Google
  tags), then the banner's ``<link>`` and ``<script defer>``; before ``</body>`` a ``<noscript>``
  form that records a choice without JavaScript. XHTML (``application/xhtml+xml``) gets them
  well-formed, and no ``<noscript>``, which XML documents do not have.
- Headers: Content-Length is fixed (one body message) or dropped (streamed), ``Vary: Cookie`` is
  merged in (and ``Sec-GPC`` when the policy honours it), a validator (ETag) gets the consent
  variant appended so caches never mix variants up (an unquoted one, which cannot carry it, is
  dropped); without an ETag, Last-Modified is dropped
  (a date cannot tell the variants apart).

Left alone: bodies with a Content-Encoding (put GZipMiddleware *outside* ConsentMiddleware so it
compresses what consentmw rewrote), partial content (206: a byte range of the app's document;
rewritten pages carry no Accept-Ranges, and their weak ETag fails any If-Range), non-HTML types,
downloads (``Content-Disposition: attachment``: a file to save, not a page),
``http.response.pathsend`` (a file the server sends itself) and HEAD responses, which have no
body: their headers are fixed the same way.

CSP nonces: the injected inline script, stylesheet link and banner script carry the page's nonce
when the app exposes one: first where the adapter finds it (the ASGI scope, Django's request, the
WSGI environ: see PageRequest.nonce), then the ``'nonce-...'`` source in the response's
``Content-Security-Policy`` header (its ``script-src``, else ``default-src`` directive).

Nothing here knows a server protocol: a page is started with its status and headers, then fed its
body in chunks (``PageStream``); the adapters carry that to and from ASGI messages, WSGI iterables
and Django responses.
"""

from __future__ import annotations

import codecs
import hashlib
import re
from collections.abc import Callable, Iterable
from html import escape
from typing import NamedTuple
from urllib.parse import quote

from consentmw.core.consentmode import ConsentModeDefaults
from consentmw.core.html import HTMLRewriter, RewriteStream, parse_attrs, url_of
from consentmw.core.consent import Consent
from consentmw.core.inline import DATA_ID, banner_policy, banner_state, languages, script_json, shared_cacheable, visitor_state
from consentmw.core.languages import choose
from consentmw.core.policy import Policy
from consentmw.core.response import CONTENT_TYPE, header_charset, is_html, logger, media_type, merge_vary, split_values, untyped, watched_name
from consentmw.core.trackers import TrackerRules, url_host

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
# What quote() with those leaves as it is, whole: most paths and queries, which then skip it.
PATH_AS_IS = re.compile(r"[A-Za-z0-9/!$&'()*+,;=:@._~-]*")
QUERY_AS_IS = re.compile(r"[A-Za-z0-9/!$&'()*+,;=:@._~?%-]*")
DATA_OPEN = f'<script type="application/json" id="{DATA_ID}"'.encode()
# <html> start tags seen (the bytes after its name) -> the language they name; a site has a few.
HTML_LANGS: dict[bytes, str | None] = {}
# Before the <html> start tag a document has only a byte order mark, an XML declaration (XHTML),
# a doctype, comments and whitespace (the "initial" and "before html" insertion modes).
BEFORE_HTML = re.compile(
    rb"(?:\xef\xbb\xbf)?(?:[\t\n\f\r ]++|<\?xml[^>]{0,200}>|<!doctype[^>]{0,500}>|<!--(?:[^-]|-(?!->)){0,2000}-->)*+<html(?=[\t\n\f\r />])",
    re.IGNORECASE,
)


# A body sent without any Content-Type is read as HTML by browsers when it starts (after
# whitespace) with one of these, then a space or ">" (the MIME Sniffing standard's "identify an
# unknown MIME type", which Chromium's SniffForHTML follows): consentmw rewrites it as HTML too.
SNIFFED_HTML = re.compile(
    rb"[\t\n\f\r ]*+<(?:!doctype html|html|head|script|iframe|h1|div|font|table|a|style|title|b|body|br|p|!--)[ >]", re.IGNORECASE
)


# One link-value of a Link header (RFC 8288): "<address>" and its parameters, up to a comma that
# is not inside a quoted string.
LINK_VALUE = re.compile(rb'[\t ,]*<([^>]*)>((?:[^,"]|"(?:[^"\\]|\\.)*"?)*)')


def held_header_links(headers: list[tuple[bytes, bytes]], trackers: TrackerRules, allowed: frozenset[str]) -> list[tuple[bytes, bytes]]:
    """The headers without the Link values (preload, preconnect, prefetch, modulepreload...) and
    Speculation-Rules rule sets that name a tracker of a category the visitor has not allowed:
    Chromium fetches them with the page, before any script runs. The visitor's next page after
    consent has them again."""

    def refused(url: bytes) -> bool:
        url = url.strip(b"\t\n\f\r \"").lower()
        found = trackers.match_src(url)
        if not found and (host := url_host(url)) is not None:
            found = trackers.candidates(host)
        return bool(found) and not all(c in allowed for c in trackers.categories(found))

    kept: list[tuple[bytes, bytes]] = []
    for key, value in headers:
        name = watched_name(key)
        if name == b"link":
            parts, position = [], 0
            while (m := LINK_VALUE.match(value, position)) is not None and m.end() > position:
                if not refused(m.group(1)):
                    parts.append(m.group().lstrip(b"\t ,"))
                position = m.end()
            rest = value[position:].strip(b"\t ,")
            value = b", ".join(parts + ([rest] if rest else []))
        elif name == b"speculation-rules":
            value = b", ".join(v for v in split_values(value) if v and not refused(v))
        if value or name != b"link" and name != b"speculation-rules":
            kept.append((key, value))
    return kept


def sniffs_as_html(start: bytes) -> bool:
    return SNIFFED_HTML.match(start) is not None


# The WHATWG Encoding standard's labels of the encodings whose bytes are not ASCII's, and the codec
# that reads each. Such a page is read as text and sent on in UTF-8, its Content-Type saying so:
# the browser then reads exactly the bytes that were judged (an ISO-2022-JP escape inside a tag
# name or a host, which decodes to nothing, cannot hide a tracker). Labels of UTF-32 are no
# encoding to a browser, which reads such a page in an ASCII-compatible fallback, as the rewriter does.
ISO_2022_JP = "iso2022_jp_ext"  # with half-width katakana (ESC ( I), as the standard's decoder
TRANSCODED = {
    **dict.fromkeys((b"unicodefffe", b"utf-16be"), "utf-16-be"),
    **dict.fromkeys((b"csunicode", b"iso-10646-ucs-2", b"ucs-2", b"unicode", b"unicodefeff", b"utf-16", b"utf-16le"), "utf-16-le"),
    **dict.fromkeys((b"csiso2022jp", b"iso-2022-jp"), ISO_2022_JP),
}
BOMS = ((b"\xef\xbb\xbf", None), (b"\xfe\xff", "utf-16-be"), (b"\xff\xfe", "utf-16-le"))
WIDE_BOMS = tuple(bom for bom, codec in BOMS if codec is not None)
# ISO-2022-JP's escapes into JIS X 0208, JIS Roman or katakana: an unlabelled 7-bit page holding
# them may be taken for ISO-2022-JP by Chromium's encoding detector.
ISO_2022_ESCAPE = re.compile(rb"\x1b(?:\$[@B]|\([BJI])")
HIGH_BYTE = re.compile(rb"[\x80-\xff]")


def page_codec(headers: list[tuple[bytes, bytes]], start: bytes) -> str | None:
    """The codec of a page whose bytes are not ASCII's, found as the browser finds its encoding (a
    byte order mark, the Content-Type's charset, a <meta> in the first 1,024 bytes, a guess), or None."""
    for bom, codec in BOMS:
        if start.startswith(bom):
            return codec
    charset = header_charset(headers)
    if charset is not None:
        return TRANSCODED.get(charset)
    if m := META_CHARSET.search(COMMENT.sub(b"", start[:PRESCAN])):
        # A <meta> saying UTF-16 means UTF-8: its own bytes could not have been read otherwise.
        return ISO_2022_JP if TRANSCODED.get(m.group(1).lower()) == ISO_2022_JP else None
    return ISO_2022_JP if ISO_2022_ESCAPE.search(start) and not HIGH_BYTE.search(start) else None


def declare_charset(headers: list[tuple[bytes, bytes]], start: bytes) -> None:
    """Put the page's own <meta charset> into a Content-Type that names none. What consentmw adds
    at the start of <head> can push that tag past the bytes browsers look through for it, and an
    EUC-KR page would then be read in another encoding."""
    for i, (key, value) in enumerate(headers):
        if key in CONTENT_TYPE:
            if value.lower().find(b"charset") < 0 and (m := META_CHARSET.search(COMMENT.sub(b"", start[:PRESCAN]))):
                label = m.group(1)
                if not WIDE_CHARSET.match(b"charset=" + label):  # a meta saying UTF-16 means UTF-8
                    headers[i] = (key, value + b"; charset=" + label)
            return


def html_lang(start: bytes) -> str | None:
    """The page's language, from the lang (or xml:lang) attribute of its <html> start tag, when the
    document opens with it in these bytes."""
    m = BEFORE_HTML.match(start)
    if m is None:
        return None
    end = start.find(b">", m.end(), m.end() + 2048)
    if end < 0:
        return None
    tag = start[m.end() : end]
    try:
        return HTML_LANGS[tag]
    except KeyError:
        pass
    attrs = parse_attrs(tag, 0, len(tag))
    found = attrs.get(b"lang") or attrs.get(b"xml:lang")
    lang = url_of(found.value).decode("ascii", "replace").strip()[:64] or None if found is not None and found.value else None
    if len(HTML_LANGS) < 256:
        HTML_LANGS[tag] = lang
    return lang


def header_nonce(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    found: dict[bytes, str] = {}
    for key, value in headers:
        if key.lower() == b"content-security-policy":
            for m in NONCE.finditer(value):
                found.setdefault(m.group(1).lower(), m.group(2).decode("ascii"))
    return found.get(b"script-src") or found.get(b"default-src")


def safe_nonce(value: object) -> str | None:
    """A nonce the app exposes (a str, bytes, or a callable returning one), if it is safe to write out."""
    if callable(value):
        value = value()
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    elif value is not None and not isinstance(value, str):
        value = str(value)  # django-csp's lazy nonce
    return value if isinstance(value, str) and SAFE_NONCE.fullmatch(value) else None


def return_url(path: str, query: str) -> str:
    """Where the no-JS form sends the visitor back to. The path arrives percent-decoded: encoded
    again, a page such as /a%20b returns to itself instead of giving the form a "next" with a
    space, which the API refuses."""
    return (path if PATH_AS_IS.fullmatch(path) else quote(path, safe=PATH_SAFE)) + (
        "?" + (query if QUERY_AS_IS.fullmatch(query) else quote(query, safe=QUERY_SAFE)) if query else ""
    )


class HeaderShape(NamedTuple):
    """What PageStream.first finds in the headers of an HTML response that it neither transcodes nor
    gives a variant ETag: worked out once per distinct list of them (its Content-Length aside), as a
    site answers its pages with a handful of such lists. See PageRewriting.shape."""

    headers: tuple[tuple[bytes, bytes], ...]  # without Content-Length, Accept-Ranges and Last-Modified; Vary merged
    nonce: str | None  # the Content-Security-Policy header's nonce
    shared: bool  # shared_cacheable


class PageRequest(NamedTuple):
    """What the rewriting needs to know of the request an HTML response answers."""

    method: str
    path: str  # as the browser sees it: the banner_exclude test and the noscript form's return URL
    query: str
    nonce: Callable[[], str | None] = lambda: None  # the app's CSP nonce for this request, if any
    host: str = ""  # the Host the browser asked for, without port: tells the site's own tags from third parties
    accept_language: str = ""  # the visitor's Accept-Language header
    language: Callable[[], str | None] = lambda: None  # the page's language as the framework knows it (Django's active one)


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
        # The region headers (or "*" for a region= callable): a page's trackers and banner depend on the mode.
        region_vary: tuple[bytes, ...] = (),
    ) -> None:
        self.policy = policy
        self.region_vary = region_vary
        self.prefix = prefix
        self.rewriter = rewriter if rewriter is not None else HTMLRewriter(policy)
        self.consent_mode = ConsentModeDefaults(policy)
        if callable(banner_exclude):
            self.banner_excluded: Callable[[str], bool] = banner_exclude
        else:
            prefixes = tuple(banner_exclude)
            self.banner_excluded = lambda path: path.startswith(prefixes) if prefixes else False
        self.csp_nonce_key = csp_nonce_key
        self.vary = ((b"Cookie", b"Sec-GPC") if policy.gpc_refuses else (b"Cookie",)) + region_vary
        css = f"{prefix}/banner.css?v={asset_versions['banner.css']}"
        js = f"{prefix}/banner.js?v={asset_versions['banner.js']}"
        self.assets = f'<link rel="stylesheet" href="{css}"{{nonce}}><script src="{js}" defer{{nonce}}></script>'
        # An XHTML page is parsed as XML: one tag that is not well-formed and the visitor gets a
        # parse error instead of the page.
        self.xml_assets = f'<link rel="stylesheet" href="{css}"{{nonce}}/><script src="{js}" defer="defer"{{nonce}}></script>'
        # Per language (and opt-out): the no-JS form's bytes around its return URL, and the data
        # block's up to the visitor's state; per allowed set, the head's markup without a nonce.
        self._forms: dict[tuple[str, bool], list[bytes]] = {}
        self._data: dict[str, bytes] = {}
        self._heads: dict[tuple[frozenset[str], bool, bool], bytes] = {}
        self._states: dict[tuple[bool, frozenset[str], bool, str, str], str] = {}
        # The app's header lists (without Content-Length) -> their shape, or None when not a page to
        # rewrite from its headers alone (a download, a compressed body, a Link header).
        self._shapes: dict[tuple[tuple[bytes, bytes], ...], HeaderShape | None] = {}
        self.languages_json = script_json(languages(policy))
        self.warned_encoded = False

    def shape(self, headers: list[tuple[bytes, bytes]]) -> HeaderShape | None:
        """What first() would find in these headers, when they are an HTML page's with a charset of an
        ASCII-compatible encoding in their one Content-Type (so the body is neither transcoded nor
        looked through for a <meta charset>), no ETag, and nothing for ResponseFilter to take out:
        no Set-Cookie (never remembered: its values may be a visitor's), Link or Speculation-Rules.
        Else None, and the headers are read as they come."""
        key = tuple([(k, v) for k, v in headers if k != b"content-length"])  # ASGI allows [name, value] lists
        try:
            return self._shapes[key]
        except KeyError:
            pass
        names = {watched_name(k) for k, _ in key}
        if b"set-cookie" in names:
            return None
        shape = None
        if b"link" not in names and b"speculation-rules" not in names and is_html(headers) and self.unrewritable(headers) is None:
            kept = [(k, v) for k, v in key if k.lower() not in (b"content-length", b"accept-ranges", b"last-modified")]
            types = [v for k, v in kept if k in CONTENT_TYPE]
            charset = header_charset(kept)
            if (
                media_type(kept) != b"application/xhtml+xml"
                and len(types) == 1
                and types[0].lower().find(b"charset") >= 0
                and charset is not None
                and TRANSCODED.get(charset) is None
                and not any(k.lower() == b"etag" for k, _ in kept)
            ):
                for name in self.vary:
                    merge_vary(kept, name)
                shape = HeaderShape(tuple(kept), header_nonce(kept), shared_cacheable(kept))
        if len(self._shapes) < 64:
            self._shapes[key] = shape
        return shape

    @staticmethod
    def unrewritable(headers: list[tuple[bytes, bytes]]) -> bytes | None:
        """Why an HTML response is left as it is: b"attachment" for a file to save, or the content
        coding of a compressed body. None for a page to rewrite."""
        for key, value in headers:
            key = key.lower()
            if key == b"content-disposition" and value.lstrip()[:10].lower() == b"attachment":
                return b"attachment"
            if key == b"content-encoding" and value.strip().lower() not in (b"", b"identity"):
                return value.strip()
        return None

    def start(
        self,
        request: PageRequest,
        allowed: frozenset[str],
        status: int,
        headers: list[tuple[bytes, bytes]],
        variant: str = "",
        opt_out: bool = False,
        state: Callable[[], str] = lambda: "null",
        shape: HeaderShape | None = None,
    ) -> PageStream | None:
        """A per-response rewriter for an HTML response, or None to leave it alone. ``shape``:
        the headers' (PageRewriting.shape), when they have one."""
        if status == 206:
            # A byte range of the app's document: rewriting the slice would break what Content-Range
            # says. Rewritten pages drop Accept-Ranges, so clients that follow it do not ask.
            return None
        if shape is not None:
            return PageStream(self, request, allowed, status, headers, False, variant, opt_out, state, shape)
        why = self.unrewritable(headers)
        if why == b"attachment":
            return None  # a file to save, not a page the site shows: the visitor gets it as it is
        if why is not None:
            if not self.warned_encoded:
                # Silent, this looks like working consent while every tracker on the site runs.
                self.warned_encoded = True
                logger.warning(
                    "consentmw: the HTML response to %s came %s-encoded, so its trackers were NOT blocked and it got "
                    "no banner; put compression outside ConsentMiddleware (in Starlette/FastAPI, add GZipMiddleware "
                    "after it; in Django, list GZipMiddleware before consentmw's middleware, or drop it). "
                    "Said once per app.",
                    request.path,
                    why.decode("latin-1"),
                )
            return None
        xml = media_type(headers) == b"application/xhtml+xml"
        return PageStream(self, request, allowed, status, headers, xml, variant, opt_out, state)

    def state_json(self, consent: Consent) -> str:
        """script_json of the visitor's state as GET {prefix} answers it (without the consent id).
        It follows from these five, and visitors share a handful of combinations."""
        key = (consent.decided, consent.allowed, consent.gpc, consent.region, consent.mode)
        found = self._states.get(key)
        if found is None:
            found = script_json(visitor_state(banner_state(consent)))
            if len(self._states) < 1024:
                self._states[key] = found
        return found

    def data_block(self, lang: str, state_json: str, nonce: str | None) -> bytes:
        """The banner's data for this page: its texts and policy in `lang`, and the visitor's state
        (``script_json`` of it)."""
        data = self._data.get(lang)
        if data is None:
            policy = script_json(banner_policy(self.policy, lang))
            data = self._data[lang] = f'{{"lang":{script_json(lang)},"languages":{self.languages_json},"policy":{policy},"state":'.encode()
        attr = f' nonce="{nonce}"'.encode() if nonce else b""
        return b"".join((DATA_OPEN, attr, b">", data, state_json.encode(), b"}</script>"))

    def head(self, allowed: frozenset[str], nonce: str | None, banner: bool, xml: bool = False) -> bytes:
        if nonce is None and (found := self._heads.get((allowed, banner, xml))) is not None:
            return found
        attr = f' nonce="{nonce}"' if nonce else ""
        code = self.consent_mode.code(allowed)
        if code and xml:
            code = f"//<![CDATA[\n{code}\n//]]>"
        parts = [f"<script{attr}>{code}</script>" if code else ""]
        if banner:
            parts.append((self.xml_assets if xml else self.assets).replace("{nonce}", attr))
        head = "".join(parts).encode()
        if nonce is None and len(self._heads) < 256:
            self._heads[(allowed, banner, xml)] = head
        return head

    def noscript_form(self, next_url: str, lang: str, opt_out: bool = False) -> bytes:
        parts = self._forms.get((lang, opt_out))
        if parts is None:
            text = lambda key: escape(self.policy.text(key, lang))  # noqa: E731
            # In an opt-out region the form is the notice: its wording, and "Do Not Sell or Share" first.
            intro = text("optout_body") if opt_out else text("noscript_body")
            do_not_sell = f'<button name="accept" value="do-not-sell">{text("do_not_sell")}</button> ' if opt_out else ""
            boxes = "".join(
                f'<label><input type="checkbox" name="category" value="{c.id}"> {escape(self.policy.local(c.name, lang))}</label> '
                for c in self.policy.categories
                if not c.required
            )
            form = (
                f'<noscript><form class="consentmw-noscript" method="post" action="{self.prefix}" lang="{lang}">'
                f"<p>{intro}</p>{boxes}"
                '<input type="hidden" name="next" value="{next}">'
                f'<input type="hidden" name="lang" value="{lang}">'
                f"{do_not_sell}"
                f'<button name="accept" value="custom">{text("save")}</button> '
                f'<button name="accept" value="all">{text("accept_all")}</button> '
                f'<button name="accept" value="necessary">{text("reject_all")}</button>'
                "</form></noscript>"
            )
            # ASCII with character references: the same bytes are right in UTF-8, EUC-KR or any
            # other ASCII-compatible charset the page may be in.
            parts = self._forms[(lang, opt_out)] = [part.encode("ascii", "xmlcharrefreplace") for part in form.split("{next}")]
        return escape(next_url).encode("ascii", "xmlcharrefreplace").join(parts)


class PageStream:
    """Per-response: the headers wait for the first body chunk, like Starlette's GZipMiddleware holds
    ``http.response.start``, so that Content-Length can be set when the whole body comes at once."""

    __slots__ = ("page", "request", "allowed", "status", "headers", "stream", "xml", "sniff", "variant", "opt_out", "state", "decoder", "shape")

    def __init__(
        self,
        page: PageRewriting,
        request: PageRequest,
        allowed: frozenset[str],
        status: int,
        headers: list[tuple[bytes, bytes]],
        xml: bool = False,
        variant: str = "",
        opt_out: bool = False,
        state: Callable[[], str] = lambda: "null",
        shape: HeaderShape | None = None,
    ) -> None:
        self.page = page
        self.request = request
        self.allowed = allowed
        self.status = status
        self.headers = headers  # as the app sent them (its Set-Cookie lines already filtered)
        self.stream: RewriteStream | None = None
        self.xml = xml  # application/xhtml+xml
        self.sniff = shape is None and untyped(headers)
        self.shape = shape  # the headers' shape, when known (PageRewriting.shape)
        self.variant = variant  # what else the page depends on besides `allowed` (the visitor's mode and region)
        self.opt_out = opt_out  # an undecided visitor in an opt-out region: the no-JS form is the notice
        self.state = state  # the visitor's consent state as GET {prefix} answers it, in JSON (PageRewriting.state_json)
        self.decoder: codecs.IncrementalDecoder | None = None  # a page in UTF-16 or ISO-2022-JP, read as text

    def first(self, body: bytes, more_body: bool) -> tuple[list[tuple[bytes, bytes]], bytes]:
        """The response's headers and its first body chunk, rewritten. `body` may be empty and
        `more_body` true when an adapter cannot wait for the first chunk (a streamed Django response)."""
        page = self.page
        # What the headers say, when a response with the same ones said it before (PageRewriting.shape);
        # a byte order mark of UTF-16 outranks their charset, and the page is read again as text.
        shape = None if self.shape is None or body.startswith(WIDE_BOMS) else self.shape
        if shape is not None:
            headers = list(shape.headers)
        else:
            if self.sniff:
                if not sniffs_as_html(body):
                    return self.headers, body  # not a page: as it came, and so are the chunks after it
                self.headers = [*self.headers, (b"content-type", b"text/html")]
            # Ranges of the app's bytes mean nothing in the rewritten page: no Accept-Ranges for it.
            headers = [(k, v) for k, v in self.headers if k.lower() not in (b"content-length", b"accept-ranges")]
            codec = None if self.xml else page_codec(headers, body)
            if codec is not None:
                self.decoder = codecs.getincrementaldecoder(codec)("replace")
                essence = media_type(headers) or b"text/html"
                headers = [(k, v) for k, v in headers if k not in CONTENT_TYPE] + [(b"content-type", essence + b"; charset=utf-8")]
            for name in page.vary:
                merge_vary(headers, name)
        allowed = self.allowed
        request = self.request
        banner = not page.banner_excluded(request.path)
        variant = self.variant
        nonce = safe_nonce(request.nonce()) or (header_nonce(headers) if shape is None else shape.nonce)
        body_end = b""
        if banner:
            choice = choose(page.policy, html_lang(body) or request.language(), request.accept_language)
            if choice.by_accept_language:
                merge_vary(headers, b"Accept-Language")
            # A page a CDN may keep for everyone carries no visitor's state: the banner asks for it.
            state = "null" if (shared_cacheable(headers) if shape is None else shape.shared) else self.state()
            body_end = page.data_block(choice.lang, state, nonce)
            if not self.xml:
                # XHTML has no <noscript>: the form would show to everyone.
                body_end += page.noscript_form(return_url(request.path, request.query), choice.lang, self.opt_out)
            # The banner's language and state are in the page too: each gets its own validator.
            variant += " " + choice.lang + state
        if shape is None and not self.variant_etag(headers, allowed, variant):
            # A date cannot tell consent variants apart: a browser revalidating with only
            # If-Modified-Since would get 304 and show the page of the visitor's earlier choice
            # (after a withdrawal, with its trackers live). With an ETag it is ignored, so it stays.
            # (A shape is made only for headers without an ETag, and holds no Last-Modified.)
            headers = [(k, v) for k, v in headers if k.lower() != b"last-modified"]
        if request.method == "HEAD" or self.status in (204, 304):
            # No body to rewrite; the GET body's length would be wrong after rewriting, so none.
            return headers, body
        # Without the page's host a tag's host cannot be told first- from third-party: no report.
        report = (request.host.lower().encode("latin-1", "replace"), request.path) if request.host else None
        head = page.head(allowed, nonce, banner, self.xml)
        if self.decoder is not None:
            body = self.decoder.decode(body, not more_body).encode("utf-8")
        elif not self.xml and shape is None:  # a shape's Content-Type names its charset already
            declare_charset(headers, body)
        if not more_body:
            # The whole body at once: a visitor who allowed everything may get the insertions alone.
            body = page.rewriter.rewrite(allowed, body, head=head, body_end=body_end, page=report)
            headers.append((b"content-length", str(len(body)).encode()))
            return headers, body
        self.stream = stream = page.rewriter.stream(allowed, head=head, body_end=body_end, page=report)
        return headers, stream.feed(body)

    def feed(self, body: bytes, more_body: bool) -> bytes:
        """A later body chunk, rewritten (as it came, for a HEAD, 204 or 304 response)."""
        stream = self.stream
        if stream is None:
            return body
        if self.decoder is not None:
            body = self.decoder.decode(body, not more_body).encode("utf-8")
        body = stream.feed(body)
        if not more_body:
            body += stream.close()
        return body

    @staticmethod
    def variant_etag(headers: list[tuple[bytes, bytes]], allowed: frozenset[str], variant: str = "") -> bool:
        """Whether the response has an ETag; it now names the consent variant (the allowed
        categories, and the mode and region where the site has regional rules)."""
        # The same URL now has one body per consent state: a validator must tell them apart.
        found = False
        for i, (key, value) in enumerate(headers):
            if key.lower() == b"etag":
                if len(value) < 2 or not value.endswith(b'"') or value.find(b'"') == len(value) - 1:
                    # Not a quoted tag ("abc", '"abc'): no variant can be written into it, and a
                    # browser sends it back as it came. Dropped, so it cannot match another state's page.
                    headers[i] = (b"", b"")
                    continue
                state = " ".join(sorted(allowed)) + (" | " + variant if variant else "")
                tag = hashlib.sha256(state.encode()).hexdigest()[:8].encode()
                weak = value if value.startswith(b"W/") else b"W/" + value
                headers[i] = (key, weak[:-1] + b"-" + tag + b'"')
                found = True
        headers[:] = [header for header in headers if header[0]]
        return found
