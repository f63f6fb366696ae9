"""What is particular to WSGI apps behind consentmw.wsgi: lazy start_response, close(), the
iterable's chunks. The contract itself is in test_contract.py."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from consentmw.core.store import MemoryStore
from consentmw.wsgi import ConsentMiddleware
from tests.adapters import PAGE
from tests.conftest import SECRET
from tests.corpus.pages import live_trackers


class Body:
    """An app's iterable that says whether the server closed it (PEP 3333)."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks
        self.closed = False

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.chunks)

    def close(self) -> None:
        self.closed = True


def call(app: Any, path: str = "/") -> tuple[str, list[tuple[str, str]], bytes, Any]:
    got: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        got["status"], got["headers"] = status, headers

    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": path, "SERVER_NAME": "testserver", "SERVER_PORT": "80", "wsgi.url_scheme": "http"}
    result = app(environ, start_response)
    body = b"".join(result)
    result.close()
    return got["status"], got["headers"], body, result


@pytest.mark.parametrize("content_type", ["text/html; charset=utf-8", "application/json"])
def test_the_apps_close_is_called_whether_or_not_the_body_was_rewritten(content_type: str) -> None:
    data = PAGE.encode()
    body = Body([data[:1000], data[1000:]])

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Body:
        start_response("200 OK", [("Content-Type", content_type)])
        return body

    _, _, out, _ = call(ConsentMiddleware(app, secret_key=SECRET, store=MemoryStore()))
    assert body.closed
    assert (live_trackers(out.decode()) == set()) is content_type.startswith("text/html")


def test_an_app_that_starts_its_response_lazily_is_still_filtered() -> None:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterator[bytes]:
        # A generator: start_response runs only when the server asks for the first chunk.
        start_response("200 OK", [("Content-Type", "text/html; charset=utf-8"), ("Set-Cookie", "_ga=GA1.1.1; Path=/")])
        yield PAGE.encode()

    status, headers, out, _ = call(ConsentMiddleware(app, secret_key=SECRET, store=MemoryStore()))
    assert status == "200 OK"
    assert not any(k.lower() == "set-cookie" for k, _ in headers)
    assert live_trackers(out.decode()) == set()
    assert "/_consent/banner.js?v=" in out.decode()


def test_a_page_in_one_chunk_gets_its_length_and_a_streamed_one_none() -> None:
    data = PAGE.encode()

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        start_response("200 OK", [("Content-Type", "text/html"), ("Content-Length", str(len(data)))] if environ["PATH_INFO"] == "/one" else [("Content-Type", "text/html")])
        return [data] if environ["PATH_INFO"] == "/one" else iter([data[:500], data[500:]])

    middleware = ConsentMiddleware(app, secret_key=SECRET, store=MemoryStore())
    _, headers, out, _ = call(middleware, "/one")
    assert dict(headers)["content-length"] == str(len(out))
    _, headers, out, _ = call(middleware, "/streamed")
    assert "content-length" not in {k.lower() for k, _ in headers}
    assert live_trackers(out.decode()) == set()
