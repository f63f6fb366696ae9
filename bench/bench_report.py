"""`consentmw log report` on a SQLite log of a million records: the time, and its ratio to the
log's own `log stats --latest` (the same log, the same run) as the baseline.

The log is written straight into the table with executemany: a plausible site over 90 days (a
policy update half way, returning visitors who change their minds, several languages and regions,
a few scan records). Its figures are the same whoever wrote the rows; only the time differs.

    python bench/bench_report.py [--records 1000000] [--keep FILE]

Also a module: make_log() fills a log for docs (scripts/report_screenshot.py) and tests.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import random
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository, when run from a checkout

from consentmw.core.store import SQLiteStore  # noqa: E402
from consentmw.core.store import report  # noqa: E402
from consentmw.core.store.sqlite import INSERT, timestamp  # noqa: E402

START = dt.datetime(2026, 9, 7, tzinfo=dt.UTC)  # a Monday
# (region, share, languages it reads in) - shares of visitors, roughly a Korean shop selling abroad.
REGIONS = [
    ("KR-11", 0.34, ["ko"]),
    ("KR-41", 0.14, ["ko"]),
    ("KR-26", 0.08, ["ko"]),
    ("US-CA", 0.07, ["en-US", "ko"]),
    ("US-NY", 0.04, ["en-US"]),
    ("JP-13", 0.07, ["ja"]),
    ("DE", 0.05, ["de", "en"]),
    ("GB", 0.04, ["en-GB"]),
    ("FR", 0.03, ["fr"]),
    ("VN", 0.03, ["vi", "en"]),
    ("", 0.11, ["ko", "en"]),
]


def _choices(rng: random.Random, after_update: bool, region: str) -> tuple[dict[str, bool], str]:
    """A visitor's answer and how they gave it: most click one of the banner's two buttons."""
    roll = rng.random()
    if region == "US-CA" and roll < 0.05:
        return {"necessary": True, "analytics": True, "advertising": False, "personalisation": True}, "gpc"
    if roll < 0.46 - (0.06 if after_update else 0):
        return {"necessary": True, "analytics": True, "advertising": True, "personalisation": True}, "banner"
    if roll < 0.80:
        return {"necessary": True, "analytics": False, "advertising": False, "personalisation": False}, rng.choice(
            ["banner"] * 9 + ["form"]
        )
    # Chose one by one in the settings dialog: analytics far more often than advertising.
    return {
        "necessary": True,
        "analytics": rng.random() < (0.8 if after_update else 0.72),
        "advertising": rng.random() < 0.25,
        "personalisation": rng.random() < 0.5,
    }, "settings"


def rows(count: int, days: int = 90, seed: int = 7):
    """(row for INSERT) tuples in time order: new visitors, and returning ones who choose again."""
    rng = random.Random(seed)
    update_at = days // 2
    regions = [r for r, _, _ in REGIONS]
    weights = [w for _, w, _ in REGIONS]
    languages = {r: langs for r, _, langs in REGIONS}
    seen: list[tuple[str, str, str]] = []  # (consent id, region, language)
    span = days * 86400
    moments = sorted(rng.random() * span for _ in range(count))
    for n, offset in enumerate(moments):
        at = START + dt.timedelta(seconds=offset)
        after_update = offset >= update_at * 86400
        version = "2026-10-22" if after_update else "2026-09-01"
        if seen and rng.random() < 0.2:
            consent_id, region, language = seen[rng.randrange(len(seen))]
            roll = rng.random()
            if roll < 0.4:
                # Withdrew analytics on the opt-out page, or everything in the dialog.
                choices, method = {"necessary": True, "analytics": False, "advertising": False, "personalisation": False}, rng.choice(["opt-out", "settings"])
            else:
                choices, method = _choices(rng, after_update, region)
        else:
            region = rng.choices(regions, weights)[0]
            language = rng.choice(languages[region])
            consent_id = f"{n:08x}-{rng.getrandbits(64):016x}"
            seen.append((consent_id, region, language))
            choices, method = _choices(rng, after_update, region)
        scan = n % 500 == 0
        mode = "opt-out" if region.startswith("US-") else "opt-in"
        yield (
            timestamp(at),
            consent_id,
            "shop",
            version,
            json.dumps(choices, separators=(",", ":")),
            "banner" if scan else method,
            "/",
            "203.0.113.0",
            "Chrome",
            region,
            mode,
            language,
            scan,
        )


def make_log(path: str, count: int, days: int = 90, seed: int = 7) -> None:
    asyncio.run(SQLiteStore(path).migrate())
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA synchronous = OFF")
        with conn:
            conn.executemany(INSERT, rows(count, days, seed))
    finally:
        conn.close()


async def run(path: str, what: str) -> None:
    """One measurement, in a process of its own: its peak memory is that of the one command."""
    store = SQLiteStore(path)
    started = time.perf_counter()
    if what == "stats":
        await store.stats(latest=True)
        summary = ""
    else:
        figures = await report.build(store)
        totals = figures["totals"]
        summary = (
            f"\n  figures: {totals['records']:,} records, {totals['visitors']:,} visitors, {totals['decided_visitors']:,} decided,"
            f" {totals['withdrawals']:,} withdrawals, {totals['scans_left_out']:,} scans left out;"
            f" {len(figures['series'])} {figures['period']['bucket']}s"
        )
    seconds = time.perf_counter() - started
    await store.close()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{what}\t{seconds:.2f}\t{peak:.0f}{summary}", flush=True)


def measure(path: str) -> None:
    results = {}
    for what in ("stats", "report"):
        done = subprocess.run([sys.executable, __file__, "--measure", path, "--only", what], check=True, capture_output=True, text=True)
        name, seconds, peak = done.stdout.splitlines()[0].split("\t")
        results[name] = float(seconds)
        label = "log stats --latest (baseline)" if name == "stats" else "log report"
        print(f"{label:<30} {float(seconds):8.2f} s   peak memory {peak} MiB")
        for line in done.stdout.splitlines()[1:]:
            print(line)
    print(f"report / stats --latest: {results['report'] / results['stats']:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--keep", metavar="FILE", help="write the log here and keep it (default: a temporary file)")
    parser.add_argument("--measure", metavar="FILE", help="only time the commands on this log")
    parser.add_argument("--only", choices=("stats", "report"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure and args.only:
        asyncio.run(run(args.measure, args.only))
        return
    if args.measure:
        measure(args.measure)
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = args.keep or os.path.join(tmp, "consent.db")
        started = time.perf_counter()
        make_log(path, args.records)
        size = os.path.getsize(path) / 2**20
        print(f"wrote {args.records:,} records in {time.perf_counter() - started:.1f} s ({size:.0f} MiB)")
        measure(path)


if __name__ == "__main__":
    main()
