"""Checks of a policy the schema accepts against what consentmw knows: the tracker catalog, the
browser guides and the texts. Each check returns every problem it finds as (JSON path, message),
so that one run of ``consentmw validate`` names them all."""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable, Mapping
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from consentmw.core.policy import Policy

Problem = tuple[str, str]

# Catalog categories meaning "necessary": a tracker of one may sit in a required category.
NECESSARY = frozenset({"required", "necessary", "essential", "strictly-necessary"})


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """"; did you mean 'x'?" for the closest of ``known``, or "" when none is close."""
    close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def check(policy: Policy) -> list[Problem]:
    data = policy.data
    return [*check_services(data), *check_catalog_entities(policy), *check_browser_guides(data), *check_texts(data)]


def check_services(data: Mapping[str, Any]) -> list[Problem]:
    from consentmw.core.trackers import catalog  # the catalog module reads policies itself

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


def check_catalog_entities(policy: Policy) -> list[Problem]:
    from consentmw.core.catalog import hosts

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
    from consentmw.core import browsers  # it reads json_path from the policy module

    known = {*browsers.guides(), *browsers.guides_by_family()}
    return [
        (f"$.browser_guides[{i}]", f"no browser guide is called {name!r}{did_you_mean(name, known)}")
        for i, name in enumerate(data.get("browser_guides", ()))
        if name not in known
    ]


@cache
def text_keys() -> frozenset[str]:
    folder = resources.files("consentmw.core")
    return frozenset(k for f in ("texts.json", "page_texts.json") for k in json.loads(folder.joinpath(f).read_text("utf-8")))


def check_texts(data: Mapping[str, Any]) -> list[Problem]:
    return [
        (f"$.texts.{key}", f"no banner or page text is called {key!r}{did_you_mean(key, text_keys())}, so it would never show")
        for key in data.get("texts", {})
        if key not in text_keys()
    ]
