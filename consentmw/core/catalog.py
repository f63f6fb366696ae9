"""What is known about third-party hosts and cookie names, from generated package data.

``data/hosts.json`` is made by ``scripts/gen_catalog.py`` from third-party-web (MIT, see
``data/third-party-web.LICENSE``) plus the curation in ``scripts/catalog-curation.json``;
``data/cookies.json`` by ``scripts/gen_cookies.py`` from the Open Cookie Database (Apache-2.0,
see ``data/open-cookie-database.LICENSE``). The mapping of the datasets' categories onto consent
categories is in docs/catalog.md.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any


@dataclass(frozen=True, slots=True)
class HostEntry:
    entity: str
    category: str | None  # a consent category (id or alias), or None for kinds never blocked (cdn, hosting, ...)
    domain: str  # the catalog's domain that matched, "*.example.com" for the domain and its subdomains
    kind: str  # the dataset's own category: ad, analytics, cdn, ...


@dataclass(frozen=True, slots=True)
class CookieEntry:
    name: str  # the name, or its beginning when ``prefix``
    vendor: str
    category: str
    prefix: bool = False


@dataclass(frozen=True, slots=True)
class CookieDetails:
    provider: str
    purpose: str  # in English, as the Open Cookie Database words it; "" when unknown
    lifetime: str | tuple[int, str]  # "session", (count, unit), the database's words, or ""


def _data(name: str) -> Any:
    return json.loads(resources.files("consentmw.core").joinpath("data", name).read_text("utf-8"))


class HostCatalog:
    def __init__(self, data: dict[str, Any]) -> None:
        self.source: dict[str, Any] = data["source"]
        self.entities: list[list[Any]] = data["entities"]  # [name, dataset kind, consent category]
        # A host matches its exact entry first, then the nearest "*." domain above it (or itself).
        domains: dict[str, int] = data["domains"]
        self.exact = {d: i for d, i in domains.items() if not d.startswith("*.")}
        self.wild = {d[2:]: i for d, i in domains.items() if d.startswith("*.")}

    def lookup(self, host: str) -> HostEntry | None:
        host = host.lower().rstrip(".")
        index = self.exact.get(host)
        domain = host
        while index is None and domain:
            index = self.wild.get(domain)
            if index is None:
                domain = domain.partition(".")[2]
            else:
                domain = "*." + domain
        if index is None:
            return None
        name, kind, category = self.entities[index]
        return HostEntry(name, category, domain, kind)


class CookieCatalog:
    def __init__(self, data: dict[str, Any]) -> None:
        self.source: dict[str, Any] = data["source"]
        self.exact: dict[str, tuple[str, str]] = {}
        self.prefixes: dict[str, tuple[str, str]] = {}
        self.details: dict[tuple[str, bool], CookieDetails] = {}
        for name, vendor, category, prefix, provider, purpose, lifetime in data["cookies"]:
            (self.prefixes if prefix else self.exact)[name] = (vendor, category)
            self.details[(name, prefix)] = CookieDetails(provider, purpose, tuple(lifetime) if isinstance(lifetime, list) else lifetime)
        self.prefix_lengths = sorted({len(p) for p in self.prefixes}, reverse=True)

    def lookup(self, name: str) -> CookieEntry | None:
        found = self.exact.get(name)
        if found is not None:
            return CookieEntry(name, *found)
        for n in self.prefix_lengths:  # the longest prefix wins
            if n <= len(name) and (found := self.prefixes.get(name[:n])) is not None:
                return CookieEntry(name[:n], *found, prefix=True)
        return None


@cache
def hosts() -> HostCatalog:
    return HostCatalog(_data("hosts.json"))


@cache
def cookies() -> CookieCatalog:
    return CookieCatalog(_data("cookies.json"))


def lookup_host(host: str) -> HostEntry | None:
    """The catalogued entity a host (no port) belongs to, or None for a host the catalog does not know."""
    return hosts().lookup(host)


def lookup_cookie(name: str) -> CookieEntry | None:
    """The catalogued vendor and consent category of a cookie name, or None."""
    return cookies().lookup(name)


def cookie_details(entry: CookieEntry) -> CookieDetails:
    """Provider, purpose and lifetime of a catalogued cookie, for the cookie declaration."""
    return cookies().details[(entry.name, entry.prefix)]
