"""What a scan found, and its JSON form (``--json``; the schema is ``report.schema.json``)."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

from consentmw.core.policy import Policy

# Bumped on any change a reader of the JSON would notice: a field removed, renamed or given another
# meaning. Fields may be added within a version.
SCHEMA_VERSION = 1
FRESH, REFUSED, ACCEPTED = "fresh", "refused", "accepted"
PASSES = (FRESH, REFUSED, ACCEPTED)
BEFORE_CONSENT = (FRESH, REFUSED)  # passes in which no optional category is allowed
PASS_TITLES = {FRESH: "fresh visitor", REFUSED: "after reject non-essential", ACCEPTED: "after accept all"}


@dataclass
class Request:
    url: str
    host: str
    method: str
    resource_type: str
    third_party: bool
    category: str | None = None
    entity: str | None = None
    service: str | None = None
    status: int | None = None
    failure: str | None = None  # net::ERR_... when no response came (an unreachable host, say)
    violation: str | None = None


@dataclass
class Cookie:
    name: str
    domain: str
    path: str
    expires: float | None  # Unix time; None for a session cookie or one the browser did not keep
    third_party: bool
    source: str  # "set-cookie" (a response header) or "script" (document.cookie)
    http_only: bool = False
    secure: bool = False
    same_site: str | None = None
    category: str | None = None
    entity: str | None = None
    violation: str | None = None


@dataclass
class StorageKey:
    origin: str
    key: str
    third_party: bool
    category: str | None = None
    violation: str | None = None


@dataclass
class Pass:
    name: str
    error: str | None = None
    requests: list[Request] = field(default_factory=list)
    cookies: list[Cookie] = field(default_factory=list)
    local_storage: list[StorageKey] = field(default_factory=list)


@dataclass
class Page:
    url: str
    final_url: str | None = None
    status: int | None = None
    title: str | None = None
    depth: int = 0
    passes: dict[str, Pass] = field(default_factory=dict)


@dataclass(frozen=True)
class Violation:
    page: str
    pass_name: str
    kind: str  # request, cookie, local-storage
    subject: str  # a host, a cookie name or a storage key
    category: str | None
    entity: str | None
    reason: str


@dataclass
class Report:
    url: str
    site: str
    started_at: dt.datetime
    options: dict[str, Any]
    browser: dict[str, str]
    consentmw: dict[str, Any]
    passes: tuple[str, ...] = (FRESH,)
    pages: list[Page] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    finished_at: dt.datetime | None = None
    policy: Policy | None = None  # what the scan classified with (for the policy draft; not in the JSON)

    @property
    def violations(self) -> list[Violation]:
        found: dict[tuple[str, str, str, str], Violation] = {}
        for page in self.pages:
            for name, run in page.passes.items():
                for r in run.requests:
                    if r.violation:
                        found.setdefault((page.url, name, "request", r.host), Violation(page.url, name, "request", r.host, r.category, r.entity, r.violation))
                for c in run.cookies:
                    if c.violation:
                        found.setdefault((page.url, name, "cookie", c.name), Violation(page.url, name, "cookie", c.name, c.category, c.entity, c.violation))
                for s in run.local_storage:
                    if s.violation:
                        found.setdefault((page.url, name, "local-storage", s.key), Violation(page.url, name, "local-storage", s.key, s.category, None, s.violation))
        return list(found.values())

    @property
    def errors(self) -> list[tuple[str, str, str]]:
        """(page, pass, error) for each pass that could not run: what it did not see is unchecked."""
        return [(p.url, name, run.error) for p in self.pages for name, run in p.passes.items() if run.error]

    def third_party_hosts(self) -> dict[str, Request]:
        """Each third-party host seen, with its first request (for its entity and category)."""
        hosts: dict[str, Request] = {}
        for page in self.pages:
            for run in page.passes.values():
                for r in run.requests:
                    if r.third_party:
                        hosts.setdefault(r.host, r)
        return dict(sorted(hosts.items()))

    def as_json(self) -> dict[str, Any]:
        violations = self.violations
        hosts = self.third_party_hosts()
        return {
            "schema_version": SCHEMA_VERSION,
            "url": self.url,
            "site": self.site,
            "started_at": _iso(self.started_at),
            "finished_at": _iso(self.finished_at),
            "options": self.options,
            "browser": self.browser,
            "consentmw": self.consentmw,
            "passes": list(self.passes),
            "notes": self.notes,
            "summary": {
                "pages": len(self.pages),
                "violations": len(violations),
                "third_party_hosts": len(hosts),
                "unknown_third_party_hosts": sorted(h for h, r in hosts.items() if r.category is None and r.entity is None),
                "cookies": len({c.name for p in self.pages for run in p.passes.values() for c in run.cookies}),
            },
            "violations": [
                {"page": v.page, "pass": v.pass_name, "kind": v.kind, "subject": v.subject, "category": v.category, "entity": v.entity, "reason": v.reason}
                for v in violations
            ],
            "pages": [_page_json(p) for p in self.pages],
        }


def _iso(moment: dt.datetime | None) -> str | None:
    return moment.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z") if moment else None


def _page_json(page: Page) -> dict[str, Any]:
    return {
        "url": page.url,
        "final_url": page.final_url,
        "status": page.status,
        "title": page.title,
        "depth": page.depth,
        "passes": {
            name: {
                "error": run.error,
                "requests": [vars(r) for r in run.requests],
                "cookies": [
                    {**vars(c), "expires": _iso(dt.datetime.fromtimestamp(c.expires, dt.UTC)) if c.expires is not None else None}
                    for c in run.cookies
                ],
                "local_storage": [vars(s) for s in run.local_storage],
            }
            for name, run in page.passes.items()
        },
    }


@cache
def schema() -> dict[str, Any]:
    return json.loads(resources.files("consentmw.scan").joinpath("report.schema.json").read_text("utf-8"))
