"""Makes docs/report.png: a report of a generated log (bench/bench_report.py's make_log), taken
with Chromium at a laptop's width.

    .venv/bin/python scripts/report_screenshot.py [--output docs/report.png] [--records 40000]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_report import make_log  # noqa: E402
from consentmw.core.store import SQLiteStore  # noqa: E402
from consentmw.core.store import report, report_html  # noqa: E402
from consentmw.scan.browser import CHROMIUM_FLAGS  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", default=str(ROOT / "docs" / "report.png"))
    parser.add_argument("--html", help="also keep the HTML page here")
    parser.add_argument("--records", type=int, default=40_000)
    parser.add_argument("--full-page", action="store_true", help="the whole page, not the first screen")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        log = f"{tmp}/consent.db"
        make_log(log, args.records)
        store = SQLiteStore(log)
        figures = asyncio.run(
            report.build(store, now=dt.datetime(2026, 12, 6, 7, 0, tzinfo=dt.UTC))
        )
        page_html = report_html.render(figures, "sqlite:///consent.db")
        page_file = Path(args.html or f"{tmp}/report.html")
        page_file.write_text(page_html, encoding="utf-8")
        from playwright.sync_api import sync_playwright

        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=list(CHROMIUM_FLAGS))
            page = browser.new_page(viewport={"width": 1100, "height": 1500}, device_scale_factor=1)
            page.goto(page_file.as_uri())
            page.screenshot(path=args.output, full_page=args.full_page)
            browser.close()
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
