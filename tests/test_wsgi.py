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
    if hasattr(result, "close"):  # as a server does (PEP 3333)
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
        path = environ["PATH_INFO"]
        start_response("200 OK", [("Content-Type", "text/html"), ("Content-Length", str(len(data)))] if path == "/one" else [("Content-Type", "text/html")])
        return [data] if path in ("/one", "/one-undeclared") else iter([data[:500], data[500:]])

    middleware = ConsentMiddleware(app, secret_key=SECRET, store=MemoryStore())
    _, headers, out, _ = call(middleware, "/one")
    assert dict(headers)["content-length"] == str(len(out))
    _, headers, out, _ = call(middleware, "/one-undeclared")  # a list of one chunk is the whole page, declared or not
    assert dict(headers)["content-length"] == str(len(out))
    _, _, whole, _ = call(middleware, "/one")
    _, headers, out, _ = call(middleware, "/streamed")
    assert "content-length" not in {k.lower() for k, _ in headers}
    assert out.replace(b'value="/streamed"', b'value="/one"') == whole  # the whole page, not its first chunk


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


def test_a_plain_error_page_replacing_a_page_not_yet_sent_goes_out_as_the_app_wrote_it() -> None:
    # The view started an HTML page, then failed; the error handler's plain-text page replaces it.
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
        try:
            raise RuntimeError("the view failed")
        except RuntimeError:
            start_response("500 Internal Server Error", [("Content-Type", "text/plain"), ("Content-Length", "15")], sys.exc_info())
        return [b"the view failed"]

    status, headers, out, _ = call(ConsentMiddleware(app, secret_key=SECRET, store=MemoryStore()))
    assert (status, headers, out) == ("500 Internal Server Error", [("Content-Type", "text/plain"), ("Content-Length", "15")], b"the view failed")


@pytest.mark.parametrize("returned", [[], ["tail"], ["mid", "tail"]])
def test_a_page_written_through_the_legacy_write_callable_is_rewritten_in_order(returned: list[str]) -> None:
    # PEP 3333's write(): what the app writes comes before what it returns, all through the rewriter.
    data = PAGE.encode()
    cut = [0, 900, 1800, len(data)] if len(returned) == 2 else [0, 900, len(data)] if returned else [0, len(data)]
    parts = [data[a:b] for a, b in zip(cut, cut[1:])]

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterator[bytes]:
        write = start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
        write(parts[0])
        return iter(parts[1:])  # an iterator: the page streams, as a generator's would

    _, _, out, _ = call(ConsentMiddleware(app, secret_key=SECRET, store=MemoryStore()))
    _, _, whole, _ = call(ConsentMiddleware(lambda e, s: (s("200 OK", [("Content-Type", "text/html; charset=utf-8")]), [data])[1], secret_key=SECRET, store=MemoryStore()))
    assert out == whole and live_trackers(out.decode()) == set()


def test_a_one_chunk_page_with_a_matching_content_length_gets_the_rewritten_length() -> None:
    data = PAGE.encode()

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterator[bytes]:
        start_response("200 OK", [("Cache-Control", "no-store"), ("Content-Type", "text/html"), ("Content-Length", str(len(data)))])
        return iter([data])  # not a list: only the declared length says the page is whole

    _, headers, out, _ = call(ConsentMiddleware(app, secret_key=SECRET, store=MemoryStore()))
    assert dict(headers)["content-length"] == str(len(out)) and out != data


@pytest.mark.parametrize("limit", [1000, 1001])
def test_a_choice_posted_without_a_length_is_read_up_to_the_limit(limit: int) -> None:
    # A server that marks the body as terminated (chunked upload, no Content-Length).
    import io

    middleware = ConsentMiddleware(lambda e, s: [], secret_key=SECRET, store=MemoryStore(), max_body_size=limit)

    def post(body: bytes) -> str:
        got: dict[str, Any] = {}
        environ = {
            "REQUEST_METHOD": "POST", "PATH_INFO": "/_consent", "SERVER_NAME": "testserver", "SERVER_PORT": "80",
            "wsgi.url_scheme": "http", "CONTENT_TYPE": "application/json", "HTTP_ORIGIN": "http://testserver",
            "wsgi.input": io.BytesIO(body), "wsgi.input_terminated": True,
        }
        b"".join(middleware(environ, lambda status, headers, exc_info=None: got.update(status=status)))
        return got["status"]

    fits = b'{"accept": "all"}'.ljust(limit, b" ")
    assert post(fits) == "200 OK"
    assert post(fits + b" ") == "413 Request Entity Too Large"


def test_a_path_that_is_already_text_beyond_latin_1_is_served() -> None:
    # Not what PEP 3333 says a server passes, but some do: the page is served, not a 500.
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
        return [PAGE.encode()]

    status, _, out, _ = call(ConsentMiddleware(app, secret_key=SECRET, store=MemoryStore()), "/☃")
    assert status == "200 OK" and live_trackers(out.decode()) == set()


@pytest.mark.parametrize("last", ["yielded", "written"])
def test_a_generator_writing_between_its_chunks_keeps_their_order(last: str) -> None:
    data = PAGE.encode()
    parts = [data[a:b] for a, b in zip([0, 500, 1000, 1500], [500, 1000, 1500, len(data)])]

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterator[bytes]:
        write = start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
        write(parts[0])
        yield parts[1]
        write(parts[2])
        if last == "yielded":
            yield parts[3]
        else:
            write(parts[3])  # after the last chunk: the end of the page comes only through write()

    _, _, out, _ = call(ConsentMiddleware(app, secret_key=SECRET, store=MemoryStore()))
    _, _, whole, _ = call(ConsentMiddleware(lambda e, s: (s("200 OK", [("Content-Type", "text/html; charset=utf-8")]), [data])[1], secret_key=SECRET, store=MemoryStore()))
    assert out == whole


@pytest.mark.parametrize("shape", ["list", "declared"])
def test_a_page_in_two_chunks_comes_out_whole_however_it_is_returned(shape: str) -> None:
    # A list of two chunks, or an iterator whose declared length is the page's (not its first chunk's).
    data = PAGE.encode()
    headers = [("Content-Type", "text/html"), ("Content-Length", str(len(data)))]

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        start_response("200 OK", headers)
        return [data[:700], data[700:]] if shape == "list" else iter([data[:700], data[700:]])

    _, _, out, _ = call(ConsentMiddleware(app, secret_key=SECRET, store=MemoryStore()))
    _, _, whole, _ = call(ConsentMiddleware(lambda e, s: (s("200 OK", headers), [data])[1], secret_key=SECRET, store=MemoryStore()))
    assert out == whole


def test_an_error_after_the_page_started_reaches_the_server_with_the_pages_headers_filtered() -> None:
    data = PAGE.encode()
    calls: list[tuple[str, list[tuple[str, str]], Any]] = []

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
        yield data[:800]
        try:
            raise RuntimeError("the template failed half-way")
        except RuntimeError:
            start_response("500 Internal Server Error", [("Content-Type", "text/html"), ("Content-Length", "5"), ("Set-Cookie", "_ga=1")], sys.exc_info())
        yield b"error"

    def server_start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        calls.append((status, headers, exc_info))
        if exc_info is not None:
            raise exc_info[1].with_traceback(exc_info[2])  # PEP 3333: the headers are sent, re-raise

    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/", "SERVER_NAME": "testserver", "SERVER_PORT": "80", "wsgi.url_scheme": "http"}
    result = ConsentMiddleware(app, secret_key=SECRET, store=MemoryStore())(environ, server_start)
    with pytest.raises(RuntimeError, match="half-way"):
        b"".join(result)
    result.close()
    assert [c[0] for c in calls] == ["200 OK", "500 Internal Server Error"]
    assert calls[1][1] == [("content-type", "text/html"), ("vary", "Cookie")]  # no length for a streamed body, no tracking cookie


def test_the_apps_iterable_is_closed_when_its_first_chunk_fails() -> None:
    class Failing(Body):
        def __iter__(self) -> Iterator[bytes]:
            raise RuntimeError("the view failed")
            yield b""

    bodies: list[Failing] = []

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Failing:
        bodies.append(Failing([]))
        return bodies[-1]

    with pytest.raises(RuntimeError, match="the view failed"):
        call(ConsentMiddleware(app, secret_key=SECRET, store=MemoryStore()))
    assert bodies[0].closed
