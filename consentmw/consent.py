from __future__ import annotations

import re
from typing import Any

from consentmw.cookie import ConsentCodec, Decision
from consentmw.policy import Policy


class ConsentReader:
    """What the middleware works out once to read a visitor's consent from a request."""

    def __init__(self, policy: Policy, codec: ConsentCodec, cookie_name: str) -> None:
        self.policy = policy
        self.codec = codec
        self.cookie_name = cookie_name
        self.cookie_re = re.compile(rb"(?:^|;)\s*" + re.escape(cookie_name.encode()) + rb"=\"?([^;\"\s]*)")

    def __call__(self, scope: dict[str, Any]) -> Consent:
        return Consent(self, scope["headers"])


class Consent:
    """A visitor's consent for one request, read lazily: most requests never ask."""

    __slots__ = ("_reader", "_headers", "_decision", "_gpc", "_allowed", "_resolved")

    def __init__(self, reader: ConsentReader, headers: list[tuple[bytes, bytes]]) -> None:
        self._reader = reader
        self._headers = headers
        self._resolved = False

    def _resolve(self) -> None:
        cookie_value = None
        gpc = False
        for key, value in self._headers:
            if key == b"cookie" and cookie_value is None:
                m = self._reader.cookie_re.search(value)
                if m:
                    cookie_value = m.group(1).decode("latin-1")
            elif key == b"sec-gpc" and value.strip() == b"1":
                gpc = True  # a later line (a proxy's, say) never undoes a refusal
        policy = self._reader.policy
        decision = self._reader.codec.loads(cookie_value) if cookie_value else None
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
        if not self._resolved:
            self._resolve()
        resolved = self._reader.policy.category_for(category)
        return resolved is not None and resolved in self._allowed

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
