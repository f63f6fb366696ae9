from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
from collections.abc import AsyncIterator, Sequence

from consentmw.core.store.base import ConsentRecord, LogStats, already_in, build_stats, utc


class MemoryStore:
    # For tests and throwaway demos: the log lives as long as the process.
    def __init__(self) -> None:
        self.records: list[ConsentRecord] = []
        self._ids = itertools.count(1)

    async def record(self, record: ConsentRecord) -> None:
        record.refuse_if_invalid()
        self.records.append(dataclasses.replace(record, id=next(self._ids)))

    async def close(self) -> None:
        pass

    async def migrate(self) -> None:
        pass

    def _select(self, since: dt.datetime | None, until: dt.datetime | None) -> list[ConsentRecord]:
        since_utc = utc(since) if since else None
        until_utc = utc(until) if until else None
        return sorted(
            (
                r
                for r in self.records
                if (since_utc is None or r.created_at >= since_utc) and (until_utc is None or r.created_at < until_utc)
            ),
            key=lambda r: (r.created_at, r.id),
        )

    async def history(
        self, *, since: dt.datetime | None = None, until: dt.datetime | None = None, consent_id: str | None = None
    ) -> AsyncIterator[ConsentRecord]:
        for r in self._select(since, until):
            if consent_id is None or r.consent_id == consent_id:
                yield r

    async def prune(self, before: dt.datetime) -> int:
        cutoff = utc(before)
        kept = [r for r in self.records if r.created_at >= cutoff]
        removed = len(self.records) - len(kept)
        self.records = kept
        return removed

    async def already_logged(self, records: Sequence[ConsentRecord]) -> list[bool]:
        return already_in(records, self.records)

    async def stats(
        self,
        *,
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
        latest: bool = False,
        include_scans: bool = False,
    ) -> LogStats:
        selected = self._select(since, until)
        scans = 0
        if not include_scans:
            scans = sum(r.scan for r in selected)
            selected = [r for r in selected if not r.scan]
        if latest:
            selected = list({r.consent_id: r for r in selected}.values())
        choices = [(cat, allowed, 1) for r in selected for cat, allowed in r.choices.items()]
        methods: dict[str, int] = {}
        for r in selected:
            methods[r.method] = methods.get(r.method, 0) + 1
        return build_stats(len(selected), len({r.consent_id for r in selected}), choices, methods.items(), scans)
