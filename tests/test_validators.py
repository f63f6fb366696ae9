"""Every consent state's page gets a validator of its own. A shared cache that ignores Vary: Cookie
(many CDNs do) revalidates its copy with If-None-Match; if the validator did not name the consent
variant, a conditional-GET layer would answer 304 and the cache would serve a consenting visitor's
page, trackers live, to one who refused. Tested through Django's ConditionalGetMiddleware, a real
conditional-request layer, placed outside consentmw as a site would."""

from __future__ import annotations

import itertools
import types
from collections.abc import Iterator
from typing import Any

import pytest

from consentmw import demo
from consentmw.core.policy import load_policy
from consentmw.core.store import MemoryStore
from tests.adapters import PAGE

demo.load_site("django")  # configures Django once per process (the example project's settings)

from django.http import HttpResponse  # noqa: E402
from django.test import Client, override_settings  # noqa: E402
from django.urls import path  # noqa: E402
from django.views.decorators.http import etag  # noqa: E402

OPTIONAL = load_policy("default").optional
ORIGIN = {"origin": "http://testserver"}
# A visitor's state: the categories chosen (None: not decided yet) and whether the browser sends GPC.
STATES = [(None, False), *((frozenset(c), False) for n in range(len(OPTIONAL) + 1) for c in itertools.combinations(OPTIONAL, n)), (frozenset(OPTIONAL), True)]


@etag(lambda request: "page-v1")
def page(request: Any) -> HttpResponse:
    return HttpResponse(PAGE)


@pytest.fixture(scope="module")
def site() -> Iterator[None]:
    urls = types.ModuleType("consentmw_validator_urls")
    urls.urlpatterns = [path("page", page)]  # type: ignore[attr-defined]
    middleware = ["django.middleware.http.ConditionalGetMiddleware", "consentmw.django.ConsentMiddleware"]
    with override_settings(ROOT_URLCONF=urls, MIDDLEWARE=middleware, CONSENTMW={"STORE": MemoryStore()}, DEBUG=False):
        yield


def visitor(state: tuple[frozenset[str] | None, bool]) -> Client:
    chosen, gpc = state
    client = Client(headers={"sec-gpc": "1"} if gpc else {})
    if chosen is not None:
        r = client.post("/_consent", {"choices": {c: c in chosen for c in OPTIONAL}}, content_type="application/json", headers=ORIGIN)
        assert r.status_code == 200, r.content
    return client


@pytest.fixture(scope="module")
def pages(site: None) -> dict[Any, tuple[Client, str, bytes]]:
    """Each state's visitor, validator and page."""
    out = {}
    for state in STATES:
        client = visitor(state)
        r = client.get("/page")
        assert r.status_code == 200
        out[state] = (client, r.headers["ETag"], r.content)
    return out


def test_every_consent_state_gets_a_validator_of_its_own(pages: dict[Any, tuple[Client, str, bytes]]) -> None:
    bodies = {state: body for state, (_, _, body) in pages.items()}
    validators = {state: tag for state, (_, tag, _) in pages.items()}
    # Every state its own page: the trackers left live differ by analytics and advertising, and the
    # banner's state carried in the page (decided, each choice, GPC) tells the rest apart.
    assert len(set(bodies.values())) == len(STATES)
    for a, b in itertools.combinations(STATES, 2):
        if bodies[a] != bodies[b]:
            assert validators[a] != validators[b], (a, b)
    # One state, one validator: a cache keeps serving a visitor's own page.
    for state in STATES[:3]:
        client, tag, body = pages[state]
        again = client.get("/page")
        assert again.headers["ETag"] == tag and again.content == body


def test_revalidating_another_visitors_copy_never_gets_a_304(pages: dict[Any, tuple[Client, str, bytes]]) -> None:
    for (held, (_, tag, body)), (asking, (client, own_tag, own_body)) in itertools.product(pages.items(), pages.items()):
        r = client.get("/page", headers={"if-none-match": tag})
        if tag == own_tag:
            assert r.status_code == 304, (held, asking)  # the cache's copy is this visitor's page
        else:
            assert r.status_code == 200 and r.content == own_body, (held, asking)
        assert r.status_code == 200 or body == own_body
