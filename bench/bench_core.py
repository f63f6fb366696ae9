"""CPU cost per request of a bare Starlette app and of the same app behind ConsentMiddleware.

Drives the ASGI apps directly (no HTTP client, no server), so the middleware's share is not hidden
behind transport costs. Rounds alternate between the apps so that machine noise hits both alike;
the figure is the fastest round's CPU time (time.process_time) per request.

    python bench/bench_core.py [--requests 5000] [--rounds 9]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from consentmw import ConsentMiddleware
from consentmw.core.consent import Consent
from consentmw.core.store import MemoryStore

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository, for tests/
from tests.asgi_support import http_scope  # noqa: E402

SECRET = "bench-secret-key-0123456789abcdef"


async def items(request):
    return JSONResponse({"items": [1, 2, 3], "page": 1})


def bare_app() -> Starlette:
    return Starlette(routes=[Route("/api/items", items)])


class PassThrough:
    """The floor: a pure-ASGI middleware that does nothing at all."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        await self.app(scope, receive, send)


class ContractFloor:
    """What the contract alone costs on every request, done as cheaply as consentmw does it: a copied
    scope holding a lazy Consent, and a send wrapper the response goes through (one type check per
    message, no look at the headers). Whatever consentmw costs above this is its header check."""

    def __init__(self, app, reader):
        self.app = app
        self.reader = reader

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        consent = object.__new__(Consent)
        consent._reader = self.reader
        consent._headers = scope["headers"]
        consent._resolved = False
        app_scope = scope.copy()
        app_scope["consent"] = consent
        started = False

        def send_wrapper(message):
            nonlocal started
            if not started and message["type"] == "http.response.start":
                started = True
            return send(message)

        await self.app(app_scope, receive, send_wrapper)


def pass_through_app(middleware=PassThrough, **options) -> Starlette:
    app = bare_app()
    app.add_middleware(middleware, **options)
    return app


def wrapped_app() -> Starlette:
    app = bare_app()
    app.add_middleware(ConsentMiddleware, secret_key=SECRET, store=MemoryStore())
    return app


def scope_for(cookie: str | None) -> dict:
    headers = [(b"user-agent", b"Mozilla/5.0 bench"), (b"accept", b"application/json")]
    if cookie:
        headers.append((b"cookie", f"theme=dark; consentmw={cookie}; _ga=GA1.1.1".encode()))
    return http_scope("GET", "/api/items", headers, host="example.com")


async def run(app, scope: dict, n: int) -> float:
    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        pass

    start = time.process_time()
    for _ in range(n):
        await app(dict(scope), receive, send)
    return (time.process_time() - start) / n


async def consent_cookie(app) -> str:
    import httpx

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://example.com") as client:
        r = await client.post("/_consent", json={"choices": {"analytics": True}}, headers={"origin": "http://example.com"})
        return r.cookies["consentmw"]


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    bare, floor, wrapped = bare_app(), pass_through_app(), wrapped_app()
    cookie = await consent_cookie(wrapped)
    contract = pass_through_app(ContractFloor, reader=None)
    cases = {"no consent cookie": scope_for(None), "valid consent cookie": scope_for(cookie)}
    print(f"{'case':<22}{'bare µs/req':>12}{'do-nothing':>11}{'contract':>9}{'consentmw':>10}{'ratio':>7}{'floor':>7}{'contract':>9}")
    worst = 0.0
    for name, scope in cases.items():
        apps = (bare, floor, contract, wrapped)
        for app in apps:
            await run(app, scope, 500)
        times: list[list[float]] = [[] for _ in apps]
        for _ in range(args.rounds):
            for i, app in enumerate(apps):
                times[i].append(await run(app, scope, args.requests))
        # The fastest round is the one least disturbed by the rest of the machine.
        b, f, c, w = (min(t) for t in times)
        worst = max(worst, w / b)
        print(f"{name:<22}{b * 1e6:>12.1f}{f * 1e6:>11.1f}{c * 1e6:>9.1f}{w * 1e6:>10.1f}{w / b:>7.3f}{f / b:>7.3f}{c / b:>9.3f}")
    print(f"worst ratio {worst:.3f} (target <= 1.10): {'OK' if worst <= 1.10 else 'OVER'}")
    print("floor: a pure-ASGI layer that does nothing; contract: a layer that only copies the scope with a")
    print("lazy Consent in it and passes the response through a send wrapper (ratios to bare, same run)")


if __name__ == "__main__":
    asyncio.run(main())
