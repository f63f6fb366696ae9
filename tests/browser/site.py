"""A small site for the browser tests: pages with real tracker snippets, wrapped by ConsentMiddleware."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from consentmw import ConsentMiddleware
from tests.corpus.pages import SNIPPETS

SECRET = "browser-test-secret-0123456789abcdef"
GA_ID = "G-TEST12345"

# The vendors' own snippets, as a site pastes them. Categories in the default preset:
# GA4 gtag, GTM and Naver Analytics are analytics; the Meta and Kakao pixels advertising.
GA4 = f"""<script async src="https://www.googletagmanager.com/gtag/js?id={GA_ID}"></script>
<script>
  window.dataLayer = window.dataLayer || [];
  function gtag(){{dataLayer.push(arguments);}}
  gtag('js', new Date());
  gtag('config', '{GA_ID}');
</script>"""

# The corpus's copies of the vendors' snippets (the noscript parts never load with JavaScript on).
GTM = SNIPPETS["gtm"].text
META_PIXEL = SNIPPETS["meta-pixel"].text

# wcslog.js is loaded without async and the inline call needs it: order matters here.
NAVER = """<script type="text/javascript" src="//wcs.naver.net/wcslog.js"></script>
<script type="text/javascript">
if(!wcs_add) var wcs_add = {};
wcs_add["wa"] = "testnaver123";
if(window.wcs) { wcs_do(); }
</script>"""

KAKAO = """<script type="text/javascript" charset="UTF-8" src="//t1.daumcdn.net/kas/static/kp.js"></script>
<script type="text/javascript">
kakaoPixel('1234567890123456789').pageView();
</script>"""

TRACKERS = "\n".join([GA4, GTM, META_PIXEL, NAVER, KAKAO])

# Tags written for other consent tools, left inert by their authors; consentmw honours them.
OTHER_TOOLS = """<script type="text/plain" data-category="analytics">window.__ran.push("vanilla-cookieconsent")</script>
<script type="text/plain" data-cookieconsent="statistics">window.__ran.push("cookiebot")</script>
<script type="text/plain" class="optanon-category-C0004">window.__ran.push("onetrust")</script>
<script type="text/plain" data-type="text/javascript" data-name="google-analytics">window.__ran.push("klaro")</script>
<script type="text/plain">window.__ran.push("unmarked")</script>"""


def page(title: str, lang: str, body: str, html_attrs: str = "") -> str:
    return f"""<!doctype html>
<html lang="{lang}"{html_attrs}>
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<script>window.__ran = []; window.__pageLoads = (window.__pageLoads || 0) + 1;</script>
{TRACKERS}
</head>
<body>
<header><a href="/">Home</a> <a href="/en">English</a></header>
<main>
<h1>{title}</h1>
{body}
</main>
<footer><a href="#" data-consent-open>{"쿠키 설정 변경" if lang == "ko" else "Change cookie settings"}</a></footer>
</body>
</html>"""


async def home(request: Request) -> HTMLResponse:
    return HTMLResponse(page("소비자 블로그", "ko", "<p>오늘의 글: 쿠키와 개인정보.</p>"))


async def cached(request: Request) -> HTMLResponse:
    # A page the app lets shared caches keep for everyone.
    return HTMLResponse(page("소비자 블로그", "ko", "<p>오늘의 글: 쿠키와 개인정보.</p>"), headers={"cache-control": "public, max-age=60"})


async def english(request: Request) -> HTMLResponse:
    return HTMLResponse(page("A consumer blog", "en", "<p>Today: cookies and privacy.</p>"))


async def other_tools(request: Request) -> HTMLResponse:
    return HTMLResponse(page("Other tools", "en", OTHER_TOOLS))


async def no_lang(request: Request) -> HTMLResponse:
    return HTMLResponse(page("No language", "", "<p>The page does not say its language.</p>"))


async def no_button(request: Request) -> HTMLResponse:
    return HTMLResponse(page("No floating button", "en", "<p>The site turned the floating button off.</p>", ' data-consentmw-button="off"'))


async def pixel(request: Request) -> HTMLResponse:
    # A tracking pixel given as a srcset only (no src), as responsive-image markup writes it.
    img = '<img srcset="https://www.facebook.com/tr?id=1&amp;ev=PageView 1x" width="1" height="1" alt="">'
    return HTMLResponse(page("픽셀", "ko", f"<p>광고 측정 픽셀이 있는 페이지.</p>{img}"))


# Parsed as XML: every tag well-formed, boolean attributes written out, inline code free of < and &.
XHTML_TRACKERS = "\n".join([GA4.replace("<script async ", '<script async="async" '), NAVER, KAKAO])


async def xhtml(request: Request) -> Response:
    body = f"""<?xml version="1.0" encoding="utf-8"?>
<!DOCTYPE html>
<html xmlns="http://www.w3.org/1999/xhtml" lang="ko" xml:lang="ko">
<head>
<meta charset="utf-8"/>
<title>XHTML 블로그</title>
<script>window.__ran = []; window.__pageLoads = (window.__pageLoads || 0) + 1;</script>
{XHTML_TRACKERS}
</head>
<body>
<main><h1>XHTML 블로그</h1><p>application/xhtml+xml로 보내는 페이지.</p></main>
<footer><a href="#" data-consent-open="">쿠키 설정 변경</a></footer>
</body>
</html>"""
    return Response(body, media_type="application/xhtml+xml")


# Categories named after what every plain JavaScript object inherits: none is declared by the policy.
PROTOTYPE_KEYS = ["constructor", "__proto__", "toString", "hasOwnProperty", "valueOf", "isPrototypeOf"]
PROTOTYPE_TAGS = "\n".join(
    f"""<script type="text/plain" data-consentmw-category="{key}" src="https://connect.facebook.net/en_US/fbevents.js"></script>
<script type="text/plain" data-consentmw-category="{key}">window.__ran.push("{key}")</script>
<script type="text/plain" data-category="{key}">window.__ran.push("vanilla {key}")</script>
<img data-consentmw-category="{key}" data-consentmw-src="https://www.facebook.com/tr?id={key}" alt="">"""
    for key in PROTOTYPE_KEYS
) + '\n<script type="text/plain" data-consentmw-category="analytics">window.__ran.push("declared analytics")</script>'


async def prototype_keys(request: Request) -> HTMLResponse:
    return HTMLResponse(page("Prototype keys", "ko", PROTOTYPE_TAGS))


def site_policy() -> dict[str, Any]:
    """The default preset, naming the site's Google Analytics id as a site owner would."""
    policy = json.loads(resources.files("consentmw.core").joinpath("presets/default.json").read_text("utf-8"))
    for category in policy["categories"]:
        for service in category.get("services", ()):
            if service["id"] == "google-analytics":
                service["ids"] = [GA_ID]
    return policy


def make_site(**options: Any) -> Starlette:
    app = Starlette(
        routes=[
            Route("/", home),
            Route("/cached", cached),
            Route("/en", english),
            Route("/other-tools", other_tools),
            Route("/no-lang", no_lang),
            Route("/no-button", no_button),
            Route("/pixel", pixel),
            Route("/xhtml", xhtml),
            Route("/prototype-keys", prototype_keys),
        ]
    )
    options.setdefault("secret_key", SECRET)
    options.setdefault("policy", site_policy())
    # The browser tests all post from 127.0.0.1: the per-client limit would count them as one visitor.
    options.setdefault("rate_limit", None)
    app.add_middleware(ConsentMiddleware, **options)
    return app
