"""What the scanner knows about a host or a cookie name, in the terms of one policy.

Until consentmw has a catalog generated from third-party-web and the Open Cookie Database, this
reads what exists: the tracker catalog (``core.trackers``: services and their hosts and URL
patterns), the policy's own services and cookie patterns, and the cookie patterns of the default
preset for everything else. The scanner asks only this module, so the catalog can change under it."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from consentmw.core.policy import Policy, load_policy
from consentmw.core.trackers import Tracker, TrackerRules


@dataclass(frozen=True, slots=True)
class Known:
    # A policy category id; "?<purpose>" for a purpose the policy does not declare (nobody can
    # consent to it, so it is never allowed).
    category: str
    entity: str | None = None  # the company behind it
    service: str | None = None  # a catalog service id, for the policy draft
    service_name: str | None = None


@cache
def _generic_cookies() -> Policy:
    return load_policy("default")


class Classifier:
    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.rules = TrackerRules(policy)

    def request(self, url: str, host: str) -> Known | None:
        """The service a request to ``url`` belongs to, by its URL first, else by its host alone."""
        trackers = self.rules.match_src(url.encode("utf-8", "replace"))
        if not trackers:
            trackers = self._host_trackers(host)
        return self._known(trackers[0]) if trackers else None

    def _host_trackers(self, host: str) -> tuple[Tracker, ...]:
        found: list[Tracker] = []
        name = host.encode()
        while name:
            found.extend(self.rules.by_host.get(name, ()))
            name = name.partition(b".")[2]
        return tuple(t for t in found if not t.fallback) or tuple(found)

    def _known(self, tracker: Tracker) -> Known:
        return Known(tracker.category, tracker.vendor, tracker.id, tracker.name)

    def cookie(self, name: str) -> Known | None:
        """The category of a cookie (or storage key) name: the policy's own list first."""
        category = self.policy.cookie_category(name)
        if category is not None:
            return Known(category)
        purpose = _generic_cookies().cookie_category(name)
        if purpose is None:
            return None
        return Known(self.policy.category_for(purpose) or "?" + purpose)

    def optional(self, category: str | None) -> bool:
        """Whether a visitor must consent to this category (false for unknown: None)."""
        return category is not None and category not in self.policy.required

    def declared(self, category: str) -> bool:
        return category in self.policy.by_id
