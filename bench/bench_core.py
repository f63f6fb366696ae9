"""CPU cost per request of a bare Starlette app and of the same app behind ConsentMiddleware.

Two handlers: /api/items never looks at consent (a pass-through request: target at most 1.15x
bare); /api/me reads it (``consent.allows("analytics")``, which checks the cookie's signature),
once with the same cookie on every request (target at most 1.30x bare) and once with a visitor
the process has not seen on every request (a new signature to check each time). The bare app's
/api/me does the same work with nothing to read.

Drives the ASGI apps directly (no HTTP client, no server), so the middleware's share is not hidden
behind transport costs. Rounds alternate between the apps so that machine noise hits both alike;
the figure is the fastest round's CPU time (time.process_time) per request.

A microsecond or two decides these targets, which is less than what the rest of a shared machine
does to one round. ``--instructions`` counts instead the machine instructions each request takes,
under valgrind's callgrind, which are the same on a busy machine as on an idle one: each app runs
in its own process, and only the requests of a case are counted (callgrind_control zeroes the
counts before them and dumps them after, each window starting after a full collection), not the
start-up or the warm-up. It needs no symbols, so it counts on Debian's stripped python3 too.

    python bench/bench_core.py [--requests 5000] [--rounds 15]
    python bench/bench_core.py --instructions [--requests 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import gc
import os
import platform
import shutil
import subprocess
import sys
import tempfile
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
PYTHON = f"Python {platform.python_version()} ({os.path.realpath(sys.executable)})"  # the ratios depend on its build


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


TARGETS = {"no consent cookie": 1.15, "valid consent cookie": 1.15, "reads consent, cached": 1.30}
APPS = ("bare", "do-nothing", "contract", "consentmw")


def counted_app(name: str) -> Starlette:
    policy = load_policy("default")
    if name == "contract":
        return pass_through_app(ContractFloor, reader=ConsentReader(policy, ConsentCodec([SECRET], policy), "consentmw"))
    return {"bare": bare_app, "do-nothing": pass_through_app, "consentmw": wrapped_app}[name]()


def count_worker(name: str, n: int) -> None:
    """Runs under callgrind, driven by count_instructions over stdin and stdout: after the warm-up,
    the n requests of each case, each window between a line out (the counts are then zeroed) and a
    line out when it is done (the counts are then dumped)."""
    app = counted_app(name)
    policy = load_policy("default")
    cookie = ConsentCodec([SECRET], policy).dumps({"analytics"}, "visitor-counted")
    scopes = {"no consent cookie": scope_for(None), "valid consent cookie": scope_for(cookie), "reads consent, cached": scope_for(cookie, "/api/me")}

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        pass

    def request(scope: dict) -> None:
        # The apps never wait here, so one send() runs a request to its end, with no event loop.
        coroutine = app(dict(scope), receive, send)
        try:
            coroutine.send(None)
        except StopIteration:
            return
        raise RuntimeError(f"{name} waited in a request")

    for scope in scopes.values():
        for _ in range(300):
            request(scope)
    for scope in scopes.values():
        gc.collect()  # a full collection falling inside a window or not does not decide its figure
        print("ready", flush=True)
        sys.stdin.readline()
        for _ in range(n):
            request(scope)
        print("done", flush=True)
        sys.stdin.readline()


def count_app(name: str, requests: int, out: Path) -> dict[str, float]:
    """Instructions per request of each case in one app's process. callgrind_control zeroes the counts
    as a window begins and dumps them as it ends, so this works on a Python without symbols too
    (Debian's python3 is stripped)."""
    command = ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}", sys.executable, __file__, "--count-worker", name, "--requests", str(requests)]
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdin is not None and process.stdout is not None

    def control(*args: str) -> None:
        subprocess.run(["callgrind_control", *args, str(process.pid)], check=True, capture_output=True)

    def step(expected: str) -> None:
        line = process.stdout.readline().strip()
        if line != expected:
            _, err = process.communicate()
            raise SystemExit(f"the {name} app failed under callgrind:\n{err[-2000:]}")

    counts = {}
    try:
        for number, case in enumerate(TARGETS, 1):
            step("ready")
            if number == 1:
                control("--instr=on")
            control("--zero")
            process.stdin.write("go\n")
            process.stdin.flush()
            step("done")
            control("--dump")
            dump = out.with_name(f"{out.name}.{number}")
            for _ in range(600):  # the dump is written as the process next runs
                if dump.exists() and "totals:" in (text := dump.read_text()):
                    break
                time.sleep(0.1)
            else:
                raise SystemExit(f"callgrind wrote no counts for the {name} app")
            totals = next(line for line in text.splitlines() if line.startswith("totals:"))
            counts[case] = int(totals.split()[1]) / requests
            process.stdin.write("next\n")
            process.stdin.flush()
    finally:
        process.stdin.close()
        process.wait()
    return counts


def count_instructions(requests: int) -> None:
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        raise SystemExit("--instructions needs valgrind (apt-get install -y valgrind)")
    with tempfile.TemporaryDirectory() as tmp, concurrent.futures.ThreadPoolExecutor(len(APPS)) as pool:
        runs = {name: pool.submit(count_app, name, requests, Path(tmp) / f"{name}.out") for name in APPS}
        counts = {name: run.result() for name, run in runs.items()}
    print(f"{'case':<24}{'bare instr/req':>15}{'do-nothing':>11}{'contract':>9}{'consentmw':>10}{'ratio':>7}{'floor':>7}{'contract':>9}  target")
    for case, target in TARGETS.items():
        b, f, c, w = (counts[name][case] for name in APPS)
        verdict = ("OK" if w / b <= target else "OVER") + f" (<= {target})"
        print(f"{case:<24}{b:>15,.0f}{f:>11,.0f}{c:>9,.0f}{w:>10,.0f}{w / b:>7.3f}{f / b:>7.3f}{c / b:>9.3f}  {verdict}")
    print(f"machine instructions per request counted by callgrind over {requests} requests per case (the same on a busy machine as on an idle one); {PYTHON}")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--instructions", action="store_true", help="count instructions under callgrind instead of timing")
    parser.add_argument("--count-worker", choices=APPS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.count_worker:
        count_worker(args.count_worker, args.requests)
        return
    if args.instructions:
        count_instructions(args.requests)
        return
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
    print(f"load average {os.getloadavg()[0]:.1f} at the end, on {os.cpu_count()} cores; {PYTHON}")


if __name__ == "__main__":
    asyncio.run(main())
