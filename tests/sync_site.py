"""A WSGI site for gunicorn in the tests: a page, and consentmw.wsgi in front with the store,
key and deadline the test puts in the environment."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

from consentmw.wsgi import ConsentMiddleware


def page(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]


app = ConsentMiddleware(
    page,
    secret_key=os.environ["CONSENTMW_SECRET_KEY"],
    store=os.environ["CONSENTMW_STORE"],
    store_timeout=float(os.environ.get("CONSENTMW_STORE_TIMEOUT", "5")),
)
