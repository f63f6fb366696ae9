from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from functools import cache
from importlib import resources
from typing import Any
from urllib.parse import unquote_to_bytes

import idna

from consentmw.core.catalog import cookies, hosts, lookup_host
from consentmw.core.errors import PolicyError
from consentmw.core.model import PolicyModel

logger = logging.getLogger("consentmw.core.trackers")

HOST = re.compile(rb"\s*(?:https?:)?//([^/?#\s:@]+)")
# Anything a URL parser reads differently from how it is written: controls and spaces (stripped
# or removed), backslashes (slashes in http URLs), percent-escapes, user info, a port, a host's
# trailing dot, "https:" without two slashes, three or more slashes, dot segments.
ODD_URL = re.compile(rb"[\x00-\x20\\%@\x80-\xff]|/\.|\.(?:[/:?#]|\Z)|:(?!//)|///")
AUTHORITY = re.compile(rb"(?:https?:/*|//+)([^/?#]*)")
DOT_SEGMENTS = re.compile(rb"/(?:\.\.?(?=[/?#]|\Z))")
C0_AND_SPACE = bytes(range(33))
ANY = re.compile(b"")
# What inline code does to load or send to an address: add an element, write markup, or a network call.
LOADS = rb"createelement|\.src\s*=|document\.write|insertbefore|appendchild|import\s*\(|sendbeacon|new\s+image|fetch\s*\(|\.open\s*\(\s*['\"`](?:get|post|put)"
# Two string literals joined by "+" ('https://' + 'edge.example.com/x.js'): read as one.
JUNCTION = re.compile(rb"""['"`]\s*\+\s*['"`]""")
HOST_NAME = rb"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)+"
# The forms a vendor's global takes in trackers.json "globals": fbq( any call, ire(' a call whose
# first argument is a string, ym(0 a number, ttq. a member used (called, assigned, chained), _paq= an
# assignment, wcs_add[ an index, "new EN(" a construction.
GLOBAL_FORMS = {
    "(": rb"\(",
    "('": rb"\(\s*['\"`]",
    "(0": rb"\(\s*\d",
    ".": rb"\.\s*[a-z_$][\w$]*\s*(?:[(.\[]|=(?!=))",
    "=": rb"=(?!=)",
    "[": rb"\[",
}
# Hosts remembered for "left live" warnings; past this, one last warning and no more.
LEFT_LIVE_LIMIT = 1000


def normalize_url(url: bytes) -> bytes:
    """``url`` (lowercased) as a browser's URL parser reads it, for matching: ``//host/path``
    for an http(s) or scheme-relative address, the URL as it was for anything else."""
    if ODD_URL.search(url) is None:
        return url
    url = url.strip(C0_AND_SPACE).translate(None, b"\t\n\r").replace(b"\\", b"/")
    m = AUTHORITY.match(url)
    if m is None:
        return url
    host = canonical_host(m.group(1).rpartition(b"@")[2].partition(b":")[0])
    path = url[m.end() :]
    if b"%" in path:
        path = UNRESERVED_ESCAPE.sub(lambda e: unquote_to_bytes(e.group()).lower(), path)
    if DOT_SEGMENTS.search(path):
        path = remove_dot_segments(path)
    return b"//" + host + path


def canonical_host(host: bytes) -> bytes:
    """A host as the URL standard's host parser leaves it before a browser connects: percent-
    decoded, mapped by UTS #46 (case, full-width forms, the ideographic full stop, soft hyphens
    dropped) the way Chromium's ICU call does (non-transitional, no STD3 rules), non-ASCII labels
    in Punycode, and without a trailing dot (the same host to DNS). A host the parser would reject
    comes back as it was: it cannot load anything, so it matches nothing either."""
    if b"%" in host:
        host = unquote_to_bytes(host)
    if host.isascii():
        return host.lower().rstrip(b".")
    try:
        mapped = idna.uts46_remap(host.decode("utf-8"), std3_rules=False, transitional=False)
        labels = [label if label.isascii() else "xn--" + label.encode("punycode").decode("ascii") for label in mapped.split(".")]
    except (UnicodeError, idna.IDNAError):
        return host
    return ".".join(labels).encode("ascii").rstrip(b".")


def url_host(url: bytes) -> bytes | None:
    """The host an http(s) or scheme-relative address (lowercased) loads from, or None."""
    m = HOST.match(normalize_url(url.strip()))
    return m.group(1) if m else None


# An address in script code: absolute or scheme-relative anywhere (a string's quotes, spaces,
# brackets and JS punctuation end it), or without a scheme at the start of a string literal
# ('edge.example.com/s/x.js', which code prefixes with "https://" or location.protocol).
ADDRESS_CHARS = rb"""[^\s'"`<>(){}\[\],;\\]"""
# Written so that every alternative starts with a literal: CPython's re then skips ahead fast.
URL_IN_CODE = re.compile(rb"(?:https?:/|/)/" + ADDRESS_CHARS + rb"+")
BARE_ADDRESS = re.compile(rb"['\"`](" + HOST_NAME + rb"(?:[:/?#]" + ADDRESS_CHARS + rb"*)?)(?=['\"`])")
LOAD_VERBS = re.compile(LOADS)
OTHER_MEMBER = re.compile(rb"[\w$.]")  # before a name, makes it something else's
NEW_BEFORE = re.compile(rb"(?<![\w$.])new\s+\Z")  # "new EN(": the keyword right before the name
UNRESERVED_ESCAPE = re.compile(rb"%(?:2[de]|5f|7e|[46][1-9a-f]|[57][0-9a]|3[0-9])", re.IGNORECASE)


def remove_dot_segments(path: bytes) -> bytes:
    cut = min((i for i in (path.find(b"?"), path.find(b"#")) if i >= 0), default=len(path))
    out: list[bytes] = []
    segments = path[:cut].split(b"/")
    for i, segment in enumerate(segments[1:], 1):
        last = i == len(segments) - 1
        if segment == b"..":
            if out:
                out.pop()
            if last:
                out.append(b"")
        elif segment == b".":
            if last:
                out.append(b"")
        else:
            out.append(segment)
    return b"/" + b"/".join(out) + path[cut:]


@dataclass(frozen=True, slots=True)
class Tracker:
    id: str
    name: str
    vendor: str
    category: str  # the default purpose: a category id or alias, resolved per policy
    hosts: tuple[str, ...] = ()
    src: tuple[re.Pattern[bytes], ...] = ()
    keywords: tuple[bytes, ...] = ()
    inline: tuple[re.Pattern[bytes], ...] = ()
    globals: tuple[str, ...] = ()  # the vendor's functions and queues, in the forms of GLOBAL_FORMS
    fallback: bool = False
    from_catalog: bool = False  # the host catalog's whole-entity rule: counts only when nothing else matched


def compile_patterns(patterns: Iterable[str], where: str) -> tuple[re.Pattern[bytes], ...]:
    compiled = []
    for i, pattern in enumerate(patterns):
        try:
            compiled.append(re.compile(pattern.encode(), re.IGNORECASE))
        except re.error as exc:
            raise PolicyError(f"not a valid regular expression: {exc}", f"{where}[{i}]") from None
    return tuple(compiled)


def tracker_from_json(raw: Mapping[str, Any], where: str = "$") -> Tracker:
    return Tracker(
        id=raw["id"],
        name=raw.get("name", raw["id"]),
        vendor=raw.get("vendor", raw.get("name", raw["id"])),
        category=raw["category"],
        hosts=tuple(h.lower() for h in raw.get("hosts", ())),
        src=compile_patterns(raw.get("src", ()), f"{where}.src"),
        keywords=tuple(k.lower().encode() for k in raw.get("keywords", ())),
        inline=compile_patterns(raw.get("inline", ()), f"{where}.inline"),
        globals=tuple(check_global(g, f"{where}.globals[{i}]") for i, g in enumerate(raw.get("globals", ()))),
        fallback=raw.get("fallback", False),
    )


GLOBAL_SPEC = re.compile(r"(new )?([A-Za-z_$][\w$]*)(\(['0]?|[.=\[])?")


def check_global(spec: str, where: str) -> str:
    m = GLOBAL_SPEC.fullmatch(spec)
    if m is None or m.group(3) is None or (m.group(1) is not None and m.group(3) != "("):
        raise PolicyError(f"not a vendor global: {spec!r} (write fbq( ire(' ym(0 ttq. _paq= wcs_add[ or \"new EN(\")", where)
    return spec


class Globals:
    """Every tracker's globals as one regular expression; which tracker a match is."""

    def __init__(self, trackers: Iterable[Tracker]) -> None:
        self.forms: dict[tuple[bytes, str], list[Tracker]] = {}  # (name, form) -> trackers; form "new" for constructions
        for tracker in trackers:
            for spec in tracker.globals:
                new, name, form = GLOBAL_SPEC.fullmatch(spec).groups()  # type: ignore[union-attr]
                self.forms.setdefault((name.lower().encode(), "new" if new else form), []).append(tracker)
        self.used = sorted({"(" if f == "new" else f for _, f in self.forms}, key=len, reverse=True)
        forms = b"|".join(b"(?P<g%d>%s)" % (i, GLOBAL_FORMS[f]) for i, f in enumerate(self.used))
        # The pattern starts with the names alone, so that CPython's re skips ahead on their first
        # letters; what precedes a name ("new", "window.", a dot) is checked in trackers(): a
        # lookbehind or a "new" alternative in front made the scan several times slower.
        names = b"|".join(re.escape(n) for n in sorted({n for n, _ in self.forms}, key=len, reverse=True))
        self.scan = re.compile(rb"(?P<name>" + names + rb")\s*(?:" + forms + rb")") if self.forms else re.compile(rb"(?!)")

    def trackers(self, code: bytes, m: re.Match[bytes]) -> list[Tracker]:
        """The trackers whose global ``m`` is, unless it is a member of something else (``shop.fbq``)."""
        start = m.start()
        if start > 0 and OTHER_MEMBER.match(code, start - 1) and code[max(0, start - 7) : start] != b"window.":
            return []
        form = self.used[int(m.lastgroup[1:])]  # type: ignore[index]
        name = m.group("name")
        found = self.forms.get((name, form), [])
        if form in ("('", "(0"):  # a call with a string or number first is also a call
            found = found + self.forms.get((name, "("), [])
        if form[0] == "(" and (name, "new") in self.forms and NEW_BEFORE.search(code, max(0, start - 64), start):
            found = found + self.forms[name, "new"]
        return found


@cache
def catalog() -> tuple[Tracker, ...]:
    """The shipped tracker catalog (package data ``trackers.json``)."""
    data = json.loads(resources.files("consentmw.core").joinpath("trackers.json").read_text("utf-8"))
    return tuple(tracker_from_json(raw, f"trackers.json:$.trackers[{i}]") for i, raw in enumerate(data["trackers"]))


class TrackerRules:
    """The catalog as one policy sees it, built once per policy: each tracker's category resolved,
    the policy's own ``services[].match`` patterns added, lookups indexed by host and keyword.

    A policy that lists a tracker id among a category's services moves the tracker there; otherwise
    its default category goes through the policy's aliases. A tracker whose category the policy does
    not declare gets ``"?<default>"``, which is no category of the policy, so no visitor can allow
    it: nobody can consent to a purpose the policy never named."""

    def __init__(self, policy: PolicyModel, base: Iterable[Tracker] | None = None) -> None:
        placement: dict[str, str] = {}
        extra: list[Tracker] = []
        for ci, cat in enumerate(policy.categories):
            for si, service in enumerate(cat.services):
                placement[service["id"]] = cat.id
                if match := service.get("match"):
                    where = f"$.categories[{ci}].services[{si}].match"
                    name = service.get("name", service["id"])
                    src = compile_patterns(match.get("src", ()), f"{where}.src")
                    inline = compile_patterns(match.get("inline", ()), f"{where}.inline")
                    extra.append(Tracker(service["id"], name, service.get("provider", name), cat.id, src=src, inline=inline))
        trackers = []
        for tracker in [*(catalog() if base is None else base), *extra]:
            category = placement.get(tracker.id) or policy.category_for(tracker.category)
            trackers.append(replace(tracker, category=category or "?" + tracker.category))
        self.trackers: tuple[Tracker, ...] = tuple(trackers)
        self.by_host: dict[bytes, list[Tracker]] = {}
        self.by_keyword: dict[bytes, list[Tracker]] = {}
        for tracker in trackers:
            for host in tracker.hosts:
                self.by_host.setdefault(host.encode(), []).append(tracker)
            for keyword in tracker.keywords:
                self.by_keyword.setdefault(keyword, []).append(tracker)
        # Site-specific patterns have no host or keyword to gate them: they run on every tag.
        self.ungated_src = tuple(t for t in trackers if t.src and not t.hosts)
        self.ungated_inline = tuple(t for t in trackers if t.inline and not t.keywords)
        self.globals = Globals(trackers)
        self.warned: set[str] = set()
        self.entity_categories = self._entity_categories(policy)
        self._entities: dict[str, Tracker] = {}
        self.left_live: set[bytes] = set()
        self._examined: dict[tuple[bytes, bytes], None] = {}  # (address, site) already looked at for the report
        self._verdicts: dict[tuple[bytes, bytes], bool] = {}
        self.site_domains = tuple(d.lstrip(".").lower().encode() for d in policy.data.get("cookie_domains") or () if d)
        self._by_host: dict[bytes, tuple[Tracker, ...]] = {}
        self._inline: dict[bytes, tuple[Tracker, ...]] = {}
        self._src: dict[bytes, tuple[Tracker, ...]] = {}

    def _entity_categories(self, policy: PolicyModel) -> dict[str, str | None]:
        self.policy = policy
        hosts(), cookies()  # loaded at start-up, not on a visitor's first page
        # The policy checked the names when it was loaded (policy_checks.check_catalog_entities).
        return dict((policy.data.get("catalog") or {}).get("entities", {}))

    def entity(self, host: bytes) -> Tracker | None:
        """The catalog's tracker for a host: its entity, in the category its kind (or the policy) gives."""
        entry = lookup_host(host.decode("latin-1"))
        if entry is None:
            return None
        category = self.entity_categories.get(entry.entity, entry.category)
        if category is None:
            return None
        tracker = self._entities.get(entry.entity)
        if tracker is None:
            resolved = self.policy.category_for(category) or "?" + category
            tracker = Tracker("catalog:" + entry.entity, entry.entity, entry.entity, resolved, src=(ANY,), fallback=True, from_catalog=True)
            self._entities[entry.entity] = tracker
        return tracker

    def report_left_live(self, url: bytes, site: bytes, page_path: str, what: str) -> None:
        """Log once per host and process that a tag of ``what`` loads ``url`` (no tracker matched it)
        from a third-party host the catalog does not know. ``site``: the page's host, lowercase."""
        if (url, site) in self._examined or len(self.left_live) > LEFT_LIVE_LIMIT:
            return
        if len(self._examined) < 4096:  # sites load the same scripts on every page
            self._examined[url, site] = None
        m = HOST.match(normalize_url(url.strip().lower()))
        if m is None:
            return  # relative: the site's own
        host = m.group(1).rstrip(b".")
        if lookup_host(host.decode("latin-1")) or self._host_trackers(host):
            return
        self._warn_left_live(host, url, site, page_path, what)

    def _warn_left_live(self, host: bytes, url: bytes, site: bytes, page_path: str, what: str) -> None:
        if host in self.left_live or len(self.left_live) > LEFT_LIVE_LIMIT or self.first_party(host, site):
            return
        self.left_live.add(host)
        if len(self.left_live) > LEFT_LIVE_LIMIT:
            logger.warning("consentmw: more than %d unknown third-party hosts left live; no more such warnings", LEFT_LIVE_LIMIT)
            return
        logger.warning(
            "consentmw: left live: unknown third-party host %s on %s (%s %s); declare it in the policy if it tracks",
            host.decode("latin-1"),
            page_path,
            what,
            url.decode("latin-1")[:200],
        )

    def maybe_left_live(self, host: bytes, site: bytes) -> bool:
        """Whether a tag loading from ``host`` (as a quick scan read it) could be one to report."""
        verdict = self._verdicts.get((host, site))
        if verdict is None:
            verdict = not (
                host.find(b".") < 0
                or self.first_party(host, site)
                or lookup_host(host.decode("latin-1")) is not None
                or self._host_trackers(host)
            )
            if len(self._verdicts) < 4096:  # images of one site come from a handful of hosts
                self._verdicts[host, site] = verdict
        return verdict and host not in self.left_live

    def first_party(self, host: bytes, site: bytes) -> bool:
        """The page's own host, a host above or below it, a sibling under the same "www."-less
        domain, or under one of the policy's cookie_domains."""
        site = site.removeprefix(b"www.")
        for domain in (site, *self.site_domains):
            if host == domain or host.endswith(b"." + domain) or domain.endswith(b"." + host):
                return True
        return False

    def match_src(self, url: bytes) -> tuple[Tracker, ...]:
        """Trackers whose tag loads ``url`` (as written in the page, any case)."""
        found = self._src.get(url)
        if found is None:
            address = normalize_url(url.strip().lower())
            m = HOST.match(address)
            candidates = self.candidates(m.group(1) if m else b"")
            found = self._narrow([t for t in candidates if any(p.search(address) for p in t.src)]) if candidates else ()
            # Sites load the same scripts on every page.
            if len(url) <= 1024 and len(self._src) < 4096:
                self._src[url] = found
        return found

    def candidates(self, host: bytes) -> tuple[Tracker, ...]:
        """Trackers a tag loading from ``host`` (lowercase; b"" for a relative URL) could be."""
        found = self._by_host.get(host)
        if found is None:
            found = self.ungated_src + self._host_trackers(host)
            if len(self._by_host) < 4096:  # images of one site come from a handful of hosts
                self._by_host[host] = found
        return found

    def _host_trackers(self, host: bytes) -> tuple[Tracker, ...]:
        found: list[Tracker] = []
        if entity := self.entity(host):
            found.append(entity)
        while host:
            found.extend(self.by_host.get(host, ()))
            host = host.partition(b".")[2]
        return tuple(dict.fromkeys(found))

    def match_inline(self, code: bytes, page: tuple[bytes, str] | None = None, what: str = "inline script") -> tuple[Tracker, ...]:
        """Trackers of inline code (a script, an event handler, a javascript: URL): a vendor's
        loader or calls (its hand-written patterns, or a use of one of its globals: ``fbq(...)``,
        ``ttq.track``, ``new EN()``), or a tracker's address written out in any form a browser
        accepts: absolute, scheme-relative, without a scheme at the start of a string, split across
        ``+``, in a template literal, as a ``new URL`` base. Whatever the code then does with it
        (``s.src = u``, ``import()``, ``fetch``, ``sendBeacon``, an import map) loads what the
        string says. A host the catalog knows only as an entity counts when the code also loads
        something, so a share link stays live. With ``page`` (the page's host and path), a
        third-party address nobody knows is logged as left live, once per host."""
        code = code.lower()
        if code.find(b"\\/") >= 0:  # "https:\/\/host\/path": slashes escaped in a JS string (json_encode)
            code = code.replace(b"\\/", b"/")
        cached = self._inline.get(code)
        if cached is None:
            cached = self._classify(code)
            # Sites send the same snippets and app bootstrap code on every page.
            if len(code) <= 8192 and len(self._inline) < 1024:
                self._inline[code] = cached
        found, unknown = cached
        if page is not None:
            for host, address in unknown:
                self._warn_left_live(host, address, page[0], page[1], what)
        return found

    def _classify(self, code: bytes) -> tuple[tuple[Tracker, ...], tuple[tuple[bytes, bytes], ...]]:
        candidates: list[Tracker] = list(self.ungated_inline)
        for keyword, trackers in self.by_keyword.items():
            if keyword in code:
                candidates.extend(trackers)
        matched = [t for t in dict.fromkeys(candidates) if any(p.search(code) for p in t.inline)]
        if JUNCTION.search(code) is not None:
            code = JUNCTION.sub(b"", code)
        # Separate passes, each starting on a literal: one combined alternation ran several times
        # slower in CPython's re (bench/bench_inline.py). Each is linear in the code's length.
        entities: list[Tracker] = []
        unknown: dict[bytes, bytes] = {}
        addresses = [(m.group(), True) for m in URL_IN_CODE.finditer(code)]
        addresses += [(b"//" + m.group(1), b"/" in m.group(1)) for m in BARE_ADDRESS.finditer(code)]
        for address, explicit in addresses:
            host_match = HOST.match(normalize_url(address))
            if host_match is None:
                continue
            host = host_match.group(1)
            found = self.match_src(address)
            # A catalog tracker's address counts as such; a host catalog entity only in a loader.
            matched.extend(t for t in found if not t.from_catalog)
            if (entity := self.entity(host)) is not None:
                entities.append(entity)
            elif not found and explicit and b"." in host and lookup_host(host.decode("latin-1")) is None:
                unknown.setdefault(host, address)  # a bare host name alone is not an address
        for m in self.globals.scan.finditer(code):
            matched.extend(self.globals.trackers(code, m))
        loads = LOAD_VERBS.search(code) is not None
        if loads:
            matched.extend(entities)
        return self._narrow(list(dict.fromkeys(matched))), tuple(unknown.items())[:64]

    @staticmethod
    def _narrow(matched: list[Tracker]) -> tuple[Tracker, ...]:
        specific = [t for t in matched if not t.fallback]
        hand_written = specific or [t for t in matched if not t.from_catalog]
        return tuple(hand_written or matched)

    def categories(self, trackers: Iterable[Tracker]) -> tuple[str, ...]:
        """The categories a visitor must all allow for a tag of these trackers to run."""
        needed: dict[str, None] = {}
        for tracker in trackers:
            if tracker.category.startswith("?"):
                self.warn_undeclared(tracker.vendor, tracker.name, tracker.category[1:])
            needed[tracker.category] = None
        return tuple(needed)

    def warn_undeclared(self, vendor: str, what: str, category: str) -> None:
        if vendor in self.warned:
            return
        self.warned.add(vendor)
        logger.warning(
            "consentmw: the page has a %s tag (%s) of category %r, which the policy does not declare; "
            "it stays inert for every visitor until the policy lists it among a category's services",
            what,
            vendor,
            category,
        )
