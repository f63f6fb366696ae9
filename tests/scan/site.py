"""A small shop site with Google Analytics, the Meta pixel and a server-set _ga cookie, served
bare or behind consentmw, for the scanner to audit."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from consentmw import ConsentMiddleware
from consentmw.core.policy import Policy, load_policy
from consentmw.core.store import MemoryStore
from tests.demo_support import serve as serve_port

GA_ID = "G-SCANTEST1"
PIXEL_ID = "123456789012345"
TRACKING = f"""
<script async src="https://www.googletagmanager.com/gtag/js?id={GA_ID}"></script>
<script>
  window.dataLayer = window.dataLayer || [];
  function gtag(){{dataLayer.push(arguments);}}
  gtag('js', new Date());
  gtag('config', '{GA_ID}');
</script>
<script>
!function(f,b,e,v,n,t,s)
{{if(f.fbq)return;n=f.fbq=function(){{n.callMethod?
n.callMethod.apply(n,arguments):n.queue.push(arguments)}};
if(!f._fbq)f._fbq=n;n.push=n;n.loaded=!0;n.version='2.0';
n.queue=[];t=b.createElement(e);t.async=!0;
t.src=v;s=b.getElementsByTagName(e)[0];
s.parentNode.insertBefore(t,s)}}(window, document,'script',
'https://connect.facebook.net/en_US/fbevents.js');
fbq('init', '{PIXEL_ID}');
fbq('track', 'PageView');
</script>
<noscript><img height="1" width="1" style="display:none" src="https://www.facebook.com/tr?id={PIXEL_ID}&ev=PageView&noscript=1"/></noscript>
"""
# What fbevents.js and Hotjar would do if they could load: a first-party cookie written by script,
# a key in localStorage.
SCRIPT_COOKIE = (
    '<script>document.cookie = "_fbp=fb.1.1700000000000.1234567890; path=/; max-age=7776000";'
    ' localStorage.setItem("_hjid", "0f1e2d3c")</script>'
)
# A pixel of a vendor no catalog knows, a CDN and an ad network the host catalog knows.
UNKNOWN_PIXEL = '<img src="https://px.unknown-vendor.example/p.gif?site=shop" alt="" width="1" height="1">'
CDN_AND_CRITEO = (
    '<script src="https://cdnjs.cloudflare.com/ajax/libs/jquery/3.7.1/jquery.min.js"></script>'
    '<script async src="https://static.criteo.net/js/ld/ld.js"></script>'
)
PAGES = {"/": "Shop", "/products": "Products", "/about": "About us"}


def page(request: Request) -> HTMLResponse:
    links = "".join(f'<li><a href="{path}">{title}</a></li>' for path, title in PAGES.items())
    extra = request.app.state.extra.get(request.url.path, "")
    body = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{PAGES[request.url.path]}</title>{TRACKING}</head>
<body><h1>{PAGES[request.url.path]}</h1>{extra}
<ul>{links}<li><a href="https://example.org/elsewhere">elsewhere</a></li></ul></body></html>"""
    response = HTMLResponse(body)
    # What a server-side GA integration sends: the analytics cookie straight from the site.
    response.set_cookie("_ga", "GA1.1.1234567890.1700000000", max_age=2 * 365 * 86400)
    return response


def shop_policy() -> Policy:
    data = copy.deepcopy(load_policy("default").data)
    for category in data["categories"]:
        if category["id"] == "advertising":
            category.setdefault("services", []).append({"id": "meta-pixel", "name": "Meta Pixel", "provider": "Meta Platforms"})
    return Policy(data)


def shop(*, with_consentmw: bool, extra: dict[str, str] | None = None, store: MemoryStore | None = None, **options: Any) -> Any:
    """The shop; ``extra`` adds markup to the body of some pages (path -> HTML); ``store`` its consent
    log; ``options`` more of ConsentMiddleware's."""
    app = Starlette(routes=[Route(path, page) for path in PAGES])
    app.state.extra = extra or {}
    if with_consentmw:
        return ConsentMiddleware(app, secret_key="scan-test-secret-0123456789abcdef", policy=shop_policy(), store=store or MemoryStore(), **options)
    return app


@contextmanager
def serve(app: Any) -> Iterator[str]:
    """``app`` on 127.0.0.1 in a thread; yields its base URL."""
    with serve_port(app) as port:
        yield f"http://127.0.0.1:{port}/"
