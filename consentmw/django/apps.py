from __future__ import annotations

from django.apps import AppConfig


class ConsentConfig(AppConfig):
    name = "consentmw.django"
    label = "consentmw"
    verbose_name = "consentmw"

    def ready(self) -> None:
        from consentmw.django import checks  # noqa: F401  (registers the system checks)
