"""`consentmw log report` on a SQLite log of a million records: the time, and its ratio to the
log's own `log stats --latest` (the same log, the same run) as the baseline; then a period that
starts and ends mid-day, from the running totals and counted from the records (their figures must
be the same), `log stats --latest` of that period, and with --postgres the same in PostgreSQL.

PostgreSQL: the log is copied in as a log from before the running totals, `consentmw migrate`
counts them (timed), then the commands are timed from the totals and from the records (same
digests), and last the fold that a report does first after 10,000 and after 100,000 new records
(a fifth of them from visitors already in the log), written as app servers write them.

The log is written straight into the table with executemany (PostgreSQL: COPY): a plausible site
over 90 days (a policy update half way, returning visitors who change their minds, several
languages and regions, a few scan records). Its figures are the same whoever wrote the rows; only
the time differs. The SQLite write time includes the triggers that keep the running totals.

    python bench/bench_report.py [--records 1000000] [--keep FILE] [--postgres URL]

Also a module: make_log() fills a log for docs (scripts/report_screenshot.py) and tests.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import hashlib
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

from consentmw.core.store import SQLiteStore, open_store  # noqa: E402
from consentmw.core.store import postgres_summary, report  # noqa: E402
from consentmw.core.store.sql import INSERT_COLUMNS  # noqa: E402
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
        # Into the file: the first reader would do it otherwise, and count its memory.
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


# A period that starts and ends mid-day: the totals serve its whole days, the records its ends.
SINCE = START + dt.timedelta(days=10, hours=7, minutes=13)
UNTIL = START + dt.timedelta(days=80, hours=15, minutes=31)
LABELS = {
    "stats": "log stats --latest (baseline)",
    "report": "log report",
    "period": "log report, a period",
    "counted": "the period, from the records",
    "stats-period": "log stats --latest, the period",
}
# PostgreSQL also: the whole log counted from the records, as without its running totals.
PG_LABELS = {
    **LABELS,
    "report-counted": "log report, from the records",
    "stats-counted": "stats --latest, from the records",
}


def digest(figures: dict) -> str:
    """Every figure but the time of the report and the period asked for: equal digests, equal reports."""
    rest = {key: value for key, value in figures.items() if key not in ("generated_at", "period")}
    if "period" in figures:
        rest["period"] = {key: figures["period"][key] for key in ("first_record", "last_record", "bucket")}
    return hashlib.sha256(json.dumps(rest, sort_keys=True).encode()).hexdigest()[:12]


def peak_memory() -> float:
    """This process's peak resident memory in MiB. Linux keeps ru_maxrss across exec, so a command
    started by the bench would report the bench's own peak (it generated the log): VmHWM is the
    command's alone."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def run(url: str, what: str) -> None:
    """One measurement, in a process of its own: its peak memory is that of the one command."""
    store = open_store(url)
    period = {"since": SINCE, "until": UNTIL} if what in ("period", "counted", "stats-period") else {}
    if what in ("counted", "report-counted", "stats-counted"):
        # Counted from the records, as a log without the running totals is.
        store.dialect = dataclasses.replace(store.dialect, totals=False, postgres=False)  # type: ignore[attr-defined]

        async def no_totals(*args: object) -> None:
            return None

        store._from_totals = no_totals  # type: ignore[attr-defined]
    started, cpu = time.perf_counter(), time.process_time()
    if what.startswith("stats"):
        stats = await store.stats(latest=True, **period)  # type: ignore[attr-defined]
        summary = f"\n  {stats.visitors:,} visitors, {stats.scans:,} scans left out; digest {digest(stats.as_dict())}"
    else:
        figures = await report.build(store, **period)
        totals = figures["totals"]
        summary = (
            f"\n  figures: {totals['records']:,} records, {totals['visitors']:,} visitors, {totals['decided_visitors']:,} decided,"
            f" {totals['withdrawals']:,} withdrawals, {totals['scans_left_out']:,} scans left out;"
            f" {len(figures['series'])} {figures['period']['bucket']}s; digest {digest(figures)}"
        )
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    await store.close()  # type: ignore[attr-defined]
    print(f"{what}\t{seconds:.2f}\t{cpu:.2f}\t{peak_memory():.0f}{summary}", flush=True)


def measure(url: str, whats: tuple[str, ...] = tuple(LABELS)) -> None:
    results = {}
    digests = {}
    for what in whats:
        done = subprocess.run([sys.executable, __file__, "--measure", url, "--only", what], check=True, capture_output=True, text=True)
        name, seconds, cpu, peak = done.stdout.splitlines()[0].split("\t")
        results[name] = float(seconds)
        # The CPU time is this process's: SQLite works in it, PostgreSQL in the server.
        print(f"{PG_LABELS[name]:<32} {float(seconds):8.2f} s  (CPU here {float(cpu):7.2f} s)   peak memory {peak} MiB")
        for line in done.stdout.splitlines()[1:]:
            print(line)
            digests[name] = line.rpartition("digest ")[2]
    print(f"report / stats --latest: {results['report'] / results['stats']:.2f}")
    for totals, counted, what in (("period", "counted", "the period"), ("report", "report-counted", "the whole log"), ("stats", "stats-counted", "stats --latest")):
        if totals in digests and counted in digests:
            same = "the same" if digests[totals] == digests[counted] else "DIFFERENT"
            print(f"{what} from the totals and from the records: {same} figures")


async def copy_to_postgres(base: str, count: int) -> str:
    """The same log in a fresh schema of the server: the URL that reads it."""
    import asyncpg

    schema = f"consentmw_bench_{os.getpid()}"
    conn = await asyncpg.connect(base)
    try:
        await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}")
    finally:
        await conn.close()
    url = f"{base}{'&' if '?' in base else '?'}search_path={schema}"
    store = open_store(url)
    await store.migrate()  # type: ignore[attr-defined]
    await store.close()  # type: ignore[attr-defined]
    conn = await asyncpg.connect(url)
    try:
        # A log from before the running totals: `consentmw migrate` counts them afterwards.
        await conn.execute(postgres_summary.UNINSTALL)

        def records():  # type: ignore[no-untyped-def]
            for row in rows(count):
                yield (dt.datetime.fromisoformat(row[0]), *row[1:])

        await conn.copy_records_to_table("consent_log", records=records(), columns=INSERT_COLUMNS, schema_name=schema)
        await conn.execute(f"ANALYZE {schema}.consent_log")
    finally:
        await conn.close()
    return url


async def add_records(url: str, count: int, seed: int) -> float:
    """Writes `count` new records after the log's last, a fifth of them from visitors already in
    it, in the app servers' batches: the seconds it took."""
    import asyncpg

    from consentmw.core.store.postgres import BATCH, INSERT_MANY

    conn = await asyncpg.connect(url)
    try:
        known = [row[0] for row in await conn.fetch("SELECT consent_id FROM consent_log TABLESAMPLE SYSTEM (2) LIMIT 20000")]
        rng = random.Random(seed)
        new = []
        for row in rows(count, days=1, seed=seed):
            at = dt.datetime.fromisoformat(row[0]) + dt.timedelta(days=91)
            new.append((at, rng.choice(known) if rng.random() < 0.2 else row[1], *row[2:]))
        started = time.perf_counter()
        for start in range(0, count, BATCH):
            async with conn.transaction():
                await conn.execute(INSERT_MANY, *[list(column) for column in zip(*new[start : start + BATCH])])
        return time.perf_counter() - started
    finally:
        await conn.close()


def folds(url: str) -> None:
    """The fold a report does first, after 10,000 and 100,000 new records (timed in `log stats
    --latest`, whose read of the totals takes milliseconds), then the report and stats again."""
    for count, seed in ((10_000, 11), (100_000, 12)):
        wrote = asyncio.run(add_records(url, count, seed))
        print(f"{count:,} new records written in {wrote:.1f} s ({wrote / count * 1e6:.0f} us each, batches of 500)")
        measure_fold(url, f"fold of {count:,} new records + stats --latest")
    measure(url, ("report", "report-counted", "stats", "stats-counted"))


def measure_fold(url: str, label: str) -> None:
    done = subprocess.run([sys.executable, __file__, "--measure", url, "--only", "stats"], check=True, capture_output=True, text=True)
    _, seconds, cpu, peak = done.stdout.splitlines()[0].split("\t")
    print(f"{label:<46} {float(seconds):8.2f} s  (CPU here {float(cpu):7.2f} s)   peak memory {peak} MiB")


async def drop_schema(url: str) -> None:
    import asyncpg

    base, _, schema = url.rpartition("search_path=")
    conn = await asyncpg.connect(base.rstrip("?&"))
    try:
        await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    finally:
        await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--keep", metavar="FILE", help="write the log here and keep it (default: a temporary file)")
    parser.add_argument("--measure", metavar="FILE", help="only time the commands on this log (a file or a store URL)")
    parser.add_argument("--postgres", metavar="URL", help="also copy the log into a fresh schema of this server and time it there")
    parser.add_argument("--no-sqlite", action="store_true", help="with --postgres: only the PostgreSQL part")
    parser.add_argument("--only", choices=tuple(PG_LABELS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        url = args.measure if "://" in args.measure else f"sqlite:///{args.measure}"
        if args.only:
            asyncio.run(run(url, args.only))
        else:
            measure(url, tuple(PG_LABELS) if url.startswith("postgres") else tuple(LABELS))
        return
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs, SQLite {sqlite3.sqlite_version}")
    if not args.no_sqlite:
        with tempfile.TemporaryDirectory() as tmp:
            path = args.keep or os.path.join(tmp, "consent.db")
            started = time.perf_counter()
            make_log(path, args.records)
            size = os.path.getsize(path) / 2**20
            print(f"wrote {args.records:,} records in {time.perf_counter() - started:.1f} s ({size:.0f} MiB)")
            measure(f"sqlite:///{path}")
        print(f"load average {os.getloadavg()[0]:.1f}")
    if args.postgres:
        started = time.perf_counter()
        url = asyncio.run(copy_to_postgres(args.postgres, args.records))
        print(f"\nPostgreSQL: copied {args.records:,} records in {time.perf_counter() - started:.1f} s")
        try:
            started = time.perf_counter()
            migrated = subprocess.run([sys.executable, "-m", "consentmw", "migrate", "--store", url], capture_output=True, text=True, check=True)
            print(f"consentmw migrate (the first count of the totals): {time.perf_counter() - started:.1f} s; {migrated.stderr.strip().splitlines()[-1]}")
            measure(url, tuple(PG_LABELS))
            folds(url)
        finally:
            asyncio.run(drop_schema(url))
        print(f"load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
