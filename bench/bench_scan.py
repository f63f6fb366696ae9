"""How long `consentmw scan` takes over 20 pages of the demo site, against the same pages without
consentmw (one pass per page instead of three) in the same run. Target: under 60 s for the 20
pages of the demo site on a 2-core machine.

The demo (FastAPI) site has two pages of its own; the bench adds 18 article pages to the same app,
each with the site's Google Analytics and Naver Analytics tags, linking to every other page.
Vendor hosts never leave the machine (--offline).

    python bench/bench_scan.py [--pages 20] [--browser /usr/bin/chromium]
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import HTMLResponse

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository, for examples/ and tests/
os.environ.setdefault("CONSENTMW_SECRET_KEY", "bench-secret-key-0123456789abcdef")
os.environ["CONSENTMW_STORE"] = "memory://"  # the example module builds its app on import

from consentmw.scan.cli import EXIT_CLEAN  # noqa: E402
from consentmw.scan.scanner import ScanOptions, scan  # noqa: E402
from examples.common import analytics_snippet  # noqa: E402
from examples.fastapi_site.app import create_app  # noqa: E402
from tests.scan.site import serve  # noqa: E402

ARTICLES = 18


def article(n: int) -> HTMLResponse:
    links = "".join(f'<li><a href="/articles/{i}">Article {i}</a></li>' for i in range(1, ARTICLES + 1))
    return HTMLResponse(
        f"""<!DOCTYPE html><html lang="ko"><head><meta charset="utf-8"><title>Article {n}</title>{analytics_snippet()}</head>
<body><h1>Article {n}</h1><p>{"Lorem ipsum dolor sit amet. " * 40}</p>
<nav><ul><li><a href="/">Home</a></li><li><a href="/preferences">Preferences</a></li>{links}</ul></nav></body></html>"""
    )


def with_articles(app: FastAPI) -> FastAPI:
    app.add_api_route("/articles/{n}", article, response_class=HTMLResponse)
    return app


def bare_app() -> FastAPI:
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    app.add_api_route("/", lambda: article(0), response_class=HTMLResponse)
    app.add_api_route("/preferences", lambda: article(0), response_class=HTMLResponse)
    return with_articles(app)


def cpu_seconds() -> float:
    """User and system time of this process (the site and the scanner's client) and of its
    children that have ended (Playwright's driver, and through it Chromium)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def timed(app: FastAPI, pages: int, browser: str | None) -> tuple[float, float, int, int, int]:
    with serve(app) as url:
        cpu, started = cpu_seconds(), time.perf_counter()
        report = scan(ScanOptions(url + "articles/1", pages=pages, browser=browser, offline=True))
        elapsed, cpu = time.perf_counter() - started, cpu_seconds() - cpu
    loads = sum(len(p.passes) for p in report.pages)
    return elapsed, cpu, len(report.pages), loads, len(report.violations)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=20)
    parser.add_argument("--browser")
    args = parser.parse_args()
    demo = with_articles(create_app(secret_key=os.environ["CONSENTMW_SECRET_KEY"], store="memory://"))
    load = os.getloadavg()[0]
    bare_s, bare_cpu, bare_pages, bare_loads, _ = timed(bare_app(), args.pages, args.browser)
    demo_s, demo_cpu, demo_pages, demo_loads, violations = timed(demo, args.pages, args.browser)
    load = max(load, os.getloadavg()[0])
    print(f"load average while measuring: up to {load:.1f} on {os.cpu_count()} cores (other work on the machine slows every figure)")
    print(f"without consentmw: {bare_pages} pages, {bare_loads} page loads in {bare_s:.1f} s ({bare_s / bare_loads:.2f} s per load), CPU {bare_cpu:.1f} s")
    print(f"demo site (consentmw): {demo_pages} pages, {demo_loads} page loads (3 passes) in {demo_s:.1f} s ({demo_s / demo_loads:.2f} s per load), CPU {demo_cpu:.1f} s")
    print(f"ratio, per page load: {demo_s / demo_loads / (bare_s / bare_loads):.2f}; whole scan: {demo_s / bare_s:.2f}")
    print(f"CPU time of the demo scan over the machine's {os.cpu_count()} cores: {demo_cpu / (os.cpu_count() or 1):.1f} s (a floor for its wall time on an idle machine)")
    verdict = "met" if demo_s < 60 and demo_pages == args.pages else "NOT met"
    print(f"target: {args.pages} pages of the demo site in under 60 s: {verdict}; violations found: {violations}")
    return EXIT_CLEAN if verdict == "met" else 1


if __name__ == "__main__":
    sys.exit(main())
