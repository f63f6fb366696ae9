"""consentmw for Django, on any server (WSGI or ASGI), the Django way::

    INSTALLED_APPS = [..., "consentmw.django"]
    MIDDLEWARE = [..., "django.middleware.gzip.GZipMiddleware", ..., "consentmw.django.ConsentMiddleware", ...]
    CONSENTMW = {"POLICY": "naver-cloud", "STORE": "sqlite:///consent.db"}

See docs/django.md.
"""

from consentmw.django.middleware import ConsentMiddleware

__all__ = ["ConsentMiddleware"]
