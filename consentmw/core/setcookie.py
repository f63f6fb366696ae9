"""A Set-Cookie header the app sends, read as browsers read it: the name the cookie will be sent back
under, and whether the header deletes the cookie instead of storing it.

A refused category's cookie may pass only as a deletion, so "deletion" must mean that no browser
keeps it. RFC 6265 (sections 5.1.1, 5.2 and 5.3) and Chromium differ at the edges: Chromium takes a
year of one or five digits and years before 1601, a '+' in Max-Age, and the last Max-Age even when it
is not a number, but refuses a date whose numbers carry other characters ("0:0:0x", "1x", "1970x"),
which RFC 6265 reads. A header is a deletion only when both readings put its expiry in the past.

Why this is not a library: the standard library's date parsers (http.cookiejar.http2time,
email.utils.parsedate_to_datetime) read the HTTP and e-mail date formats, not the cookie-date
algorithm: for "Fri, 01 Jan 2100 00:00:00 GMT 1969", which browsers read as 2100, they give nothing
or another year. On PyPI, `cookies` has not been maintained since 2014, and `setcookie` follows
section 5.1.1 faithfully but is a single author's first release; neither reads as Chromium does where
it departs from the RFC, which is what decides here. The tests hold this reading to `setcookie` and
to what real Chromium stores.
"""

from __future__ import annotations

import calendar
import re
import time

# Where browsers end a Set-Cookie line (RFC 6265bis 5.6 step 1); what follows is never read.
LINE_END = re.compile(r"[\x00\r\n]")
# Longer attribute values are ignored by browsers (RFC 6265bis 5.6 step 10).
MAX_ATTRIBUTE_VALUE = 1024
# A day either side: some browsers apply a time zone the algorithm ignores.
MARGIN = 86400.0

# RFC 6265 5.1.1: a date is a run of tokens between delimiters.
DATE_TOKEN = re.compile(r"[^\t\x20-\x2f\x3b-\x40\x5b-\x60\x7b-\x7e]+")
RFC_TIME = re.compile(r"([0-9]{1,2}):([0-9]{1,2}):([0-9]{1,2})(?![0-9])")
RFC_DAY = re.compile(r"([0-9]{1,2})(?![0-9])")
RFC_YEAR = re.compile(r"([0-9]{2,4})(?![0-9])")
CHROMIUM_TIME = re.compile(r"([0-9]{1,2}):([0-9]{1,2}):([0-9]{1,2})")
MONTHS = {name: number for number, name in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1)}
RFC_MAX_AGE = re.compile(r"-?[0-9]+")
CHROMIUM_MAX_AGE = re.compile(r"[+-]?[0-9]+")
PAST = float("-inf")
FUTURE = float("inf")


def set_cookie_name(set_cookie: bytes) -> str:
    """The name the browser sends the cookie back under. A nameless cookie (`=_ga=GA1.1.1`, or no
    '=' at all) is sent as its bare value, which every reader takes as the name before its '='."""
    pair = LINE_END.split(set_cookie.decode("latin-1"), 1)[0].split(";", 1)[0]
    name, equals, value = pair.partition("=")
    name = name.strip(" \t")
    if not equals:
        name, value = "", name
    return name or value.partition("=")[0].strip(" \t")


def is_deletion(set_cookie: bytes, now: float | None = None) -> bool:
    """Whether every browser reading of the header expires the cookie (or never stores it)."""
    pieces = LINE_END.split(set_cookie.decode("latin-1"), 1)[0].split(";")
    attributes = []
    for piece in pieces[1:]:
        name, _, value = piece.partition("=")
        value = value.strip(" \t")
        if len(value) <= MAX_ATTRIBUTE_VALUE:
            attributes.append((name.strip(" \t").lower(), value))
    deadline = (time.time() if now is None else now) - MARGIN
    readings = (rfc_expiry(attributes), chromium_expiry(attributes))
    return all(expiry is not None and expiry < deadline for expiry in readings)


def rfc_expiry(attributes: list[tuple[str, str]]) -> float | None:
    """When the cookie expires as RFC 6265 reads it (5.2.1, 5.2.2, 5.3 step 3): the last Max-Age
    that is a number, else the last Expires that parses; None for a session cookie."""
    max_ages = [value for name, value in attributes if name == "max-age" and RFC_MAX_AGE.fullmatch(value)]
    if max_ages:
        return PAST if int(max_ages[-1]) <= 0 else FUTURE
    dates = [date for date in (rfc_date(value) for name, value in attributes if name == "expires") if date is not None]
    return dates[-1] if dates else None


def chromium_expiry(attributes: list[tuple[str, str]]) -> float | None:
    """When the cookie expires as Chromium reads it: the last Max-Age attribute if it is a number
    (a '+' allowed), else the last Expires attribute, which gives a session cookie if it fails."""
    max_ages = [value for name, value in attributes if name == "max-age"]
    if max_ages and CHROMIUM_MAX_AGE.fullmatch(max_ages[-1]):
        return PAST if int(max_ages[-1]) <= 0 else FUTURE
    dates = [value for name, value in attributes if name == "expires"]
    return chromium_date(dates[-1]) if dates and dates[-1] else None


def rfc_date(text: str) -> float | None:
    """RFC 6265 5.1.1: the first time, day of month, month and year tokens, in that order of
    preference per token; None when one is missing or out of range."""
    hms = day = month = year = None
    for token in DATE_TOKEN.findall(text):
        if hms is None and (found := RFC_TIME.match(token)):
            hms = tuple(map(int, found.groups()))
        elif day is None and (found := RFC_DAY.match(token)):
            day = int(found[1])
        elif month is None and token[:3].lower() in MONTHS:
            month = MONTHS[token[:3].lower()]
        elif year is None and (found := RFC_YEAR.match(token)):
            year = int(found[1])
    if hms is None or day is None or month is None or year is None:
        return None
    year = full_year(year)
    hour, minute, second = hms
    if not 1 <= day <= 31 or year < 1601 or hour > 23 or minute > 59 or second > 59:
        return None
    return utc_time(year, month, day, hour, minute, second)


def chromium_date(text: str) -> float | None:
    """Chromium's cookie-date reading, as Chromium 156 stores cookies (held to it by
    tests/browser/test_set_cookie_expiry.py): a token starting with a letter may be the month; one
    with a colon is the time; any other number the day of month when it has at most 2 digits, else
    the year when it has at most 5. Where it is unclear how Chromium reads a number with other
    characters in it, the date does not parse: the cookie then counts as kept."""
    hms = day = month = year = None
    for token in DATE_TOKEN.findall(text):
        if not "0" <= token[0] <= "9":
            if month is None and token[:3].lower() in MONTHS:
                month = MONTHS[token[:3].lower()]
        elif ":" in token:
            found = CHROMIUM_TIME.fullmatch(token)
            if found is None:
                return None
            if hms is None:
                hms = tuple(map(int, found.groups()))
        elif not token.isdigit() or not token.isascii():
            return None
        elif day is None and len(token) <= 2:
            day = int(token)
        elif year is None and len(token) <= 5:
            year = int(token)
    if hms is None or day is None or month is None or year is None:
        return None
    year = full_year(year)
    hour, minute, second = hms
    if not 1 <= day <= 31 or hour > 23 or minute > 59 or second > 59:
        return None
    if year > 9999:
        return FUTURE  # Chromium saturates to its largest time
    return utc_time(year, month, day, hour, minute, second)


def full_year(year: int) -> int:
    if 70 <= year <= 99:
        return year + 1900
    if 0 <= year <= 69:
        return year + 2000
    return year


def utc_time(year: int, month: int, day: int, hour: int, minute: int, second: int) -> float | None:
    if day > calendar.monthrange(year, month)[1]:
        return None  # no such date (31 Feb): the date fails, and the cookie lives for the session
    return float(calendar.timegm((year, month, day, hour, minute, second)))
