"""What the running totals of a SQLite log (core/store/summary.py) cost per record written.

Each variant is a log filled with the same records (bench_report's site, returning visitors who
change their minds), then written on in batches of 500 in one transaction each, as the server's
writer does (synchronous OFF: the fsync is the same for all and would drown the difference). The
variants take turns, round after round, and the best round counts: CPU microseconds per record.

    python bench/bench_log_writes.py [--fill 50000] [--batches 20] [--rounds 5] [--also summary.py ...]

--also loads another version of summary.py (e.g. `git show main:consentmw/core/store/summary.py`)
and times its triggers beside this tree's.

--postgres URL does the same in PostgreSQL (postgres_summary.py): two fresh schemas, one log without
the totals' capture, one with it (counted), written with the store's INSERT; then a prune of the
oldest records in each (--prune of them). The work is in the server: the CPU time is the backend's
(/proc/PID/stat, so the server must run on this machine), with the wall time beside it.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import importlib.util
import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository, when run from a checkout
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_report import rows  # noqa: E402

from consentmw.core.store import SQLiteStore, summary  # noqa: E402
from consentmw.core.store.sqlite import INSERT  # noqa: E402

BATCH = 500


def load(path: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"summary_{abs(hash(path))}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make(path: str, totals: ModuleType | None) -> sqlite3.Connection:
    asyncio.run(SQLiteStore(path).migrate())
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous = OFF")
    if os.environ.get("CACHE"):
        conn.execute("PRAGMA cache_size = " + os.environ["CACHE"])
    conn.execute("BEGIN IMMEDIATE")
    for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'consent_report%'").fetchall():
        conn.execute(f"DROP TRIGGER {name}")
    conn.execute("DROP TABLE consent_report")
    if totals is not None:
        totals.install(conn)
    conn.execute("COMMIT")
    return conn


def backend_cpu(pid: int) -> float:
    """A PostgreSQL backend's user + system CPU seconds so far."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        fields = stat.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def postgres(base: str, fill: int, batches: int, rounds: int, prune: int) -> None:
    import asyncpg

    from consentmw.core.store import open_store, postgres_summary
    from consentmw.core.store.postgres import INSERT_MANY
    from consentmw.core.store.sql import INSERT_COLUMNS

    per_round = batches * BATCH
    records = [(dt.datetime.fromisoformat(r[0]), *r[1:]) for r in rows(fill + rounds * per_round)]
    variants = {"no capture (as before)": False, "capture (this tree)": True}
    conns, schemas = {}, []
    admin = await asyncpg.connect(base)
    try:
        for n, (name, totals) in enumerate(variants.items()):
            schema = f"consentmw_bench_writes_{os.getpid()}_{n}"
            schemas.append(schema)
            await admin.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}")
            url = f"{base}{'&' if '?' in base else '?'}search_path={schema}"
            store = open_store(url)
            await store.migrate()  # type: ignore[attr-defined]
            await store.close()  # type: ignore[attr-defined]
            conn = await asyncpg.connect(url)
            await conn.execute(postgres_summary.UNINSTALL)
            await conn.copy_records_to_table("consent_log", records=records[:fill], columns=INSERT_COLUMNS, schema_name=schema)
            if totals:
                store = open_store(url)
                await store.migrate()  # type: ignore[attr-defined]
                await store.close()  # type: ignore[attr-defined]
            await conn.execute("ANALYZE consent_log")
            conns[name] = conn
        best = {name: (float("inf"), float("inf")) for name in variants}
        for round_ in range(rounds):
            chunk = records[fill + round_ * per_round : fill + (round_ + 1) * per_round]
            for name in variants:
                conn = conns[name]
                pid = conn.get_server_pid()
                cpu, wall = backend_cpu(pid), time.perf_counter()
                for start in range(0, len(chunk), BATCH):
                    columns = [list(column) for column in zip(*chunk[start : start + BATCH])]
                    async with conn.transaction():
                        await conn.execute(INSERT_MANY, *columns)
                cpu, wall = (backend_cpu(pid) - cpu) / len(chunk) * 1e6, (time.perf_counter() - wall) / len(chunk) * 1e6
                best[name] = (min(best[name][0], cpu), min(best[name][1], wall))
        pruned = {}
        for name, conn in conns.items():
            cutoff = await conn.fetchval("SELECT created_at FROM consent_log ORDER BY created_at OFFSET $1 LIMIT 1", prune)
            wall = time.perf_counter()
            await conn.execute("DELETE FROM consent_log WHERE created_at < $1", cutoff)
            pruned[name] = time.perf_counter() - wall
    finally:
        for conn in conns.values():
            await conn.close()
        for schema in schemas:
            await admin.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        await admin.close()
    print(f"{per_round:,} records per round in batches of {BATCH}, after {fill:,}; best of {rounds} rounds; load {os.getloadavg()[0]:.1f}")
    bare = best["no capture (as before)"][0]
    for name, (cpu, wall) in best.items():
        print(f"{name:<40} {cpu:7.1f} us server CPU per record (+{cpu - bare:6.1f})   {wall:7.1f} us wall")
    for name, seconds in pruned.items():
        print(f"prune of the oldest {prune:,} records, {name:<24} {seconds:6.2f} s wall")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fill", type=int, default=50_000, help="records in each log before timing")
    parser.add_argument("--batches", type=int, default=20, help="batches of 500 per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--also", nargs="*", default=[], metavar="SUMMARY_PY")
    parser.add_argument("--postgres", metavar="URL", help="time PostgreSQL logs on this server instead")
    parser.add_argument("--prune", type=int, default=64_000, help="with --postgres: records the timed prune deletes")
    args = parser.parse_args()
    if args.postgres:
        asyncio.run(postgres(args.postgres, args.fill, args.batches, args.rounds, args.prune))
        return
    variants: dict[str, ModuleType | None] = {"no totals": None, "totals (this tree)": summary}
    variants.update((f"totals ({name})", load(name)) for name in args.also)
    per_round = args.batches * BATCH
    total = args.fill + args.rounds * per_round
    # The same records for every variant: a log of `total` records over 90 days, in time order.
    records = list(rows(total))
    with tempfile.TemporaryDirectory() as folder:
        logs = {name: make(os.path.join(folder, f"{n}.db"), module) for n, (name, module) in enumerate(variants.items())}
        for conn in logs.values():
            with conn:
                conn.executemany(INSERT, records[: args.fill])
        best = {name: float("inf") for name in logs}
        for round_ in range(args.rounds):
            chunk = records[args.fill + round_ * per_round : args.fill + (round_ + 1) * per_round]
            for name, conn in logs.items():
                cpu = time.process_time()
                for start in range(0, len(chunk), BATCH):
                    conn.execute("BEGIN IMMEDIATE")
                    conn.executemany(INSERT, chunk[start : start + BATCH])
                    conn.execute("COMMIT")
                best[name] = min(best[name], (time.process_time() - cpu) / len(chunk) * 1e6)
        for conn in logs.values():
            conn.close()
    print(
        f"{per_round:,} records per round in batches of {BATCH}, after {args.fill:,}; best of {args.rounds} rounds;"
        f" SQLite {sqlite3.sqlite_version}, load {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    bare = best["no totals"]
    for name, us in best.items():
        print(f"{name:<40} {us:7.1f} us CPU per record   (+{us - bare:5.1f} us for the totals)")


if __name__ == "__main__":
    main()
