"""Settings of the Django example. Module names are taken from this package's own name, so the
project runs both from a source checkout (examples.django_site) and from the wheel."""

from __future__ import annotations

import os
import secrets

from ..common import SNIPPETS

PACKAGE = __package__

# Django's own key signs nothing this site keeps (no sessions, no logins); consentmw has its own.
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY") or secrets.token_urlsafe(50)
DEBUG = os.environ.get("DJANGO_DEBUG") == "1"
ALLOWED_HOSTS = os.environ.get("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,[::1],testserver").split(",")

INSTALLED_APPS = [PACKAGE]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
ROOT_URLCONF = f"{PACKAGE}.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [SNIPPETS],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                f"{PACKAGE}.context_processors.consent",
            ],
        },
    }
]
DATABASES: dict[str, dict[str, str]] = {}
LANGUAGE_CODE = "ko"
USE_TZ = True

# The consentmw policy preset this site starts from (asgi.py wraps the app with it).
CONSENTMW_PRESET = "naver-cloud"
