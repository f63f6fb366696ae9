"""The ASGI middleware (Starlette, FastAPI, Django's ASGI application): translates ASGI messages to
and from the core in ``consentmw.core.base``."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

from starlette.routing import get_route_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from consentmw.core.base import ConsentCore
from consentmw.core.consent import Consent
from consentmw.core.filtering import ResponseFilter, needs_filter
from consentmw.core.http import Request, host_name
from consentmw.core.rewriting import PageRequest

new_consent = object.__new__


class ConsentMiddleware:
    """``app.add_middleware(ConsentMiddleware, secret_key=..., policy=..., store=...)``; the options
    are ConsentCore's (consentmw.core.base), all keyword-only."""

    def __init__(self, app: ASGIApp, **options: Any) -> None:
        self.app = app
        self.core = core = ConsentCore(**options)
        self.policy = core.policy
        self.store = core.store
        self.api = core.api
        self.codec = core.codec
        self.reader = core.reader
        self.prefix = core.prefix
        self.locator = core.reader.locator if core.regions.locate is not None else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan":
                send = self.closing_store(send)
            await self.app(scope, receive, send)
            return
        core = self.core
        if core.prefix in scope["path"] and core.is_api(get_route_path(scope)):
            await self.answer(scope, receive, send)
            return
        # The hot path: every request of the site comes through here. Each step below was measured
        # (bench/bench_core.py); a Python-level call or closure cell costs as much as the work.
        consent = new_consent(Consent)  # Consent.__init__'s work, without its call
        consent._reader = self.reader
        consent._headers = scope["headers"]
        consent._resolved = False
        consent._region = None
        locator = self.locator
        if locator is None:
            consent._locate = None
        else:
            client = scope.get("client")
            consent._locate = locator(scope["headers"], client[0] if client else None, scope)
        app_scope = scope.copy()  # a copy, so the server's scope is never changed
        app_scope["consent"] = consent
        filtered: FilteredSend | None = None

        def send_filtered(message: Message) -> Awaitable[None]:
            # Most responses (no cookies, not HTML) pass with one header scan and no allocation;
            # returning the awaitable instead of awaiting it spares a coroutine per message.
            nonlocal filtered
            if filtered is None:
                if message["type"] != "http.response.start" or not needs_filter(message.get("headers") or ()):
                    return send(message)
                filtered = FilteredSend(core, consent, app_scope, send)
            return filtered(message)

        await self.app(app_scope, receive, send_filtered)

    async def answer(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A request under the prefix, answered by the core."""
        body: bytes | None = b""
        if scope["method"] == "POST":
            body = await read_limited(receive, self.core.max_body_size)
        client = scope.get("client")
        request = Request(
            method=scope["method"],
            path=get_route_path(scope),
            headers=scope["headers"],
            query=scope.get("query_string", b""),
            body=body,
            client=client[0] if client else None,
            scheme=scope.get("scheme", "http"),
            root_path=scope.get("root_path", ""),
            native=scope,
        )
        response = await self.core.api.respond(request)
        await send({"type": "http.response.start", "status": response.status, "headers": response.headers})
        await send({"type": "http.response.body", "body": response.body})

    def closing_store(self, send: Send) -> Send:
        async def lifespan_send(message: Message) -> None:
            if message["type"] == "lifespan.shutdown.complete":
                await self.store.close()
            await send(message)

        return lifespan_send

    def __repr__(self) -> str:
        return f"{type(self).__name__}(policy={self.policy.id or self.policy.version!r}, prefix={self.prefix!r})"


async def read_limited(receive: Receive, limit: int) -> bytes | None:
    """The request body, or its first limit + 1 bytes when it is larger (the core refuses it then);
    None when the client went away first."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if size > limit or not message.get("more_body", False):
            return b"".join(chunks)


def scope_nonce(scope: Scope, key: str) -> Any:
    value = scope.get(key)
    if value is None:
        state = scope.get("state")
        value = state.get(key) if isinstance(state, dict) else getattr(state, key, None)
    return value


class FilteredSend:
    """Per response that needs it: holds ``http.response.start`` of an HTML page until its first body
    message (see PageStream), and passes everything else through, ``http.response.pathsend`` too."""

    __slots__ = ("core", "consent", "scope", "send", "filter", "start")

    def __init__(self, core: ConsentCore, consent: Consent, scope: Scope, send: Send) -> None:
        self.core = core
        self.consent = consent
        self.scope = scope
        self.send = send
        self.filter: ResponseFilter | None = None
        self.start: Message | None = None

    async def __call__(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            scope = self.scope
            key = self.core.csp_nonce_key
            host, language = host_and_language(scope)
            request = PageRequest(
                scope.get("method", "GET"),
                scope.get("path", "/"),
                scope.get("query_string", b"").decode("latin-1"),
                lambda: scope_nonce(scope, key),
                host,
                language,
            )
            headers = list(message.get("headers") or ())
            self.filter = response = self.core.filter_response(request, self.consent, message["status"], headers, scope.get("root_path", ""))
            message = {**message, "headers": response.headers}
            if response.page is not None:
                self.start = message  # held until the first body message
                return
            await self.send(message)
            return
        page = self.filter.page if self.filter is not None else None
        if page is None:
            await self.send(message)
        elif kind == "http.response.body" and self.start is not None:
            start, self.start = self.start, None
            headers, body = page.first(message.get("body", b""), message.get("more_body", False))
            await self.send({**start, "headers": headers})
            await self.send({**message, "body": body})
        elif kind == "http.response.body":
            await self.send({**message, "body": page.feed(message.get("body", b""), message.get("more_body", False))})
        else:
            # pathsend and anything else: the body is not ours to change; the start goes first, as sent.
            if self.start is not None:
                start, self.start = self.start, None
                await self.send(start)
            await self.send(message)


# Host header values -> host_name of them: a site is asked for under a few names.
HOST_NAMES: dict[bytes, str] = {}


def host_and_language(scope: Scope) -> tuple[str, str]:
    """The host the request asked for (its Host header's name, without port: see host_name) and
    its Accept-Language header, the first of each, in one look at the headers."""
    host = language = None
    for key, value in scope.get("headers") or ():
        if key == b"host":
            if host is None:
                host = value
        elif key == b"accept-language":
            if language is None:
                language = value.decode("latin-1")
    if host is None:
        name = ""
    elif (name := HOST_NAMES.get(host)) is None:  # type: ignore[assignment]
        name = host_name(host.decode("latin-1"))
        if len(HOST_NAMES) < 64:
            HOST_NAMES[host] = name
    return name, language or ""
