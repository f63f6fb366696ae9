from __future__ import annotations

from typing import Any

from consentmw.core.cookie import ConsentCodec, Decision, cookie_values
from consentmw.core.errors import UnknownCategory
from consentmw.core.policy import Policy

# A browser sends one consent cookie per domain and path it holds one for: a few at most. Only that
# many are verified, since each may cost an HMAC and a slot in the verification cache.
MAX_CONSENT_COOKIES = 8


class ConsentReader:
    """What the middleware works out once to read a visitor's consent from a request."""

    def __init__(self, policy: Policy, codec: ConsentCodec, cookie_name: str) -> None:
        self.policy = policy
        self.codec = codec
        self.cookie_name = cookie_name
        self.cookie_key = cookie_name.encode("latin-1")

    def __call__(self, scope: dict[str, Any]) -> Consent:
        return Consent(self, scope["headers"])

    def cookie_values(self, headers: list[tuple[bytes, bytes]]) -> list[bytes]:
        """Every consent cookie value the request carries, on every Cookie line, in the order sent."""
        return cookie_values(headers, self.cookie_key)

    def newest(self, values: list[bytes]) -> Decision | None:
        """The newest decision among the values that verify. A browser holding one consent cookie per
        domain and path sends them all, longest path then oldest first: the order says nothing of age."""
        loads = self.codec.loads
        newest = None
        for value in values[:MAX_CONSENT_COOKIES]:
            decision = loads(value.decode("latin-1"))
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

    __slots__ = ("_reader", "_headers", "_decision", "_gpc", "_allowed", "_resolved")

    def __init__(self, reader: ConsentReader, headers: list[tuple[bytes, bytes]]) -> None:
        self._reader = reader
        self._headers = headers
        self._resolved = False

    def _resolve(self) -> None:
        reader = self._reader
        # Every one: the first may be stale or forged.
        values = cookie_values(self._headers, reader.cookie_key)
        # A later line (a proxy's, say) never undoes a refusal.
        gpc = any(key == b"sec-gpc" and value.strip() == b"1" for key, value in self._headers)
        policy = reader.policy
        if len(values) == 1:  # the common case
            decision = reader.codec.loads(values[0].decode("latin-1"))
        else:
            decision = reader.newest(values) if values else None
        allowed = set(policy.required)
        if decision is not None and decision.current:
            allowed |= decision.allowed
        if gpc:
            allowed -= policy.gpc_refuses
        self._decision: Decision | None = decision
        self._gpc = gpc
        self._allowed = frozenset(allowed)
        self._resolved = True

    def allows(self, category: str) -> bool:
        """Whether the visitor allows ``category`` (a category id or alias, any case); a name the
        policy does not know raises UnknownCategory (a ValueError)."""
        if not self._resolved:
            self._resolve()
        policy = self._reader.policy
        resolved = policy.category_for(category)
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
        }

    def __repr__(self) -> str:
        return f"<Consent decided={self.decided} allowed={sorted(self.allowed)} gpc={self.gpc}>"
