"""The Set-Cookie filter held to what real Chromium stores: on a sample of tricky Expires and Max-Age
forms, every header the filter lets pass as a deletion is one Chromium does not keep, and a visitor
who refused analytics ends with none of the sample's cookies."""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest
from starlette.responses import Response

from consentmw import ConsentMiddleware
from consentmw.core.setcookie import is_deletion
from consentmw.core.store import MemoryStore
from tests.test_setcookie import header_from

from .conftest import serve
from .site import SECRET

pytestmark = pytest.mark.browser

# Chromium keeps at most 180 cookies per domain; the sample stays under that.
SAMPLE = [header_from(random.Random(seed), f"_ga_{seed}") for seed in range(150)]


async def sample_page(scope, receive, send) -> None:
    response = Response("cookies", media_type="text/plain")
    response.raw_headers += [(b"set-cookie", line.encode("latin-1")) for line in SAMPLE]
    await response(scope, receive, send)


@pytest.fixture(scope="module")
def origin() -> Iterator[str]:
    filtered = ConsentMiddleware(sample_page, secret_key=SECRET, store=MemoryStore())

    async def app(scope, receive, send):
        await (sample_page if scope["path"] == "/raw" else filtered)(scope, receive, send)

    with serve(app) as port:
        yield f"http://127.0.0.1:{port}"


def stored_after_visiting(chromium, url: str) -> set[str]:
    context = chromium.new_context()
    try:
        context.new_page().goto(url)
        return {cookie["name"] for cookie in context.cookies()}
    finally:
        context.close()


def test_no_header_passed_as_a_deletion_is_kept_by_chromium(chromium, origin: str) -> None:
    kept = stored_after_visiting(chromium, origin + "/raw")
    passed = {line.split("=", 1)[0] for line in SAMPLE if is_deletion(line.encode("latin-1"))}
    # The sample holds both kinds, so the check below can fail.
    assert len(kept) >= 30 and len(passed) >= 30
    assert kept & passed == set(), [line for line in SAMPLE if line.split("=", 1)[0] in kept & passed]


def test_a_visitor_who_has_not_allowed_analytics_keeps_none_of_them(chromium, origin: str) -> None:
    assert stored_after_visiting(chromium, origin + "/page") == set()
