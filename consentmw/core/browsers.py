from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources
from typing import Any

import jsonschema

from consentmw.core.errors import ConfigError
from consentmw.core.model import json_path

ACTIONS = ("block_all", "block_third_party", "delete_site", "open_in_browser")


@dataclass(frozen=True, slots=True)
class Browser:
    id: str  # the guide to show, or "unknown"
    family: str  # what the consent log stores: chrome, safari, kakaotalk, ... or "other"
    platform: str  # windows, macos, linux, chromeos, android, ios or other
    in_app: bool = False


UNKNOWN = "unknown"

# Tried in order: an in-app browser and every Chromium look-alike carry the token of what it
# imitates (Chrome/, Safari/), so the more specific token has to win first. Plain substrings:
# Python's re scans alternations far slower than `in` does.
_FAMILY_TOKENS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("kakaotalk", ("KAKAOTALK ", "KAKAOTALK/")),  # matched on the upper-cased UA
    ("naver-app", ("NAVER(INAPP",)),  # likewise
    ("in-app", ("FBAN/", "FBAV/", "FB_IAB/", "Instagram ", " Line/", "DaumApps/", "KAKAOSTORY", "everytimeApp", "MicroMessenger/")),
    # Browsers with menus of their own that have no guide yet: the generic one, never Chrome's or
    # Safari's, whose tokens they carry. A headless Chrome is a program, not a person.
    ("headless", ("HeadlessChrome/",)),
    ("yandex", ("YaBrowser/", "YaApp_", "YaSearchBrowser/")),
    ("uc", ("UCBrowser/", "UCWEB")),
    ("duckduckgo", ("DuckDuckGo/", " Ddg/")),
    # Any other app's Android web view, before Whale/ and the rest: NAVER's web view carries
    # Whale/1.0.0.0 without having the Whale browser's menus.
    ("in-app", ("; wv)",)),
    ("whale", ("Whale/",)),
    ("samsung", ("SamsungBrowser/",)),
    ("edge", ("Edg/", "EdgA/", "EdgiOS/", "Edge/")),
    ("opera", ("OPR/", "OPX/", "OPT/", "OPiOS/", "Opera ", "Opera/")),
    ("firefox", ("Firefox/", "FxiOS/")),
    ("chrome", ("CriOS/", "Chrome/", "Chromium/")),
    ("safari", ("Safari/",)),
    ("ie", ("Trident/", "MSIE ")),
)
_UPPER_CASE_TOKENS = frozenset({"kakaotalk", "naver-app"})
_IN_APP_FAMILIES = frozenset({"kakaotalk", "naver-app", "in-app"})
# Only iOS builds carry these, even when an iPad asks for desktop sites with a Mac UA.
_IOS_ONLY = ("iPhone", "iPad", "iPod", "CriOS/", "FxiOS/", "EdgiOS/", "OPiOS/", "OPT/")
_PLATFORM_TOKENS = (
    ("android", ("Android",)),
    ("windows", ("Windows",)),
    ("chromeos", ("CrOS",)),
    ("macos", ("Macintosh", "Mac OS X")),
    ("linux", ("Linux", "X11")),
)
# Sec-CH-UA brands that name a Chromium look-alike; GREASE brands and "Chromium" match nothing.
_BRANDS = {
    "microsoft edge": "edge",
    "opera": "opera",
    "opera gx": "opera",
    "whale": "whale",
    "naver whale": "whale",
    "samsung internet": "samsung",
    "google chrome": "chrome",
    "android webview": "in-app",
    "brave": "brave",
    "headlesschrome": "headless",
    "yandex": "yandex",
    "yabrowser": "yandex",
    "duckduckgo": "duckduckgo",
}
_BRAND_RE = re.compile(r'"([^"]{1,64})"\s*;\s*v\s*=\s*"[^"]{0,32}"')
MAX_USER_AGENT = 1024


def detect(user_agent: str, sec_ch_ua: str | None = None) -> Browser:
    """The browser a request comes from, from its User-Agent and (when sent) Sec-CH-UA."""
    return _detect(user_agent[:MAX_USER_AGENT], (sec_ch_ua or "")[:MAX_USER_AGENT])


def family(user_agent: str) -> str:
    """The browser family alone, for the consent log: never the raw User-Agent."""
    return _detect(user_agent[:MAX_USER_AGENT], "").family


@lru_cache(maxsize=1024)
def _detect(user_agent: str, sec_ch_ua: str) -> Browser:
    platform = _platform(user_agent)
    upper = user_agent.upper()
    found = next(
        (name for name, tokens in _FAMILY_TOKENS if any(t in (upper if name in _UPPER_CASE_TOKENS else user_agent) for t in tokens)),
        "other",
    )
    if found == "safari" and platform == "ios" and "Version/" not in user_agent:
        found = "in-app"  # an app's WKWebView that kept the Safari token but not Safari's version
    if found == "other" and platform == "ios" and "AppleWebKit/" in user_agent:
        found = "in-app"  # an app's WKWebView: no Safari/ token at all
    if sec_ch_ua and found in {"chrome", "other"}:
        found = _brand_family(sec_ch_ua) or found
    return Browser(id=guide_id(found, platform), family=found, platform=platform, in_app=found in _IN_APP_FAMILIES)


def _platform(user_agent: str) -> str:
    if any(token in user_agent for token in _IOS_ONLY):
        return "ios"
    return next((name for name, tokens in _PLATFORM_TOKENS if any(t in user_agent for t in tokens)), "other")


def _brand_family(sec_ch_ua: str) -> str | None:
    families = {_BRANDS.get(brand.strip().lower()) for brand in _BRAND_RE.findall(sec_ch_ua)} - {None}
    # Google Chrome is listed beside the look-alike in some builds: the look-alike is the answer.
    specific = families - {"chrome"}
    return min(specific) if specific else ("chrome" if families else None)


def guide_id(family_name: str, platform: str) -> str:
    """The guide for a family on a platform: its own platform's guide, else the family's first."""
    candidates = guides_by_family().get(family_name, ())
    for guide in candidates:
        if platform in guide["platforms"]:
            return guide["id"]
    return candidates[0]["id"] if candidates else UNKNOWN


@cache
def schema() -> dict[str, Any]:
    return json.loads(resources.files("consentmw.core").joinpath("browsers.schema.json").read_text("utf-8"))


@cache
def _data() -> dict[str, Any]:
    return json.loads(resources.files("consentmw.core").joinpath("browsers.json").read_text("utf-8"))


@cache
def guides() -> dict[str, dict[str, Any]]:
    """Every refusal guide by id, in the order of browsers.json, validated against its schema."""
    return load_guides(_data())


def load_guides(data: Any) -> dict[str, dict[str, Any]]:
    error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(schema()).iter_errors(data))
    if error is not None:
        raise ConfigError(f"browsers.json {json_path(error.absolute_path)}: {error.message}")
    by_id: dict[str, dict[str, Any]] = {}
    for i, guide in enumerate(data["guides"]):
        if guide["id"] in by_id or guide["id"] == UNKNOWN:
            raise ConfigError(f"browsers.json $.guides[{i}].id: {guide['id']!r} is used twice or reserved")
        by_id[guide["id"]] = guide
    return by_id


def reviewed() -> str:
    """When the menu paths were last checked, as YYYY-MM."""
    return _data()["reviewed"]


@cache
def guides_by_family() -> dict[str, tuple[dict[str, Any], ...]]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for guide in guides().values():
        grouped.setdefault(guide["family"], []).append(guide)
    return {name: tuple(items) for name, items in grouped.items()}


def resolve(names: tuple[str, ...] | list[str]) -> list[str]:
    """Guide ids for names that are guide ids or families (a policy's browser_guides), in order."""
    ids: list[str] = []
    for name in names:
        family_guides = [g["id"] for g in guides_by_family().get(name, ())]
        matches = family_guides or ([name] if name in guides() else [])
        ids.extend(i for i in matches if i not in ids)
    return ids


def localized_guide(guide: dict[str, Any], lang: str) -> dict[str, Any]:
    """A guide with every text in one language: what the JSON answer and the page both show. The
    guides name menus as each browser labels them, in Korean and English; in another language the
    English labels are shown and "translated" is False."""
    translated = lang in guide["name"]
    lang = lang if translated else "en"
    actions = {}
    for key in ACTIONS:
        action = guide["actions"].get(key)
        if action is None:
            continue
        actions[key] = {
            "path": action["path"][lang] if "path" in action else [],
            "choose": action["choose"][lang] if "choose" in action else None,
            "address": action.get("address"),
            "note": action["note"][lang] if "note" in action else None,
        }
    return {
        "id": guide["id"],
        "family": guide["family"],
        "name": guide["name"][lang],
        "in_app": guide.get("in_app", False),
        "help_url": guide["help_url"][lang] if "help_url" in guide else None,
        "note": guide["note"][lang] if "note" in guide else None,
        "actions": actions,
        "translated": translated,
    }
