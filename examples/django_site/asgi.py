"""The Django example's ASGI entry point. consentmw is in MIDDLEWARE (settings.py), so this is
Django's own application, as for any Django site:

    uvicorn examples.django_site.asgi:application
"""

from __future__ import annotations

import os
from typing import Any

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", f"{__package__}.settings")
application = get_asgi_application()

from django.conf import settings  # noqa: E402  (after Django is set up)

from consentmw.core.store import ConsentStore  # noqa: E402

from . import use_consentmw_keys  # noqa: E402
from ..common import site_policy  # noqa: E402

POLICY = site_policy(settings.CONSENTMW_PRESET)



def create_app(*, secret_key: str, store: str | ConsentStore | None = None) -> Any:
    """Django's ASGI application with consentmw's key and consent log given here (tests)."""
    use_consentmw_keys(secret_key=secret_key, store=store)
    # A new handler: Django builds its middleware, consentmw's with its consent log, when the
    # handler is made, so the module's `application` keeps the log of the settings it started with.
    return get_asgi_application()
