"""``--html``: the report as one page with no outside resource, for a site owner to open anywhere."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from html import escape

from .report import PASS_TITLES, Page, Pass, Report

STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:72rem;padding:0 1rem;color:#1b1b1b}
h1{font-size:1.5rem}h2{font-size:1.2rem;margin-top:2.2rem;border-bottom:1px solid #ccc}h3{font-size:1rem}
table{border-collapse:collapse;width:100%;margin:.4rem 0 1rem}caption{text-align:left;font-weight:600;padding:.3rem 0}
th,td{border:1px solid #d0d0d0;padding:.25rem .45rem;text-align:left;vertical-align:top;overflow-wrap:anywhere}
th{background:#f2f2f2}tr.violation td{background:#fde8e8}.ok{color:#106b21}.bad{color:#a30d0d;font-weight:600}
.meta td:first-child{width:12rem;font-weight:600;word-break:normal}p.note{background:#fff6d8;padding:.4rem .6rem}
"""


def render(report: Report) -> str:
    violations = report.violations
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>consentmw scan: {escape(report.url)}</title>",
        f"<style>{STYLE}</style></head><body>",
        f"<h1>Consent audit of {escape(report.url)}</h1>",
        _meta(report),
        *(f'<p class="note">{escape(note)}</p>' for note in report.notes),
    ]
    if violations:
        parts.append(f'<p class="bad">{len(violations)} violation(s): something of a purpose that needs consent happened without it.</p>')
        parts.append(
            _table(
                "Violations",
                ("page", "pass", "kind", "what", "category", "entity", "why"),
                [(v.page, PASS_TITLES[v.pass_name], v.kind, v.subject, v.category or "unknown", v.entity or "", v.reason) for v in violations],
                table_id="violations",
                flagged=len(violations),
            )
        )
    else:
        parts.append('<p class="ok">No violations: nothing of a purpose that needs consent happened without it.</p>')
    for page in report.pages:
        parts.append(_page(page))
    parts.append("</body></html>")
    return "\n".join(parts)


def _meta(report: Report) -> str:
    cm = report.consentmw
    consentmw = (
        f"yes, consent API at {cm['prefix']}, policy {cm.get('policy_id') or '-'} version {cm.get('policy_version')}"
        if cm.get("detected")
        else "not found: only the fresh-visitor pass was made"
    )
    rows = [
        ("site", report.site),
        ("scanned", f"{_time(report.started_at)} to {_time(report.finished_at)} (UTC)"),
        ("pages", str(len(report.pages))),
        ("passes", ", ".join(PASS_TITLES[p] for p in report.passes)),
        ("consentmw", consentmw),
        ("classified with", str(cm.get("classified_with"))),
        ("browser", f"{report.browser['version']} ({report.browser['executable']})"),
    ]
    return '<table class="meta">' + "".join(f"<tr><td>{escape(k)}</td><td>{escape(v)}</td></tr>" for k, v in rows) + "</table>"


def _page(page: Page) -> str:
    title = f" — {page.title}" if page.title else ""
    parts = [f"<section><h2>{escape(page.url)}{escape(title)}</h2>"]
    if page.final_url and page.final_url != page.url:
        parts.append(f"<p>ended at {escape(page.final_url)}</p>")
    for name, run in page.passes.items():
        parts.append(_pass(name, run))
    parts.append("</section>")
    return "\n".join(parts)


def _pass(name: str, run: Pass) -> str:
    bad = sum(1 for r in (*run.requests, *run.cookies, *run.local_storage) if r.violation)
    count = f' — <span class="bad">{bad} violation(s)</span>' if bad else ""
    parts = [f"<h3>{escape(PASS_TITLES[name])}{count}</h3>"]
    if run.error:
        parts.append(f'<p class="note">error: {escape(run.error)}</p>')
    cookies = sorted(run.cookies, key=lambda c: (c.violation is None, c.name))
    parts.append(
        _table(
            f"Cookies ({len(cookies)})",
            ("name", "domain", "party", "vendor", "category", "expires", "set by", "violation"),
            [(c.name, c.domain, _party(c.third_party), c.entity or "", c.category or "unknown", _expiry(c.expires), c.source, c.violation or "") for c in cookies],
            flagged=sum(1 for c in cookies if c.violation),
        )
    )
    requests = sorted(run.requests, key=lambda r: (r.violation is None, not r.third_party, r.host))
    parts.append(
        _table(
            f"Requests ({len(requests)})",
            ("host", "party", "entity", "category", "type", "result", "url", "violation"),
            [
                (r.host, _party(r.third_party), r.entity or "", _category(r.category, r.entity, r.third_party), r.resource_type, str(r.status) if r.status else (r.failure or ""), r.url, r.violation or "")
                for r in requests
            ],
            flagged=sum(1 for r in requests if r.violation),
        )
    )
    if run.local_storage:
        keys = sorted(run.local_storage, key=lambda s: (s.violation is None, s.key))
        parts.append(
            _table(
                f"localStorage ({len(keys)})",
                ("origin", "key", "category", "violation"),
                [(s.origin, s.key, s.category or "unknown", s.violation or "") for s in keys],
                flagged=sum(1 for s in keys if s.violation),
            )
        )
    return "\n".join(parts)


def _table(caption: str, head: Sequence[str], rows: Iterable[Sequence[str]], *, table_id: str | None = None, flagged: int = 0) -> str:
    """Rows are sorted violations first; the first ``flagged`` rows are marked."""
    rows = list(rows)
    if not rows:
        return f"<p>{escape(caption)}: none.</p>"
    attr = f' id="{table_id}"' if table_id else ""
    out = [f"<table{attr}><caption>{escape(caption)}</caption><thead><tr>"]
    out += [f"<th>{escape(h)}</th>" for h in head]
    out.append("</tr></thead><tbody>")
    for i, row in enumerate(rows):
        out.append('<tr class="violation">' if i < flagged else "<tr>")
        out += [f"<td>{escape(cell)}</td>" for cell in row]
        out.append("</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _category(category: str | None, entity: str | None, third_party: bool) -> str:
    if category:
        return category
    if entity:
        return "needs no consent"
    return "unknown" if third_party else ""


def _party(third: bool) -> str:
    return "third" if third else "first"


def _expiry(expires: float | None) -> str:
    if expires is None:
        return "session"
    moment = dt.datetime.fromtimestamp(expires, dt.UTC)
    days = (moment - dt.datetime.now(dt.UTC)).days
    return f"{moment:%Y-%m-%d} ({days} days)"


def _time(moment: dt.datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M:%S}" if moment else "-"
