"""The banner, the settings dialog and the form without JavaScript in the visitor's language, in
Chromium. Each of the 16 languages gets a screenshot of the banner on a 390x844 phone in
test-artifacts/banner-390-lang-<tag>.png (scripts/test.sh installs Debian's CJK and Thai fonts)."""

from __future__ import annotations

import pytest

from consentmw.core.model import SHIPPED, default_texts

from .site import site_policy

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
TEXTS = default_texts()
CATEGORIES = {c["id"]: c["name"] for c in site_policy()["categories"]}
# The languages whose banner, dialog and no-JS form are walked through end to end.
CHECKED = ["ko", "en", "ja", "de", "th"]


def text(key: str, lang: str) -> str:
    return TEXTS[key][lang]


@pytest.mark.parametrize("lang", SHIPPED)
def test_a_phone_visitor_gets_the_banner_in_their_language_at_once(new_context, artifacts, lang):
    context = new_context(viewport=PHONE, locale=lang)
    page = context.new_page()
    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url))
    page.goto("/no-lang")
    banner = page.get_by_role("region", name=text("banner_title", lang))
    banner.wait_for()
    page.screenshot(path=str(artifacts / f"banner-390-lang-{lang}.png"))
    assert page.locator(".cmw").first.get_attribute("lang") == lang
    assert banner.get_by_text(text("banner_body", lang)).is_visible()
    for key in ("accept_all", "reject_all", "settings"):
        button = banner.get_by_role("button", name=text(key, lang), exact=True)
        box = button.bounding_box()
        assert button.is_visible() and box["height"] >= 40, key
        assert 0 <= box["x"] and box["x"] + box["width"] <= PHONE["width"] + 0.5, f"{key} is cut off"
        assert box["y"] + box["height"] <= PHONE["height"] + 0.5, f"{key} is out of view"
    # Nothing wider than the phone: no sideways scrolling for long words.
    assert page.evaluate("document.scrollingElement.scrollWidth") <= PHONE["width"]
    # Texts and state came with the page: no call to consentmw's JSON endpoints before the banner showed.
    assert not [url for url in asked if "/_consent" in url and not url.split("?")[0].endswith((".js", ".css"))], asked


@pytest.mark.parametrize("lang", CHECKED)
def test_the_settings_dialog_speaks_the_visitors_language_and_saves(new_context, lang):
    context = new_context(locale=lang)
    page = context.new_page()
    page.goto("/no-lang")
    banner = page.get_by_role("region", name=text("banner_title", lang))
    banner.get_by_role("button", name=text("settings", lang), exact=True).click()
    dialog = page.get_by_role("dialog", name=text("settings_title", lang))
    dialog.wait_for()
    for category in ("necessary", "personalisation", "analytics", "advertising"):
        assert dialog.get_by_role("switch", name=CATEGORIES[category][lang]).is_visible(), category
    assert dialog.get_by_text(text("always_on", lang), exact=True).is_visible()
    assert dialog.get_by_role("link", name=text("browser_guide_link", lang)).get_attribute("href").endswith(f"/browsers?lang={lang}")
    dialog.get_by_role("switch", name=CATEGORIES["analytics"][lang]).check()
    with page.expect_request(lambda r: r.method == "POST" and r.url.endswith("/_consent")) as posted:
        dialog.get_by_role("button", name=text("save", lang), exact=True).click()
    # The consent log keeps the language the visitor read.
    assert posted.value.post_data_json["lang"] == lang
    page.wait_for_function("window.consentmw.decided")
    assert context.request.get("/_consent").json()["choices"]["analytics"] is True
    assert banner.is_hidden()
    # The reopen button after the choice, in the same language.
    assert page.get_by_role("button", name=text("reopen", lang), exact=True).is_visible()


@pytest.mark.parametrize("lang", CHECKED)
def test_without_javascript_the_form_speaks_the_visitors_language(new_context, site, lang):
    context = new_context(java_script_enabled=False, locale=lang)
    page = context.new_page()
    page.goto("/no-lang")
    form = page.locator("form.consentmw-noscript")
    assert form.get_attribute("lang") == lang
    assert form.get_by_text(text("noscript_body", lang)).is_visible()
    for category in ("personalisation", "analytics", "advertising"):
        assert form.get_by_label(CATEGORIES[category][lang]).is_visible(), category
    form.get_by_label(CATEGORIES["advertising"][lang]).check()
    with page.expect_navigation():
        form.get_by_role("button", name=text("save", lang), exact=True).click()
    assert page.url == site + "/no-lang"
    state = context.request.get("/_consent").json()
    assert state["decided"] is True and state["choices"]["advertising"] is True and state["choices"]["analytics"] is False


def test_the_pages_own_language_wins_over_the_browsers(new_context):
    page = new_context(locale="th-TH").new_page()
    page.goto("/en")
    page.get_by_role("region", name=text("banner_title", "en")).wait_for()
    page.get_by_role("region", name=text("banner_title", "en")).get_by_role("combobox", name=text("language_switch", "en")).select_option("ไทย")
    page.get_by_role("region", name=text("banner_title", "th")).wait_for()
    assert page.locator(".cmw").first.get_attribute("lang") == "th"
