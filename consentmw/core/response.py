from __future__ import annotations

import logging
import re
from itertools import product

from consentmw.core.policy import Policy
from consentmw.core.setcookie import is_deletion, set_cookie_name

logger = logging.getLogger("consentmw")

def merge_vary(headers: list[tuple[bytes, bytes]], value: bytes) -> None:
    for i, (key, existing) in enumerate(headers):
        if key.lower() == b"vary":
            tokens = {t.strip().lower() for t in existing.split(b",")}
            if value.lower() not in tokens and b"*" not in tokens:
                headers[i] = (key, existing + b", " + value)
            return
    headers.append((b"vary", value))


def spellings(name: bytes) -> frozenset[bytes]:
    """Every way of casing a short header name. ASGI asks apps for lowercase names, but one that
    sends "SET-COOKIE" must not get past the filter. A set lookup costs the hot path what a compare
    does; the two sets hold 2,560 names (about 280 KB)."""
    return frozenset(map(bytes, product(*((c, c ^ 32) if 97 <= c <= 122 else (c,) for c in name))))


CONTENT_TYPE = spellings(b"content-type")
SET_COOKIE = spellings(b"set-cookie")
# Headers a response of any type may lose: cookies of refused categories, and tracker addresses a
# browser fetches from the headers of any document it shows (a JSON or text/plain page too).
# "speculation-rules" has 2^16 spellings: sets of them made every full garbage collection of the
# process walk 200,000 entries (about 20 ms each time), so names are judged as they come instead.
WATCHED = frozenset((b"set-cookie", b"link", b"speculation-rules", b"content-type"))
WATCHED_NAMES: dict[bytes, bytes] = {}


def watched_name(name: bytes) -> bytes:
    """The header name in lower case when it is one of WATCHED, else b"". An app sends a handful
    of header names, so the answer for each is remembered."""
    found = WATCHED_NAMES.get(name)
    if found is None:
        found = name.lower()
        if found not in WATCHED:
            found = b""
        if len(WATCHED_NAMES) < 256:
            WATCHED_NAMES[name] = found
    return found


HTML_VERDICTS: dict[bytes, bool] = {}


def html_verdict(content_type: bytes) -> bool:
    """Whether a Content-Type value names an HTML body; an app answers with a handful of content
    types, so the verdict for each is remembered."""
    html = HTML_VERDICTS.get(content_type)
    if html is None:
        # Media types are case-insensitive ("Text/Html" is HTML too). find() rather than `in`:
        # bytes.__contains__ first tries the needle as an int and pays for a TypeError.
        html = content_type.lower().find(b"html") >= 0
        if len(HTML_VERDICTS) < 64:
            HTML_VERDICTS[content_type] = html
    return html


# Fetch's "get, decode, and split": a value runs to the next comma outside a quoted string, where a
# backslash escapes the next character and an unclosed quote runs to the end.
HEADER_VALUE = re.compile(rb'[^",]*(?:"(?:[^"\\]|\\.)*(?:"|\\?\Z)[^",]*)*', re.DOTALL)
# A MIME type's essence (the MIME Sniffing standard's "parse a MIME type"): token "/" token, the
# subtype running to ";" less trailing whitespace. Parameters never make a type invalid.
ESSENCE = re.compile(rb"[\t\n\r ]*([!#$%&'*+.^_`|~0-9A-Za-z-]+/[!#$%&'*+.^_`|~0-9A-Za-z-]+)[\t\n\r ]*(?:;|\Z)")
MEDIA_TYPES: dict[bytes, bytes] = {}


def split_values(value: bytes) -> list[bytes]:
    values = []
    position = 0
    while True:
        m = HEADER_VALUE.match(value, position)
        values.append(m.group().strip(b" \t"))  # type: ignore[union-attr]  # the pattern matches anywhere
        position = m.end()  # type: ignore[union-attr]
        if position >= len(value):
            return values
        position += 1  # the comma


def extract_media_type(value: bytes) -> bytes:
    """Fetch's "extract a MIME type" on the combined Content-Type values, in lower case: the last
    value that parses as a MIME type other than */*; b"" when none does. So
    'text/html;x="a,b/c"' is HTML (the comma is quoted) and 'text/plain, text/html' too."""
    found = b""
    for item in split_values(value):
        m = ESSENCE.match(item)
        if m is not None and m.group(1) != b"*/*":
            found = m.group(1).lower()
    return found


CHARSETS: dict[bytes, bytes | None] = {}
CHARSET_PARAM = re.compile(rb';[\t\n\r ]*charset=(?:"([^"]*)"|([^;]*))', re.IGNORECASE)


def header_charset(headers: list[tuple[bytes, bytes]]) -> bytes | None:
    """The charset label (lower case) of the MIME type Fetch extracts from the Content-Type values:
    a later value of the same type keeps an earlier one's charset unless it names its own. An app
    answers with a handful of content types, so the result for each is remembered."""
    combined = b", ".join([value for key, value in headers if key in CONTENT_TYPE])
    try:
        return CHARSETS[combined]
    except KeyError:
        pass
    charset = essence = None
    for item in split_values(combined):
        m = ESSENCE.match(item)
        if m is None or m.group(1) == b"*/*":
            continue
        if m.group(1).lower() != essence:
            charset, essence = None, m.group(1).lower()
        if (c := CHARSET_PARAM.search(item, m.end(1))) is not None:
            charset = (c.group(1) if c.group(1) is not None else c.group(2)).strip(b"\t\n\r ").lower()
    if len(CHARSETS) < 64:
        CHARSETS[combined] = charset
    return charset


def media_type(headers: list[tuple[bytes, bytes]]) -> bytes:
    """The media type a browser reads the body as (extract_media_type over every Content-Type
    header, joined as Fetch joins repeated headers). An app answers with a handful of content
    types, so the result for each is remembered."""
    values = [value for key, value in headers if key in CONTENT_TYPE]
    combined = b", ".join(values)
    found = MEDIA_TYPES.get(combined)
    if found is None:
        found = extract_media_type(combined)
        if len(MEDIA_TYPES) < 64:
            MEDIA_TYPES[combined] = found
    return found


def is_html(headers: list[tuple[bytes, bytes]]) -> bool:
    return media_type(headers) in (b"text/html", b"application/xhtml+xml")


def untyped(headers: list[tuple[bytes, bytes]]) -> bool:
    """No Content-Type at all: a browser sniffs the body (HTML if its first bytes say so)."""
    return not any(key in CONTENT_TYPE for key, _ in headers)


def filter_cookies(
    policy: Policy, allowed: frozenset[str], headers: list[tuple[bytes, bytes]], region_vary: tuple[bytes, ...] = ()
) -> list[tuple[bytes, bytes]]:
    """The headers without the Set-Cookie lines of categories the visitor has not allowed; deletions
    pass. An answer that sets a cookie of an optional category, passed or dropped, depends on the
    visitor's choice (and, where the visitor's region decides, region_vary): Vary says so, or a
    shared cache would hand one visitor's cookies to the next."""
    kept: list[tuple[bytes, bytes]] = []
    optional = False
    for key, value in headers:
        if key in SET_COOKIE:
            name = set_cookie_name(value)
            category = policy.cookie_category(name)
            optional = optional or (category is not None and category not in policy.required)
            # An app may always delete a cookie, whatever its category.
            if category is not None and category not in allowed and not is_deletion(value):
                logger.debug("consentmw: dropped cookie %r of refused category %r", name, category)
                continue
        kept.append((key, value))
    if optional:
        for name in (b"Cookie", *region_vary):
            merge_vary(kept, name)
    return kept
