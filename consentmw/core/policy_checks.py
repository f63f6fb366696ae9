"""Checks of a policy the schema accepts, against itself and against what consentmw knows: the
tracker catalog, the browser guides and the texts. Each check returns every problem it finds as
(JSON path, message), so that one run of ``consentmw validate`` names them all."""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache
from typing import Any

from consentmw.core import browsers
from consentmw.core.catalog import hosts
from consentmw.core.errors import did_you_mean
from consentmw.core.model import SHIPPED, PolicyModel, Problem, default_texts
from consentmw.core.trackers import catalog

__all__ = ["NECESSARY", "Problem", "check", "check_structure", "did_you_mean"]

# Catalog categories meaning "necessary": a tracker of one may sit in a required category.
NECESSARY = frozenset({"required", "necessary", "essential", "strictly-necessary"})


def check_structure(policy: PolicyModel) -> list[Problem]:
    """What makes the policy contradict itself: a category declared twice, a required category
    GPC would refuse, aliases that point nowhere or hide a category."""
    return [*check_categories(policy.data), *check_aliases(policy)]


def check(policy: PolicyModel) -> list[Problem]:
    """The policy against consentmw's catalogs, guides and texts."""
    data = policy.data
    return [*check_services(data), *check_catalog_entities(policy), *check_browser_guides(data), *check_texts(data), *check_languages(policy)]


def check_categories(data: Mapping[str, Any]) -> list[Problem]:
    problems: list[Problem] = []
    seen: set[str] = set()
    for i, raw in enumerate(data["categories"]):
        if raw["id"] in seen:
            problems.append((f"$.categories[{i}].id", f"category id {raw['id']!r} is declared twice"))
            continue
        seen.add(raw["id"])
        if raw.get("required", False) and raw.get("gpc", False):
            problems.append((f"$.categories[{i}].gpc", "a required category cannot be refused by GPC"))
    return problems


def check_aliases(policy: PolicyModel) -> list[Problem]:
    problems: list[Problem] = []
    given: dict[str, str] = {}
    for name, target in policy.data.get("aliases", {}).items():
        where = f"$.aliases.{name}"
        if target not in policy.by_id:
            problems.append((where, f"alias target {target!r} is not a category of this policy{did_you_mean(target, policy.by_id)}"))
        elif name.lower() in given:
            problems.append((where, f"alias {name!r} is given twice (names are case-insensitive): also as {given[name.lower()]!r}"))
        elif name.lower() in policy.by_id and target != name.lower():
            problems.append((where, f"alias {name!r} would hide the category {name.lower()!r}: pick another name"))
        given.setdefault(name.lower(), name)
    return problems


def check_services(data: Mapping[str, Any]) -> list[Problem]:
    trackers = {t.id: t for t in catalog()}
    problems: list[Problem] = []
    service_at: dict[str, str] = {}
    measurement_id_at: dict[str, str] = {}
    for ci, category in enumerate(data["categories"]):
        required = category.get("required", False)
        for si, service in enumerate(category.get("services", ())):
            where = f"$.categories[{ci}].services[{si}]"
            sid = service["id"]
            if sid in service_at:
                problems.append((f"{where}.id", f"service {sid!r} is already listed at {service_at[sid]}: a service belongs to one category"))
            service_at.setdefault(sid, f"{where}.id")
            for ii, measurement_id in enumerate(service.get("ids", ())):
                if measurement_id in measurement_id_at:
                    problems.append((f"{where}.ids[{ii}]", f"id {measurement_id!r} is already listed at {measurement_id_at[measurement_id]}"))
                measurement_id_at.setdefault(measurement_id, f"{where}.ids[{ii}]")
            match = service.get("match") or {}
            for key in ("src", "inline"):
                for pi, pattern in enumerate(match.get(key, ())):
                    try:
                        re.compile(pattern)
                    except re.error as exc:
                        problems.append((f"{where}.match.{key}[{pi}]", f"not a valid regular expression: {exc}"))
            tracker = trackers.get(sid)
            if required:
                if tracker is not None and tracker.category not in NECESSARY:
                    problems.append(
                        (
                            f"{where}.id",
                            f"{sid} is a tracker ({tracker.category}) in the required category {category['id']!r}, which no "
                            "visitor can refuse: it would run without consent. Move it to an optional category",
                        )
                    )
            elif tracker is None and not (match.get("src") or match.get("inline")):
                problems.append(
                    (
                        f"{where}.id",
                        f"{sid!r} is not in the tracker catalog{did_you_mean(sid, trackers)} (`consentmw trackers` lists it); "
                        "a service of your own needs `match` patterns, or none of its tags is recognised",
                    )
                )
    return problems


def check_catalog_entities(policy: PolicyModel) -> list[Problem]:
    known = {e[0] for e in hosts().entities}
    problems: list[Problem] = []
    for name, category in (policy.data.get("catalog") or {}).get("entities", {}).items():
        where = f"$.catalog.entities.{name}"
        if name not in known:
            problems.append((where, f"{name!r} is no entity of the host catalog (docs/catalog.md){did_you_mean(name, known)}"))
        if category is not None and policy.category_for(category) is None:
            problems.append((where, f"{category!r} is not a category or alias of this policy{did_you_mean(category, policy.aliases)}"))
    return problems


def check_browser_guides(data: Mapping[str, Any]) -> list[Problem]:
    known = {*browsers.guides(), *browsers.guides_by_family()}
    return [
        (f"$.browser_guides[{i}]", f"no browser guide is called {name!r}{did_you_mean(name, known)}")
        for i, name in enumerate(data.get("browser_guides", ()))
        if name not in known
    ]


@cache
def text_keys() -> frozenset[str]:
    return frozenset(default_texts())


def check_languages(policy: PolicyModel) -> list[Problem]:
    """Each language offered has every text, shipped or the policy's own; the default and forced
    language are offered."""
    problems: list[Problem] = []
    shipped = set(SHIPPED)
    for i, lang in enumerate(policy.languages):
        if lang in shipped:
            continue
        missing = sorted(k for k in text_keys() if lang not in policy.data["texts"].get(k, {}))
        if missing:
            problems.append(
                (f"$.languages[{i}]", f"consentmw ships no texts in {lang!r} and the policy's texts miss it for {len(missing)} keys "
                 f"({', '.join(missing[:5])}{', ...' if len(missing) > 5 else ''}); give them in texts, or offer one of {', '.join(SHIPPED)}")
            )
    for field in ("language", "force_language"):
        lang = getattr(policy, field)
        if lang is not None and lang not in policy.languages:
            problems.append((f"$.{field}", f"{lang!r} is not one of the languages offered ({', '.join(policy.languages)})"))
    return problems


def check_texts(data: Mapping[str, Any]) -> list[Problem]:
    return [
        (f"$.texts.{key}", f"no banner or page text is called {key!r}{did_you_mean(key, text_keys())}, so it would never show")
        for key in data.get("texts", {})
        if key not in text_keys()
    ]
