from __future__ import annotations

import asyncio
import datetime as dt
import functools
import ipaddress
import logging
import re
import threading
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

logger = logging.getLogger("consentmw.core.store")

# Every store gives up on a write after this many seconds, so a stuck database costs a visitor a
# 503 (and a retry from the banner) instead of a request that never ends.
DEFAULT_TIMEOUT = 5.0


# A writer gives up on a record this share of the timeout before its visitor stops waiting: a
# visitor told "not recorded" (503) must not turn up in the log after all.
GIVE_UP_EARLY = 0.2


class StoreError(Exception):
    """The consent log could not be written or read."""


class RefusedRecord(StoreError):
    """The log refused this record for a value in it: written again, it would be refused again.

    Any other StoreError is about the log (down, slow, locked, full), not about the record.
    """


def utc(moment: dt.datetime) -> dt.datetime:
    # Naive datetimes are taken as UTC: the log never records local time.
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)


# ISO 3166-1 alpha-2 ("DE"), or ISO 3166-2 ("US-CA", "GB-ENG"); '' when not known.
REGION = re.compile(r"[A-Z]{2}(?:-[A-Z0-9]{1,3})?")
# A BCP 47 tag as a browser or a site names a language: "ko", "en-GB", "zh-Hant-TW", "es-419".
LANGUAGE = re.compile(r"[A-Za-z]{2,3}(?:-[A-Za-z0-9]{1,8}){0,4}")
LANGUAGE_MAX = 35  # RFC 5646 4.4.1: the length a tag needs room for
MODES = ("", "opt-in", "opt-out")


@dataclass(frozen=True, slots=True)
class ConsentRecord:
    # One proof of consent. Append-only: a withdrawal is a new record with the same consent_id.
    consent_id: str
    policy_id: str | None
    policy_version: str
    choices: dict[str, bool]
    method: str  # banner | settings | form | opt-out | gpc | api
    path: str = ""
    ip: str = ""  # already truncated, never the raw address
    user_agent: str = ""  # browser family, never the raw string
    created_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    id: int | None = None  # given by the store when the record is written
    region: str = ""  # ISO 3166-1 or 3166-2 code of where the visitor was; "" unknown
    mode: str = ""  # "opt-in" | "opt-out"; "" for records from before regions existed
    language: str = ""  # BCP 47 tag of the texts the visitor saw; "" unknown
    scan: bool = False  # written by `consentmw scan`, not by a visitor

    def __post_init__(self) -> None:
        # Truncating twice changes nothing, so a raw address slipped in by mistake never reaches a log.
        object.__setattr__(self, "ip", truncate_ip(self.ip))
        object.__setattr__(self, "created_at", utc(self.created_at))
        if isinstance(self.region, str):
            object.__setattr__(self, "region", self.region.upper())

    def problem(self) -> str | None:
        """What a store refuses this record for (RefusedRecord), or None. Only the newer fields are
        checked here; the older ones are held to what each database accepts."""
        if not isinstance(self.region, str) or (self.region and not REGION.fullmatch(self.region)):
            return f"region {self.region!r} is not an ISO 3166 code such as 'DE' or 'US-CA'"
        if self.mode not in MODES:
            return f"mode {self.mode!r} is none of 'opt-in', 'opt-out' or ''"
        if not isinstance(self.language, str) or (
            self.language and (len(self.language) > LANGUAGE_MAX or not LANGUAGE.fullmatch(self.language))
        ):
            return f"language {self.language!r} is not a BCP 47 tag such as 'en' or 'pt-BR'"
        if not isinstance(self.scan, bool):
            return f"scan {self.scan!r} is not true or false"
        return None

    def refuse_if_invalid(self) -> None:
        problem = self.problem()
        if problem is not None:
            logger.error("consent log: 1 record(s) not written: %s", problem)
            raise RefusedRecord(f"the consent log refused the record: {problem}")

    def identity(self) -> tuple[Any, ...]:
        """Every field but the store's id, so that equal identities are the same proof of consent.

        Choices compare without their order (PostgreSQL's jsonb sorts them) and no policy id as
        none (a CSV export cannot tell '' from null).
        """
        return (
            self.created_at,
            self.consent_id,
            self.policy_id or None,
            self.policy_version,
            frozenset(self.choices.items()),
            self.method,
            self.path,
            self.ip,
            self.user_agent,
            self.region,
            self.mode,
            self.language,
            self.scan,
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "consent_id": self.consent_id,
            "created_at": self.created_at.isoformat(),
            "policy_id": self.policy_id,
            "policy_version": self.policy_version,
            "choices": self.choices,
            "method": self.method,
            "path": self.path,
            "ip": self.ip,
            "user_agent": self.user_agent,
            "region": self.region,
            "mode": self.mode,
            "language": self.language,
            "scan": self.scan,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ConsentRecord:
        choices = data["choices"]
        if not isinstance(choices, dict) or not all(isinstance(v, bool) for v in choices.values()):
            raise ValueError("choices must map category ids to true or false")
        # Exports from before these fields existed have none of them.
        scan = data.get("scan", False)
        if not isinstance(scan, bool):
            raise ValueError("scan must be true or false")
        texts = {name: data.get(name) or "" for name in ("region", "mode", "language")}
        if not all(isinstance(v, str) for v in texts.values()):
            raise ValueError("region, mode and language must be text")
        return cls(
            consent_id=data["consent_id"],
            policy_id=data.get("policy_id"),
            policy_version=data["policy_version"],
            choices=choices,
            method=data["method"],
            path=data.get("path") or "",
            ip=data.get("ip") or "",
            user_agent=data.get("user_agent") or "",
            created_at=dt.datetime.fromisoformat(data["created_at"]),
            id=int(data["id"]) if data.get("id") not in (None, "") else None,
            scan=scan,
            **texts,
        )


@dataclass(frozen=True, slots=True)
class LogStats:
    records: int
    visitors: int  # distinct consent ids
    categories: dict[str, dict[str, int]]  # {"analytics": {"allowed": 12, "refused": 30}}
    methods: dict[str, int]
    scans: int = 0  # records written by `consentmw scan` in the period, left out of the counts above

    def as_dict(self) -> dict[str, Any]:
        return {
            "records": self.records,
            "visitors": self.visitors,
            "categories": self.categories,
            "methods": self.methods,
            "scans_left_out": self.scans,
        }


def build_stats(
    records: int,
    visitors: int,
    choice_counts: Iterable[tuple[str, Any, int]],
    method_counts: Iterable[tuple[str, int]],
    scans: int = 0,
) -> LogStats:
    categories: dict[str, dict[str, int]] = {}
    for category, allowed, count in choice_counts:
        counts = categories.setdefault(category, {"allowed": 0, "refused": 0})
        counts["allowed" if allowed else "refused"] += count
    return LogStats(records, visitors, dict(sorted(categories.items())), dict(sorted(method_counts)), scans)


PENDING, COMMITTING, ABANDONED = "pending", "committing", "abandoned"


@dataclass(slots=True, eq=False)
class PendingWrite:
    """A record queued for a store's writer, and the request waiting for it.

    The writer and the waiter agree on one thing under a lock, so that a visitor never hears
    something other than what the log holds: the writer claims the write (COMMITTING) before the
    point where its transaction may commit, and only while the waiter still waits; a waiter whose
    time is up abandons it (ABANDONED) unless it was claimed, and then waits for the outcome.
    """

    record: ConsentRecord
    future: asyncio.Future[None]
    write_by: float  # time.monotonic(); after this the write must not start
    state: str = PENDING
    lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def queue(cls, record: ConsentRecord, timeout: float) -> PendingWrite:
        future = asyncio.get_running_loop().create_future()
        return cls(record, future, time.monotonic() + timeout * (1 - GIVE_UP_EARLY))

    def claim(self) -> bool:
        """The writer's side, just before the record may be committed: True if the waiter will take
        the outcome, False if the visitor has already been told it was not kept."""
        with self.lock:
            if self.state == PENDING and not self.future.done() and time.monotonic() < self.write_by:
                self.state = COMMITTING
            return self.state == COMMITTING

    def abandon(self) -> bool:
        """The waiter's side, when its time is up: True if the writer will never commit the record."""
        with self.lock:
            if self.state == PENDING:
                self.state = ABANDONED
            return self.state == ABANDONED

    def settle(self, error: StoreError | None) -> None:
        # On the future's own loop: either a writer thread's call_soon_threadsafe, or the loop itself.
        if self.future.done():
            return
        if error is None:
            self.future.set_result(None)
        else:
            # A fresh exception per waiter (a batch shares one error), of the same class.
            self.future.set_exception(type(error)(str(error)))

    def settle_soon(self, error: StoreError | None) -> None:
        settle_all([self], error)

    async def wait(self, timeout: float, where: str) -> None:
        try:
            async with asyncio.timeout(timeout):
                await asyncio.shield(self.future)
            return
        except TimeoutError:
            if self.abandon():
                raise StoreError(f"writing to {where} took more than {timeout} s; the record was not kept") from None
        except asyncio.CancelledError:
            # The request itself gave up (the API's own timeout, a client gone, a shutdown).
            if self.abandon():
                raise
        # The writer took the record into a transaction before the deadline: the visitor gets what it
        # commits, a moment late, rather than a 503 for a record the log holds. The writer settles
        # every write it claims, within its own time limits.
        while True:
            try:
                await asyncio.shield(self.future)
                return
            except asyncio.CancelledError:
                if self.future.done():
                    self.future.result()
                    return


def already_in(records: Sequence[ConsentRecord], stored: Iterable[ConsentRecord]) -> list[bool]:
    logged = {record.identity() for record in stored}
    return [record.identity() in logged for record in records]


def settle_all(writes: list[PendingWrite], error: StoreError | None) -> None:
    """Settle writes from any thread: one wake-up per event loop for the whole batch."""
    by_loop: dict[asyncio.AbstractEventLoop, list[PendingWrite]] = {}
    for write in writes:
        by_loop.setdefault(write.future.get_loop(), []).append(write)
    for loop, group in by_loop.items():
        try:
            loop.call_soon_threadsafe(_settle_group, group, error)
        except RuntimeError:  # that event loop is closed: nobody is waiting any more
            pass


def _settle_group(writes: list[PendingWrite], error: StoreError | None) -> None:
    for write in writes:
        write.settle(error)


def writable(batch: list[PendingWrite]) -> tuple[list[PendingWrite], float]:
    """The writes still wanted, and the seconds left before the first of them must be given up."""
    now = time.monotonic()
    live: list[PendingWrite] = []
    for write in batch:
        if write.future.done() or write.state != PENDING:
            continue
        if now < write.write_by:
            live.append(write)
        elif write.abandon():
            write.settle_soon(StoreError("the consent log was too slow; the record was not kept"))
    return live, (min(w.write_by for w in live) - now if live else 0.0)


class ConsentStore(Protocol):
    async def record(self, record: ConsentRecord) -> None: ...

    async def close(self) -> None: ...


class ConsentLog(ConsentStore, Protocol):
    # The read side, for the CLI and for a data-protection officer's questions.
    async def migrate(self) -> None: ...

    def history(
        self, *, since: dt.datetime | None = None, until: dt.datetime | None = None, consent_id: str | None = None
    ) -> AsyncIterator[ConsentRecord]: ...

    async def prune(self, before: dt.datetime) -> int: ...

    async def already_logged(self, records: Sequence[ConsentRecord]) -> list[bool]:
        """For each record, whether the log holds one with the same identity()."""
        ...

    async def stats(
        self,
        *,
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
        latest: bool = False,
        include_scans: bool = False,
    ) -> LogStats:
        """Counts over a period; the records `consentmw scan` wrote are left out (and counted in
        ``scans``) unless ``include_scans``."""
        ...


@functools.lru_cache(maxsize=4096)
def truncate_ip(address: str | None) -> str:
    """The address with its last octet (IPv4) or last 80 bits (IPv6) zeroed; '' if unreadable."""
    if not address:
        return ""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return ""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    if isinstance(ip, ipaddress.IPv4Address):
        return str(ipaddress.IPv4Address(int(ip) >> 8 << 8))
    return str(ipaddress.IPv6Address(int(ip) >> 80 << 80))
