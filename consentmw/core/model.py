"""The policy as data: categories, cookie rules, services, texts and aliases, built from a mapping
the policy schema accepts. Nothing here checks the policy against what consentmw knows or reads
consentmw's other modules: the checks (``policy_checks``), the Consent Mode signals
(``consentmode``), the browser guides and the tracker catalog read this model, and
``consentmw.core.policy`` loads, checks and completes it."""

from __future__ import annotations

import fnmatch
import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import langcodes

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

# The languages consentmw ships texts for: consentmw/core/locales/<tag>.json.
SHIPPED = ("ko", "en", "ja", "zh-CN", "zh-TW", "de", "fr", "es", "it", "pt-BR", "nl", "pl", "vi", "th", "id", "tr")
LANGUAGES = SHIPPED

Problem = tuple[str, str]  # (JSON path, message)


def json_path(parts: Iterable[Any]) -> str:
    path = "$"
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def localized(text: Mapping[str, str], lang: str, fallback: str = "en") -> str:
    """A text in `lang`, else in the fallback language, else in English, else in any it has."""
    return text.get(lang) or text.get(fallback) or text.get("en") or next(iter(text.values()), "")


@cache
def default_texts() -> dict[str, dict[str, str]]:
    """Every text consentmw ships, by key then language."""
    folder = resources.files("consentmw.core").joinpath("locales")
    texts: dict[str, dict[str, str]] = {}
    for lang in SHIPPED:
        for key, text in json.loads(folder.joinpath(f"{lang}.json").read_text("utf-8")).items():
            texts.setdefault(key, {})[lang] = text
    return texts


@cache
def standard_tag(tag: str) -> str:
    """A BCP 47 tag in its standard form (pt-br -> pt-BR, in -> id), as given when it cannot be read."""
    try:
        return langcodes.standardize_tag(tag)
    except (langcodes.LanguageTagError, ValueError):
        return tag


def standard_text(text: Any) -> Any:
    """A {language: text} mapping with its tags in standard form."""
    return {standard_tag(lang): value for lang, value in text.items()} if isinstance(text, Mapping) else text


def standard_texts(data: dict[str, Any]) -> None:
    """Every text of a policy keyed by standard tags, in place: 'pt-br' and 'pt-BR' are one language."""
    for key in ("name", "description", "consequence"):
        for raw in data["categories"]:
            if key in raw:
                raw[key] = standard_text(raw[key])
    for raw in data["categories"]:
        for rule in raw.get("cookies", ()):
            if isinstance(rule, dict):
                for key in ("description", "lifetime"):
                    if key in rule:
                        rule[key] = standard_text(rule[key])
        for service in raw.get("services", ()):
            for key in ("purpose", "collects", "retention"):
                if key in service:
                    service[key] = standard_text(service[key])
    if isinstance(data.get("controller"), dict) and "name" in data["controller"]:
        data["controller"]["name"] = standard_text(data["controller"]["name"])
    data["texts"] = {key: standard_text(text) for key, text in data.get("texts", {}).items()}


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


# Google Consent Mode as a policy without checked signals has it: off. consentmw.core.policy.Policy
# derives the real settings once the policy is checked.
CONSENT_MODE_OFF: dict[str, Any] = {"enabled": False, "wait_for_update": 500, "region": [], "signals": {}}


class PolicyModel:
    """A policy's structure and the lookups the middleware needs, built once from a mapping the
    schema accepts. It is not checked: a category id given twice keeps its first declaration, an
    alias to no category is kept as given. ``consentmw.core.policy.Policy`` is the checked one."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self.data: dict[str, Any] = json.loads(json.dumps(data))
        standard_texts(self.data)
        data = self.data
        self.id: str | None = data.get("id")
        self.version: str = data["version"]
        # The language when neither the page nor the visitor's browser names one offered.
        self.language: str = standard_tag(data.get("language", "en"))
        # Every visitor gets this one, whatever page and browser say.
        self.force_language: str | None = standard_tag(data["force_language"]) if data.get("force_language") else None
        self.max_age: int = data.get("consent_max_age_days", 365) * 86400
        self.retention_days: int | None = data.get("log_retention_days")
        domains = tuple(data.get("cookie_domains") or ("",))
        paths = tuple(data.get("cookie_paths") or ("/",))
        self.cookie_scope = (domains, paths)  # where catalogued cookies the policy does not list are expired

        categories = []
        for raw in data["categories"]:
            if any(c.id == raw["id"] for c in categories):
                continue
            required = raw.get("required", False)
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
        self.aliases: dict[str, str] = self._aliases(data.get("aliases", {}))
        # Per key and language: the policy's wording, else the shipped one.
        own = data["texts"]
        self.texts: dict[str, dict[str, str]] = {key: {**default_texts().get(key, {}), **own.get(key, {})} for key in {*default_texts(), *own}}
        listed = [standard_tag(t) for t in data.get("languages", ())]
        # The languages a visitor can get: those the policy lists, else every shipped one and any its texts add.
        self.languages: tuple[str, ...] = tuple(
            dict.fromkeys(listed or [*SHIPPED, *(lang for text in own.values() for lang in text), self.language])
        )
        self.consent_mode: dict[str, Any] = dict(CONSENT_MODE_OFF)
        self.browser_guides: tuple[str, ...] = tuple(data.get("browser_guides", ()))
        # Binds consent cookies to this exact policy: a new version or category set asks again.
        fingerprint = json.dumps([self.version, [(c.id, c.required) for c in categories]])
        self.version_tag: str = hashlib.sha256(fingerprint.encode()).hexdigest()[:6]
        self._cookie_re, self._cookie_groups = self._cookie_matcher()

    def _aliases(self, extra: Mapping[str, str]) -> dict[str, str]:
        first_required = next((c.id for c in self.categories if c.required), None)
        aliases: dict[str, str] = {}
        for name, target in DEFAULT_ALIASES.items():
            target = first_required if target == "required" else target
            if target in self.by_id:
                aliases[name] = target
        for name, target in extra.items():
            aliases[name.lower()] = target
        for c in self.categories:
            aliases[c.id] = c.id
        return aliases

    def _cookie_matcher(self) -> tuple[re.Pattern[str] | None, list[str]]:
        parts, groups = [], []
        for c in self.categories:
            if c.cookies:
                parts.append(f"(?P<g{len(groups)}>" + "|".join(fnmatch.translate(r.pattern) for r in c.cookies) + ")")
                groups.append(c.id)
        return (re.compile("|".join(parts)) if parts else None), groups

    def declared_cookie_category(self, name: str) -> str | None:
        """The category whose cookie rules match a cookie name, or None."""
        m = self._cookie_re.match(name) if self._cookie_re is not None else None
        return self._cookie_groups[int(m.lastgroup[1:])] if m and m.lastgroup else None

    def cookie_rules(self, name: str, category: str) -> list[CookieRule]:
        return [r for r in self.by_id[category].cookies if fnmatch.fnmatchcase(name, r.pattern)]

    def category_for(self, name: str) -> str | None:
        """A category id for a policy id or an alias (case-insensitive), else None."""
        return self.aliases.get(name) or self.aliases.get(name.lower())

    def google_analytics_ids(self) -> list[str]:
        return [i for c in self.categories for s in c.services if s["id"] == "google-analytics" for i in s.get("ids", ())]

    def text(self, key: str, lang: str) -> str:
        return localized(self.texts.get(key, {}), lang, self.language)

    def local(self, text: Mapping[str, str], lang: str) -> str:
        """One of the policy's own texts (a category's name, a service's purpose) in `lang`, or the nearest it has."""
        return localized(text, lang, self.language) if text else ""

    def public(self, lang: str | None = None) -> dict[str, Any]:
        """What the banner and pages may show: everything but cookie variants and matching rules.
        With `lang`, every text is a plain string in that language (what one page's banner needs)."""
        text: Any = (lambda t: self.local(t, lang)) if lang else (lambda t: t)  # noqa: E731
        controller = self.data.get("controller")
        if controller is not None and lang:
            controller = {**controller, "name": self.local(controller["name"], lang)}
        return {
            "id": self.id,
            "version": self.version,
            "language": lang or self.language,
            "consent_max_age_days": self.max_age // 86400,
            "controller": controller,
            "texts": {key: self.text(key, lang) for key in self.texts} if lang else self.texts,
            "categories": [
                {
                    "id": c.id,
                    "required": c.required,
                    "default": c.default,
                    "gpc": c.gpc,
                    "name": text(c.name),
                    "description": text(c.description),
                    "consequence": text(next(r for r in self.data["categories"] if r["id"] == c.id).get("consequence", {})),
                    "cookies": [r.pattern for r in c.cookies],
                    "services": [
                        {k: (text(v) if k in ("purpose", "collects", "retention") else v) for k, v in s.items() if k != "match"}
                        for s in c.services
                    ],
                }
                for c in self.categories
            ],
            "aliases": self.aliases,
            "google_consent_mode": self.consent_mode,
        }
