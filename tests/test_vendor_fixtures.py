"""Every vendor fixture (tests/corpus/vendors): nothing of it runs or loads before consent, and
all of it exactly as written after "accept all"."""

from __future__ import annotations

import logging

import pytest

from consentmw import load_policy
from consentmw.core.html import HTMLRewriter
from tests.corpus.pages import live_tags
from tests.corpus.vendors import VENDOR_HOSTS, services

POLICY = load_policy("default")
REWRITER = HTMLRewriter(POLICY)
SERVICES = services()


def rewrite(text: str, allowed: frozenset[str]) -> str:
    stream = REWRITER.stream(allowed, page=(b"shop.example.kr", "/"))
    return (stream.feed(text.encode()) + stream.close()).decode()


def test_the_corpus_is_broad() -> None:
    assert len(SERVICES) >= 95
    assert len({s.vendor for s in SERVICES}) >= 40
    assert {s.vendor for s in SERVICES} == set(VENDOR_HOSTS)


@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.id)
def test_service_is_inert_before_consent(service, caplog: pytest.LogCaptureFixture) -> None:
    assert live_tags(service.text), "the fixture has something that runs or loads"
    with caplog.at_level(logging.WARNING, logger="consentmw"):
        assert live_tags(rewrite(service.text, POLICY.required)) == []
    assert not [r for r in caplog.records if "left live" in r.getMessage()]


@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.id)
def test_service_is_untouched_after_accept_all(service) -> None:
    everything = frozenset(c.id for c in POLICY.categories)
    assert rewrite(service.text, everything) == service.text
