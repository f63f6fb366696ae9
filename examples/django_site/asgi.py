"""The Django example's ASGI entry point: Django's application wrapped by ConsentMiddleware.

    CONSENTMW_SECRET_KEY=... uvicorn examples.django_site.asgi:application
"""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", f"{__package__}.settings")
django_application = get_asgi_application()

from django.conf import settings  # noqa: E402  (after Django is set up)

from consentmw import ConsentMiddleware  # noqa: E402
from consentmw.core.store import ConsentStore  # noqa: E402

from ..common import secret_key, site_policy, store_url  # noqa: E402


POLICY = site_policy(settings.CONSENTMW_PRESET)


def create_app(*, secret_key: str, store: str | ConsentStore | None = None) -> ConsentMiddleware:
    return ConsentMiddleware(django_application, secret_key=secret_key, policy=POLICY, store=store)


application = create_app(secret_key=secret_key(), store=store_url())
