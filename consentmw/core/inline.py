"""What the banner needs, carried in the page it shows on: a ``<script type="application/json">``
data block at the end of ``<body>``, so that the banner renders without asking consentmw's JSON
endpoints first.

It holds the chosen language, the languages offered, the policy as the banner reads it (texts and
category texts already in that language) and, unless the page may be kept by a shared cache, the
visitor's state (decided, choices, GPC; never the consent id). A page the app marks as cacheable by
shared caches (``Cache-Control: public``, ``s-maxage`` or ``max-age`` without ``private`` or
``no-store``) gets ``"state": null`` and the banner asks ``GET {prefix}`` for it, so that a CDN
which ignores ``Vary: Cookie`` never hands one visitor's state to another.
"""

from __future__ import annotations

import json
import re
from typing import Any

from consentmw.core.consent import Consent
from consentmw.core.model import PolicyModel
from consentmw.core.regions import OPT_OUT

# The texts banner.js shows; the pages read theirs on the server.
BANNER_TEXTS = (
    "banner_title", "banner_body", "accept_all", "reject_all", "settings", "settings_title", "save", "close",
    "always_on", "withdrawal_notice", "saved", "save_failed", "browser_guide_link", "opt_out_link", "reopen",
    "language_switch", "gpc_notice", "cookies_link", "optout_title", "optout_body", "do_not_sell", "optout_ok",
)  # fmt: skip

# Inside <script> the HTML tokenizer looks for "</script" and "<!--"; an XHTML page is XML, where
# "<" and "&" start markup. JSON may write any character as \uXXXX, so none of them stays literal;
# ensure_ascii makes the rest ASCII (U+2028 and U+2029 included), right in any ASCII-compatible charset.
UNSAFE = re.compile(r"[<>&]")
DATA_ID = "consentmw-data"


# One encoder for every page (json.dumps with separators builds a new one per call).
ENCODER = json.JSONEncoder(ensure_ascii=True, separators=(",", ":"))


def script_json(value: Any) -> str:
    """JSON that can stand between <script type="application/json"> and </script>, in HTML and XHTML."""
    text = ENCODER.encode(value)
    return UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def banner_policy(policy: PolicyModel, lang: str) -> dict[str, Any]:
    """The policy as the banner reads it, every text in `lang`."""
    public = policy.public(lang)
    return {
        "version": public["version"],
        "language": lang,
        "texts": {key: public["texts"][key] for key in BANNER_TEXTS if public["texts"].get(key)},
        "categories": [
            {
                **{k: c[k] for k in ("id", "required", "default", "gpc", "name", "description", "consequence")},
                "services": [{"id": s["id"], "ids": s.get("ids", [])} for s in c["services"]],
            }
            for c in public["categories"]
        ],
        "aliases": public["aliases"],
        "google_consent_mode": public["google_consent_mode"],
    }


def languages(policy: PolicyModel) -> list[list[str]]:
    """[tag, name in itself] for each language offered, for the banner's language menu."""
    return [[tag, policy.text("language_name", tag)] for tag in policy.languages]


def shared_cacheable(headers: list[tuple[bytes, bytes]]) -> bool:
    """Whether the app lets a shared cache (a CDN) keep the response."""
    directives: set[bytes] = set()
    for key, value in headers:
        if key.lower() == b"cache-control":
            directives.update(d.strip().split(b"=", 1)[0].strip().lower() for d in value.split(b","))
    if directives & {b"private", b"no-store"}:
        return False
    return bool(directives & {b"public", b"s-maxage", b"max-age"})


# For an undecided visitor in an opt-out region, the banner's keys that the notice uses instead (its
# texts, and "Do Not Sell or Share" for "necessary").
NOTICE_SWAP = {"banner_title": "optout_title", "banner_body": "optout_body", "reject_all": "do_not_sell", "necessary": "do-not-sell"}


def banner_state(consent: Consent) -> dict[str, Any]:
    """What the banner is told of the visitor (GET {prefix}, and the state inlined in pages)."""
    state = consent.as_dict()
    if state["mode"] == OPT_OUT and not state["decided"]:
        state["swap"] = NOTICE_SWAP
    return state


def visitor_state(state: dict[str, Any]) -> dict[str, Any]:
    """The visitor's state as GET {prefix} gives it, without the consent id, which identifies them."""
    return {k: v for k, v in state.items() if k != "id"}
