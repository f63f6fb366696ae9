"""The Django middleware: reads the visitor's consent into ``request.consent``, answers the endpoints
under the prefix, and passes each response through the core's response filter. One instance serves
the sync path (WSGI: runserver, gunicorn, uWSGI) or the async path (ASGI), whichever the handler
around it is, with no thread hop."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from http.cookies import Morsel
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.apps import apps
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.utils import translation

from consentmw.core.base import ConsentCore
from consentmw.core.consent import Consent
from consentmw.core.filtering import ResponseFilter, arewritten, rewritten
from consentmw.core.http import Request, Response, consent_headers, environ_headers, environ_request, request_host
from consentmw.core.response import SET_COOKIE, html_verdict
from consentmw.core.rewriting import PageRequest, PageStream
from consentmw.django.conf import get_core

logger = logging.getLogger("consentmw")


class ConsentMiddleware:
    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        if not apps.is_installed("consentmw.django"):
            # Without the app there are no template tags, context processor or system checks.
            raise ImproperlyConfigured("consentmw.django.ConsentMiddleware needs 'consentmw.django' in INSTALLED_APPS")
        self.get_response = get_response
        self.core = get_core()
        self.async_mode = iscoroutinefunction(get_response)
        if self.async_mode:
            markcoroutinefunction(self)
        self.warned_double = False

    def __call__(self, request: HttpRequest) -> Any:
        if self.async_mode:
            return self.__acall__(request)
        core = self.core
        path = request.path_info
        if core.prefix in path and core.is_api(path):
            return django_response(core.respond_sync(api_request(request, core)))
        consent = self.attach(request)
        response = self.get_response(request)
        if consent is not None and needs_filtering(response):
            if (page := self.filtered(request, consent, response)) is not None:
                if response.is_async:
                    # Django consumes an async iterator on the sync path itself; nothing to peek at here.
                    first_headers, first = page.first(b"", True)
                    response.streaming_content = arewritten(page, first, response.streaming_content)
                else:
                    chunks = iter(response.streaming_content)
                    first_headers, first = page.first(next(chunks, b""), True)
                    response.streaming_content = rewritten(page, first, chunks)
                apply_headers(response, first_headers)
        return response

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        core = self.core
        path = request.path_info
        if core.prefix in path and core.is_api(path):
            return django_response(await core.api.respond(api_request(request, core)))
        consent = self.attach(request)
        response = await self.get_response(request)
        if consent is not None and needs_filtering(response):
            if (page := self.filtered(request, consent, response)) is not None:
                if response.is_async:
                    chunks = aiter(response.streaming_content)
                    first_headers, first = page.first(await anext(chunks, b""), True)
                    response.streaming_content = arewritten(page, first, chunks)
                else:
                    # A sync iterator (FileResponse): Django's ASGI handler reads it in a thread; so does
                    # the peek at its first chunk (which may name the page's charset).
                    chunks = iter(response.streaming_content)
                    first_headers, first = page.first(await sync_to_async(next)(chunks, b""), True)
                    response.streaming_content = rewritten(page, first, chunks)
                apply_headers(response, first_headers)
        return response

    def attach(self, request: HttpRequest) -> Consent | None:
        core = self.core
        meta = request.META
        consent = core.consent(consent_headers(meta, core.regions.environ_keys), meta.get("REMOTE_ADDR"), request, lambda: environ_headers(meta))
        scope = getattr(request, "scope", None)
        if scope is not None:
            if "consent" in scope:
                # consentmw.asgi.ConsentMiddleware wraps this app as well: its consent stands, and
                # the page must not be rewritten twice.
                if not self.warned_double:
                    self.warned_double = True
                    logger.error(
                        "consentmw: both the ASGI ConsentMiddleware around Django and consentmw.django.ConsentMiddleware are "
                        "active; use one (manage.py check says consentmw.E004). The Django middleware steps aside."
                    )
                request.consent = scope["consent"]  # type: ignore[attr-defined]
                return None
            request.scope = {**scope, "consent": consent}  # type: ignore[attr-defined]  # a copy, as ASGI asks
        request.consent = consent  # type: ignore[attr-defined]
        return consent

    def filtered(self, request: HttpRequest, consent: Consent, response: HttpResponseBase) -> PageStream | None:
        """Filters the response's headers; for an HTML page, rewrites a whole body in place, or
        returns the page stream that a streamed body must go through."""
        core = self.core
        headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in response.items()]
        headers += [(b"set-cookie", morsel.OutputString().encode("latin-1")) for morsel in response.cookies.values()]
        key = core.csp_nonce_key
        page_request = PageRequest(
            request.method or "GET",
            request.path,
            request.META.get("QUERY_STRING", ""),
            lambda: getattr(request, key, None),  # django-csp's request.csp_nonce
            request_host(request.META),
            request.META.get("HTTP_ACCEPT_LANGUAGE", ""),
            translation.get_language,  # LocaleMiddleware's choice, else LANGUAGE_CODE
        )
        result: ResponseFilter = core.filter_response(page_request, consent, response.status_code, headers, request.META.get("SCRIPT_NAME", ""))
        page = result.page
        if page is None:
            apply_headers(response, result.headers)
            return None
        if not response.streaming:
            page_headers, body = page.first(response.content, False)
            response.content = body
            apply_headers(response, page_headers)
            return None
        return page


def needs_filtering(response: HttpResponseBase) -> bool:
    """Whether a response sets cookies (through response.cookies, or a Set-Cookie header the app
    wrote itself: Django sends both), has Link or Speculation-Rules headers, or may be HTML."""
    headers = response.headers
    return (
        bool(response.cookies)
        or "Set-Cookie" in headers
        or "Link" in headers
        or "Speculation-Rules" in headers
        or html_verdict(response.get("Content-Type", "").encode("latin-1"))
    )


def api_request(request: HttpRequest, core: ConsentCore) -> Request:
    # At most one byte past the limit: a larger body is refused without being read whole.
    body = request.read(core.max_body_size + 1) if request.method == "POST" else b""
    return environ_request(request.META, path=request.path_info, body=body, scheme=request.scheme, native=request)


class RawMorsel(Morsel):
    """A Set-Cookie line the core wrote, sent by Django exactly as written (Django keeps one Morsel
    per cookie name; consentmw may expire one name on several domains and paths)."""

    def __init__(self, line: str) -> None:
        super().__init__()
        name, _, rest = line.partition("=")
        self.set(name.strip(), rest.split(";", 1)[0], rest.split(";", 1)[0])
        self.line = line

    def OutputString(self, attrs: Any = None) -> str:  # noqa: N802  (Morsel's name)
        return self.line


def apply_headers(response: HttpResponseBase, headers: list[tuple[bytes, bytes]]) -> None:
    """Makes a Django response carry exactly these headers (Set-Cookie lines in response.cookies)."""
    lines = [value.decode("latin-1") for key, value in headers if key in SET_COOKIE]
    cookies = response.cookies
    present = {morsel.OutputString(): name for name, morsel in cookies.items()}
    kept = set()
    for i, line in enumerate(lines):
        name = present.get(line)
        if name is not None:
            kept.add(name)
            continue
        morsel = RawMorsel(line)
        name = morsel.key if morsel.key not in cookies else f"{morsel.key}\x00{i}"
        dict.__setitem__(cookies, name, morsel)
        kept.add(name)
    for name in list(cookies):
        if name not in kept:
            del cookies[name]
    plain: dict[str, str] = {}
    for key, value in headers:
        if key.lower() != b"set-cookie":
            name = key.decode("latin-1").title()
            plain[name] = f"{plain[name]}, {value.decode('latin-1')}" if name in plain else value.decode("latin-1")
    for name in list(response.headers):
        if name.title() not in plain:
            del response.headers[name]
    for name, value in plain.items():
        response.headers[name] = value


def django_response(answer: Response) -> HttpResponse:
    response = HttpResponse(answer.body, status=answer.status)
    apply_headers(response, answer.headers)
    return response
