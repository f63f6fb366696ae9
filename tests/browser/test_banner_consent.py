"""What a visitor's choice in the banner does to the trackers of a real page, in Chromium."""

from __future__ import annotations

import json

import pytest

from .site import GA_ID

pytestmark = pytest.mark.browser

ANALYTICS_HOSTS = {"www.googletagmanager.com", "wcs.naver.net"}
ADVERTISING_HOSTS = {"connect.facebook.net", "t1.daumcdn.net"}
ANALYTICS_MARKS = ["gtag.js", "gtm.js", "wcslog.js", "wcs_do"]
ADVERTISING_MARKS = ["fbevents.js", "kp.js", "kakao pageView"]
ALL_GRANTED = {"necessary": True, "personalisation": True, "analytics": True, "advertising": True}

BANNER_KO = "쿠키 사용에 대한 선택"
ACCEPT_KO, REJECT_KO, SETTINGS_KO, SAVE_KO = "모두 허용", "필수 쿠키만 허용", "설정", "선택 저장"
REOPEN_KO = "쿠키 설정"  # the floating button


def ran(page) -> list[str]:
    return page.evaluate("window.__ran.slice()")


def wait_for_marks(page, marks: list[str]) -> None:
    page.wait_for_function("marks => marks.every(m => window.__ran.includes(m))", arg=marks, timeout=5000)


def banner(page):
    return page.get_by_role("region", name=BANNER_KO)


def open_banner(page, path: str = "/"):
    page.goto(path)
    banner(page).wait_for()
    return page


def mark_window(page) -> None:
    """A reload would lose this."""
    page.evaluate("window.__sameDocument = true")


def same_document(page) -> bool:
    return page.evaluate("window.__sameDocument === true")


def test_nothing_is_requested_before_a_choice(page, trackers):
    open_banner(page)
    page.wait_for_load_state("networkidle")
    assert trackers.requests == []
    assert ran(page) == []
    assert page.evaluate("consentmw.decided") is False


def test_reject_keeps_every_tracker_off_across_reloads(page, trackers):
    open_banner(page).get_by_role("button", name=REJECT_KO).click()
    page.get_by_role("button", name=REOPEN_KO).wait_for()
    page.reload()
    page.wait_for_load_state("networkidle")
    page.wait_for_function("consentmw.decided")

    assert banner(page).is_hidden()
    assert trackers.requests == []
    assert ran(page) == []
    assert page.evaluate("consentmw.choices") == {**dict.fromkeys(ALL_GRANTED, False), "necessary": True}


def test_accept_all_runs_every_tracker_at_once_without_a_reload(page, trackers):
    open_banner(page)
    mark_window(page)
    page.get_by_role("button", name=ACCEPT_KO).click()
    wait_for_marks(page, ANALYTICS_MARKS + ADVERTISING_MARKS)

    assert same_document(page)
    assert banner(page).is_hidden()
    assert trackers.hosts == ANALYTICS_HOSTS | ADVERTISING_HOSTS
    marks = ran(page)
    # Loaders that are not async ran before the inline calls that need them.
    assert marks.index("wcslog.js") < marks.index("wcs_do")
    assert marks.index("kp.js") < marks.index("kakao pageView")


def test_accept_all_sends_the_consent_mode_update(page):
    open_banner(page).get_by_role("button", name=ACCEPT_KO).click()
    page.wait_for_function("window.dataLayer && dataLayer.some(a => a[0] === 'consent' && a[1] === 'update')")
    updates = page.evaluate("dataLayer.filter(a => a[0] === 'consent' && a[1] === 'update').map(a => a[2])")
    assert updates == [
        {"ad_storage": "granted", "ad_user_data": "granted", "ad_personalization": "granted", "analytics_storage": "granted"}
    ]


def test_granting_analytics_lifts_the_google_analytics_kill_switch(page):
    open_banner(page)
    assert page.evaluate(f"window['ga-disable-{GA_ID}']") is True
    page.get_by_role("button", name=ACCEPT_KO).click()
    page.wait_for_function(f"window['ga-disable-{GA_ID}'] === false")


def test_trackers_run_on_later_pages_once_accepted(page, trackers):
    open_banner(page).get_by_role("button", name=ACCEPT_KO).click()
    wait_for_marks(page, ANALYTICS_MARKS + ADVERTISING_MARKS)
    trackers.clear()
    page.goto("/en")
    wait_for_marks(page, ANALYTICS_MARKS + ADVERTISING_MARKS)
    page.wait_for_load_state("networkidle")

    assert page.get_by_role("region", name="Your choice about cookies").is_hidden()
    assert trackers.hosts == ANALYTICS_HOSTS | ADVERTISING_HOSTS
    # Each tracker ran once: the server left allowed tags live and the banner did not run them again.
    assert sorted(ran(page)) == sorted(ANALYTICS_MARKS + ADVERTISING_MARKS)


def test_allowing_analytics_only_runs_analytics_only(page, trackers):
    open_banner(page).get_by_role("button", name=SETTINGS_KO, exact=True).click()
    dialog = page.get_by_role("dialog", name="쿠키 설정")
    dialog.get_by_role("switch", name="방문 통계").check()
    dialog.get_by_role("button", name=SAVE_KO).click()
    wait_for_marks(page, ANALYTICS_MARKS)
    page.wait_for_load_state("networkidle")

    assert trackers.hosts == ANALYTICS_HOSTS
    assert not set(ran(page)) & set(ADVERTISING_MARKS)
    assert page.evaluate("dataLayer.filter(a => a[0] === 'consent' && a[1] === 'update').map(a => a[2])") == [
        {"ad_storage": "denied", "ad_user_data": "denied", "ad_personalization": "denied", "analytics_storage": "granted"}
    ]
    assert page.evaluate("[consentmw.allows('analytics'), consentmw.allows('statistics'), consentmw.allows('advertising')]") == [
        True,
        True,
        False,
    ]


def test_withdrawal_reloads_the_page_and_the_withdrawn_trackers_stay_off(page, trackers):
    open_banner(page).get_by_role("button", name=ACCEPT_KO).click()
    wait_for_marks(page, ANALYTICS_MARKS + ADVERTISING_MARKS)
    mark_window(page)
    page.get_by_role("button", name=REOPEN_KO).click()
    dialog = page.get_by_role("dialog", name="쿠키 설정")
    assert dialog.get_by_text("페이지를 다시 불러옵니다").is_visible()
    dialog.get_by_role("switch", name="방문 통계").uncheck()
    trackers.clear()
    with page.expect_navigation():
        dialog.get_by_role("button", name=SAVE_KO).click()
    wait_for_marks(page, ADVERTISING_MARKS)
    page.wait_for_load_state("networkidle")

    assert not same_document(page)
    assert trackers.hosts == ADVERTISING_HOSTS
    assert not set(ran(page)) & set(ANALYTICS_MARKS)


def test_change_event_and_page_api(page):
    open_banner(page)
    page.evaluate("addEventListener('consentmw:change', e => { window.__changes = (window.__changes || []).concat([e.detail]) })")
    page.get_by_role("button", name=ACCEPT_KO).click()
    page.wait_for_function("window.__changes")

    assert page.evaluate("window.__changes") == [ALL_GRANTED]
    assert page.evaluate("consentmw.choices") == ALL_GRANTED
    page.evaluate("consentmw.open()")
    assert page.get_by_role("dialog", name="쿠키 설정").is_visible()


def test_data_consent_open_elements_reopen_the_settings(page):
    open_banner(page).get_by_role("button", name=REJECT_KO).click()
    page.get_by_role("link", name="쿠키 설정 변경").click()
    dialog = page.get_by_role("dialog", name="쿠키 설정")
    assert dialog.is_visible()
    assert dialog.get_by_role("switch", name="방문 통계").is_checked() is False


def test_the_floating_button_can_be_turned_off(page):
    page.goto("/no-button")
    page.get_by_role("button", name="Reject non-essential").click()
    page.wait_for_function("consentmw.decided")
    assert page.get_by_role("button", name="Cookie settings").count() == 0
    page.get_by_role("link", name="Change cookie settings").click()
    assert page.get_by_role("dialog", name="Cookie settings").is_visible()


def test_a_page_cached_for_someone_else_follows_this_visitors_choice(new_context, page, trackers):
    # What a shared cache would hold: a page the app lets a CDN keep (Cache-Control: public), as an
    # undecided visitor got it, trackers inert. It carries no visitor's state: the banner asks.
    response = new_context().request.get("/cached")
    cached = response.text()
    assert '"state":null' in cached
    open_banner(page).get_by_role("button", name=ACCEPT_KO).click()
    wait_for_marks(page, ANALYTICS_MARKS + ADVERTISING_MARKS)
    page.route("**/cached", lambda route: route.fulfill(status=200, content_type="text/html; charset=utf-8", body=cached))
    trackers.clear()
    page.goto("/cached")
    wait_for_marks(page, ANALYTICS_MARKS + ADVERTISING_MARKS)

    assert 'type="text/plain"' in cached
    assert banner(page).is_hidden()
    assert trackers.hosts == ANALYTICS_HOSTS | ADVERTISING_HOSTS


def test_an_inert_srcset_pixel_loads_when_advertising_is_allowed(page, trackers):
    open_banner(page, "/pixel")
    mark_window(page)
    assert ("www.facebook.com", "/tr") not in trackers.requests
    banner(page).get_by_role("button", name=ACCEPT_KO).click()
    for _ in range(50):
        if ("www.facebook.com", "/tr") in trackers.requests:
            break
        page.wait_for_timeout(100)
    assert ("www.facebook.com", "/tr") in trackers.requests
    assert same_document(page)


def test_other_consent_tools_markup_follows_the_choice(page):
    page.goto("/other-tools")
    page.get_by_role("button", name="Settings", exact=True).first.click()
    page.get_by_role("dialog").get_by_role("switch", name="Analytics").check()
    page.get_by_role("button", name="Save choices").click()
    page.wait_for_function("window.__ran.includes('klaro')")
    assert {"vanilla-cookieconsent", "cookiebot", "klaro"} <= set(ran(page))
    assert not {"onetrust", "unmarked"} & set(ran(page))

    page.reload()
    page.wait_for_function("window.__ran.includes('klaro')")
    page.wait_for_load_state("networkidle")
    assert not {"onetrust", "unmarked"} & set(ran(page))


def test_a_failed_save_says_so_and_changes_nothing(page, trackers):
    def store_down(route):
        if route.request.method != "POST":
            return route.continue_()
        body = {"error": "store_unavailable", "message": "The choice could not be recorded; nothing was changed. Please try again."}
        route.fulfill(status=503, content_type="application/json", body=json.dumps(body))

    page.route("**/_consent", store_down)
    open_banner(page).get_by_role("button", name=ACCEPT_KO).click()

    status = banner(page).get_by_role("status")
    status.get_by_text("선택을 저장하지 못했습니다").wait_for()
    page.wait_for_load_state("networkidle")
    assert banner(page).is_visible()
    assert trackers.requests == []
    assert page.evaluate("consentmw.decided") is False


def test_global_privacy_control_keeps_its_categories_refused(new_context, trackers):
    page = new_context(extra_http_headers={"Sec-GPC": "1"}).new_page()
    open_banner(page).get_by_role("button", name=SETTINGS_KO, exact=True).click()
    dialog = page.get_by_role("dialog", name="쿠키 설정")
    assert dialog.get_by_text("Global Privacy Control").is_visible()
    assert dialog.get_by_role("switch", name="방문 통계").is_disabled()
    dialog.get_by_role("button", name=ACCEPT_KO).click()
    page.wait_for_function("consentmw.decided")
    page.wait_for_load_state("networkidle")

    assert trackers.requests == []
    assert page.evaluate("[consentmw.allows('personalisation'), consentmw.allows('analytics')]") == [True, False]


def test_without_javascript_the_fallback_form_records_the_choice(new_context, site, trackers):
    context = new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto("/en")
    # The form speaks the page's language, as the banner would.
    with page.expect_navigation():
        page.get_by_role("button", name="Reject non-essential").click()

    assert page.url == site + "/en"
    state = context.request.get("/_consent").json()
    assert state["decided"] is True
    assert state["choices"] == {"necessary": True, "personalisation": False, "analytics": False, "advertising": False}
    assert trackers.requests == []
