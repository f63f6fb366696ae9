from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from consentmw.django.conf import get_core


def consent(request: HttpRequest) -> dict[str, Any]:
    """``{{ consent }}`` (the visitor's Consent, None outside the middleware) and ``{{ consent_prefix }}``
    (where consentmw's pages are: ``{{ consent_prefix }}/opt-out``) in every template."""
    script_name = request.META.get("SCRIPT_NAME", "").rstrip("/")
    return {"consent": getattr(request, "consent", None), "consent_prefix": script_name + get_core().prefix}
