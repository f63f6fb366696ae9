"""Which language the banner and pages speak to a visitor, and the texts shipped for each.

A language is chosen, in order, by the policy's ``force_language``, the page's own language
(``<html lang>``, or Django's active language), the visitor's ``Accept-Language``, then the
policy's ``language``. Tags are matched with langcodes (CLDR's language distance), so ``zh-HK``
finds ``zh-TW``, ``pt-PT`` finds ``pt-BR`` and the deprecated ``in`` finds ``id``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from functools import cache, lru_cache
from importlib import resources

import langcodes

# The languages consentmw ships texts for: consentmw/core/locales/<tag>.json.
SHIPPED = ("ko", "en", "ja", "zh-CN", "zh-TW", "de", "fr", "es", "it", "pt-BR", "nl", "pl", "vi", "th", "id", "tr")

# Each language's name in itself, for the language menus.
AUTONYMS = {
    "ko": "한국어",
    "en": "English",
    "ja": "日本語",
    "zh-CN": "简体中文",
    "zh-TW": "繁體中文",
    "de": "Deutsch",
    "fr": "Français",
    "es": "Español",
    "it": "Italiano",
    "pt-BR": "Português (Brasil)",
    "nl": "Nederlands",
    "pl": "Polski",
    "vi": "Tiếng Việt",
    "th": "ไทย",
    "id": "Bahasa Indonesia",
    "tr": "Türkçe",
}

# A page or browser language this close (CLDR distance: 4-5 for a regional variant such as en-GB,
# pt-PT or zh-HK) is the same language; up to CLOSE_ENOUGH (Catalan to Spanish) is read when
# nothing closer is offered.
SAME_LANGUAGE = 10
CLOSE_ENOUGH = 25
# Accept-Language is the visitor's to write: only so much of it is read.
MAX_HEADER = 512
MAX_RANGES = 16


@cache
def shipped_texts() -> dict[str, dict[str, str]]:
    """Every shipped text, by key then language."""
    folder = resources.files("consentmw.core").joinpath("locales")
    texts: dict[str, dict[str, str]] = {}
    for lang in SHIPPED:
        for key, text in json.loads(folder.joinpath(f"{lang}.json").read_text("utf-8")).items():
            texts.setdefault(key, {})[lang] = text
    return texts


@lru_cache(maxsize=256)
def standard(tag: str) -> str:
    """A tag in its standard form (``pt-br`` -> ``pt-BR``, ``in`` -> ``id``); as given if langcodes cannot read it."""
    try:
        return langcodes.standardize_tag(tag)
    except (langcodes.LanguageTagError, ValueError):
        return tag


def name(tag: str) -> str:
    return AUTONYMS.get(tag, tag)


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


def offered_languages(listed: Iterable[str] | None, texts: Iterable[str]) -> tuple[str, ...]:
    """What a policy offers: the languages it lists, else the shipped ones and any its texts add."""
    if listed:
        return tuple(dict.fromkeys(standard(t) for t in listed))
    return tuple(dict.fromkeys([*SHIPPED, *(standard(t) for t in texts)]))
