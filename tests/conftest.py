from __future__ import annotations

import os
import time
from pathlib import Path
from collections.abc import AsyncIterator, Callable
from typing import Any, NoReturn

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from consentmw import ConsentMiddleware
from consentmw.core.cookie import ConsentCodec
from consentmw.core.policy import Policy, load_policy
from consentmw.core.store import MemoryStore
from tests import clean_checkout
from tests.asgi_support import http_scope  # noqa: F401  (tests import it from here)

SECRET = "test-secret-key-0123456789abcdef"
CHECKOUT = Path(__file__).resolve().parent.parent


def pytest_sessionstart(session: pytest.Session) -> None:
    root = clean_checkout.git_root(CHECKOUT)
    session.config.stash[CLEAN_KEY] = (root, clean_checkout.snapshot(root)) if root == CHECKOUT else (None, None)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # Tests write into tmp_path: whatever appeared or changed in the checkout fails the run.
    root, before = session.config.stash.get(CLEAN_KEY, (None, None))
    after = clean_checkout.snapshot(root) if root is not None and before is not None else None
    written = clean_checkout.changes(before, after) if before is not None and after is not None else []
    if written:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        message = "the test run wrote into the checkout (tests write into tmp_path): " + ", ".join(written)
        if reporter is not None:
            reporter.write_line(message, red=True, bold=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


CLEAN_KEY = pytest.StashKey[tuple[Path | None, clean_checkout.State | None]]()
ORIGIN = "http://testserver"


async def whoami(request: Request) -> JSONResponse:
    consent = request.scope["consent"]
    return JSONResponse(
        {"decided": consent.decided, "choices": consent.choices, "gpc": consent.gpc, "analytics": consent.allows("analytics")}
    )


async def set_cookies(request: Request) -> PlainTextResponse:
    response = PlainTextResponse("cookies")
    for name in request.query_params.getlist("name"):
        response.set_cookie(name, "v")
    return response


def missing(reason: str) -> NoReturn:
    """Skips a test whose dependency this machine lacks, except under CI (CI set, as .ci/run sets
    it), where the dependency is part of the run: a skip there would pass a suite that did not test."""
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{reason} (CI is set: this test must run there)", pytrace=False)
    pytest.skip(reason)


def consent_value(allowed: set[str], consent_id: str, *, ago: int = 0, secret: str = SECRET, policy: Policy | None = None) -> str:
    """A consent cookie value as the middleware would have signed it `ago` seconds ago."""
    codec = ConsentCodec([secret], policy or load_policy("default"))
    issued_at = int(time.time()) - ago
    codec.signer.get_timestamp = lambda: issued_at  # type: ignore[method-assign]
    return codec.dumps(allowed, consent_id)


def make_app(**options: Any) -> Starlette:
    """A small site wrapped the way the README says: one add_middleware line."""
    app = Starlette(routes=[Route("/", whoami), Route("/cookies", set_cookies)])
    options.setdefault("secret_key", SECRET)
    options.setdefault("store", MemoryStore())
    app.add_middleware(ConsentMiddleware, **options)
    return app


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def app_factory(store: MemoryStore) -> Callable[..., Starlette]:
    def factory(**options: Any) -> Starlette:
        options.setdefault("store", store)
        return make_app(**options)

    return factory


@pytest.fixture
async def client(app_factory: Callable[..., Starlette]) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(app_factory()) as c:
        yield c


def client_for(app: Any, base_url: str = ORIGIN) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url=base_url, headers={"origin": base_url})
