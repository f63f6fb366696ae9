"""``--policy-draft``: a policy that declares what the scan found, for the site owner to edit.

It starts from the policy the scan classified with. Each tracker of the catalog found becomes a
service of its category; a host-catalog entity becomes a service of its category recognised by the
hosts it was seen on; each cookie the policy does not list is added to its category (catalogued or
not), so that the cookie declaration page lists it. What nothing
classifies is never left out and never allowed silently: unknown third-party hosts (as services
with a ``match`` pattern) and their cookies go to an ``unclassified`` category, which is optional,
so consentmw keeps them inert until the owner moves them. Unknown cookies of the site itself go to
the required category, as they work today, to be checked."""

from __future__ import annotations

import copy
import datetime as dt
import re
from typing import Any

from consentmw.core.errors import ConfigError
from consentmw.core.policy import Policy, load_policy

from .browser import ScanError
from .report import Report

COOKIE_NAME = re.compile(r"[!#$%&'+\-.^_`|~0-9A-Za-z]{1,128}")  # the schema's, without glob characters
UNCLASSIFIED = {
    "id": "unclassified",
    "name": {"en": "Unclassified (check each entry)", "ko": "미분류 (항목별 확인 필요)"},
    "description": {
        "en": "Found by consentmw scan and unknown to its catalog. Move each service and cookie to the category of its purpose, then delete this category.",
        "ko": "consentmw scan이 찾았지만 카탈로그에 없는 항목입니다. 각 서비스와 쿠키를 실제 목적의 항목으로 옮긴 뒤 이 항목을 지우세요.",
    },
}


def policy_draft(report: Report, base: Policy | None = None) -> dict[str, Any]:
    policy = base or _scan_policy(report)
    data = copy.deepcopy(policy.data)
    data["version"] = f"draft-{dt.date.today():%Y%m%d}"
    categories: dict[str, dict[str, Any]] = {c["id"]: c for c in data["categories"]}
    declared = {s["id"] for c in data["categories"] for s in c.get("services", ())}
    hosted: dict[str, dict[str, Any]] = {}  # services recognised by host, by id
    required = next(c.id for c in policy.categories if c.required) if policy.required else None

    def category(cid: str) -> dict[str, Any]:
        if cid.startswith("?"):
            cid = policy.category_for(cid[1:]) or re.sub(r"[^a-z0-9_]", "_", cid[1:].lower())[:32] or "unclassified"
        if cid not in categories:
            new = copy.deepcopy(UNCLASSIFIED) if cid == "unclassified" else {"id": cid, "name": {"en": cid.replace("_", " ").capitalize()}}
            data["categories"].append(new)
            categories[cid] = new
        return categories[cid]

    for page in report.pages:
        for run in page.passes.values():
            for r in run.requests:
                if r.service and r.category and r.service not in declared:
                    declared.add(r.service)
                    service = {"id": r.service}
                    if r.entity:
                        service["provider"] = r.entity
                    category(r.category).setdefault("services", []).append(service)
                elif r.third_party and (r.entity is None or r.category is not None):
                    # A host-catalog entity in its category, an unknown host in "unclassified":
                    # a service of the site's own, recognised by its host.
                    target = category(r.category or "unclassified")
                    sid = _service_id(r.entity or r.host)
                    pattern = "//" + re.escape(r.host) + "(?:[/:?#]|$)"
                    service = hosted.get(sid)
                    if service is None and sid not in declared:
                        declared.add(sid)
                        service = hosted[sid] = {"id": sid, "name": r.entity or r.host, "match": {"src": []}}
                        target.setdefault("services", []).append(service)
                    if service is not None and pattern not in service["match"]["src"]:
                        service["match"]["src"].append(pattern)
            for c in run.cookies:
                # Catalogued cookies too: the cookie declaration page lists what the policy declares.
                if policy.declared_cookie_category(c.name) is not None or not COOKIE_NAME.fullmatch(c.name):
                    continue
                target = c.category or ("unclassified" if c.third_party or required is None else required)
                cookies = category(target).setdefault("cookies", [])
                if c.name not in cookies:
                    cookies.append(c.name)
    try:
        Policy(data)
    except ConfigError as exc:  # a bug of this module: say so rather than write a policy that fails
        raise ScanError(f"the policy draft does not validate: {exc}") from None
    return data


def _scan_policy(report: Report) -> Policy:
    return report.policy or load_policy("default")


def _service_id(host: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", host.lower()).strip("-")[:64] or "unknown-host"
