"""``{% load consent %}``: ``{% if consent|allows:"analytics" %}``, ``{% consent_settings_button %}``
and ``{% consent_settings_link %}``."""

from __future__ import annotations

import logging
from typing import Any

from django import template
from django.utils import translation
from django.utils.html import format_html
from django.utils.safestring import SafeString

from consentmw.core.consent import Consent
from consentmw.core.languages import choose
from consentmw.django.conf import get_core

register = template.Library()
logger = logging.getLogger("consentmw")
_unknown_logged: set[str] = set()


@register.filter
def allows(consent: Consent | None, category: str) -> bool:
    """Whether the visitor allows the category (or one of its aliases). A name the policy does not
    know is never allowed: a template cannot break on it, and the site owner is told once."""
    if consent is None:
        return False
    policy = get_core().policy
    try:
        if policy.category_for(category) is not None:
            return consent.allows(category)
    except ValueError:
        pass
    if category not in _unknown_logged and len(_unknown_logged) < 64:
        _unknown_logged.add(category)
        known = ", ".join(c.id for c in policy.categories)
        logger.warning("consentmw: a template asks whether the visitor allows %r, which the policy does not declare (known: %s); "
                       "the answer is no", category, known)
    return False


def _label(context: template.Context, text: str | None) -> str:
    if text:
        return text
    policy = get_core().policy
    request = context.get("request")
    lang = getattr(request, "LANGUAGE_CODE", None) or translation.get_language()
    return policy.text("reopen", choose(policy, lang, None).lang)


@register.simple_tag(takes_context=True)
def consent_settings_button(context: template.Context, text: str | None = None, css_class: str = "") -> SafeString:
    """A button that opens the banner's settings dialog."""
    return format_html('<button type="button" class="{}" data-consent-open>{}</button>', css_class, _label(context, text))


@register.simple_tag(takes_context=True)
def consent_settings_link(context: template.Context, text: str | None = None, css_class: str = "") -> SafeString:
    """A link that opens the settings dialog; without JavaScript it leads to the opt-out page."""
    request = context.get("request")
    script_name = request.META.get("SCRIPT_NAME", "").rstrip("/") if request is not None else ""
    href = f"{script_name}{get_core().prefix}/opt-out"
    return format_html('<a href="{}" class="{}" data-consent-open>{}</a>', href, css_class, _label(context, text))
