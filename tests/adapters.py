"""One small site, served through each of consentmw's adapters, for the contract tests: the same
routes in Starlette (ASGI middleware), a plain WSGI app (WSGI middleware) and Django (the native
middleware, through Django's WSGI handler and through its ASGI handler).

Routes: ``/`` the visitor's consent as JSON (``/state``: all of Consent.as_dict(), region and mode too), ``/cookies?name=...`` sets those cookies, ``/page``
an HTML page with GA4 and the Meta pixel, ``/stream`` the same page streamed in chunks,
``/raw-cookies?name=...`` sets cookies as a plain header the app writes itself (not through its
framework's cookie API), ``/café`` the page at a path that is not ASCII, ``/headers?h=Name:value``
the page (or ``body=...``) with exactly those headers (repeated ones too, except on Django, which
keeps one per name).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qs

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, StreamingResponse
from starlette.routing import Route

from consentmw import ConsentMiddleware
from consentmw import wsgi as consentmw_wsgi
from consentmw.core.consent import Consent
from tests.corpus.pages import shop_page

PAGE = shop_page(["ga4-gtag", "meta-pixel"], 3)
TRACKERS = {"ga4-gtag", "meta-pixel"}
BASE_URL = "http://testserver"
ADAPTERS = ("asgi", "wsgi", "django-wsgi", "django-asgi")


def state(consent: Consent) -> dict[str, Any]:
    return {"decided": consent.decided, "analytics": consent.allows("analytics"), "gpc": consent.gpc}


def query_headers(query: str) -> list[tuple[str, str]]:
    """The headers a /headers request asks for: each h=Name:value."""
    return [tuple(h.split(":", 1)) for h in parse_qs(query).get("h", [])]  # type: ignore[misc]


def query_body(query: str) -> bytes:
    """The page a /headers request asks for (body=...), PAGE without one."""
    return parse_qs(query).get("body", [PAGE])[0].encode()


def chunks() -> Iterator[bytes]:
    data = PAGE.encode()
    middle = len(data) // 2
    yield data[:middle]
    yield data[middle:]


# -- Starlette, through consentmw.asgi --------------------------------------------------------


def starlette_app(options: dict[str, Any]) -> Any:
    async def whoami(request: Request) -> JSONResponse:
        return JSONResponse(state(request.scope["consent"]))

    async def cookies(request: Request) -> PlainTextResponse:
        response = PlainTextResponse("cookies")
        for name in request.query_params.getlist("name"):
            response.set_cookie(name, "v")
        return response

    async def raw_cookies(request: Request) -> JSONResponse:
        response = JSONResponse({})
        response.raw_headers += [(b"set-cookie", f"{name}=v; Path=/".encode()) for name in request.query_params.getlist("name")]
        return response

    async def headers(request: Request) -> Any:
        from starlette.responses import Response

        body = query_body(request.url.query)
        response = Response(body)
        response.raw_headers = [(b"content-length", str(len(body)).encode())] + [
            (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in query_headers(request.url.query)
        ]
        return response

    routes = [
        Route("/", whoami),
        Route("/headers", headers),
        Route("/state", lambda request: JSONResponse(request.scope["consent"].as_dict())),
        Route("/cookies", cookies),
        Route("/raw-cookies", raw_cookies),
        Route("/page", lambda request: HTMLResponse(PAGE)),
        Route("/café", lambda request: HTMLResponse(PAGE)),
        Route("/stream", lambda request: StreamingResponse(chunks(), media_type="text/html; charset=utf-8")),
    ]
    return ConsentMiddleware(Starlette(routes=routes), **options)


# -- a plain WSGI app, through consentmw.wsgi ------------------------------------------------


def wsgi_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
    path = environ["PATH_INFO"]
    if path == "/":
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps(state(environ["consentmw.consent"])).encode()]
    if path == "/state":
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps(environ["consentmw.consent"].as_dict()).encode()]
    if path == "/cookies":
        names = parse_qs(environ.get("QUERY_STRING", "")).get("name", [])
        start_response("200 OK", [("Content-Type", "text/plain"), *(("Set-Cookie", f"{n}=v; Path=/") for n in names)])
        return [b"cookies"]
    if path == "/raw-cookies":
        names = parse_qs(environ.get("QUERY_STRING", "")).get("name", [])
        start_response("200 OK", [("Content-Type", "application/json"), *(("Set-Cookie", f"{n}=v; Path=/") for n in names)])
        return [b"{}"]
    if path in ("/page", "/café".encode().decode("latin-1")):  # PEP 3333: the path's bytes as latin-1
        body = PAGE.encode()
        start_response("200 OK", [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(body)))])
        return [body]
    if path == "/stream":
        start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
        return chunks()
    if path == "/headers":
        start_response("200 OK", query_headers(environ.get("QUERY_STRING", "")))
        return [query_body(environ.get("QUERY_STRING", ""))]
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"not found"]


# -- Django, through consentmw.django ---------------------------------------------------------


def django_urls() -> Any:
    import types

    from django.http import HttpResponse, JsonResponse, StreamingHttpResponse
    from django.urls import path

    def whoami(request: Any) -> JsonResponse:
        return JsonResponse(state(request.consent))

    def cookies(request: Any) -> HttpResponse:
        response = HttpResponse("cookies", content_type="text/plain")
        for name in request.GET.getlist("name"):
            response.set_cookie(name, "v")
        return response

    def headers(request: Any) -> HttpResponse:
        response = HttpResponse(query_body(request.META.get("QUERY_STRING", "")))
        del response["Content-Type"]
        for name, value in query_headers(request.META.get("QUERY_STRING", "")):
            response[name] = value
        return response

    def raw_cookies(request: Any) -> JsonResponse:
        response = JsonResponse({})
        for name in request.GET.getlist("name"):
            response["Set-Cookie"] = f"{name}=v; Path=/"  # Django keeps one value per header name
        return response

    urls = types.ModuleType("consentmw_contract_urls")
    urls.urlpatterns = [  # type: ignore[attr-defined]
        path("", whoami),
        path("state", lambda request: JsonResponse(request.consent.as_dict())),
        path("cookies", cookies),
        path("raw-cookies", raw_cookies),
        path("headers", headers),
        path("page", lambda request: HttpResponse(PAGE)),
        path("café", lambda request: HttpResponse(PAGE)),
        path("stream", lambda request: StreamingHttpResponse(chunks(), content_type="text/html; charset=utf-8")),
    ]
    return urls


DJANGO_MIDDLEWARE = ["consentmw.django.ConsentMiddleware", "django.middleware.common.CommonMiddleware"]


@contextmanager
def django_settings(options: dict[str, Any], **more: Any) -> Iterator[None]:
    from consentmw import demo

    demo.load_site("django")  # configures Django once per process (the example project's settings)
    from django.test import override_settings

    configured = {key.upper(): value for key, value in options.items()}
    with override_settings(ROOT_URLCONF=django_urls(), MIDDLEWARE=DJANGO_MIDDLEWARE, CONSENTMW=configured, DEBUG=False, **more):
        yield


def as_servers_do(app: Any) -> Any:
    """The WSGI app with PATH_INFO as WSGI servers give it (PEP 3333: the path's bytes read as
    latin-1); httpx's WSGITransport gives the decoded text instead."""

    def pep3333(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        return app({**environ, "PATH_INFO": environ["PATH_INFO"].encode("utf-8").decode("latin-1")}, start_response)

    return pep3333


class SyncASGIClient:
    """httpx.AsyncClient on an ASGI app, driven from sync tests on a loop of its own, so that one
    test body serves every adapter."""

    def __init__(self, app: Any, *, root_path: str = "", client: tuple[str, int] = ("127.0.0.1", 123), **options: Any) -> None:
        self.loop = asyncio.new_event_loop()
        self.client = httpx.AsyncClient(transport=httpx.ASGITransport(app, root_path=root_path, client=client), **options)

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.client, name)
        if name in ("get", "post", "delete", "head", "request"):
            return lambda *args, **kwargs: self.loop.run_until_complete(attribute(*args, **kwargs))
        return attribute

    def close(self) -> None:
        self.loop.run_until_complete(self.client.aclose())
        self.loop.close()


@contextmanager
def asgi_client(app: Any, **options: Any) -> Iterator[Any]:
    client = SyncASGIClient(app, **options)
    try:
        yield client
    finally:
        client.close()


@contextmanager
def client_for(adapter: str, options: dict[str, Any], *, root_path: str = "", client: str = "127.0.0.1") -> Iterator[httpx.Client]:
    """A sync httpx client on the site served through `adapter`, with these consentmw options; the
    server reports `root_path` (ASGI root_path, WSGI SCRIPT_NAME) and the client's address `client`."""
    headers = {"origin": BASE_URL}
    if adapter == "asgi":
        app = starlette_app(options)
        with asgi_client(app, base_url=BASE_URL, headers=headers, root_path=root_path, client=(client, 123)) as http:
            yield http
    elif adapter == "wsgi":
        middleware = consentmw_wsgi.ConsentMiddleware(wsgi_app, **options)
        transport = httpx.WSGITransport(as_servers_do(middleware), script_name=root_path, remote_addr=client)
        with httpx.Client(transport=transport, base_url=BASE_URL, headers=headers) as http:
            yield http
        middleware.close()
    elif adapter == "django-wsgi":
        with django_settings(options):
            from django.core.wsgi import get_wsgi_application

            transport = httpx.WSGITransport(as_servers_do(get_wsgi_application()), script_name=root_path, remote_addr=client)
            with httpx.Client(transport=transport, base_url=BASE_URL, headers=headers) as http:
                yield http
    elif adapter == "django-asgi":
        with django_settings(options):
            from django.core.asgi import get_asgi_application

            with asgi_client(get_asgi_application(), base_url=BASE_URL, headers=headers, root_path=root_path, client=(client, 123)) as http:
                yield http
    else:
        raise ValueError(adapter)
