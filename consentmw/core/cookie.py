from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Iterable, Iterator, Mapping
from typing import NamedTuple

from itsdangerous import BadSignature, TimestampSigner
from starlette.datastructures import Secret

from consentmw.core.errors import ConfigError
from consentmw.core.policy import CookieRule, Policy


class Decision(NamedTuple):
    allowed: frozenset[str]  # optional categories the visitor allowed
    consent_id: str
    issued_at: int
    current: bool  # signed under the current policy version


def secret_list(secret_key: str | Secret | Iterable[str | Secret]) -> list[str]:
    keys = [secret_key] if isinstance(secret_key, (str, Secret)) else list(secret_key or ())
    keys = [str(k) for k in keys]
    if not keys or not all(keys):
        raise ConfigError("secret_key is required: pass a long random string (or a list, newest first, to rotate keys)")
    return keys


class ConsentCodec:
    """Signs and reads the consent cookie: `<bits>.<policy tag>.<consent id>.<timestamp>.<signature>`."""

    def __init__(self, secret_keys: list[str], policy: Policy, *, cache_size: int = 4096) -> None:
        # itsdangerous signs with the last key; ours are given newest first.
        self.signer = TimestampSigner(secret_keys[::-1], salt="consentmw.core.consent", digest_method=hashlib.sha256)
        self.policy = policy
        self.max_age = policy.max_age
        self.cache_size = cache_size
        # Verified cookie value -> decision. Verifying an HMAC costs about as much as a whole bare
        # request, and a visitor sends the same value for months; expiry is still checked on hits.
        self._cache: dict[str, Decision | None] = {}

    def dumps(self, allowed: Iterable[str], consent_id: str | None = None) -> str:
        allowed = set(allowed)
        bits = sum(1 << i for i, cat in enumerate(self.policy.optional) if cat in allowed)
        payload = f"{bits:x}.{self.policy.version_tag}.{consent_id or new_consent_id()}"
        return self.signer.sign(payload).decode("ascii")

    def loads(self, value: str) -> Decision | None:
        """The decision in a cookie value, or None when it is missing, forged, expired or malformed."""
        if not value or len(value) > 256:
            return None
        try:
            decision = self._cache[value]
        except KeyError:
            decision = self._verify(value)
            if len(self._cache) >= self.cache_size:
                del self._cache[next(iter(self._cache))]
            self._cache[value] = decision
        if decision is None or decision.issued_at + self.max_age < time.time():
            return None
        return decision

    def _verify(self, value: str) -> Decision | None:
        try:
            payload, issued_at = self.signer.unsign(value, return_timestamp=True)
            bits_hex, tag, consent_id = payload.decode("ascii").split(".")
            bits = int(bits_hex, 16)
        except (BadSignature, ValueError, UnicodeDecodeError):
            return None
        if tag != self.policy.version_tag:
            return Decision(frozenset(), consent_id, int(issued_at.timestamp()), False)
        allowed = frozenset(cat for i, cat in enumerate(self.policy.optional) if bits >> i & 1)
        return Decision(allowed, consent_id, int(issued_at.timestamp()), True)


def cookie_pairs(header: bytes) -> Iterator[tuple[bytes, bytes]]:
    """The (name, value) pairs of one Cookie header line, as browsers send them (RFC 6265 5.4, read
    as section 5.2 reads a cookie): split on ';', split each at its first '=', trim spaces and tabs.
    A name is only ever a whole name: `x __Host-consentmw=...` is the cookie "x __Host-consentmw" and
    `pref=a __Host-consentmw=...` the cookie "pref", however the text inside looks."""
    return map(cookie_pair, header.split(b";"))


def cookie_pair(piece: bytes) -> tuple[bytes, bytes]:
    """One cookie of a Cookie line. Without '=' it is a nameless cookie; a value in double quotes
    loses them, as starlette's parser does."""
    name, equals, value = piece.partition(b"=")
    if not equals:
        name, value = b"", name
    value = value.strip(b" \t")
    if len(value) >= 2 and value[0] == value[-1] == 34:  # '"'
        value = value[1:-1]
    return name.strip(b" \t"), value


def cookie_values(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> list[bytes]:
    """Every value of the cookie called exactly `name`, on every Cookie line (HTTP/2 clients may send
    one line per cookie), in the order sent."""
    values = []
    for key, line in headers:
        # The quick looks spare the parse of lines and pieces that are other cookies.
        if key == b"cookie" and line.find(name) >= 0:
            for piece in line.split(b";"):
                if piece.find(name) >= 0:
                    piece_name, value = cookie_pair(piece)
                    if piece_name == name:
                        values.append(value)
    return values


def request_cookies(headers: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    """The named cookies a request carries (the last value of each name)."""
    return {
        key.decode("latin-1"): value.decode("latin-1")
        for header, line in headers
        if header == b"cookie"
        for key, value in cookie_pairs(line)
        if key
    }


def new_consent_id() -> str:
    return secrets.token_urlsafe(12)


def cookie_header(
    name: str,
    value: str,
    *,
    max_age: int,
    path: str = "/",
    domain: str | None = None,
    secure: bool = False,
    httponly: bool = True,
    samesite: str = "Lax",
) -> bytes:
    parts = [f"{name}={value}", f"Max-Age={max_age}", f"Path={path}"]
    if max_age == 0:
        parts.append("Expires=Thu, 01 Jan 1970 00:00:00 GMT")
    if domain:
        parts.append(f"Domain={domain}")
    if secure:
        parts.append("Secure")
    if httponly:
        parts.append("HttpOnly")
    if samesite:
        parts.append(f"SameSite={samesite}")
    return "; ".join(parts).encode("latin-1")


def domain_matches(host: str, domain: str) -> bool:
    """Whether a browser on `host` (lower case, no port) keeps a cookie set with Domain=`domain` (RFC 6265 5.1.3)."""
    domain = domain.lstrip(".").lower()
    return host == domain or host.endswith("." + domain)


def expire_headers(policy: Policy, request_cookies: Mapping[str, str], refused: Iterable[str], secure: bool, host: str = "") -> list[bytes]:
    """Set-Cookie headers that expire the refused categories' cookies this request carries. A
    catalogued cookie the policy does not list, and a listed one for which the policy names no
    domain, is expired where the policy says cookies live and also on ``host`` and each domain
    above it: trackers' scripts set theirs on the widest domain they may (gtag.js puts ``_ga`` on
    the registrable domain), and a host-only deletion leaves such a cookie in place."""
    refused = set(refused)
    headers = []
    domains, paths = policy.cookie_scope
    for name in request_cookies:
        category = policy.cookie_category(name)
        if category is None or category not in refused:
            continue
        for rule in policy.cookie_rules(name, category) or [CookieRule(name, domains, paths)]:
            where = rule.domains
            if where == domains:
                where = (*where, *parent_domains(host))
            for domain in where:
                for path in rule.paths:
                    headers.append(cookie_header(name, "", max_age=0, path=path, domain=domain or None, secure=secure, httponly=False, samesite=""))
    return list(dict.fromkeys(headers))


def parent_domains(host: str) -> list[str]:
    """``host`` and the domains above it with at least two labels (a browser ignores a Domain it
    would not accept, such as a public suffix)."""
    if not host or host.startswith("[") or host.replace(".", "").isdigit():
        return []  # an IP address has no domains above it
    labels = host.lower().rstrip(".").split(".")
    return [".".join(labels[i:]) for i in range(len(labels) - 1)]
