"""CPU cost per request of a Django project served the WSGI way, with and without
consentmw.django.ConsentMiddleware in MIDDLEWARE, measured in the same run.

Drives Django's WSGIHandler directly (no HTTP client, no server), so consentmw's share is not
hidden behind transport costs. Rounds alternate between the two handlers so that machine noise
hits both alike; the figure is the fastest round's CPU time (time.process_time) per request.

Two pages: a JSON view (the middleware's fixed cost, target at most 1.10x bare Django) and a
template-rendered HTML page of about 50 KB with GA4 and the Meta pixel (the rewrite's cost, as on
the ASGI path; see bench_rewrite.py for the rewriter alone).

    python bench/bench_django.py [--requests 2000] [--rounds 7]
"""

from __future__ import annotations

import argparse
import io
import sys
import time
import types
from pathlib import Path
from typing import Any

import django
from django.conf import settings

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository, for tests/
from tests.corpus.pages import page_of_size  # noqa: E402

SECRET = "bench-secret-key-0123456789abcdef-0123456789abcdef"
PAGE_TEMPLATE = page_of_size(50_000, ["ga4-gtag", "meta-pixel"]).replace("<h1>", "<h1>{{ title }} ")
COMMON = ["django.middleware.common.CommonMiddleware"]


def configure() -> None:
    urls = types.ModuleType("bench_django_urls")
    sys.modules["bench_django_urls"] = urls
    settings.configure(
        DEBUG=False,
        SECRET_KEY=SECRET,
        ALLOWED_HOSTS=["bench"],
        ROOT_URLCONF="bench_django_urls",
        INSTALLED_APPS=["consentmw.django"],
        MIDDLEWARE=COMMON,
        TEMPLATES=[{"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": False}],
        CONSENTMW={"STORE": "memory://"},
        USE_TZ=True,
    )
    django.setup()
    from django.http import HttpResponse, JsonResponse
    from django.template import engines
    from django.urls import path

    template = engines["django"].from_string(PAGE_TEMPLATE)
    urls.urlpatterns = [  # type: ignore[attr-defined]
        path("api/items", lambda request: JsonResponse({"items": [1, 2, 3], "page": 1})),
        path("page", lambda request: HttpResponse(template.render({"title": "bench"}, request))),
    ]


def handler(middleware: list[str]) -> Any:
    from django.core.handlers.wsgi import WSGIHandler

    settings.MIDDLEWARE = middleware
    wsgi = WSGIHandler()  # builds its middleware chain now, from the settings of the moment
    return wsgi


def environ(path: str) -> dict[str, Any]:
    return {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": path,
        "SCRIPT_NAME": "",
        "QUERY_STRING": "",
        "SERVER_NAME": "bench",
        "SERVER_PORT": "80",
        "HTTP_HOST": "bench",
        "HTTP_ACCEPT": "text/html,application/json",
        "HTTP_COOKIE": "sessionid=abc; theme=dark",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.url_scheme": "http",
    }


def run(app: Any, path: str, requests: int) -> float:
    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        pass

    base = environ(path)
    started = time.process_time()
    for _ in range(requests):
        env = dict(base)
        env["wsgi.input"] = io.BytesIO(b"")
        body = app(env, start_response)
        for _chunk in body:
            pass
        body.close()
    return (time.process_time() - started) / requests * 1e6


def asgi_run(app: Any, requests: int) -> float:
    """The same page from a bare ASGI app, for what consentmw.asgi adds to it (same rewrite?)."""
    import asyncio

    from tests.asgi_support import http_scope

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        pass

    async def go() -> float:
        scope = http_scope("GET", "/page", headers=[(b"host", b"bench"), (b"cookie", b"sessionid=abc; theme=dark")])
        started = time.process_time()
        for _ in range(requests):
            await app(scope, receive, send)
        return (time.process_time() - started) / requests * 1e6

    return asyncio.run(go())


def asgi_page_app(body: bytes) -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/html; charset=utf-8")]})
        await send({"type": "http.response.body", "body": body})

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    configure()
    bare = handler(COMMON)
    consentmw = handler(["consentmw.django.ConsentMiddleware", *COMMON])
    print(f"{'case':<28}{'bare µs/req':>12}{'consentmw':>11}{'ratio':>8}")
    for name, path, requests in (("JSON view", "/api/items", args.requests), ("50 KB template page", "/page", max(args.requests // 10, 50))):
        for app in (bare, consentmw):
            run(app, path, 20)  # warm-up
        best = {"bare": float("inf"), "consentmw": float("inf")}
        for _ in range(args.rounds):
            best["bare"] = min(best["bare"], run(bare, path, requests))
            best["consentmw"] = min(best["consentmw"], run(consentmw, path, requests))
        print(f"{name:<28}{best['bare']:>12.1f}{best['consentmw']:>11.1f}{best['consentmw'] / best['bare']:>8.3f}")
        if path == "/page":
            added_django = best["consentmw"] - best["bare"]
    from consentmw import ConsentMiddleware
    from consentmw.core.store import MemoryStore

    from django.template import engines

    body = engines["django"].from_string(PAGE_TEMPLATE).render({"title": "bench"}).encode()
    bare_asgi = asgi_page_app(body)
    wrapped = ConsentMiddleware(bare_asgi, secret_key=SECRET, store=MemoryStore())
    requests = max(args.requests // 10, 50)
    added_asgi = min(asgi_run(wrapped, requests) - asgi_run(bare_asgi, requests) for _ in range(args.rounds))
    print(f"the 50 KB page's rewrite adds {added_django:.0f} µs under Django WSGI, {added_asgi:.0f} µs under consentmw.asgi")


if __name__ == "__main__":
    main()
