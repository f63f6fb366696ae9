from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest

from ..common import GA_MEASUREMENT_ID, NAVER_SITE_ID, PREFIX, chosen_theme, site_policy


def consent(request: HttpRequest) -> dict[str, Any]:
    """Puts the visitor's consent in every template as ``consent``; None outside ConsentMiddleware
    (``manage.py runserver`` serves WSGI, without it)."""
    policy = site_policy(settings.CONSENTMW_PRESET)
    scope = getattr(request, "scope", {})
    return {
        "consent": scope.get("consent"),
        "consent_prefix": PREFIX,
        "consent_texts": {key: policy.text(key, "ko") for key in ("reopen", "browser_guide_link", "opt_out_link")},
        "ga_measurement_id": GA_MEASUREMENT_ID,
        "naver_site_id": NAVER_SITE_ID,
        "theme": chosen_theme(request.COOKIES),
    }
