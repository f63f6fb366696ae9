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

    @property
    def header(self) -> Headers:
        return Headers(raw=self.headers)

    @property
    def query_params(self) -> QueryParams:
        return QueryParams(self.query)


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
