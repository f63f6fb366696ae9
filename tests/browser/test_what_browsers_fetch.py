"""Chromium as the judge of what an undecided visitor's browser fetches. Each page is served twice
by one server: as the app wrote it (/raw/...), where Chromium must fetch the tracker (so the case is
real), and through ConsentMiddleware, where it must fetch none. Generated hostile documents (the
project's hostile fragments around tracker tags) are rendered the same way, many to a page in
iframes: CONSENTMW_CHROMIUM_DOCS=2000 runs a larger set than the suite's default."""

from __future__ import annotations

import os
import random
import re
import time
from collections.abc import Iterator
from urllib.parse import quote

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Mount, Route

from consentmw import ConsentMiddleware
from consentmw.core.store import MemoryStore
from tests.corpus.pages import SNIPPETS
from tests.demo_support import serve
from tests.test_encodings import HIDDEN, iso_2022_jp
from tests.test_hostile import HOSTILE_MARKUP
from tests.test_markup_differential import HOSTILE, OWN, TRACKERS
from tests.test_markup_newest import NEWEST
from tests.test_tracker_names import COLLECT, GTAG, LINKS, MARKUP

from .site import GA4, SECRET, site_policy

pytestmark = pytest.mark.browser

BANNER_KO = "쿠키 사용에 대한 선택"
ACCEPT_KO = "모두 허용"
TRACKER = re.compile(r"^https?://([\w-]+\.)*(googletagmanager\.com|google-analytics\.com|doubleclick\.net|facebook\.net|facebook\.com|naver\.net|daumcdn\.net|hotjar\.com|clarity\.ms)[:/]")
ELSEWHERE = re.compile(r"^https?://(?!127\.0\.0\.1[:/])")
GENERATED = int(os.environ.get("CONSENTMW_CHROMIUM_DOCS", "60"))
PER_PAGE = 20

# name -> (response headers, page)
PAGES: dict[str, tuple[list[tuple[str, str]], str | bytes]] = {}
HTML = [("content-type", "text/html; charset=utf-8")]


def document(name: str, body: str, head: str = "") -> str:
    return f'<!doctype html><html lang="ko"><head><meta charset="utf-8">{head}<title>{name}</title></head><body><p>{name}</p>{body}</body></html>'


def add(name: str, body: str, headers: list[tuple[str, str]] = HTML, head: str = "") -> None:
    PAGES[name] = (headers, document(name, body, head))


add("quoted-comma-content-type", GA4, [("content-type", 'text/html;x="a,b/c"')])
add("html-after-plain", GA4, [("content-type", "text/plain"), ("content-type", "text/html")])
add("base-elsewhere", "", head='<base href="http://elsewhere.invalid/x/">')
for case, body in NEWEST.items():
    add(case, body)
for case, (body, _) in MARKUP.items():
    add(case, body.replace('href="/next"', 'id=ping href="/p/nowhere"') + ("<script>ping.click()</script>" if "ping" in case else ""))
add("nowhere", "")  # where the ping case's link goes
# A host written with a character reference: Chromium decodes it; an earlier inline script on the
# page had left "no tracker" cached under the host as written, cut at its "#".
add("pixel host written with a character reference", '<script>var u = "https://www.facebook&#46;com/tr";</script><img src="https://www.facebook&#46;com/tr?id=1&amp;ev=PageView" width="1" height="1">')
# An SVG script's code is its whole CDATA section and what follows it up to </script>, not the section
# up to its first ">" (where the rewriter had judged it).
PIXEL_CODE = "new Image().src='https://www.facebook.com/tr?id=1&ev=PageView';"
add("SVG script whose CDATA section holds a >", f"<svg><script><![CDATA[ if (1 > 0) {{}} {PIXEL_CODE} ]]></script></svg>")
add("SVG script with code after its CDATA section", f"<svg><script><![CDATA[ if (1 > 0) {{}} ]]>{PIXEL_CODE}</script></svg>")
add("SVG script whose CDATA section holds a </script", f"<svg><script><![CDATA[ 1 </script>/; {PIXEL_CODE} ]]></script></svg>")
add("link preload header", "", [*HTML, ("link", LINKS)])
add("link modulepreload header", "", [*HTML, ("link", f"<{GTAG}>; rel=modulepreload")])
add("speculation-rules header", "", [*HTML, ("speculation-rules", '"https://www.google-analytics.com/rules.json"')])
PAGES["frameset"] = (HTML, f'<!doctype html><html><head><title>frames</title></head><frameset><frame src="{COLLECT}"></frameset></html>')
# Chromium preloads a Link header's script for any document it shows, not only a page.
OTHER_DOCUMENTS = {"link header on a JSON document": "application/json", "link header on an SVG image": "image/svg+xml"}
PAGES["link header on a JSON document"] = ([("content-type", "application/json"), ("link", LINKS)], '{"ok": true}')
PAGES["link header on an SVG image"] = ([("content-type", "image/svg+xml"), ("link", LINKS)], '<svg xmlns="http://www.w3.org/2000/svg"/>')
# Encodings whose bytes are not ASCII's: an ISO-2022-JP escape decodes to nothing; a UTF-16 byte
# order mark wins over the header.
PAGES["iso-2022-jp escape in the tag name"] = ([("content-type", "text/html; charset=iso-2022-jp")], iso_2022_jp(HIDDEN["escape in the tag name"]))
PAGES["iso-2022-jp escape in the host, declared in a meta"] = (
    [("content-type", "text/html")],
    iso_2022_jp(HIDDEN["escape in the host"]).replace("<head>", '<head><meta charset="iso-2022-jp">'),
)
PAGES["utf-16 byte order mark under a utf-8 header"] = (HTML, b"\xff\xfe" + document("utf-16", GA4).encode("utf-16-le"))
RULES = f'{{"prefetch":[{{"source":"list","urls":["{COLLECT}"]}}]}}'

# Generated documents: hostile fragments around tracker tags (the snippets as vendors publish them).
FRAGMENTS = HOSTILE + OWN + HOSTILE_MARKUP + list(NEWEST.values()) + [m for m, _ in MARKUP.values() if "ping" not in m]
TRACKER_TAGS = TRACKERS + [s.text for s in SNIPPETS.values() if s.where == "head"][:6]


def generated(seed: int) -> str:
    rng = random.Random(seed)
    parts = [rng.choice(FRAGMENTS) for _ in range(rng.randint(0, 10))]
    for _ in range(rng.randint(1, 3)):
        parts.insert(rng.randint(0, len(parts)), "]]>--><!---->\"'>'\"></template></svg></math></noscript></textarea></title></iframe></style>" + rng.choice(TRACKER_TAGS))
    return document(f"doc {seed}", "".join(parts))


async def show(request: Request) -> Response:
    name = request.path_params["name"]
    if name.startswith("gen-"):
        headers, page = HTML, generated(int(name[4:]))
    elif name.startswith("frames-"):
        first = int(name[7:])
        prefix = "/raw" if request.url.path.startswith("/raw") else ""
        frames = "".join(f'<iframe src="{prefix}/p/gen-{i}"></iframe>' for i in range(first, min(first + PER_PAGE, GENERATED)))
        headers, page = HTML, document("frames", frames)
    else:
        headers, page = PAGES[name]
    body = page.encode() if isinstance(page, str) else page
    response = Response(body)
    response.raw_headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers] + [(b"content-length", str(len(body)).encode())]
    return response


async def rules(request: Request) -> Response:
    return Response(RULES, media_type="application/speculationrules+json")


@pytest.fixture(scope="module")
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture(scope="module")
def origin(store: MemoryStore) -> Iterator[str]:
    pages = [Route("/p/{name:path}", show), Route("/rules.json", rules)]
    rewritten = ConsentMiddleware(Starlette(routes=pages), secret_key=SECRET, policy=site_policy(), store=store, rate_limit=None)
    # Every test visits from 127.0.0.1: the per-client limit would count all of them as one visitor.
    app = Starlette(routes=[Mount("/raw", app=Starlette(routes=pages)), Mount("/", app=rewritten)])
    with serve(app) as port:
        yield f"http://127.0.0.1:{port}"


class Visit:
    """One visitor's browser: every request elsewhere is answered empty (a rule set on a tracker's
    host gets a rule set prefetching the collect endpoint) and recorded with the frame it came from."""

    def __init__(self, chromium) -> None:
        self.context = chromium.new_context(locale="ko-KR")
        self.requested: list[tuple[str, str]] = []
        self.current = ""
        self.context.on("request", self.record)
        self.context.route(ELSEWHERE, self.answer)
        self.page = self.context.new_page()

    def record(self, request) -> None:
        if ELSEWHERE.match(request.url):
            try:
                frame = request.frame.url
            except Exception:  # a prefetch may have no frame of its own: it counts for the page
                frame = self.current
            self.requested.append((request.url, frame))

    @staticmethod
    def answer(route) -> None:
        if route.request.url.endswith("rules.json"):
            route.fulfill(status=200, content_type="application/speculationrules+json", body=RULES)
        else:
            route.fulfill(status=200, body="")

    def trackers(self) -> list[tuple[str, str]]:
        # A prefetch the page before started may be reported after it: counted for its own page.
        raw = "/raw/" in self.current
        return [(url, frame) for url, frame in self.requested if TRACKER.match(url) and not ("/p/" in frame and ("/raw/" in frame) != raw)]

    def open(self, url: str, until_tracker: float = 0.0, settle: float = 0.3) -> float:
        """Loads url; waits up to `until_tracker` seconds for a tracker request, else `settle`.
        Returns how long after load the first tracker request came (or the wait)."""
        self.requested.clear()
        self.current = url
        self.page.goto(url, wait_until="load")
        started = time.monotonic()
        deadline = started + max(until_tracker, settle)
        while time.monotonic() < deadline and not (until_tracker and self.trackers()):
            self.page.wait_for_timeout(50)
        return time.monotonic() - started


@pytest.fixture
def visit(chromium) -> Iterator[Visit]:
    v = Visit(chromium)
    yield v
    v.context.close()


CASES = [name for name in PAGES if name not in ("base-elsewhere", "nowhere")]


@pytest.mark.parametrize("name", CASES)
def test_what_chromium_fetches_from_the_page_as_written_it_does_not_after_rewriting(visit: Visit, origin: str, name: str) -> None:
    took = visit.open(f"{origin}/raw/p/{quote(name)}", until_tracker=5.0)
    assert visit.trackers(), f"{name}: Chromium fetched no tracker from the page as written; the case proves nothing"
    visit.open(f"{origin}/p/{quote(name)}", settle=max(0.5, 3 * took))
    assert visit.trackers() == []
    assert visit.page.evaluate("document.contentType") == OTHER_DOCUMENTS.get(name, "text/html")


def test_generated_hostile_documents_fetch_no_tracker_after_rewriting(visit: Visit, origin: str) -> None:
    live_as_written = set()
    for first in range(0, GENERATED, PER_PAGE):
        visit.open(f"{origin}/raw/p/frames-{first}", settle=0.5)
        live_as_written |= {frame for _, frame in visit.trackers() if "/gen-" in frame}
        visit.open(f"{origin}/p/frames-{first}", settle=0.5)
        assert visit.trackers() == []
    # Most documents load a tracker as written: the rewritten ones fetching none says something.
    assert len(live_as_written) >= GENERATED // 2


def test_a_base_elsewhere_moves_none_of_the_banners_requests(visit: Visit, origin: str, store: MemoryStore) -> None:
    before = len(store.records)
    visit.open(f"{origin}/p/base-elsewhere")
    visit.page.get_by_role("region", name=BANNER_KO).wait_for(timeout=5000)
    visit.page.get_by_role("button", name=ACCEPT_KO).click()
    visit.page.wait_for_function("consentmw.decided === true", timeout=5000)
    assert [url for url, _ in visit.requested if "elsewhere.invalid" in url] == []
    assert len(store.records) == before + 1


def test_consent_brings_back_speculation_rules_in_the_page(visit: Visit, origin: str) -> None:
    visit.open(f"{origin}/p/{quote('speculation rules prefetch')}")
    assert visit.trackers() == []
    visit.page.get_by_role("region", name=BANNER_KO).wait_for(timeout=5000)
    visit.page.get_by_role("button", name=ACCEPT_KO).click()
    deadline = time.monotonic() + 5
    while not visit.trackers() and time.monotonic() < deadline:
        visit.page.wait_for_timeout(100)
    assert [url for url, _ in visit.trackers()] == [COLLECT]
