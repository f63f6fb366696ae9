from __future__ import annotations

import json
from collections.abc import Collection

from consentmw.core.policy import Policy


V2_SIGNALS = ("ad_storage", "ad_user_data", "ad_personalization", "analytics_storage")


class ConsentModeDefaults:
    """The inline script that goes first in ``<head>``: Google Consent Mode v2 defaults from the
    visitor's current choices (denied while undecided) and ``window['ga-disable-<ID>'] = true``
    for each Google Analytics id of the policy while analytics is refused. Built once per policy."""

    def __init__(self, policy: Policy) -> None:
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
