"""Hostile input: what a visitor (or someone posing as one) can send, and what must never follow.

Whatever arrives, consentmw answers it or passes it on without a 500, grants nothing that was not
chosen on this site, records nothing that was not a valid choice, and puts nothing it was sent
into a header or a live tag. The rewriter's own properties (chunking, byte-for-byte) are in
test_rewrite_properties.py; the endpoints' ordinary error table in test_api.py.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import time
from typing import Any
from urllib.parse import quote, urljoin, urlsplit

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Route

from consentmw import ConsentMiddleware, load_policy
from consentmw.core.cookie import ConsentCodec
from consentmw.core.errors import ErrorCode
from consentmw.core.store import MemoryStore
from tests.conftest import SECRET, http_scope
from tests.corpus.pages import SNIPPETS, live_tags, live_trackers, shop_page

HOST = "testserver"
ORIGIN = f"http://{HOST}"
POLICY = load_policy("default")
OPTIONAL = list(POLICY.optional)
ERROR_CODES = {code.name.lower(): code.status for code in ErrorCode}
NOT_DECIDED = {"necessary": True, "personalisation": False, "analytics": False, "advertising": False}
# A page as a site serves it: GA4 and the Meta pixel, and the cookies their categories own.
TRACKED = ["ga4-gtag", "meta-pixel"]
PAGE = shop_page(TRACKED, product_count=1)
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# -- a site and a raw ASGI client -----------------------------------------------------------------


async def whoami(request: Request) -> JSONResponse:
    consent = request.scope["consent"]
    return JSONResponse({"decided": consent.decided, "choices": consent.choices, "analytics": consent.allows("analytics")})


async def page(request: Request) -> HTMLResponse:
    response = HTMLResponse(PAGE)
    for name in ("_ga", "_fbp", "prefs", "session"):
        response.set_cookie(name, "1")
    return response


def site(policy: Any = "default", secret_key: Any = SECRET) -> tuple[ConsentMiddleware, MemoryStore]:
    store = MemoryStore()
    app = Starlette(routes=[Route("/", whoami), Route("/page{rest:path}", page)])
    return ConsentMiddleware(app, secret_key=secret_key, policy=policy, store=store), store


class Answer:
    def __init__(self, messages: list[dict]) -> None:
        start = next(m for m in messages if m["type"] == "http.response.start")
        self.status: int = start["status"]
        self.raw_headers: list[tuple[bytes, bytes]] = list(start.get("headers", []))
        self.body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")

    def headers(self, name: str) -> list[str]:
        return [v.decode("latin-1") for k, v in self.raw_headers if k.lower() == name.encode()]

    @property
    def cookies(self) -> list[str]:
        return self.headers("set-cookie")

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


async def call(
    app: Any,
    method: str,
    path: str,
    headers: list[tuple[bytes, bytes]] = (),
    body: bytes | list[bytes] = b"",
    query: bytes = b"",
) -> Answer:
    """One request straight into the ASGI app: any bytes in any header, a body in chunks."""
    chunks = body if isinstance(body, list) else [body]
    incoming = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1} for i, c in enumerate(chunks)]
    sent: list[dict] = []

    async def receive() -> dict:
        return incoming.pop(0) if incoming else {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = http_scope(method, path, headers, query=query, client=("203.0.113.9", 50000))
    async with asyncio.timeout(5):
        await app(scope, receive, send)
    return Answer(sent)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def same_origin_post(content_type: str) -> list[tuple[bytes, bytes]]:
    return [(b"origin", ORIGIN.encode()), (b"content-type", content_type.encode())]


def consent_value(answer: Answer) -> str:
    return next(c for c in answer.cookies if c.startswith("consentmw=")).split(";")[0].split("=", 1)[1]


def assert_clean_refusal(answer: Answer, store: MemoryStore, records_before: int) -> None:
    """A 4xx JSON error that names the problem; no record, no cookie, nothing else changed."""
    assert 400 <= answer.status < 500, (answer.status, answer.body[:200])
    error = answer.json()
    assert error["error"] in ERROR_CODES and ERROR_CODES[error["error"]] == answer.status and error["message"]
    assert answer.cookies == []
    assert len(store.records) == records_before


def no_control_characters_in_headers(answer: Answer) -> None:
    for key, value in answer.raw_headers:
        assert not re.search(rb"[\x00-\x1f\x7f]", key + value), (key, value)


# -- cookies --------------------------------------------------------------------------------------

CODEC = ConsentCodec([SECRET], POLICY)
GENUINE_ALL = CODEC.dumps(OPTIONAL, "visitor-id-1")
COOKIE_TOKENS = ["consentmw=", "consentmw", "=", ";", " ", '"', ".", ",", "\\", "\t", GENUINE_ALL, GENUINE_ALL[:-3], "ff", "7", "_ga=1", "\x00", "é", "\xff"]
cookie_headers = st.one_of(
    st.binary(max_size=300),
    st.lists(st.sampled_from(COOKIE_TOKENS), max_size=24).map(lambda parts: "".join(parts).encode("latin-1", "replace")),
)


def mangled(value: str, rng: random.Random) -> str:
    """The genuine cookie with one character changed, dropped or added: a forgery attempt."""
    # Not the last character: it carries two unused bits of the base64 signature, and a change
    # there alone may decode to the same signature bytes.
    i = rng.randrange(len(value) - 1)
    how = rng.choice(["change", "drop", "add"])
    alphabet = "0123456789abcdefABCDEF-_."
    if how == "change":
        return value[:i] + rng.choice([c for c in alphabet if c != value[i]]) + value[i + 1 :]
    if how == "drop":
        return value[:i] + value[i + 1 :]
    return value[:i] + rng.choice(alphabet) + value[i:]


@FAST
@given(st.lists(cookie_headers, min_size=1, max_size=3), st.randoms(use_true_random=False))
@example([b"consentmw=" + GENUINE_ALL[:-1].encode()], random.Random(0))
@example([b"consentmw=" + b"a" * 8192], random.Random(0))
def test_any_cookie_header_grants_nothing_and_never_fails(headers: list[bytes], rng: random.Random) -> None:
    """Arbitrary Cookie headers, and forgeries of a genuine 'accept all' cookie: nothing is allowed."""
    app, store = site()
    forged = b"consentmw=" + mangled(GENUINE_ALL, rng).encode()
    for cookie in [*headers, forged, forged + b"; " + headers[0]]:
        # Only a header that carries the genuine value, untouched, may grant anything.
        if GENUINE_ALL.encode() in cookie:
            continue
        sent = [(b"cookie", cookie)]
        state = run(call(app, "GET", "/", sent))
        assert state.status == 200 and state.json()["decided"] is False and state.json()["choices"] == NOT_DECIDED
        shown = run(call(app, "GET", "/page", sent))
        assert shown.status == 200 and live_trackers(shown.text) == set()
        assert [c.split("=")[0] for c in shown.cookies] == ["session"]  # the necessary one only
        assert run(call(app, "GET", "/_consent", sent)).json()["decided"] is False
    assert store.records == []


def test_the_genuine_cookie_does_grant_so_the_forgeries_above_mean_something() -> None:
    app, _ = site()
    state = run(call(app, "GET", "/", [(b"cookie", b"consentmw=" + GENUINE_ALL.encode())])).json()
    assert state["decided"] is True and all(state["choices"].values())


def test_a_forged_cookie_beside_the_genuine_one_wins_nothing() -> None:
    # Two cookies of the same name (a sibling subdomain can set one for the parent domain): a forged
    # one, first or last, neither grants what it claims nor hides the visitor's own choice.
    app, _ = site()
    forged = CODEC.dumps(OPTIONAL, "x")[:-2] + "AA"
    genuine_none = CODEC.dumps((), "visitor-id-2")
    for cookie in (f"consentmw={forged}; consentmw={genuine_none}", f"consentmw={genuine_none}; consentmw={forged}"):
        state = run(call(app, "GET", "/_consent", [(b"cookie", cookie.encode())])).json()
        assert state["decided"] is True and state["choices"] == NOT_DECIDED and state["id"] == "visitor-id-2"


def test_a_cookie_signed_with_the_right_key_but_another_salt_or_payload_is_refused() -> None:
    from itsdangerous import TimestampSigner

    app, _ = site()
    # The same key used by another part of the site (sessions, say) must not sign consent.
    other_use = TimestampSigner(SECRET, salt="itsdangerous.Signer").sign(GENUINE_ALL.rsplit(".", 2)[0]).decode()
    bits_changed = "f" + GENUINE_ALL[1:]
    for value in (other_use, bits_changed):
        state = run(call(app, "GET", "/", [(b"cookie", f"consentmw={value}".encode())])).json()
        assert state["decided"] is False, value


def version_2() -> dict[str, Any]:
    data = dict(POLICY.data)
    data["version"] = "2"
    return data


def test_a_cookie_replayed_after_a_policy_change_asks_again_and_keeps_the_history() -> None:
    old_site, _ = site()
    accepted = run(call(old_site, "POST", "/_consent", same_origin_post("application/json"), b'{"accept": "all"}'))
    cookie = [(b"cookie", f"consentmw={consent_value(accepted)}; _ga=GA1.1.1; _fbp=fb.1".encode())]
    new_site, store = site(policy=version_2())
    state = run(call(new_site, "GET", "/_consent", cookie)).json()
    assert state["decided"] is False and state["choices"] == NOT_DECIDED and state["policy_version"] == "2"
    shown = run(call(new_site, "GET", "/page", cookie))
    assert live_trackers(shown.text) == set()
    assert not any(c.startswith(("_ga=1", "_fbp=1")) for c in shown.cookies)  # the app's tracking cookies held back
    # Choosing again under version 2 continues the same visitor's history in the log.
    again = run(call(new_site, "POST", "/_consent", [*cookie, *same_origin_post("application/json")], b'{"accept": "necessary"}'))
    assert again.status == 200 and again.json()["id"] == accepted.json()["id"]
    assert [(r.policy_version, r.consent_id) for r in store.records] == [("2", accepted.json()["id"])]
    # And the other way: a version 2 cookie shown to a site still on version 1 is not a choice there.
    back = [(b"cookie", f"consentmw={consent_value(again)}".encode())]
    assert run(call(old_site, "GET", "/", back)).json()["decided"] is False


def test_oversized_and_numerous_cookies_are_read_quickly_and_do_not_fail() -> None:
    app, store = site()
    many = "; ".join(f"_ga_{i}=GA1.1.{i}" for i in range(600))
    huge = "x" * 8192
    cases = {
        "8 KB consent cookie": (f"consentmw={huge}", False),
        "8 KB cookie beside a genuine one": (f"big={huge}; consentmw={GENUINE_ALL}", True),
        "600 cookies, then the genuine one": (f"{many}; consentmw={GENUINE_ALL}", True),
        "2000 forged consent cookies": ("; ".join(f"consentmw={i:x}.{GENUINE_ALL.split('.', 1)[1]}" for i in range(8, 2008)), False),
        "64 KB of separators": (";" * 32768 + " " * 32768, False),
    }
    for name, (header, decided) in cases.items():
        started = time.monotonic()
        state = run(call(app, "GET", "/", [(b"cookie", header.encode())]))
        assert state.status == 200 and state.json()["decided"] is decided, name
        assert time.monotonic() - started < 1.0, name
    # Refusing analytics with 600 of its cookies in the request: each is expired once, no more.
    started = time.monotonic()
    refused = run(call(app, "POST", "/_consent", [(b"cookie", many.encode()), *same_origin_post("application/json")], b'{"accept": "necessary"}'))
    assert refused.status == 200 and time.monotonic() - started < 2.0
    expired = [c.split("=")[0] for c in refused.cookies if not c.startswith("consentmw=")]
    assert sorted(expired) == sorted(f"_ga_{i}" for i in range(600))
    assert len(store.records) == 1


# -- request bodies -------------------------------------------------------------------------------

NAMES = [*(c.id for c in POLICY.categories), "statistics", "marketing", "C0002", "tracking", "", "__proto__"]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8) | st.sampled_from(["all", "necessary", "custom"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
choice_objects = st.one_of(
    st.fixed_dictionaries({"accept": st.sampled_from(["all", "necessary", "custom", "ALL", "", None, 1, True])}),
    st.fixed_dictionaries({"choices": st.dictionaries(st.sampled_from(NAMES), st.one_of(st.booleans(), json_values), max_size=5)}),
    st.fixed_dictionaries(
        {"choices": st.dictionaries(st.sampled_from(NAMES), st.booleans(), max_size=5)},
        optional={"page": st.sampled_from(["/", "//evil.example", "/ok", "https://evil.example"]), "method": json_values},
    ),
    st.dictionaries(st.sampled_from(["accept", "choices", "page", "method", "x"]), json_values, max_size=3),
)


def expected_json_choice(data: Any) -> frozenset[str] | None:
    """The categories a valid choice allows, or None when the body must be refused."""
    if not isinstance(data, dict):
        return None
    if "accept" in data and "choices" in data:
        return None  # both at once: which one was meant is unknown
    if "accept" in data:
        return {"all": frozenset(OPTIONAL), "necessary": frozenset()}.get(data["accept"]) if isinstance(data["accept"], str) else None
    choices = data.get("choices")
    if not isinstance(choices, dict) or not all(isinstance(v, bool) for v in choices.values()):
        return None
    categories = {name: POLICY.category_for(name) for name in choices}
    if None in categories.values() or any(not v and categories[n] in POLICY.required for n, v in choices.items()):
        return None
    if any(choices[a] != choices[b] for a in choices for b in choices if categories[a] == categories[b]):
        return None  # two names of one category answered differently
    return frozenset(categories[n] for n, v in choices.items() if v and categories[n] in POLICY.optional)


def check_post(app: ConsentMiddleware, store: MemoryStore, path: str, content_type: str, body: bytes, valid: bool | None, allowed: frozenset[str] | None = None) -> Answer:
    """Post after an earlier 'accept all'; valid=None when only the invariants are known."""
    earlier = run(call(app, "POST", "/_consent", same_origin_post("application/json"), b'{"accept": "all"}'))
    cookie = (b"cookie", f"consentmw={consent_value(earlier)}".encode())
    before = len(store.records)
    answer = run(call(app, "POST", path, [cookie, *same_origin_post(content_type)], body))
    assert answer.status < 500
    no_control_characters_in_headers(answer)
    if answer.status in (200, 303):
        assert valid is not False, body
        assert len(store.records) == before + 1 and consent_value(answer)
        if allowed is not None:
            assert {c for c, v in store.records[-1].choices.items() if v} == allowed | POLICY.required
        if answer.status == 303:
            assert urlsplit(urljoin(ORIGIN + "/", answer.headers("location")[0])).netloc == HOST
    else:
        assert valid is not True, (body, answer.body)
        assert_clean_refusal(answer, store, before)
        # The earlier choice stands: the cookie the browser still holds says "all".
        assert run(call(app, "GET", "/", [cookie])).json()["choices"]["analytics"] is True
    return answer


@FAST
@given(choice_objects)
@example({"choices": {}, "method": []})  # was a 500: an unhashable "method"
def test_json_choices_are_recorded_exactly_when_valid(data: dict) -> None:
    app, store = site()
    allowed = expected_json_choice(data)
    check_post(app, store, "/_consent", "application/json", json.dumps(data).encode(), allowed is not None, allowed)


@FAST
@given(st.one_of(st.binary(max_size=200), json_values.map(lambda v: json.dumps(v).encode())))
@example(b'{"accept": "all"')
@example(b'{"accept": "all"}\x00')
@example(b"\xef\xbb\xbf" + b'{"accept": "all"}')
@example(b'{"accept": "all", "accept": "nope"}')
@example(b'{"choices": {"analytics": true, "analytics": "yes"}}')
def test_any_json_body_is_a_choice_or_a_clean_4xx(body: bytes) -> None:
    try:
        allowed = expected_json_choice(json.loads(body))
    except ValueError:
        allowed = None
    app, store = site()
    check_post(app, store, "/_consent", "application/json", body, allowed is not None, allowed)


form_fields = st.lists(
    st.tuples(st.sampled_from(["accept", "category", "next", "x", "accept[]"]), st.sampled_from([*NAMES, "all", "necessary", "custom", "/", "//evil.example", "\r\n"])),
    max_size=6,
)


def expected_form_choice(fields: list[tuple[str, str]]) -> frozenset[str] | None:
    next_urls = [v for k, v in fields if k == "next"]
    if next_urls and next_urls[-1] and not re.fullmatch(r"/(?![/\\])[!-~]*", next_urls[-1].replace("\\", " ")):
        return None  # a return path that is not a plain path of this site is refused
    accept = [v for k, v in fields if k == "accept"]
    accept_value = accept[-1] if accept else "custom"
    if accept_value != "custom":
        return {"all": frozenset(OPTIONAL), "necessary": frozenset()}.get(accept_value)
    categories = [POLICY.category_for(v) for k, v in fields if k == "category"]
    if None in categories:
        return None
    return frozenset(c for c in categories if c in POLICY.optional)


@FAST
@given(form_fields)
def test_form_choices_are_recorded_exactly_when_valid(fields: list[tuple[str, str]]) -> None:
    app, store = site()
    allowed = expected_form_choice(fields)
    body = "&".join(f"{quote(k)}={quote(v)}" for k, v in fields).encode()
    check_post(app, store, "/_consent", "application/x-www-form-urlencoded", body, allowed is not None, allowed)


@FAST
@given(st.binary(max_size=300), st.sampled_from(["/_consent", "/_consent/opt-out"]))
@example(b"&" * 200, "/_consent")
@example(b"category=analytics&" * 70, "/_consent")
@example(b"lang=%ff", "/_consent/opt-out")
@example(b"lang=ko\r\nSet-Cookie: x=1", "/_consent/opt-out")
def test_any_form_body_is_a_choice_or_a_clean_4xx(body: bytes, path: str) -> None:
    app, store = site()
    check_post(app, store, path, "application/x-www-form-urlencoded", body, None)


@FAST
@given(st.one_of(st.binary(max_size=200), json_values.map(lambda v: json.dumps(v).encode())))
@example(b"{not json")
@example(b"")
@example(b"[" * 4000 + b"]" * 4000)  # "{not json" and "" were recorded as opt-outs
def test_opt_out_json_body_is_json_or_a_clean_4xx(body: bytes) -> None:
    # The opt-out needs nothing from the body, but a broken body is refused as everywhere else.
    try:
        json.loads(body)
        valid = True
    except (ValueError, RecursionError):
        valid = False
    app, store = site()
    answer = check_post(app, store, "/_consent/opt-out", "application/json", body, valid)
    if valid:
        assert answer.json()["choices"]["analytics"] is False


def test_a_body_split_in_many_chunks_is_read_whole_and_a_cut_body_records_nothing() -> None:
    app, store = site()
    body = b'{"choices": {"analytics": true, "advertising": false}}'
    whole = run(call(app, "POST", "/_consent", same_origin_post("application/json"), [bytes([b]) for b in body]))
    assert whole.status == 200 and whole.json()["choices"]["analytics"] is True
    # The client went away after half the body: receive() says http.disconnect.
    half = run(call(app, "POST", "/_consent", [*same_origin_post("application/json"), (b"content-length", b"56")], [body[:20], body[20:30]]))
    assert half.status == 400 and half.cookies == []
    assert len(store.records) == 1


# -- the HTML rewriter, under hostile markup ------------------------------------------------------

HOSTILE_MARKUP = [
    "<div", "<p>", "</p>", "</div>", "<", ">", "</", "<!", "<!-->", "<!--x", "-->", "<![CDATA[", "]]>", "<?php ?>",
    "<svg>", "</svg>", "<math>", "<template>", "</template>", "<table><tr><td>", "<noscript>", "</noscript>",
    "<a href='", "'>", '"', "'", "=", " ", "\n", "\t", "\x00", "&lt;", "&#x3C;script", "<SCRIPT>1</SCRIPT>", "<scr", "ipt>",
    "<img src=x onerror=1>", "<iframe srcdoc='<p>'></iframe>", "<head>", "</head>", "<body>", "</body>", "<html>", "한글",
]


def casefold_tags(markup: str, rng: random.Random) -> str:
    """Tag and attribute names in random case: HTML does not care, the rewriter must not either."""

    def one(m: re.Match[str]) -> str:
        return "".join(c.upper() if rng.random() < 0.5 else c for c in m.group(0))

    return re.sub(r"</?[a-zA-Z]+|\s[a-zA-Z-]+(?==)", one, markup)


@st.composite
def hostile_pages(draw: st.DrawFn) -> tuple[str, list[str]]:
    rng = draw(st.randoms(use_true_random=False))
    names = draw(st.lists(st.sampled_from(sorted(SNIPPETS)), min_size=1, max_size=4, unique=True))
    parts: list[str] = []
    for name in names:
        parts += draw(st.lists(st.sampled_from(HOSTILE_MARKUP), max_size=6))
        # Junk that closes what it opened before each snippet, so a browser reads the tag as a tag.
        parts.append("]]>--><!---->\"'>'\">" + "</template></svg></math></noscript></textarea></title></iframe>")
        parts.append(casefold_tags(SNIPPETS[name].text, rng) if draw(st.booleans()) else SNIPPETS[name].text)
    parts += draw(st.lists(st.sampled_from(HOSTILE_MARKUP), max_size=6))
    return "".join(parts), names


CONTENT_TYPES = ["text/html; charset=utf-8", "text/html", "TEXT/HTML; charset=UTF-8", "Text/Html", "text/html;charset=euc-kr", "application/xhtml+xml"]


def serving(body: bytes, content_type: str, cuts: list[int]) -> Any:
    async def app(scope: dict, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", content_type.encode())]})
        bounds = [0, *sorted(c % (len(body) + 1) for c in cuts), len(body)]
        for i, (a, b) in enumerate(zip(bounds, bounds[1:])):
            await send({"type": "http.response.body", "body": body[a:b], "more_body": i < len(bounds) - 2})

    return app


@settings(max_examples=80, deadline=None)
@given(hostile_pages(), st.sets(st.sampled_from(OPTIONAL)), st.sampled_from(CONTENT_TYPES), st.lists(st.integers(0, 1 << 16), max_size=8))
@example((SNIPPETS["ga4-gtag"].text, ["ga4-gtag"]), set(), "Text/Html", [])  # was left live: the type in mixed case
def test_hostile_markup_around_trackers_leaves_no_refused_tracker_live(
    page: tuple[str, list[str]], allowed: set[str], content_type: str, cuts: list[int]
) -> None:
    """Through the whole middleware, in any chunking and any spelling of the HTML content type."""
    markup, names = page
    assume(live_trackers(markup) >= set(names))  # junk that hides a snippet from the oracle proves nothing
    store = MemoryStore()
    app = ConsentMiddleware(serving(markup.encode(), content_type, cuts), secret_key=SECRET, store=store)
    headers = [(b"cookie", f"consentmw={CODEC.dumps(allowed, 'v')}".encode())] if allowed else []
    answer = run(call(app, "GET", "/", headers))
    assert answer.status == 200
    live = live_trackers(answer.body.decode("utf-8", "replace"))
    refused = {n for n in names if not SNIPPETS[n].categories <= allowed}
    assert not live & refused, (live & refused, answer.body[:2000])


# -- header injection and markup in texts -------------------------------------------------------

INJECTIONS = ["\r\nSet-Cookie: injected=1", "%0d%0aSet-Cookie:%20injected=1", "\n", "ko\r\n", "<script>alert(1)</script>", "\"'><svg onload=1>", "%E5%98%8A%E5%98%8D"]


@pytest.mark.parametrize("value", INJECTIONS)
@pytest.mark.parametrize("parameter", ["lang", "browser"])
@pytest.mark.parametrize("path", ["/_consent/browsers", "/_consent/opt-out"])
async def test_query_parameters_never_reach_a_header_or_markup(path: str, parameter: str, value: str) -> None:
    app, store = site()
    for accept in (b"text/html", b"application/json"):
        answer = await call(app, "GET", path, [(b"accept", accept)], query=f"{parameter}={quote(value)}".encode())
        assert answer.status in (200, 400, 404)
        no_control_characters_in_headers(answer)
        assert not any(b"injected" in v for _, v in answer.raw_headers)
        assert answer.cookies == []
        if answer.status >= 400:
            # The refused value is quoted back in JSON, which no browser renders as a page.
            assert answer.json()["error"] in ("unknown_language", "unknown_browser")
            assert answer.headers("content-type") == ["application/json"] and answer.headers("x-content-type-options") == ["nosniff"]
        else:
            assert answer.body.lower().count(b"<script") == 0 and b"<svg" not in answer.body.lower()
    assert store.records == []


HOSTILE_TEXT = '</script><script>alert("consentmw-hostile")</script><!--'
MARKER = "consentmw-hostile"


def hostile_policy() -> dict[str, Any]:
    data = json.loads(json.dumps(POLICY.data))
    data["texts"] = {key: {"ko": HOSTILE_TEXT, "en": HOSTILE_TEXT} for key in ("noscript_body", "save", "accept_all", "reject_all")}
    for category in data["categories"]:
        category["name"] = {"ko": HOSTILE_TEXT, "en": HOSTILE_TEXT}
        category["description"] = {"ko": HOSTILE_TEXT, "en": HOSTILE_TEXT}
    return data


def script_count(text: str) -> int:
    return text.lower().count("<script")


@pytest.mark.parametrize(
    ("path", "query"),
    [
        ("/page", b""),
        ("/page", b'"><script>alert("consentmw-hostile")</script>'),
        ("/page", b"a=%22%3E%3Cscript%3Ealert(%22consentmw-hostile%22)%3C/script%3E"),
        ('/page"><script>alert("consentmw-hostile")</script>', b""),
        ("/page", b"\r\nSet-Cookie: y=1"),
    ],
)
async def test_policy_texts_the_path_and_the_query_stay_text_in_what_is_injected(path: str, query: bytes) -> None:
    plain, _ = site()
    expected = script_count((await call(plain, "GET", "/page")).text)  # the page's own, the banner's, Consent Mode's
    app, _ = site(policy=hostile_policy())
    answer = await call(app, "GET", path, query=query)
    assert answer.status == 200
    assert script_count(answer.text) == expected
    assert not [tag for tag in live_tags(answer.text) if MARKER in tag]
    no_control_characters_in_headers(answer)
    form = re.search(r'<noscript><form class="consentmw-noscript".*?</form></noscript>', answer.text, re.S)
    assert form is not None and "<script" not in form.group(0) and "&lt;/script&gt;" in form.group(0)
    policy_json = await call(app, "GET", "/_consent/policy")
    assert policy_json.headers("content-type")[0].startswith("application/json") and policy_json.headers("x-content-type-options") == ["nosniff"]


# -- open redirects through the no-JavaScript form --------------------------------------------------

REDIRECT_ATTEMPTS = [
    "//evil.example", "///evil.example", "////evil.example", "https://evil.example", "http:evil.example", "https:/evil.example",
    "/\\evil.example", "\\\\evil.example", "/\\/evil.example", "javascript:alert(1)", "JavaScript:alert(1)", " javascript:alert(1)",
    "data:text/html,<script>alert(1)</script>", "%2F%2Fevil.example", "/%2F/evil.example", "/%5Cevil.example", "/%09/evil.example",
    "\t//evil.example", "/\t/evil.example", "/\n/evil.example", "/\r/evil.example", " //evil.example", "/ /evil.example",
    "\x00//evil.example", "/\x00/evil.example", "／／evil.example", "/／evil.example", "//evil.example@testserver", "/@evil.example",
    "/.//evil.example", "/..//evil.example", "http://testserver.evil.example/", "//testserver@evil.example/", "/\u2028/evil.example",
]
REDIRECT_TOKENS = ["/", "\\", "//", "evil.example", "http:", "https:", "javascript:", "%2F", "%5C", "%2f", "\t", "\n", "\r", " ", "\x00", "@", ".", "..", "?", "#", "%0d%0a", "／", "\u3002", ":", "testserver"]


def browser_resolves(location: str) -> tuple[str, str]:
    """Scheme and host a browser goes to for this Location, with the URL parser's forgiving bits:
    leading/trailing controls and spaces dropped, tabs and newlines removed, backslash as slash."""
    cleaned = location.strip("\x00\x01\x02\x03\x04\x05\x06\x07\x08\t\n\x0b\x0c\r\x0e\x0f\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f ")
    cleaned = re.sub(r"[\t\n\r]", "", cleaned).replace("\\", "/")
    target = urlsplit(urljoin(ORIGIN + "/from/page", cleaned))
    return target.scheme, target.netloc


def check_redirect(app: ConsentMiddleware, next_url: str, referer: str | None = None, store: MemoryStore | None = None) -> str | None:
    """The Location the form post answers with (always on this site), or None when the return URL
    was refused with 400 invalid_next and nothing recorded."""
    headers = same_origin_post("application/x-www-form-urlencoded")
    if referer is not None:
        headers.append((b"referer", referer.encode("utf-8", "surrogateescape")))
    body = f"accept=all&next={quote(next_url, safe='')}".encode()
    before = len(store.records) if store is not None else 0
    answer = run(call(app, "POST", "/_consent", headers, body))
    no_control_characters_in_headers(answer)
    if answer.status == 400:
        assert answer.json()["error"] == "invalid_next" and next_url, next_url
        if store is not None:
            assert_clean_refusal(answer, store, before)
        return None
    assert answer.status == 303
    (location,) = answer.headers("location")
    assert browser_resolves(location) == ("http", HOST), (next_url, location)
    assert location.startswith("/") and not location.startswith(("//", "/\\"))
    return location


@pytest.mark.parametrize("next_url", REDIRECT_ATTEMPTS)
def test_the_form_never_redirects_off_site(next_url: str) -> None:
    app, store = site()
    check_redirect(app, next_url, store=store)


@pytest.mark.parametrize("referer", ["http://testserver.evil.example//evil.example", "http://evil.example/", "http://testserver@evil.example/x", "//evil.example", "http://testserver//evil.example", "http://testserver/\\evil.example"])
def test_a_hostile_referer_never_redirects_off_site(referer: str) -> None:
    app, _ = site()
    assert check_redirect(app, "", referer) is not None


@FAST
@given(st.lists(st.sampled_from(REDIRECT_TOKENS), max_size=10).map("".join))
def test_any_return_url_lands_on_this_site(next_url: str) -> None:
    app, store = site()
    check_redirect(app, next_url, store=store)


def test_a_local_return_url_is_kept() -> None:
    # So that the checks above are not met by always answering "/".
    app, _ = site()
    assert check_redirect(app, "/shop/item?id=3#reviews") == "/shop/item?id=3#reviews"
    assert check_redirect(app, "/상품/3") == quote("/상품/3")


RETURN_PATHS_WITH_CONTROLS = ["/ok\n", "/ok\r\nSet-Cookie: x=1", "/ok\t", "/o k", "/ok\x00", "/ok\x7f", "/ok\x85", "/ok\u00a0", "/ok\u2028", "/ok\u202e", "/ok\u3000", "\n/ok"]


@pytest.mark.parametrize("next_url", RETURN_PATHS_WITH_CONTROLS)
def test_a_return_url_with_a_control_character_or_whitespace_is_refused_by_name(next_url: str) -> None:
    app, store = site()
    assert check_redirect(app, next_url, store=store) is None
    answer = run(call(app, "POST", "/_consent", same_origin_post("application/x-www-form-urlencoded"), f"accept=all&next={quote(next_url, safe='')}".encode()))
    position = next(i for i, c in enumerate(next_url) if not c.isprintable() or c.isspace())
    assert answer.json()["reason"].startswith(f"U+{ord(next_url[position]):04X} at position {position}: control characters and whitespace")


@pytest.mark.parametrize("page", RETURN_PATHS_WITH_CONTROLS)
def test_a_logged_page_with_a_control_character_or_whitespace_is_refused(page: str) -> None:
    app, store = site()
    answer = run(call(app, "POST", "/_consent", same_origin_post("application/json"), json.dumps({"accept": "all", "page": page}).encode()))
    assert answer.json()["error"] == "invalid_page"
    assert_clean_refusal(answer, store, 0)


def test_a_page_whose_path_holds_a_space_gets_a_form_that_returns_to_it() -> None:
    # Servers hand the app the path percent-decoded: /page/a%20b arrives as "/page/a b".
    app, store = site()
    answer = run(call(app, "GET", "/page/a b", [(b"accept", b"text/html")], query=b"q=%C3%A9+x&r=\xa0"))
    form_next = re.search(r'<input type="hidden" name="next" value="([^"]*)"', answer.text)
    assert form_next is not None and form_next.group(1) == "/page/a%20b?q=%C3%A9+x&amp;r=%C2%A0"
    assert check_redirect(app, "/page/a%20b?q=%C3%A9+x&r=%C2%A0", store=store) == "/page/a%20b?q=%C3%A9+x&r=%C2%A0"
    assert store.records[-1].path == "/page/a%20b"


# -- cross-site posts ---------------------------------------------------------------------------

CROSS_SITE = [
    pytest.param([(b"origin", b"https://evil.example")], id="foreign-origin"),
    pytest.param([(b"origin", b"null")], id="null-origin-sandboxed-or-data-url"),
    pytest.param([(b"origin", b"http://testserver:8080")], id="same-host-other-port"),
    pytest.param([(b"origin", b"http://sub.testserver")], id="subdomain"),
    pytest.param([(b"sec-fetch-site", b"cross-site")], id="fetch-metadata-only"),
    pytest.param([(b"origin", ORIGIN.encode()), (b"sec-fetch-site", b"same-site")], id="sibling-subdomain-fetch-metadata"),
    pytest.param([(b"referer", b"https://evil.example/page")], id="old-browser-referer-only"),
    pytest.param([(b"referer", b"http://testserver.evil.example/")], id="look-alike-referer"),
]


@pytest.mark.parametrize("headers", CROSS_SITE)
@pytest.mark.parametrize(
    ("path", "content_type", "body"),
    [
        ("/_consent", b"application/x-www-form-urlencoded", b"accept=all&next=%2F"),
        ("/_consent", b"application/json", b'{"accept": "all"}'),
        ("/_consent/opt-out", b"application/x-www-form-urlencoded", b"lang=en"),
        ("/_consent", b"text/plain", b'{"accept": "all"}'),
    ],
)
async def test_cross_site_posts_record_nothing(headers: list[tuple[bytes, bytes]], path: str, content_type: bytes, body: bytes) -> None:
    app, store = site()
    answer = await call(app, "POST", path, [*headers, (b"content-type", content_type)], body)
    assert answer.status == 403 and answer.json()["error"] == "cross_site"
    assert answer.cookies == [] and store.records == []


# -- very long User-Agent strings ---------------------------------------------------------------

LONG_UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36 " + "Z" * 100_000


@pytest.mark.parametrize("accept", [b"text/html", b"application/json"])
async def test_a_100_kb_user_agent_on_the_browsers_page_is_cut_not_echoed(accept: bytes) -> None:
    app, _ = site()
    headers = [(b"user-agent", LONG_UA.encode()), (b"sec-ch-ua", b'"Chromium";v="126", ' + b"Y" * 100_000), (b"accept", accept)]
    started = time.monotonic()
    answer = await call(app, "GET", "/_consent/browsers", headers)
    assert time.monotonic() - started < 1.0
    assert answer.status == 200
    assert b"ZZZZZZZZ" not in answer.body and b"YYYYYYYY" not in answer.body
    assert len(answer.body) < 200_000


async def test_a_100_kb_user_agent_on_a_consent_post_logs_only_the_family() -> None:
    app, store = site()
    for path, content_type, body in [("/_consent", "application/json", b'{"accept": "all"}'), ("/_consent/opt-out", "application/x-www-form-urlencoded", b"lang=en")]:
        answer = await call(app, "POST", path, [(b"user-agent", LONG_UA.encode()), *same_origin_post(content_type)], body)
        assert answer.status in (200, 303)
    assert [r.user_agent for r in store.records] == ["chrome", "chrome"]
    assert all(r.ip == "203.0.113.0" for r in store.records)  # never the raw address
