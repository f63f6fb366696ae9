"""The settings dialog links to the cookie declaration, in the visitor's language, and the page it
opens lists the policy's cookies without any script."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser


@pytest.mark.parametrize(("path", "lang", "link", "title"), [("/en", "en", "Cookies and services on this site", "Cookies and services on this site"), ("/", "ko", "이 사이트의 쿠키와 서비스", "이 사이트의 쿠키와 서비스")])
def test_the_settings_dialog_links_to_the_cookie_declaration(page, path: str, lang: str, link: str, title: str) -> None:
    page.goto(path)
    page.locator(".cmw-banner [data-a=open]").click()
    dialog = page.get_by_role("dialog")
    anchor = dialog.get_by_role("link", name=link)
    assert anchor.get_attribute("href").endswith(f"/_consent/cookies?lang={lang}")
    anchor.click()
    page.wait_for_url(f"**/_consent/cookies?lang={lang}")
    assert page.get_by_role("heading", level=1).inner_text() == title
    assert page.locator("code", has_text="_ga").first.is_visible()
    assert page.locator("script").count() == 0
