from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from consentmw.core.api import mounted_prefix
from consentmw.django.conf import get_core


def consent(request: HttpRequest) -> dict[str, Any]:
    """``{{ consent }}`` (the visitor's Consent, None outside the middleware) and ``{{ consent_prefix }}``
    (where consentmw's pages are: ``{{ consent_prefix }}/opt-out``) in every template."""
    core = get_core()
    root = core.api.root_path(request.META.get("SCRIPT_NAME", ""))
    return {"consent": getattr(request, "consent", None), "consent_prefix": mounted_prefix(root, core.prefix)}
