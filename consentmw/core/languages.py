"""Which language the banner and pages speak to a visitor, and the texts shipped for each.

A language is chosen, in order, by the policy's ``force_language``, the page's own language
(``<html lang>``, or Django's active language), the visitor's ``Accept-Language``, then the
policy's ``language``. Tags are matched with langcodes (CLDR's language distance), so ``zh-HK``
finds ``zh-TW``, ``pt-PT`` finds ``pt-BR`` and the deprecated ``in`` finds ``id``.
"""

from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

import langcodes

from consentmw.core.model import PolicyModel

# A page or browser language this close (CLDR distance: 4-5 for a regional variant such as en-GB,
# pt-PT or zh-HK) is the same language; up to CLOSE_ENOUGH (Catalan to Spanish) is read when
# nothing closer is offered.
SAME_LANGUAGE = 10
CLOSE_ENOUGH = 25
# Accept-Language is the visitor's to write: only so much of it is read.
MAX_HEADER = 512
MAX_RANGES = 16


@lru_cache(maxsize=2048)
def match(tag: str, offered: tuple[str, ...], within: int = SAME_LANGUAGE) -> str | None:
    """The offered language closest to `tag`, if within the distance; None for a tag langcodes cannot read."""
    tag = tag.strip()
    if not tag or len(tag) > 64 or tag == "*":
        return None
    try:
        return langcodes.closest_supported_match(tag, list(offered), max_distance=within)
    except (langcodes.LanguageTagError, ValueError):
        return None


def ranges(header: str) -> list[str]:
    """The language ranges of an Accept-Language header, most wanted first (RFC 9110, 12.5.4); q=0 ones left out."""
    weighted = []
    for i, part in enumerate(header[:MAX_HEADER].split(",")[:MAX_RANGES]):
        tag, _, params = part.partition(";")
        quality = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if tag.strip() and 0 < quality <= 1:
            weighted.append((-quality, i, tag.strip()))
    return [tag for _, _, tag in sorted(weighted)]


@lru_cache(maxsize=1024)
def negotiate(header: str, offered: tuple[str, ...]) -> str | None:
    """The offered language an Accept-Language header asks for: the first range that is the same
    language as one offered, else the first that is close enough to one."""
    wanted = ranges(header)
    for within in (SAME_LANGUAGE, CLOSE_ENOUGH):
        for tag in wanted:
            found = match(tag, offered, within)
            if found is not None:
                return found
    return None


class Choice(NamedTuple):
    lang: str
    by_accept_language: bool  # the answer depends on the visitor's Accept-Language: Vary names it


def choose(policy: PolicyModel, page: str | None, accept_language: str | None) -> Choice:
    """The language for one visitor on one page: the policy's override, the page's language, the
    browser's, then the policy's default. `accept_language` None: not known yet (asked again later)."""
    if policy.force_language:
        return Choice(policy.force_language, False)
    offered = policy.languages
    if page and (found := match(page, offered)):
        return Choice(found, False)
    found = negotiate(accept_language, offered) if accept_language else None
    return Choice(found or policy.language, True)
