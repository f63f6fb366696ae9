"""``log report --html``: the report's figures as one page with inline SVG charts and no script.

Nothing on the page is fetched from anywhere: it opens from a file, in a mail attachment, offline,
and prints on A4 as it shows on screen.
"""

from __future__ import annotations

import datetime as dt
from html import escape
from typing import Any

METHODS = {
    "banner": "Banner",
    "settings": "Settings dialog",
    "form": "No-JavaScript form",
    "opt-out": "Opt-out page",
    "gpc": "Global Privacy Control",
    "api": "Site's own code (API)",
}
DIMENSION_TITLES = {
    "method": ("How visitors chose", "method"),
    "policy_version": ("By policy version", "policy version"),
    "language": ("By language of the banner", "language"),
    "region": ("By region", "region"),
}
UNKNOWN = {"method": "(none)", "policy_version": "(none)", "language": "not recorded", "region": "not recorded"}
# Okabe and Ito's palette: told apart with the common colour-vision deficiencies; dashes tell the
# lines apart again when printed in grey.
COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#6b6b6b", "#8c510a")
DASHES = ("", "7 4", "2 3", "9 3 2 3", "4 4", "1 2", "12 4", "6 2 2 2")
TOP_ROWS = 12  # per breakdown; the rest are summed in one row

STYLE = """
:root{--ink:#1c2330;--muted:#5d6675;--line:#e2e6ec;--soft:#f4f6f9;--accent:#0b5cad}
*{box-sizing:border-box}
body{margin:0;background:#fff;color:var(--ink);font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans","Noto Sans KR",sans-serif;
-webkit-print-color-adjust:exact;print-color-adjust:exact}
main{max-width:60rem;margin:0 auto;padding:2rem 1.5rem 3rem}
header{border-bottom:3px solid var(--ink);padding-bottom:1rem;margin-bottom:1.5rem}
.eyebrow{text-transform:uppercase;letter-spacing:.08em;font-size:.75rem;font-weight:700;color:var(--accent)}
h1{font-size:1.9rem;line-height:1.2;margin:.2rem 0 .4rem}
h2{font-size:1.2rem;margin:0 0 .2rem}
.sub,.lede{color:var(--muted);margin:0}
.lede{margin-bottom:.8rem;font-size:.92rem}
section{margin:2rem 0;break-inside:avoid}
.cards{display:grid;grid-template-columns:repeat(5,minmax(0,1fr));gap:.7rem;margin:0}
.card{background:var(--soft);border-radius:10px;padding:.8rem .9rem;break-inside:avoid}
.card b{display:block;font-size:1.75rem;line-height:1.15;font-variant-numeric:tabular-nums}
.card span{display:block;font-weight:600;font-size:.9rem}
.card small{display:block;color:var(--muted);font-size:.78rem;line-height:1.35;margin-top:.2rem}
.headline{font-size:1.05rem;margin:.2rem 0 1rem}
svg{display:block;width:100%;height:auto;overflow:visible}
svg text{font:12px system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans",sans-serif;fill:var(--ink)}
svg .muted{fill:var(--muted)}
.legend{display:flex;flex-wrap:wrap;gap:.4rem 1.2rem;margin:.4rem 0 0;padding:0;list-style:none;font-size:.88rem}
.legend svg{display:inline-block;width:28px;height:10px;vertical-align:middle;margin-right:.35rem}
table{border-collapse:collapse;width:100%;font-size:.88rem;font-variant-numeric:tabular-nums}
th{text-align:left;font-weight:600;color:var(--muted);border-bottom:2px solid var(--line);padding:.3rem .4rem;font-size:.8rem}
td{border-bottom:1px solid var(--line);padding:.35rem .4rem;vertical-align:middle;overflow-wrap:anywhere}
td.n,th.n{text-align:right;white-space:nowrap}
td.share{width:28%}
.bar{display:block;height:.55rem;border-radius:3px;background:var(--accent)}
.track{display:block;background:var(--soft);border-radius:3px}
tr.rest td{color:var(--muted);font-style:italic}
.note{color:var(--muted);font-size:.85rem;margin:.5rem 0 0}
.empty{background:var(--soft);border-radius:10px;padding:1.2rem;color:var(--muted)}
dl{display:grid;grid-template-columns:11rem 1fr;gap:.35rem 1rem;font-size:.88rem;margin:0}
dt{font-weight:600}dd{margin:0;color:var(--muted)}
footer{border-top:1px solid var(--line);margin-top:2.5rem;padding-top:.8rem;color:var(--muted);font-size:.8rem}
@media (max-width:720px){.cards{grid-template-columns:repeat(2,minmax(0,1fr))}dl{grid-template-columns:1fr}}
@media print{@page{size:A4;margin:14mm}main{max-width:none;padding:0}body{font-size:11pt}
section{margin:1.2rem 0}table{font-size:.78rem}td.share{width:16%}th,td{padding:.25rem .3rem}.cards{grid-template-columns:repeat(5,minmax(0,1fr))}h2{break-after:avoid}}
"""


def render(report: dict[str, Any], source: str) -> str:
    totals = report["totals"]
    optional, required = _split_categories(report["categories"])
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        # No script, style or image from anywhere; the page cannot even submit a form.
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">",
        f"<title>Consent report — {escape(_period_text(report))}</title>",
        f"<style>{STYLE}</style></head><body><main>",
        _header(report, source),
        _cards(totals, report["current_policies"]),
    ]
    if totals["records"] == 0:
        parts.append('<section><p class="empty">No visitor recorded a choice in this period.</p></section>')
    else:
        parts.append(_overall(report["categories"], optional, required))
        parts.append(_over_time(report, optional, required))
        for dim in ("method", "policy_version", "language", "region"):
            parts.append(_breakdown(dim, report["breakdowns"][dim], optional, totals["visitors"]))
    parts.append(_definitions())
    parts.append(
        f"<footer>Generated {escape(_when(report['generated_at']))} UTC by <code>consentmw log report</code> from "
        f"{escape(source)}. The same figures are available as JSON (<code>--json</code>).</footer>"
    )
    parts.append("</main></body></html>")
    return "\n".join(parts)


# -- words and numbers -----------------------------------------------------------------------------


def _n(value: int) -> str:
    return f"{value:,}"


def _pct(rate: float | None) -> str:
    return "–" if rate is None else f"{rate * 100:.1f} %"


def _date(text: str, year: bool = True) -> str:
    day = dt.date.fromisoformat(text[:10])
    return f"{day.day} {day:%b}" + (f" {day.year}" if year else "")


def _when(text: str) -> str:
    return dt.datetime.fromisoformat(text).strftime("%Y-%m-%d %H:%M")


def _period_text(report: dict[str, Any]) -> str:
    period = report["period"]
    start = period["since"] or period["first_record"]
    end = period["last_record"] if period["until"] is None else _day_before(period["until"])
    if start is None or end is None:
        return "no records"
    if start[:10] == end[:10]:
        return _date(start)
    if start[:7] == end[:7]:
        return f"{int(start[8:10])} – {_date(end)}"
    return f"{_date(start, year=start[:4] != end[:4])} – {_date(end)}"


def _day_before(until: str) -> str:
    # --until is exclusive: a report until 2026-12-01 covers November.
    return (dt.datetime.fromisoformat(until) - dt.timedelta(microseconds=1)).isoformat()


def _value(dim: str, value: str) -> str:
    if not value:
        return UNKNOWN[dim]
    return METHODS.get(value, value) if dim == "method" else value


def _split_categories(categories: dict[str, dict[str, Any]]) -> tuple[list[str], list[str]]:
    """Categories some visitor refused, and those nobody did (required ones, as far as the log shows)."""
    optional = [c for c, f in categories.items() if f["allowed"] < f["of"]]
    required = [c for c, f in categories.items() if f["allowed"] == f["of"]]
    # Most allowed first: the order of the bars, the legend and the table columns alike.
    optional.sort(key=lambda c: (-categories[c]["rate"], c))
    return optional, required


def _style(index: int) -> tuple[str, str]:
    return COLOURS[index % len(COLOURS)], DASHES[index % len(DASHES)]


# -- the parts of the page -------------------------------------------------------------------------


def _header(report: dict[str, Any], source: str) -> str:
    period = report["period"]
    bounds = []
    if period["since"]:
        bounds.append(f"from {_when(period['since'])}")
    if period["until"]:
        bounds.append(f"before {_when(period['until'])}")
    asked = f" (asked for: {', '.join(bounds)} UTC)" if bounds else ""
    return (
        '<header><div class="eyebrow">Consent report</div>'
        f"<h1>What visitors chose, {escape(_period_text(report))}</h1>"
        f'<p class="sub">From the consent log {escape(source)}{escape(asked)}. Days are UTC days.</p></header>'
    )


def _cards(totals: dict[str, int], policies: list[dict[str, Any]]) -> str:
    visitors = totals["visitors"]
    decided_share = f"{totals['decided_visitors'] / visitors * 100:.1f} % of visitors" if visitors else "no visitors"
    versions = ", ".join(
        f"{p['policy_id']} {p['policy_version']}" if p["policy_id"] else p["policy_version"] for p in policies
    )
    cards = [
        (totals["visitors"], "Visitors", "distinct consent ids with a choice in the period"),
        (
            totals["decided_visitors"],
            "Decided visitors",
            f"{decided_share} hold a choice made under the policy in force ({versions or '–'})",
        ),
        (totals["records"], "Choices recorded", "every record, one visitor may have several"),
        (totals["withdrawals"], "Withdrawals", "choices that refused something the visitor had allowed"),
        (totals["scans_left_out"], "Scans left out", "records written by consentmw scan, in no other figure"),
    ]
    return (
        '<section aria-label="Totals"><div class="cards">'
        + "".join(
            f"<div class=\"card\"><b>{_n(value)}</b><span>{escape(label)}</span><small>{escape(hint)}</small></div>"
            for value, label, hint in cards
        )
        + "</div></section>"
    )


def _overall(categories: dict[str, dict[str, Any]], optional: list[str], required: list[str]) -> str:
    rows = optional + required
    width, row_h, label_w, value_w = 880, 34, 150, 250
    bar_w = width - label_w - value_w
    height = row_h * len(rows)
    parts = [
        f'<svg viewBox="0 0 {width} {height}" role="img" aria-labelledby="overall-title">'
        '<title id="overall-title">Allow rate per category among the visitors\' standing choices</title>'
    ]
    for i, category in enumerate(rows):
        figures = categories[category]
        y = i * row_h
        colour = _style(optional.index(category))[0] if category in optional else "#9aa3af"
        fill = bar_w * (figures["rate"] or 0)
        parts.append(
            f'<text x="0" y="{y + 21}">{escape(category)}</text>'
            f'<rect x="{label_w}" y="{y + 8}" width="{bar_w}" height="16" rx="3" fill="#f4f6f9"/>'
            f'<rect x="{label_w}" y="{y + 8}" width="{fill:.1f}" height="16" rx="3" fill="{colour}"/>'
            f'<text x="{label_w + bar_w + 12}" y="{y + 21}"><tspan font-weight="700">{_pct(figures["rate"])}</tspan>'
            f'<tspan class="muted"> allowed ({_n(figures["allowed"])} of {_n(figures["of"])})</tspan></text>'
        )
    parts.append("</svg>")
    headline = ""
    if optional:
        top = optional[0]
        headline = (
            f'<p class="headline"><b>{escape(top)}</b> allowed by <b>{_pct(categories[top]["rate"])}</b> of visitors'
            + "".join(f", <b>{escape(c)}</b> by <b>{_pct(categories[c]['rate'])}</b>" for c in optional[1:])
            + ".</p>"
        )
    note = ""
    if required:
        note = (
            f'<p class="note">Allowed in every standing choice, so most likely required: {escape(", ".join(required))}. '
            "They are left out of the charts and tables below.</p>"
        )
    return (
        '<section><h2>What visitors allow</h2><p class="lede">Each visitor counts once, by their latest choice in the '
        "period.</p>" + headline + "".join(parts) + note + "</section>"
    )


def _over_time(report: dict[str, Any], optional: list[str], required: list[str]) -> str:
    series = report["series"]
    bucket = report["period"]["bucket"]
    per = "day" if bucket == "day" else "week (weeks start on Monday)"
    if not optional:
        return ""
    width, left, right, top, plot_h = 880, 46, 130, 10, 230
    plot_w = width - left - right
    bars_top, bars_h = top + plot_h + 34, 56
    height = bars_top + bars_h + 22
    n = len(series)

    def x(i: int) -> float:
        return left + (plot_w / 2 if n == 1 else i * plot_w / (n - 1))

    def y(rate: float) -> float:
        return top + (1 - rate) * plot_h

    parts = [
        f'<svg viewBox="0 0 {width} {height}" role="img" aria-labelledby="time-title">'
        f'<title id="time-title">Allow rate per category, per {escape(bucket)}, and visitors per {escape(bucket)}</title>'
    ]
    for tick in (0, 0.25, 0.5, 0.75, 1):
        parts.append(
            f'<line x1="{left}" x2="{left + plot_w}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" stroke="#e2e6ec"/>'
            f'<text class="muted" x="{left - 8}" y="{y(tick) + 4:.1f}" text-anchor="end">{int(tick * 100)} %</text>'
        )
    # Where a new policy version came into use: the question is often whether the rates moved there.
    versions = sorted(report["breakdowns"]["policy_version"], key=lambda e: e["first_record"])
    for order, version in enumerate(versions[1:]):
        starts = [i for i, entry in enumerate(series) if entry["start"] <= version["first_record"][:10]]
        if not starts:
            continue
        at = x(starts[-1])
        parts.append(
            f'<line x1="{at:.1f}" x2="{at:.1f}" y1="{top}" y2="{top + plot_h}" stroke="#1c2330" stroke-width="1.2" stroke-dasharray="3 3"/>'
            f'<text x="{at + 5:.1f}" y="{top + 12 + 14 * order}" font-weight="600">policy {escape(version["value"])}'
            f'<tspan class="muted" font-weight="400"> from {escape(_date(version["first_record"], year=False))}</tspan></text>'
        )
    labels: list[tuple[float, str, str]] = []
    for index, category in enumerate(optional):
        colour, dash = _style(index)
        path, points, run = [], [], 0
        for i, entry in enumerate(series):
            figures = entry["categories"].get(category)
            if figures is None or figures["rate"] is None:
                run = 0
                continue
            path.append(f"{'L' if run else 'M'}{x(i):.1f},{y(figures['rate']):.1f}")
            run += 1
            lonely = (i == 0 or _rate_at(series, i - 1, category) is None) and (
                i == n - 1 or _rate_at(series, i + 1, category) is None
            )
            if n <= 62 or lonely:
                points.append(
                    f'<circle cx="{x(i):.1f}" cy="{y(figures["rate"]):.1f}" r="{3.2 if n <= 62 else 2.5}" fill="{colour}">'
                    f"<title>{escape(_date(entry['start']))}: {escape(category)} {_pct(figures['rate'])}"
                    f" ({_n(figures['allowed'])} of {_n(figures['of'])})</title></circle>"
                )
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        if path:
            parts.append(
                f'<path d="{" ".join(path)}" fill="none" stroke="{colour}" stroke-width="2.4"'
                f' stroke-linejoin="round" stroke-linecap="round"{dash_attr}/>'
            )
        parts.extend(points)
        last = next((series[i]["categories"][category]["rate"] for i in range(n - 1, -1, -1) if _rate_at(series, i, category) is not None), None)
        if last is not None:
            labels.append((y(last), category, colour))
    # Each line named at its right end, pushed apart where they would overlap.
    placed: list[float] = []
    for label_y, category, colour in sorted(labels):
        spot = max(label_y + 4, placed[-1] + 14) if placed else label_y + 4
        placed.append(spot)
        parts.append(f'<text x="{left + plot_w + 10}" y="{spot:.1f}" fill="{colour}" font-weight="600">{escape(category)}</text>')
    # Visitors per bucket, on the same axis.
    most = max((entry["visitors"] for entry in series), default=0) or 1
    bar = max(1.0, min(18.0, plot_w / max(n, 1) * 0.7))
    parts.append(f'<text class="muted" x="{left}" y="{bars_top - 8}">visitors per {escape(bucket)} (most: {_n(most)})</text>')
    for i, entry in enumerate(series):
        h = bars_h * entry["visitors"] / most
        if h:
            parts.append(
                f'<rect x="{x(i) - bar / 2:.1f}" y="{bars_top + bars_h - h:.1f}" width="{bar:.1f}" height="{h:.1f}" fill="#b8c4d6">'
                f"<title>{escape(_date(entry['start']))}: {_n(entry['visitors'])} visitor(s), {_n(entry['records'])} record(s)</title></rect>"
            )
    parts.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{bars_top + bars_h}" y2="{bars_top + bars_h}" stroke="#c5ccd6"/>')
    for i in _ticks(n):
        parts.append(
            f'<text class="muted" x="{x(i):.1f}" y="{bars_top + bars_h + 16}" text-anchor="middle">'
            f"{escape(_date(series[i]['start'], year=i == 0))}</text>"
        )
    parts.append("</svg>")
    legend = "".join(
        f'<li><svg viewBox="0 0 28 10" aria-hidden="true"><line x1="1" x2="27" y1="5" y2="5" stroke="{_style(i)[0]}" stroke-width="2.6"'
        + (f' stroke-dasharray="{_style(i)[1]}"' if _style(i)[1] else "")
        + f'/></svg>{escape(category)}</li>'
        for i, category in enumerate(optional)
    )
    return (
        f"<section><h2>Allow rate per {escape(bucket)}</h2>"
        f'<p class="lede">Per {escape(per)}: the share of visitors who allowed each category, by each visitor\'s latest '
        "choice of that day or week. A gap is a day or week without choices.</p>"
        + "".join(parts)
        + f'<ul class="legend">{legend}</ul></section>'
    )


def _rate_at(series: list[dict[str, Any]], i: int, category: str) -> float | None:
    figures = series[i]["categories"].get(category)
    return None if figures is None else figures["rate"]


def _ticks(n: int, most: int = 8) -> list[int]:
    if n <= most:
        return list(range(n))
    step = -(-(n - 1) // (most - 1))
    ticks = list(range(0, n, step))
    if n - 1 - ticks[-1] >= step / 2:
        ticks.append(n - 1)
    else:
        ticks[-1] = n - 1
    return ticks


def _breakdown(dim: str, entries: list[dict[str, Any]], optional: list[str], visitors: int) -> str:
    title, noun = DIMENSION_TITLES[dim]
    if not entries:
        return ""
    if all(not e["value"] for e in entries):
        return (
            f'<section><h2>{escape(title)}</h2><p class="note">No record of the period has a {escape(noun)}: '
            "records written before consentmw kept it, or a site that does not set it.</p></section>"
        )
    shown, rest = entries[:TOP_ROWS], entries[TOP_ROWS:]
    head = (
        f"<tr><th>{escape(noun)}</th><th class=\"n\">visitors</th><th>share of visitors</th><th class=\"n\">records</th>"
        + "".join(f'<th class="n">{escape(c)}</th>' for c in optional)
        + "</tr>"
    )
    rows = [_row(_value(dim, e["value"]), e, optional, visitors) for e in shown]
    if rest:
        summed = {
            "records": sum(e["records"] for e in rest),
            "visitors": sum(e["visitors"] for e in rest),
            "categories": {
                c: _sum_rates([e["categories"].get(c) for e in rest]) for c in optional
            },
        }
        rows.append(_row(f"{len(rest)} more", summed, optional, visitors, rest=True))
    return (
        f"<section><h2>{escape(title)}</h2>"
        f'<p class="lede">Visitors by their latest choice; allow rates among them.</p>'
        f"<table><thead>{head}</thead><tbody>{''.join(rows)}</tbody></table></section>"
    )


def _sum_rates(figures: list[dict[str, Any] | None]) -> dict[str, Any]:
    allowed = sum(f["allowed"] for f in figures if f)
    of = sum(f["of"] for f in figures if f)
    return {"allowed": allowed, "of": of, "rate": allowed / of if of else None}


def _row(label: str, entry: dict[str, Any], optional: list[str], visitors: int, rest: bool = False) -> str:
    share = entry["visitors"] / visitors if visitors else 0
    cells = "".join(_rate_cell((entry["categories"].get(c) or {}).get("rate")) for c in optional)
    row_class = ' class="rest"' if rest else ""
    return (
        f"<tr{row_class}><td>{escape(label)}</td><td class=\"n\">{_n(entry['visitors'])}</td>"
        f'<td class="share"><span class="track"><span class="bar" style="width:{share * 100:.1f}%"></span></span></td>'
        f'<td class="n">{_n(entry["records"])}</td>{cells}</tr>'
    )


def _rate_cell(rate: float | None) -> str:
    # A tint as deep as the rate is high: the table reads as a heat map before its numbers are read.
    tint = f' style="background:rgba(11,92,173,{0.04 + 0.26 * rate:.3f})"' if rate is not None else ""
    return f'<td class="n"{tint}>{_pct(rate)}</td>'


def _definitions() -> str:
    terms = [
        ("Visitor", "One consent id: one browser that recorded a choice. The log holds no name or address."),
        ("Standing choice", "A visitor's latest record in the period. Rates and the tables count it, once per visitor."),
        ("Decided visitor", "A visitor whose standing choice was made under the policy version in force, the version of "
         "the newest record. The others see the banner again."),
        ("Withdrawal", "A record that refuses a category the same visitor's previous record allowed."),
        ("Allow rate", "Among standing choices that name a category, the share that allow it."),
        ("Scans left out", "Records written by consentmw scan while it tested the site. No other figure counts them."),
    ]
    return (
        "<section><h2>What the figures mean</h2><dl>"
        + "".join(f"<dt>{escape(term)}</dt><dd>{escape(text)}</dd>" for term, text in terms)
        + "</dl></section>"
    )
