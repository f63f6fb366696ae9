from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import jsonschema

from consentmw.core import policy_checks
from consentmw.core.catalog import lookup_cookie
from consentmw.core.policy_checks import did_you_mean
from consentmw.core.consentmode import derive_signals, is_google_service
from consentmw.core.errors import PolicyError
from consentmw.core.regions import RegionRules, gpc_problems

# Other consent tools' category names, mapped onto the usual category ids; entries whose target the
# policy does not declare are skipped. "required" stands for the policy's first required category.
DEFAULT_ALIASES = {
    "statistics": "analytics",
    "performance": "analytics",
    "analytics": "analytics",
    "c0002": "analytics",
    "marketing": "advertising",
    "advertising": "advertising",
    "targeting": "advertising",
    "ads": "advertising",
    "c0004": "advertising",
    "c0005": "advertising",  # OneTrust's social media cookies
    "social": "advertising",
    "social_networking": "advertising",  # Termly
    "measurement": "analytics",  # iubenda
    "statistics-anonymous": "analytics",  # Complianz
    "preferences": "personalisation",
    "functional": "personalisation",
    "functionality": "personalisation",
    "personalization": "personalisation",
    "personalisation": "personalisation",
    "c0003": "personalisation",
    "experience": "personalisation",  # iubenda
    "necessary": "required",
    "essential": "required",
    "strictly-necessary": "required",
    "strictly_necessary": "required",
    "c0001": "required",
}

LANGUAGES = ("ko", "en")


@cache
def schema() -> dict[str, Any]:
    return json.loads(resources.files("consentmw.core").joinpath("policy.schema.json").read_text("utf-8"))


@cache
def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(schema())


@cache
def default_texts() -> dict[str, dict[str, str]]:
    return json.loads(resources.files("consentmw.core").joinpath("texts.json").read_text("utf-8"))


def preset_names() -> list[str]:
    folder = resources.files("consentmw.core").joinpath("presets")
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".json"))


def schema_problem(error: jsonschema.ValidationError) -> tuple[str, str]:
    path = json_path(error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, Mapping):
        # Name each unknown key with the closest known one: "catgories" is a typo, not a new field.
        known = error.schema.get("properties", {})
        unknown = [k for k in error.instance if k not in known]
        return path, "; ".join(f"unknown field {k!r}{did_you_mean(k, known)}" for k in unknown)
    return path, error.message


def json_path(parts: Any) -> str:
    path = "$"
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


@dataclass(frozen=True, slots=True)
class CookieRule:
    pattern: str
    domains: tuple[str, ...]
    paths: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Category:
    id: str
    required: bool
    default: bool
    gpc: bool
    name: Mapping[str, str]
    description: Mapping[str, str]
    cookies: tuple[CookieRule, ...]
    services: tuple[Mapping[str, Any], ...]


class Policy:
    """A validated policy: categories, texts and the lookups the middleware needs, built once."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        schema_errors = sorted(_validator().iter_errors(data), key=lambda e: (len(e.absolute_path), list(map(str, e.absolute_path))))
        if schema_errors:
            # The checks below read the policy's structure: they run only on one the schema accepts.
            raise PolicyError("", problems=[schema_problem(e) for e in schema_errors])
        problems: list[tuple[str, str]] = []
        self.data: dict[str, Any] = json.loads(json.dumps(data))
        self.id: str | None = data.get("id")
        self.version: str = data["version"]
        self.language: str = data.get("language", "ko")
        self.max_age: int = data.get("consent_max_age_days", 365) * 86400
        self.retention_days: int | None = data.get("log_retention_days")
        domains = tuple(data.get("cookie_domains") or ("",))
        paths = tuple(data.get("cookie_paths") or ("/",))
        self.cookie_scope = (domains, paths)  # where catalogued cookies the policy does not list are expired

        categories = []
        seen: set[str] = set()
        for i, raw in enumerate(data["categories"]):
            if raw["id"] in seen:
                problems.append((f"$.categories[{i}].id", f"category id {raw['id']!r} is declared twice"))
                continue
            seen.add(raw["id"])
            required = raw.get("required", False)
            if required and raw.get("gpc", False):
                problems.append((f"$.categories[{i}].gpc", "a required category cannot be refused by GPC"))
            rules = []
            for rule in raw.get("cookies", ()):
                if isinstance(rule, str):
                    rule = {"name": rule}
                rules.append(CookieRule(rule["name"], tuple(rule.get("domains") or domains), tuple(rule.get("paths") or paths)))
            categories.append(
                Category(
                    id=raw["id"],
                    required=required,
                    default=required or raw.get("default", False),
                    gpc=raw.get("gpc", False),
                    name=raw["name"],
                    description=raw.get("description", {}),
                    cookies=tuple(rules),
                    services=tuple(raw.get("services", ())),
                )
            )
        self.categories: tuple[Category, ...] = tuple(categories)
        self.by_id: dict[str, Category] = {c.id: c for c in categories}
        # The consent cookie stores one bit per optional category, in this order.
        self.optional: tuple[str, ...] = tuple(c.id for c in categories if not c.required)
        self.required: frozenset[str] = frozenset(c.id for c in categories if c.required)
        self.gpc_refuses: frozenset[str] = frozenset(c.id for c in categories if c.gpc)
        self.aliases: dict[str, str] = self._aliases(data.get("aliases", {}), problems)
        self.texts: dict[str, dict[str, str]] = {**default_texts(), **data.get("texts", {})}
        self.consent_mode: dict[str, Any] = self._consent_mode(data.get("google_consent_mode"), problems)
        self.browser_guides: tuple[str, ...] = tuple(data.get("browser_guides", ()))
        self.regions = RegionRules(data.get("regions", ()))
        problems += RegionRules.problems(data.get("regions", ())) + gpc_problems(data, self.category_for)
        problems += policy_checks.check(self)
        if problems:
            raise PolicyError("", problems=problems)
        # Binds consent cookies to this exact policy: a new version or category set asks again.
        fingerprint = json.dumps([self.version, [(c.id, c.required) for c in categories]])
        self.version_tag: str = hashlib.sha256(fingerprint.encode()).hexdigest()[:6]
        self._cookie_re, self._cookie_groups = self._cookie_matcher()

    def _aliases(self, extra: Mapping[str, str], problems: list[tuple[str, str]]) -> dict[str, str]:
        first_required = next((c.id for c in self.categories if c.required), None)
        aliases: dict[str, str] = {}
        for name, target in DEFAULT_ALIASES.items():
            target = first_required if target == "required" else target
            if target in self.by_id:
                aliases[name] = target
        given: dict[str, str] = {}
        for name, target in extra.items():
            where = f"$.aliases.{name}"
            if target not in self.by_id:
                problems.append((where, f"alias target {target!r} is not a category of this policy{did_you_mean(target, self.by_id)}"))
            elif name.lower() in given:
                problems.append((where, f"alias {name!r} is given twice (names are case-insensitive): also as {given[name.lower()]!r}"))
            elif name.lower() in self.by_id and target != name.lower():
                problems.append((where, f"alias {name!r} would hide the category {name.lower()!r}: pick another name"))
            given.setdefault(name.lower(), name)
            aliases[name.lower()] = target
        for c in self.categories:
            aliases[c.id] = c.id
        return aliases

    def _consent_mode(self, raw: Mapping[str, Any] | None, problems: list[tuple[str, str]]) -> dict[str, Any]:
        raw = dict(raw or {})
        services = {s["id"] for c in self.categories for s in c.services}
        enabled = raw.get("enabled", any(is_google_service(s) for s in services))
        signals, signal_problems = derive_signals(self, raw.get("signals", {}), check_coverage=enabled)
        problems += signal_problems
        return {
            "enabled": enabled,
            "wait_for_update": raw.get("wait_for_update", 500),
            "region": raw.get("region", []),
            "signals": signals,
        }

    def _cookie_matcher(self) -> tuple[re.Pattern[str] | None, list[str]]:
        parts, groups = [], []
        for c in self.categories:
            if c.cookies:
                parts.append(f"(?P<g{len(groups)}>" + "|".join(fnmatch.translate(r.pattern) for r in c.cookies) + ")")
                groups.append(c.id)
        return (re.compile("|".join(parts)) if parts else None), groups

    def cookie_category(self, name: str) -> str | None:
        """The category a cookie name belongs to: the policy's rules first, then the cookie catalog
        (``"?<category>"`` when the policy does not declare the catalog's category); None if neither knows it."""
        m = self._cookie_re.match(name) if self._cookie_re is not None else None
        if m and m.lastgroup:
            return self._cookie_groups[int(m.lastgroup[1:])]
        entry = lookup_cookie(name)
        return None if entry is None else self.category_for(entry.category) or "?" + entry.category

    def cookie_rules(self, name: str, category: str) -> list[CookieRule]:
        return [r for r in self.by_id[category].cookies if fnmatch.fnmatchcase(name, r.pattern)]

    def category_for(self, name: str) -> str | None:
        """A category id for a policy id or an alias (case-insensitive), else None."""
        return self.aliases.get(name) or self.aliases.get(name.lower())

    def google_analytics_ids(self) -> list[str]:
        return [i for c in self.categories for s in c.services if s["id"] == "google-analytics" for i in s.get("ids", ())]

    def text(self, key: str, lang: str) -> str:
        return localized(self.texts.get(key, {}), lang, self.language)

    def public(self) -> dict[str, Any]:
        """What the banner and pages may show: everything but cookie variants and matching rules."""
        return {
            "id": self.id,
            "version": self.version,
            "language": self.language,
            "consent_max_age_days": self.max_age // 86400,
            "controller": self.data.get("controller"),
            "texts": self.texts,
            "categories": [
                {
                    "id": c.id,
                    "required": c.required,
                    "default": c.default,
                    "gpc": c.gpc,
                    "name": c.name,
                    "description": c.description,
                    "consequence": self.data["categories"][i].get("consequence", {}),
                    "cookies": [r.pattern for r in c.cookies],
                    "services": [{k: v for k, v in s.items() if k != "match"} for s in c.services],
                }
                for i, c in enumerate(self.categories)
            ],
            "aliases": self.aliases,
            "google_consent_mode": self.consent_mode,
        }


def localized(text: Mapping[str, str], lang: str, fallback: str = "ko") -> str:
    return text.get(lang) or text.get(fallback) or next(iter(text.values()), "")


def load_policy(source: str | os.PathLike[str] | Mapping[str, Any] | Policy) -> Policy:
    """A Policy from a preset name, a path to a JSON file, a mapping, or a Policy."""
    if isinstance(source, Policy):
        return source
    if isinstance(source, Mapping):
        return Policy(source)
    text = None
    name = os.fspath(source)
    if name in preset_names():
        text = resources.files("consentmw.core").joinpath("presets").joinpath(f"{name}.json").read_text("utf-8")
    else:
        try:
            with open(name, encoding="utf-8") as f:
                text = f.read()
        except OSError as exc:
            raise PolicyError(
                f"cannot read policy file {name!r} ({exc.strerror}); give a path to a JSON file or one of the presets: {', '.join(preset_names())}"
            ) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PolicyError(f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    return Policy(data)
