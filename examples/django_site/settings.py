"""Settings of the Django example. Module names are taken from this package's own name, so the
project runs both from a source checkout (examples.django_site) and from the wheel."""

from __future__ import annotations

import os
import secrets

from ..common import SNIPPETS, site_policy, store_url

PACKAGE = __package__

# Django's own key; consentmw signs its consent cookie with a key derived from it (salted), unless
# CONSENTMW_SECRET_KEY is set, as the other examples read it.
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY") or os.environ.get("CONSENTMW_SECRET_KEY") or secrets.token_urlsafe(50)
DEBUG = os.environ.get("DJANGO_DEBUG") == "1"
ALLOWED_HOSTS = os.environ.get("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,[::1],testserver").split(",")

INSTALLED_APPS = [PACKAGE, "consentmw.django"]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Compression outside consentmw: it compresses the page consentmw has rewritten.
    "django.middleware.gzip.GZipMiddleware",
    "consentmw.django.ConsentMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
ROOT_URLCONF = f"{PACKAGE}.urls"
WSGI_APPLICATION = f"{PACKAGE}.wsgi.application"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [SNIPPETS],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "consentmw.django.context_processors.consent",
                f"{PACKAGE}.context_processors.site",
            ],
        },
    }
]
DATABASES: dict[str, dict[str, str]] = {}
LANGUAGE_CODE = "ko"
USE_TZ = True

# The consentmw policy preset this site starts from, with the site's analytics declared (see common.py).
CONSENTMW_PRESET = "naver-cloud"
CONSENTMW = {
    "POLICY": site_policy(CONSENTMW_PRESET),
    # None: consentmw's default, an embedded SQLite file (consent.db) in the working directory.
    "STORE": store_url(),
    # How long a consent post may wait for the log before it is answered 503 (consentmw's default: 5 s).
    "STORE_TIMEOUT": float(os.environ.get("CONSENTMW_STORE_TIMEOUT", "5")),
    # Consent posts a minute per client address (consentmw's default: 30; 0 turns the limit off).
    "RATE_LIMIT": int(os.environ.get("CONSENTMW_RATE_LIMIT", "30")),
}
