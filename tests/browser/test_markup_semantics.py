"""Other consent tools' markup in Chromium, with the banner: vanilla-cookieconsent's "!" scripts
run when their category is refused and never while it is allowed; Cookiebot's "ignore" runs for
everyone; each tool's category names follow the visitor's choice."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from consentmw import ConsentMiddleware
from consentmw.core.store import MemoryStore
from tests.conftest import SECRET
from tests.demo_support import serve

from .conftest import visitor

pytestmark = pytest.mark.browser

MARKS = {
    # mark: the categories that must be allowed for it to run ("!x": x refused, after a choice)
    "vanilla-analytics": '<script type="text/plain" data-category="analytics" data-service="Google Analytics">__ran.push("vanilla-analytics")</script>',
    "vanilla-not-ga": '<script type="text/plain" data-category="analytics" data-service="!Google Analytics">__ran.push("vanilla-not-ga")</script>',
    "vanilla-not-analytics": '<script type="text/plain" data-category="!analytics">__ran.push("vanilla-not-analytics")</script>',
    "vanilla-marketing": '<script type="text/plain" data-category="marketing">__ran.push("vanilla-marketing")</script>',
    "vanilla-functionality": '<script type="text/plain" data-category="functionality">__ran.push("vanilla-functionality")</script>',
    "cookiebot-statistics": '<script type="text/plain" data-cookieconsent="statistics">__ran.push("cookiebot-statistics")</script>',
    "cookiebot-marketing": '<script type="text/plain" data-cookieconsent="marketing">__ran.push("cookiebot-marketing")</script>',
    "cookiebot-preferences": '<script type="text/plain" data-cookieconsent="preferences">__ran.push("cookiebot-preferences")</script>',
    "cookiebot-ignore": '<script data-cookieconsent="ignore">__ran.push("cookiebot-ignore")</script>',
    "onetrust-C0002": '<script type="text/plain" class="optanon-category-C0002">__ran.push("onetrust-C0002")</script>',
    "onetrust-C0004": '<script type="text/plain" class="optanon-category-C0004">__ran.push("onetrust-C0004")</script>',
    "onetrust-C0005": '<script type="text/plain" class="optanon-category-C0005">__ran.push("onetrust-C0005")</script>',
    "klaro-analytics": '<script type="text/plain" data-type="text/javascript" data-name="googleAnalytics">__ran.push("klaro-analytics")</script>',
}
IGNORED_TAG = '<script data-cookieconsent="ignore" src="https://www.googletagmanager.com/gtag/js?id=G-7QX2LCE5N1"></script>'
PAGE = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>markup</title><script>window.__ran = [];</script>{IGNORED_TAG}</head>
<body>{"".join(MARKS.values())}</body></html>"""

ANALYTICS = {"vanilla-analytics", "cookiebot-statistics", "onetrust-C0002", "klaro-analytics"}
ADVERTISING = {"vanilla-marketing", "cookiebot-marketing", "onetrust-C0004", "onetrust-C0005"}
PERSONALISATION = {"vanilla-functionality", "cookiebot-preferences"}
ON_ANALYTICS_REFUSED = {"vanilla-not-ga", "vanilla-not-analytics"}


@pytest.fixture(scope="module")
def markup_site() -> Iterator[str]:
    async def home(request: Request) -> HTMLResponse:
        return HTMLResponse(PAGE)

    app = Starlette(routes=[Route("/", home)])
    app.add_middleware(ConsentMiddleware, secret_key=SECRET, store=MemoryStore())
    with serve(app) as port:
        yield f"http://127.0.0.1:{port}"


def visit(browser, site: str, choice: dict | None, expected: set[str]) -> tuple[set[str], set[str]]:
    """What ran on the page once the banner has applied the choice, and the third-party hosts asked for."""
    hosts: set[str] = set()
    with visitor(browser, site, choice, hosts) as context:
        page = context.new_page()
        page.goto("/", wait_until="load")
        page.evaluate("() => window.consentmw.ready")
        page.wait_for_function(f"() => {sorted(expected)!r}.every((m) => window.__ran.includes(m))")
        page.wait_for_load_state("networkidle")
        ran = set(page.evaluate("() => window.__ran"))
    return ran, hosts


def test_before_a_choice_only_the_sites_own_runs(chromium, markup_site: str) -> None:
    assert visit(chromium, markup_site, None, {"cookiebot-ignore"}) == ({"cookiebot-ignore"}, {"www.googletagmanager.com"})


def test_refusing_runs_the_scripts_written_for_refusal(chromium, markup_site: str) -> None:
    expected = {"cookiebot-ignore"} | ON_ANALYTICS_REFUSED
    assert visit(chromium, markup_site, {"accept": "necessary"}, expected)[0] == expected


def test_allowing_analytics_runs_every_tools_analytics_and_not_the_refusal_scripts(chromium, markup_site: str) -> None:
    expected = {"cookiebot-ignore"} | ANALYTICS
    assert visit(chromium, markup_site, {"choices": {"analytics": True}}, expected)[0] == expected


def test_accepting_all_runs_every_category_and_no_refusal_script(chromium, markup_site: str) -> None:
    expected = {"cookiebot-ignore"} | ANALYTICS | ADVERTISING | PERSONALISATION
    assert visit(chromium, markup_site, {"accept": "all"}, expected)[0] == expected
