"""Streaming rewriting of HTML responses: tracker tags of refused categories become inert.

One ``HTMLRewriter`` per policy holds what is worked out once (the tracker rules, the mapping of
other consent tools' names); ``HTMLRewriter.stream(allowed, ...)`` makes the per-response
``RewriteStream`` with ``feed(bytes) -> bytes`` and ``close() -> bytes``.

The stream scans for the few tags that matter (``<script``, ``<iframe``, ``<img``, resource
hints in ``<link>``, comments, raw-text elements, ``<head>`` and ``</body>``) and copies
everything else as it came, so any ASCII-compatible charset (UTF-8, EUC-KR, ...) passes
unchanged. It keeps back only an unfinished
tag, or an inline script up to ``inline_limit`` bytes while it cannot yet tell what the script
is; nothing else is buffered.
"""

from __future__ import annotations

import html
import re
from collections.abc import Collection
from typing import NamedTuple

from consentmw.core.policy import Policy
from consentmw.core.trackers import HOST, Tracker, TrackerRules, normalize_url

# The tags that matter, found in a lowercased copy of the chunk. No capturing groups and shared
# prefixes factored out: this is the scan every byte goes through, and both cost several times.
SCAN = re.compile(rb"<(?:s(?:cript|tyle|ource)|!(?:--|doctype)|i(?:m(?:g|age)|frame)|link|h(?:ead|tml)|/(?:head|body)|body|t(?:extarea|itle)|xmp|no(?:embed|frames))")
SCRIPT, COMMENT, IMG, IFRAME, LINK, RAWTEXT, HEAD, HEAD_END, BODY, BODY_END, HTML, DOCTYPE = range(12)
KINDS = {
    b"script": SCRIPT,
    b"!--": COMMENT,
    b"!doctype": DOCTYPE,
    b"img": IMG,
    b"image": IMG,  # the HTML parser reads <image> as <img>
    b"source": IMG,  # <picture>'s and <video>'s: loads its src or srcset like an image
    b"iframe": IFRAME,
    b"link": LINK,
    b"head": HEAD,
    b"/head": HEAD_END,
    b"body": BODY,
    b"/body": BODY_END,
    b"html": HTML,
    **dict.fromkeys([b"style", b"textarea", b"title", b"xmp", b"noembed", b"noframes"], RAWTEXT),
}
# Longest "<name" SCAN looks for, plus the byte that must follow it.
SCAN_TAIL = len(b"<noframes") + 1
DELIMITERS = frozenset(b" \t\n\r\f/>")
# The rest of a start tag after its name, up to and including ">"; atomic groups keep a tag that
# never ends from backtracking. An unquoted value may not start with a quote, so a quoted value
# cut off by the end of a chunk fails to match (more data needed) instead of ending early.
# Once "name=" is followed by a quote the value runs to the closing quote, as in a browser: an
# attribute that is not followed by a complete value may not be followed by "=" either, so an
# unclosed quote never lets the "=" be read again as the start of another attribute.
TAG_REST = re.compile(
    rb"""(?>\s+|/|[^\s>/][^\s>/=]*(?>\s*=\s*(?>"[^"]*"|'[^']*'|[^\s>"'][^\s>]*|(?=>))|(?!\s*=)))*>"""
)
ATTR = re.compile(rb"""([^\s>/][^\s>/=]*)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>"'][^\s>]*)))?""")
# Hosts an image may load from (src=, and data-src= and the like, which only cost a closer look).
# An address's host as a URL parser reads it: after controls and spaces, with "\\" for "/", and
# "https:" followed by any number of slashes (a relative address yields its first segment). Tabs
# and newlines, which a URL parser drops, are taken in, so that the host looks odd (below).
IMG_HOSTS = re.compile(rb"""src(?:set)?\s*=\s*["']?[\x00-\x20]*(?:https?:)?[/\\]*([^/\\"' >?#:]+)""")
HREF_HOSTS = re.compile(rb"""href\s*=\s*["']?[\x00-\x20]*(?:https?:)?[/\\]*([^/\\"' >?#:]+)""")
# The hosts of a srcset's candidates after the first (an image picks one by its own rules).
SRCSET_HOSTS = re.compile(rb""",[\x00-\x20]*(?:https?:)?[/\\]*([^/\\"' >?#:,]+)""")
# A host a browser reads otherwise than it is written: user info, escapes, character references,
# tabs or newlines, a trailing dot. Such a tag gets a closer look.
ODD_HOST = re.compile(rb"[@%&\t\n\r\f]|\.\Z")
# An image that shows nothing: a tracking pixel if it loads from a third party.
PIXEL = re.compile(rb"""(?:width|height)\s*=\s*["']?[01](?:px)?["'\s/>]|display\s*:\s*none|visibility\s*:\s*hidden""")
SRC_AND_TYPE = (b"src", b"type", b"href", b"xlink:href")  # an SVG script loads its href
SRC_AND_SRCSET = (b"src", b"srcset")
CHARREF = re.compile(rb"&[#a-zA-Z]")
OPTANON = re.compile(rb"(?:^|\s)optanon-category-([a-z0-9-]+)", re.IGNORECASE)
CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")

# Script types a browser runs (the HTML spec's JavaScript MIME types, plus "module").
JS_TYPES = frozenset(
    b"text/" + t
    for t in (b"javascript", b"ecmascript", b"jscript", b"livescript", b"x-javascript", b"x-ecmascript")
    + tuple(b"javascript1." + bytes([48 + i]) for i in range(6))
) | {b"", b"module", b"application/javascript", b"application/ecmascript", b"application/x-javascript", b"application/x-ecmascript"}
INERT = b"text/plain"
# Where other consent tools keep the real address of an inert iframe, image or script.
HELD_SRC = (b"data-consentmw-src", b"data-src", b"data-cookieblock-src", b"data-ot-src")


class Attr(NamedTuple):
    name: bytes  # lowercased
    start: int  # where the attribute (its name) starts in the buffer
    name_end: int
    end: int
    value: bytes | None  # raw, as written, without quotes


def parse_attrs(buf: bytes, start: int, end: int) -> dict[bytes, Attr]:
    attrs: dict[bytes, Attr] = {}
    for m in ATTR.finditer(buf, start, end):
        name = m.group(1).lower()
        value = m.group(2) if m.group(2) is not None else m.group(3) if m.group(3) is not None else m.group(4)
        # The first of a repeated attribute wins, as in browsers; the others are kept under a key
        # no real name has, so that moving a src aside moves them all (else the next one takes over).
        key = name if name not in attrs else name + b" %d" % m.start()
        attrs[key] = Attr(name, m.start(), m.end(1), m.end(), value)
    return attrs


def first_values(buf: bytes, low: bytes, start: int, end: int, names: tuple[bytes, ...]) -> dict[bytes, bytes]:
    """The first value of each of `names` in a tag (`low` is `buf` lowercased), decoded and
    lowercased, as URLs or types to match. Read attribute by attribute, so "src=" written inside
    another attribute's quoted value (an alt text, a title) is never taken for the tag's own address."""
    found: dict[bytes, bytes] = {}
    for m in ATTR.finditer(low, start, end):
        name = m.group(1)
        if name in names and name not in found:
            # A valueless attribute is the empty string: it wins over a later repeat all the same.
            i = m.lastindex or 0
            value = m.group(i) if i > 1 else b""
            found[name] = (url_of(buf[m.start(i) : m.end(i)]).lower() if value.find(b"&") >= 0 else value).strip()
    return found


def type_of(attr: Attr | None) -> bytes:
    return url_of(attr.value or b"").split(b";")[0].strip().lower() if attr is not None else b""


def quoted(value: bytes) -> bytes:
    return b'"' + value.replace(b'"', b"&quot;") + b'"'


def url_of(value: bytes) -> bytes:
    """An attribute value as the browser reads it: character references decoded (named ones are
    case-sensitive, so this takes the value as written, not lowercased)."""
    if b"&" not in value:
        return value
    if CHARREF.search(value.replace(b"&amp;", b"")) is None:
        return value.replace(b"&amp;", b"&")
    return html.unescape(value.decode("latin-1")).encode("utf-8", "replace")


class HTMLRewriter:
    """What rewriting needs from a policy, worked out once."""

    def __init__(self, policy: Policy, *, trackers: TrackerRules | None = None, inline_limit: int = 65536, max_tag: int = 65536) -> None:
        self.policy = policy
        self.trackers = trackers if trackers is not None else TrackerRules(policy)
        # An inline script is classified on at most this many bytes of its code.
        self.inline_limit = inline_limit
        # A start tag longer than this is passed through as it is (a huge data: URL is no tracker).
        self.max_tag = max_tag
        self.by_service = {t.id: t.category for t in self.trackers.trackers}
        self.rewritten: dict[tuple[bytes, tuple[str, ...], bool], bytes | bool] = {}

    def stream(self, allowed: Collection[str], *, head: bytes = b"", body_end: bytes = b"", page: tuple[bytes, str] | None = None) -> RewriteStream:
        """A stream for one response. ``allowed``: the visitor's allowed category ids (required
        ones included). ``head`` goes right after ``<head>``; ``body_end`` right before ``</body>``.
        Both are added only to whole documents (with ``<html>``, ``<head>`` or ``<body>``), never
        to fragments. ``page``: the page's host (lowercase, no port) and path, to report
        third-party tags left live."""
        return RewriteStream(self, frozenset(allowed), head, body_end, page)

    def marked_categories(self, tag: int, attrs: dict[bytes, Attr], script_type: bytes | None) -> tuple[str, ...] | None:
        """Categories that markup of consentmw or of another consent tool gives the tag, if any."""
        names: list[bytes]
        if (a := attrs.get(b"data-consentmw-category")) and a.value:
            names, tool = a.value.split(), "consentmw"
        elif (a := attrs.get(b"data-cookieconsent")) and a.value and a.value.strip().lower() != b"ignore":
            names, tool = [n.strip() for n in a.value.split(b",") if n.strip()], "Cookiebot"
        elif (a := attrs.get(b"class")) and a.value and (m := OPTANON.search(a.value)):
            names, tool = [n for n in m.group(1).split(b"-") if n], "OneTrust"
        elif tag == SCRIPT and script_type == INERT and (a := attrs.get(b"data-category")) and a.value:
            names, tool = [a.value.strip()], "vanilla-cookieconsent"
        elif (a := attrs.get(b"data-name")) and a.value and (script_type == INERT if tag == SCRIPT else b"src" not in attrs):
            return (self.klaro_category(a.value.decode("utf-8", "replace").strip()),)
        else:
            return None
        cats = []
        for raw in names:
            name = raw.decode("utf-8", "replace")
            cat = self.policy.category_for(name)
            if cat is None:
                self.trackers.warn_undeclared(f"{tool} category {name!r}", f"{tool}-marked", name)
                cat = "?" + name
            cats.append(cat)
        return tuple(dict.fromkeys(cats)) or None

    def klaro_category(self, name: str) -> str:
        service = CAMEL.sub("-", name).lower()
        cat = self.by_service.get(service) or self.by_service.get(name) or self.policy.category_for(name)
        if cat is None:
            self.trackers.warn_undeclared(f"Klaro service {name!r}", "Klaro-marked", name)
            return "?" + name
        return cat


class RewriteStream:
    __slots__ = ("rw", "allowed", "head", "body_end", "carry", "raw_end", "document", "head_done", "body_done", "page")

    def __init__(self, rw: HTMLRewriter, allowed: frozenset[str], head: bytes, body_end: bytes, page: tuple[bytes, str] | None = None) -> None:
        self.rw = rw
        self.page = page
        self.allowed = allowed
        self.head = head
        self.body_end = body_end
        self.carry = b""
        # Inside a comment or raw-text element: the bytes that end it.
        self.raw_end: bytes | None = None
        self.document = False
        self.head_done = not head
        self.body_done = not body_end

    def feed(self, data: bytes) -> bytes:
        return self._run(self.carry + data if self.carry else data, final=False)

    def close(self) -> bytes:
        out = self._run(self.carry, final=True) if self.carry else b""
        if self.document and not self.head_done:
            out += self.head
        if self.document and not self.body_done:
            out += self.body_end
        self.head_done = self.body_done = True
        return out

    def _run(self, buf: bytes, final: bool) -> bytes:
        low = buf.lower()
        n = len(buf)
        out: list[bytes] = []
        pos = 0  # buf[:pos] is in out
        at = 0  # where the scan goes on; buf[pos:at] is copied as it came, in one piece when needed
        search = SCAN.search
        while True:
            if self.raw_end is not None:
                end, keep = find_end(low, self.raw_end, at, final)
                if end < 0:
                    out.append(buf[pos:keep])
                    pos = keep
                    break
                at = end
                self.raw_end = None
            m = search(low, at)
            if m is None:
                # Keep back what could be the start of a tag name cut by the chunk's end.
                lt = -1 if final else low.rfind(b"<", max(at, n - SCAN_TAIL))
                safe = lt if lt >= 0 else n
                out.append(buf[pos:safe])
                pos = safe
                break
            start, name_end = m.span()
            kind = KINDS[low[start + 1 : name_end]]
            if kind == COMMENT:
                at = start + 2  # "<!-->" and "<!--->" are whole comments
                self.raw_end = b"-->"
                continue
            if kind == DOCTYPE:
                # A whole document even if it leaves out <html>, <head> and <body>: what goes
                # first in <head> goes before its first tag that matters.
                self.document = True
                at = name_end
                continue
            if name_end >= n:
                if final:
                    out.append(buf[pos:])
                    pos = n
                    break
                out.append(buf[pos:start])
                pos = start
                break
            if low[name_end] not in DELIMITERS:  # <header>, <scripts>: not ours
                at = name_end
                continue
            if (kind == IMG or kind == LINK) and (skip := self._not_tracker(kind, low, name_end)):
                at = skip
                continue
            tag = TAG_REST.match(buf, name_end)
            if tag is None:
                if final or n - start > self.rw.max_tag:
                    at = name_end
                    continue
                out.append(buf[pos:start])
                pos = start
                break
            tag_end = tag.end()
            if kind >= HEAD:
                out.append(buf[pos:start])
                pos = at = self._structure(kind, buf, start, tag_end, out)
                continue
            # "<style/>", "<script/>" close themselves in SVG: what follows is markup there (and
            # is looked at as such; a script's code is classified all the same).
            closed = buf[tag_end - 2] == 47  # "/"
            if kind == RAWTEXT:
                at = tag_end
                if not closed:
                    self.raw_end = b"</" + low[start + 1 : name_end]
                continue
            if kind == SCRIPT:
                replacement = self._script(buf, low, name_end, tag_end, final)
                if replacement is None:
                    out.append(buf[pos:start])
                    pos = start
                    break
                if not closed:
                    self.raw_end = b"</script"
            else:
                replacement = self._element(kind, buf, low, start, name_end, tag_end)
                if kind == IFRAME:
                    self.raw_end = b"</iframe"
            if not self.head_done and self.document:
                out += (buf[pos:start], self.head)
                self.head_done = True
                pos = start
            if replacement is not True:
                out += (buf[pos:start], replacement)
                pos = tag_end
            at = tag_end
        self.carry = buf[pos:]
        return b"".join(out)

    def _not_tracker(self, kind: int, low: bytes, start: int) -> int:
        """Where an image or link tag of no tracker ends, or 0 when it needs a closer look. Most
        are the site's own: they are ruled out by their hosts, without parsing the tag."""
        gt = low.find(b">", start)
        if gt < 0:
            return 0
        # bytes' "in" first tries its operand as an int, which costs a caught TypeError: find().
        if low.count(b'"', start, gt) & 1 or low.count(b"'", start, gt) & 1:
            return 0  # a ">" inside a quoted value: parse it properly
        if low.find(b"@", start, gt) >= 0:
            return 0  # user info ("site.example:x@tracker/"): the host is not the first name in the URL
        if kind == LINK:
            # Only resource hints (preload, prefetch, preconnect) reach out before any consent.
            if low.find(b"pre", start, gt) < 0 and low.find(b"&", start, gt) < 0:  # rel="p&#114;eload"
                return gt + 1
            hosts = HREF_HOSTS.findall(low, start, gt)
        else:
            if low.find(b"data-", start, gt) >= 0 or low.find(b"optanon", start, gt) >= 0:
                return 0  # maybe another consent tool's marking
            hosts = IMG_HOSTS.findall(low, start, gt)
            if low.find(b",", start, gt) >= 0:
                hosts += SRCSET_HOSTS.findall(low, start, gt)
        trackers = self.rw.trackers
        if trackers.ungated_src and (low.find(b"src", start, gt) >= 0 or low.find(b"href", start, gt) >= 0):
            return 0
        known = trackers._by_host
        for host in hosts:
            found = known.get(host)
            if found is None and ODD_HOST.search(host):
                return 0
            if found is None:
                found = trackers.candidates(host)
            if found:
                return 0
        if kind == IMG and self.page is not None and PIXEL.search(low, start, gt):
            return 0  # a pixel from an unknown host: reported by the closer look
        return gt + 1

    def _structure(self, kind: int, buf: bytes, start: int, tag_end: int, out: list[bytes]) -> int:
        self.document = True
        if kind in (HEAD, HTML):
            out.append(buf[start:tag_end])
            if kind == HEAD and not self.head_done:
                out.append(self.head)
                self.head_done = True
            return tag_end
        if not self.head_done:
            out.append(self.head)
            self.head_done = True
        if kind == BODY_END and not self.body_done:
            out.append(self.body_end)
            self.body_done = True
        out.append(buf[start:tag_end])
        return tag_end

    def _script(self, buf: bytes, low: bytes, name_end: int, tag_end: int, final: bool) -> bytes | bool | None:
        """The <script> start tag to write, True to keep it as it is, None to wait for more data."""
        start = name_end - 7
        if low.find(b"data-", name_end, tag_end) >= 0 or low.find(b"optanon", name_end, tag_end) >= 0:
            attrs = parse_attrs(buf, name_end, tag_end)
            script_type = type_of(attrs.get(b"type"))
            cats = self.rw.marked_categories(SCRIPT, attrs, script_type)
            if cats is not None:
                return self._rewrite(SCRIPT, buf, start, tag_end, attrs, cats, script_type)
        # The common case: only src and type matter, read without parsing every attribute.
        values = first_values(buf, low, name_end, tag_end, SRC_AND_TYPE)
        src = values.get(b"src", values.get(b"href", values.get(b"xlink:href")))
        script_type = values[b"type"].split(b";")[0].strip() if b"type" in values else None
        if (script_type or b"") not in JS_TYPES:
            return True
        if src is not None:
            found = self.rw.trackers.match_src(src)
            if not found and self.page is not None:
                self.rw.trackers.report_left_live(src, *self.page, "script")
        else:
            close, keep = find_end(low, b"</script", tag_end, final)
            if close < 0 and not final and keep - tag_end < self.rw.inline_limit:
                return None
            code_end = min(close if close >= 0 else keep, tag_end + self.rw.inline_limit)
            found = self.rw.trackers.match_inline(low[tag_end:code_end])
        if not found:
            return True
        return self._rewrite_known(SCRIPT, buf, start, name_end, tag_end, self.rw.trackers.categories(found))

    def _element(self, kind: int, buf: bytes, low: bytes, start: int, name_end: int, tag_end: int) -> bytes | bool:
        if kind == LINK or (low.find(b"data-", name_end, tag_end) < 0 and low.find(b"optanon", name_end, tag_end) < 0):
            values = first_values(buf, low, name_end, tag_end, (b"href",) if kind == LINK else SRC_AND_SRCSET)
            address = values.get(b"href" if kind == LINK else b"src")
            found = self.rw.trackers.match_src(address) if address is not None else ()
            if b"srcset" in values:
                found += self.srcset_trackers(values[b"srcset"])
            if kind == LINK and not found and address is not None and (host := HOST.match(normalize_url(address.lower()))):
                # preconnect to a tracker's host: it serves every purpose its trackers have.
                found = self.rw.trackers.candidates(host.group(1))
            if not found and address is not None and self.page is not None and (kind == IFRAME or (kind == IMG and PIXEL.search(low, name_end, tag_end))):
                self.rw.trackers.report_left_live(address, *self.page, "iframe" if kind == IFRAME else "pixel")
            return self._rewrite_known(kind, buf, start, name_end, tag_end, self.rw.trackers.categories(found)) if found else True
        attrs = parse_attrs(buf, name_end, tag_end)
        cats = self.rw.marked_categories(kind, attrs, None)
        if cats is None and ((src := attrs.get(b"src")) is not None or b"srcset" in attrs):
            found = self.rw.trackers.match_src(url_of(src.value or b"").lower()) if src is not None else ()
            if (srcset := attrs.get(b"srcset")) is not None:
                found += self.srcset_trackers(url_of(srcset.value or b"").lower())
            cats = self.rw.trackers.categories(found) if found else None
        return self._rewrite(kind, buf, start, tag_end, attrs, cats, None)

    def srcset_trackers(self, srcset: bytes) -> tuple[Tracker, ...]:
        found: tuple[Tracker, ...] = ()
        for url in srcset_urls(srcset):
            found += self.rw.trackers.match_src(url)
        return found

    def _rewrite_known(self, kind: int, buf: bytes, start: int, name_end: int, tag_end: int, cats: tuple[str, ...]) -> bytes | bool:
        # The same tracker tags come on every page: their rewritten form is remembered.
        tag = buf[start:tag_end]
        key = (tag, cats, all(c in self.allowed for c in cats))
        done = self.rw.rewritten.get(key)
        if done is None:
            attrs = parse_attrs(buf, name_end, tag_end)
            done = self._rewrite(kind, buf, start, tag_end, attrs, cats, type_of(attrs.get(b"type")) if kind == SCRIPT else None)
            if len(tag) <= 4096 and len(self.rw.rewritten) < 4096:
                self.rw.rewritten[key] = done
        return done

    def _rewrite(self, kind: int, buf: bytes, start: int, tag_end: int, attrs: dict[bytes, Attr], cats: tuple[str, ...] | None, script_type: bytes | None) -> bytes | bool:
        if cats is None:
            return True
        live = all(c in self.allowed for c in cats)
        rename: dict[bytes, bytes] = {}
        drop: set[bytes] = set()
        add: list[tuple[bytes, bytes]] = []
        held = next((attrs[a].value for a in HELD_SRC if a in attrs and attrs[a].value), None)
        if live:
            # Allowed, but held inert by markup: switch it on here rather than wait for the banner.
            if kind == SCRIPT and script_type == INERT:
                drop.add(b"type")
                real = attrs.get(b"data-consentmw-type") or attrs.get(b"data-type")
                if real is not None and real.value and real.value.lower() != INERT:
                    add.append((b"type", real.value))
            if b"src" not in attrs and held is not None and (kind != SCRIPT or script_type == INERT):
                add.append((b"src", held))
            if not drop and not add:
                return True
        elif kind == LINK:
            # A resource hint: nothing to bring back later, the tracker's own tag loads it then.
            if b"href" in attrs:
                rename[b"href"] = b"data-consentmw-href"
                drop.add(b"data-consentmw-href")
            add.append((b"data-consentmw-category", " ".join(cats).encode()))
        else:
            if b"srcset" in attrs and kind != SCRIPT:
                rename[b"srcset"] = b"data-consentmw-srcset"
                drop.add(b"data-consentmw-srcset")
            if b"src" in attrs:
                rename[b"src"] = b"data-consentmw-src"
                drop.add(b"data-consentmw-src")
            elif held is not None and b"data-consentmw-src" not in attrs:
                add.append((b"data-consentmw-src", held))
            if kind == SCRIPT and script_type != INERT:
                if b"type" in attrs:
                    rename[b"type"] = b"data-consentmw-type"
                    drop.add(b"data-consentmw-type")
                add.append((b"type", INERT))
            elif kind == SCRIPT and b"data-consentmw-type" not in attrs and (real := attrs.get(b"data-type")) is not None and real.value:
                add.append((b"data-consentmw-type", real.value))
            if b"data-consentmw-category" not in attrs:
                add.append((b"data-consentmw-category", " ".join(cats).encode()))
        return edit_tag(buf, start, tag_end, attrs, rename, drop, add)


def edit_tag(buf: bytes, start: int, tag_end: int, attrs: dict[bytes, Attr], rename: dict[bytes, bytes], drop: set[bytes], add: list[tuple[bytes, bytes]]) -> bytes:
    """The start tag buf[start:tag_end] with attributes renamed, dropped and added; the rest as written."""
    pieces: list[bytes] = []
    cursor = start
    for attr in sorted(attrs.values(), key=lambda a: a.start):
        if attr.name in rename and attr.name not in drop:
            pieces += [buf[cursor : attr.start], rename[attr.name]]
            cursor = attr.name_end
        elif attr.name in drop:
            pieces.append(buf[cursor : attr.start].rstrip())
            cursor = attr.end
    close_at = tag_end - 2 if buf[tag_end - 2 : tag_end] == b"/>" else tag_end - 1
    pieces.append(buf[cursor:close_at].rstrip())
    for name, value in add:
        pieces += [b" ", name, b"=", quoted(value)]
    pieces.append(buf[close_at:tag_end])
    return b"".join(pieces)


def srcset_urls(srcset: bytes) -> list[bytes]:
    """The candidates' URLs of a srcset, as the HTML spec splits it: a URL runs to whitespace (a
    trailing comma ends the candidate), its descriptors to the next comma."""
    urls = []
    i, n = 0, len(srcset)
    while i < n:
        while i < n and srcset[i] in b" \t\n\r\f,":
            i += 1
        j = i
        while j < n and srcset[j] not in b" \t\n\r\f":
            j += 1
        if j > i:
            url = srcset[i:j]
            urls.append(url.rstrip(b","))
            if url[-1:] != b",":
                comma = srcset.find(b",", j)
                j = n if comma < 0 else comma + 1
        i = j
    return urls


def find_end(low: bytes, marker: bytes, pos: int, final: bool) -> tuple[int, int]:
    """Where ``marker`` (``-->`` or ``</name`` followed by a delimiter) next starts in ``low``:
    ``(index, index)``, or ``(-1, keep)`` when it is not there yet, ``low[keep:]`` being what could
    still turn out to be its beginning."""
    n = len(low)
    if marker == b"-->":
        # A comment ends at "-->", and in browsers at "--!>" as well; the index is its end.
        i = low.find(b"--", pos)
        while i >= 0:
            if low.startswith(b">", i + 2):
                return i + 3, i + 3
            if low.startswith(b"!>", i + 2):
                return i + 4, i + 4
            i = low.find(b"--", i + 1)
        return (-1, n) if final else (-1, max(pos, n - 3))
    i = low.find(marker, pos)
    while i >= 0:
        after = i + len(marker)
        if after >= n:
            return (i, i) if final else (-1, i)
        if low[after] in DELIMITERS:
            return i, i
        i = low.find(marker, i + 1)
    if final:
        return -1, n
    return -1, max(pos, n - len(marker) + 1)
