from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass, field
from typing import Any, Protocol


class StoreError(Exception):
    """The consent log could not be written or read."""


@dataclass(frozen=True, slots=True)
class ConsentRecord:
    # One proof of consent. Append-only: a withdrawal is a new record with the same consent_id.
    consent_id: str
    policy_id: str | None
    policy_version: str
    choices: dict[str, bool]
    method: str  # banner | settings | form | opt-out | gpc | api
    path: str = ""
    ip: str = ""  # already truncated, never the raw address
    user_agent: str = ""  # browser family, never the raw string
    created_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))

    def as_dict(self) -> dict[str, Any]:
        return {
            "consent_id": self.consent_id,
            "created_at": self.created_at.isoformat(),
            "policy_id": self.policy_id,
            "policy_version": self.policy_version,
            "choices": self.choices,
            "method": self.method,
            "path": self.path,
            "ip": self.ip,
            "user_agent": self.user_agent,
        }


class ConsentStore(Protocol):
    async def record(self, record: ConsentRecord) -> None: ...

    async def close(self) -> None: ...


def truncate_ip(address: str | None) -> str:
    """The address with its last octet (IPv4) or last 80 bits (IPv6) zeroed; '' if unreadable."""
    if not address:
        return ""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return ""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    bits = 8 if ip.version == 4 else 80
    return str(ipaddress.ip_network(f"{ip}/{ip.max_prefixlen - bits}", strict=False).network_address)
