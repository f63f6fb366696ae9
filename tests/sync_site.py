"""A WSGI site for gunicorn in the tests: a page, and consentmw.wsgi in front with the store,
key and deadline the test puts in the environment."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
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
    rate_limit=int(os.environ.get("CONSENTMW_RATE_LIMIT", "30")),
)


class LazyBody:
    """A body that starts the response only when the server first iterates it (as a framework's
    streaming response does) and writes a line to CONSENTMW_TEST_CLOSED when the server closes
    it: not a generator, so nothing but a close() call says it was closed."""

    def __init__(self, start_response: Callable[..., Any], content_type: str) -> None:
        self.start_response = start_response
        self.content_type = content_type

    def __iter__(self) -> Iterator[bytes]:
        self.start_response("200 OK", [("Content-Type", self.content_type)])
        yield b'<!DOCTYPE html><html><head></head><body><p>ok</p></body></html>' if "html" in self.content_type else b'{"ok": true}'

    def close(self) -> None:
        with open(os.environ["CONSENTMW_TEST_CLOSED"], "a") as f:
            f.write(self.content_type + "\n")


def lazy(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    return LazyBody(start_response, "application/json" if environ["PATH_INFO"] == "/json" else "text/html; charset=utf-8")


lazy_app = ConsentMiddleware(lazy, secret_key=os.environ["CONSENTMW_SECRET_KEY"], store="memory://")
