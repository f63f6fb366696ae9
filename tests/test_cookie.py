from __future__ import annotations

import copy
import time

import pytest

from consentmw.consent import ConsentReader
from consentmw.cookie import ConsentCodec
from consentmw.policy import load_policy

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
    monkeypatch.setattr("consentmw.cookie.time.time", lambda: later)
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


def test_verification_cache_is_bounded() -> None:
    codec = ConsentCodec([KEY], POLICY, cache_size=8)
    for i in range(50):
        consent_for(codec, codec.dumps({"analytics"}, f"id{i}")).decided
    assert len(codec._cache) <= 8
