"""The vendor fixtures and the false-positive page in a real Chromium: what the browser requests
before and after consent. Third-party requests are routed by Playwright, recorded and answered
with empty bodies (there is no internet here)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from consentmw import ConsentMiddleware
from consentmw.core.store import MemoryStore
from tests.conftest import SECRET
from tests.demo_support import serve
from tests.corpus.vendors import VENDOR_HOSTS, services, vendor_page

from .conftest import visitor

VENDORS = vendor_page(services())
FALSE_POSITIVES = (Path(__file__).parent.parent / "corpus" / "false-positives.html").read_text("utf-8")
# Every address the false-positive page loads before any choice.
NEEDED = {
    "fonts.googleapis.com",
    "code.jquery.com",
    "cdnjs.cloudflare.com",
    "cdn.jsdelivr.net",
    "www.google.com",
    "js.stripe.com",
    "js.tosspayments.com",
    "cdn.iamport.kr",
    "cdn.portone.io",
    "t1.kakaocdn.net",
    "dapi.kakao.com",
    "oapi.map.naver.com",
    "t1.daumcdn.net",
    "stdpay.inicis.com",
    "pay.kcp.co.kr",
    "pay.nicepay.co.kr",
    "nsp.pay.naver.com",
    "xpay.uplus.co.kr",
    "js.hcaptcha.com",
    "challenges.cloudflare.com",
    "www.youtube.com",
}

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def vendor_site() -> Iterator[str]:
    async def vendors(request: Request) -> HTMLResponse:
        return HTMLResponse(VENDORS)

    async def checkout(request: Request) -> HTMLResponse:
        return HTMLResponse(FALSE_POSITIVES)

    app = Starlette(routes=[Route("/", vendors), Route("/checkout", checkout)])
    app.add_middleware(ConsentMiddleware, secret_key=SECRET, store=MemoryStore())
    with serve(app) as port:
        yield f"http://127.0.0.1:{port}"


def visit(browser, site: str, path: str, choice: dict | None) -> tuple[set[str], str]:
    """Third-party hosts the browser asked for while loading the page, and the page's HTML as served."""
    hosts: set[str] = set()
    with visitor(browser, site, choice, hosts) as context:
        page = context.new_page()
        response = page.goto(path, wait_until="load")
        page.wait_for_timeout(300)  # loaders that add a script after load
        served = response.text()
    return hosts, served


def test_no_vendor_service_is_requested_before_consent(chromium, vendor_site: str) -> None:
    assert visit(chromium, vendor_site, "/", None)[0] == set()


def test_accepting_all_requests_every_vendor(chromium, vendor_site: str) -> None:
    assert visit(chromium, vendor_site, "/", {"accept": "all"})[0] == set().union(*VENDOR_HOSTS.values())


@pytest.mark.parametrize("choice", [None, {"accept": "necessary"}, {"accept": "all"}], ids=["undecided", "refused", "accepted"])
def test_false_positive_page_is_unchanged_and_loads_everything(chromium, vendor_site: str, choice: dict | None) -> None:
    hosts, served = visit(chromium, vendor_site, "/checkout", choice)
    assert hosts == NEEDED
    # Byte for byte what the app sent, apart from what consentmw adds on purpose to every page.
    added = re.compile(
        r'<script[^>]*>[^<]*gtag[^<]*</script>|<link[^>]*/_consent/[^>]*>|<script[^>]*/_consent/[^>]*></script>|<noscript>.*?</noscript>'
        r'|<script type="application/json" id="consentmw-data">[^<]*</script>',
        re.S,
    )
    assert added.sub("", served) == FALSE_POSITIVES
