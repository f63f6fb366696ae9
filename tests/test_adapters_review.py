"""Where the WSGI and Django adapters once let through what the ASGI middleware stops, found by
trying them the way a hostile visitor or an unusual app would; each runs against every adapter."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from consentmw.core.store import MemoryStore
from tests.adapters import ADAPTERS, client_for
from tests.conftest import SECRET

pytestmark = pytest.mark.filterwarnings("ignore:StreamingHttpResponse must consume synchronous iterators")


@pytest.fixture(params=ADAPTERS)
def site(request: pytest.FixtureRequest) -> Iterator[httpx.Client]:
    with client_for(request.param, {"secret_key": SECRET, "store": MemoryStore()}) as client:
        yield client


def test_a_refused_cookie_the_app_writes_as_a_plain_header_is_dropped(site: httpx.Client) -> None:
    # Django: response["Set-Cookie"] = ... on a JSON answer, not response.set_cookie().
    r = site.get("/raw-cookies?name=_ga")
    assert r.status_code == 200
    assert r.headers.get_list("set-cookie") == []
    assert "cookie" in r.headers["vary"].lower()
    assert site.post("/_consent", json={"accept": "all"}).status_code == 200
    assert set(site.get("/raw-cookies?name=_ga").cookies) == {"_ga"}


def test_the_no_javascript_form_on_a_page_at_a_non_ascii_path_returns_to_that_page(site: httpx.Client) -> None:
    r = site.get("/caf%C3%A9")
    assert r.status_code == 200
    next_url = re.search(r'name="next" value="([^"]*)"', r.text).group(1)  # type: ignore[union-attr]
    assert next_url == "/caf%C3%A9"
    r = site.post("/_consent", data={"accept": "necessary", "next": next_url})
    assert (r.status_code, r.headers["location"]) == (303, "/caf%C3%A9")
