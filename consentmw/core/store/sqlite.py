from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import os
import queue
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

from consentmw.core.errors import ConfigError
from consentmw.core.store import sql, summary
from consentmw.core.store.report import Dialect, stats_in_period
from consentmw.core.store.base import (
    DEFAULT_TIMEOUT,
    ConsentRecord,
    LogStats,
    PendingWrite,
    RefusedRecord,
    StoreError,
    already_in,
    build_stats,
    utc,
    settle_all,
    writable,
)

logger = logging.getLogger("consentmw.core.store")

SCHEMA = """
CREATE TABLE IF NOT EXISTS consent_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at TEXT NOT NULL,
    consent_id TEXT NOT NULL,
    policy_id TEXT,
    policy_version TEXT NOT NULL,
    choices TEXT NOT NULL CHECK (json_valid(choices)),
    method TEXT NOT NULL,
    path TEXT NOT NULL DEFAULT '',
    ip TEXT NOT NULL DEFAULT '',
    user_agent TEXT NOT NULL DEFAULT '',
    region TEXT NOT NULL DEFAULT '',
    mode TEXT NOT NULL DEFAULT '',
    language TEXT NOT NULL DEFAULT '',
    scan INTEGER NOT NULL DEFAULT 0
);
-- A visitor's records in order: the report's totals find a record's neighbours through it.
CREATE INDEX IF NOT EXISTS consent_log_visitor ON consent_log (consent_id, created_at);
DROP INDEX IF EXISTS consent_log_consent_id;
CREATE INDEX IF NOT EXISTS consent_log_created_at ON consent_log (created_at);
CREATE TRIGGER IF NOT EXISTS consent_log_append_only BEFORE UPDATE ON consent_log
BEGIN
    SELECT RAISE(ABORT, 'the consent log is append-only: record a new choice instead');
END;
"""
# The rows at any of the given times (a JSON array): the created_at index finds them.
AT_TIMES = f"{sql.SELECT} WHERE created_at IN (SELECT value FROM json_each(?))"
INSERT = f"INSERT INTO consent_log ({', '.join(sql.INSERT_COLUMNS)}) VALUES ({', '.join('?' * len(sql.INSERT_COLUMNS))})"
BATCH = 512  # records per transaction at most; one commit (one fsync) covers them all
PRUNE_CHUNK = 5000  # rows per delete, so a big prune never holds the write lock for long
_STOP = object()
# What one record can cause (a constraint, a value sqlite3 cannot bind or encode, choices that are not
# JSON), unlike a log that is locked, full or unreadable: only these are worth trying record by record.
REFUSALS = (sqlite3.IntegrityError, sqlite3.DataError, sqlite3.ProgrammingError, ValueError, TypeError, OverflowError)


FileId = tuple[int, int]


def file_id(path: str) -> FileId | None:
    """Which file is at the path now (device, inode), or None when none is."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def let_go(conn: sqlite3.Connection) -> None:
    """Closes a writer's connection, leaving an empty -wal file behind. SQLite does not checkpoint
    on close once the file has left its path, and a new file at the path would take the old one's
    pages from the -wal file left there: they go into the old file first."""
    with contextlib.suppress(sqlite3.Error):
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def cause(exc: BaseException) -> str:
    """The error as an operator needs it: SQLite's own name for it (SQLITE_FULL, SQLITE_READONLY,
    SQLITE_BUSY...) before its message."""
    name = getattr(exc, "sqlite_errorname", None)
    return f"{name}: {exc}" if name else str(exc)


def missing_columns(conn: sqlite3.Connection) -> list[tuple[str, str, str]]:
    """The columns a log made by an earlier version lacks (none when there is no table yet)."""
    present = {row[1] for row in conn.execute("PRAGMA table_info(consent_log)")}
    return [column for column in sql.ADDED_COLUMNS if present and column[0] not in present]


def add_columns(conn: sqlite3.Connection) -> None:
    # In the caller's write transaction, so two servers upgrading one file add each column once.
    for name, sqlite_type, _ in missing_columns(conn):
        conn.execute(f"ALTER TABLE consent_log ADD COLUMN {name} {sqlite_type}")


def timestamp(moment: dt.datetime) -> str:
    # Fixed width and always UTC, so text order is time order and the created_at index serves ranges.
    return utc(moment).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def from_row(row: Sequence[Any]) -> ConsentRecord:
    return sql.from_row(row, dt.datetime.fromisoformat)


def _mark(n: int) -> str:
    return "?"


def _row(write: PendingWrite) -> tuple[Any, ...]:
    return sql.row_values(write.record, timestamp(write.record.created_at))


def _insert(conn: sqlite3.Connection, writes: list[PendingWrite]) -> dict[PendingWrite, Exception]:
    """Insert the records in the open transaction; those refused are left out, with the reason."""
    conn.execute("SAVEPOINT batch")
    try:
        conn.executemany(INSERT, [_row(w) for w in writes])
        return {}
    except REFUSALS:
        # One refused record must not cost the others their proof of consent. SQLite undoes only
        # the statement that fails, so: undo the rows already in, then insert one at a time.
        conn.execute("ROLLBACK TO batch")
    refused: dict[PendingWrite, Exception] = {}
    for write in writes:
        try:
            conn.execute(INSERT, _row(write))
        except REFUSALS as exc:
            refused[write] = exc
    return refused


DIALECT = Dialect(
    mark=lambda n: f"?{n}",  # numbered: a query may use a parameter twice
    param_time=timestamp,
    read_time=dt.datetime.fromisoformat,
    each_choice="json_each({})",
    same="IS",
    allowed="({}.type = 'true')",
    buckets={"day": "substr(created_at, 1, 10)", "week": "date(substr(created_at, 1, 10), 'weekday 0', '-6 days')"},
    totals=True,
)


class SQLiteStore:
    """The consent log in one SQLite file (WAL).

    One writer thread per store takes records from a queue and commits whatever has piled up in one
    transaction, so concurrent visitors share an fsync and the event loop never waits on the disk.
    """

    dialect = DIALECT

    def __init__(self, path: str | os.PathLike[str], *, timeout: float = DEFAULT_TIMEOUT, synchronous: str = "full") -> None:
        self.path = os.fspath(path)
        self.timeout = timeout
        # FULL: a choice the visitor was told is recorded survives a power cut, not just a crash.
        if synchronous.upper() not in {"OFF", "NORMAL", "FULL", "EXTRA"}:
            raise ConfigError(f"synchronous={synchronous!r}: use 'normal', 'full' or 'extra'")
        self.synchronous = synchronous.upper()
        directory = os.path.dirname(os.path.abspath(self.path))
        if not os.path.isdir(directory):
            raise ConfigError(f"the consent log {self.path!r} cannot be created: directory {directory!r} does not exist")
        self._lock = threading.Lock()
        self._queue: queue.SimpleQueue[Any] | None = None
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"SQLiteStore({self.path!r})"

    def _connect(self, *, create: bool = True) -> sqlite3.Connection:
        if not create and not os.path.exists(self.path):
            raise StoreError(f"there is no consent log at {self.path!r}")
        conn = sqlite3.connect(self.path, timeout=self.timeout, check_same_thread=False, isolation_level=None)
        deadline = time.monotonic() + self.timeout
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self.timeout * 1000)}")
            conn.execute(f"PRAGMA synchronous = {self.synchronous}")
            while True:
                # Another server opening a new log at the same moment can make these fail at once,
                # without the busy timeout's wait (switching to WAL, or a schema read gone stale):
                # try again until the timeout. The schema is written under the write lock up front.
                try:
                    conn.execute("PRAGMA journal_mode = WAL")
                    if create or missing_columns(conn):
                        # A reader upgrades an older log too: its queries name the new columns.
                        # executescript() would commit a transaction begun outside it.
                        conn.executescript(f"BEGIN IMMEDIATE;{SCHEMA if create else ''}")
                        add_columns(conn)
                        if create:
                            summary.install(conn)
                        conn.execute("COMMIT")
                    break
                except sqlite3.OperationalError as exc:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    if "locked" not in str(exc) or time.monotonic() > deadline:
                        raise
                    time.sleep(0.01)
        except BaseException:
            conn.close()
            raise
        return conn

    # -- the write side -------------------------------------------------------------------------

    async def record(self, record: ConsentRecord) -> None:
        record.refuse_if_invalid()
        write = PendingWrite.queue(record, self.timeout)
        self._writer_queue().put(write)
        await write.wait(self.timeout, f"the consent log {self.path!r}")

    def _writer_queue(self) -> queue.SimpleQueue[Any]:
        with self._lock:
            if self._queue is None:
                self._queue = queue.SimpleQueue()
                self._thread = threading.Thread(
                    target=self._write_loop, args=(self._queue,), name="consentmw-sqlite", daemon=True
                )
                self._thread.start()
            return self._queue

    def _write_loop(self, inbox: queue.SimpleQueue[Any]) -> None:
        conn: sqlite3.Connection | None = None
        opened: FileId | None = None  # the file the connection writes to
        stopping = False
        while not stopping:
            batch = [inbox.get()]
            while len(batch) < BATCH:
                try:
                    batch.append(inbox.get_nowait())
                except queue.Empty:
                    break
            if _STOP in batch:
                stopping = True
                batch = [item for item in batch if item is not _STOP]
            pending, budget = writable(batch)
            if not pending:
                continue
            error: StoreError | None = None
            refused: dict[PendingWrite, Exception] = {}
            try:
                if conn is not None and file_id(self.path) != opened:
                    # Deleted (an operator, a deploy) or replaced (a restored backup) under the running
                    # server: the connection would go on writing into a file no longer at the path.
                    logger.warning("consent log %s: the file was deleted or replaced while in use; opening it again", self.path)
                    let_go(conn)
                    conn = None
                if conn is None:
                    conn, opened = self._connect_writer()
                # Wait for another process's write lock no longer than the first visitor in line can wait.
                conn.execute(f"PRAGMA busy_timeout = {max(1, int(budget * 1000))}")
                conn.execute("BEGIN IMMEDIATE")
                try:
                    # The point of no return: from here the visitors get what the commit does.
                    pending = [write for write in pending if write.claim()]
                    refused = _insert(conn, pending)
                    if file_id(self.path) != opened:
                        raise StoreError("the file was deleted or replaced during the write")
                    conn.execute("COMMIT")
                except BaseException:
                    # A failed COMMIT (a full disk) may have rolled back already: keep its error.
                    if conn.in_transaction:
                        with contextlib.suppress(sqlite3.Error):
                            conn.execute("ROLLBACK")
                    raise
            except Exception as exc:
                reason = cause(exc)
                logger.error("consent log %s: %d record(s) not written: %s", self.path, len(pending), reason)
                error = StoreError(f"cannot write the consent log {self.path!r}: {reason}")
                refused = {}
                if conn is not None:
                    let_go(conn)
                    conn = None  # reconnect on the next batch: the file may be back
            for write, problem in refused.items():
                logger.error("consent log %s: 1 record(s) not written: %s", self.path, problem)
                write.settle_soon(RefusedRecord(f"cannot write the consent log {self.path!r}: {problem}"))
            settle_all([w for w in pending if w not in refused], error)
        if conn is not None:
            conn.close()

    def _connect_writer(self) -> tuple[sqlite3.Connection, FileId]:
        """A connection and the file it has open, as far as the path says: the same file before and
        after opening, or the path changed in between and it is opened again."""
        for _ in range(3):
            before = file_id(self.path)
            conn = self._connect()  # opens the file, and makes it when there was none
            if before is None:
                before = file_id(self.path)
                conn.close()
                conn = self._connect()
            if before is not None and before == file_id(self.path):
                return conn, before
            conn.close()
        raise StoreError("the file keeps changing under the server")

    async def close(self) -> None:
        with self._lock:
            inbox, thread, self._queue, self._thread = self._queue, self._thread, None, None
        if inbox is not None and thread is not None:
            inbox.put(_STOP)  # the thread finishes what was queued before it, then exits
            await asyncio.to_thread(thread.join, self.timeout)

    # -- the read side --------------------------------------------------------------------------

    async def _run(self, work: Any, *args: Any) -> Any:
        def job() -> Any:
            conn = self._connect(create=False)
            try:
                return work(conn, *args)
            finally:
                conn.close()

        try:
            return await asyncio.to_thread(job)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read the consent log {self.path!r}: {exc}") from exc

    async def migrate(self) -> None:
        try:
            await asyncio.to_thread(lambda: self._connect().close())
        except sqlite3.Error as exc:
            raise StoreError(f"cannot create the consent log {self.path!r}: {exc}") from exc

    async def history(
        self, *, since: dt.datetime | None = None, until: dt.datetime | None = None, consent_id: str | None = None
    ) -> AsyncIterator[ConsentRecord]:
        def fetch(query: str, params: list[Any]) -> Any:
            return self._run(lambda conn: conn.execute(query, params).fetchall())

        async for record in sql.page_through(
            fetch, _mark, timestamp, from_row, since=since, until=until, consent_id=consent_id
        ):
            yield record

    async def prune(self, before: dt.datetime) -> int:
        def delete(conn: sqlite3.Connection) -> int:
            removed = 0
            while True:
                cursor = conn.execute(
                    "DELETE FROM consent_log WHERE id IN"
                    f" (SELECT id FROM consent_log WHERE created_at < ? LIMIT {PRUNE_CHUNK})",
                    (timestamp(before),),
                )
                removed += cursor.rowcount
                if cursor.rowcount < PRUNE_CHUNK:
                    return removed

        return await self._run(delete)

    async def already_logged(self, records: Sequence[ConsentRecord]) -> list[bool]:
        times = json.dumps(sorted({timestamp(r.created_at) for r in records}))
        rows = await self._run(lambda conn: conn.execute(AT_TIMES, (times,)).fetchall())
        return already_in(records, map(from_row, rows))

    async def stats(
        self,
        *,
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
        latest: bool = False,
        include_scans: bool = False,
    ) -> LogStats:
        # Numbered marks: the query reads the period twice without `latest`.
        filter_sql, params = sql.where(DIALECT.mark, timestamp, since=since, until=until, scan=None if include_scans else False)
        counted = sql.stats_query(filter_sql, latest, "json_each(f.choices)", "choice.value")
        scan_sql, scan_params = sql.where(_mark, timestamp, since=since, until=until, scan=True)
        scans_counted = f"SELECT count(*) FROM consent_log{scan_sql}"
        whole = since is None and until is None

        def count(conn: sqlite3.Connection) -> LogStats:
            conn.execute("BEGIN")  # one snapshot for the counts
            try:
                if latest and not include_scans and conn.execute(summary.PRESENT).fetchone()[0]:
                    # Each visitor's newest record: the running totals have them.
                    if whole:
                        standing, by_choice, by_method, scanned = summary.STATS
                        [(visitors,)] = conn.execute(standing).fetchall()
                        return build_stats(
                            visitors, visitors, conn.execute(by_choice).fetchall(), conn.execute(by_method).fetchall(),
                            conn.execute(scanned).fetchone()[0],
                        )
                    query, scans, bounds = stats_in_period(DIALECT, since, until)
                    return sql.read_stats(conn.execute(query, bounds).fetchall(), conn.execute(scans, bounds).fetchone()[0])
                scans = 0 if include_scans else conn.execute(scans_counted, scan_params).fetchone()[0]
                return sql.read_stats(conn.execute(counted, params).fetchall(), scans)
            finally:
                conn.execute("ROLLBACK")

        return await self._run(count)

    async def aggregate(self, statements: Sequence[tuple[str, Sequence[Any]]]) -> list[list[Sequence[Any]]]:
        def read(conn: sqlite3.Connection) -> list[list[Sequence[Any]]]:
            conn.execute("BEGIN")  # one snapshot for every figure
            try:
                return [conn.execute(query, params).fetchall() for query, params in statements]
            finally:
                conn.execute("ROLLBACK")

        return await self._run(read)
