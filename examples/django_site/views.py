from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from ..common import PREFS_COOKIE, chosen_theme, site_policy, theme_cookie

THEME_NAMES = {"light": "밝게", "dark": "어둡게"}


def categories() -> list[dict[str, str]]:
    policy = site_policy(settings.CONSENTMW_PRESET)
    return [{"id": c.id, "name": c.name.get("ko", c.id)} for c in policy.categories]


def home(request: HttpRequest) -> HttpResponse:
    policy = site_policy(settings.CONSENTMW_PRESET)
    analytics = policy.by_id[policy.category_for("analytics") or "analytics"]
    context = {"categories": categories(), "analytics_name": analytics.name.get("ko", analytics.id)}
    return render(request, "django_site/home.html", context)


def preferences(request: HttpRequest) -> HttpResponse:
    requested = request.GET.get("theme")
    theme = chosen_theme(request.COOKIES, requested)
    policy = site_policy(settings.CONSENTMW_PRESET)
    category_id = policy.cookie_category(PREFS_COOKIE)
    context = {
        "theme": theme,
        "theme_name": THEME_NAMES[theme],
        "theme_names": THEME_NAMES,
        "chosen": requested == theme,
        "cookie_name": PREFS_COOKIE,
        "cookie_category": category_id,
        "cookie_category_name": policy.by_id[category_id].name.get("ko") if category_id else "",
    }
    response = render(request, "django_site/preferences.html", context)
    if context["chosen"]:
        # Set whatever the visitor chose; consentmw drops it on the way out unless its category is allowed.
        response.set_cookie(**theme_cookie(theme))
    return response
