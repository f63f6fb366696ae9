from __future__ import annotations

from typing import Any


def use_consentmw_keys(*, secret_key: str, store: Any = None) -> None:
    """Sets the key and consent log consentmw uses (tests; a real project writes them in settings.py)."""
    from django.conf import settings

    settings.CONSENTMW = {**settings.CONSENTMW, "SECRET_KEY": secret_key, "STORE": store}
