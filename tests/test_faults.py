"""What happens around consentmw when something fails: the app, the client, the consent log, the disk."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import sqlite3
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse
from starlette.routing import Route

from consentmw import ConsentMiddleware
from consentmw.core.store import ConsentStore, MemoryStore, SQLiteStore, open_store
from tests.conftest import ORIGIN, SECRET, client_for, make_app
from tests.conftest import http_scope as plain_http_scope
from consentmw.core.store.sqlite import SCHEMA as SQLITE_SCHEMA
from tests.store_support import OwnPostgres, postgres_url  # noqa: F401

STORE_TIMEOUT = 0.5
# The longest a visitor may wait for a 503 when the log is stuck: the timeout plus scheduling slack.
STORE_DEADLINE = STORE_TIMEOUT + 1.0


class Boom(Exception):
    pass


def consent_cookie(response: httpx.Response) -> str | None:
    return next((c for c in response.headers.get_list("set-cookie") if c.startswith("consentmw=")), None)


@contextlib.asynccontextmanager
async def serving(app: Any) -> AsyncIterator[tuple[str, uvicorn.Server]]:
    """The app under a real uvicorn on 127.0.0.1, lifespan and all, in this test's event loop."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # so asyncio sets TCP_NODELAY
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, access_log=False, lifespan="on", timeout_graceful_shutdown=2))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with asyncio.timeout(5):
            while not server.started:
                await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}", server
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
        sock.close()


async def until_idle(server: uvicorn.Server, seconds: float = 2.0) -> None:
    """Wait until the server has no request task left running; fail if one hangs."""
    async with asyncio.timeout(seconds):
        while server.server_state.tasks:
            await asyncio.sleep(0.01)


# -- the app fails ----------------------------------------------------------------------------------


def failing_mid_stream(content_type: bytes) -> Any:
    async def app(scope: dict, receive: Any, send: Any) -> None:
        headers = [(b"content-type", content_type), (b"set-cookie", b"prefs=dark; Path=/")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"<html><head></head><body><p>first part</p>", "more_body": True})
        raise Boom("the app failed after the first chunk")

    return app


async def run_raw(app: Any, scope: dict, body: list[dict] | None = None) -> tuple[list[dict], BaseException | None]:
    incoming = list(body or [{"type": "http.request", "body": b"", "more_body": False}])
    sent: list[dict] = []

    async def receive() -> dict:
        return incoming.pop(0) if incoming else await asyncio.Future()  # nothing more: wait forever

    async def send(message: dict) -> None:
        sent.append(message)

    try:
        await asyncio.wait_for(app(scope, receive, send), 2)
    except (Boom, TimeoutError) as exc:
        return sent, exc
    return sent, None


def http_scope(method: str = "GET", path: str = "/", headers: list[tuple[bytes, bytes]] | None = None) -> dict:
    return plain_http_scope(method, path, [(b"origin", ORIGIN.encode()), *(headers or [])])


@pytest.mark.parametrize("content_type", [b"text/html; charset=utf-8", b"application/json", b"text/event-stream"])
async def test_an_app_failing_mid_stream_fails_the_same_way_behind_consentmw(content_type: bytes) -> None:
    bare_sent, bare_error = await run_raw(failing_mid_stream(content_type), http_scope())
    sent, error = await run_raw(ConsentMiddleware(failing_mid_stream(content_type), secret_key=SECRET, store=MemoryStore()), http_scope())
    # The very exception the app raised reaches the server, which closes the connection as it would anyway.
    assert isinstance(bare_error, Boom) and isinstance(error, Boom) and str(error) == str(bare_error)
    assert [m["type"] for m in sent][:1] == ["http.response.start"] and sent[0]["status"] == 200
    # What was sent before the failure still reached the visitor; nothing claims the body is complete.
    assert b"first part" in b"".join(m.get("body", b"") for m in sent)
    assert not any(m["type"] == "http.response.body" and not m.get("more_body", False) for m in sent)
    # The cookie of a category this visitor never allowed was held back even so.
    assert not any(k.lower() == b"set-cookie" for k, _ in sent[0]["headers"])


async def raises_value_error(request: Request) -> PlainTextResponse:
    raise ValueError("bad value")


async def raises_boom(request: Request) -> PlainTextResponse:
    raise Boom("unhandled")


async def own_handler(request: Request, exc: Exception) -> HTMLResponse:
    return HTMLResponse(f"<html><body><h1>our own error page: {type(exc).__name__}</h1></body></html>", status_code=422)


async def own_500(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"our": "500"}, status_code=500)


def site_with_error_handlers(wrapped: bool) -> Starlette:
    app = Starlette(
        routes=[Route("/value", raises_value_error), Route("/boom", raises_boom)],
        exception_handlers={ValueError: own_handler, 500: own_500},
    )
    if wrapped:
        app.add_middleware(ConsentMiddleware, secret_key=SECRET, store=MemoryStore())
    return app


@pytest.mark.parametrize(("path", "status", "text"), [("/value", 422, "our own error page: ValueError"), ("/boom", 500, '{"our":"500"}')])
async def test_the_apps_own_error_handling_is_unchanged(path: str, status: int, text: str) -> None:
    for wrapped in (False, True):
        app = site_with_error_handlers(wrapped)
        transport = httpx.ASGITransport(app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url=ORIGIN) as client:
            r = await client.get(path)
        assert r.status_code == status and text in r.text, f"wrapped={wrapped}"


async def test_an_unhandled_error_still_reaches_the_server() -> None:
    # Starlette re-raises after its 500 page so the server logs it; consentmw must not swallow it.
    async with client_for(site_with_error_handlers(wrapped=True)) as client:
        with pytest.raises(Boom, match="unhandled"):
            await client.get("/boom")


# -- the client goes away -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "content_type", "partial"),
    [
        ("/_consent", b"application/json", b'{"accept": "al'),
        ("/_consent", b"application/x-www-form-urlencoded", b"accept=all&next=%2F"),
        ("/_consent/opt-out", b"application/x-www-form-urlencoded", b"lang=e"),
    ],
)
async def test_client_gone_mid_body_records_nothing_and_returns(path: str, content_type: bytes, partial: bytes) -> None:
    store = MemoryStore()
    app = ConsentMiddleware(PlainTextResponse("app"), secret_key=SECRET, store=store)
    body = [{"type": "http.request", "body": partial, "more_body": True}, {"type": "http.disconnect"}]
    scope = http_scope("POST", path, [(b"content-type", content_type), (b"content-length", b"100")])
    sent, error = await run_raw(app, scope, body)
    assert error is None  # returned promptly: no hang waiting for a body that will never come
    assert store.records == []
    assert not any(k.lower() == b"set-cookie" for m in sent for k, _ in m.get("headers", []))


async def test_client_hanging_up_mid_body_over_a_real_socket(caplog: pytest.LogCaptureFixture) -> None:
    store = MemoryStore()
    async with serving(make_app(store=store)) as (url, server):
        port = int(url.rsplit(":", 1)[1])
        for body in (b'{"accept": "all"', b"accept=all"):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            kind = b"application/json" if body.startswith(b"{") else b"application/x-www-form-urlencoded"
            writer.write(
                b"POST /_consent HTTP/1.1\r\nHost: " + url[7:].encode() + b"\r\nOrigin: " + url.encode() + b"\r\n"
                b"Content-Type: " + kind + b"\r\nContent-Length: 500\r\n\r\n" + body
            )
            await writer.drain()
            await asyncio.sleep(0.05)
            writer.close()
            await writer.wait_closed()
            await until_idle(server)
        async with httpx.AsyncClient(base_url=url, headers={"origin": url}) as client:
            assert (await client.get("/_consent")).json()["decided"] is False
            assert (await client.post("/_consent", json={"accept": "all"})).status_code == 200
    assert len(store.records) == 1  # only the complete post
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


# -- the consent log is down or slow ------------------------------------------------------------


def unopenable_sqlite(tmp_path: Path) -> ConsentStore:
    path = tmp_path / "consent.db"
    path.mkdir()  # SQLite cannot open a directory: every write fails at once
    return SQLiteStore(path, timeout=STORE_TIMEOUT)


def refused_postgres(tmp_path: Path) -> ConsentStore:
    with socket.socket() as s:  # a port nobody listens on: connections are refused at once
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return open_store(f"postgresql://consentmw:not-the-password@127.0.0.1:{port}/consent", timeout=STORE_TIMEOUT)


@pytest.mark.parametrize("broken_store", [unopenable_sqlite, refused_postgres], ids=["sqlite-unopenable", "postgresql-refused"])
async def test_log_down_is_a_503_without_cookie(tmp_path: Path, broken_store: Any, caplog: pytest.LogCaptureFixture) -> None:
    store = broken_store(tmp_path)
    try:
        async with client_for(make_app(store=store, store_timeout=STORE_TIMEOUT)) as client:
            for post in ({"json": {"accept": "all"}}, {"data": {"accept": "all", "next": "/"}}):
                started = time.monotonic()
                r = await client.post("/_consent", **post)
                assert time.monotonic() - started < STORE_DEADLINE
                assert r.status_code == 503 and r.json()["error"] == "store_unavailable"
                assert consent_cookie(r) is None
            # The site itself does not depend on the log: pages and the state endpoint still answer.
            assert (await client.get("/")).status_code == 200
            assert (await client.get("/_consent")).json()["decided"] is False
    finally:
        await store.close()
    assert "not-the-password" not in caplog.text


@contextlib.contextmanager
def sqlite_write_lock(path: Path) -> Any:
    """Another process's writer holding the database: what a stuck batch job or backup looks like."""
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        yield
    finally:
        other.execute("ROLLBACK")
        other.close()


async def rows(path: Path) -> list[dict]:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return [json.loads(choices) for (choices,) in conn.execute("SELECT choices FROM consent_log ORDER BY id")]


async def test_slow_log_answers_503_in_bounded_time_and_the_earlier_choice_stands(tmp_path: Path) -> None:
    path = tmp_path / "consent.db"
    store = SQLiteStore(path, timeout=STORE_TIMEOUT)
    try:
        async with client_for(make_app(store=store, store_timeout=STORE_TIMEOUT)) as client:
            assert (await client.post("/_consent", json={"accept": "all"})).status_code == 200
            with sqlite_write_lock(path):
                started = time.monotonic()
                r = await client.post("/_consent", json={"accept": "necessary"})
                took = time.monotonic() - started
                assert r.status_code == 503 and consent_cookie(r) is None
                assert STORE_TIMEOUT * 0.5 <= took < STORE_DEADLINE
                state = (await client.get("/_consent")).json()
                assert state["choices"]["analytics"] is True  # the earlier choice stands
                assert (await client.get("/")).json()["analytics"] is True
            # The lock is gone: the refused write must not turn up late, and the next choice works again.
            await asyncio.sleep(STORE_TIMEOUT)
            assert [c["analytics"] for c in await rows(path)] == [True]
            assert (await client.post("/_consent", json={"accept": "necessary"})).status_code == 200
    finally:
        await store.close()
    assert [c["analytics"] for c in await rows(path)] == [True, False]


@pytest.mark.postgres
async def test_slow_postgresql_log_answers_503_in_bounded_time(postgres_url: str) -> None:  # noqa: F811
    import asyncpg

    store = open_store(postgres_url, timeout=STORE_TIMEOUT)
    try:
        async with client_for(make_app(store=store, store_timeout=STORE_TIMEOUT)) as client:
            first = await client.post("/_consent", json={"accept": "all"})
            assert first.status_code == 200
            consent_id = first.json()["id"]
            locker = await asyncpg.connect(postgres_url)
            try:
                async with locker.transaction():
                    await locker.execute("LOCK TABLE consent_log IN ACCESS EXCLUSIVE MODE")
                    started = time.monotonic()
                    r = await client.post("/_consent", json={"accept": "necessary"})
                    assert time.monotonic() - started < STORE_DEADLINE
                    assert r.status_code == 503 and consent_cookie(r) is None
                    assert (await client.get("/_consent")).json()["choices"]["analytics"] is True
                await asyncio.sleep(STORE_TIMEOUT)
                logged = await locker.fetch("SELECT choices FROM consent_log WHERE consent_id = $1 ORDER BY id", consent_id)
            finally:
                await locker.close()
    finally:
        await store.close()
    assert [json.loads(row["choices"])["analytics"] for row in logged] == [True]


# -- the policy file goes away --------------------------------------------------------------------


async def test_policy_file_removed_after_start_keeps_working(tmp_path: Path) -> None:
    data = json.loads(resources.files("consentmw.core").joinpath("presets/default.json").read_text("utf-8"))
    data["version"] = "from-file-1"
    policy_file = tmp_path / "policy.json"
    policy_file.write_text(json.dumps(data), "utf-8")
    store = MemoryStore()
    async with serving(make_app(policy=str(policy_file), store=store)) as (url, server):
        policy_file.unlink()
        async with httpx.AsyncClient(base_url=url, headers={"origin": url}) as client:
            assert (await client.get("/_consent")).json()["policy_version"] == "from-file-1"
            policy_file.write_text("{ not json any more", "utf-8")  # a half-written deploy
            assert (await client.post("/_consent", json={"accept": "all"})).status_code == 200
            assert (await client.get("/")).json()["analytics"] is True
            assert (await client.get("/_consent/policy")).json()["version"] == "from-file-1"
    assert [r.policy_version for r in store.records] == ["from-file-1"]


# -- the consent log fails while visitors choose ---------------------------------------------------
#
# Each case: new visitors choose while a fault hits the log, then the log is read back. Whatever the
# fault, the visitors told "recorded" (200 and a consent cookie) are exactly the log's records, and a
# visitor told "not recorded" (503) got no cookie and has no record.

FAULT_TIMEOUT = 1.0


@dataclass
class Outcome:
    recorded: list[str] = field(default_factory=list)  # consent ids of the 200s
    refused: int = 0  # 503s


async def empty_postgres_log(server: OwnPostgres, schema: str) -> str:
    import asyncpg

    admin = await asyncpg.connect(server.url)
    try:
        await admin.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}")
    finally:
        await admin.close()
    url = f"{server.url}?search_path={schema}"
    store = open_store(url)
    await store.migrate()
    await store.close()
    return url


async def choose(app: Any, outcome: Outcome) -> None:
    async with client_for(app) as client:  # a client of its own: a new visitor, without cookies
        r = await client.post("/_consent", json={"accept": "all"})
    if r.status_code == 200:
        assert consent_cookie(r) is not None
        outcome.recorded.append(r.json()["id"])
    else:
        assert r.status_code == 503 and r.json()["error"] == "store_unavailable", r.text
        assert consent_cookie(r) is None
        outcome.refused += 1


async def no_fault() -> None:
    pass


async def visitors_choose_while(app: Any, fault: Any, *, visitors: int = 40, over: float = 1.0) -> Outcome:
    """Half the visitors choose at once and the fault happens while their writes are on the way to
    the log; the other half follow, spread over `over` seconds."""
    outcome = Outcome()
    burst = [asyncio.create_task(choose(app, outcome)) for _ in range(visitors // 2)]
    await asyncio.sleep(0.005)
    tasks = [*burst, asyncio.create_task(fault())]
    for _ in range(visitors - len(burst)):
        tasks.append(asyncio.create_task(choose(app, outcome)))
        await asyncio.sleep(over / visitors)
    await asyncio.gather(*tasks)
    return outcome


def logged_ids(*paths: Path) -> list[str]:
    ids: list[str] = []
    for path in paths:
        with contextlib.closing(sqlite3.connect(path)) as conn:
            ids += [consent_id for (consent_id,) in conn.execute("SELECT consent_id FROM consent_log")]
    return ids


def assert_told_the_truth(outcome: Outcome, logged: list[str]) -> None:
    assert sorted(outcome.recorded) == sorted(logged), (len(outcome.recorded), len(logged), outcome.refused)


def fresh_log(path: Path, journal: str = "wal") -> Path:
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as conn:
        conn.execute(f"PRAGMA journal_mode = {journal}")
        conn.executescript(SQLITE_SCHEMA)
    return path


@contextlib.contextmanager
def mounted(*args: str) -> Iterator[None]:
    """mount(8) as root, or the test is skipped with the reason."""
    if os.geteuid() != 0:
        pytest.skip("mounting a file system needs root (CI runs as root)")
    result = subprocess.run(["mount", *args], capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount here: {result.stderr.strip()}")
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", args[-1]], check=False)


class SQLiteFaults:
    """What can happen to a running server's SQLite file. Records that the fault takes out of the
    path (a deleted or replaced file) are counted through a hard link made just before."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp = tmp_path
        self.path = tmp_path / "consent.db"
        self.kept: list[Path] = []

    def keep_old_file(self) -> None:
        kept = self.tmp / f"kept-{len(self.kept)}.db"
        os.link(self.path, kept)
        self.kept.append(kept)

    async def deleted(self) -> None:
        self.keep_old_file()
        self.path.unlink()  # as `rm consent.db` would: the -wal and -shm files stay

    async def replaced(self) -> None:
        other = fresh_log(self.tmp / "restored.db")
        self.keep_old_file()
        os.replace(other, self.path)

    async def replaced_read_only(self) -> None:
        source, view = self.tmp / "ro-source", self.tmp / "ro-view"
        source.mkdir()
        view.mkdir()
        fresh_log(source / "consent.db", journal="delete")
        self.unmount = contextlib.ExitStack()
        self.unmount.enter_context(mounted("--bind", str(source), str(view)))
        subprocess.run(["mount", "-o", "remount,ro,bind", str(view)], check=True)
        self.kept.append(view / "consent.db")
        self.keep_old_file()
        link = self.tmp / "link"
        link.symlink_to(view / "consent.db")
        os.replace(link, self.path)

    async def locked(self) -> None:
        with sqlite_write_lock(self.path):
            await asyncio.sleep(3 * FAULT_TIMEOUT)

    async def loop_blocked(self) -> None:
        time.sleep(3 * FAULT_TIMEOUT)  # a view doing blocking work on the event loop

    def logged(self) -> list[str]:
        return logged_ids(*([self.path] if self.path.exists() else []), *self.kept)


SQLITE_FAULTS = ["deleted", "replaced", "replaced_read_only", "locked", "loop_blocked"]


@pytest.mark.parametrize("fault", SQLITE_FAULTS)
async def test_sqlite_log_faults_answer_200_exactly_for_the_records_it_holds(tmp_path: Path, fault: str, caplog: pytest.LogCaptureFixture) -> None:
    faults = SQLiteFaults(tmp_path)
    store = SQLiteStore(faults.path, timeout=FAULT_TIMEOUT)
    app = make_app(store=store, rate_limit=None, store_timeout=FAULT_TIMEOUT)
    try:
        first = Outcome()
        await choose(app, first)  # the log exists and the writer has it open
        outcome = await visitors_choose_while(app, getattr(faults, fault))
        after = await visitors_choose_while(app, no_fault, visitors=10, over=0.2)  # and once it is over
    finally:
        await store.close()
        logged = faults.logged()
        if hasattr(faults, "unmount"):
            faults.unmount.close()
    outcome.recorded += after.recorded
    assert_told_the_truth(Outcome(first.recorded + outcome.recorded), logged)
    if fault in ("deleted", "replaced"):
        # The file at the path is opened again: nothing is written into a file that is gone.
        assert after.refused == 0 and set(after.recorded) <= set(logged_ids(faults.path))
        assert "deleted or replaced" in caplog.text
    if fault == "replaced_read_only":
        assert after.refused == 10 and "SQLITE_READONLY" in caplog.text
    if fault == "locked":
        assert "SQLITE_BUSY: database is locked" in caplog.text
    assert "cannot rollback" not in caplog.text


async def test_sqlite_log_on_a_full_disk_names_the_cause_and_recovers(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    disk = tmp_path / "disk"
    disk.mkdir()
    with mounted("-t", "tmpfs", "-o", "size=4m", "tmpfs", str(disk)):
        path = disk / "consent.db"
        store = SQLiteStore(path, timeout=FAULT_TIMEOUT)
        app = make_app(store=store, rate_limit=None, store_timeout=FAULT_TIMEOUT)
        filler = disk / "filler"

        async def fill_the_disk() -> None:
            with contextlib.suppress(OSError), open(filler, "wb") as f:
                while True:
                    f.write(b"\0" * 4096)
                    f.flush()

        try:
            first = Outcome()
            await choose(app, first)
            full = await visitors_choose_while(app, fill_the_disk)
            assert full.refused > 0
            filler.unlink()
            after = await visitors_choose_while(app, no_fault, visitors=10, over=0.2)
        finally:
            await store.close()
        logged = logged_ids(path)
    assert_told_the_truth(Outcome(first.recorded + full.recorded + after.recorded), logged)
    assert "SQLITE_FULL" in caplog.text and "cannot rollback" not in caplog.text, caplog.text[-3000:]
    assert after.refused == 0, caplog.text[-3000:]


async def test_a_tight_store_timeout_never_logs_a_refused_choice(tmp_path: Path) -> None:
    # Issue 16: with store_timeout=0.05, 500 posts got 503 and yet 126 records were written.
    path = tmp_path / "consent.db"
    await SQLiteStore(path).migrate()  # the log exists even if no write makes it in time
    store = SQLiteStore(path, timeout=0.05)
    app = make_app(store=store, rate_limit=None, store_timeout=0.05)
    try:
        outcome = Outcome()
        await asyncio.gather(*(choose(app, outcome) for _ in range(500)))
    finally:
        await store.close()
    assert_told_the_truth(outcome, logged_ids(path))


@pytest.fixture(scope="module")
def own_postgres() -> Iterator[OwnPostgres]:
    server = OwnPostgres()
    try:
        yield server
    finally:
        server.stop()


class PostgresFaults:
    def __init__(self, server: OwnPostgres, url: str) -> None:
        self.server = server
        self.url = url

    async def restarted(self) -> None:
        await asyncio.to_thread(self.server.restart)

    async def connections_killed(self) -> None:
        import asyncpg

        conn = await asyncpg.connect(self.url)
        try:
            await conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND backend_type = 'client backend'")
        finally:
            await conn.close()

    async def locked(self) -> None:
        import asyncpg

        conn = await asyncpg.connect(self.url)
        try:
            async with conn.transaction():
                await conn.execute("LOCK TABLE consent_log IN ACCESS EXCLUSIVE MODE")
                await asyncio.sleep(3 * FAULT_TIMEOUT)
        finally:
            await conn.close()

    async def loop_blocked(self) -> None:
        time.sleep(3 * FAULT_TIMEOUT)

    async def logged(self) -> list[str]:
        import asyncpg

        conn = await asyncpg.connect(self.url)
        try:
            return [row["consent_id"] for row in await conn.fetch("SELECT consent_id FROM consent_log")]
        finally:
            await conn.close()


@pytest.mark.postgres
@pytest.mark.parametrize("fault", ["restarted", "connections_killed", "locked", "loop_blocked"])
async def test_postgresql_log_faults_answer_200_exactly_for_the_records_it_holds(own_postgres: OwnPostgres, fault: str) -> None:
    url = await empty_postgres_log(own_postgres, f"faults_{fault}")
    faults = PostgresFaults(own_postgres, url)
    store = open_store(url, timeout=FAULT_TIMEOUT)
    app = make_app(store=store, rate_limit=None, store_timeout=FAULT_TIMEOUT)
    try:
        first = Outcome()
        await choose(app, first)
        outcome = await visitors_choose_while(app, getattr(faults, fault))
        after = await visitors_choose_while(app, no_fault, visitors=10, over=0.2)
    finally:
        await store.close()
    assert_told_the_truth(Outcome(first.recorded + outcome.recorded + after.recorded), await faults.logged())
    assert after.refused == 0 and len(after.recorded) == 10  # the log works again: the pool replaced the connections it lost


@pytest.mark.postgres
async def test_a_tight_store_timeout_never_logs_a_refused_choice_in_postgresql(own_postgres: OwnPostgres) -> None:
    url = await empty_postgres_log(own_postgres, "tight")
    store = open_store(url, timeout=0.05)
    app = make_app(store=store, rate_limit=None, store_timeout=0.05)
    try:
        outcome = Outcome()
        await asyncio.gather(*(choose(app, outcome) for _ in range(500)))
    finally:
        await store.close()
    assert_told_the_truth(outcome, await PostgresFaults(own_postgres, url).logged())
