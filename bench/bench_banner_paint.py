"""First banner paint in Chromium: the banner reading its texts and the visitor's state from the
page (now) against fetching GET /_consent and GET /_consent/policy first (the banner before
issue 22: its banner.js from git, and the page without the data block), in the same run.

Each visit is a fresh browser context (an undecided visitor, nothing cached) on a page of a
consentmw-wrapped Starlette app under uvicorn; Chromium's network emulation adds the round-trip
time given (0 is the loopback as it is). Measured in the page: from navigation start to the first
animation frame after the banner was put in the document and shown; first contentful paint
(the page's own text) for comparison.

    python bench/bench_banner_paint.py [--visits 15] [--rtt 0 100 300] [--browser /usr/bin/chromium]
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.responses import HTMLResponse
from starlette.routing import Route

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the repository, for tests/

from consentmw import ConsentMiddleware  # noqa: E402
from consentmw.core.store import MemoryStore  # noqa: E402
from consentmw.scan.browser import CHROMIUM_FLAGS  # noqa: E402
from tests.demo_support import serve  # noqa: E402

BEFORE = "9ce2a74"  # main when issue 22 was filed: the banner that fetched its state and texts
DATA_BLOCK = re.compile(rb'<script type="application/json" id="consentmw-data"[^>]*>[^<]*</script>')
ARTICLE = "<p>" + "A paragraph of the article the visitor came to read. " * 12 + "</p>"
PAGE = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>An article</title></head>
<body><h1>An article</h1>{ARTICLE * 6}</body></html>"""

# Set before the page's own scripts: notes when the banner is first in the document and shown.
PROBE = """
window.__banner = null;
new MutationObserver((_, observer) => {
  const banner = document.querySelector(".cmw-banner");
  if (banner && !banner.hidden && banner.isConnected) {
    observer.disconnect();
    requestAnimationFrame(() => requestAnimationFrame(() => (window.__banner = performance.now())));
  }
}).observe(document, { childList: true, subtree: true, attributes: true });
"""


async def article(request: Any) -> HTMLResponse:
    return HTMLResponse(PAGE)


def site() -> Any:
    app = Starlette(routes=[Route("/", article)])
    app.add_middleware(ConsentMiddleware, secret_key="bench-secret-key-0123456789abcdef", store=MemoryStore())
    return app


class Before:
    """The page as consentmw served it before: no data block, and the banner.js of that time (it
    asks GET /_consent and GET /_consent/policy, both still answered the same way)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.banner_js = subprocess.run(["git", "show", f"{BEFORE}:static/banner.js"], cwd=ROOT, capture_output=True, check=True).stdout

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if scope["path"] == "/_consent/banner.js":
            headers = [(b"content-type", b"text/javascript; charset=utf-8"), (b"content-length", str(len(self.banner_js)).encode())]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            return await send({"type": "http.response.body", "body": self.banner_js})
        start: dict[str, Any] = {}
        body = bytearray()

        async def buffered(message: Any) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
                return
            body.extend(message.get("body", b""))
            if not message.get("more_body"):
                out = DATA_BLOCK.sub(b"", bytes(body))
                headers = [(k, v) for k, v in start["headers"] if k.lower() != b"content-length"]
                headers.append((b"content-length", str(len(out)).encode()))
                await send({**start, "headers": headers})
                await send({"type": "http.response.body", "body": out})

        await self.app(scope, receive, buffered)


def visit(browser: Any, url: str, rtt: int) -> tuple[float, float, int]:
    context = browser.new_context(locale="en-US")
    page = context.new_page()
    asked = []
    page.on("request", lambda r: asked.append(r.url) if "/_consent" in r.url and not r.url.split("?")[0].endswith((".js", ".css")) else None)
    cdp = context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Network.emulateNetworkConditions", {"offline": False, "latency": rtt, "downloadThroughput": -1, "uploadThroughput": -1})
    page.add_init_script(PROBE)
    page.goto(url)
    page.wait_for_function("window.__banner !== null", timeout=30000)
    banner = page.evaluate("window.__banner")
    fcp = page.evaluate("(performance.getEntriesByName('first-contentful-paint')[0] || {}).startTime || 0")
    context.close()
    return banner, fcp, len(asked)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--visits", type=int, default=15, help="visits per set-up and round-trip time (default 15)")
    parser.add_argument("--rtt", type=int, nargs="+", default=[0, 100, 300], help="round-trip times in ms (default 0 100 300)")
    parser.add_argument("--browser", default="/usr/bin/chromium")
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    app = site()
    with serve(app) as now_port, serve(Before(app)) as before_port, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=args.browser, args=list(CHROMIUM_FLAGS))
        setups = {"before (2 JSON requests)": f"http://127.0.0.1:{before_port}/", "now (inline data)": f"http://127.0.0.1:{now_port}/"}
        for url in setups.values():
            visit(browser, url, 0)  # warm up: imports, first compile of the page rewriting
        print(f"first banner paint, median of {args.visits} fresh visits (ms from navigation start); FCP for comparison")
        print(f"{'rtt':>5}  {'set-up':<26} {'banner':>8} {'p90':>8} {'FCP':>8} {'JSON requests':>14}")
        for rtt in args.rtt:
            medians = {}
            # Visits alternate between the set-ups, so that the machine's load falls on both alike.
            runs_of: dict[str, list[tuple[float, float, int]]] = {name: [] for name in setups}
            for _ in range(args.visits):
                for name, url in setups.items():
                    runs_of[name].append(visit(browser, url, rtt))
            for name, runs in runs_of.items():
                banners = sorted(r[0] for r in runs)
                medians[name] = statistics.median(banners)
                p90 = banners[int(0.9 * (len(banners) - 1))]
                print(
                    f"{rtt:>5}  {name:<26} {medians[name]:>8.1f} {p90:>8.1f} {statistics.median(r[1] for r in runs):>8.1f} "
                    f"{max(r[2] for r in runs):>14}"
                )
            before, now = medians.values()
            print(f"{rtt:>5}  now / before: {now / before:.2f}x ({before - now:+.1f} ms sooner)")
        browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
