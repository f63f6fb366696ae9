from __future__ import annotations

import copy
import time

import pytest

from consentmw.core.consent import LINE_CACHE_LONGEST, LINE_CACHE_SIZE, MAX_CONSENT_COOKIES, ConsentReader
from consentmw.core.cookie import ConsentCodec, cookie_header, cookie_pair, domain_matches, expire_headers, parent_domains
from consentmw.core.policy import load_policy
from tests.conftest import consent_value

KEY = "k" * 32
POLICY = load_policy("default")


def five_category_policy():
    data = copy.deepcopy(POLICY.data)
    data["categories"].append({"id": "social_media", "name": {"en": "Social media"}})
    return load_policy(data)


def consent_for(codec: ConsentCodec, cookie: str | None, *, gpc: bool = False):
    headers = []
    if cookie is not None:
        headers.append((b"cookie", f"theme=dark; consentmw={cookie}; other=1".encode()))
    if gpc:
        headers.append((b"sec-gpc", b"1"))
    return ConsentReader(codec.policy, codec, "consentmw")({"headers": headers})


def test_round_trip() -> None:
    codec = ConsentCodec([KEY], POLICY)
    consent = consent_for(codec, codec.dumps({"analytics"}, "cid"))
    assert consent.decided
    assert consent.choices == {"necessary": True, "personalisation": False, "analytics": True, "advertising": False}
    assert consent.id == "cid"
    assert consent.allows("statistics") and not consent.allows("marketing")


def test_cookie_is_compact_for_five_categories() -> None:
    policy = five_category_policy()
    assert len(policy.categories) == 5
    codec = ConsentCodec([KEY], policy)
    value = codec.dumps(set(policy.optional))
    assert len(f"consentmw={value}".encode()) < 120
    # Four optional categories fill the hexadecimal digit: every choice reads back as made.
    assert len(policy.optional) == 4
    for allowed in ({"social_media"}, {"analytics", "social_media"}, set(policy.optional)):
        assert consent_for(codec, codec.dumps(allowed)).allowed == policy.required | allowed


@pytest.mark.parametrize(
    "mangle",
    [
        # Not the last character: its low bits are base64 padding that decoding ignores.
        pytest.param(lambda v: v[:-5] + ("A" if v[-5] != "A" else "B") + v[-4:], id="signature"),
        pytest.param(lambda v: "f" + v[1:], id="payload"),
        pytest.param(lambda v: v.split(".", 1)[1], id="truncated"),
        pytest.param(lambda v: "garbage", id="garbage"),
        pytest.param(lambda v: "\u00e9" * 10, id="non-ascii"),
        pytest.param(lambda v: v * 20, id="oversized"),
    ],
)
def test_tampered_cookie_means_not_decided(mangle) -> None:
    codec = ConsentCodec([KEY], POLICY)
    consent = consent_for(codec, mangle(codec.dumps(set(POLICY.optional))))
    assert not consent.decided
    assert consent.allowed == {"necessary"}


def test_cookie_signed_with_another_key_is_refused() -> None:
    other = ConsentCodec(["another-key-" + "x" * 20], POLICY)
    consent = consent_for(ConsentCodec([KEY], POLICY), other.dumps({"analytics"}))
    assert not consent.decided and not consent.allows("analytics")


def test_expired_cookie_means_not_decided(monkeypatch: pytest.MonkeyPatch) -> None:
    codec = ConsentCodec([KEY], POLICY)
    value = codec.dumps({"analytics"})
    assert consent_for(codec, value).decided  # verified and cached now
    later = time.time() + POLICY.max_age + 60
    monkeypatch.setattr("consentmw.core.cookie.time.time", lambda: later)
    consent = consent_for(codec, value)
    assert not consent.decided and not consent.allows("analytics")


def test_cookie_from_older_policy_version_asks_again() -> None:
    data = copy.deepcopy(POLICY.data)
    data["version"] = "2"
    newer = load_policy(data)
    value = ConsentCodec([KEY], POLICY).dumps({"analytics"}, "cid")
    consent = consent_for(ConsentCodec([KEY], newer), value)
    assert not consent.decided and consent.outdated
    assert not consent.allows("analytics")
    assert consent.id == "cid"  # the visitor's history stays linked


def test_key_rotation_signs_with_first_and_accepts_any() -> None:
    old = ConsentCodec(["old-key-" + "o" * 24], POLICY)
    rotated = ConsentCodec(["new-key-" + "n" * 24, "old-key-" + "o" * 24], POLICY)
    new_only = ConsentCodec(["new-key-" + "n" * 24], POLICY)
    assert consent_for(rotated, old.dumps({"analytics"})).allows("analytics")
    assert consent_for(new_only, rotated.dumps({"analytics"})).allows("analytics")


def test_gpc_refuses_marked_categories_whatever_the_cookie_says() -> None:
    codec = ConsentCodec([KEY], POLICY)
    consent = consent_for(codec, codec.dumps(set(POLICY.optional)), gpc=True)
    assert consent.gpc and consent.decided
    assert consent.choices == {"necessary": True, "personalisation": True, "analytics": False, "advertising": False}


def test_a_later_sec_gpc_line_never_undoes_an_earlier_refusal() -> None:
    codec = ConsentCodec([KEY], POLICY)
    cookie = (b"cookie", f"consentmw={codec.dumps(set(POLICY.optional))}".encode())
    reader = ConsentReader(POLICY, codec, "consentmw")
    for headers in ([(b"sec-gpc", b"1"), cookie, (b"sec-gpc", b"0")], [cookie, (b"sec-gpc", b" 1 "), (b"sec-gpc", b"")]):
        consent = reader({"headers": headers})
        assert consent.gpc and not consent.allows("analytics") and consent.allows("personalisation")


def test_verification_cache_is_bounded() -> None:
    # Above 256, where CPython's small integers stop being shared objects.
    codec = ConsentCodec([KEY], POLICY, cache_size=300)
    for i in range(340):
        assert consent_for(codec, codec.dumps({"analytics"}, f"id{i}")).decided
    assert len(codec._cache) == 300


def test_a_cookie_line_sent_again_is_read_again_for_expiry(monkeypatch: pytest.MonkeyPatch) -> None:
    codec = ConsentCodec([KEY], POLICY)
    reader = ConsentReader(POLICY, codec, "consentmw")
    headers = [(b"cookie", f"theme=dark; consentmw={codec.dumps({'analytics'})}".encode())]
    assert reader({"headers": headers}).allows("analytics")
    later = time.time() + POLICY.max_age + 60
    monkeypatch.setattr("consentmw.core.cookie.time.time", lambda: later)
    assert not reader({"headers": list(headers)}).decided


def test_a_remembered_line_with_two_choices_holds_the_newer_until_it_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    codec = ConsentCodec([KEY], POLICY)
    reader = ConsentReader(POLICY, codec, "consentmw")
    older = consent_value(set(POLICY.optional), "older", ago=3600, secret=KEY)
    newer = consent_value({"analytics"}, "newer", ago=60, secret=KEY)
    headers = [(b"cookie", f"consentmw={newer}; theme=dark; consentmw={older}".encode())]
    assert reader({"headers": headers}).allowed == {"necessary", "analytics"}
    now = time.time()
    for moved, reads_as in [(POLICY.max_age - 1800, "newer"), (POLICY.max_age + 1800, None), (0, "newer")]:
        monkeypatch.setattr("consentmw.core.cookie.time.time", lambda: now + moved)
        consent = reader({"headers": list(headers)})
        assert consent.id == reads_as and consent.decided == (reads_as is not None)
        assert consent.allows("analytics") == (reads_as is not None) and not consent.allows("personalisation")


def test_cookie_lines_remembered_are_bounded_and_a_long_line_is_read_all_the_same() -> None:
    codec = ConsentCodec([KEY], POLICY)
    reader = ConsentReader(POLICY, codec, "consentmw")
    value = codec.dumps({"analytics"})
    for i in range(LINE_CACHE_SIZE + 40):
        assert reader({"headers": [(b"cookie", f"n={i}; consentmw={value}".encode())]}).allows("analytics")
    assert len(reader._lines) == LINE_CACHE_SIZE
    long_line = f"pad={'x' * LINE_CACHE_LONGEST}; consentmw={value}".encode()
    assert reader({"headers": [(b"cookie", long_line)]}).allows("analytics")
    assert long_line not in reader._lines
    forged = value[:-5] + ("A" if value[-5] != "A" else "B") + value[-4:]
    line = [(b"cookie", f"n=0; consentmw={forged}".encode())]
    assert not reader({"headers": line}).decided and not reader({"headers": line}).decided


def test_the_verification_cache_holds_4096_values_by_default() -> None:
    codec = ConsentCodec([KEY], POLICY)
    for i in range(4200):
        codec.loads(f"{i:x}.forged")
    assert len(codec._cache) == 4096


def test_a_value_longer_than_any_consent_cookie_is_refused_without_verifying_it(monkeypatch: pytest.MonkeyPatch) -> None:
    # No HMAC for a value a browser could only have been handed to make the server work.
    codec = ConsentCodec([KEY], POLICY)
    verified: list[str] = []
    verify = codec._verify
    monkeypatch.setattr(codec, "_verify", lambda value: verified.append(value) or verify(value))
    genuine = codec.dumps({"analytics"})
    assert codec.loads(genuine + "x" * (257 - len(genuine))) is None
    assert codec.loads(genuine + "x" * (256 - len(genuine))) is None
    assert [len(v) for v in verified] == [256]


def test_a_choice_holds_until_the_policys_max_age_and_not_after(monkeypatch: pytest.MonkeyPatch) -> None:
    codec = ConsentCodec([KEY], POLICY)
    value = codec.dumps({"analytics"})
    issued = time.time()
    monkeypatch.setattr("consentmw.core.cookie.time.time", lambda: issued + POLICY.max_age - 60)
    assert consent_for(codec, value).allows("analytics")
    monkeypatch.setattr("consentmw.core.cookie.time.time", lambda: issued + POLICY.max_age + 60)
    assert not consent_for(codec, value).decided


def test_cookie_header_writes_exactly_the_attributes_asked_for() -> None:
    assert cookie_header("consentmw", "v", max_age=10) == b"consentmw=v; Max-Age=10; Path=/; HttpOnly; SameSite=Lax"
    assert (
        cookie_header("_ga", "", max_age=0, path="/shop", domain="shop.example", secure=True, httponly=False, samesite="")
        == b"_ga=; Max-Age=0; Path=/shop; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Domain=shop.example; Secure"
    )


@pytest.mark.parametrize(
    ("host", "domain", "kept"),
    [
        ("shop.example", "shop.example", True),
        ("www.shop.example", ".shop.example", True),
        ("shop.example", "www.shop.example", False),
        ("myshop.example", "shop.example", False),
        ("www.other.example", "shop.example", False),
    ],
)
def test_domain_matches_as_browsers_keep_domain_cookies(host: str, domain: str, kept: bool) -> None:
    assert domain_matches(host, domain) is kept


@pytest.mark.parametrize(
    ("host", "domains"),
    [
        ("www.shop.example", ["www.shop.example", "shop.example"]),
        ("shop.example.", ["shop.example"]),
        ("localhost", []),
        ("", []),
        ("192.0.2.1", []),
        ("[::ffff:192.0.2.1]", []),  # an IPv6 address with dots in it has no domains above it either
    ],
)
def test_parent_domains_are_the_host_and_the_domains_above_it(host: str, domains: list[str]) -> None:
    assert parent_domains(host) == domains


# -- several consent cookies on one request ----------------------------------------------------
# A browser holds one cookie per (name, domain, path): after cookie_domain or cookie_path changes it
# sends them all, longest path first, then oldest first, which says nothing about which is newest.


def read(codec: ConsentCodec, *cookie_lines: str, name: str = "consentmw"):
    headers = [(b"cookie", line.encode("latin-1")) for line in cookie_lines]
    return ConsentReader(codec.policy, codec, name)({"headers": headers})


def test_the_newest_of_several_consent_cookies_wins_in_either_order() -> None:
    codec = ConsentCodec([KEY], POLICY)
    older = consent_value(set(POLICY.optional), "older", ago=3600, secret=KEY)
    newer = consent_value({"analytics"}, "newer", ago=60, secret=KEY)
    for first, second in [(older, newer), (newer, older)]:
        consent = read(codec, f"consentmw={first}; theme=dark; consentmw={second}")
        assert consent.id == "newer"
        assert consent.allowed == {"necessary", "analytics"}


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param(lambda v: v[:-5] + ("A" if v[-5] != "A" else "B") + v[-4:], id="signature"),
        pytest.param(lambda v: "f" + v[1:], id="payload"),
        pytest.param(lambda v: "garbage", id="garbage"),
        pytest.param(lambda v: "", id="empty"),
        pytest.param(lambda v: v * 20, id="oversized"),
        pytest.param(lambda v: consent_value(set(POLICY.optional), "forged", secret="another-key-" + "x" * 20), id="other-key"),
    ],
)
def test_a_cookie_that_does_not_verify_hides_no_valid_one(bad) -> None:
    codec = ConsentCodec([KEY], POLICY)
    # The bad value claims everything and looks newer: none of it may count.
    valid = consent_value({"personalisation"}, "valid", ago=3600, secret=KEY)
    consent = read(codec, f"consentmw={bad(consent_value(set(POLICY.optional), 'x', secret=KEY))}; consentmw={valid}")
    assert consent.decided and consent.id == "valid"
    assert consent.allowed == {"necessary", "personalisation"}


def test_an_expired_cookie_hides_no_valid_one() -> None:
    codec = ConsentCodec([KEY], POLICY)
    expired = consent_value(set(POLICY.optional), "expired", ago=POLICY.max_age + 60, secret=KEY)
    valid = consent_value({"advertising"}, "valid", ago=60, secret=KEY)
    consent = read(codec, f"consentmw={expired}; consentmw={valid}")
    assert consent.decided and consent.id == "valid"
    assert consent.allowed == {"necessary", "advertising"}


def test_a_choice_under_an_earlier_policy_version_hides_no_newer_current_one() -> None:
    data = copy.deepcopy(POLICY.data)
    data["version"] = "2"
    newer_policy = load_policy(data)
    outdated = consent_value(set(POLICY.optional), "old-version", ago=3600, secret=KEY)
    current = consent_value({"analytics"}, "current", ago=60, secret=KEY, policy=newer_policy)
    consent = read(ConsentCodec([KEY], newer_policy), f"consentmw={outdated}; consentmw={current}")
    assert consent.decided and not consent.outdated and consent.id == "current"


def test_consent_cookies_on_several_cookie_lines_are_all_read() -> None:
    # HTTP/2 browsers may send each cookie on its own header line.
    codec = ConsentCodec([KEY], POLICY)
    older = consent_value(set(POLICY.optional), "older", ago=3600, secret=KEY)
    newer = consent_value(set(), "newer", ago=60, secret=KEY)
    consent = read(codec, f"theme=dark; consentmw={older}", "sessionid=1", f"consentmw={newer}")
    assert consent.decided and consent.id == "newer"
    assert consent.allowed == {"necessary"}


def test_two_choices_signed_in_the_same_second_read_as_the_one_allowing_less() -> None:
    # Their order cannot be known; reading the narrower one never grants what the visitor may have withdrawn.
    codec = ConsentCodec([KEY], POLICY)
    wide = consent_value(set(POLICY.optional), "wide", secret=KEY)
    narrow = consent_value({"personalisation"}, "narrow", secret=KEY)
    assert read(codec, f"consentmw={wide}; consentmw={narrow}").id == "narrow"
    assert read(codec, f"consentmw={narrow}; consentmw={wide}").id == "narrow"


@pytest.mark.parametrize(
    ("line", "read_as"),
    [
        pytest.param("myconsentmw={other}; consentmw={value}", "value", id="a-longer-name-ending-in-it"),
        pytest.param("a=b;consentmw={value}", "value", id="no-space-after-semicolon"),
        pytest.param('consentmw="{value}"', "value", id="quoted"),
        pytest.param("theme=consentmw={other}; consentmw={value}", "value", id="inside-another-value"),
    ],
)
def test_only_cookies_named_consentmw_are_read(line: str, read_as: str) -> None:
    codec = ConsentCodec([KEY], POLICY)
    values = {"value": consent_value({"analytics"}, "value", ago=3600, secret=KEY), "other": consent_value(set(), "other", secret=KEY)}
    assert read(codec, line.format(**values)).id == read_as


def test_only_the_first_few_consent_cookies_are_verified(monkeypatch: pytest.MonkeyPatch) -> None:
    # A browser sends a few at most; a made-up header of thousands must not cost an HMAC each.
    codec = ConsentCodec([KEY], POLICY)
    verified: list[str] = []
    verify = codec._verify
    monkeypatch.setattr(codec, "_verify", lambda value: verified.append(value) or verify(value))
    genuine = consent_value({"analytics"}, "genuine", secret=KEY)
    forged = [f"{i:x}.{genuine.split('.', 1)[1]}" for i in range(8, 1000)]  # other bits, the same signature
    within = read(codec, "; ".join(f"consentmw={v}" for v in [*forged[-(MAX_CONSENT_COOKIES - 1) :], genuine]))
    assert within.decided and within.id == "genuine"
    verified.clear()
    beyond = read(codec, "; ".join(f"consentmw={v}" for v in [*forged, genuine]))
    assert not beyond.decided
    assert len(verified) == MAX_CONSENT_COOKIES


# Cookie tossing: a sibling subdomain (or any page on the parent domain) cannot set a "__Host-" cookie
# for the site, but it can set a Domain cookie whose *name* or *value* holds the text
# "__Host-consentmw=<a genuine value it got on its own visit>". Browsers send that back as it is.
TOSSED = [
    pytest.param("x __Host-consentmw={value}", id="name-with-a-space-before"),
    pytest.param("pref=a __Host-consentmw={value}", id="inside-a-value-after-a-space"),
    pytest.param("pref=a\t__Host-consentmw={value}", id="inside-a-value-after-a-tab"),
    pytest.param("pref=__Host-consentmw={value}", id="a-whole-value"),
    pytest.param("x__Host-consentmw={value}", id="a-longer-name"),
    pytest.param("__host-consentmw={value}", id="another-case"),
    pytest.param("__Host-consentmw ={value}x", id="broken-signature-after-trimming"),
]


@pytest.mark.parametrize("line", TOSSED)
def test_a_tossed_consent_cookie_reads_as_not_decided(line: str) -> None:
    codec = ConsentCodec([KEY], POLICY)
    tossed = line.format(value=consent_value(set(POLICY.optional), "tossed", secret=KEY))
    consent = read(codec, f"theme=dark; {tossed}; lang=ko", name="__Host-consentmw")
    assert not consent.decided
    assert not consent.allows("analytics") and consent.id is None


@pytest.mark.parametrize("line", TOSSED)
def test_a_tossed_consent_cookie_hides_no_genuine_choice(line: str) -> None:
    codec = ConsentCodec([KEY], POLICY)
    genuine = consent_value({"personalisation"}, "genuine", ago=3600, secret=KEY)
    tossed = line.format(value=consent_value(set(POLICY.optional), "tossed", secret=KEY))
    for header in (f"{tossed}; __Host-consentmw={genuine}", f"__Host-consentmw={genuine}; {tossed}"):
        consent = read(codec, header, name="__Host-consentmw")
        assert consent.id == "genuine" and not consent.allows("analytics")


@pytest.mark.parametrize(
    ("line", "names"),
    [
        ("a=1; b=2", [b"a", b"b"]),
        ("a=1;b=2;  c = 3 ", [b"a", b"b", b"c"]),
        ("x a=1; b=c=d", [b"x a", b"b"]),
        ("nameless; =v; a=", [b"", b"", b"a"]),
    ],
)
def test_cookie_pairs_split_on_semicolons_and_the_first_equals_sign(line: str, names: list[bytes]) -> None:
    from consentmw.core.cookie import cookie_pairs

    assert [name for name, _ in cookie_pairs(line.encode())] == names


@pytest.mark.parametrize(
    ("piece", "pair"),
    [
        (b"consentmw=abc", (b"consentmw", b"abc")),
        (b' consentmw = "abc" ', (b"consentmw", b"abc")),  # quotes go, as starlette's parser drops them
        (b'consentmw="abc', (b"consentmw", b'"abc')),  # an opening quote alone stays
        (b'consentmw="abc!', (b"consentmw", b'"abc!')),
        (b'consentmw="', (b"consentmw", b'"')),
        (b'consentmw=!abc"', (b"consentmw", b'!abc"')),  # a closing quote alone stays too
        (b"pref=!on!", (b"pref", b"!on!")),  # only double quotes are taken off
        (b"pref='on'", (b"pref", b"'on'")),
        (b"nameless", (b"", b"nameless")),
    ],
)
def test_cookie_pair_reads_one_cookie_as_starlette_does(piece: bytes, pair: tuple[bytes, bytes]) -> None:
    assert cookie_pair(piece) == pair


def test_withdrawal_expires_each_refused_cookie_the_request_carries_and_no_other() -> None:
    sent = {"sessionid": "1", "_ga": "1", "theme": "dark", "_fbp": "1", "_gid": "1"}
    lines = [line.decode() for line in expire_headers(POLICY, sent, ["analytics"], True, "www.shop.example")]
    gone = "=; Max-Age=0; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT"
    assert lines == [
        f"_ga{gone}; Secure",
        f"_ga{gone}; Domain=www.shop.example; Secure",
        f"_ga{gone}; Domain=shop.example; Secure",
        f"_gid{gone}; Secure",
        f"_gid{gone}; Domain=www.shop.example; Secure",
        f"_gid{gone}; Domain=shop.example; Secure",
    ]
