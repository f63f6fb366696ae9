"""Cookie tossing in real Chromium: a sibling subdomain sets, for the parent domain, a cookie whose
name or value holds "__Host-consentmw=<a genuine accept-all value>". Chromium stores it and sends it
back to the main site, which must not read it as the visitor's consent.

Hosts under .localhost resolve to 127.0.0.1 in Chromium, and it treats them as secure contexts, so
the main site can keep its own __Host- cookie over plain http."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from consentmw import ConsentMiddleware
from consentmw.core.store import MemoryStore
from tests.conftest import consent_value

from .conftest import serve
from .site import SECRET, site_policy

pytestmark = pytest.mark.browser

NAME = "__Host-consentmw"
MAIN, SIBLING, PARENT = "www.site.localhost", "evil.site.localhost", "site.localhost"
POLICY = site_policy()
TOSSED = {
    "name": "x " + NAME + "={value}",  # the cookie "x __Host-consentmw"
    "value": "pref=a " + NAME + "={value}",  # the cookie "pref", whose value holds the text
    # Nameless: Chromium would send it as "__Host-consentmw=...", which no server can tell apart;
    # browsers refuse a nameless cookie whose value starts with a prefix since 2024, and this checks it.
    "nameless": "=" + NAME + "={value}",
}


async def home(request: Request) -> Response:
    return PlainTextResponse("home")


async def toss(request: Request) -> Response:
    """The sibling's page: it got a genuine accept-all value on its own visit and tosses it. The value
    is newer than the visitor's own choice, which consentmw would otherwise prefer."""
    from consentmw.core.policy import load_policy

    everything = set(load_policy(POLICY).optional)
    line = TOSSED[request.query_params["form"]].format(value=consent_value(everything, "tossed", ago=-5, secret=SECRET, policy=load_policy(POLICY)))
    response = PlainTextResponse("tossed")
    response.raw_headers.append((b"set-cookie", f"{line}; Domain={PARENT}; Path=/; Secure; SameSite=Lax".encode()))
    return response


def by_host(main, sibling):
    async def app(scope, receive, send):
        host = dict(scope.get("headers", ())).get(b"host", b"").split(b":")[0]
        await (sibling if host == SIBLING.encode() else main)(scope, receive, send)

    return app


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    main = Starlette(routes=[Route("/", home)])
    main.add_middleware(ConsentMiddleware, secret_key=SECRET, policy=POLICY, store=MemoryStore(), cookie_name=NAME)
    sibling = Starlette(routes=[Route("/toss", toss)])
    with serve(by_host(main, sibling)) as port:
        yield port


def consent_state(page, port: int) -> dict:
    return page.evaluate("async url => (await fetch(url)).json()", f"http://{MAIN}:{port}/_consent")


@pytest.mark.parametrize("form", sorted(TOSSED))
@pytest.mark.parametrize("choice", [None, "necessary"])
def test_a_cookie_tossed_by_a_sibling_subdomain_is_not_the_visitors_consent(chromium, port: int, form: str, choice: str | None) -> None:
    context = chromium.new_context()
    try:
        page = context.new_page()
        page.goto(f"http://{MAIN}:{port}/")
        if choice is not None:
            status = page.evaluate(
                "async ([url, accept]) => (await fetch(url, {method: 'POST', headers: {'content-type': 'application/json'}, body: JSON.stringify({accept})})).status",
                [f"http://{MAIN}:{port}/_consent", choice],
            )
            assert status == 200
            assert consent_state(page, port)["decided"] is True
        page.goto(f"http://{SIBLING}:{port}/toss?form={form}")
        page.goto(f"http://{MAIN}:{port}/")
        tossed = [c for c in context.cookies(f"http://{MAIN}:{port}/") if c["domain"] == "." + PARENT]
        if form == "nameless":
            assert tossed == []  # Chromium refused it
        else:
            # Chromium kept the tossed cookie for the parent domain and sends it to the main site.
            assert len(tossed) == 1 and NAME + "=" in tossed[0]["name"] + "=" + tossed[0]["value"]
        state = consent_state(page, port)
        assert state["choices"]["analytics"] is False and state["choices"]["advertising"] is False
        assert state["decided"] is (choice is not None)
        assert state["id"] != "tossed"
    finally:
        context.close()
