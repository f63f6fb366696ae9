"""The banner for keyboard, screen-reader, small-screen, zoomed and reduced-motion visitors, in both languages."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser

TEXTS = {
    "ko": {"banner": "쿠키 사용에 대한 선택", "accept": "모두 허용", "reject": "필수 쿠키만 허용", "settings": "설정", "dialog": "쿠키 설정", "save": "선택 저장"},
    "en": {"banner": "Your choice about cookies", "accept": "Accept all", "reject": "Reject non-essential", "settings": "Settings", "dialog": "Cookie settings", "save": "Save choices"},
    "fr": {"banner": "Votre choix concernant les cookies", "accept": "Tout accepter"},
    "th": {"banner": "การเลือกเกี่ยวกับคุกกี้", "accept": "ยอมรับทั้งหมด"},
}
PAGES = {"ko": "/", "en": "/en"}


def focused(page) -> dict:
    return page.evaluate(
        "({name: document.activeElement.textContent || document.activeElement.getAttribute('aria-label') || '',"
        " inDialog: !!document.activeElement.closest('dialog'), tag: document.activeElement.tagName})"
    )


def tab_to(page, name: str, limit: int = 30) -> None:
    for _ in range(limit):
        page.keyboard.press("Tab")
        if focused(page)["name"].strip() == name:
            return
    raise AssertionError(f"{name!r} cannot be reached with Tab")


def open_settings_by_keyboard(page, settings: str, dialog_name: str):
    """Opens the settings dialog from the banner with the keyboard alone and checks its focus trap:
    focus goes in, stays in both ways round, and Escape closes it onto the button that opened it.
    Reopens it with Enter and returns it."""
    tab_to(page, settings)
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog", name=dialog_name)
    dialog.wait_for()
    assert dialog.evaluate("d => d.matches(':modal')")
    assert focused(page)["inDialog"]
    for key in ["Tab"] * 14 + ["Shift+Tab"] * 14:
        page.keyboard.press(key)
        assert focused(page)["inDialog"], key
    page.keyboard.press("Escape")
    assert dialog.is_hidden()
    assert focused(page)["name"] == settings
    page.keyboard.press("Enter")
    return dialog


def test_keyboard_alone_can_open_the_settings_choose_and_save(page):
    page.goto("/")
    page.get_by_role("region", name=TEXTS["ko"]["banner"]).wait_for()
    # The banner comes first in the tab order.
    page.keyboard.press("Tab")
    assert focused(page)["name"] == TEXTS["ko"]["accept"]
    dialog = open_settings_by_keyboard(page, TEXTS["ko"]["settings"], TEXTS["ko"]["dialog"])
    tab_to(page, "")  # the first switch: the locked one is skipped, so this is the first optional category
    analytics = dialog.get_by_role("switch", name="방문 통계")
    while not analytics.evaluate("el => el === document.activeElement"):
        page.keyboard.press("Tab")
    page.keyboard.press("Space")
    assert analytics.is_checked()
    tab_to(page, TEXTS["ko"]["save"])
    page.keyboard.press("Enter")
    page.wait_for_function("consentmw.decided")
    assert page.evaluate("consentmw.choices.analytics") is True
    assert page.evaluate("consentmw.choices.advertising") is False
    # Focus lands on the floating button that reopens the settings, not on the page's start.
    assert focused(page)["name"] == "쿠키 설정"


def test_dialog_is_modal_labelled_and_locks_required_categories(page):
    page.goto("/en")
    page.get_by_role("button", name="Settings", exact=True).click()
    dialog = page.get_by_role("dialog", name="Cookie settings")
    assert dialog.evaluate("d => d.matches(':modal')")
    necessary = dialog.get_by_role("switch", name="Necessary")
    assert necessary.is_checked() and necessary.is_disabled()
    assert dialog.get_by_text("Always on").is_visible()
    analytics = dialog.get_by_role("switch", name="Analytics")
    assert analytics.get_attribute("aria-describedby")
    assert "Measures which pages" in analytics.evaluate("el => document.getElementById(el.getAttribute('aria-describedby')).textContent")
    # On the page's own origin, written out in full so that a <base href> cannot move it.
    link = dialog.get_by_role("link", name="How to refuse cookies in your browser")
    assert link.get_attribute("href") == page.evaluate("location.origin") + "/_consent/browsers?lang=en"
    dialog.get_by_role("button", name="Close").click()
    assert dialog.is_hidden()


def test_accept_and_reject_look_the_same(page):
    page.goto("/")
    accept = page.get_by_role("button", name=TEXTS["ko"]["accept"])
    reject = page.get_by_role("button", name=TEXTS["ko"]["reject"])
    style = "el => { const s = getComputedStyle(el); return [s.backgroundColor, s.color, s.fontSize, s.fontWeight, s.borderWidth, el.offsetHeight] }"
    assert accept.evaluate(style) == reject.evaluate(style)
    assert abs(accept.bounding_box()["width"] - reject.bounding_box()["width"]) < 2


def test_focus_is_visible(page):
    page.goto("/")
    page.get_by_role("region", name=TEXTS["ko"]["banner"]).wait_for()
    page.keyboard.press("Tab")
    outline = page.evaluate("(s => [s.outlineStyle, parseFloat(s.outlineWidth)])(getComputedStyle(document.activeElement))")
    assert outline[0] != "none" and outline[1] >= 2


@pytest.mark.parametrize("motion, duration", [("reduce", "0s"), ("no-preference", "0.2s")])
def test_reduced_motion_turns_the_switch_transition_off(new_context, motion, duration):
    page = new_context(reduced_motion=motion).new_page()
    page.goto("/")
    banner = page.get_by_role("region", name=TEXTS["ko"]["banner"])
    assert banner.evaluate("el => getComputedStyle(el).animationName") == "none"  # the banner never slides
    banner.get_by_role("button", name="설정", exact=True).click()
    switch = page.get_by_role("dialog").get_by_role("switch").last
    assert switch.evaluate("el => getComputedStyle(el, '::before').transitionDuration") == duration


@pytest.mark.parametrize(
    "path, locale, lang",
    [
        ("/", "en-US", "ko"),  # the page says Korean: it wins over the browser
        ("/en", "ko-KR", "en"),
        ("/no-lang", "en-US", "en"),  # then the browser's languages
        ("/no-lang", "ko-KR", "ko"),
        ("/no-lang", "fr-FR", "fr"),
        ("/no-lang", "th-TH", "th"),
        ("/no-lang", "sv-SE", "en"),  # no Swedish: then the policy's language
    ],
)
def test_language_comes_from_the_page_then_the_browser(new_context, path, locale, lang):
    page = new_context(locale=locale).new_page()
    page.goto(path)
    banner = page.get_by_role("region", name=TEXTS[lang]["banner"])
    banner.wait_for()
    assert banner.get_by_role("button", name=TEXTS[lang]["accept"]).is_visible()
    assert page.locator(".cmw").first.get_attribute("lang") == lang


def test_language_switch_changes_banner_and_dialog(page):
    page.goto("/")
    page.get_by_role("region", name=TEXTS["ko"]["banner"]).get_by_role("combobox", name="언어").select_option("English")
    banner = page.get_by_role("region", name=TEXTS["en"]["banner"])
    banner.wait_for()  # the other language's texts come from GET /_consent/policy?lang=en
    assert banner.get_by_role("button", name=TEXTS["en"]["reject"]).is_visible()
    banner.get_by_role("button", name="Settings", exact=True).click()
    dialog = page.get_by_role("dialog", name=TEXTS["en"]["dialog"])
    assert dialog.get_by_role("switch", name="Advertising").is_visible()
    dialog.get_by_role("combobox", name="Language").select_option("한국어")
    page.get_by_role("dialog", name=TEXTS["ko"]["dialog"]).get_by_role("switch", name="맞춤형 광고").wait_for()


def inside_viewport(page, locator) -> bool:
    box = locator.bounding_box()
    view = page.viewport_size
    return box["x"] >= 0 and box["y"] >= 0 and box["x"] + box["width"] <= view["width"] + 0.5 and box["y"] + box["height"] <= view["height"] + 0.5


# 1280 x 720 at 200 % zoom lays out like a 640 x 360 window with twice the pixels.
LAYOUTS = {"1280": {"width": 1280, "height": 720}, "360": {"width": 360, "height": 740}, "200pct": {"width": 640, "height": 360}}


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("lang", ["ko", "en"])
def test_banner_and_dialog_fit_the_screen(new_context, artifacts, layout, lang):
    scale = 2 if layout == "200pct" else 1
    page = new_context(viewport=LAYOUTS[layout], device_scale_factor=scale).new_page()
    page.goto(PAGES[lang])
    texts = TEXTS[lang]
    banner = page.get_by_role("region", name=texts["banner"])
    banner.wait_for()
    page.wait_for_timeout(350)  # let the slide-in end before the screenshot
    page.screenshot(path=artifacts / f"banner-{lang}-{layout}.png")
    assert page.evaluate("document.documentElement.scrollWidth <= innerWidth")
    for name in ("accept", "reject", "settings"):
        button = banner.get_by_role("button", name=texts[name], exact=True)
        button.scroll_into_view_if_needed()
        assert inside_viewport(page, button), name

    banner.get_by_role("button", name=texts["settings"], exact=True).click()
    dialog = page.get_by_role("dialog", name=texts["dialog"])
    page.screenshot(path=artifacts / f"dialog-{lang}-{layout}.png")
    assert inside_viewport(page, dialog)
    save = dialog.get_by_role("button", name=texts["save"])
    save.scroll_into_view_if_needed()
    assert inside_viewport(page, save)
