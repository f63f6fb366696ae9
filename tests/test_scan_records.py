"""A scan is not a visitor: the consent posts of `consentmw scan` are logged marked `scan`, and
`consentmw log stats` leaves them out unless asked. The mark is the scanner's header on a post that
starts a consent id, so nobody can use it to take a visitor's later choices out of the counts."""

from __future__ import annotations

from typing import Any

import pytest

from consentmw.core.api import SCAN_HEADER
from consentmw.core.store import MemoryStore, open_store
from tests.conftest import client_for, make_app
from tests.store_support import T0, log_url, make_record, postgres_url, sqlite_url  # noqa: F401
from tests.test_store_cli import cli, seed


async def test_the_scanners_post_is_logged_as_a_scan_and_a_visitors_is_not() -> None:
    store = MemoryStore()
    app = make_app(store=store)
    async with client_for(app) as scanner, client_for(app) as visitor:
        assert (await scanner.post("/_consent", json={"accept": "all"}, headers={SCAN_HEADER: "1"})).status_code == 200
        assert (await visitor.post("/_consent", json={"accept": "necessary"})).status_code == 200
    assert [(r.choices["analytics"], r.scan) for r in store.records] == [(True, True), (False, False)]


async def test_the_header_cannot_hide_a_visitors_later_choices() -> None:
    store = MemoryStore()
    async with client_for(make_app(store=store)) as visitor:
        await visitor.post("/_consent", json={"accept": "all"})
        # The same browser, its consent cookie sent along, now with the header: still a visitor.
        await visitor.post("/_consent", json={"accept": "necessary"}, headers={SCAN_HEADER: "1"})
        await visitor.post("/_consent/opt-out", json={}, headers={SCAN_HEADER: "1"})
    assert [r.scan for r in store.records] == [False, False, False]
    assert len({r.consent_id for r in store.records}) == 1


async def test_stats_leave_scans_out_unless_asked(log_url: str) -> None:  # noqa: F811
    await stats_leave_scans_out(open_store(log_url))


async def test_the_memory_store_leaves_scans_out_too() -> None:
    await stats_leave_scans_out(MemoryStore())


async def stats_leave_scans_out(log: Any) -> None:
    try:
        await log.record(make_record("visitor", choices={"analytics": False}))
        for i in range(3):
            await log.record(make_record(f"scan-{i}", at=T0, choices={"analytics": True}, scan=True, method="api"))
        stats = await log.stats()
        assert (stats.records, stats.visitors, stats.scans) == (1, 1, 3)
        assert stats.categories == {"analytics": {"allowed": 0, "refused": 1}} and stats.methods == {"banner": 1}
        assert (await log.stats(latest=True)).records == 1
        every = await log.stats(include_scans=True)
        assert (every.records, every.visitors, every.scans) == (4, 4, 0)
        assert every.categories == {"analytics": {"allowed": 3, "refused": 1}}
    finally:
        await log.close()


def test_log_stats_says_what_it_left_out(log_url: str, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    seed(log_url, [make_record("visitor"), make_record("scanner", scan=True), make_record("scanner", scan=True)])
    status, out, _ = cli(capsys, "log", "stats", "--store", log_url)
    assert status == 0
    assert "1 record(s) from 1 visitor(s)" in out
    assert "2 record(s) written by consentmw scan left out (--include-scans counts them)" in out
    status, out, _ = cli(capsys, "log", "stats", "--store", log_url, "--include-scans")
    assert "3 record(s) from 2 visitor(s)" in out and "left out" not in out
    status, out, _ = cli(capsys, "log", "stats", "--store", log_url, "--format", "json")
    assert '"scans_left_out": 2' in out
