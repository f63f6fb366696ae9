"""Regional rules in Chromium: what loads for a visitor in an opt-out region, with and without
Global Privacy Control, and in an opt-in one. The region comes from the CDN header the site trusts,
which a test browser sends itself."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from consentmw.core.store import MemoryStore
from tests.demo_support import serve

from .site import make_site, site_policy

pytestmark = pytest.mark.browser

GA_HOST, META_HOST = "www.googletagmanager.com", "connect.facebook.net"


def regional_policy() -> dict:
    """The browser site's policy with the US opt-out; analytics is outside GPC's reach there, so a
    GPC visitor's Google Analytics still loads and tells the two rules apart."""
    policy = site_policy()
    policy["regions"] = [{"where": ["US"], "mode": "opt-out"}]
    for category in policy["categories"]:
        if category["id"] == "analytics":
            category["gpc"] = False
    return policy


@pytest.fixture(scope="module")
def regional_site() -> Iterator[str]:
    with serve(make_site(store=MemoryStore(), policy=regional_policy(), region_header="CF-IPCountry")) as port:
        yield f"http://127.0.0.1:{port}"


def ran(page) -> list[str]:
    return page.evaluate("window.__ran.slice()")


def visit(new_context, site: str, **headers: str):
    page = new_context(base_url=site, extra_http_headers=headers).new_page()
    page.goto("/en")
    return page


def test_a_us_visitors_google_analytics_loads_with_no_click(new_context, regional_site, trackers):
    page = visit(new_context, regional_site, **{"CF-IPCountry": "US"})
    page.wait_for_function("window.__ran.includes('gtag.js') && window.__ran.includes('fbevents.js')", timeout=5000)
    assert {GA_HOST, META_HOST} <= trackers.hosts
    assert page.evaluate("consentmw.decided") is False


def test_a_gpc_visitors_meta_pixel_never_loads(new_context, regional_site, trackers):
    page = visit(new_context, regional_site, **{"CF-IPCountry": "US", "Sec-GPC": "1"})
    page.wait_for_function("window.__ran.includes('gtag.js')", timeout=5000)
    page.wait_for_load_state("networkidle")
    assert META_HOST not in trackers.hosts
    assert "fbevents.js" not in ran(page)
    assert GA_HOST in trackers.hosts


@pytest.mark.parametrize("where", ["DE", "KR", "XX", ""])
def test_an_opt_in_or_unknown_visitor_gets_nothing_before_a_choice(new_context, regional_site, trackers, where):
    headers = {"CF-IPCountry": where} if where else {}
    page = visit(new_context, regional_site, **headers)
    page.wait_for_load_state("networkidle")
    assert trackers.requests == []
    assert ran(page) == []


def test_the_opt_out_notice_offers_do_not_sell_and_it_sticks(new_context, regional_site, trackers):
    page = visit(new_context, regional_site, **{"CF-IPCountry": "US"})
    notice = page.get_by_role("region", name="Cookies on this site")
    notice.wait_for()
    assert notice.get_by_text("where you are, they run unless you refuse them").is_visible()
    page.wait_for_function("window.__ran.includes('fbevents.js')", timeout=5000)
    with page.expect_navigation():  # the Meta pixel already ran: a reload is what stops it
        notice.get_by_role("button", name="Do Not Sell or Share My Personal Information").click()
    trackers.clear()
    page.wait_for_function("window.consentmw && consentmw.decided && window.__ran.includes('gtag.js')", timeout=5000)
    page.wait_for_load_state("networkidle")
    assert page.evaluate("[consentmw.allows('analytics'), consentmw.allows('advertising')]") == [True, False]
    assert META_HOST not in trackers.hosts
    assert not page.get_by_role("region", name="Cookies on this site").is_visible()


def test_the_settings_dialog_shows_what_runs_for_an_undecided_opt_out_visitor(new_context, regional_site):
    page = visit(new_context, regional_site, **{"CF-IPCountry": "US", "Sec-GPC": "1"})
    page.get_by_role("region", name="Cookies on this site").get_by_role("button", name="Settings", exact=True).click()
    dialog = page.get_by_role("dialog", name="Cookie settings")
    assert dialog.get_by_role("switch", name="Analytics").is_checked()  # allowed here until refused
    advertising = dialog.get_by_role("switch", name="Advertising")
    assert not advertising.is_checked() and advertising.is_disabled()  # GPC refuses it


def test_an_opt_in_visitor_gets_the_usual_banner(new_context, regional_site):
    page = visit(new_context, regional_site, **{"CF-IPCountry": "DE"})
    banner = page.get_by_role("region", name="Your choice about cookies")
    banner.wait_for()
    assert banner.get_by_role("button", name="Reject non-essential").is_visible()
    assert page.get_by_role("button", name="Do Not Sell or Share My Personal Information").count() == 0
