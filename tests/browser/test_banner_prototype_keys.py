"""A page can mark a tag with any category name. Names every JavaScript object inherits
(constructor, __proto__, toString, hasOwnProperty...) must not read as allowed in the banner:
the policy never declared them, so they stay inert for every visitor."""

from __future__ import annotations

import pytest

from .site import PROTOTYPE_KEYS
from .test_banner_consent import ACCEPT_KO, REJECT_KO, open_banner, ran, wait_for_marks

pytestmark = pytest.mark.browser

PROTOTYPE_MARKS = {*PROTOTYPE_KEYS, *(f"vanilla {key}" for key in PROTOTYPE_KEYS)}


def test_necessary_only_activates_no_tag_named_after_a_prototype_key(page, trackers):
    open_banner(page, "/prototype-keys").get_by_role("button", name=REJECT_KO).click()
    page.wait_for_function("consentmw.decided")
    page.evaluate("consentmw.ready")  # the activation after the choice has run
    page.wait_for_load_state("networkidle")
    assert ran(page) == [] and trackers.requests == []
    assert page.evaluate("consentmw.allows('constructor') || consentmw.allows('__proto__') || consentmw.allows('toString')") is False
    page.reload()
    page.wait_for_function("consentmw.decided")
    page.wait_for_load_state("networkidle")
    assert ran(page) == [] and trackers.requests == []


def test_accept_all_activates_declared_categories_only(page, trackers):
    open_banner(page, "/prototype-keys").get_by_role("button", name=ACCEPT_KO).click()
    wait_for_marks(page, ["declared analytics", "gtag.js"])
    page.wait_for_load_state("networkidle")
    assert not PROTOTYPE_MARKS & set(ran(page))
    # The page's own snippets run (fbevents.js among them); the prototype-named copies stay inert.
    assert page.locator("script[data-consentmw-category='constructor'][type='text/plain']").count() == 2
    assert not [path for host, path in trackers.requests if host == "www.facebook.com"]
