"""Size of what a visitor downloads for the banner: banner.js + banner.css, gzipped, against the 5 KB budget.

    python bench/bench_banner_size.py

Measured on the files the middleware serves, at gzip level 9 (starlette's GZipMiddleware default)
and level 6 (a common server default). Exits non-zero when the budget is exceeded.
"""

from __future__ import annotations

import gzip
import sys

from consentmw.core.api import STATIC_TYPES, StaticAsset, static_dir

BUDGET = 5 * 1024
FILES = ("banner.js", "banner.css")


def main() -> int:
    folder = static_dir()
    totals = {9: 0, 6: 0}
    print(f"{'file':<12} {'raw':>8} {'gzip -9':>8} {'gzip -6':>8}")
    for name in FILES:
        raw = StaticAsset(folder / name, STATIC_TYPES[name]).body  # as served: whole-line comments left out
        sizes = {level: len(gzip.compress(raw, compresslevel=level, mtime=0)) for level in totals}
        for level, size in sizes.items():
            totals[level] += size
        print(f"{name:<12} {len(raw):>8} {sizes[9]:>8} {sizes[6]:>8}")
    print(f"{'total':<12} {'':>8} {totals[9]:>8} {totals[6]:>8}")
    worst = max(totals.values())
    print(f"budget {BUDGET} bytes (5 KB): {worst / BUDGET:.2f}x of budget, {BUDGET - worst} bytes to spare")
    return 0 if worst <= BUDGET else 1


if __name__ == "__main__":
    sys.exit(main())
