from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest

from ..common import GA_MEASUREMENT_ID, NAVER_SITE_ID, chosen_theme, site_policy


def site(request: HttpRequest) -> dict[str, Any]:
    """What this site's templates need besides consentmw's own ``consent`` (its context processor)."""
    policy = site_policy(settings.CONSENTMW_PRESET)
    return {
        "consent_texts": {key: policy.text(key, "ko") for key in ("reopen", "browser_guide_link", "opt_out_link")},
        "ga_measurement_id": GA_MEASUREMENT_ID,
        "naver_site_id": NAVER_SITE_ID,
        "theme": chosen_theme(request.COOKIES),
    }
