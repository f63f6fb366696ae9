"""Calling ASGI apps directly, without a server: for tests that send any bytes and for bench/."""

from __future__ import annotations

from typing import Any


def http_scope(
    method: str = "GET",
    path: str = "/",
    headers: list[tuple[bytes, bytes]] | tuple = (),
    *,
    query: bytes = b"",
    host: str = "testserver",
    client: tuple[str, int] = ("127.0.0.1", 50000),
) -> dict[str, Any]:
    """An HTTP scope as a server would pass it, its Host header first."""
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode("utf-8", "surrogateescape"),
        "query_string": query,
        "root_path": "",
        "headers": [(b"host", host.encode()), *headers],
        "client": client,
        "server": (host, 80),
    }
