from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from consentmw.core.cookie import ConsentCodec, Decision, cookie_values
from consentmw.core.errors import UnknownCategory
from consentmw.core.policy import Policy
from consentmw.core.regions import OPT_IN, OPT_OUT, RegionRequest, RegionSource

# A browser sends one consent cookie per domain and path it holds one for: a few at most. Only that
# many are verified, since each may cost an HMAC and a slot in the verification cache.
MAX_CONSENT_COOKIES = 8
# Cookie lines whose reading is remembered (a visitor sends the same line request after request),
# and the longest line remembered: at most about 4 MB in all.
LINE_CACHE_SIZE = 2048
LINE_CACHE_LONGEST = 2048


class ConsentReader:
    """What the middleware works out once to read a visitor's consent from a request."""

    def __init__(self, policy: Policy, codec: ConsentCodec, cookie_name: str, source: RegionSource | None = None) -> None:
        self.policy = policy
        self.codec = codec
        self.cookie_name = cookie_name
        self.cookie_key = cookie_name.encode("latin-1")
        self.source = source if source is not None else RegionSource()
        # Undecided visitors in an opt-out region allow every optional category until they refuse.
        self.opt_out_allowed: frozenset[str] = policy.required | frozenset(policy.optional)
        self.max_age = codec.max_age
        # Cookie line -> its newest decision when first read, and the categories it allows.
        self._lines: dict[bytes, tuple[Decision | None, frozenset[str] | None]] = {}

    def __call__(self, scope: dict[str, Any]) -> Consent:
        client = scope.get("client")
        return Consent(self, scope["headers"], self.locator(scope["headers"], client[0] if client else None, scope))

    def locator(
        self, headers: list[tuple[bytes, bytes]] | Callable[[], list[tuple[bytes, bytes]]], client: str | None, request: Any
    ) -> Callable[[], str] | None:
        """How a Consent finds its region when a region= callable decides it (None: from the headers).
        ``headers`` are all the request's, or a function giving them (WSGI builds them only if asked)."""
        source = self.source
        if source.locate is None:
            return None
        return lambda: source.from_callable(RegionRequest(headers() if callable(headers) else headers, client, request))

    def cookie_values(self, headers: list[tuple[bytes, bytes]]) -> list[bytes]:
        """Every consent cookie value the request carries, on every Cookie line, in the order sent."""
        return cookie_values(headers, self.cookie_key)

    def read_line(self, line: bytes) -> tuple[Decision | None, frozenset[str] | None]:
        """The newest decision on one Cookie line (see newest), and what it allows (required
        categories included) when it is under the current policy version; remembered per exact
        line, so its signatures are checked once. The newest decision is also the last to expire:
        checking its expiry on each request (Consent._resolve) gives what reading the line again would."""
        found = self.decide([(b"cookie", line)])
        if len(line) <= LINE_CACHE_LONGEST:
            if len(self._lines) >= LINE_CACHE_SIZE:
                del self._lines[next(iter(self._lines))]
            self._lines[line] = found
        return found

    def decide(self, headers: list[tuple[bytes, bytes]]) -> tuple[Decision | None, frozenset[str] | None]:
        """The newest decision among the request's consent cookies, and what it allows (required
        categories included) when it is under the current policy version, else None."""
        decision = self.newest([v.decode("latin-1") for v in self.cookie_values(headers)])
        return decision, self.policy.required | decision.allowed if decision is not None and decision.current else None

    def newest(self, values: Sequence[str]) -> Decision | None:
        """The newest decision among the values that verify. A browser holding one consent cookie per
        domain and path sends them all, longest path then oldest first: the order says nothing of age."""
        loads = self.codec.loads
        newest = None
        for value in values[:MAX_CONSENT_COOKIES]:
            decision = loads(value)
            # Two signed in the same second cannot be ordered: the one allowing less is the safe reading.
            if decision is not None and (
                newest is None
                or decision.issued_at > newest.issued_at
                or (decision.issued_at == newest.issued_at and len(decision.allowed) < len(newest.allowed))
            ):
                newest = decision
        return newest


class Consent:
    """A visitor's consent for one request, read lazily: most requests never ask."""

    __slots__ = ("_reader", "_headers", "_locate", "_decision", "_gpc", "_allowed", "_resolved", "_region", "_mode")

    def __init__(self, reader: ConsentReader, headers: list[tuple[bytes, bytes]], locate: Callable[[], str] | None = None) -> None:
        self._reader = reader
        self._headers = headers
        self._locate = locate  # set by adapters when a region= callable decides the region
        self._region: str | None = None
        self._resolved = False

    def _resolve(self) -> None:
        reader = self._reader
        policy = reader.policy
        # Every consent cookie on every Cookie line: the first may be stale or forged. One look
        # at each header; a later Sec-GPC line (a proxy's, say) never undoes a refusal.
        line = None
        lines = 0
        gpc = False
        for key, value in self._headers:
            if key == b"cookie":
                line = value
                lines += 1
            elif key == b"sec-gpc" and value.strip() == b"1":
                gpc = True
        allowed: frozenset[str] | None
        if lines == 1:
            decision, allowed = reader._lines.get(line) or reader.read_line(line)  # type: ignore[arg-type]  # set with lines
            if decision is not None and decision.issued_at + reader.max_age < time.time():
                decision = allowed = None  # expired since the line was first read
        elif lines:
            decision, allowed = reader.decide(self._headers)
        else:
            decision = allowed = None
        # A visitor who decided keeps the decision wherever they are; only an undecided one's
        # region matters, and only when the policy has opt-out regions at all.
        mode = OPT_IN
        if policy.regions.opt_out:
            mode = policy.regions.mode(self.region)
        self._mode = mode
        if allowed is None:
            allowed = reader.opt_out_allowed if mode == OPT_OUT else policy.required
        if gpc:
            allowed -= policy.gpc_refuses
        self._decision: Decision | None = decision
        self._gpc = gpc
        self._allowed = allowed  # a frozenset: every operand above is one
        self._resolved = True

    def allows(self, category: str) -> bool:
        """Whether the visitor allows ``category`` (a category id or alias, any case); a name the
        policy does not know raises UnknownCategory (a ValueError)."""
        if not self._resolved:
            self._resolve()
        policy = self._reader.policy
        resolved = policy.aliases.get(category) or policy.category_for(category)  # the call only for an alias in another case, or an unknown name
        if resolved is None:
            raise UnknownCategory(category, list(policy.by_id), sorted(a for a, c in policy.aliases.items() if a != c))
        return resolved in self._allowed

    @property
    def allowed(self) -> frozenset[str]:
        if not self._resolved:
            self._resolve()
        return self._allowed

    @property
    def choices(self) -> dict[str, bool]:
        allowed = self.allowed
        return {c.id: c.id in allowed for c in self._reader.policy.categories}

    @property
    def decided(self) -> bool:
        if not self._resolved:
            self._resolve()
        return self._decision is not None and self._decision.current

    @property
    def outdated(self) -> bool:
        """The visitor chose under an earlier policy version and will be asked again."""
        if not self._resolved:
            self._resolve()
        return self._decision is not None and not self._decision.current

    @property
    def gpc(self) -> bool:
        if not self._resolved:
            self._resolve()
        return self._gpc

    @property
    def region(self) -> str:
        """The visitor's region (an ISO 3166-1 or 3166-2 code), or "" when unknown or not configured."""
        region = self._region
        if region is None:
            locate = self._locate
            region = self._region = locate() if locate is not None else self._reader.source.from_headers(self._headers)
        return region

    @property
    def mode(self) -> str:
        """ "opt-in" or "opt-out": the rule the visitor's region gets from the policy."""
        if not self._resolved:
            self._resolve()
        return self._mode

    @property
    def id(self) -> str | None:
        if not self._resolved:
            self._resolve()
        return self._decision.consent_id if self._decision else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "decided": self.decided,
            "choices": self.choices,
            "gpc": self.gpc,
            "policy_version": self._reader.policy.version,
            "id": self.id,
            "region": self.region,
            "mode": self.mode,
        }

    def __repr__(self) -> str:
        return f"<Consent decided={self.decided} allowed={sorted(self.allowed)} gpc={self.gpc} region={self.region!r} mode={self.mode}>"
