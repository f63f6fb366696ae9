"""The Django example's WSGI entry point (``manage.py runserver`` uses it too):

    gunicorn examples.django_site.wsgi:application
"""

from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", f"{__package__}.settings")
application = get_wsgi_application()

from django.conf import settings  # noqa: E402  (after Django is set up)

from ..common import site_policy  # noqa: E402

POLICY = site_policy(settings.CONSENTMW_PRESET)
