"""Vendors' documented snippets (tests/corpus/vendors/<vendor>.html), one service each between
``<!-- service: id -->`` markers, with the hosts a browser asks for once they run."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).parent / "vendors"
MARKER = re.compile(r"<!-- service: ([a-z0-9-]+) -->\n")

# Per vendor: the hosts a browser requests when the vendor's services run (their responses are
# empty in the tests, so only a loader's first request counts).
VENDOR_HOSTS = {
    "tiktok": {"analytics.tiktok.com"},
    "linkedin": {"snap.licdn.com"},
    "x": {"static.ads-twitter.com", "analytics.twitter.com", "platform.twitter.com"},
    "pinterest": {"s.pinimg.com", "assets.pinterest.com"},
    "snap": {"sc-static.net", "tr.snapchat.com"},
    "reddit": {"www.redditstatic.com"},
    "criteo": {"dynamic.criteo.com", "static.criteo.net"},
    "microsoft-uet": {"bat.bing.com"},
    "yandex": {"mc.yandex.ru", "mc.yandex.com"},
    "baidu": {"hm.baidu.com"},
    "amplitude": {"cdn.amplitude.com"},
    "mixpanel": {"cdn.mxpnl.com"},
    "segment": {"cdn.segment.com"},
    "matomo": {"cdn.matomo.cloud"},
    "dable": {"static.dable.io"},
    "naver": {"wcs.naver.net", "wcs.naver.com"},
    "kakao": {"t1.daumcdn.net"},
    "meta": {"connect.facebook.net", "www.facebook.com", "www.instagram.com"},
    "taboola": {"cdn.taboola.com", "trc.taboola.com"},
    "outbrain": {"widgets.outbrain.com", "amplify.outbrain.com"},
    "hubspot": {"js.hs-scripts.com", "js.hsforms.net"},
    "intercom": {"widget.intercom.io"},
    "quantcast": {"edge.quantserve.com"},  # the snippet picks "edge" on an http page
    "heap": {"cdn.us.heap-api.com", "cdn.heapanalytics.com"},
    # Korean vendors (sources at the top of each file and in scripts/catalog-curation.json).
    "acecounter": {"atm.acecounter.com"},
    "wisetracker": {"ads.wisetracker.co.kr"},
    "beusable": {"rum.beusable.net"},
    "bizspring": {"fs.bizspring.net"},
    "airbridge": {"static.airbridge.io"},
    "adbrix": {"cm.igaw.io"},
    "mobon": {"cdn.megadata.co.kr", "log.dreamsearch.or.kr"},
    "cauly": {"image.cauly.co.kr"},
    "groobee": {"static.groobee.io"},
    "widerplanet": {"cdn-aitg.widerplanet.com"},
    "realclick": {"ssp.realclick.co.kr"},
    "adn": {"fin.rainbownine.net"},
    "nhn-ad": {"static.tagmanager.toast.com"},
    "mezzo": {"mtag.mman.kr"},
    "adinsight": {"adlog.adinsight.co.kr"},  # the snippet picks adlog on an http page
    "channeltalk": {"cdn.channel.io"},
    # Hosts the dataset lacks or files under a kind never blocked.
    "posthog": {"us-assets.i.posthog.com"},
    "cloudflare-insights": {"static.cloudflareinsights.com"},
    "logrocket": {"cdn.logr-in.com"},
    "datadog": {"www.datadoghq-browser-agent.com"},
}


@dataclass(frozen=True)
class Service:
    vendor: str
    id: str
    text: str


def services() -> list[Service]:
    found = []
    for vendor in sorted(VENDOR_HOSTS):
        parts = MARKER.split((HERE / f"{vendor}.html").read_text("utf-8"))
        found += [Service(vendor, parts[i], parts[i + 1]) for i in range(1, len(parts), 2)]
    return found


def vendor_page(items: list[Service]) -> str:
    body = "\n".join(s.text for s in items)
    return f'<!doctype html>\n<html lang="ko"><head><meta charset="utf-8"><title>vendors</title></head><body>\n{body}\n</body></html>\n'
