from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

from consentmw.core.errors import ConfigError, install_command
from consentmw.core.store import postgres_summary, sql
from consentmw.core.store.report import Dialect, pg_stats_in_period
from consentmw.core.store.base import (
    DEFAULT_TIMEOUT,
    ConsentRecord,
    LogStats,
    PendingWrite,
    RefusedRecord,
    StoreError,
    already_in,
    utc,
    writable,
)

try:
    import asyncpg
except ImportError:  # pragma: no cover - depends on the installed extras
    asyncpg = None

logger = logging.getLogger("consentmw.core.store")

SCHEMA = """
CREATE TABLE IF NOT EXISTS consent_log (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    created_at timestamptz NOT NULL,
    consent_id text NOT NULL,
    policy_id text,
    policy_version text NOT NULL,
    choices jsonb NOT NULL,
    method text NOT NULL,
    path text NOT NULL DEFAULT '',
    ip text NOT NULL DEFAULT '',
    user_agent text NOT NULL DEFAULT '',
    region text NOT NULL DEFAULT '',
    mode text NOT NULL DEFAULT '',
    language text NOT NULL DEFAULT '',
    scan boolean NOT NULL DEFAULT false
);
{added_columns}
CREATE INDEX IF NOT EXISTS consent_log_consent_id ON consent_log (consent_id);
CREATE INDEX IF NOT EXISTS consent_log_created_at ON consent_log (created_at);
CREATE OR REPLACE FUNCTION consent_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the consent log is append-only: record a new choice instead';
END
$$;
DO $$
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM pg_trigger
        WHERE tgname = 'consent_log_append_only' AND tgrelid = 'consent_log'::regclass
    ) THEN
        CREATE TRIGGER consent_log_append_only BEFORE UPDATE ON consent_log
            FOR EACH ROW EXECUTE FUNCTION consent_log_append_only();
    END IF;
END
$$;
""".format(
    # Logs made before these columns existed get them (old rows: unknown, not a scan). Looked up
    # first: ALTER TABLE locks the table even when it has nothing to add, and servers start often.
    added_columns="\n".join(
        f"""DO $$
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM pg_attribute
        WHERE attrelid = 'consent_log'::regclass AND attname = '{name}' AND NOT attisdropped
    ) THEN
        ALTER TABLE consent_log ADD COLUMN {name} {pg_type};
    END IF;
END
$$;"""
        for name, _, pg_type in sql.ADDED_COLUMNS
    )
)
# Whether SCHEMA has nothing to do. Looked up first: a role that may only append to the log (SELECT
# and INSERT) cannot run SCHEMA's statements, and needs none of them on a current log.
CURRENT = (
    "SELECT to_regclass('consent_log') IS NOT NULL AND to_regclass('consent_log_consent_id') IS NOT NULL"
    " AND to_regclass('consent_log_created_at') IS NOT NULL"
    " AND EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'consent_log_append_only' AND tgrelid = to_regclass('consent_log'))"
    " AND (SELECT count(*) FROM pg_attribute WHERE attrelid = to_regclass('consent_log') AND NOT attisdropped"
    f" AND attname IN ({', '.join(repr(name) for name, _, _ in sql.ADDED_COLUMNS)})) = {len(sql.ADDED_COLUMNS)}"
)
# Several app servers may start at once on an empty database; one creates the table, the others wait.
INSTALL_LOCK_TIMEOUT = 200  # ms an install of the totals' capture waits for the log (writers queue behind it)
INSTALL_ATTEMPTS = 60  # `consentmw migrate`: one a second
PRUNE_CHUNK = 10_000  # records a prune deletes per transaction (about 0.1 s with the report's capture)
PRUNE = f"DELETE FROM consent_log WHERE id IN (SELECT id FROM consent_log WHERE created_at < $1 LIMIT {PRUNE_CHUNK})"
SCHEMA_LOCK = "SELECT pg_advisory_xact_lock(hashtext('consentmw.consent_log'))"
# One statement writes a whole batch: a round trip and a commit shared by every visitor in it.
INSERT_MANY = (
    f"INSERT INTO consent_log ({', '.join(sql.INSERT_COLUMNS)}) SELECT * FROM unnest("
    "$1::timestamptz[], $2::text[], $3::text[], $4::text[], $5::jsonb[], $6::text[], $7::text[], $8::text[], $9::text[],"
    " $10::text[], $11::text[], $12::text[], $13::boolean[])"
)
# Whether a backend is still there: one whose COMMIT went unanswered may still be committing.
RUNNING = "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = $1)"
# The rows at any of the given times: the created_at index finds them.
AT_TIMES = f"{sql.SELECT} WHERE created_at = ANY($1::timestamptz[])"
BATCH = 500  # records per statement at most
WRITERS = 4  # batches in flight at once per app server; the next one fills while these commit


def _columns(batch: Sequence[PendingWrite]) -> list[list[Any]]:
    """The batch as one array per column, for a single INSERT ... SELECT FROM unnest(...)."""
    rows = [sql.row_values(write.record, write.record.created_at) for write in batch]
    return [list(column) for column in zip(*rows)]


def _refused_record(exc: BaseException) -> bool:
    """Whether a write failed for a value in it, so that smaller groups get the other records in.

    Not a server that is down, slow or locked: trying again in parts would only repeat the wait.
    """
    cause = exc.__cause__ if isinstance(exc, StoreError) else exc
    return isinstance(
        cause,
        (
            asyncpg.DataError,  # class 22: NUL in text, bad JSON; asyncpg's own for a lone surrogate
            asyncpg.IntegrityConstraintViolationError,  # 23: NOT NULL, a CHECK the site added
            asyncpg.ProgramLimitExceededError,  # 54: a value too big for its index
            TypeError,  # and ValueError: choices json.dumps cannot write
            ValueError,
        ),
    )


# What a connection the server has dropped raises on its next use.
# InternalClientError: a connection the server ends while asyncpg is sending on it may leave its
# protocol mid-operation ("cannot switch to state ..."); it is as lost as one that says so.
CONNECTION_LOST = (
    (ConnectionError, asyncpg.ConnectionDoesNotExistError, asyncpg.InterfaceError, asyncpg.AdminShutdownError, asyncpg.InternalClientError)
    if asyncpg is not None
    else ()
)


# What keeps a role from installing, counting or folding the report's totals: its privileges, or a
# read-only session (default_transaction_read_only, a hot standby). It records and reports all the same.
CANNOT_WRITE = (asyncpg.InsufficientPrivilegeError, asyncpg.ReadOnlySQLTransactionError) if asyncpg is not None else ()


def drop(conn: Any) -> None:
    """Closes a pooled connection at once; the pool opens another when it needs one."""
    with contextlib.suppress(asyncpg.InterfaceError):
        conn.terminate()


def _mark(n: int) -> str:
    return f"${n}"


def from_row(row: Sequence[Any]) -> ConsentRecord:
    return sql.from_row(row, lambda created_at: created_at)


async def create_schema(pool: Any, *, count: bool = False, progress: Callable[[str], None] | None = None) -> str | None:
    """The log's table and the capture of the report's totals (postgres_summary.py); the totals of
    a new or small log counted at once, of any log with `count` (`consentmw migrate`). Returns why
    the totals are not kept, if they are not: a role that cannot install them still records."""
    async with pool.acquire() as conn:
        # READ COMMITTED whatever the database's default: each check after the lock sees what the
        # server that held it before made.
        async with conn.transaction(isolation="read_committed"):
            await conn.execute(SCHEMA_LOCK)
            if not await conn.fetchval(CURRENT):
                await conn.execute(SCHEMA)
        try:
            # Short: writers wait only for CREATE TRIGGER's lock, and never behind it for long: while
            # a long write (a prune) holds the log, a starting server leaves the install to the next
            # start, and `consentmw migrate` tries again for a minute. Counting is apart.
            attempts = INSTALL_ATTEMPTS if count else 1
            for attempt in range(attempts):
                try:
                    if not await conn.fetchval(postgres_summary.INSTALLED):
                        async with conn.transaction(isolation="read_committed"):
                            await conn.execute(f"SET LOCAL lock_timeout = '{INSTALL_LOCK_TIMEOUT}ms'")
                            await conn.execute(SCHEMA_LOCK)
                            if not await conn.fetchval(postgres_summary.INSTALLED):
                                await conn.execute(postgres_summary.install_sql(await postgres_summary.schema_of(conn)))
                    break
                except asyncpg.LockNotAvailableError:
                    if attempt + 1 == attempts:
                        raise
                    await asyncio.sleep(1.0)
        except asyncpg.LockNotAvailableError:
            return "the report's running totals were not installed: the log was busy (a prune?); the next start or `consentmw migrate` installs them"
        except CANNOT_WRITE as exc:
            return (
                f"the report's running totals cannot be kept by this role ({exc}); the log's owner installs them"
                " (`consentmw migrate` run as the owner of consent_log)"
            )
        try:
            if await _counted(conn):
                return None
        except CANNOT_WRITE:
            return None  # the capture is on (it writes as its owner): the owner's reports and `migrate` count
        try:
            if not count and not await conn.fetchval(postgres_summary.SMALL, postgres_summary.COUNTED_AT_START):
                return "the report's running totals of this log are not counted yet: `consentmw migrate` counts them"
            if progress is not None:
                records = await conn.fetchval("SELECT reltuples::bigint FROM pg_class WHERE oid = 'consent_log'::regclass")
                about = f"about {records} record(s)" if records > 0 else "the records"  # -1: never analysed
                progress(f"report totals: counting {about} (about 15 s per million on two cores)")
            started = time.monotonic()
            await _under_fold_lock(conn, lambda: _count(conn))
            if progress is not None:
                progress(f"report totals: counted in {time.monotonic() - started:.1f} s")
            return None
        except CANNOT_WRITE as exc:
            return f"the report's running totals cannot be counted by this role ({exc}); `consentmw migrate` run as the log's owner counts them"


async def _counted(conn: Any) -> bool:
    """Whether the capture is on and the totals are counted: then the totals, folded, are the log's."""
    return bool(await conn.fetchval(postgres_summary.INSTALLED)) and bool(await conn.fetchval(postgres_summary.STATE))


async def _under_fold_lock(conn: Any, work: Callable[[], Awaitable[Any]]) -> Any:
    """`work` in a REPEATABLE READ transaction begun once the fold lock is held: its snapshot sees
    the previous fold's (or count's) commit. Writers never take this lock."""
    await conn.execute(postgres_summary.LOCK, timeout=REPORT_TIMEOUT)
    try:
        async with conn.transaction(isolation="repeatable_read"):
            await conn.execute(REPORT_SETTINGS)
            return await work()
    finally:
        await conn.execute(postgres_summary.UNLOCK)


async def _count_if_small(conn: Any) -> bool:
    """Counts the totals of a small log whose capture is on (a log emptied by TRUNCATE, one whose
    count was left to a report): whether they are counted now."""
    if not await conn.fetchval(postgres_summary.INSTALLED):
        return False
    if not await conn.fetchval(postgres_summary.SMALL, postgres_summary.COUNTED_AT_START):
        return False
    await _under_fold_lock(conn, lambda: _count(conn))
    return True


async def _forget_changes(conn: Any) -> None:
    if not await conn.fetchval(postgres_summary.STATE):
        await conn.execute(f"DELETE FROM {await postgres_summary.schema_of(conn)}.consent_report_changes", timeout=REPORT_TIMEOUT)


async def _count(conn: Any) -> None:
    if await conn.fetchval(postgres_summary.STATE):
        return  # another server or `migrate` counted them meanwhile
    for statement in postgres_summary.count_sql(await postgres_summary.schema_of(conn)):
        await conn.execute(statement, timeout=REPORT_TIMEOUT)


async def _fold(conn: Any) -> bool:
    """Folds the changes into the totals, in the caller's transaction under the fold lock; False
    if the totals are not counted (then nothing is read from them)."""
    if not await conn.fetchval(postgres_summary.STATE):
        return False
    for statement in postgres_summary.fold_sql(await postgres_summary.schema_of(conn)):
        await conn.execute(statement, timeout=REPORT_TIMEOUT)
    return True


DIALECT = Dialect(
    mark=_mark,
    param_time=utc,
    read_time=utc,
    each_choice="jsonb_each({})",
    same="IS NOT DISTINCT FROM",
    allowed="({}.value = 'true'::jsonb)::int",
    buckets={
        # asyncpg writes datetime.max as 'infinity' (datetime.min as '-infinity'), which has no
        # day: such a record counts on the last (first) day Python knows, as it reads back.
        "day": postgres_summary.DAY.format("created_at"),
        "week": postgres_summary.WEEK.format("created_at"),
    },
    totals=True,
    totals_table=postgres_summary.TOTALS,
    item="(({})::jsonb ->> {})",
    json_item="(({})::jsonb -> {})",
    day_of=postgres_summary.DAY,
    # A day's records: from its first moment (UTC) to its last, 'infinity' on the last day.
    in_day=(
        "{col} >= CASE WHEN {day} <= '0001-01-01' THEN '-infinity'::timestamptz ELSE ({day})::date::timestamp AT TIME ZONE 'UTC' END"
        " AND {col} <= CASE WHEN {day} >= '9999-12-31' THEN 'infinity'::timestamptz"
        " ELSE ((({day})::date + 1)::timestamp - interval '1 microsecond') AT TIME ZONE 'UTC' END"
    ),
    bucket_of_day={"day": "{}", "week": "to_char(date_trunc('week', ({})::timestamp), 'YYYY-MM-DD')"},
    postgres=True,
)
# A report reads the whole period: minutes on a big log are fine for a command an operator runs.
REPORT_TIMEOUT = 3600.0
# The memory a report's sorts and hashes may take in the server, for its transaction only. With the
# default (4 MB) sorting a log of a million records for the window pass goes to disk in many runs,
# and the report takes several times as long; one operator's command may take more for a while.
REPORT_WORK_MEM = "256MB"
# No JIT for the report: the planner's estimates for its window passes over a big log are far above
# what they cost, and compiling them took seconds of a report that runs in a few without it.
REPORT_SETTINGS = f"SET LOCAL work_mem = '{REPORT_WORK_MEM}'; SET LOCAL jit = off"


class PostgresStore:
    """The consent log in PostgreSQL, shared by any number of app servers.

    The pool is opened on first use (the middleware is built before the event loop runs) and the
    table is created then if it is missing.
    """

    dialect = DIALECT
    counts_report_totals = True  # migrate() counts them, and takes a progress callback

    def __init__(self, dsn: str, *, timeout: float = DEFAULT_TIMEOUT, min_size: int = 1, max_size: int = 10) -> None:
        if asyncpg is None:
            raise ConfigError(f"a PostgreSQL consent log needs asyncpg: {install_command('postgresql')}")
        scheme, sep, rest = dsn.partition("://")
        # SQLAlchemy-style URLs ("postgresql+asyncpg://") name a driver asyncpg does not expect.
        self.dsn = "postgresql" + sep + rest if scheme.startswith("postgres") else dsn
        self.timeout = timeout
        self.min_size = min_size
        # Each app server holds up to max_size connections; keep the sum under the server's max_connections.
        self.max_size = max_size
        self._pool: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = asyncio.Lock()
        self._pending: list[PendingWrite] = []
        self._writers: set[asyncio.Task[None]] = set()
        self._warned = False

    def __repr__(self) -> str:
        host = self.dsn.rpartition("@")[2]  # never show a password
        return f"PostgresStore({host!r})"

    def _bind(self) -> asyncio.AbstractEventLoop:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            # A pool belongs to one event loop; a new loop (a test client, a restarted server) gets its own.
            self._pool, self._loop, self._lock = None, loop, asyncio.Lock()
            self._pending, self._writers = [], set()
        return loop

    async def _get_pool(self) -> Any:
        self._bind()
        async with self._lock:
            if self._pool is None:
                pool = await asyncpg.create_pool(
                    self.dsn,
                    min_size=self.min_size,
                    max_size=self.max_size,
                    timeout=self.timeout,
                    command_timeout=self.timeout,
                )
                try:
                    missing = await create_schema(pool)
                except BaseException:
                    pool.terminate()
                    raise
                if missing and not self._warned:
                    self._warned = True
                    logger.warning("consent log %r: %s; until then `log report` counts from the records", self, missing)
                self._pool = pool
        return self._pool

    async def _use(self, what: str, work: Any, timeout: float | None = None) -> Any:
        timeout = self.timeout if timeout is None else timeout
        try:
            async with asyncio.timeout(timeout):
                return await work(await self._get_pool())
        except TimeoutError:
            raise StoreError(f"{what} the consent log took more than {timeout:.2f} s") from None
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise StoreError(f"{what} the consent log failed: {type(exc).__name__}: {exc}") from exc

    async def record(self, record: ConsentRecord) -> None:
        record.refuse_if_invalid()
        loop = self._bind()
        write = PendingWrite.queue(record, self.timeout)
        self._pending.append(write)
        if len(self._writers) < WRITERS:
            writer = loop.create_task(self._write_batches())
            self._writers.add(writer)
            writer.add_done_callback(self._writers.discard)
        await write.wait(self.timeout, "the consent log")

    async def _write_batches(self) -> None:
        while self._pending:
            batch = self._pending[:BATCH]
            del self._pending[:BATCH]
            await self._write(batch)

    async def _write(self, batch: list[PendingWrite]) -> None:
        batch, _ = writable(batch)
        # Claimed up front: every step before COMMIT ends by the first write's deadline, so the
        # visitors waiting on the batch hear its outcome, a 503 in time when the log is down.
        claimed = [write for write in batch if write.claim()]
        try:
            await self._write_claimed(claimed)
        except BaseException as exc:
            # Their visitors wait for the outcome: whatever went wrong, they hear of it.
            logger.error("consent log %r: %d record(s) not written: %r", self, len(claimed), exc)
            for write in claimed:
                write.settle(StoreError(f"writing to the consent log failed: {exc!r}"))
            raise

    async def _write_claimed(self, batch: list[PendingWrite]) -> None:
        if not batch:
            return
        error: StoreError | None = None
        try:
            budget = min(write.write_by for write in batch) - time.monotonic()
            if budget <= 0:
                raise StoreError("the consent log was too slow; the record was not kept")
            columns = _columns(batch)
            await self._commit_batch(batch, columns, budget)
        except (StoreError, TypeError, ValueError) as exc:
            if len(batch) > 1 and _refused_record(exc):
                # One record PostgreSQL refuses must not cost the others their proof of consent:
                # write the halves apart until it is alone, within the same time budget.
                half = len(batch) // 2
                await self._write_claimed(batch[:half])
                await self._write_claimed(batch[half:])
                return
            error = exc if isinstance(exc, StoreError) else StoreError(f"writing to the consent log failed: {exc}")
            if _refused_record(exc):
                error = RefusedRecord(str(error))
            logger.error("consent log %r: %d record(s) not written: %s", self, len(batch), error)
        for write in batch:
            write.settle(error)

    async def _commit_batch(self, batch: list[PendingWrite], columns: list[list[Any]], budget: float) -> None:
        """BEGIN and INSERT within the budget (cut off there, nothing is committed), then COMMIT. A
        COMMIT whose answer is lost (the server restarted, the connection was killed) may have
        happened or not: the log is asked which, so that the visitors hear what it holds."""
        deadline = asyncio.get_running_loop().time() + budget
        while True:
            left = deadline - asyncio.get_running_loop().time()
            conn = await self._use("connecting to", lambda pool: pool.acquire(), left)
            pool = self._pool
            try:
                try:
                    async with asyncio.timeout_at(deadline):
                        await conn.execute("BEGIN")
                        await conn.execute(INSERT_MANY, *columns)
                except TimeoutError:
                    raise StoreError(f"writing to the consent log took more than {budget:.2f} s") from None
                except CONNECTION_LOST:
                    # A pooled connection the server dropped (a restart, a killed backend) fails on
                    # its first use; nothing was committed, so another one may try while time is left.
                    drop(conn)
                    if deadline - asyncio.get_running_loop().time() > 0.01:
                        continue
                    raise
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                    raise StoreError(f"writing to the consent log failed: {type(exc).__name__}: {exc}") from exc
                backend = conn.get_server_pid()
                try:
                    await conn.execute("COMMIT", timeout=self.timeout)
                except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                    drop(conn)
                    if await self._committed(batch, backend):
                        logger.warning("consent log %r: the commit's answer was lost (%s), but the log holds the records", self, exc)
                        return
                    raise StoreError(f"committing to the consent log failed: {type(exc).__name__}: {exc}") from exc
                return
            except CONNECTION_LOST as exc:
                raise StoreError(f"writing to the consent log failed: {type(exc).__name__}: {exc}") from exc
            except BaseException:
                drop(conn)  # whatever it was doing ends, and an open transaction with it
                raise
            finally:
                if pool is not None:
                    with contextlib.suppress(Exception):
                        await pool.release(conn)

    async def _committed(self, batch: list[PendingWrite], backend: int) -> bool:
        """Whether a batch whose COMMIT went unanswered is in the log. While the backend that ran it
        is still there (a COMMIT outlasting its timeout: a slow disk, a synchronous standby), the
        outcome is not known yet: asked again until it has ended and the server answers, for as long
        as a write may take. Still unknown then, it counts as not written and the records are
        named, since the log may hold them after all."""
        records = [write.record for write in batch]
        give_up = time.monotonic() + self.timeout
        while True:
            try:
                if not await self._use("reading", lambda pool: pool.fetchval(RUNNING, backend)):
                    return all(await self.already_logged(records))
                problem = f"its COMMIT is still running in backend {backend}"
            except StoreError as exc:
                problem = str(exc)
            if time.monotonic() > give_up:
                logger.error(
                    "consent log %r: cannot tell whether %d record(s) were committed (%s); consent ids: %s",
                    self, len(records), problem, ", ".join(r.consent_id for r in records),
                )
                return False
            await asyncio.sleep(0.1)

    async def close(self) -> None:
        if self._loop is asyncio.get_running_loop() and self._writers:
            await asyncio.gather(*self._writers, return_exceptions=True)
        pool, self._pool = self._pool, None
        if pool is not None and self._loop is asyncio.get_running_loop():
            await pool.close()
        elif pool is not None:
            pool.terminate()

    async def migrate(self, progress: Callable[[str], None] | None = None) -> None:
        """The log, and the report's running totals counted (seconds per million records)."""
        self._warned = True  # the pool's opening leaves the counting to this
        missing = await self._use("creating", lambda pool: create_schema(pool, count=True, progress=progress), REPORT_TIMEOUT)
        if missing:
            logger.warning("consent log %r: %s; `log report` counts from the records", self, missing)

    async def has_totals(self) -> bool:
        """Whether the report reads running totals: their capture is on and they are counted."""

        async def read(pool: Any) -> bool:
            async with pool.acquire() as conn:
                try:
                    return await _counted(conn)
                except CANNOT_WRITE:
                    return False

        return bool(await self._use("reading", read))

    async def _from_totals(self, read: Callable[[Any], Awaitable[Any]]) -> Any:
        """`read` of the running totals, once the changes are folded into them, in the fold's
        transaction (one snapshot of totals and records). None when the totals are not there to be
        read (not counted, or this role cannot fold them): say why, and count from the records."""

        async def fold_and_read(pool: Any) -> Any:
            async with pool.acquire() as conn:
                try:
                    if not await _counted(conn) and not await _count_if_small(conn):
                        return "the report's running totals of this log are not counted yet: `consentmw migrate` counts them"

                    async def work() -> Any:
                        return (await read(conn),) if await _fold(conn) else "the report's running totals are not counted yet"

                    return await _under_fold_lock(conn, work)
                except CANNOT_WRITE as exc:
                    return f"this session cannot fold the changes into the report's running totals ({exc}): the log's owner can"

        result = await self._use("reading", fold_and_read, REPORT_TIMEOUT)
        if isinstance(result, str):
            logger.warning("consent log %r: %s; counting from the records instead (slower)", self, result)
            return None
        return result[0]

    async def aggregate_totals(self, statements: Sequence[tuple[str, Sequence[Any]]]) -> list[list[Sequence[Any]]] | None:
        """aggregate() of statements that read the running totals; None if they cannot be read."""

        async def read(conn: Any) -> list[list[Sequence[Any]]]:
            return [await conn.fetch(query, *params, timeout=REPORT_TIMEOUT) for query, params in statements]

        return await self._from_totals(read)

    async def history(
        self, *, since: dt.datetime | None = None, until: dt.datetime | None = None, consent_id: str | None = None
    ) -> AsyncIterator[ConsentRecord]:
        def fetch(query: str, params: list[Any]) -> Any:
            return self._use("reading", lambda pool: pool.fetch(query, *params))

        async for record in sql.page_through(
            fetch, _mark, utc, from_row, since=since, until=until, consent_id=consent_id
        ):
            yield record

    async def prune(self, before: dt.datetime) -> int:
        # In parts, each its own transaction within the store's time budget, whatever the log's
        # size (the capture copies each deleted record, which doubles a delete's cost).
        removed = 0
        while True:
            status = await self._use("pruning", lambda pool: pool.execute(PRUNE, utc(before)))
            deleted = int(status.split()[-1])
            removed += deleted
            if deleted < PRUNE_CHUNK:
                break
        # The capture keeps a copy of each deleted record until a fold: folded now, so that the
        # pruned records are gone from the database as the retention period says.
        await self._use("pruning", self._fold_now, REPORT_TIMEOUT)
        return removed

    async def _fold_now(self, pool: Any) -> None:
        async with pool.acquire() as conn:
            try:
                if await _counted(conn):
                    await _under_fold_lock(conn, lambda: _fold(conn))
                elif await conn.fetchval(postgres_summary.INSTALLED):
                    # Not counted yet (`consentmw migrate` never run): the first count reads the
                    # records, not the changes, which are only copies until then.
                    await _under_fold_lock(conn, lambda: _forget_changes(conn))
            except CANNOT_WRITE as exc:
                logger.warning(
                    "consent log %r: this role cannot fold the report's changes (%s): copies of the pruned records stay"
                    " in consent_report_changes until the log's owner runs `consentmw log report` or `log prune`",
                    self,
                    exc,
                )

    async def already_logged(self, records: Sequence[ConsentRecord]) -> list[bool]:
        times = list({r.created_at for r in records})
        rows = await self._use("reading", lambda pool: pool.fetch(AT_TIMES, times))
        return already_in(records, map(from_row, rows))

    async def stats(
        self,
        *,
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
        latest: bool = False,
        include_scans: bool = False,
    ) -> LogStats:
        filter_sql, params = sql.where(_mark, utc, since=since, until=until, scan=None if include_scans else False)
        counted = sql.stats_query(filter_sql, latest, "jsonb_each(f.choices)", "choice.value = 'true'::jsonb")
        scan_sql, scan_params = sql.where(_mark, utc, since=since, until=until, scan=True)

        async def from_totals(conn: Any) -> LogStats:
            # Each visitor's newest record: the running totals have them, and the scans.
            if since is None and until is None:
                rows = await conn.fetch(postgres_summary.STATS, timeout=REPORT_TIMEOUT)
                scans = sum(int(n) for kind, _, _, n in rows if kind == "scans")
                return sql.read_stats([row for row in rows if row[0] != "scans"], scans)
            query, scans_query, bounds = pg_stats_in_period(DIALECT, since, until)
            rows = await conn.fetch(query, *bounds, timeout=REPORT_TIMEOUT)
            return sql.read_stats(rows, int(await conn.fetchval(scans_query, *bounds, timeout=REPORT_TIMEOUT)))

        if latest and not include_scans:
            stats = await self._from_totals(from_totals)
            if stats is not None:
                return stats  # type: ignore[no-any-return]

        async def count(pool: Any) -> LogStats:
            async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
                await conn.execute(REPORT_SETTINGS)
                scans = 0 if include_scans else await conn.fetchval(
                    f"SELECT count(*) FROM consent_log{scan_sql}", *scan_params, timeout=REPORT_TIMEOUT
                )
                return sql.read_stats(await conn.fetch(counted, *params, timeout=REPORT_TIMEOUT), scans)

        # Like the report: a command an operator runs, which reads the whole period.
        return await self._use("reading", count, REPORT_TIMEOUT)

    async def aggregate(self, statements: Sequence[tuple[str, Sequence[Any]]]) -> list[list[Sequence[Any]]]:
        async def read(pool: Any) -> list[list[Sequence[Any]]]:
            async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
                await conn.execute(REPORT_SETTINGS)
                return [await conn.fetch(query, *params, timeout=REPORT_TIMEOUT) for query, params in statements]

        return await self._use("reading", read, REPORT_TIMEOUT)
