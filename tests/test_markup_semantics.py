"""Other consent tools' markup keeps its meaning: vanilla-cookieconsent's "!" runs on refusal,
Cookiebot's "ignore" is the site's own, and every tool's category names reach a category."""

from __future__ import annotations

import pytest

from consentmw import load_policy
from consentmw.core.html import HTMLRewriter
from tests.corpus.pages import live_tags

POLICY = load_policy("default")
EVERYTHING = frozenset(c.id for c in POLICY.categories)


def rewrite(markup: str, allowed: frozenset[str] = POLICY.required) -> str:
    stream = HTMLRewriter(POLICY).stream(allowed)
    return (stream.feed(markup.encode()) + stream.close()).decode()


@pytest.mark.parametrize(
    "markup",
    [
        '<script type="text/plain" data-category="analytics" data-service="!Google Analytics">window.optOut = 1</script>',
        '<script type="text/plain" data-category="!analytics">window.optOut = 1</script>',
    ],
)
@pytest.mark.parametrize("allowed", [POLICY.required, EVERYTHING], ids=["refused", "allowed"])
def test_a_script_for_refusal_is_left_to_the_banner_whatever_the_choice(markup: str, allowed: frozenset[str]) -> None:
    # Allowed, it must not run; refused, the banner runs it (it alone knows undecided from refused).
    assert rewrite(markup, allowed) == markup


def test_a_vanilla_service_script_runs_with_its_category() -> None:
    markup = '<script type="text/plain" data-category="analytics" data-service="Google Analytics">window.ga = 1</script>'
    assert live_tags(rewrite(markup)) == []
    assert live_tags(rewrite(markup, EVERYTHING)) == ["code window.ga = 1"]


@pytest.mark.parametrize(
    "markup",
    [
        '<script data-cookieconsent="ignore" src="https://www.googletagmanager.com/gtag/js?id=G-7QX2LCE5N1"></script>',
        "<script data-cookieconsent=\"ignore\">gtag('config', 'G-7QX2LCE5N1');</script>",
        '<img data-cookieconsent="ignore" src="https://www.facebook.com/tr?id=1&ev=PageView" width="1" height="1">',
    ],
)
def test_cookiebot_ignore_is_the_sites_own_and_stays_live(markup: str) -> None:
    assert rewrite(markup) == markup


@pytest.mark.parametrize(
    ("name", "category"),
    [
        # vanilla-cookieconsent
        ("necessary", "necessary"), ("functionality", "personalisation"), ("analytics", "analytics"), ("marketing", "advertising"),
        # Cookiebot
        ("preferences", "personalisation"), ("statistics", "analytics"),
        # OneTrust groups
        ("C0001", "necessary"), ("C0002", "analytics"), ("C0003", "personalisation"), ("C0004", "advertising"), ("C0005", "advertising"),
        # Complianz, Termly, iubenda
        ("functional", "personalisation"), ("statistics-anonymous", "analytics"), ("social_networking", "advertising"),
        ("essential", "necessary"), ("measurement", "analytics"), ("experience", "personalisation"),
    ],
)
def test_other_tools_category_names_reach_a_category(name: str, category: str) -> None:
    assert POLICY.category_for(name) == category
