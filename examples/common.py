"""What the example sites share: settings from the environment, the site's policy, the vendors'
analytics snippets, and the page markup of the Starlette and FastAPI sites (Django has templates)."""

from __future__ import annotations

import copy
import functools
import html
import logging
import os
import secrets
from pathlib import Path
from typing import Any

from consentmw import ConfigError, Consent, Policy, load_policy

logger = logging.getLogger("examples")

# Put your own ids here (or in the environment); these are placeholders that reach no real account.
GA_MEASUREMENT_ID = os.environ.get("GA_MEASUREMENT_ID", "G-CONSENTMW1")
NAVER_SITE_ID = os.environ.get("NAVER_ANALYTICS_ID", "c0a5e7d1b2f3a4")
PREFIX = "/_consent"
PREFS_COOKIE = "prefs_theme"
THEMES = ("light", "dark")
SNIPPETS = Path(__file__).resolve().parent / "snippets"


def secret_key() -> str:
    key = os.environ.get("CONSENTMW_SECRET_KEY")
    if key:
        return key
    logger.warning(
        "CONSENTMW_SECRET_KEY is not set: this process signs consent cookies with a random key,"
        " so every visitor is asked again after a restart"
    )
    return secrets.token_urlsafe(32)


def store_url() -> str | None:
    # None: consentmw's default, an embedded SQLite file (consent.db) in the working directory.
    return os.environ.get("CONSENTMW_STORE") or None


# The analytics these pages carry, declared in the site's policy: the banner and the opt-out page
# name them, and a visitor who refuses analytics also gets GA's own ga-disable-<id> switch.
SERVICES: list[dict[str, Any]] = [
    {
        "id": "google-analytics",
        "name": "Google Analytics",
        "provider": "Google LLC",
        "ids": [GA_MEASUREMENT_ID],
        "collects": {
            "ko": "방문한 페이지, 체류 시간, 유입 경로, 기기·브라우저 종류, IP 주소에서 추정한 대략적인 지역",
            "en": "Pages visited, time on page, referrer, device and browser type, approximate location from the IP address",
        },
        "privacy_url": "https://policies.google.com/privacy",
        "opt_out_url": "https://tools.google.com/dlpage/gaoptout",
    },
    {
        "id": "naver-analytics",
        "name": "Naver Analytics",
        "provider": "NAVER Corp.",
        "ids": [NAVER_SITE_ID],
        "collects": {
            "ko": "방문한 페이지, 유입 경로(검색어 포함), 기기·브라우저 종류, 방문 횟수와 시간",
            "en": "Pages visited, referrer (including search terms), device and browser type, number and time of visits",
        },
        "privacy_url": "https://policy.naver.com/policy/privacy.html",
    },
]


@functools.cache
def site_policy(preset: str) -> Policy:
    """A preset with this site's analytics declared in its analytics category; a service the
    preset already names keeps its texts and gains this site's ids."""
    base = load_policy(preset)
    target = base.category_for("analytics")
    if target is None:
        raise ConfigError(f"the {preset!r} preset has no analytics category for the site's GA and Naver tags")
    data = copy.deepcopy(base.data)
    category = next(c for c in data["categories"] if c["id"] == target)
    services = category.setdefault("services", [])
    for service in SERVICES:
        existing = next((s for s in services if s["id"] == service["id"]), None)
        if existing is None:
            services.append(copy.deepcopy(service))
        else:
            existing["ids"] = [*existing.get("ids", ()), *service["ids"]]
    return Policy(data)


@functools.cache
def analytics_snippet() -> str:
    # The same file the Django templates include; its {{ }} placeholders are Django's syntax.
    text = (SNIPPETS / "analytics.html").read_text("utf-8")
    return text.replace("{{ ga_measurement_id }}", GA_MEASUREMENT_ID).replace("{{ naver_site_id }}", NAVER_SITE_ID)


@functools.cache
def site_css() -> str:
    return (SNIPPETS / "site.css").read_text("utf-8")


def chosen_theme(cookies: dict[str, str], query: str | None = None) -> str:
    for value in (query, cookies.get(PREFS_COOKIE)):
        if value in THEMES:
            return value
    return THEMES[0]


TEXTS: dict[str, dict[str, str]] = {
    "ko": {
        "home": "홈",
        "preferences": "화면 설정",
        "intro": (
            "이 페이지에는 Google 애널리틱스 4(gtag.js)와 네이버 애널리틱스(wcslog.js) 태그가 각 업체가 배포한 그대로"
            " 들어 있습니다. '{analytics}' 항목을 허용하기 전까지 consentmw가 두 태그를 실행되지 않는 상태로 바꿔 보냅니다."
            " 선택 전후에 페이지 소스를 비교해 보세요."
        ),
        "state": "이 요청에서 서버가 본 동의 상태",
        "decided": "선택 여부",
        "allowed": "허용",
        "refused": "거부",
        "yes": "선택함",
        "no": "아직 선택하지 않음",
        "gpc": "브라우저의 GPC 신호",
        "sent": "보냄",
        "not_sent": "보내지 않음",
        "theme_intro": "화면 테마를 고르면 사이트가 쿠키 '{cookie}'에 기억합니다. 이 쿠키는 '{category}' 항목에 속합니다.",
        "light": "밝게",
        "dark": "어둡게",
        "saved": "'{theme}' 테마를 쿠키에 저장했습니다. 다음 방문에도 유지됩니다.",
        "dropped": (
            "'{category}' 쿠키를 허용하지 않으셨기 때문에 consentmw가 이 쿠키를 버렸습니다."
            " '{theme}' 테마는 이 페이지에만 적용됩니다."
        ),
        "current": "현재 테마: {theme}",
    },
    "en": {
        "home": "Home",
        "preferences": "Display preferences",
        "intro": (
            "This page carries the Google Analytics 4 (gtag.js) and Naver Analytics (wcslog.js) tags exactly as"
            " their vendors publish them. Until you allow '{analytics}', consentmw sends both of them inert."
            " Compare the page source before and after you choose."
        ),
        "state": "Your consent as the server saw it on this request",
        "decided": "Chosen",
        "allowed": "allowed",
        "refused": "refused",
        "yes": "yes",
        "no": "not yet",
        "gpc": "Global Privacy Control signal",
        "sent": "sent",
        "not_sent": "not sent",
        "theme_intro": "Pick a theme and the site remembers it in the cookie '{cookie}', which belongs to '{category}'.",
        "light": "Light",
        "dark": "Dark",
        "saved": "The '{theme}' theme is saved in a cookie and will be there on your next visit.",
        "dropped": (
            "You have not allowed '{category}' cookies, so consentmw dropped this cookie."
            " The '{theme}' theme applies to this page only."
        ),
        "current": "Current theme: {theme}",
    },
}


class Pages:
    """The HTML of the Starlette and FastAPI example sites, in the site's language."""

    def __init__(self, *, title: str, lang: str, policy: Policy) -> None:
        self.title = title
        self.lang = lang
        self.policy = policy
        self.t = TEXTS[lang]

    def layout(self, heading: str, body: str, *, theme: str) -> str:
        t, text = self.t, self.policy.text
        title = self.title if heading == self.title else f"{heading} · {self.title}"
        return f"""<!doctype html>
<html lang="{self.lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<style>{site_css()}</style>
{analytics_snippet()}
</head>
<body class="theme-{theme}">
<header><nav><a href="/">{t["home"]}</a><a href="/preferences">{t["preferences"]}</a></nav></header>
<main>
<h1>{html.escape(heading)}</h1>
{body}
</main>
<footer>
<button type="button" data-consent-open>{html.escape(text("reopen", self.lang))}</button>
<a href="{PREFIX}/browsers">{html.escape(text("browser_guide_link", self.lang))}</a>
<a href="{PREFIX}/opt-out">{html.escape(text("opt_out_link", self.lang))}</a>
</footer>
</body>
</html>
"""

    def consent_state(self, consent: Consent) -> str:
        t = self.t
        rows = [f'<dt>{t["decided"]}</dt><dd data-state="decided">{t["yes"] if consent.decided else t["no"]}</dd>']
        for category in self.policy.categories:
            name = html.escape(category.name.get(self.lang) or category.id)
            state = t["allowed"] if consent.allows(category.id) else t["refused"]
            rows.append(f'<dt>{name}</dt><dd data-category="{category.id}">{state}</dd>')
        rows.append(f'<dt>{t["gpc"]}</dt><dd data-state="gpc">{t["sent"] if consent.gpc else t["not_sent"]}</dd>')
        return f'<h2>{t["state"]}</h2>\n<dl class="consent-state">\n' + "\n".join(rows) + "\n</dl>"

    def home(self, consent: Consent, *, theme: str) -> str:
        analytics = self.policy.by_id[self.policy.category_for("analytics") or "analytics"]
        intro = self.t["intro"].format(analytics=html.escape(analytics.name.get(self.lang, analytics.id)))
        body = f"<p>{intro}</p>\n{self.consent_state(consent)}"
        return self.layout(self.title, body, theme=theme)

    def preferences(self, consent: Consent, *, theme: str, chosen: bool) -> str:
        t = self.t
        category_id = self.policy.cookie_category(PREFS_COOKIE)
        category = self.policy.by_id[category_id] if category_id else None
        category_name = html.escape(category.name.get(self.lang, category.id)) if category else "?"
        fill = {"cookie": PREFS_COOKIE, "category": category_name, "theme": t[theme]}
        links = " ".join(f'<a href="/preferences?theme={name}">{t[name]}</a>' for name in THEMES)
        paragraphs = [t["theme_intro"].format(**fill), links]
        if chosen:
            stored = category_id is None or consent.allows(category_id)
            paragraphs.append(t["saved" if stored else "dropped"].format(**fill))
        else:
            paragraphs.append(t["current"].format(**fill))
        body = "\n".join(f"<p>{p}</p>" for p in paragraphs)
        return self.layout(t["preferences"], body, theme=theme)


def theme_cookie(theme: str) -> dict[str, Any]:
    """Keyword arguments of ``Response.set_cookie`` for the preferences cookie."""
    return {"key": PREFS_COOKIE, "value": theme, "max_age": 365 * 86400, "samesite": "lax", "httponly": True}
