"""CPU cost of the browser guide and opt-out pages, and of browser detection, against a bare page.

The pages are rendered per request (they depend on the User-Agent, the language and the visitor's
consent); this shows what that costs next to a bare Starlette app serving a small HTML page in the
same run. Detection is timed uncached (every User-Agent new) and cached (the common case).

    python bench/bench_pages.py [--requests 2000] [--rounds 7]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

from starlette.applications import Starlette
from starlette.responses import HTMLResponse
from starlette.routing import Route

from consentmw import ConsentMiddleware, browsers
from consentmw.core.store import MemoryStore

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository, for tests/
from tests.asgi_support import http_scope  # noqa: E402

SECRET = "bench-secret-key-0123456789abcdef"
UA = "Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-S921N) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/25.0 Chrome/121.0.0.0 Mobile Safari/537.36"


async def home(request):
    return HTMLResponse("<!doctype html><html lang=ko><title>home</title><h1>home</h1><p>hello</p></html>")


def scope_for(path: str, query: bytes = b"") -> dict:
    headers = [(b"user-agent", UA.encode()), (b"accept", b"text/html"), (b"accept-language", b"ko-KR,ko;q=0.9")]
    return http_scope("GET", path, headers, query=query, host="example.com")


async def per_request(app, scope: dict, n: int) -> float:
    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        pass

    await app(dict(scope), receive, send)  # builds the middleware stack outside the timing
    start = time.process_time()
    for _ in range(n):
        await app(dict(scope), receive, send)
    return (time.process_time() - start) / n


def detection(n: int, cached: bool, salt: int = 0) -> float:
    agents = [UA] * n if cached else [f"{UA} build/{salt}.{i}" for i in range(n)]
    browsers.detect(UA)
    start = time.process_time()
    for agent in agents:
        browsers.detect(agent)
    return (time.process_time() - start) / n


async def main(requests: int, rounds: int) -> None:
    bare = Starlette(routes=[Route("/", home)])
    wrapped = Starlette(routes=[Route("/", home)])
    wrapped.add_middleware(ConsentMiddleware, secret_key=SECRET, store=MemoryStore(), policy="kakao-enterprise")
    cases = {
        "bare page": (bare, scope_for("/")),
        "/_consent/browsers": (wrapped, scope_for("/_consent/browsers")),
        "/_consent/browsers?browser=ie": (wrapped, scope_for("/_consent/browsers", b"browser=ie&lang=en")),
        "/_consent/opt-out": (wrapped, scope_for("/_consent/opt-out")),
    }
    best = {name: min([await per_request(app, scope, requests) for _ in range(rounds)]) for name, (app, scope) in cases.items()}
    base = best["bare page"]
    print(f"{'case':<32} {'us/request':>11} {'x bare':>7}")
    for name, seconds in best.items():
        print(f"{name:<32} {seconds * 1e6:>11.1f} {seconds / base:>7.2f}")
    uncached = min(detection(requests, cached=False, salt=r) for r in range(rounds))
    cached = min(detection(requests, cached=True) for _ in range(rounds))
    print(f"{'detect(), new User-Agent':<32} {uncached * 1e6:>11.1f} {uncached / base:>7.2f}")
    print(f"{'detect(), cached User-Agent':<32} {cached * 1e6:>11.1f} {cached / base:>7.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    asyncio.run(main(args.requests, args.rounds))
