"""A held vendor's calls in scripts of their own (an affiliate's ``ire(...)``, MOBON's ``new EN()``)
wait with the vendor's loader and, once the visitor accepts, run after it in page order, once each,
in Chromium; so does a loader's own ``onload`` attribute (MOBON's ``onload="mobRf()"``). Before that they must not run: they would throw ReferenceError and be lost."""

from __future__ import annotations

import re
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

from .conftest import ELSEWHERE

pytestmark = pytest.mark.browser

ACCEPT_KO = "모두 허용"
PAGE = """<!doctype html>
<html lang="ko"><head><meta charset="utf-8"><title>주문 완료</title>
<script>window.__ran = []; window.addEventListener("error", function (e) { window.__ran.push("error: " + e.message); });</script>
<script>(function(a,b,c,d,e,f,g){e['ire_o']=c;e[c]=e[c]||function(){(e[c].a=e[c].a||[]).push(arguments)};f=d.createElement(b);g=d.getElementsByTagName(b)[0];f.async=1;f.src=a;g.parentNode.insertBefore(f,g);})('https://utt.impactcdn.com/A1234-example.js','script','ire',document,window);</script>
<script>ire('identify', {customerId: 'c-1', customerEmail: ''});</script>
</head><body>
<h1>주문이 완료되었습니다</h1>
<script>ire('trackConversion', 1234, {orderId: 'A-1', currencyCode: 'KRW'});</script>
<script src="https://cdn.megadata.co.kr/js/en_script/3.6/enliple_min3.6.js"></script>
<script>var cn = new EN(); cn.setData("uid", "shop"); cn.setSSL(true); cn.sendConv();</script>
<script>function mobRf() { var rf = new EN(); rf.setData("userid", "shop"); rf.sendRf(); }</script>
<script src="https://cdn.megadata.co.kr/js/en_script/3.6/enliple_min3.6.js" defer="defer" onload="mobRf()"></script>
<script>window.__ran.push("page script");</script>
</body></html>
"""
# What the vendors' scripts do when they load, reduced to leaving marks.
STUBS = {
    "utt.impactcdn.com": "(window.ire.a || []).forEach(function (a) { __ran.push('ire ' + a[0]); });"
    "window.ire = function () { __ran.push('ire ' + arguments[0]); };",
    "cdn.megadata.co.kr": "window.EN = function () { this.setData = function () {}; this.setSSL = function () {};"
    "this.sendConv = function () { __ran.push('EN sendConv'); }; this.sendRf = function () { __ran.push('EN sendRf'); }; };",
}


@pytest.fixture(scope="module")
def shop() -> Iterator[str]:
    async def done(request: Request) -> HTMLResponse:
        return HTMLResponse(PAGE)

    app = Starlette(routes=[Route("/order/done", done)])
    app.add_middleware(ConsentMiddleware, secret_key=SECRET, store=MemoryStore())
    with serve(app) as port:
        yield f"http://127.0.0.1:{port}"


def test_held_vendor_calls_wait_for_consent_then_run_after_their_loader_once_in_order(chromium, shop: str) -> None:
    requested: list[str] = []
    errors: list[str] = []
    context = chromium.new_context(base_url=shop, locale="ko-KR")

    def vendor(route) -> None:
        host = re.match(r"^\w+://([^/:]+)", route.request.url).group(1)
        requested.append(host)
        route.fulfill(status=200, content_type="text/javascript", body=STUBS.get(host, ""))

    try:
        context.route(ELSEWHERE, vendor)
        page = context.new_page()
        page.on("pageerror", lambda e: errors.append(str(e)))
        served = page.goto("/order/done", wait_until="load").text()
        page.wait_for_timeout(300)
        # Every vendor script is inert: the calls as well as the loaders.
        assert served.count('type="text/plain"') == 7
        assert page.evaluate("window.__ran.slice()") == ["page script"]
        assert requested == [] and errors == []

        page.get_by_role("button", name=ACCEPT_KO).click()
        page.wait_for_function("['ire trackConversion', 'EN sendConv', 'EN sendRf'].every(m => window.__ran.includes(m))", timeout=5000)
        page.wait_for_timeout(500)  # nothing runs a second time
        ran = page.evaluate("window.__ran.slice()")
        assert [m for m in ran if m.startswith("ire ")] == ["ire identify", "ire trackConversion"]
        assert ran.count("EN sendConv") == 1 and ran[0] == "page script"
        # The loader's own onload attribute (MOBON's retargeting call) runs once it has loaded.
        assert ran.count("EN sendRf") == 1
        assert errors == [] and not [m for m in ran if m.startswith("error")]
        assert set(requested) == {"cdn.megadata.co.kr", "utt.impactcdn.com"}
    finally:
        context.close()
