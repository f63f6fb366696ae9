"""``{% load consent %}``, then ``{% if consent|allows:"analytics" %}`` in a template."""

from __future__ import annotations

from django import template

from consentmw import Consent

register = template.Library()


@register.filter
def allows(consent: Consent | None, category: str) -> bool:
    return consent is not None and consent.allows(category)
