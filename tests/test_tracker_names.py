"""Every way a page or its headers name a tracker that Chromium then fetches (each case checked in
Chromium by tests/browser/test_what_browsers_fetch.py): speculation rules, event handlers,
javascript: and data: URLs, <a ping>, Link and Speculation-Rules headers. Each is inert for a
visitor who has not allowed its category, on every adapter, and as written for one who has."""

from __future__ import annotations

import base64
import html.parser
import urllib.request
from urllib.parse import urlencode

import httpx
import pytest

from consentmw.core.store import MemoryStore
from tests.adapters import ADAPTERS, client_for
from tests.conftest import SECRET
from tests.test_markup import EVERYTHING, NOBODY, REWRITER, rewrite

pytestmark = pytest.mark.filterwarnings("ignore:StreamingHttpResponse must consume synchronous iterators")

GTAG = "https://www.googletagmanager.com/gtag/js?id=G-7QX2LCE5N1"
COLLECT = "https://www.google-analytics.com/g/collect?v=2&tid=G-7QX2LCE5N1&en=page_view"
PIXEL = "https://www.facebook.com/tr?id=402918374651238&ev=PageView"

# name -> (markup, what the browser would fetch from it, the markup that carries it once inert).
MARKUP = {
    "speculation rules prefetch": (
        f'<script type="speculationrules">{{"prefetch":[{{"source":"list","urls":["{COLLECT}"]}}]}}</script>',
        'data-consentmw-type="speculationrules" type="text/plain" data-consentmw-category="analytics"',
    ),
    "speculation rules prerender, eager": (
        f'<script type="speculationrules">{{"prerender":[{{"source":"list","urls":["{COLLECT}"],"eagerness":"immediate"}}]}}</script>',
        'type="text/plain"',
    ),
    "speculation rules document pattern": (
        '<script type="speculationrules">{"prefetch":[{"source":"document","where":{"href_matches":"https://*.google-analytics.com/*"},"eagerness":"immediate"}]}</script>'
        f'<a href="{COLLECT}">report</a>',
        'type="text/plain"',
    ),
    "onerror handler": (f"<img src=/missing.png onerror=\"fetch('{COLLECT}')\">", "data-consentmw-onerror="),
    "ontoggle handler on an element that loads nothing": (f"<details open ontoggle=\"fetch('{COLLECT}')\"><summary>s</summary></details>", "data-consentmw-ontoggle="),
    "onload handler with a beacon": (f"<body onload=\"navigator.sendBeacon('{COLLECT}')\">", "data-consentmw-onload="),
    "handler in single quotes": (f"<img src=/missing.png onerror='fetch(\"{COLLECT}\")'>", "data-consentmw-onerror="),
    "handler with character references": (f'<img src=/x.png ONERROR="new Image().src=&apos;{PIXEL}&apos;">', "data-consentmw-onerror="),
    "javascript: iframe": (f"<iframe src=\"javascript:fetch('{COLLECT}')\"></iframe>", 'data-consentmw-src="javascript:'),
    "javascript: iframe with data- attributes": (f"<iframe class=\"embed\" data-id=\"3\" src=\"javascript:fetch('{COLLECT}')\"></iframe>", 'data-consentmw-src="javascript:'),
    "javascript: with a tab in the scheme": (f'<iframe src="java&#x09;script:fetch(%27{COLLECT}%27)"></iframe>', 'data-consentmw-src="java'),
    "data: script": (f"<script src=\"data:text/javascript,fetch('{COLLECT}')\"></script>", 'data-consentmw-src="data:'),
    "data: iframe": (f'<iframe src="data:text/html,<script src={GTAG}></script>"></iframe>', 'data-consentmw-src="data:'),
    "data: iframe in base64": (
        f'<iframe src="data:text/html;base64,{base64.b64encode(f"<script src={GTAG}></script>".encode()).decode()}"></iframe>',
        'data-consentmw-src="data:',
    ),
    "a ping": (f'<a href="/next" ping="/own {COLLECT}">next</a>', "data-consentmw-ping="),
    # Where an attribute name may start without a space before it, and "on=" and "ping=" that are
    # text or inside a value before the real one.
    "handler right after a quoted value": (f"<img src=/missing.png alt=\"x\"onerror=\"fetch('{COLLECT}')\">", "data-consentmw-onerror="),
    "handler after a slash, in capitals, spaces around =": (f"<IMG SRC=\"/missing.png\"/ONERROR = \"fetch('{COLLECT}')\">", "data-consentmw-onerror"),
    "a ping after on= and ping= in text and in values": (
        f'<p>lights on=off, ping= pong</p><p title=" onclick=1 ping=2">t</p><a href="/next" ping = "{COLLECT}">next</a>',
        "data-consentmw-ping",
    ),
    "iframe srcdoc": (f'<iframe srcdoc="<script src={GTAG}></script>"></iframe>', "data-consentmw-srcdoc="),
    "iframe srcdoc with character references": (f'<iframe srcdoc="&lt;img src=&quot;{COLLECT}&quot;&gt;"></iframe>', "data-consentmw-srcdoc="),
    "embed src": (f'<embed src="{COLLECT}">', 'data-consentmw-src="'),
    "object data": (f'<object data="{COLLECT}"></object>', 'data-consentmw-data="'),
    "video poster": (f'<video poster="{COLLECT}" controls></video>', 'data-consentmw-poster="'),
    "input image": (f'<input type="image" src="{COLLECT}" alt="go">', 'data-consentmw-src="'),
    # A second <body> tag adds its attributes to the body element.
    "body background": (f'<body background="{COLLECT}">', 'data-consentmw-background="'),
}


def page(body: str) -> str:
    return f"<!doctype html><html><head><title>t</title></head><body><p>x</p>{body}</body></html>"


TRACKER_HOSTS = ("google-analytics.com", "googletagmanager.com/gtag", "facebook.com/tr")


class Fetches(html.parser.HTMLParser):
    """Whether a tracker's address is where a browser fetches or runs it: a src, a ping, an event
    handler, the code of a script or a speculation rule set that runs (not text/plain)."""

    def __init__(self) -> None:
        super().__init__()
        self.live = False
        self.in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value and value.startswith("data:"):
                value += urllib.request.urlopen(value).read().decode("utf-8", "replace")  # the standard library reads data: URLs
            if (name in ("src", "ping", "srcdoc", "data", "poster", "background") or name.startswith("on")) and value and any(h in value for h in TRACKER_HOSTS):
                self.live = True
        kind = dict(attrs).get("type") or ""
        self.in_script = tag == "script" and kind in ("", "text/javascript", "module", "speculationrules")

    def handle_endtag(self, tag: str) -> None:
        self.in_script = False

    def handle_data(self, data: str) -> None:
        if self.in_script and any(h in data for h in TRACKER_HOSTS):
            self.live = True


def live(markup: str) -> bool:
    parser = Fetches()
    parser.feed(markup)
    return parser.live


@pytest.mark.parametrize("chunk", [0, 1, 7])
@pytest.mark.parametrize(("markup", "inert"), MARKUP.values(), ids=MARKUP.keys())
def test_a_tracker_named_anywhere_in_markup_is_inert_until_allowed(markup: str, inert: str, chunk: int) -> None:
    assert live(page(markup))
    out = rewrite(page(markup), chunk=chunk)
    assert inert in out and not live(out), out
    assert rewrite(page(markup), EVERYTHING, chunk=chunk) == page(markup)


@pytest.mark.parametrize(("markup", "inert"), MARKUP.values(), ids=MARKUP.keys())
def test_a_tracker_named_in_a_later_chunk_than_the_text_before_it_is_inert(markup: str, inert: str) -> None:
    # The rewriter looks ahead for handlers and pings in what it was fed: a chunk that has none
    # says nothing about the next one.
    whole = page(markup)
    cut = whole.index(markup)
    stream = REWRITER.stream(NOBODY)
    out = (stream.feed(whole[:cut].encode()) + stream.feed(whole[cut:].encode()) + stream.close()).decode()
    assert inert in out and not live(out), out


OWN = [
    "<img src=/own.png onerror=\"this.src='/fallback.png'\">",
    '<a href="/x" ping="/ping">x</a>',
    "<button onclick=\"fetch('/api/cart')\">add</button>",
    '<iframe src="javascript:void(0)"></iframe>',
    '<script src="data:text/javascript,console.log(1)"></script>',
    '<script type="speculationrules">{"prefetch":[{"source":"list","urls":["/next"]}]}</script>',
    "<div one=1 only online=yes>text</div>",
    '<iframe srcdoc="<p>Hello &amp; welcome</p><img src=/own.png>"></iframe>',
    '<video src="/own.mp4" poster="/own.jpg"></video><object data="/own.svg"></object><embed src="/own.pdf">',
    '<input type="image" src="https://img.shop.example/go.png"><input name="q" value="src">',
]


@pytest.mark.parametrize("markup", OWN)
def test_the_sites_own_handlers_pings_and_urls_are_left_alone(markup: str) -> None:
    assert rewrite(page(markup)) == page(markup)


def headers_page(site: httpx.Client, headers: list[tuple[str, str]], body: str | None = None) -> httpx.Response:
    query = [("h", f"{k}:{v}") for k, v in headers] + ([("body", body)] if body is not None else [])
    return site.get(f"/headers?{urlencode(query)}")


LINKS = f'</app.js>; rel=preload; as=script, <{GTAG}>; rel=preload; as=script, <https://www.google-analytics.com>; rel=preconnect, <https://fonts.example>; rel="preconnect"'


# Chromium preloads a Link header's script for whatever document it shows (checked in
# tests/browser/test_what_browsers_fetch.py): a JSON or image address opened in a tab, a
# compressed page consentmw does not rewrite, as much as an HTML page.
DOCUMENT_TYPES = [
    [("Content-Type", "text/html; charset=utf-8")],
    [("Content-Type", "application/json")],
    [("Content-Type", "image/svg+xml")],
    # "compress": a coding the test client leaves alone, as it would leave gzip it could not decode here
    [("Content-Type", "text/html"), ("Content-Encoding", "compress")],
]


@pytest.mark.parametrize("document", DOCUMENT_TYPES, ids=["html", "json", "svg", "compressed html"])
@pytest.mark.parametrize("adapter", ADAPTERS)
def test_link_and_speculation_rules_headers_naming_a_tracker_are_held_on_every_adapter(adapter: str, document: list[tuple[str, str]]) -> None:
    headers = [
        *document,
        ("Link", LINKS),
        ("Speculation-Rules", '"/rules.json", "https://www.google-analytics.com/rules.json"'),
    ]
    with client_for(adapter, {"secret_key": SECRET, "store": MemoryStore()}) as site:
        r = headers_page(site, headers)
        assert r.headers["link"] == '</app.js>; rel=preload; as=script, <https://fonts.example>; rel="preconnect"'
        assert r.headers["speculation-rules"] == '"/rules.json"'
        assert site.post("/_consent", json={"accept": "all"}).status_code == 200
        r = headers_page(site, headers)
        assert r.headers["link"] == LINKS
        assert r.headers["speculation-rules"] == '"/rules.json", "https://www.google-analytics.com/rules.json"'


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_a_link_header_of_only_trackers_is_dropped_and_markup_held_on_every_adapter(adapter: str) -> None:
    body = page("".join(markup for markup, _ in MARKUP.values()))
    headers = [("Content-Type", "text/html"), ("Link", f"<{GTAG}>; rel=modulepreload")]
    with client_for(adapter, {"secret_key": SECRET, "store": MemoryStore()}) as site:
        r = headers_page(site, headers, body)
        assert "link" not in r.headers
        assert not live(r.text)
        assert r.text.count("data-consentmw-") >= len(MARKUP)


def test_a_tracker_right_after_held_handlers_is_read_however_the_page_is_cut() -> None:
    # Each held handler makes its tag longer in the rewriter's buffer; what follows must still be read.
    handlers = "".join(f"<div onclick=\"fetch('{COLLECT}')\">{i}</div>" for i in range(6))
    markup = handlers + '<script src="//connect.facebook.net/en_US/fbevents.js"></script>'
    for chunk in (0, 1, 2, 50, len(page(markup)) - 60):
        out = rewrite(page(markup), chunk=chunk)
        assert out.count("data-consentmw-onclick=") == 6, out
        assert 'data-consentmw-src="//connect.facebook.net' in out and ' src="//connect.facebook.net' not in out, out
        assert out.count("</html>") == 1 and not live(out), out
