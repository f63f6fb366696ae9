"""``settings.CONSENTMW``, read once into the core. Keys are the ASGI middleware's options in upper
case; the signing key defaults to Django's SECRET_KEY (and SECRET_KEY_FALLBACKS, so rotating keys the
Django way keeps every visitor's choice), salted so the consent cookie shares no key with sessions."""

from __future__ import annotations

import threading
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.crypto import salted_hmac
from django.utils.module_loading import import_string

from consentmw.core.base import ConsentCore

# CONSENTMW key -> ConsentCore option; the defaults are ConsentCore's (consentmw.core.base).
OPTIONS = {
    "SECRET_KEY": "secret_key",
    "POLICY": "policy",
    "STORE": "store",
    "PREFIX": "prefix",
    "COOKIE_NAME": "cookie_name",
    "COOKIE_DOMAIN": "cookie_domain",
    "COOKIE_PATH": "cookie_path",
    "COOKIE_SECURE": "cookie_secure",
    "MAX_BODY_SIZE": "max_body_size",
    "TRUSTED_ORIGINS": "trusted_origins",
    "STORE_TIMEOUT": "store_timeout",
    "RATE_LIMIT": "rate_limit",
    "CACHE_SIZE": "cache_size",
    "BANNER_EXCLUDE": "banner_exclude",
    "CSP_NONCE_KEY": "csp_nonce_key",
    "REGION_HEADER": "region_header",
    # A callable, or its dotted path ("mysite.geo.visitor_region"), as Django names callables in settings.
    "REGION": "region",
}
SALT = "consentmw.django.consent-cookie"


def signing_keys() -> list[str]:
    """Django's SECRET_KEY, then its fallbacks, each turned into a consentmw key."""
    keys = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", ())]
    return [salted_hmac(SALT, "signing-key", secret=key, algorithm="sha256").hexdigest() for key in keys if key]


def core_options() -> dict[str, Any]:
    configured = getattr(settings, "CONSENTMW", {})
    if not isinstance(configured, dict):
        raise ImproperlyConfigured("settings.CONSENTMW must be a dict, like {'POLICY': 'naver-cloud'}")
    unknown = sorted(set(configured) - set(OPTIONS))
    if unknown:
        raise ImproperlyConfigured(f"settings.CONSENTMW has unknown keys {unknown}; the known ones are {sorted(OPTIONS)}")
    options = {OPTIONS[key]: value for key, value in configured.items()}
    if isinstance(options.get("region"), str):
        try:
            options["region"] = import_string(options["region"])
        except ImportError as exc:
            raise ImproperlyConfigured(f"settings.CONSENTMW['REGION'] = {options['region']!r} cannot be imported: {exc}") from None
    if "secret_key" not in options:
        options["secret_key"] = signing_keys()
    return options


_lock = threading.Lock()
_cached: tuple[tuple[Any, ...], ConsentCore] | None = None


def get_core() -> ConsentCore:
    """The core for the current settings, built once: middleware, context processor and template
    tags share it (and its consent log). Changed settings (override_settings in tests) get a new one."""
    global _cached
    # The CONSENTMW dict itself, not its id(): the cache holds it, so a new dict is never taken for it.
    key = (getattr(settings, "CONSENTMW", None), settings.SECRET_KEY, tuple(getattr(settings, "SECRET_KEY_FALLBACKS", ())))
    cached = _cached
    if cached is None or not same_settings(cached[0], key):
        with _lock:
            if _cached is None or not same_settings(_cached[0], key):
                if _cached is not None:
                    _cached[1].loop_thread.stop()  # restarts by itself if an older middleware still asks
                _cached = (key, ConsentCore(**core_options()))
            cached = _cached
    return cached[1]


def same_settings(old: tuple[Any, ...], new: tuple[Any, ...]) -> bool:
    return old[0] is new[0] and old[1:] == new[1:]
