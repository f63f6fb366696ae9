"""The request and response consentmw's own endpoints work with, whatever the server speaks.

The adapters (``consentmw.asgi``, ``consentmw.wsgi``, ``consentmw.django``) build a ``Request`` from
what their framework hands them and send the ``Response`` back; the core never sees ASGI, WSGI or
Django objects.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from starlette.datastructures import Headers, QueryParams


@dataclass(slots=True)
class Request:
    method: str
    path: str  # below the root path: what routing sees
    headers: list[tuple[bytes, bytes]]  # names in lower case, repeated headers kept
    query: bytes = b""
    # At most max_body_size + 1 bytes of a POST's body (more is refused anyway); None when the
    # client went away before sending it all.
    body: bytes | None = b""
    client: str | None = None  # the peer's address, as the server saw it
    scheme: str = "http"
    root_path: str = ""  # where the app is mounted (a Mount, uvicorn --root-path, SCRIPT_NAME)
    native: Any = None  # the adapter's own request (ASGI scope, WSGI environ, Django HttpRequest), for a region= callable

    @property
    def header(self) -> Headers:
        return Headers(raw=self.headers)

    @property
    def query_params(self) -> QueryParams:
        return QueryParams(self.query)

    @property
    def host(self) -> str:
        """The Host header's name in lower case, without port (an IPv6 literal keeps its brackets)."""
        return host_name(self.header.get("host", ""))


def host_name(value: str) -> str:
    value = value.lower()
    return value if value.endswith("]") else value.rpartition(":")[0] if ":" in value else value


@dataclass(slots=True)
class Response:
    status: int
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytes = b""

    def add_header(self, name: str, value: str | bytes) -> None:
        self.headers.append((name.lower().encode("latin-1"), value if isinstance(value, bytes) else value.encode("latin-1")))


def response(body: bytes, *, status: int = 200, media_type: str | None = None, headers: dict[str, str] | None = None) -> Response:
    raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()]
    if media_type is not None:
        raw.append((b"content-type", media_type.encode("latin-1")))
    if status >= 200 and status not in (204, 304):
        raw.append((b"content-length", str(len(body)).encode()))
    return Response(status, raw, body)


def json_response(data: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    # The data may quote what the visitor sent, which JSON lets hold lone surrogates: UTF-8 cannot,
    # so they become U+FFFD instead of failing the answer.
    body = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "replace")
    return response(body, status=status, media_type="application/json", headers=headers)


def html_response(content: str, *, headers: dict[str, str] | None = None) -> Response:
    return response(content.encode("utf-8"), media_type="text/html; charset=utf-8", headers=headers)


def redirect(url: str, *, headers: dict[str, str] | None = None) -> Response:
    """A 303 See Other: after a form post, the browser fetches the target with GET."""
    location = quote(url, safe=":/%#?=@[]!$&'()*+,;")
    return response(b"", status=303, headers={**(headers or {}), "Location": location})


def environ_headers(environ: dict[str, Any]) -> list[tuple[bytes, bytes]]:
    """The request headers of a WSGI environ (or Django's request.META), names in lower case."""
    headers = []
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            name = key[5:]
        elif key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            name = key
        else:
            continue
        if value and isinstance(value, str):  # WSGI servers give CONTENT_LENGTH as "" when there is none
            headers.append((name.replace("_", "-").lower().encode("latin-1"), value.encode("latin-1")))
    if "HTTP_HOST" not in environ and environ.get("SERVER_NAME"):
        # PEP 3333's reconstruction: a client without Host (HTTP/1.0, test clients) is still this site.
        host, port, scheme = environ["SERVER_NAME"], str(environ.get("SERVER_PORT", "")), environ.get("wsgi.url_scheme", "http")
        default = (scheme == "https" and port == "443") or (scheme == "http" and port == "80") or not port
        headers.append((b"host", (host if default else f"{host}:{port}").encode("latin-1")))
    return headers


def request_host(environ: dict[str, Any]) -> str:
    """The host a WSGI environ (or Django's request.META) was asked for, without port: what tells a
    page's own tags from third parties (PageRequest.host)."""
    return host_name(environ.get("HTTP_HOST") or environ.get("SERVER_NAME") or "")


def consent_headers(environ: dict[str, Any], region: tuple[tuple[str, bytes], ...] = ()) -> list[tuple[bytes, bytes]]:
    """The headers a visitor's consent is read from (Consent reads nothing else): the cookie, GPC,
    and the region headers (environ key, header name) the site trusts. Cheaper than environ_headers
    on every request."""
    headers = []
    if cookie := environ.get("HTTP_COOKIE"):
        headers.append((b"cookie", cookie.encode("latin-1")))
    if gpc := environ.get("HTTP_SEC_GPC"):
        headers.append((b"sec-gpc", gpc.encode("latin-1")))
    for key, name in region:
        if (value := environ.get(key)) is not None:
            headers.append((name, value.encode("latin-1", "replace")))
    return headers


def environ_request(environ: dict[str, Any], *, path: str, body: bytes | None, scheme: str, native: Any = None) -> Request:
    query = environ.get("QUERY_STRING", "")
    return Request(
        method=environ.get("REQUEST_METHOD", "GET"),
        path=path,
        headers=environ_headers(environ),
        query=query.encode("latin-1", "replace"),
        body=body,
        client=environ.get("REMOTE_ADDR") or None,
        scheme=scheme,
        root_path=environ.get("SCRIPT_NAME", ""),
        native=environ if native is None else native,
    )
