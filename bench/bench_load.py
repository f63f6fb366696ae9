"""Throughput and errors of the FastAPI example site under load, with and without ConsentMiddleware.

Two uvicorn servers run in subprocesses on 127.0.0.1, one worker each, both serving the FastAPI
example's own router (its HTML pages and its JSON endpoint, examples/fastapi_site/app.py) plus its
stylesheet as a static file:

- bare: the same routes with no middleware; the pages' consent dependency is overridden with a
  constant "not decided" Consent, so the handlers do the same work without consentmw reading anything;
- consentmw: the same routes behind ConsentMiddleware (the example's policy, a SQLite consent log in
  a temporary directory).

How it is measured. The client is this process: one asyncio loop, a bounded number of keep-alive
connections (--connections, default 32), each sending pre-built HTTP/1.1 request bytes and reading
the response by its Content-Length (or chunks). No HTTP library on the client side, because the
client and the server share this machine's two cores: the cheaper the client, the more of the
figure is the server's. Each kind of request (HTML page, JSON, static file) is driven alone for a
segment, closed loop (a connection sends its next request when the last answer is in), against one
server and then the other; rounds alternate which server goes first and turn the order of the
kinds, so noise from the rest of the machine, and the servers' own full garbage collections, fall
on all alike. Consent posts go to the consentmw server only (the bare site has no such endpoint),
in a mixed segment where every connection cycles through pages, JSON, static files and a consent
post. The load lasts --seconds in all (default 30), split evenly over the segments.

Besides the example's own small pages, a 50 KB shop page with five tracker snippets is rendered
with Jinja2 on every request (product cards in a loop), for three visitors: undecided, accepted
all and refused all. Visitors who chose come from --visitors distinct consent cookies (each a
consent posted to the server before the load), so a cache keyed by cookie helps no more than it
would on a real site. Targets: accepted all at least 0.90x bare, undecided and refused all at least
0.65x, JSON at least 0.95x (run with --policy default, whose categories cover every tracker: with
the example's policy a visitor who accepted all still has ad trackers made inert).

Printed per kind: requests/s summed over its segments, the server's CPU time per request (from
/proc, so the figure that matters is not hidden by what the client costs), the ratio consentmw/bare
of requests/s, and errors: any status other than the expected one, or a transport error.

Those figures move by a tenth from run to run on a shared machine (a full garbage collection of 30 ms
falls in one segment and not in another). ``--instructions`` counts instead the machine instructions
each server process executes per request of each kind, under valgrind's callgrind, which are the
same on a busy machine as on an idle one: both servers run under it, the counting is switched on
after the warm-up, and each kind's requests are counted alone (callgrind_control zeroes the counts
before them and dumps them after), everything the process does included (uvicorn, h11, the event
loop, the app, consentmw, the garbage collector). Each counted window starts right after a full
collection, so that one falling in the window or not does not decide a kind's figure.

    python bench/bench_load.py [--seconds 30] [--connections 32] [--rounds 3]
    python bench/bench_load.py --instructions [--requests 100] [--connections 4]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = f"Python {platform.python_version()} ({os.path.realpath(sys.executable)})"  # the ratios depend on its build
SECRET = "bench-load-secret-key-0123456789abcdef"
HOST = "127.0.0.1"


# -- the server side (run in a subprocess: python bench/bench_load.py --serve bare|consentmw) -------


def site(wrapped: bool, store: str) -> object:
    os.environ.setdefault("CONSENTMW_SECRET_KEY", SECRET)
    os.environ.setdefault("CONSENTMW_STORE", "memory://")  # for the module-level app the import builds
    sys.path.insert(0, str(ROOT))
    from fastapi import FastAPI
    from starlette.staticfiles import StaticFiles

    from consentmw import ConsentMiddleware
    from consentmw.core.consent import ConsentReader
    from consentmw.core.cookie import ConsentCodec
    from examples.common import SNIPPETS
    from examples.fastapi_site import app as example

    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    app.include_router(example.router)
    app.add_api_route("/shop", shop_route(), include_in_schema=False)
    app.mount("/static", StaticFiles(directory=SNIPPETS), name="static")
    if os.environ.get("CONSENTMW_BENCH_COUNTING"):
        app.add_api_route(GC_PATH, collect, include_in_schema=False)
    if wrapped:
        # --policy: the example's own (which declares no advertising category, so ad trackers stay
        # inert even for a visitor who accepted all) or another, such as "default", which has all.
        from consentmw import load_policy

        policy = load_policy(os.environ["CONSENTMW_BENCH_POLICY"]) if os.environ.get("CONSENTMW_BENCH_POLICY") else example.POLICY
        # The bench posts its visitors' choices from one address, faster than the per-client limit allows.
        app.add_middleware(ConsentMiddleware, secret_key=SECRET, policy=policy, store=store, rate_limit=None)
    else:
        reader = ConsentReader(example.POLICY, ConsentCodec([SECRET], example.POLICY), "consentmw")
        undecided = reader({"headers": []})
        app.dependency_overrides[example.visitor_consent] = lambda: undecided
    return app


def shop_route() -> object:
    """The 50 KB shop page as a Jinja2 template: the corpus page, its product cards in a loop."""
    import random

    from fastapi.responses import HTMLResponse
    from jinja2 import Environment

    from tests.corpus.pages import HERE, NAMES, shop_page

    card = (HERE / "product.html").read_text("utf-8")
    for key in ("id", "name", "was", "now", "rate", "reviews"):
        card = card.replace("{" + key + "}", "{{ p." + key + " }}")
    page = shop_page(SHOP_TRACKERS, 0).replace("</ul>", "{% for p in products %}" + card + "{% endfor %}</ul>", 1)
    template = Environment(autoescape=True).from_string(page)
    rng = random.Random(7)

    def products() -> list[dict[str, object]]:
        out = []
        for i in range(52):
            was = rng.randrange(5, 300) * 1000
            rate = rng.randrange(5, 60)
            out.append({"id": 100200 + i, "name": rng.choice(NAMES), "was": f"{was:,}", "now": f"{was * (100 - rate) // 100:,}", "rate": rate, "reviews": f"{rng.randrange(1, 9000):,}"})
        return out

    async def shop() -> HTMLResponse:
        return HTMLResponse(template.render(products=products()))

    return shop


SHOP_TRACKERS = ["ga4-gtag", "gtm", "meta-pixel", "naver-analytics", "kakao-pixel"]
GC_PATH = "/_bench_gc"  # --instructions only: a full collection before each counted window


async def collect() -> object:
    import gc

    from fastapi.responses import PlainTextResponse

    gc.collect()
    return PlainTextResponse("collected")


def serve(kind: str, store: str) -> None:
    import uvicorn

    # IPPROTO_TCP spelled out: asyncio sets TCP_NODELAY on accepted sockets only when the listening
    # socket says it is TCP, and without it every response written in two parts waits for a
    # delayed ACK (40 ms).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((HOST, 0))
    sock.listen(1024)
    app = site(kind == "consentmw", store)
    print(sock.getsockname()[1], flush=True)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on", backlog=1024)
    uvicorn.Server(config).run(sockets=[sock])


# -- the client side ------------------------------------------------------------------------------


class Server:
    def __init__(self, kind: str, store: str, under: list[str] | None = None) -> None:
        self.kind = kind
        self.process = subprocess.Popen(
            [*(under or []), sys.executable, __file__, "--serve", kind, "--store", store],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL if under else None,
            text=True,
            cwd=ROOT,
        )
        line = self.process.stdout.readline() if self.process.stdout else ""
        if not line.strip().isdigit():
            self.stop()
            raise SystemExit(f"the {kind} server did not start")
        self.port = int(line)

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@dataclass(frozen=True)
class Request:
    kind: str
    raw: bytes
    expected: int


def build(method: str, path: str, port: int, headers: dict[str, str] | None = None, body: bytes = b"") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {HOST}:{port}", "User-Agent: Mozilla/5.0 (X11; Linux x86_64) Chrome/126.0 bench"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    if body or method == "POST":
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def requests_for(port: int, cookies: dict[str, list[str]]) -> dict[str, list[Request]]:
    """Per kind, the requests a connection cycles through: half from visitors who chose (each a
    different one), half not."""

    def chose(i: int, who: str = "some") -> dict[str, str]:
        return {"Cookie": f"consentmw={cookies[who][i % len(cookies[who])]}; prefs_theme=dark; _ga=GA1.1.123.456"}

    html = {"Accept": "text/html"}
    visitors = range(len(cookies["some"]))
    kinds: dict[str, list[Request]] = {
        "html": [
            r
            for i in visitors
            for r in (
                Request("html", build("GET", "/", port, html), 200),
                Request("html", build("GET", "/preferences", port, {**html, **chose(i)}), 200),
                Request("html", build("GET", "/preferences?theme=dark", port, html), 200),
                Request("html", build("GET", "/", port, {**html, **chose(i + 1)}), 200),
            )
        ],
        "json": [
            r
            for i in visitors
            for r in (
                Request("json", build("GET", "/api/consent", port, {"Accept": "application/json"}), 200),
                Request("json", build("GET", "/api/consent", port, {"Accept": "application/json", **chose(i)}), 200),
            )
        ],
        "50 KB undecided": [Request("50 KB undecided", build("GET", "/shop", port, html), 200)],
        "50 KB accepted all": [Request("50 KB accepted all", build("GET", "/shop", port, {**html, **chose(i, "all")}), 200) for i in visitors],
        "50 KB refused all": [Request("50 KB refused all", build("GET", "/shop", port, {**html, **chose(i, "none")}), 200) for i in visitors],
        "static": [
            Request("static", build("GET", "/static/site.css", port, {"Accept": "text/css"}), 200),
            Request("static", build("GET", "/static/site.css", port, {"Accept": "text/css", **chose(0)}), 200),
        ],
    }
    origin = {"Origin": f"http://{HOST}:{port}", "Content-Type": "application/json"}
    kinds["consent post"] = [
        Request("consent post", build("POST", "/_consent", port, origin, json.dumps({"accept": "all"}).encode()), 200),
        Request("consent post", build("POST", "/_consent", port, {**origin, **chose(0)}, b'{"choices": {"analytics": false}}'), 200),
    ]
    return kinds


class HTTPError(Exception):
    pass


async def read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length, chunked = None, False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if chunked:
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    elif length is not None:
        await reader.readexactly(length)
    else:
        raise HTTPError("a response with neither Content-Length nor chunks")
    return status


@dataclass
class Tally:
    done: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    cpu: float = 0.0
    samples: list[str] = field(default_factory=list)

    def add(self, other: Tally) -> None:
        for k, v in other.done.items():
            self.done[k] = self.done.get(k, 0) + v
        for k, v in other.errors.items():
            self.errors[k] = self.errors.get(k, 0) + v
        self.seconds += other.seconds
        self.cpu += other.cpu
        self.samples += other.samples[: 5 - len(self.samples)]


async def connection(port: int, sequence: list[Request], offset: int, until: float, tally: Tally) -> None:
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        for request in itertools.islice(itertools.cycle(sequence), offset, None):
            if time.perf_counter() >= until:
                break
            try:
                writer.write(request.raw)
                status = await read_response(reader)
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, HTTPError, ValueError) as exc:
                tally.errors[request.kind] = tally.errors.get(request.kind, 0) + 1
                tally.samples.append(f"{request.kind}: {type(exc).__name__}: {exc}")
                writer.close()
                reader, writer = await asyncio.open_connection(HOST, port)
                continue
            if status == request.expected:
                tally.done[request.kind] = tally.done.get(request.kind, 0) + 1
            else:
                tally.errors[request.kind] = tally.errors.get(request.kind, 0) + 1
                tally.samples.append(f"{request.kind}: status {status}, expected {request.expected}")
    finally:
        writer.close()


async def segment(server: Server, sequence: list[Request], seconds: float, connections: int) -> Tally:
    tally = Tally()
    cpu = server.cpu_seconds()
    started = time.perf_counter()
    until = started + seconds
    await asyncio.gather(*(connection(server.port, sequence, i, until, tally) for i in range(connections)))
    tally.seconds = time.perf_counter() - started
    tally.cpu = server.cpu_seconds() - cpu
    return tally


async def consent_cookie(port: int, choice: bytes = b'{"accept": "all"}') -> str:
    reader, writer = await asyncio.open_connection(HOST, port)
    writer.write(build("POST", "/_consent", port, {"Origin": f"http://{HOST}:{port}", "Content-Type": "application/json"}, choice))
    head = await reader.readuntil(b"\r\n\r\n")
    writer.close()
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"set-cookie: consentmw="):
            return line.split(b"=", 1)[1].split(b";")[0].decode()
    raise SystemExit("the consentmw server set no consent cookie")


def mixed(kinds: dict[str, list[Request]]) -> list[Request]:
    # Per 8 requests: 3 pages, 2 JSON, 2 static files, 1 consent post.
    h, j, s, p = (itertools.cycle(kinds[k]) for k in ("html", "json", "static", "consent post"))
    return [r for _ in range(4) for r in (next(h), next(j), next(s), next(h), next(p), next(j), next(s), next(h))]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="length of the whole load (default 30)")
    parser.add_argument("--connections", type=int, default=32, help="concurrent keep-alive connections (default 32)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds alternating which server goes first (default 3)")
    parser.add_argument("--visitors", type=int, default=200, help="distinct consent cookies per choice (default 200)")
    parser.add_argument("--policy", default="", help="the consentmw server's policy (a preset name; default: the example's)")
    parser.add_argument("--instructions", action="store_true", help="count each server's instructions per request under callgrind instead of timing")
    parser.add_argument("--requests", type=int, default=100, help="with --instructions: requests counted per kind (default 100)")
    args = parser.parse_args()
    os.environ["CONSENTMW_BENCH_POLICY"] = args.policy
    compared = ("html", "json", "static", "50 KB undecided", "50 KB accepted all", "50 KB refused all")
    if args.instructions:
        if "--connections" not in sys.argv:
            args.connections = 4  # valgrind runs the server some 50 times slower
        if "--visitors" not in sys.argv:
            args.visitors = 50
        await count_instructions(args, compared)
        return
    with tempfile.TemporaryDirectory(prefix="consentmw-bench-") as tmp:
        store = f"sqlite:///{Path(tmp) / 'consent.db'}"
        servers = {"bare": Server("bare", store), "consentmw": Server("consentmw", store)}
        try:
            port = servers["consentmw"].port
            cookies = {
                who: [await consent_cookie(port, choice) for _ in range(args.visitors)]
                for who, choice in (("all", b'{"accept": "all"}'), ("none", b'{"accept": "necessary"}'), ("some", b'{"choices": {"analytics": true}}'))
            }
            plans = {name: requests_for(s.port, cookies) for name, s in servers.items()}
            per_round = len(compared) * 2 + 1
            length = args.seconds / (args.rounds * per_round)
            # Warm both up (imports, first-request caches) outside the measurement.
            for name, s in servers.items():
                for kind in compared:
                    await segment(s, plans[name][kind], 0.2, 4)
            tallies: dict[tuple[str, str], Tally] = {}
            for r in range(args.rounds):
                order = ["bare", "consentmw"] if r % 2 == 0 else ["consentmw", "bare"]
                # The kinds' order turns too: a full garbage collection (30 ms or more in these
                # servers, one every few hundred pages) otherwise falls in the same kinds' segments
                # round after round, and one kind looks dearer than another doing the same work.
                for kind in compared[r % len(compared) :] + compared[: r % len(compared)]:
                    for name in order:
                        tallies.setdefault((name, kind), Tally()).add(await segment(servers[name], plans[name][kind], length, args.connections))
                tallies.setdefault(("consentmw", "mixed"), Tally()).add(
                    await segment(servers["consentmw"], mixed(plans["consentmw"]), length, args.connections)
                )
        finally:
            for s in servers.values():
                s.stop()
    report(tallies, compared, args)


async def send_all(port: int, sequence: list[Request], count: int, connections: int) -> None:
    """`count` requests of the sequence, spread over keep-alive connections; any error stops the bench."""

    async def one(first: int) -> None:
        reader, writer = await asyncio.open_connection(HOST, port)
        try:
            for i in range(first, count, connections):
                request = sequence[i % len(sequence)]
                writer.write(request.raw)
                status = await read_response(reader)
                if status != request.expected:
                    raise SystemExit(f"{request.kind}: status {status}, expected {request.expected}")
        finally:
            writer.close()

    await asyncio.gather(*(one(i) for i in range(connections)))


def callgrind_control(server: Server, *args: str) -> None:
    subprocess.run(["callgrind_control", *args, str(server.process.pid)], check=True, capture_output=True)


async def counted(server: Server, out: Path, sequence: list[Request], count: int, connections: int) -> float:
    """Instructions the server executes per request of the sequence (counting already on)."""
    await send_all(server.port, sequence, 10, connections)
    await send_all(server.port, [Request("gc", build("GET", GC_PATH, server.port), 200)], 1, 1)
    before = set(out.parent.glob(out.name + ".*"))
    callgrind_control(server, "--zero")
    await send_all(server.port, sequence, count, connections)
    callgrind_control(server, "--dump")
    for _ in range(600):  # the dump is written as the server next runs
        new = set(out.parent.glob(out.name + ".*")) - before
        if new:
            break
        await asyncio.sleep(0.1)
    else:
        raise SystemExit(f"callgrind wrote no counts for the {server.kind} server")
    (dump,) = new
    await asyncio.sleep(0.2)
    for line in dump.read_text().splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1]) / count
    raise SystemExit(f"no totals in {dump}")


async def count_instructions(args: argparse.Namespace, compared: tuple[str, ...]) -> None:
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        raise SystemExit("--instructions needs valgrind (apt-get install -y valgrind)")
    os.environ["CONSENTMW_BENCH_COUNTING"] = "1"
    counts: dict[tuple[str, str], float] = {}
    with tempfile.TemporaryDirectory(prefix="consentmw-bench-") as tmp:
        store = f"sqlite:///{Path(tmp) / 'consent.db'}"
        outs = {name: Path(tmp) / f"{name}.out" for name in ("bare", "consentmw")}
        servers = {
            name: Server(name, store, ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}.%p"])
            for name, out in outs.items()
        }
        try:
            port = servers["consentmw"].port
            cookies = {
                who: [await consent_cookie(port, choice) for _ in range(args.visitors)]
                for who, choice in (("all", b'{"accept": "all"}'), ("none", b'{"accept": "necessary"}'), ("some", b'{"choices": {"analytics": true}}'))
            }
            for name, server in servers.items():
                plan = requests_for(server.port, cookies)
                for kind in compared:  # warm-up, not counted
                    await send_all(server.port, plan[kind], 60, args.connections)
                callgrind_control(server, "--instr=on")
                for kind in compared:
                    out = outs[name].with_name(f"{outs[name].name}.{server.process.pid}")
                    counts[(name, kind)] = await counted(server, out, plan[kind], args.requests, args.connections)
        finally:
            for s in servers.values():
                s.stop()
    print(f"machine instructions per request, whole server process, {args.requests} requests per kind over {args.connections} connections; uvicorn, 1 worker each")
    print(f"{'kind':<20}{'bare':>14}{'consentmw':>14}{'consentmw - bare':>18}{'bare/consentmw':>16}")
    for kind in compared:
        b, w = counts[("bare", kind)], counts[("consentmw", kind)]
        print(f"{kind:<20}{b:>14,.0f}{w:>14,.0f}{w - b:>18,.0f}{b / w:>16.3f}")
    print("counted by callgrind (the same on a busy machine as on an idle one); each window starts after a full collection")
    print(f"policy: {args.policy or 'the example site'}; {PYTHON}")


def report(tallies: dict[tuple[str, str], Tally], compared: tuple[str, ...], args: argparse.Namespace) -> None:
    print(f"{args.connections} keep-alive connections, {args.rounds} rounds, {args.seconds:.0f} s of load in all; uvicorn, 1 worker each")
    print(f"{'kind':<16}{'bare req/s':>12}{'consentmw req/s':>17}{'ratio':>8}{'bare CPU µs/req':>17}{'consentmw CPU µs/req':>22}{'errors':>8}")
    errors = 0
    worst_non_html = None
    targets = {"json": 0.95, "50 KB accepted all": 0.90, "50 KB undecided": 0.65, "50 KB refused all": 0.65}
    verdicts = []
    for kind in compared:
        b, w = tallies[("bare", kind)], tallies[("consentmw", kind)]
        nb, nw = b.done.get(kind, 0), w.done.get(kind, 0)
        rb, rw = nb / b.seconds, nw / w.seconds
        err = sum(b.errors.values()) + sum(w.errors.values())
        errors += err
        ratio = rw / rb if rb else 0.0
        if kind in ("json", "static"):
            worst_non_html = ratio if worst_non_html is None else min(worst_non_html, ratio)
        if kind in targets:
            verdicts.append(f"{kind}: {ratio:.3f} (target >= {targets[kind]}) {'OK' if ratio >= targets[kind] else 'UNDER'}")
        print(f"{kind:<16}{rb:>12.0f}{rw:>17.0f}{ratio:>8.3f}{b.cpu / max(nb, 1) * 1e6:>17.0f}{w.cpu / max(nw, 1) * 1e6:>22.0f}{err:>8}")
    m = tallies[("consentmw", "mixed")]
    total = sum(m.done.values())
    err = sum(m.errors.values())
    errors += err
    parts = ", ".join(f"{k} {m.done.get(k, 0) / m.seconds:.0f}" for k in (*compared, "consent post"))
    print(f"{'mixed':<16}{'-':>12}{total / m.seconds:>17.0f}{'':>8}{'':>17}{m.cpu / max(total, 1) * 1e6:>22.0f}{err:>8}")
    print(f"  mixed, consentmw only (the bare site has no consent endpoint), req/s per kind: {parts}")
    for t in tallies.values():
        for sample in t.samples:
            print(f"  error: {sample}")
    print(f"errors: {errors} (target 0): {'OK' if errors == 0 else 'FAILED'}")
    verdict = "OK" if worst_non_html is not None and worst_non_html >= 0.90 else "UNDER"
    print(f"non-HTML throughput, worst consentmw/bare ratio {worst_non_html:.3f} (target >= 0.90): {verdict}")
    for line in verdicts:
        print(line)
    print(f"policy: {args.policy or 'the example site'}; load average {os.getloadavg()[0]:.1f} at the end, on {os.cpu_count()} cores; {PYTHON}")


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--serve":
        serve(sys.argv[2], sys.argv[sys.argv.index("--store") + 1])
    else:
        asyncio.run(main())
