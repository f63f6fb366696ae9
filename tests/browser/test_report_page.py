"""`consentmw log report --html` in Chromium: it renders its charts, logs no error, asks for nothing
beyond the page itself, and fits an A4 page when printed."""

from __future__ import annotations

import asyncio
import concurrent.futures
import sys
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.responses import HTMLResponse
from starlette.routing import Route

from consentmw.cli import main
from consentmw.core.store import open_store
from tests.demo_support import serve
from tests.store_support import make_record

from .conftest import ARTIFACTS

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from bench.bench_report import make_log  # noqa: E402

pytestmark = pytest.mark.browser


def report_page(tmp_path: Path) -> str:
    log = tmp_path / "consent.db"
    make_log(str(log), 3000, days=40)
    # Values an import can bring in unchecked: they must stay text, and fetch nothing.
    hostile = '<img src="https://evil.example/x.png"><script>fetch("https://evil.example/")</script>'

    async def add() -> None:
        store = open_store(f"sqlite:///{log}")
        await store.record(make_record("hostile", method=hostile, policy_version=hostile))
        await store.close()

    asyncio.run(add())
    page = tmp_path / "report.html"
    assert main(["log", "report", "--store", f"sqlite:///{log}", "--html", str(page)]) == 0
    return page.read_text(encoding="utf-8")


def test_the_report_renders_in_chromium_alone_and_prints_on_a4(chromium, tmp_path: Path) -> None:
    # In a thread of its own: Playwright's sync API keeps an event loop running in this one.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        html = pool.submit(report_page, tmp_path).result()
    app = Starlette(routes=[Route("/report.html", lambda request: HTMLResponse(html))])
    with serve(app) as port:
        address = f"http://127.0.0.1:{port}/report.html"
        context = chromium.new_context(viewport={"width": 1100, "height": 900})
        asked: list[str] = []
        problems: list[str] = []

        def route(route) -> None:
            if route.request.url == address:
                route.continue_()
            else:
                asked.append(route.request.url)
                route.abort()

        context.route("**/*", route)
        page = context.new_page()
        page.on("console", lambda m: problems.append(f"{m.type}: {m.text}") if m.type in ("error", "warning") else None)
        page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
        page.on("request", lambda r: None if r.url == address else asked.append(r.url))
        try:
            page.goto(address, wait_until="load")
            page.wait_for_timeout(300)  # anything the page might still start
            assert asked == [] and problems == []
            text = page.inner_text("body")
            assert "What visitors chose" in text and "allowed by" in text
            assert '<img src="https://evil.example/x.png">' in text  # shown as text
            # Every chart is drawn: the category bars, the lines per day, the visitors per day.
            sizes = page.eval_on_selector_all("svg[role=img]", "els => els.map(e => e.getBoundingClientRect().height)")
            assert len(sizes) == 2 and min(sizes) > 100
            assert page.locator("svg[role=img] path").count() == 3  # one line per optional category
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "log-report.png"), full_page=True)

            # On paper: A4 less the page's margins, at 96 dpi. Nothing may stick out to the right.
            page.emulate_media(media="print")
            page.set_viewport_size({"width": 680, "height": 960})
            overflow = page.evaluate(
                "() => [...document.querySelectorAll('main *')].filter(e => e.getBoundingClientRect().right > 681)"
                ".map(e => e.tagName + ' ' + e.textContent.slice(0, 40))"
            )
            assert overflow == [], "\n".join(overflow)
            assert page.evaluate("document.documentElement.scrollWidth") <= 680
            page.pdf(path=str(ARTIFACTS / "log-report.pdf"), format="A4", print_background=True)
            assert asked == [] and problems == []
        finally:
            context.close()
