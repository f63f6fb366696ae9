"""The banner stays small for a visitor on a slow phone line: what the site sends, compressed."""

from __future__ import annotations

import gzip

from tests.conftest import client_for, make_app

BUDGET = 5120  # bytes of gzip, banner.js and banner.css together


async def test_banner_js_and_css_fit_the_gzip_budget() -> None:
    async with client_for(make_app()) as client:
        sizes = {}
        for name in ("banner.js", "banner.css"):
            r = await client.get(f"/_consent/{name}")
            assert r.status_code == 200
            sizes[name] = len(gzip.compress(r.content, 9))
    assert sum(sizes.values()) <= BUDGET, sizes
