"""How fast the consent log grows: bytes on disk per record, and per million records, for the
SQLite log (and PostgreSQL when CONSENTMW_TEST_POSTGRES_URL is set). The records look like the
banner's: a 36-character consent id, the default preset's four categories, a page path, a
truncated IPv4 address and a browser family.

    python bench/bench_log_size.py [records]
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import uuid
from pathlib import Path

from consentmw.core.store import ConsentRecord, open_store


def records(n: int) -> list[ConsentRecord]:
    return [
        ConsentRecord(
            consent_id=str(uuid.uuid4()),
            policy_id="site",
            policy_version="2026-12-01",
            choices={"necessary": True, "personalisation": i % 2 == 0, "analytics": i % 3 == 0, "advertising": False},
            method="banner",
            path=f"/products/{i % 5000}/reviews",
            ip=f"203.0.{i % 256}.{i % 200}",
            user_agent="Chrome",
        )
        for i in range(n)
    ]


async def fill(url: str, batch: list[ConsentRecord]) -> None:
    store = open_store(url, timeout=60)
    # As the server writes them: many at once, the log batching them into transactions.
    for start in range(0, len(batch), 500):
        await asyncio.gather(*(store.record(r) for r in batch[start : start + 500]))
    await store.close()


async def sqlite_size(n: int) -> int:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "log.db"
        await fill(f"sqlite:///{path}", records(n))
        return sum(p.stat().st_size for p in Path(folder).iterdir())


async def postgres_size(url: str, n: int) -> int:
    import asyncpg

    schema = "bench_log_size_" + uuid.uuid4().hex[:8]
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(f"CREATE SCHEMA {schema}")
        sep = "&" if "?" in url else "?"
        await fill(f"{url}{sep}search_path={schema}", records(n))
        return int(await conn.fetchval(f"SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = '{schema}' AND c.relkind = 'r'"))
    finally:
        await conn.execute(f"DROP SCHEMA {schema} CASCADE")
        await conn.close()


def report(name: str, n: int, size: int) -> None:
    per = size / n
    print(f"{name:<11} {n:>7} records  {size / 1e6:8.1f} MB  {per:6.0f} bytes/record  {per * 1e6 / 1e9:5.2f} GB per million records")


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 50_000
    report("sqlite", n, asyncio.run(sqlite_size(n)))
    url = os.environ.get("CONSENTMW_TEST_POSTGRES_URL")
    if url:
        report("postgresql", n, asyncio.run(postgres_size(url, n)))
    else:
        print("postgresql  (set CONSENTMW_TEST_POSTGRES_URL to measure)")


if __name__ == "__main__":
    main()
