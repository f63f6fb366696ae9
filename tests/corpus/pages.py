"""Real-shaped pages for the rewriter's tests and bench: a Korean shop page (shop.html, its product
card product.html) with tracker snippets (snippets/, each as its vendor publishes it) put where the
vendor says: in <head>, or right after <body> for GTM's noscript part and pixels."""

from __future__ import annotations

import html.parser
import random
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).parent
NAMES = ["유기농 방울토마토 500g", "무항생제 1등급 달걀 30구", "제주 한라봉 3kg", "국산 햇사과 5kg", "무선 청소기 X9", "3중 코팅 프라이팬 28cm"]


@dataclass(frozen=True)
class Snippet:
    name: str
    categories: frozenset[str]  # what a visitor must allow for any part of it to run
    signatures: tuple[str, ...]  # lowercase text that shows a live tag of this tracker (oracle)
    where: str = "head"

    @property
    def text(self) -> str:
        return (HERE / "snippets" / f"{self.name}.html").read_text("utf-8")


A, D = frozenset({"analytics"}), frozenset({"advertising"})
SNIPPETS = {
    s.name: s
    for s in [
        Snippet("ga4-gtag", A, ("gtag/js?id=g-7qx2lce5n1", "gtag('config', 'g-7qx2lce5n1")),
        Snippet("google-ads-gtag", D, ("gtag/js?id=aw-", "'aw-961247304", "googleads.g.doubleclick.net")),
        Snippet("universal-analytics", A, ("google-analytics.com/analytics.js", "ga('create'")),
        Snippet("ga-legacy", A, ("_gaq.push", "google-analytics.com/ga.js")),
        Snippet("gtm", A, ("googletagmanager.com/gtm.js", "googletagmanager.com/ns.html")),
        Snippet("meta-pixel", D, ("fbevents.js", "fbq('init'", "facebook.com/tr")),
        Snippet("naver-analytics", A, ("wcslog.js", "wcs_do(")),
        Snippet("naver-conversion", D, ("wcs.cnv(",)),
        Snippet("kakao-pixel", D, ("kas/static/kp.js", "kakaopixel(")),
        Snippet("hotjar", A, ("static.hotjar.com",)),
        Snippet("clarity", A, ("clarity.ms/tag",)),
        Snippet("adsense", D, ("adsbygoogle.js", "(adsbygoogle = window.adsbygoogle")),
        Snippet("floodlight", D, ("'dc-9284712", "ad.doubleclick.net/ddm/activity"), where="body"),
        Snippet("google-ad-manager", D, ("securepubads.g.doubleclick.net",)),
    ]
}


def products(count: int, seed: int = 7) -> str:
    rng = random.Random(seed)
    card = (HERE / "product.html").read_text("utf-8")
    out = []
    for i in range(count):
        was = rng.randrange(5, 300) * 1000
        rate = rng.randrange(5, 60)
        out.append(
            card.replace("{id}", str(100200 + i))
            .replace("{name}", rng.choice(NAMES))
            .replace("{was}", f"{was:,}")
            .replace("{now}", f"{was * (100 - rate) // 100:,}")
            .replace("{rate}", str(rate))
            .replace("{reviews}", f"{rng.randrange(1, 9000):,}")
        )
    return "".join(out)


def shop_page(snippets: list[str] = (), product_count: int = 12) -> str:
    """The shop page with these snippets, each where its vendor says to put it."""
    head = "\n".join(SNIPPETS[n].text for n in snippets if SNIPPETS[n].where == "head")
    body = "\n".join(SNIPPETS[n].text for n in snippets if SNIPPETS[n].where == "body")
    page = (HERE / "shop.html").read_text("utf-8")
    return page.replace("<!--trackers:head-->", head).replace("<!--trackers:body-->", body).replace("<!--products-->", products(product_count))


def page_of_size(size: int, snippets: list[str]) -> str:
    count = 1
    while len(shop_page(snippets, count).encode()) < size:
        count += 1
    return shop_page(snippets, count)


JS_TYPES = {"", "text/javascript", "application/javascript", "module", "text/ecmascript", "application/ecmascript"}


class LiveTags(html.parser.HTMLParser):
    """An independent reading of a page, as a browser with scripting on would run it: every
    script that runs (its src or inline code) and every iframe/img address that loads."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.live: list[str] = []
        self._script: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a: dict[str, str | None] = {}
        for name, value in attrs:
            a.setdefault(name, value)  # the first of a repeated attribute counts, as in browsers
        if tag == "script":
            if (a.get("type") or "").strip().lower() in JS_TYPES:
                if a.get("src") is not None:
                    self.live.append("src " + a["src"])
                else:
                    self._script = []
        elif tag in ("img", "image", "iframe") and a.get("src"):
            self.live.append("src " + a["src"])
        if tag in ("img", "image", "source") and a.get("srcset"):
            self.live.extend("src " + c.split()[0] for c in a["srcset"].split(",") if c.strip())
        if tag == "link" and a.get("href") and set((a.get("rel") or "").lower().split()) & {"preload", "prefetch", "modulepreload", "preconnect", "dns-prefetch"}:
            self.live.append("src " + a["href"])
        if tag in ("textarea", "title", "iframe"):
            self.set_cdata_mode(tag)  # their content is text, not tags

    def handle_data(self, data: str) -> None:
        if self._script is not None:
            self._script.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "script" and self._script is not None:
            self.live.append("code " + "".join(self._script))
            self._script = None


def live_tags(page: str) -> list[str]:
    parser = LiveTags()
    parser.feed(page)
    parser.close()
    return [t.lower() for t in parser.live]


def live_trackers(page: str) -> set[str]:
    """Names of the snippets of which something still runs or loads in ``page``."""
    tags = live_tags(page)
    return {s.name for s in SNIPPETS.values() for t in tags for sig in s.signatures if sig in t}
