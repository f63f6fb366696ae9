"""``manage.py check`` for the mistakes a consentmw set-up can have. Ids are stable:

- consentmw.E001  GZipMiddleware listed after consentmw's middleware (it compresses first; nothing blocked)
- consentmw.E002  settings.CONSENTMW cannot be used (unknown key, bad option)
- consentmw.E003  the policy does not validate (the message names its JSON path)
- consentmw.E004  the ASGI ConsentMiddleware wraps this Django app and the Django middleware is on too
- consentmw.E005  the middleware is on but 'consentmw.django' is not in INSTALLED_APPS
- consentmw.W001  a middleware consentmw does not know is listed before it (its cookies pass unfiltered)
"""

from __future__ import annotations

import importlib
import os
import warnings
from typing import Any

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from consentmw.core.errors import ConfigError, PolicyError

MIDDLEWARE = "consentmw.django.ConsentMiddleware"
GZIP = "django.middleware.gzip.GZipMiddleware"
# Listed before consentmw, a middleware's response side runs after consentmw's, so the cookies it
# sets are never filtered. These set none, or only cookies a site needs (session, CSRF, messages).
SETS_NO_TRACKING_COOKIE = frozenset(
    {
        "django.middleware.security.SecurityMiddleware",
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.middleware.common.CommonMiddleware",
        "django.middleware.csrf.CsrfViewMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
        "django.contrib.messages.middleware.MessageMiddleware",
        "django.middleware.clickjacking.XFrameOptionsMiddleware",
        "django.middleware.locale.LocaleMiddleware",
        "django.middleware.http.ConditionalGetMiddleware",
        "django.middleware.cache.UpdateCacheMiddleware",
        "django.middleware.cache.FetchFromCacheMiddleware",
        GZIP,
        "whitenoise.middleware.WhiteNoiseMiddleware",
        "corsheaders.middleware.CorsMiddleware",
        "csp.middleware.CSPMiddleware",
    }
)


def _middleware() -> list[str]:
    return [m for m in getattr(settings, "MIDDLEWARE", None) or () if isinstance(m, str)]


@checks.register(checks.Tags.compatibility)
def check_middleware_order(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    middleware = _middleware()
    if MIDDLEWARE not in middleware:
        return []
    errors = []
    if GZIP in middleware and middleware.index(GZIP) > middleware.index(MIDDLEWARE):
        errors.append(
            checks.Error(
                "GZipMiddleware is listed after consentmw.django.ConsentMiddleware, so it compresses pages before consentmw "
                "sees them: their trackers are not blocked and they get no banner.",
                hint="List django.middleware.gzip.GZipMiddleware before consentmw.django.ConsentMiddleware in MIDDLEWARE.",
                id="consentmw.E001",
            )
        )
    for name in middleware[: middleware.index(MIDDLEWARE)]:
        if name not in SETS_NO_TRACKING_COOKIE:
            errors.append(
                checks.Warning(
                    f"{name} is listed before consentmw.django.ConsentMiddleware, so the cookies it sets reach visitors "
                    "whatever they chose.",
                    hint="List it after consentmw.django.ConsentMiddleware, or add consentmw.W001 to SILENCED_SYSTEM_CHECKS "
                    "if it sets no cookie that needs consent.",
                    obj=name,
                    id="consentmw.W001",
                )
            )
    if "consentmw.django" not in settings.INSTALLED_APPS:
        errors.append(
            checks.Error(
                "consentmw.django.ConsentMiddleware is in MIDDLEWARE but 'consentmw.django' is not in INSTALLED_APPS.",
                hint="Add 'consentmw.django' to INSTALLED_APPS (for its template tags, context processor and checks).",
                id="consentmw.E005",
            )
        )
    return errors


@checks.register(checks.Tags.compatibility)
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    if MIDDLEWARE not in _middleware() and not hasattr(settings, "CONSENTMW"):
        return []
    from consentmw.core.base import ConsentCore, controller_not_set
    from consentmw.django.conf import core_options

    try:
        options = core_options()
        options["store"] = "memory://"  # the check opens no database
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            core = ConsentCore(**options)
    except PolicyError as exc:
        return [checks.Error(f"the consentmw policy is invalid at {exc.path}: {exc}", hint="consentmw validate POLICY says the same.", id="consentmw.E003")]
    except (ConfigError, ImproperlyConfigured) as exc:
        return [checks.Error(f"settings.CONSENTMW: {exc}", id="consentmw.E002")]
    found: list[checks.CheckMessage] = []
    policy = core.policy
    if not policy.data.get("controller"):
        found.append(
            checks.Warning(
                controller_not_set(policy).removeprefix("consentmw: "),
                hint="consentmw init --name ... --controller ... --contact ... writes one; set CONSENTMW['POLICY'] to it.",
                id="consentmw.W003",
            )
        )
    for warning in caught:
        if "opt-out regions" in str(warning.message):
            hint = "Set CONSENTMW['REGION_HEADER'] to the country header your CDN sets, or CONSENTMW['REGION'] to a callable."
            found.append(checks.Warning(str(warning.message).removeprefix("consentmw: "), hint=hint, id="consentmw.W002"))
        else:
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    return found


def _asgi_candidates() -> list[str]:
    names = []
    if getattr(settings, "ASGI_APPLICATION", None):
        names.append(settings.ASGI_APPLICATION)
    package = os.environ.get("DJANGO_SETTINGS_MODULE", "").rpartition(".")[0]
    if package:
        names.append(f"{package}.asgi.application")
    return names


def _wraps_consentmw(app: Any) -> bool:
    from consentmw.asgi import ConsentMiddleware as AsgiConsentMiddleware

    for _ in range(16):  # down a chain of ASGI middleware, each holding the next as .app
        if isinstance(app, AsgiConsentMiddleware):
            return True
        app = getattr(app, "app", None)
        if app is None:
            return False
    return False


@checks.register(checks.Tags.compatibility)
def check_double_wrap(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    if MIDDLEWARE not in _middleware():
        return []
    for name in _asgi_candidates():
        module_name, _, attribute = name.rpartition(".")
        try:
            app = getattr(importlib.import_module(module_name), attribute, None)
        except Exception:  # an asgi.py that cannot load here is not this check's business
            continue
        if _wraps_consentmw(app):
            return [
                checks.Error(
                    f"{name} is wrapped in consentmw.asgi.ConsentMiddleware while consentmw.django.ConsentMiddleware is in "
                    "MIDDLEWARE: pages would be processed twice.",
                    hint="Use one: the Django middleware works under ASGI too; drop the ASGI wrap from asgi.py.",
                    id="consentmw.E004",
                )
            ]
    return []
