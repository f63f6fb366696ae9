from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from typing import Any

from consentmw.core.errors import did_you_mean
from consentmw.core.model import PolicyModel, Problem


V2_SIGNALS = ("ad_storage", "ad_user_data", "ad_personalization", "analytics_storage")
AD_SIGNALS = ("ad_storage", "ad_user_data", "ad_personalization")
# The signals a Google service reads: they follow the category that holds it, whatever its name.
SERVICE_SIGNALS = {
    "google-analytics": ("analytics_storage",),
    "google-ads": AD_SIGNALS,
    "doubleclick": AD_SIGNALS,
    "google-adsense": AD_SIGNALS,
}
# A signal no service places follows the category of the usual name (or an alias of it).
SIGNALS_BY_NAME = {"ad_storage": "advertising", "ad_user_data": "advertising", "ad_personalization": "advertising", "analytics_storage": "analytics"}


def is_google_service(service_id: str) -> bool:
    return service_id.startswith(("google-", "gtag", "doubleclick"))


def settings(policy: PolicyModel) -> tuple[dict[str, Any], list[Problem]]:
    """The policy's Consent Mode settings (``Policy.consent_mode``) and the problems in them. It is
    on by default when the policy lists a Google service."""
    raw = dict(policy.data.get("google_consent_mode") or {})
    services = {s["id"] for c in policy.categories for s in c.services}
    enabled = raw.get("enabled", any(is_google_service(s) for s in services))
    signals, problems = derive_signals(policy, raw.get("signals", {}), check_coverage=enabled)
    mode = {"enabled": enabled, "wait_for_update": raw.get("wait_for_update", 500), "region": raw.get("region", []), "signals": signals}
    return mode, problems


def derive_signals(policy: PolicyModel, explicit: Mapping[str, str], check_coverage: bool = True) -> tuple[dict[str, str], list[Problem]]:
    """Which category each Consent Mode signal follows, and the problems found on the way: a
    signal two categories' services both need, a target that is no category, and a Google
    service in a category no signal follows (its tags would see every signal denied forever)."""
    problems: list[Problem] = []
    placed: dict[str, str] = {}
    clashed: set[tuple[int, int]] = set()
    for ci, category in enumerate(policy.categories):
        for si, service in enumerate(category.services):
            needs = [s for s in SERVICE_SIGNALS.get(service["id"], ()) if s not in explicit]
            clash = sorted({placed[s] for s in needs if placed.get(s, category.id) != category.id})
            if clash:
                clashed.add((ci, si))
                problems.append(
                    (
                        f"$.categories[{ci}].services[{si}].id",
                        f"{service['id']} needs the Consent Mode signals {', '.join(needs)}, which already follow "
                        f"category {clash[0]!r}: a signal follows one category, so put these Google services in one "
                        "category or name the category in google_consent_mode.signals",
                    )
                )
            for signal in needs:
                placed.setdefault(signal, category.id)
    signals: dict[str, str] = {}
    for signal, name in SIGNALS_BY_NAME.items():
        target = placed.get(signal) or policy.category_for(name)
        if target is not None:
            signals[signal] = target
    for signal, target in explicit.items():
        if target not in policy.by_id:
            where = f"$.google_consent_mode.signals.{signal}"
            problems.append((where, f"{target!r} is not a category of this policy{did_you_mean(target, policy.by_id)}"))
            continue
        signals[signal] = target
    if check_coverage:
        followed = set(signals.values())
        for ci, category in enumerate(policy.categories):
            if category.required or category.id in followed:
                continue
            for si, service in enumerate(category.services):
                if is_google_service(service["id"]) and (ci, si) not in clashed:
                    problems.append(
                        (
                            f"$.categories[{ci}].services[{si}].id",
                            f"{service['id']} is a Google service in category {category.id!r}, which no Consent Mode "
                            "signal follows: its tags would read every signal as denied even after a visitor allows "
                            f"{category.id!r}. Name the category in google_consent_mode.signals "
                            "(analytics_storage, ad_storage, ...)",
                        )
                    )
    return signals, problems


class ConsentModeDefaults:
    """The inline script that goes first in ``<head>``: Google Consent Mode v2 defaults from the
    visitor's current choices (denied while undecided) and ``window['ga-disable-<ID>'] = true``
    for each Google Analytics id of the policy while analytics is refused. Built once per policy."""

    def __init__(self, policy: PolicyModel) -> None:
        mode = policy.consent_mode
        self.enabled: bool = mode["enabled"]
        self.signals: dict[str, str] = dict(mode["signals"])
        self.region: list[str] = list(mode["region"])
        self.wait_for_update: int = mode["wait_for_update"]
        self.advertising: str | None = mode["signals"].get("ad_storage")
        analytics = next((c.id for c in policy.categories for s in c.services if s["id"] == "google-analytics"), None)
        self.ga_category: str | None = analytics
        self.ga_ids: tuple[str, ...] = tuple(dict.fromkeys(policy.google_analytics_ids()))
        self._cache: dict[frozenset[str], str] = {}

    def code(self, allowed: Collection[str]) -> str:
        """JavaScript for a visitor who allows ``allowed`` (category ids); empty when nothing applies."""
        key = frozenset(allowed)
        code = self._cache.get(key)
        if code is None:
            code = self._cache[key] = self._build(key)
        return code

    def _build(self, allowed: frozenset[str]) -> str:
        lines = []
        if self.ga_ids and self.ga_category is not None and self.ga_category not in allowed:
            lines += [f"window[{json.dumps('ga-disable-' + i)}]=true;" for i in self.ga_ids]
        if self.enabled:
            # All four v2 signals, always: one that no category of the policy can grant stays
            # denied, rather than being left without a default.
            state = dict.fromkeys(V2_SIGNALS, "denied")
            state.update((signal, "granted" if cat in allowed else "denied") for signal, cat in self.signals.items())
            if self.wait_for_update:
                state["wait_for_update"] = self.wait_for_update
            if self.region:
                state["region"] = self.region
            lines.append("window.dataLayer=window.dataLayer||[];function gtag(){dataLayer.push(arguments);}")
            lines.append(f"gtag('consent','default',{json.dumps(state, separators=(',', ':'))});")
            if self.advertising is not None and self.advertising not in allowed:
                lines.append("gtag('set','ads_data_redaction',true);")
        # Nothing here comes from the visitor, and json.dumps output holds no "</": safe in a <script>.
        return "".join(lines)
