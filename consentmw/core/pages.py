from __future__ import annotations

import base64
import hashlib
import html
import json
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from consentmw.core import browsers, trackers
from consentmw.core.api import ApiError, ConsentAPI, Handler
from consentmw.core.errors import ErrorCode
from consentmw.core.http import Request, Response, json_response, redirect
from consentmw.core.http import html_response as plain_html_response
from consentmw.core.catalog import CookieDetails, CookieEntry, cookie_details, cookies, lookup_cookie
from consentmw.core.languages import choose, match
from consentmw.core.regions import OPT_OUT

if TYPE_CHECKING:
    from consentmw.core.consent import Consent

GOOGLE_ADDON_URL = "https://tools.google.com/dlpage/gaoptout"

# Layout only; the colours and fonts come from banner.css. Hashed so the page runs under a CSP
# without 'unsafe-inline', and no script at all.
PAGE_CSS = (
    "body.consentmw-page{margin:0 auto;max-width:46rem;padding:1rem 1.25rem 3rem;line-height:1.6;"
    "font-family:system-ui,-apple-system,'Apple SD Gothic Neo','Malgun Gothic',sans-serif}"
    ".consentmw-page nav.lang{text-align:right}"
    ".consentmw-page ol.path{padding-left:1.5rem}"
    ".consentmw-page code{user-select:all;padding:.1rem .3rem;border:1px solid #8886;border-radius:.25rem;word-break:break-all}"
    ".consentmw-page .notice{border-left:.3rem solid #c80;padding:.5rem 1rem;margin:1rem 0}"
    ".consentmw-page .status{border-left:.3rem solid #080;padding:.5rem 1rem;margin:1rem 0}"
    ".consentmw-page button{font:inherit;padding:.6rem 1.2rem;cursor:pointer}"
    ".consentmw-page dt{font-weight:600}"
    ".consentmw-page table{border-collapse:collapse;width:100%;margin:.5rem 0 1rem}"
    ".consentmw-page th,.consentmw-page td{text-align:left;vertical-align:top;padding:.3rem .5rem;border-bottom:1px solid #8884}"
)
_CSS_HASH = base64.b64encode(hashlib.sha256(PAGE_CSS.encode()).digest()).decode()
CSP = (
    f"default-src 'none'; style-src 'self' 'sha256-{_CSS_HASH}'; img-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'self'"
)

e = html.escape


def plain_text(api: ConsentAPI, key: str, lang: str, **values: str) -> str:
    """A page text (the policy's wording first), with {name} placeholders filled in."""
    text = api.policy.text(key, lang)
    for name, value in values.items():
        text = text.replace("{" + name + "}", value)
    return text


def page_text(api: ConsentAPI, key: str, lang: str, **values: str) -> str:
    return e(plain_text(api, key, lang, **values))


def language(api: ConsentAPI, request: Request, requested: str | None) -> str:
    """?lang= when it names a language offered (zh-tw and zh-Hant find zh-TW), else the policy's
    override, the browser's language, the policy's default."""
    offered = api.policy.languages
    if requested is not None:
        found = match(requested, offered)
        if found is None:
            raise ApiError(ErrorCode.UNKNOWN_LANGUAGE, lang=requested[:16], known=list(offered))
        return found
    return choose(api.policy, None, request.header.get("accept-language")).lang


def guide_name(guide: dict[str, Any], lang: str) -> str:
    return guide["name"].get(lang) or guide["name"]["en"]


def wants_json(request: Request) -> bool:
    accept = request.header.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


def link(base: str, path: str, **params: str) -> str:
    # base: the prefix as this request reaches it (ConsentAPI.base), the app's root path in front.
    return e(base + path + ("?" + urlencode(params) if params else ""))


def external_link(url: str | None, label: str) -> str:
    # Policy URLs are checked by the schema; anything else is shown, never linked.
    if not url:
        return ""
    if not url.startswith(("https://", "http://")):
        return f"<span>{label}: {e(url)}</span>"
    return f'<a href="{e(url)}" rel="noopener noreferrer">{label}</a>'


def language_links(api: ConsentAPI, lang: str, href: Callable[[str], str]) -> str:
    links = []
    for tag in api.policy.languages:
        name = e(api.policy.text("language_name", tag))
        if tag == lang:
            links.append(f'<a href="{href(tag)}" hreflang="{tag}" lang="{tag}" aria-current="true"><strong>{name}</strong></a>')
        else:
            links.append(f'<a href="{href(tag)}" hreflang="{tag}" lang="{tag}">{name}</a>')
    return " · ".join(links)


def render(api: ConsentAPI, base: str, lang: str, title: str, body: str, switch_href: Callable[[str], str]) -> str:
    css = api.assets["banner.css"].version
    return (
        f'<!doctype html>\n<html lang="{lang}">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n<meta name="robots" content="noindex">\n'
        f"<title>{title}</title>\n"
        f'<link rel="stylesheet" href="{e(base)}/banner.css?v={e(css)}">\n<style>{PAGE_CSS}</style>\n</head>\n'
        f'<body class="consentmw-page">\n<nav class="lang" aria-label="{page_text(api, "language_switch", lang)}">'
        f"{language_links(api, lang, switch_href)}</nav>\n<main>\n{body}</main>\n</body>\n</html>\n"
    )


def html_response(content: str, *, cache: str = "no-store", vary: str = "") -> Response:
    headers = {
        "Content-Security-Policy": CSP,
        "Cache-Control": cache,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
    }
    if vary:
        headers["Vary"] = vary
    return plain_html_response(content, headers=headers)


# -- GET /_consent/browsers -------------------------------------------------------------------


async def browsers_page(api: ConsentAPI, request: Request) -> Response:
    if request.method not in ("GET", "HEAD"):
        raise ApiError(ErrorCode.METHOD_NOT_ALLOWED, allow="GET, HEAD")
    query = request.query_params
    lang = language(api, request, query.get("lang"))
    base = api.base(request)
    headers = request.header
    detected = browsers.detect(headers.get("user-agent", ""), headers.get("sec-ch-ua"))
    chosen = query.get("browser")
    if chosen is not None and chosen not in browsers.guides():
        raise ApiError(ErrorCode.UNKNOWN_BROWSER, browser=chosen[:64], known=list(browsers.guides()))
    guide_id = chosen or detected.id
    guide = browsers.guides().get(guide_id)
    order = guide_order(api.policy.browser_guides)
    vary = "User-Agent, Sec-CH-UA, Accept, Accept-Language"
    if wants_json(request):
        body = {
            "detected": {"id": detected.id, "family": detected.family, "platform": detected.platform, "in_app": detected.in_app},
            "lang": lang,
            "guide": browsers.localized_guide(guide, lang) if guide else None,
            "guides": [{"id": i, "name": guide_name(browsers.guides()[i], lang)} for i in order],
            "consent_cookie_warning": plain_text(api, "consent_cookie_warning", lang),
            "reviewed": browsers.reviewed(),
        }
        return json_response(body, headers={"Cache-Control": "private, max-age=300", "Vary": vary})
    host = headers.get("host", "").split(":")[0][:253]
    parts = [f"<h1>{page_text(api, 'browsers_title', lang)}</h1>\n<p>{page_text(api, 'browsers_intro', lang)}</p>\n"]
    if detected.id != browsers.UNKNOWN:
        name = e(guide_name(browsers.guides()[detected.id], lang))
        parts.append(f"<p>{page_text(api, 'detected', lang)}: <strong>{name}</strong></p>\n")
    else:
        parts.append(f"<p>{page_text(api, 'not_detected', lang)}</p>\n")
    consent = api.consent(request)
    refused_here = query.get("refused") == "1" and consent.decided and consent.allowed <= api.policy.required
    parts.append(site_only_section(api, base, lang, chosen, refused_here))
    if guide is not None:
        parts.append(guide_section(api, guide, lang, host))
    parts.append(browser_list(api, base, order, guide_id, lang))
    parts.append(f'<p><a href="{link(base, "/opt-out", lang=lang)}">{page_text(api, "opt_out_link", lang)}</a></p>\n')
    parts.append(f"<p><small>{page_text(api, 'guides_reviewed', lang, date=browsers.reviewed())}</small></p>\n")
    params = {"browser": chosen} if chosen else {}
    switch = lambda tag: link(base, "/browsers", **params, lang=tag)  # noqa: E731
    content = render(api, base, lang, page_text(api, "browsers_title", lang), "".join(parts), switch)
    cache = "no-store" if "refused" in query else "private, max-age=300"
    return html_response(content, cache=cache, vary=vary)


def site_only_section(api: ConsentAPI, base: str, lang: str, chosen: str | None, refused: bool) -> str:
    # Refusing in the browser breaks sign-in; refusing on the site alone does not. Offer that first,
    # as a plain form to POST /_consent, so it works without JavaScript too.
    back = f"{base}/browsers?" + urlencode({**({"browser": chosen} if chosen else {}), "lang": lang, "refused": "1"})
    out = f'<section aria-labelledby="site-only">\n<h2 id="site-only">{page_text(api, "site_only_title", lang)}</h2>\n'
    out += f"<p>{page_text(api, 'site_only_body', lang)}</p>\n"
    if refused:
        out += f'<p class="status" role="status">{page_text(api, "site_only_done", lang)}</p>\n'
    out += (
        f'<form method="post" action="{e(base)}"><input type="hidden" name="accept" value="necessary">'
        f'<input type="hidden" name="next" value="{e(back)}">'
        f'<button type="submit">{page_text(api, "reject_all", lang)}</button></form>\n'
    )
    return out + "</section>\n"


@lru_cache(maxsize=32)
def guide_order(listed_first: tuple[str, ...]) -> tuple[str, ...]:
    """Every guide, the policy's own browsers first."""
    return tuple(browsers.resolve([*listed_first, *browsers.guides()]))


def guide_section(api: ConsentAPI, guide: dict[str, Any], lang: str, host: str) -> str:
    text = browsers.localized_guide(guide, lang)
    out = [f'<section id="guide" aria-labelledby="guide-name">\n<h2 id="guide-name">{e(text["name"])}</h2>\n']
    if not text["translated"]:
        out.append(f"<p>{page_text(api, 'guide_untranslated', lang)}</p>\n")
    if text["note"]:
        out.append(f'<p class="notice">{e(text["note"])}</p>\n')
    if not text["in_app"]:
        out.append(consequences(api, lang))
    for key, action in text["actions"].items():
        out.append(f"<h3>{page_text(api, key, lang, host=host or '-')}</h3>\n")
        if action["path"]:
            out.append('<ol class="path">' + "".join(f"<li>{e(step)}</li>" for step in action["path"]) + "</ol>\n")
        if action["choose"]:
            out.append(f"<p>{e(action['choose'])}</p>\n")
        if action["address"]:
            # chrome:// and the like cannot be linked from a web page: text to copy.
            out.append(f"<p>{page_text(api, 'address_hint', lang)} <code>{e(action['address'])}</code></p>\n")
        if action["note"]:
            out.append(f"<p>{e(action['note'])}</p>\n")
    if text["help_url"]:
        label = page_text(api, "vendor_help", lang, browser=text["name"])
        out.append(f"<p>{external_link(text['help_url'], label)}</p>\n")
    out.append("</section>\n")
    return "".join(out)


def consequences(api: ConsentAPI, lang: str) -> str:
    local = api.policy.local
    items = [
        f"<li><strong>{e(local(raw['name'], lang))}</strong>: {e(local(consequence, lang))}</li>"
        for raw in api.policy.data["categories"]
        if (consequence := raw.get("consequence"))
    ]
    out = f'<div class="notice"><p>{page_text(api, "consent_cookie_warning", lang)}</p>'
    if items:
        out += f"<p>{page_text(api, 'consequences', lang)}:</p><ul>{''.join(items)}</ul>"
    return out + "</div>\n"


def browser_list(api: ConsentAPI, base: str, order: tuple[str, ...], current: str, lang: str) -> str:
    items = []
    for guide_id in order:
        # Guide ids and languages are [a-z0-9-]: nothing to encode in the query string.
        href = f"{e(base)}/browsers?browser={guide_id}&amp;lang={lang}"
        name = e(guide_name(browsers.guides()[guide_id], lang))
        if guide_id == current:
            items.append(f'<li><a href="{href}" aria-current="page"><strong>{name}</strong></a></li>')
        else:
            items.append(f'<li><a href="{href}">{name}</a></li>')
    title = page_text(api, "other_browsers", lang)
    return f'<nav aria-labelledby="browser-list">\n<h2 id="browser-list">{title}</h2>\n<ul>{"".join(items)}</ul>\n</nav>\n'


# -- GET, POST /_consent/opt-out --------------------------------------------------------------


async def opt_out_page(api: ConsentAPI, request: Request) -> Response:
    method = request.method
    analytics = api.policy.category_for("analytics")
    if method == "POST":
        media_type, body = api.posted_body(request)
        form = api.parse_form(body) if media_type != "application/json" else {}
        if media_type == "application/json":
            # The body carries nothing an opt-out needs, but a broken one is refused like anywhere else.
            try:
                json.loads(body)
            except (ValueError, RecursionError):
                raise ApiError(ErrorCode.MALFORMED_JSON) from None
        lang = language(api, request, form.get("lang", [None])[-1])
        if analytics is None:
            raise ApiError(ErrorCode.UNKNOWN_CATEGORY, category="analytics", known=[c.id for c in api.policy.categories])
        if analytics in api.policy.required:
            raise ApiError(ErrorCode.REQUIRED_CATEGORY, category=analytics)
        consent = api.consent(request)
        # What the visitor allows now (chosen, or by an opt-out region's rule) stays allowed, but analytics.
        kept = set(consent.allowed) & set(api.policy.optional)
        recorded = await api.record_choice(request, kept - {analytics}, "opt-out", page=api.base(request) + "/opt-out", lang=lang)
        if media_type == "application/json":
            response = json_response(api.state_after(request, recorded), headers={"Cache-Control": "no-store"})
        else:
            # Post/redirect/get: the confirmation survives a reload without posting again.
            target = api.base(request) + "/opt-out?" + urlencode({"done": "1", "lang": lang})
            response = redirect(target, headers={"Cache-Control": "no-store"})
        response.headers += [(b"set-cookie", header) for header in recorded.cookies]
        return response
    if method not in ("GET", "HEAD"):
        raise ApiError(ErrorCode.METHOD_NOT_ALLOWED, allow="GET, HEAD, POST")
    query = request.query_params
    lang = language(api, request, query.get("lang"))
    base = api.base(request)
    consent = api.consent(request)
    parts = [f"<h1>{page_text(api, 'opt_out_title', lang)}</h1>\n"]
    if analytics is None:
        parts.append(f"<p>{page_text(api, 'no_analytics', lang)}</p>\n")
    else:
        parts.append(f"<p>{page_text(api, 'opt_out_intro', lang)}</p>\n")
        if query.get("done") == "1" and not consent.allows(analytics):
            key = "opted_out" if consent.decided else "opted_out_no_cookie"
            parts.append(f'<p class="status" role="status">{page_text(api, key, lang)}</p>\n')
        parts.append(state_section(api, base, consent, analytics, lang))
        parts.append(collects_section(api, analytics, lang))
    if consent.mode == OPT_OUT and api.policy.gpc_refuses:
        parts.append(do_not_sell_section(api, base, consent, lang))
    parts.append(f'<p><a href="{link(base, "/cookies", lang=lang)}">{page_text(api, "cookies_link", lang)}</a></p>\n')
    parts.append(f'<p><a href="{link(base, "/browsers", lang=lang)}">{page_text(api, "browser_guide_link", lang)}</a></p>\n')
    parts.append(f'<p><a href="{e(api.site_root(request))}">{page_text(api, "back_to_site", lang)}</a></p>\n')
    switch = lambda tag: link(base, "/opt-out", lang=tag)  # noqa: E731
    content = render(api, base, lang, page_text(api, "opt_out_title", lang), "".join(parts), switch)
    return html_response(content, vary=", ".join(("Cookie", "Sec-GPC", "Accept-Language", *api.region_vary)))


def state_section(api: ConsentAPI, base: str, consent: Consent, analytics: str, lang: str) -> str:
    if not consent.decided:
        state = "state_undecided_opt_out" if consent.allows(analytics) else "state_undecided"
    else:
        state = "state_allowed" if consent.allows(analytics) else "state_refused"
    out = f'<section aria-labelledby="state">\n<h2 id="state">{page_text(api, "state_title", lang)}</h2>\n'
    out += f'<p class="state">{page_text(api, state, lang)}</p>\n'
    if consent.gpc and analytics in api.policy.gpc_refuses:
        out += f"<p>{page_text(api, 'state_gpc', lang)}</p>\n"
    if state != "state_refused" and analytics not in api.policy.required:
        out += (
            f'<form method="post" action="{link(base, "/opt-out")}">'
            f'<input type="hidden" name="lang" value="{lang}">'
            f'<button type="submit">{page_text(api, "opt_out_button", lang)}</button></form>\n'
            f"<p><small>{page_text(api, 'opt_out_other_choices', lang)}</small></p>\n"
        )
    return out + "</section>\n"


def do_not_sell_section(api: ConsentAPI, base: str, consent: Consent, lang: str) -> str:
    """In an opt-out region: the visitor's "Do Not Sell or Share" control, without JavaScript."""
    out = f'<section aria-labelledby="dns">\n<h2 id="dns">{page_text(api, "do_not_sell", lang)}</h2>\n'
    if consent.allowed & api.policy.gpc_refuses:
        back = link(base, "/opt-out", lang=lang)
        out += (
            f"<p>{page_text(api, 'dns_intro', lang)}</p>\n"
            f'<form method="post" action="{e(base)}"><input type="hidden" name="accept" value="do-not-sell">'
            f'<input type="hidden" name="next" value="{back}">'
            f'<button type="submit">{page_text(api, "do_not_sell", lang)}</button></form>\n'
        )
    else:
        out += f'<p class="state">{page_text(api, "dns_done", lang)}</p>\n'
    return out + "</section>\n"


def collects_section(api: ConsentAPI, analytics: str, lang: str) -> str:
    category = api.policy.by_id[analytics]
    local = api.policy.local
    out = [f'<section aria-labelledby="collects">\n<h2 id="collects">{page_text(api, "collects_title", lang)}</h2>\n']
    if category.description:
        out.append(f"<p>{e(local(category.description, lang))}</p>\n")
    uses_google = False
    for service in category.services:
        uses_google = uses_google or service["id"] == "google-analytics"
        out.append(f"<h3>{e(service.get('name') or service['id'])}</h3>\n<dl>")
        if service.get("provider"):
            out.append(f"<dt>{page_text(api, 'provider', lang)}</dt><dd>{e(service['provider'])}</dd>")
        for key in ("purpose", "collects", "retention"):
            if service.get(key):
                out.append(f"<dt>{page_text(api, key, lang)}</dt><dd>{e(local(service[key], lang))}</dd>")
        if service.get("ids"):
            out.append(f"<dt>{page_text(api, 'ids', lang)}</dt><dd>" + ", ".join(f"<code>{e(i)}</code>" for i in service["ids"]) + "</dd>")
        out.append("</dl>\n")
        links = [
            external_link(service.get("privacy_url"), page_text(api, "privacy_policy", lang)),
            external_link(service.get("opt_out_url"), page_text(api, "provider_opt_out", lang)),
        ]
        if any(links):
            out.append("<p>" + " · ".join(x for x in links if x) + "</p>\n")
    if uses_google:
        addon = f"{GOOGLE_ADDON_URL}?hl={lang}"
        out.append(
            f"<p>{page_text(api, 'google_addon', lang)} "
            f"{external_link(addon, page_text(api, 'google_addon_link', lang))}</p>\n"
        )
    return "".join(out) + "</section>\n"


# -- GET /_consent/cookies ----------------------------------------------------------------------

WILDCARDS = frozenset("*?[")


async def cookies_page(api: ConsentAPI, request: Request) -> Response:
    if request.method not in ("GET", "HEAD"):
        raise ApiError(ErrorCode.METHOD_NOT_ALLOWED, allow="GET, HEAD")
    query = request.query_params
    lang = language(api, request, query.get("lang"))
    base = api.base(request)
    vary = "Accept, Accept-Language"
    found = declaration(api, lang)
    if wants_json(request):
        return json_response({"lang": lang, "categories": found}, headers={"Cache-Control": "private, max-age=300", "Vary": vary})
    parts = [f"<h1>{page_text(api, 'cookies_title', lang)}</h1>\n<p>{page_text(api, 'cookies_intro', lang)}</p>\n"]
    from_database = False
    for category in found:
        parts.append(f'<section aria-labelledby="c-{category["id"]}">\n<h2 id="c-{category["id"]}">{e(category["name"])}</h2>\n')
        if category["required"]:
            parts.append(f"<p><strong>{page_text(api, 'cookies_required', lang)}</strong></p>\n")
        if category["description"]:
            parts.append(f"<p>{e(category['description'])}</p>\n")
        if category["services"]:
            parts.append(f"<h3>{page_text(api, 'cookies_services', lang)}</h3>\n")
            rows = []
            for service in category["services"]:
                links = external_link(service["privacy_url"], page_text(api, "privacy_policy", lang))
                rows.append(
                    f"<tr><td>{e(service['name'])}</td><td>{e(service['provider'])}</td><td>{e(service['purpose'])}</td>"
                    f"<td>{e(service['retention'])}</td><td>{links}</td></tr>"
                )
            heads = ("cookie_name", "provider", "purpose", "retention")
            parts.append(table(api, lang, heads, rows, extra=1))
        if category["cookies"]:
            parts.append(f"<h3>{page_text(api, 'cookies_cookies', lang)}</h3>\n")
            rows = []
            for cookie in category["cookies"]:
                mark = ""
                if cookie["from_database"]:
                    from_database = True
                    mark = "<sup>\u2020</sup>"
                # The database's purposes are English: say so, for screen readers and translators.
                purpose_lang = ' lang="en"' if "purpose" in cookie["from_database"] and lang != "en" else ""
                rows.append(
                    f"<tr><td><code>{e(cookie['name'])}</code>{mark}</td><td>{e(cookie['provider'])}</td>"
                    f"<td{purpose_lang}>{e(cookie['purpose'])}</td><td>{e(cookie['lifetime'])}</td></tr>"
                )
            parts.append(table(api, lang, ("cookie_name", "provider", "purpose", "lifetime"), rows))
        if not category["services"] and not category["cookies"]:
            parts.append(f"<p>{page_text(api, 'cookies_none', lang)}</p>\n")
        parts.append("</section>\n")
    if from_database:
        parts.append(f"<p><small>{page_text(api, 'cookies_source', lang)}</small></p>\n")
    parts.append(f'<p><a href="{link(base, "/opt-out", lang=lang)}">{page_text(api, "opt_out_link", lang)}</a></p>\n')
    parts.append(f'<p><a href="{link(base, "/browsers", lang=lang)}">{page_text(api, "browser_guide_link", lang)}</a></p>\n')
    parts.append(f'<p><a href="{e(api.site_root(request))}">{page_text(api, "back_to_site", lang)}</a></p>\n')
    switch = lambda tag: link(base, "/cookies", lang=tag)  # noqa: E731
    content = render(api, base, lang, page_text(api, "cookies_title", lang), "".join(parts), switch)
    return html_response(content, cache="private, max-age=300", vary=vary)


def table(api: ConsentAPI, lang: str, heads: tuple[str, ...], rows: list[str], extra: int = 0) -> str:
    head = "".join(f'<th scope="col">{page_text(api, h, lang)}</th>' for h in heads) + "<td></td>" * extra
    return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n" + "\n".join(rows) + "\n</tbody>\n</table>\n"


def declaration(api: ConsentAPI, lang: str) -> list[dict[str, Any]]:
    """Per category, every service and cookie the policy declares, in one language: the policy's
    own words first, then the tracker catalog (names and vendors of services) and the Open Cookie
    Database (provider, purpose and lifetime of cookies); ``from_database`` lists what came from it."""
    policy = api.policy
    known = {t.id: t for t in trackers.catalog()}
    controller = policy.local((policy.data.get("controller") or {}).get("name") or {}, lang)
    out = []
    for raw in policy.data["categories"]:
        category = policy.by_id[raw["id"]]
        services = []
        for service in category.services:
            tracker = known.get(service["id"])
            services.append(
                {
                    "id": service["id"],
                    "name": service.get("name") or (tracker.name if tracker else service["id"]),
                    "provider": service.get("provider") or (tracker.vendor if tracker else ""),
                    "purpose": policy.local(service.get("purpose") or {}, lang),
                    "retention": policy.local(service.get("retention") or {}, lang),
                    "privacy_url": service.get("privacy_url"),
                }
            )
        declared = [rule if isinstance(rule, dict) else {"name": rule} for rule in raw.get("cookies", ())]
        cookie_rows = []
        for rule in declared:
            name = rule["name"]
            row = {
                "name": name,
                "provider": rule.get("provider", ""),
                "purpose": policy.local(rule.get("description") or {}, lang),
                "lifetime": policy.local(rule.get("lifetime") or {}, lang),
                "from_database": [],
            }
            if name == api.cookie_name:
                own = {"provider": controller, "purpose": plain_text(api, "consent_cookie_purpose", lang)}
                own["lifetime"] = plain_text(api, lifetime_key(api, policy.max_age // 86400, "day", lang), lang, n=str(policy.max_age // 86400))
                for key, value in own.items():
                    row[key] = row[key] or value
            details = describe_pattern(name)
            if details is not None:
                filled = {"provider": details.provider, "purpose": details.purpose, "lifetime": lifetime_text(api, details.lifetime, lang)}
                for key, value in filled.items():
                    if not row[key] and value:
                        row[key] = value
                        row["from_database"].append(key)
            cookie_rows.append(row)
        out.append(
            {
                "id": category.id,
                "required": category.required,
                "name": policy.local(category.name, lang),
                "description": policy.local(category.description, lang),
                "services": services,
                "cookies": cookie_rows,
            }
        )
    return out


def describe_pattern(pattern: str) -> CookieDetails | None:
    """What the Open Cookie Database says of a declared name or pattern: the name itself, the
    stem of a pattern that ends in "*" (``_ga_*``); None for any other pattern."""
    if not WILDCARDS & set(pattern):
        entry = lookup_cookie(pattern)
        return cookie_details(entry) if entry is not None else None
    stem = pattern.rstrip("*")
    if not WILDCARDS & set(stem):
        catalog = cookies()
        if stem in catalog.prefixes:
            return cookie_details(CookieEntry(stem, *catalog.prefixes[stem], prefix=True))
        if stem in catalog.exact:
            return cookie_details(CookieEntry(stem, *catalog.exact[stem]))
    return None


def plural(count: int, lang: str) -> str:
    """The CLDR plural category of a count, among those the shipped texts use: Polish has a form for
    2-4 (22-24, ...) besides one and many; the other languages need one and other at most."""
    if lang == "pl" and count % 10 in (2, 3, 4) and count % 100 not in (12, 13, 14):
        return "few"
    return "one" if count == 1 else "other"


def lifetime_key(api: ConsentAPI, count: int, unit: str, lang: str) -> str:
    key = f"lifetime_{unit}_{plural(count, lang)}"
    return key if key in api.policy.texts else f"lifetime_{unit}_other"


def lifetime_text(api: ConsentAPI, lifetime: str | tuple[int, str], lang: str) -> str:
    if lifetime == "session":
        return plain_text(api, "lifetime_session", lang)
    if isinstance(lifetime, tuple):
        count, unit = lifetime
        return plain_text(api, lifetime_key(api, count, unit, lang), lang, n=str(count))
    return lifetime


ROUTES: Mapping[str, Handler] = {"/browsers": browsers_page, "/opt-out": opt_out_page, "/cookies": cookies_page}
