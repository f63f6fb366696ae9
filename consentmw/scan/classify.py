"""What the scanner knows about a host or a cookie name, in the terms of one policy.

Hosts: the URL patterns of the hand-written tracker catalog and of the policy's own services first
(they tell Google Analytics from Google Ads on one host), then the hand-written catalog's hosts,
then the host catalog generated from third-party-web (``core.catalog``), with the policy's
per-entity overrides. Cookie names: the policy's own patterns, then the cookie catalog generated
from the Open Cookie Database (``core.catalog.lookup_cookie``, which also names the vendor), then
the cookie patterns of the default preset. The scanner asks only this module, so the catalogs can grow under it."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from consentmw.core.catalog import lookup_cookie, lookup_host
from consentmw.core.policy import Policy, load_policy
from consentmw.core.trackers import Tracker, TrackerRules


@dataclass(frozen=True, slots=True)
class Known:
    # A policy category id; "?<purpose>" for a purpose the policy does not declare (nobody can
    # consent to it, so it is never allowed); None for a catalogued host that needs no consent
    # (a CDN, hosting, a consent provider).
    category: str | None
    entity: str | None = None  # the company or product behind it
    service: str | None = None  # a tracker catalog id (google-analytics), for the policy draft
    service_name: str | None = None


@cache
def _generic_cookies() -> Policy:
    return load_policy("default")


class Classifier:
    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.rules = TrackerRules(policy)

    def request(self, url: str, host: str) -> Known | None:
        """What a request to ``url`` is: by its URL first, else by its host; None when unknown."""
        trackers = [t for t in self.rules.match_src(url.encode("utf-8", "replace")) if not t.from_catalog]
        if not trackers:
            trackers = list(self._host_trackers(host))
        if trackers:
            tracker = trackers[0]
            return Known(tracker.category, tracker.vendor, tracker.id, tracker.name)
        entry = lookup_host(host)
        if entry is None:
            return None
        category = self.rules.entity_categories.get(entry.entity, entry.category)
        if category is None:
            return Known(None, entry.entity)
        return Known(self.policy.category_for(category) or "?" + category, entry.entity)

    def _host_trackers(self, host: str) -> tuple[Tracker, ...]:
        found: list[Tracker] = []
        name = host.encode()
        while name:
            found.extend(self.rules.by_host.get(name, ()))
            name = name.partition(b".")[2]
        return tuple(t for t in found if not t.fallback) or tuple(found)

    def cookie(self, name: str) -> Known | None:
        """The category of a cookie (or storage key) name: the policy's own list first; the vendor
        from the cookie catalog."""
        entry = lookup_cookie(name)
        vendor = entry.vendor if entry is not None else None
        category = self.policy.cookie_category(name)
        if category is not None:
            return Known(category, vendor)
        purpose = entry.category if entry is not None else _generic_cookies().cookie_category(name)
        if purpose is None:
            return None
        return Known(self.policy.category_for(purpose) or "?" + purpose, vendor)

    def optional(self, category: str | None) -> bool:
        """Whether a visitor must consent to this category (false for None)."""
        return category is not None and category not in self.policy.required

    def declared(self, category: str) -> bool:
        return category in self.policy.by_id
