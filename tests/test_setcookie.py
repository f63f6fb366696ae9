"""Set-Cookie headers the app sends, read as browsers read them: a refused category's cookie passes
only when it is a deletion under every reading, so the browser never keeps it."""

from __future__ import annotations

import random
from datetime import datetime, timezone

import pytest
import setcookie
from hypothesis import example, given, settings
from hypothesis import strategies as st

from consentmw.core.setcookie import is_deletion, set_cookie_name

NOW = 1_800_000_000.0  # 2027-01-15

# The pieces tricky expiry dates are made of: forms RFC 6265 and Chromium read differently among them.
DAYS = ["1", "01", "001", "5", "31", "32", "0", "1x"]
MONTHS = ["Jan", "jan", "JANUARY", "Feb", "Dec", "xyz", "Ja"]
YEARS = ["70", "69", "1969", "1970", "2100", "12345", "1500", "1600", "5", "99999", "2026", "2028"]
TIMES = ["00:00:00", "1:2:3", "24:00:00", "00:60:00", "00:00:60", "0:0:0x", "1:2", "123:4:5"]
WORDS = ["Thu", "Fri", "GMT", "UTC", "+0200", "-1200"]
DELIMITERS = [" ", ", ", "-", "/", "  ", "\t", "."]
MAX_AGES = ["0", "-1", "+0", "+100", "100", "x", "", "00", "-0", "5x", "99999999999999999999", "-99999999999999999999"]


def date_from(rng: random.Random) -> str:
    pool = [DAYS, MONTHS, YEARS, TIMES, WORDS]
    tokens = [rng.choice(rng.choice(pool)) for _ in range(rng.randint(2, 7))]
    return "".join(token + rng.choice(DELIMITERS) for token in tokens).rstrip()


def header_from(rng: random.Random, name: str) -> str:
    """A Set-Cookie line with some Expires and Max-Age attributes in any case, among others."""
    attributes = ["Path=/"]
    for _ in range(rng.randint(1, 3)):
        kind = rng.random()
        if kind < 0.5:
            attributes.append(rng.choice(["Expires", "expires", "EXPIRES", " Expires "]) + "=" + date_from(rng))
        elif kind < 0.85:
            attributes.append(rng.choice(["Max-Age", "max-age", "MAX-AGE"]) + "=" + rng.choice(MAX_AGES))
        else:
            attributes.append(rng.choice(["Expires=Thu, 01 Jan 1970 00:00:00 GMT", "Max-Age=0", "HttpOnly", "SameSite=Lax", "Expires="]))
    rng.shuffle(attributes)
    return f"{name}=GA1.1.1; " + "; ".join(attributes)


def reference_keeps(line: str, now: float = NOW) -> bool:
    """Whether a user agent following RFC 6265bis stores the cookie (an independent implementation)."""
    try:
        stored = setcookie.receive(line, "http://site.example/", now=datetime.fromtimestamp(now, timezone.utc))
    except setcookie.CookieError:
        return False
    return stored.expiry is None or stored.expiry > datetime.fromtimestamp(now, timezone.utc)


@pytest.mark.parametrize(
    ("line", "deletion"),
    [
        ("_ga=; Max-Age=0", True),
        ("_ga=; Expires=Thu, 01 Jan 1970 00:00:00 GMT", True),
        ("_ga=; expires=Thursday, 01-Jan-70 00:00:01 GMT", True),
        ("_ga=; Max-Age=-1; Expires=Fri, 01 Jan 2100 00:00:00 GMT", True),
        # Max-Age decides whatever the Expires holds, even a number; Path and SameSite are no dates.
        ("_ga=; Max-Age=0; Expires=1", True),
        ("_ga=; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Path=/; SameSite=Lax", True),
        # A day of one digit, and the 31st.
        ("_ga=; Expires=Thu, 1 Jan 1970 00:00:00 GMT", True),
        ("_ga=; Expires=Sat, 31 Jan 1970 00:00:00 GMT", True),
        # The first year token decides: 2100 in the first, 1969 in the second.
        ("_ga=GA1.1.1; Expires=Fri, 01 Jan 2100 00:00:00 GMT 1969", False),
        ("_ga=; Expires=1969 Fri, 01 Jan 2100 00:00:00 GMT", True),
        # Chromium takes a five-digit year (saturated to its last time); RFC 6265 skips it.
        ("_ga=GA1.1.1; Expires=01 Jan 12345 00:00:00 GMT 1970", False),
        # Chromium reads Max-Age=+100 as 100 seconds; RFC 6265 ignores it and reads Expires.
        ("_ga=GA1.1.1; Max-Age=+100; Expires=Thu, 01 Jan 1970 00:00:00 GMT", False),
        # RFC 6265 keeps the last Max-Age that is a number (100); Chromium takes the last one, ignores it, reads Expires.
        ("_ga=GA1.1.1; Max-Age=100; Max-Age=x; Expires=Thu, 01 Jan 1970 00:00:00 GMT", False),
        # Max-Age=1 keeps the cookie for a second under RFC 6265.
        ("_ga=GA1.1.1; Max-Age=1; Max-Age=x; Expires=Thu, 01 Jan 1970 00:00:00 GMT", False),
        # Both take the last Expires: RFC 6265 reads 2100 in it, Chromium takes the one-digit 5 as the year (2005).
        ("_ga=GA1.1.1; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Expires=01 Jan 5 00:00:00 2100", False),
        # An unparseable Expires is no expiry: a session cookie, kept until the browser closes.
        ("_ga=GA1.1.1; Expires=never", False),
        ("_ga=GA1.1.1; Expires=31 Feb 1970 00:00:00", False),
        ("_ga=GA1.1.1; Expires=Thu, 01 Jan 1500 00:00:00 GMT", False),
        # RFC 6265 refuses a year before 1601 (a session cookie); Chromium reads 1600. From 1601 both agree.
        ("_ga=GA1.1.1; Expires=Sat, 01 Jan 1600 00:00:00 GMT", False),
        ("_ga=; Expires=Mon, 01 Jan 1601 00:00:00 GMT", True),
        # Two-digit years 0-69 are 2000-2069, 70-99 are 1970-1999.
        ("_ga=; Expires=Mon, 01 Jan 01 00:00:00 GMT", True),
        ("_ga=GA1.1.1; Expires=Sun, 01 Jan 69 00:00:00 GMT", False),
        ("_ga=; Expires=Fri, 01 Jan 99 00:00:00 GMT", True),
        ("_ga=; Expires=Sat, 01 Jan 00 00:00:00 GMT", True),
        ("_ga=; Expires=Fri, 01 Jan 27 00:00:00 GMT", True),
        ("_ga=GA1.1.1; Expires=Sat, 01 Jan 28 00:00:00 GMT", False),
        # A three-digit year is taken as it is (RFC 6265: before 1601, no date).
        ("_ga=GA1.1.1; Expires=Fri, 01 Jan 100 00:00:00 GMT", False),
        # RFC 6265 takes the last numeric Max-Age (0); Chromium takes the last Max-Age, ignores it and
        # reads the Expires: there 69 is 2069, and an hour of 24 is no time (a session cookie).
        ("_ga=GA1.1.1; Max-Age=0; Max-Age=x; Expires=Sun, 01 Jan 69 00:00:00 GMT", False),
        ("_ga=GA1.1.1; Max-Age=0; Max-Age=x; Expires=Thu, 01 Jan 1970 24:00:00 GMT", False),
        ("_ga=; Max-Age=0; Max-Age=x; Expires=Thu, 01 Jan 1970 00:00:00 GMT", True),
        ("_ga=GA1.1.1; Max-Age=0; Max-Age=x; Expires=Thu, 01 Jan 1970 00:60:00 GMT", False),
        ("_ga=; Max-Age=100; Max-Age=0; Max-Age=x; Expires=Thu, 01 Jan 1970 00:00:00 GMT", True),
        # Chromium reads Max-Age=+0 (past) or +1 (a second); RFC 6265 skips it and reads the Expires:
        # there a minute of 60 or a day of 0 is no date, and a cookie without one is kept for the session.
        ("_ga=GA1.1.1; Max-Age=+0; Expires=Thu, 01 Jan 1970 00:60:00 GMT", False),
        ("_ga=GA1.1.1; Max-Age=+0; Expires=Thu, 00 Jan 1970 00:00:00 GMT", False),
        ("_ga=GA1.1.1; Max-Age=+1; Expires=Thu, 01 Jan 1970 00:00:00 GMT", False),
        # The last hour, minute and second of a day are a time; a 60th second is not (a session cookie).
        ("_ga=; Expires=Thu, 01 Jan 1970 23:59:59 GMT", True),
        ("_ga=GA1.1.1; Expires=Thu, 01 Jan 1970 00:59:60 GMT", False),
        # Browsers stop reading the line at NUL, CR or LF.
        ("_ga=GA1.1.1; Max-Age=100\x00; Max-Age=0", False),
        # A value over 1,024 bytes is ignored; one of 1,024 is read.
        ("_ga=GA1.1.1; Expires=" + "x" * 1000 + " Thu, 01 Jan 1970 00:00:00 GMT", False),
        ("_ga=GA1.1.1; Expires=" + "," * 996 + "Thu, 01 Jan 1970 00:00:00 GMT", False),
        ("_ga=; Expires=" + "," * 995 + "Thu, 01 Jan 1970 00:00:00 GMT", True),
        # RFC 6265 reads these as 1970; Chromium finds no time, day or year in them and keeps a session cookie.
        ("_ga=GA1.1.1; Expires=01 Jan 1970 0:0:0x", False),
        ("_ga=GA1.1.1; Expires=1x Jan 1970 00:00:00", False),
        ("_ga=GA1.1.1; Expires=01 Jan 1970x 00:00:00", False),
        # Chromium takes the last Max-Age or Expires even when it does not parse.
        ("_ga=GA1.1.1; Max-Age=0; Max-Age=x", False),
        ("_ga=GA1.1.1; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Expires=never", False),
        # Within a day of now a time zone could make it a future date; a day and a second before now, none can.
        ("_ga=GA1.1.1; Expires=Fri, 15 Jan 2027 07:00:00 GMT", False),
        ("_ga=GA1.1.1; Expires=Thu, 14 Jan 2027 08:00:00 GMT", False),
        ("_ga=; Expires=Thu, 14 Jan 2027 07:59:59 GMT", True),
    ],
)
def test_only_what_every_browser_deletes_is_a_deletion(line: str, deletion: bool) -> None:
    assert is_deletion(line.encode("latin-1"), NOW) is deletion


@pytest.mark.parametrize(
    ("line", "name"),
    [
        ("_ga=GA1.1.1; Path=/", "_ga"),
        (" _ga =GA1.1.1", "_ga"),
        # Nameless: the browser sends "_ga=GA1.1.1" back, which every reader takes as _ga.
        ("=_ga=GA1.1.1; Path=/", "_ga"),
        ("_ga; Max-Age=0", "_ga"),
        ("x=_ga=GA1.1.1", "x"),
    ],
)
def test_the_name_is_the_one_the_cookie_is_sent_back_under(line: str, name: str) -> None:
    assert set_cookie_name(line.encode()) == name


@settings(max_examples=400, deadline=None)
@given(st.randoms(use_true_random=False))
@example(random.Random(0))
def test_a_passed_deletion_is_never_kept_by_the_reference_user_agent(rng: random.Random) -> None:
    line = header_from(rng, "_ga")
    if is_deletion(line.encode(), NOW):
        assert not reference_keeps(line), line
