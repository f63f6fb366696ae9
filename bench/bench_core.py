"""CPU cost per request of a bare Starlette app and of the same app behind ConsentMiddleware.

Two handlers: /api/items never looks at consent (a pass-through request: target at most 1.15x
bare); /api/me reads it (``consent.allows("analytics")``, which checks the cookie's signature),
once with the same cookie on every request (target at most 1.30x bare) and once with a visitor
the process has not seen on every request (a new signature to check each time). The bare app's
/api/me does the same work with nothing to read.

Drives the ASGI apps directly (no HTTP client, no server), so the middleware's share is not hidden
behind transport costs. Rounds alternate between the apps so that machine noise hits both alike;
the figure is the fastest round's CPU time (time.process_time) per request.

    python bench/bench_core.py [--requests 5000] [--rounds 9]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from consentmw import ConsentMiddleware
from consentmw.core.consent import Consent, ConsentReader
from consentmw.core.cookie import ConsentCodec
from consentmw.core.policy import load_policy
from consentmw.core.store import MemoryStore

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository, for tests/
from tests.asgi_support import http_scope  # noqa: E402

SECRET = "bench-secret-key-0123456789abcdef"


async def items(request):
    return JSONResponse({"items": [1, 2, 3], "page": 1})


async def me(request):
    consent = request.scope.get("consent")
    return JSONResponse({"analytics": consent.allows("analytics") if consent is not None else False})


def bare_app() -> Starlette:
    return Starlette(routes=[Route("/api/items", items), Route("/api/me", me)])


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


def scope_for(cookie: str | None, path: str = "/api/items") -> dict:
    headers = [(b"user-agent", b"Mozilla/5.0 bench"), (b"accept", b"application/json")]
    if cookie:
        headers.append((b"cookie", f"theme=dark; consentmw={cookie}; _ga=GA1.1.1".encode()))
    return http_scope("GET", path, headers, host="example.com")


async def run(app, scopes: dict | list[dict], n: int) -> float:
    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        pass

    # A list: a different visitor on each request, never one seen before in this run.
    many = scopes if isinstance(scopes, list) else None
    start = time.process_time()
    for i in range(n):
        await app(dict(many.pop() if many else scopes), receive, send)
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
    policy = load_policy("default")
    contract = pass_through_app(ContractFloor, reader=ConsentReader(policy, ConsentCodec([SECRET], policy), "consentmw"))
    codec = ConsentCodec([SECRET], policy)
    visitors = (args.rounds + 1) * args.requests * 4 + 2000

    def new_visitors() -> list[dict]:
        return [scope_for(codec.dumps({"analytics"}, f"visitor-{i}"), "/api/me") for i in range(visitors)]

    cases = {
        "no consent cookie": (scope_for(None), 1.15),
        "valid consent cookie": (scope_for(cookie), 1.15),
        "reads consent, cached": (scope_for(cookie, "/api/me"), 1.30),
        "reads consent, new": (None, None),
    }
    print(f"{'case':<24}{'bare µs/req':>12}{'do-nothing':>11}{'contract':>9}{'consentmw':>10}{'ratio':>7}{'floor':>7}{'contract':>9}  target")
    verdicts = []
    for name, (scope, target) in cases.items():
        apps = (bare, floor, contract, wrapped)
        fresh = new_visitors() if scope is None else None
        for app in apps:
            await run(app, fresh or scope, 500)
        times: list[list[float]] = [[] for _ in apps]
        for _ in range(args.rounds):
            for i, app in enumerate(apps):
                times[i].append(await run(app, fresh or scope, args.requests))
        # The fastest round is the one least disturbed by the rest of the machine.
        b, f, c, w = (min(t) for t in times)
        verdict = "" if target is None else ("OK" if w / b <= target else "OVER") + f" (<= {target})"
        verdicts.append(verdict)
        print(f"{name:<24}{b * 1e6:>12.1f}{f * 1e6:>11.1f}{c * 1e6:>9.1f}{w * 1e6:>10.1f}{w / b:>7.3f}{f / b:>7.3f}{c / b:>9.3f}  {verdict}")
    print("floor: a pure-ASGI layer that does nothing; contract: a layer that only copies the scope with a")
    print("lazy Consent in it and passes the response through a send wrapper (ratios to bare, same run)")
    print(f"load average {os.getloadavg()[0]:.1f} at the end, on {os.cpu_count()} cores")


if __name__ == "__main__":
    asyncio.run(main())
