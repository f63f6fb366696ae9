"""How the banner looks to a visitor: its share of a phone's first screen, dark mode, a site's theme.
Screenshots go to test-artifacts/ (banner-390-<lang>-<scheme>.png)."""

from __future__ import annotations

import copy

import pytest

from consentmw.core.store import MemoryStore

from .conftest import serve
from .site import make_site, site_policy

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
CHOICES = {"ko": ["모두 허용", "필수 쿠키만 허용", "설정"], "en": ["Accept all", "Reject non-essential", "Settings"]}
TITLES = {"ko": "쿠키 사용에 대한 선택", "en": "Your choice about cookies"}
PATHS = {"ko": "/", "en": "/en"}


def luminance(rgb: str) -> float:
    channels = [int(c) / 255 for c in rgb[rgb.index("(") + 1 : rgb.index(")")].split(",")[:3]]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str) -> float:
    hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def style(locator, prop: str) -> str:
    return locator.evaluate("(e, p) => getComputedStyle(e)[p]", prop)


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("lang", ["ko", "en"])
def test_on_a_phone_the_banner_leaves_most_of_the_first_screen_and_shows_all_three_choices(new_context, artifacts, lang, scheme):
    page = new_context(viewport=PHONE, color_scheme=scheme, locale="ko-KR" if lang == "ko" else "en-US").new_page()
    page.goto(PATHS[lang])
    banner = page.get_by_role("region", name=TITLES[lang])
    banner.wait_for()
    page.screenshot(path=str(artifacts / f"banner-390-{lang}-{scheme}.png"))
    box = banner.bounding_box()
    assert box["height"] <= 0.40 * PHONE["height"], f"the banner covers {box['height'] / PHONE['height']:.0%} of the screen"
    assert box["y"] + box["height"] <= PHONE["height"] + 0.5
    for name in CHOICES[lang]:
        button = banner.get_by_role("button", name=name, exact=True)
        b = button.bounding_box()
        assert button.is_visible() and b["height"] >= 40, name  # a finger-sized target
        assert box["y"] <= b["y"] and b["y"] + b["height"] <= PHONE["height"], f"{name} is not in view"
        assert b["x"] >= 0 and b["x"] + b["width"] <= PHONE["width"], f"{name} is cut off"
    assert page.evaluate("document.scrollingElement.scrollTop") == 0
    background, text = style(banner, "backgroundColor"), style(banner, "color")
    assert contrast(background, text) >= 7
    assert (luminance(background) < 0.1) == (scheme == "dark")
    for name in CHOICES[lang][:2]:  # accept and reject look alike: neither is the easier choice
        button = banner.get_by_role("button", name=name, exact=True)
        assert contrast(style(button, "backgroundColor"), style(button, "color")) >= 4.5, name
    settings = banner.get_by_role("button", name=CHOICES[lang][2], exact=True)
    assert contrast(background, style(settings, "color")) >= 4.5


def test_a_very_long_banner_text_scrolls_inside_the_banner_and_the_choices_stay_in_view(new_context, artifacts):
    policy = copy.deepcopy(site_policy())
    policy["texts"] = {"banner_body": {"en": "A long explanation of every purpose. " * 60, "ko": "목적마다의 긴 설명. " * 80}}
    with serve(make_site(store=MemoryStore(), policy=policy)) as port:
        page = new_context(viewport=PHONE, base_url=f"http://127.0.0.1:{port}", locale="en-US").new_page()
        page.goto("/en")
        banner = page.get_by_role("region", name=TITLES["en"])
        banner.wait_for()
        page.screenshot(path=str(artifacts / "banner-390-en-long-text.png"))
        assert banner.bounding_box()["height"] <= 0.40 * PHONE["height"]
        for name in CHOICES["en"]:
            b = banner.get_by_role("button", name=name, exact=True).bounding_box()
            assert b["y"] + b["height"] <= PHONE["height"], name


def test_a_site_themes_the_banner_through_its_custom_properties(page, artifacts):
    page.goto("/en")
    banner = page.get_by_role("region", name=TITLES["en"])
    banner.wait_for()
    # What a site's own stylesheet would say; documented in docs/deployment.md.
    page.add_style_tag(content=".cmw { --cmw-accent: rgb(10, 110, 50); --cmw-bg: rgb(250, 245, 230); --cmw-font: Georgia, serif; }")
    accept = banner.get_by_role("button", name="Accept all")
    assert style(accept, "backgroundColor") == "rgb(10, 110, 50)"
    assert style(banner, "backgroundColor") == "rgb(250, 245, 230)"
    assert style(banner, "fontFamily").startswith("Georgia")
    page.screenshot(path=str(artifacts / "banner-themed.png"))


def test_allowing_a_custom_measurement_category_grants_analytics_storage(new_context):
    """Google Analytics declared in a category named "measurement": "Accept all" must tell Google."""
    policy = copy.deepcopy(site_policy())
    for category in policy["categories"]:
        if category["id"] == "analytics":
            category["id"] = "measurement"
    with serve(make_site(store=MemoryStore(), policy=policy)) as port:
        page = new_context(base_url=f"http://127.0.0.1:{port}").new_page()
        page.goto("/")
        page.get_by_role("region", name=TITLES["ko"]).get_by_role("button", name="모두 허용").click()
        page.wait_for_function("window.dataLayer && dataLayer.some(a => a[0] === 'consent' && a[1] === 'update')")
        updates = page.evaluate("dataLayer.filter(a => a[0] === 'consent' && a[1] === 'update').map(a => a[2])")
    assert updates == [{"ad_storage": "granted", "ad_user_data": "granted", "ad_personalization": "granted", "analytics_storage": "granted"}]
