"""The example sites in Chromium, on the servers sites run: the ASGI ones as `python -m consentmw demo`
serves them (uvicorn: the README's first command), Django under gunicorn (WSGI) and under uvicorn
(ASGI) with its native middleware, Flask under gunicorn."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from consentmw import demo
from tests.conftest import SECRET
from tests.demo_support import app_server, demo_server, free_port

pytestmark = pytest.mark.browser

# Page language of each example (its policy's texts are shown in it).
LANGUAGES = {"fastapi": "ko", "starlette": "en", "django": "ko", "flask": "ko"}
# Sites served by a real server of their own kind instead of the demo: name -> (command, app).
SERVED = {
    "django": ("gunicorn", "examples.django_site.wsgi:application"),
    "django-asgi": ("uvicorn", "examples.django_site.asgi:application"),
    "flask": ("gunicorn", "examples.flask_site.app:app"),
}
ANALYTICS_HOSTS = {"www.googletagmanager.com", "wcs.naver.net"}
# What the stubbed vendor scripts and the inline calls leave in window.__ran when they run.
ANALYTICS_MARKS = ["gtag.js", "wcslog.js", "wcs_do"]


@pytest.fixture(scope="module", params=["starlette", "fastapi", "django", "django-asgi", "flask"])
def example(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    site_name = request.param.removesuffix("-asgi")
    if request.param in SERVED:
        settings = {"CONSENTMW_SECRET_KEY": SECRET, "CONSENTMW_STORE": "memory://"}
        log = tmp_path_factory.mktemp("served") / "server.log"
        with app_server(*SERVED[request.param], free_port(), log, settings) as url:
            yield site_name, url + "/"
        return
    with demo_server(tmp_path_factory.mktemp("demo"), "--site", request.param, "--store", "memory://") as server:
        yield site_name, server.url


@pytest.fixture(scope="module")
def site(example: tuple[str, str]) -> str:
    """Overrides the package's test site: new_context() opens pages on the example instead."""
    return example[1]


@pytest.fixture
def visitor(new_context):
    page = new_context().new_page()
    page.add_init_script("window.__ran = []")  # the tracker stubs report here
    return page


def text(site_name: str, key: str) -> str:
    return demo.load_site(site_name).POLICY.text(key, LANGUAGES[site_name])


def test_analytics_run_only_after_accept_all_in_the_banner(visitor, trackers, example, artifacts) -> None:
    site_name, _ = example
    visitor.goto("/")
    banner = visitor.get_by_role("region", name=text(site_name, "banner_title"))
    banner.wait_for()
    visitor.wait_for_load_state("networkidle")
    assert trackers.requests == []
    assert visitor.evaluate("window.__ran") == []
    visitor.wait_for_timeout(350)  # let the slide-in end before the screenshot
    visitor.screenshot(path=artifacts / f"example-{site_name}-banner.png")

    visitor.evaluate("window.__sameDocument = true")
    banner.get_by_role("button", name=text(site_name, "accept_all"), exact=True).click()
    visitor.wait_for_function("marks => marks.every(m => window.__ran.includes(m))", arg=ANALYTICS_MARKS, timeout=5000)
    assert ANALYTICS_HOSTS <= trackers.hosts
    assert visitor.evaluate("window.__sameDocument === true"), "the page reloaded"

    trackers.clear()
    visitor.reload()
    visitor.wait_for_function("marks => marks.every(m => window.__ran.includes(m))", arg=ANALYTICS_MARKS, timeout=5000)
    assert ANALYTICS_HOSTS <= trackers.hosts
    assert visitor.locator("dd[data-category=analytics]").inner_text() in {"allowed", "허용"}


def test_rejecting_keeps_analytics_off_and_the_theme_cookie_out(visitor, trackers, example) -> None:
    site_name, _ = example
    visitor.goto("/")
    banner = visitor.get_by_role("region", name=text(site_name, "banner_title"))
    banner.get_by_role("button", name=text(site_name, "reject_all"), exact=True).click()
    banner.wait_for(state="hidden")

    visitor.goto("/preferences?theme=dark")
    visitor.wait_for_load_state("networkidle")
    assert visitor.locator("body.theme-dark").count() == 1  # the page still shows the choice
    cookies = {c["name"] for c in visitor.context.cookies()}
    assert "consentmw" in cookies
    assert "prefs_theme" not in cookies
    visitor.goto("/")
    visitor.wait_for_load_state("networkidle")
    assert visitor.locator("body.theme-light").count() == 1
    assert trackers.requests == []
    assert visitor.evaluate("window.__ran") == []


def test_the_footer_button_opens_the_settings_dialog_and_saves_a_choice(visitor, trackers, example) -> None:
    site_name, _ = example
    visitor.goto("/")
    visitor.get_by_role("region", name=text(site_name, "banner_title")).wait_for()
    # The banner covers the footer until a choice is made: reach the button by keyboard, as a visitor can.
    visitor.locator("footer").get_by_role("button", name=text(site_name, "reopen")).focus()
    visitor.keyboard.press("Enter")
    dialog = visitor.get_by_role("dialog", name=text(site_name, "settings_title"))
    analytics = demo.load_site(site_name).POLICY.by_id["analytics"].name[LANGUAGES[site_name]]
    dialog.get_by_role("switch", name=analytics).check()
    assert trackers.requests == []
    dialog.get_by_role("button", name=text(site_name, "save"), exact=True).click()
    visitor.wait_for_function("marks => marks.every(m => window.__ran.includes(m))", arg=ANALYTICS_MARKS, timeout=5000)
    assert ANALYTICS_HOSTS <= trackers.hosts
