from __future__ import annotations

from consentmw.store.base import ConsentRecord


class MemoryStore:
    # For tests and throwaway demos: the log lives as long as the process.
    def __init__(self) -> None:
        self.records: list[ConsentRecord] = []

    async def record(self, record: ConsentRecord) -> None:
        self.records.append(record)

    async def close(self) -> None:
        pass
