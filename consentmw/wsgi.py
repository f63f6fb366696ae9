"""The WSGI middleware, for Flask, Bottle, Pyramid or any WSGI app::

    app.wsgi_app = consentmw.wsgi.ConsentMiddleware(app.wsgi_app, secret_key=..., policy=..., store=...)

The app finds the visitor's consent in ``environ["consentmw.consent"]``. Options are the core's
(consentmw.core.base.ConsentCore), as for the ASGI middleware.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator
from http import HTTPStatus
from typing import Any

from consentmw.core.base import ConsentCore
from consentmw.core.consent import Consent
from consentmw.core.filtering import ResponseFilter, needs_filter, rewritten
from consentmw.core.http import consent_headers, environ_headers, environ_request, request_host
from consentmw.core.rewriting import PageRequest, PageStream

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]
ENVIRON_KEY = "consentmw.consent"


class ConsentMiddleware:
    def __init__(self, app: WSGIApp, **options: Any) -> None:
        self.app = app
        self.core = core = ConsentCore(**options)
        self.policy = core.policy
        self.store = core.store
        # PATH_INFO holds the path's bytes as latin-1 (PEP 3333): a prefix that is not ASCII is found
        # there in that form.
        self.raw_prefix = core.prefix.encode("utf-8").decode("latin-1")

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        core = self.core
        path = environ.get("PATH_INFO", "")
        if self.raw_prefix in path and core.is_api(decoded_path(path)):
            return self.answer(environ, start_response)
        consent = core.consent(
            consent_headers(environ, core.regions.environ_keys), environ.get("REMOTE_ADDR"), environ, lambda: environ_headers(environ)
        )
        app_environ = {**environ, ENVIRON_KEY: consent}  # a copy: the server's environ stays as it was
        responder = Responder(core, consent, app_environ, start_response)
        app_iter = self.app(app_environ, responder.start_response)
        if responder.started and responder.page is None:
            return app_iter  # nothing to rewrite; start_response went through, filtered where it had to
        return responder.body(app_iter)

    def answer(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        body = b""
        if environ.get("REQUEST_METHOD") == "POST":
            body = read_limited(environ, self.core.max_body_size)
        request = environ_request(environ, path=decoded_path(environ.get("PATH_INFO", "")), body=body, scheme=environ.get("wsgi.url_scheme", "http"))
        request.root_path = decoded_path(request.root_path)
        response = self.core.respond_sync(request)
        start_response(status_line(response.status), [(k.decode("latin-1"), v.decode("latin-1")) for k, v in response.headers])
        return [response.body]

    def close(self) -> None:
        """Closes the consent log (an app factory's shutdown hook, tests)."""
        self.core.close_sync()


def read_limited(environ: Environ, limit: int) -> bytes:
    """At most limit + 1 bytes of the body: a larger one is refused without being read whole."""
    stream = environ.get("wsgi.input")
    if stream is None:
        return b""
    length = environ.get("CONTENT_LENGTH") or ""
    # Without a Content-Length a WSGI server may block on read(): only servers that mark the
    # stream as terminated (wsgi.input_terminated) may be read to the end.
    if length.isascii() and length.isdigit():  # not "²", which isdigit() takes for a digit and int() refuses
        return stream.read(min(int(length), limit + 1))
    if environ.get("wsgi.input_terminated"):
        return stream.read(limit + 1)
    return b""


def decoded_path(path: str) -> str:
    """The path as the browser's URL says it: a WSGI server gives its bytes as latin-1 (PEP 3333),
    and a page at /café would otherwise send the no-JS form back to /caf%C3%83%C2%A9. Bytes that are
    not UTF-8 become U+FFFD, as ASGI servers decode them."""
    try:
        return path.encode("latin-1").decode("utf-8", "replace")
    except UnicodeEncodeError:  # not what PEP 3333 says, but already text
        return path


def status_line(status: int) -> str:
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"{status} Unknown"


class Responder:
    """Per response: filters the headers the app passes to start_response; an HTML page's headers
    wait for its first body chunk (PageStream), and its body goes through the page stream."""

    __slots__ = ("core", "consent", "environ", "server_start", "page", "status", "exc_info", "started", "written", "released")

    def __init__(self, core: ConsentCore, consent: Consent, environ: Environ, server_start: StartResponse) -> None:
        self.core = core
        self.consent = consent
        self.environ = environ
        self.server_start = server_start
        self.page: PageStream | None = None
        self.status = ""
        self.exc_info: Any = None
        self.started = False
        self.written: list[bytes] = []  # what the app gave the legacy write() callable, for the page
        self.released = False  # a held page's headers have gone to the server

    def start_response(self, status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], Any]:
        self.started = True
        raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers]
        if not needs_filter(raw):
            if exc_info is None or not self.released:
                self.page = None
            return self.server_start(status, headers, exc_info)
        environ = self.environ
        key = self.core.csp_nonce_key
        request = PageRequest(
            environ.get("REQUEST_METHOD", "GET"),
            decoded_path(environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")),
            environ.get("QUERY_STRING", ""),
            lambda: environ.get(key),
            request_host(environ),
            environ.get("HTTP_ACCEPT_LANGUAGE", ""),
        )
        result: ResponseFilter = self.core.filter_response(request, self.consent, int(status[:3]), raw, environ.get("SCRIPT_NAME", ""))
        if exc_info is not None and self.released:
            # An error once the page is under way: the server raises it again, as PEP 3333 asks (and
            # a server that has not sent the page's headers yet takes these, still filtered; the
            # body goes on through the page's stream, so no length).
            return self.server_start(status, native([(k, v) for k, v in result.headers if k.lower() != b"content-length"]), exc_info)
        self.page = result.page
        if self.page is None:
            return self.server_start(status, native(result.headers), exc_info)
        self.status, self.exc_info = status, exc_info
        return self.written.append  # PEP 3333's legacy write(): the page goes through the rewriting too

    def with_written(self, chunks: Iterator[bytes]) -> Iterator[bytes]:
        """The app's chunks, each after what it wrote while producing it."""
        written = self.written
        for chunk in chunks:
            if written:
                yield b"".join(written)
                written.clear()
            yield chunk
        if written:
            yield b"".join(written)

    def body(self, app_iter: Iterable[bytes]) -> Iterable[bytes]:
        chunks = iter(app_iter)
        try:
            first = next(chunks, b"")  # an app that is a generator calls start_response only now
        except BaseException:
            ClosingIterable(chunks, app_iter).close()
            raise
        page = self.page
        if page is None:
            return ClosingIterable(itertools.chain((first,), chunks), app_iter)
        declared = next((v for k, v in page.headers if k.lower() == b"content-length"), None)
        written = self.written
        # The whole body in one chunk (what Flask and most frameworks send): Content-Length can be set.
        whole = isinstance(app_iter, (list, tuple)) and len(app_iter) <= 1
        if written:
            first = b"".join(written) + first
            written.clear()
            chunks = self.with_written(chunks)
        whole = whole or (declared is not None and declared.isdigit() and int(declared) == len(first))
        headers, out = page.first(first, not whole)
        self.released = True
        self.server_start(self.status, native(headers), self.exc_info)
        return ClosingIterable(iter([out]) if whole else rewritten(page, out, chunks), app_iter)


def native(headers: list[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
    return [(k.decode("latin-1"), v.decode("latin-1")) for k, v in headers]


class ClosingIterable:
    """Our body, with the app's close() passed through (PEP 3333: the server calls it)."""

    __slots__ = ("chunks", "app_iter")

    def __init__(self, chunks: Iterator[bytes], app_iter: Iterable[bytes]) -> None:
        self.chunks = chunks
        self.app_iter = app_iter

    def __iter__(self) -> Iterator[bytes]:
        return self.chunks

    def close(self) -> None:
        close = getattr(self.app_iter, "close", None)
        if close is not None:
            close()
