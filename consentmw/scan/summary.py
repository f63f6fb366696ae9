"""The terminal summary of a scan."""

from __future__ import annotations

from typing import TextIO
from urllib.parse import urlsplit

from .report import PASS_TITLES, Report


def print_summary(report: Report, out: TextIO) -> None:
    violations = report.violations
    passes = ", ".join(PASS_TITLES[p] for p in report.passes)
    print(f"consentmw scan of {report.url}: {len(report.pages)} page(s); passes: {passes}", file=out)
    cm = report.consentmw
    if cm.get("detected"):
        print(f"consentmw found at {cm['prefix']} (policy {cm.get('policy_id') or '-'} version {cm.get('policy_version')})", file=out)
    print(f"classified with {cm.get('classified_with')}", file=out)
    for note in report.notes:
        print(f"note: {note}", file=out)
    errors = report.errors
    for url, name, error in errors:
        print(f"error: {_path(url)} ({PASS_TITLES[name]}): {error}", file=out)

    hosts = report.third_party_hosts()
    if hosts:
        print(f"\nthird-party hosts ({len(hosts)}):", file=out)
        for host, r in hosts.items():
            what = f"{r.entity} ({r.category or 'needs no consent'})" if r.entity else "unknown: not in the catalog"
            print(f"  {host:<40} {what}", file=out)
    cookies = {}
    for p in report.pages:
        for run in p.passes.values():
            for c in run.cookies:
                cookies.setdefault((c.name, c.domain), (c, set()))[1].add(run.name)
    if cookies:
        print(f"\ncookies ({len(cookies)}):", file=out)
        for (name, domain), (c, seen_in) in sorted(cookies.items()):
            seen = ", ".join(p for p in report.passes if p in seen_in)
            print(f"  {name:<24} {domain:<28} {c.category or 'unknown':<16} {seen}", file=out)

    if violations:
        print(f"\nVIOLATIONS ({len(violations)}):", file=out)
        for v in violations:
            print(f"  {_path(v.page):<24} {v.pass_name:<8} {v.kind:<13} {v.subject:<32} {v.reason}", file=out)
        print(f"\n{len(violations)} violation(s): exit status 1", file=out)
    elif errors:
        print(f"\nno violations seen, but {len(errors)} pass(es) could not run (errors above), so the scan is incomplete: exit status 2", file=out)
    else:
        print("\nno violations", file=out)


def _path(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "") or "/"
