"""The browser guide and analytics opt-out pages in Chromium: with JavaScript off, under their CSP."""

from __future__ import annotations

import json

import pytest

from tests.test_browsers import CHROME_LINUX, KAKAOTALK_ANDROID

pytestmark = pytest.mark.browser


def csp_violations(page) -> list[str]:
    messages: list[str] = []
    page.on("console", lambda m: messages.append(m.text) if "Content Security Policy" in m.text else None)
    return messages


def test_opt_out_with_javascript_off_changes_the_recorded_choice(new_context) -> None:
    page = new_context(java_script_enabled=False).new_page()
    page.goto("/_consent/opt-out")
    page.get_by_role("heading", name="방문 분석 거부").wait_for()
    assert page.get_by_text("아직 선택하지 않으셨습니다").is_visible()

    page.get_by_role("button", name="방문 분석 거부하기").click()

    page.get_by_role("status").filter(has_text="방문 분석 거부를 기록했습니다").wait_for()
    assert page.url.endswith("/_consent/opt-out?done=1&lang=ko")
    assert page.get_by_text("방문 분석을 거부한 상태입니다").is_visible()
    assert page.get_by_role("button", name="방문 분석 거부하기").count() == 0
    page.goto("/_consent")
    state = json.loads(page.locator("body").inner_text())
    assert state["decided"] is True and state["choices"]["analytics"] is False


def test_pages_are_styled_under_their_own_csp(new_context) -> None:
    page = new_context().new_page()
    violations = csp_violations(page)
    for path in ("/_consent/browsers", "/_consent/opt-out"):
        page.goto(path)
        # The layout rule lives in the hashed inline <style>: applied only if the CSP let it through.
        assert page.evaluate("getComputedStyle(document.body).maxWidth") == "736px"
    assert violations == []


def test_browsers_page_guides_chromium_and_keeps_settings_addresses_as_text(new_context) -> None:
    # Chromium as a person runs it: headless Chromium's own User-Agent gets the generic guide.
    page = new_context(locale="en-US", user_agent=CHROME_LINUX).new_page()
    page.goto("/_consent/browsers")
    page.get_by_text("Your browser: Chrome (computer)").wait_for()
    assert page.get_by_role("heading", name="Block third-party cookies only").is_visible()
    address = page.locator("code", has_text="chrome://settings/cookies")
    assert address.is_visible()
    assert page.locator('a[href^="chrome:"]').count() == 0

    page.get_by_role("link", name="Safari (iPhone and iPad)").click()
    page.get_by_role("heading", name="Safari (iPhone and iPad)", level=2).wait_for()
    assert page.get_by_text("Block All Cookies").first.is_visible()


def test_kakaotalk_visitor_is_sent_to_a_real_browser(new_context) -> None:
    page = new_context(user_agent=KAKAOTALK_ANDROID).new_page()
    page.goto("/_consent/browsers")
    page.get_by_role("heading", name="평소 쓰는 브라우저로 열기").wait_for()
    assert page.get_by_text("카카오톡 안의 브라우저로 열려 있습니다").is_visible()
    assert page.get_by_role("link", name="삼성 인터넷").is_visible()


def test_refusing_on_this_site_only_with_javascript_off(new_context) -> None:
    page = new_context(java_script_enabled=False).new_page()
    page.goto("/_consent/browsers?browser=safari-ios")
    page.get_by_role("button", name="필수 쿠키만 허용").click()
    page.get_by_role("status").filter(has_text="이 사이트의 필수가 아닌 쿠키를 모두 거부했습니다").wait_for()
    assert page.get_by_role("heading", name="Safari (iPhone·iPad)").is_visible()
