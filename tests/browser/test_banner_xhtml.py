"""The banner on a page served as application/xhtml+xml, which Chromium parses as XML."""

from __future__ import annotations

import pytest

from .test_banner_access import focused, open_settings_by_keyboard, tab_to
from .test_banner_consent import ACCEPT_KO, BANNER_KO, REOPEN_KO, SAVE_KO, SETTINGS_KO, mark_window, ran, same_document, wait_for_marks

pytestmark = pytest.mark.browser

ANALYTICS_MARKS = ["gtag.js", "wcslog.js", "wcs_do"]
ADVERTISING_MARKS = ["kp.js", "kakao pageView"]


def open_xhtml(page) -> list[str]:
    """Opens /xhtml once the banner shows; returns the page's script errors, filled as they come."""
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto("/xhtml")
    assert page.evaluate("document.contentType") == "application/xhtml+xml"
    # Chromium shows a <parsererror> instead of the page when the XML is not well-formed.
    assert page.evaluate("document.getElementsByTagNameNS('*', 'parsererror').length") == 0
    page.get_by_role("region", name=BANNER_KO).wait_for()
    return errors


def test_accept_all_on_an_xhtml_page_runs_its_trackers(page, trackers):
    errors = open_xhtml(page)
    page.wait_for_load_state("networkidle")
    assert trackers.requests == []
    assert ran(page) == []

    mark_window(page)
    page.get_by_role("button", name=ACCEPT_KO).click()
    wait_for_marks(page, ANALYTICS_MARKS + ADVERTISING_MARKS)

    assert same_document(page)
    assert page.get_by_role("region", name=BANNER_KO).is_hidden()
    assert trackers.hosts == {"www.googletagmanager.com", "wcs.naver.net", "t1.daumcdn.net"}
    marks = ran(page)
    assert marks.index("wcslog.js") < marks.index("wcs_do")
    assert marks.index("kp.js") < marks.index("kakao pageView")
    assert page.get_by_role("button", name=REOPEN_KO).is_visible()
    assert errors == []


def test_keyboard_alone_can_choose_on_an_xhtml_page(page, trackers):
    errors = open_xhtml(page)
    page.keyboard.press("Tab")
    assert focused(page)["name"] == ACCEPT_KO
    dialog = open_settings_by_keyboard(page, SETTINGS_KO, "쿠키 설정")
    necessary = dialog.get_by_role("switch", name="필수")
    assert necessary.is_checked() and necessary.is_disabled()
    analytics = dialog.get_by_role("switch", name="방문 통계")
    while not analytics.evaluate("el => el === document.activeElement"):
        page.keyboard.press("Tab")
    page.keyboard.press("Space")
    assert analytics.is_checked()
    tab_to(page, SAVE_KO)
    page.keyboard.press("Enter")
    wait_for_marks(page, ANALYTICS_MARKS)
    page.wait_for_load_state("networkidle")

    assert page.evaluate("[consentmw.choices.analytics, consentmw.choices.advertising]") == [True, False]
    assert trackers.hosts == {"www.googletagmanager.com", "wcs.naver.net"}
    assert focused(page)["name"] == REOPEN_KO
    assert errors == []
