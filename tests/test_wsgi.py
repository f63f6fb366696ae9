"""What is particular to WSGI apps behind consentmw.wsgi: lazy start_response, close(), the
iterable's chunks. The contract itself is in test_contract.py."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from consentmw.core.store import MemoryStore
from consentmw.wsgi import ConsentMiddleware
from tests.adapters import PAGE
from tests.conftest import SECRET
from tests.corpus.pages import live_trackers
from tests.demo_support import app_server, free_port


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


class LazyBody(Body):
    """An iterable, not a generator, that starts the response when first iterated: only an explicit
    close() closes it, never the garbage collector."""

    def __init__(self, start_response: Callable[..., Any], content_type: str, chunks: list[bytes]) -> None:
        super().__init__(chunks)
        self.start_response = start_response
        self.content_type = content_type

    def __iter__(self) -> Iterator[bytes]:
        self.start_response("200 OK", [("Content-Type", self.content_type)])
        yield from self.chunks


@pytest.mark.parametrize("content_type", ["text/html; charset=utf-8", "application/json"])
def test_the_apps_close_is_called_when_it_starts_its_response_lazily(content_type: str) -> None:
    data = PAGE.encode()
    bodies: list[LazyBody] = []

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> LazyBody:
        bodies.append(LazyBody(start_response, content_type, [data[:1000], data[1000:]]))
        return bodies[-1]

    _, _, out, result = call(ConsentMiddleware(app, secret_key=SECRET, store=MemoryStore()))
    assert result is not bodies[0]  # the middleware's own iterable: its close() must reach the app's
    assert bodies[0].closed
    assert (live_trackers(out.decode()) == set()) is content_type.startswith("text/html")


@pytest.mark.slow
def test_gunicorn_closes_the_apps_body_through_the_middleware(tmp_path: Path) -> None:
    closed = tmp_path / "closed"
    env = {"CONSENTMW_SECRET_KEY": SECRET, "CONSENTMW_STORE": "memory://", "CONSENTMW_TEST_CLOSED": str(closed)}
    with app_server("gunicorn", "tests.sync_site:lazy_app", free_port(), tmp_path / "gunicorn.log", env) as url:
        page = httpx.get(url + "/page", timeout=10)
        data = httpx.get(url + "/json", timeout=10)
    assert page.status_code == data.status_code == 200
    assert "/_consent/banner.js?v=" in page.text and data.json() == {"ok": True}
    # gunicorn has stopped: every close() it was going to make has been made.
    assert sorted(closed.read_text().splitlines()) == ["application/json", "text/html; charset=utf-8"]


def error_page_app(calls: int) -> Callable[..., list[bytes]]:
    """An app whose error handler replaces its page, as Bottle's and Flask's do: start_response
    with exc_info, before anything was sent (once, or after a first call for the page)."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        if calls == 2:
            start_response("200 OK", [("Content-Type", "text/plain")])
        try:
            raise RuntimeError("the view failed")
        except RuntimeError:
            start_response("500 Internal Server Error", [("Content-Type", "text/html; charset=utf-8"), ("Set-Cookie", "_ga=GA1.1.1; Path=/")], sys.exc_info())
        return [PAGE.encode()]

    return app


@pytest.mark.parametrize("calls", [1, 2])
def test_an_error_page_started_with_exc_info_before_anything_was_sent_is_rewritten(calls: int) -> None:
    status, headers, out, _ = call(ConsentMiddleware(error_page_app(calls), secret_key=SECRET, store=MemoryStore()))
    assert status == "500 Internal Server Error"
    assert not any(k.lower() == "set-cookie" for k, _ in headers)
    assert live_trackers(PAGE) != set() and live_trackers(out.decode()) == set()
    assert "/_consent/banner.js?v=" in out.decode()
