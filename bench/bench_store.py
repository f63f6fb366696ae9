"""Consent POSTs per second end to end, in-process, on each consent log.

Drives the ASGI app directly (no HTTP client, no server) with many visitors in flight at once,
each posting a choice to /_consent without a cookie, the way a burst of first visits does. Every
answer must be 200 and every choice must be in the log afterwards. The bare app answers a JSON
POST at the same path without consentmw, for the ratio.

    python bench/bench_store.py [--requests 5000] [--concurrency 100] [--postgres URL]

PostgreSQL is measured when --postgres or CONSENTMW_TEST_POSTGRES_URL names a server; the
benchmark writes into a fresh schema there and drops it afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys
import tempfile
import time
from pathlib import Path
from collections.abc import Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from consentmw import ConsentMiddleware
from consentmw.core.store import open_store

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository, for tests/
from tests.asgi_support import http_scope  # noqa: E402

SECRET = "bench-secret-key-0123456789abcdef"
BODIES = [b'{"accept":"all"}', b'{"accept":"necessary"}', b'{"choices":{"analytics":true}}']


async def bare_consent(request: Request) -> JSONResponse:
    return JSONResponse({"choices": await request.json()})


def bare_app() -> Starlette:
    return Starlette(routes=[Route("/_consent", bare_consent, methods=["POST"])])


def consent_app(store: object) -> Starlette:
    app = Starlette()
    app.add_middleware(ConsentMiddleware, secret_key=SECRET, store=store)
    return app


def scope_for(i: int, body: bytes) -> dict:
    headers = [
        (b"origin", b"http://example.com"),
        (b"referer", b"http://example.com/products/42"),
        (b"user-agent", b"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36"),
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    return http_scope("POST", "/_consent", headers, host="example.com", client=(f"198.51.{i % 250}.{i % 200 + 1}", 50000))


async def post(app: Callable, i: int) -> int:
    body = BODIES[i % len(BODIES)]
    sent = False
    status = 0

    async def receive() -> dict:
        nonlocal sent
        if sent:
            await asyncio.sleep(3600)  # a client that stays connected
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope_for(i, body), receive, send)
    return status


async def run(app: Callable, requests: int, concurrency: int) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process, all threads) for `requests` posts, `concurrency` in flight."""
    counter = iter(range(requests))
    failures: list[int] = []

    async def visitor() -> None:
        for i in counter:
            status = await post(app, i)
            if status != 200:
                failures.append(status)

    wall, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(visitor() for _ in range(concurrency)))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    if failures:
        sys.exit(f"{len(failures)} posts failed, e.g. status {failures[0]}")
    return wall, cpu


async def logged(store: object) -> int:
    return (await store.stats()).records  # type: ignore[attr-defined]


async def measure(apps: dict[str, Callable], requests: int, concurrency: int, rounds: int) -> dict[str, tuple[float, float]]:
    """Best wall and best CPU time per app; rounds alternate between the apps so load hits all alike."""
    best: dict[str, tuple[float, float]] = {}
    for name, app in apps.items():
        await run(app, min(200, requests), concurrency)  # warm up: pool, table, caches
    for _ in range(rounds):
        for name, app in apps.items():
            wall, cpu = await run(app, requests, concurrency)
            old_wall, old_cpu = best.get(name, (wall, cpu))
            best[name] = (min(wall, old_wall), min(cpu, old_cpu))
    return best


async def fresh_schema(base: str) -> tuple[str, Callable]:
    import asyncpg

    schema = f"consentmw_bench_{secrets.token_hex(4)}"
    conn = await asyncpg.connect(base)
    await conn.execute(f"CREATE SCHEMA {schema}")

    async def drop() -> None:
        await conn.execute(f"DROP SCHEMA {schema} CASCADE")
        await conn.close()

    return f"{base}{'&' if '?' in base else '?'}search_path={schema}", drop


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--postgres", default=os.environ.get("CONSENTMW_TEST_POSTGRES_URL"))
    args = parser.parse_args()

    drop = None
    with tempfile.TemporaryDirectory() as folder:
        urls = {"memory://": "memory://", "sqlite (WAL, sync FULL)": f"sqlite:///{folder}/consent.db"}
        if args.postgres:
            urls["postgresql"], drop = await fresh_schema(args.postgres)
        stores = {name: open_store(url) for name, url in urls.items()}
        apps: dict[str, Callable] = {"bare app (no consentmw)": bare_app()}
        apps.update((name, consent_app(store)) for name, store in stores.items())
        try:
            for store in stores.values():
                await store.migrate()  # type: ignore[attr-defined]
            before = {name: await logged(store) for name, store in stores.items()}
            best = await measure(apps, args.requests, args.concurrency, args.rounds)
            written = {name: await logged(store) - before[name] for name, store in stores.items()}
        finally:
            for store in stores.values():
                await store.close()  # type: ignore[attr-defined]
            if drop is not None:
                await drop()

    print(
        f"{args.requests} consent POSTs per round, {args.concurrency} in flight, best of {args.rounds} rounds,"
        f" Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}"
    )
    print(f"{'':<24} {'posts/s':>9} {'vs bare':>8}   {'posts/CPU-s':>11} {'vs bare':>8}   records")
    bare_wall, bare_cpu = best["bare app (no consentmw)"]
    for name, (wall, cpu) in best.items():
        # every round's posts and the warm-up's must be in the log
        expected = args.requests * args.rounds + min(200, args.requests) if name in stores else None
        check = "" if expected is None else f"{written[name]}/{expected}"
        print(
            f"{name:<24} {args.requests / wall:>9,.0f} {bare_wall / wall:>8.1%}"
            f"   {args.requests / cpu:>11,.0f} {bare_cpu / cpu:>8.1%}   {check}"
        )
        if expected is not None and written[name] != expected:
            sys.exit(f"{name}: {expected} posts answered 200 but {written[name]} records were written")
    if not args.postgres:
        print("postgresql: not measured; pass --postgres URL or set CONSENTMW_TEST_POSTGRES_URL")


if __name__ == "__main__":
    asyncio.run(main())
