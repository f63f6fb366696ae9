"""consentmw.django as a Django developer meets it: Django's test Client and AsyncClient, templates,
settings and manage.py check."""

from __future__ import annotations

import asyncio
import json
import types
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from consentmw import demo
from consentmw.core.store import MemoryStore
from tests.adapters import PAGE, TRACKERS
from tests.conftest import SECRET, consent_value
from tests.corpus.pages import live_trackers

demo.load_site("django")  # configures Django once per process (the example project's settings)

from django.core import checks  # noqa: E402
from django.http import FileResponse, HttpResponse, JsonResponse, StreamingHttpResponse  # noqa: E402
from django.template import engines  # noqa: E402
from django.test import AsyncClient, Client, override_settings  # noqa: E402
from django.urls import path  # noqa: E402

MIDDLEWARE = ["consentmw.django.ConsentMiddleware", "django.middleware.common.CommonMiddleware"]
TEMPLATE = (
    '{% load consent %}<p id="a">{% if consent|allows:"analytics" %}yes{% else %}no{% endif %}</p>'
    '<p id="x">{% if consent|allows:"nonsense" %}yes{% else %}no{% endif %}</p>{% consent_settings_button %}'
    "{% consent_settings_link %}<p id=p>{{ consent_prefix }}</p>"
)
seen: dict[str, Any] = {}


def same_consent(request: Any) -> JsonResponse:
    scope = getattr(request, "scope", None)
    return JsonResponse({"same": scope is None or scope["consent"] is request.consent, "analytics": request.consent.allows("analytics")})


def templated(request: Any) -> HttpResponse:
    return HttpResponse(engines["django"].from_string(TEMPLATE).render({}, request))


async def async_page() -> AsyncIterator[bytes]:
    data = PAGE.encode()
    seen["finished"] = False
    for start in range(0, len(data), 1024):
        yield data[start : start + 1024]
    seen["finished"] = True


async def held(request: Any) -> JsonResponse:
    # A slow async view (a long poll, a call to another service): it waits for the next request.
    try:
        await asyncio.wait_for(seen["gate"].wait(), 3)
    except TimeoutError:
        return JsonResponse({"released": False})
    return JsonResponse({"released": True})


async def release(request: Any) -> JsonResponse:
    seen["gate"].set()
    return JsonResponse({})


def urls(tmp: Path) -> Any:
    page = tmp / "page.html"
    page.write_text(PAGE)
    module = types.ModuleType("consentmw_django_test_urls")
    module.urlpatterns = [  # type: ignore[attr-defined]
        path("same", same_consent),
        path("held", held),
        path("release", release),
        path("template", templated),
        path("async-stream", lambda request: StreamingHttpResponse(async_page(), content_type="text/html; charset=utf-8")),
        path("file", lambda request: FileResponse(page.open("rb"))),
        path("download", lambda request: FileResponse(page.open("rb"), as_attachment=True)),
        path("dated", lambda request: HttpResponse(PAGE, headers={"Last-Modified": "Wed, 01 Jan 2025 00:00:00 GMT", "X-Kept": "1"})),
    ]
    return module


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def django_settings(tmp_path: Path, store: MemoryStore) -> Iterator[None]:
    with override_settings(ROOT_URLCONF=urls(tmp_path), MIDDLEWARE=MIDDLEWARE, CONSENTMW={"STORE": store}, DEBUG=False):
        yield


def accept_all(client: Client) -> None:
    r = client.post("/_consent", {"accept": "all"}, content_type="application/json", headers={"origin": "http://testserver"})
    assert r.status_code == 200, r.content


@pytest.mark.usefixtures("django_settings")
def test_sync_client_views_templates_and_the_consent_cookie(caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    from consentmw.django.templatetags import consent as tags

    monkeypatch.setattr(tags, "_unknown_logged", set())
    client = Client()
    r = client.get("/template")
    body = r.content.decode()
    assert '<p id="a">no</p>' in body and '<p id="x">no</p>' in body
    assert '<button type="button" class="" data-consent-open>' in body
    assert '<a href="/_consent/opt-out" class="" data-consent-open>' in body and "<p id=p>/_consent</p>" in body
    accept_all(client)
    body = client.get("/template").content.decode()
    assert '<p id="a">yes</p>' in body and '<p id="x">no</p>' in body
    # Three renders, one warning naming the category the policy does not declare.
    assert sum("'nonsense'" in r.getMessage() for r in caplog.records if r.name == "consentmw") == 1


@pytest.mark.usefixtures("django_settings")
async def test_async_client_request_consent_is_the_scope_consent() -> None:
    client = AsyncClient()
    r = await client.get("/same")
    assert r.json() == {"same": True, "analytics": False}


@pytest.mark.usefixtures("django_settings")
async def test_on_asgi_a_slow_async_view_holds_up_no_other_request() -> None:
    # The middleware runs on the event loop: were it sync-only, Django would run it in its one
    # thread for sync code, and every request would queue behind the slow one.
    seen["gate"] = asyncio.Event()
    client = AsyncClient()
    waiting = asyncio.create_task(client.get("/held"))
    await asyncio.sleep(0.1)
    assert (await client.get("/release")).status_code == 200
    assert (await waiting).json() == {"released": True}


@pytest.mark.usefixtures("django_settings")
async def test_an_async_streamed_page_is_rewritten_as_a_stream() -> None:
    response = await AsyncClient().get("/async-stream")
    assert response.streaming and "Content-Length" not in response
    stream = aiter(response.streaming_content)
    chunks = [await anext(stream)]
    assert seen["finished"] is False  # the visitor gets the start before the view has made the end
    chunks += [chunk async for chunk in stream]
    assert seen["finished"] is True
    page = b"".join(chunks).decode()
    assert live_trackers(page) == set() and "/_consent/banner.js?v=" in page
    # The same page as one sent whole, its start and its end (the held </body> and the banner) included.
    whole = (await AsyncClient().get("/dated")).content.decode()
    assert page == whole.replace('name="next" value="/dated"', 'name="next" value="/async-stream"')


@pytest.mark.usefixtures("django_settings")
@pytest.mark.filterwarnings("ignore:StreamingHttpResponse must consume synchronous iterators")
def test_file_response_pages_are_rewritten_and_downloads_pass_as_sent() -> None:
    client = Client()
    page = b"".join(client.get("/file").streaming_content).decode()
    assert live_trackers(page) == set() and "/_consent/banner.js" in page
    download = b"".join(client.get("/download").streaming_content).decode()
    assert download == PAGE
    accept_all(client)
    assert live_trackers(b"".join(client.get("/file").streaming_content).decode()) == TRACKERS


def again(client: Client) -> Client:
    """A new client (Django's builds its middleware once) with the same cookies: the next deploy."""
    fresh = Client()
    fresh.cookies = client.cookies
    return fresh


def test_the_key_comes_from_secret_key_and_rotates_with_its_fallbacks(tmp_path: Path, store: MemoryStore) -> None:
    base = {"ROOT_URLCONF": urls(tmp_path), "MIDDLEWARE": MIDDLEWARE, "CONSENTMW": {"STORE": store}}
    with override_settings(SECRET_KEY="old-key-" + "x" * 40, **base):
        client = Client()
        accept_all(client)
        assert client.get("/same").json()["analytics"] is True
    with override_settings(SECRET_KEY="new-key-" + "y" * 40, SECRET_KEY_FALLBACKS=["old-key-" + "x" * 40], **base):
        assert again(client).get("/same").json()["analytics"] is True  # the old cookie still verifies
    with override_settings(SECRET_KEY="new-key-" + "y" * 40, SECRET_KEY_FALLBACKS=[], **base):
        assert again(client).get("/same").json()["analytics"] is False  # fallback dropped: asked again
    explicit = {**base, "CONSENTMW": {"STORE": store, "SECRET_KEY": SECRET}}
    with override_settings(SECRET_KEY="new-key-" + "y" * 40, **explicit):
        explicit_client = Client()
        explicit_client.cookies["consentmw"] = consent_value({"analytics", "advertising", "personalisation"}, "given")
        assert explicit_client.get("/same").json()["analytics"] is True  # signed with the explicit key
        assert again(client).get("/same").json()["analytics"] is False  # Django's key no longer counts


def check_ids(**settings: Any) -> list[str]:
    with override_settings(**settings):
        return sorted({m.id for m in checks.run_checks() if m.id and m.id.startswith("consentmw.")})


def own_policy(tmp_path: Path) -> str:
    """The default preset in a site's own name, as consentmw init writes it."""
    from consentmw import load_policy

    data = load_policy("default").data
    data["controller"] = {"name": {"en": "Example Shop Ltd."}, "contact": "privacy@example.com"}
    path = tmp_path / "own-policy.json"
    path.write_text(json.dumps(data), "utf-8")
    return str(path)


def test_system_checks_name_each_mistake(tmp_path: Path) -> None:
    gzip = "django.middleware.gzip.GZipMiddleware"
    ok = {"MIDDLEWARE": [gzip, *MIDDLEWARE], "CONSENTMW": {"STORE": "memory://", "POLICY": own_policy(tmp_path)}}
    assert check_ids(**ok) == []
    # No policy of the site's own: the neutral default, which names no controller.
    with override_settings(**{**ok, "CONSENTMW": {"STORE": "memory://"}}):
        [warning] = [m for m in checks.run_checks() if m.id == "consentmw.W003"]
    assert "names no controller" in warning.msg and "consentmw init" in warning.hint
    assert check_ids(**{**ok, "MIDDLEWARE": [*MIDDLEWARE, gzip]}) == ["consentmw.E001"]
    stock = ["django.middleware.security.SecurityMiddleware", "django.contrib.sessions.middleware.SessionMiddleware"]
    assert check_ids(**{**ok, "MIDDLEWARE": [*stock, gzip, *MIDDLEWARE]}) == []
    with override_settings(**{**ok, "MIDDLEWARE": ["shop.middleware.CampaignCookieMiddleware", *MIDDLEWARE]}):
        [warning] = [m for m in checks.run_checks() if m.id == "consentmw.W001"]
    assert warning.obj == "shop.middleware.CampaignCookieMiddleware" and "whatever they chose" in warning.msg
    assert check_ids(**{**ok, "CONSENTMW": {"STORE": "memory://", "POLCY": "default"}}) == ["consentmw.E002"]
    bad = tmp_path / "policy.json"
    bad.write_text('{"version": "1", "categories": [{"id": 5}]}')
    with override_settings(**{**ok, "CONSENTMW": {"POLICY": str(bad)}}):
        messages = [m for m in checks.run_checks() if m.id == "consentmw.E003"]
    assert len(messages) == 1 and "$.categories[0]" in messages[0].msg
    from django.conf import settings

    apps = [a for a in settings.INSTALLED_APPS if a != "consentmw.django"]
    assert "consentmw.E005" in check_ids(**{**ok, "INSTALLED_APPS": apps})


def test_the_asgi_wrap_and_the_middleware_together_fail_the_check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from consentmw import ConsentMiddleware

    module = types.ModuleType("consentmw_double_asgi")
    module.application = ConsentMiddleware(lambda scope, receive, send: None, secret_key=SECRET, store=MemoryStore())  # type: ignore[attr-defined]
    monkeypatch.setitem(__import__("sys").modules, "consentmw_double_asgi", module)
    assert "consentmw.E004" in check_ids(MIDDLEWARE=MIDDLEWARE, ASGI_APPLICATION="consentmw_double_asgi.application", CONSENTMW={"STORE": "memory://"})


class SyncOnlyMiddleware:
    """A third-party middleware that cannot run async: below it, Django runs ours on the sync path
    under ASGI too."""

    sync_capable = True
    async_capable = False

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: Any) -> Any:
        return self.get_response(request)


@pytest.mark.usefixtures("django_settings")
@pytest.mark.filterwarnings("ignore:StreamingHttpResponse must consume synchronous iterators")
@pytest.mark.parametrize("path", ["async", "sync"])
async def test_with_the_asgi_wrap_as_well_the_page_is_rewritten_once_and_the_mistake_logged(caplog: pytest.LogCaptureFixture, path: str) -> None:
    from django.core.asgi import get_asgi_application

    from consentmw import ConsentMiddleware
    from tests.conftest import client_for

    below = ["tests.test_django.SyncOnlyMiddleware"] if path == "sync" else []
    with override_settings(MIDDLEWARE=[*MIDDLEWARE, *below]):
        app = ConsentMiddleware(get_asgi_application(), secret_key=SECRET, store=MemoryStore())
        async with client_for(app) as client:
            response = await client.get("/file")
            same = (await client.get("/same")).json()
    page = response.text
    assert response.status_code == 200  # the shop's page, not an error page the wrap rewrote
    assert page.count("/_consent/banner.js?v=") == 1
    assert live_trackers(page) == set()
    assert same == {"same": True, "analytics": False}  # request.consent is the ASGI wrap's
    # Two requests, one error: logged once per process, not on every page.
    assert sum("consentmw.E004" in r.getMessage() for r in caplog.records if r.levelname == "ERROR") == 1


@pytest.mark.parametrize("adapter", ["django-wsgi", "django-asgi"])
def test_withdrawal_expires_each_refused_cookie_on_every_domain_it_may_live_on(adapter: str) -> None:
    # Django keeps one Morsel per cookie name; the core expires _ga host-only and on each domain
    # above the host, and every one of those lines must reach the browser.
    from consentmw import load_policy
    from consentmw.core.cookie import expire_headers
    from tests.adapters import client_for

    host = "www.shop.example"
    with override_settings(ALLOWED_HOSTS=[host]), client_for(adapter, {"store": MemoryStore()}) as client:
        client.headers.update({"host": host, "origin": f"http://{host}"})
        assert client.post("/_consent", json={"accept": "all"}).status_code == 200
        # What the browser sends on www.shop.example: the consent cookie and gtag.js's two.
        sent = "; ".join([*(f"{k}={v}" for k, v in client.cookies.items()), "_ga=GA1.1.1.1", "_gid=GA1.1.2.2"])
        client.cookies.clear()
        r = client.post("/_consent", json={"accept": "necessary"}, headers={"cookie": sent})
    assert r.status_code == 200
    expected = [line.decode() for line in expire_headers(load_policy("default"), {"_ga": "", "_gid": ""}, ["analytics", "advertising"], False, host)]
    assert len(expected) == 6
    # Django's WSGI handler writes Morsel.output(header=""), which starts with a space.
    lines = [line.strip() for line in r.headers.get_list("set-cookie")]
    assert sorted(line for line in lines if line.startswith(("_ga=", "_gid="))) == sorted(expected)


@pytest.mark.usefixtures("django_settings")
def test_the_consent_cookie_reads_back_from_response_cookies_as_sent() -> None:
    # Other middleware and Django's test client read response.cookies: name and value as in the header.
    r = Client().post("/_consent", {"accept": "all"}, content_type="application/json", headers={"origin": "http://testserver"})
    morsel = r.cookies["consentmw"]
    line = morsel.OutputString()
    assert line.startswith(f"consentmw={morsel.value};") and morsel.value == morsel.coded_value and "." in morsel.value


@pytest.mark.usefixtures("django_settings")
def test_a_header_the_core_drops_is_gone_from_the_django_response() -> None:
    # A date cannot tell one visitor's variant of the page from another's (see core/rewriting.py).
    r = Client().get("/dated")
    assert "Last-Modified" not in r.headers and r.headers["X-Kept"] == "1"
    assert live_trackers(r.content.decode()) == set()


@pytest.mark.usefixtures("django_settings")
def test_a_choice_just_under_the_body_limit_is_read_whole() -> None:
    body = '{"accept": "all"}'.rjust(8000)  # more than half of the 8,192-byte limit, the choice at its end
    r = Client().post("/_consent", body, content_type="application/json", headers={"origin": "http://testserver"})
    assert r.status_code == 200, r.content


def test_the_banner_speaks_the_pages_language_else_djangos_active_one(tmp_path: Path) -> None:
    from django.utils import translation

    module = types.ModuleType("consentmw_django_language_urls")
    module.urlpatterns = [  # type: ignore[attr-defined]
        path("plain", lambda request: HttpResponse("<!doctype html><html><head></head><body><p>x</p></body></html>")),
        path("japanese", lambda request: HttpResponse('<!doctype html><html lang="ja"><head></head><body><p>x</p></body></html>')),
    ]
    with override_settings(ROOT_URLCONF=module, MIDDLEWARE=MIDDLEWARE, CONSENTMW={"STORE": MemoryStore(), "POLICY": own_policy(tmp_path)}):
        with translation.override("de"):
            plain = Client().get("/plain", headers={"accept-language": "fr"})
            japanese = Client().get("/japanese", headers={"accept-language": "fr"})
    assert '"lang":"de"' in plain.content.decode() and 'lang="de"' in plain.content.decode()
    assert '"lang":"ja"' in japanese.content.decode()
    # Django's language decided, not the browser's: the page does not vary on Accept-Language.
    assert "Accept-Language" not in plain.headers["Vary"]
