"""The cookie catalog: generated from the pinned Open Cookie Database, used to drop the Set-Cookie
of refused trackers and to expire their cookies on withdrawal."""

from __future__ import annotations

import hashlib
import json
import sys
from importlib import resources
from pathlib import Path

import pytest

from consentmw import load_policy
from consentmw.core.catalog import CookieDetails, CookieEntry, cookie_details, lookup_cookie
from tests.conftest import client_for, missing
from tests.test_middleware import raw_app, wrap

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import gen_cookies  # noqa: E402

SHIPPED = ROOT / "consentmw" / "core" / "data" / "cookies.json"
LOCK = json.loads((ROOT / "scripts" / "open-cookie-database.lock.json").read_text("utf-8"))


def test_shipped_cookies_are_what_the_generator_makes_from_the_pinned_input() -> None:
    folder = gen_cookies.default_folder()
    if not (folder / LOCK["file"]).exists():
        missing(f"the pinned input is not at {folder}: the shipped file is checked against its checksums only")
    text, license_text = gen_cookies.generate(folder)
    assert SHIPPED.read_text("utf-8") == text
    assert (SHIPPED.parent / "open-cookie-database.LICENSE").read_bytes() == license_text


def test_shipped_cookies_record_the_pinned_input_and_the_current_curation() -> None:
    data = json.loads(SHIPPED.read_text("utf-8"))
    assert (data["source"]["commit"], data["source"]["sha256"]) == (LOCK["commit"], LOCK["sha256"])
    assert data["source"]["curation_sha256"] == hashlib.sha256((ROOT / "scripts" / "cookie-curation.json").read_bytes()).hexdigest()
    assert "Apache License" in (SHIPPED.parent / "open-cookie-database.LICENSE").read_text("utf-8")
    assert len(data["cookies"]) >= 600 and {c[2] for c in data["cookies"]} == {"advertising", "analytics"}


@pytest.mark.parametrize(
    ("name", "vendor", "category"),
    [
        ("_fbp", "Facebook", "advertising"),
        ("_ttp", "TikTok", "advertising"),
        ("li_fat_id", "LinkedIn", "advertising"),  # curated: the database says Functional
        ("_gcl_au", "Google", "advertising"),
        ("_clck", "Microsoft", "analytics"),
        ("_hjSessionUser_3501234", "Hotjar", "analytics"),  # curated: Hotjar's script sets it
        ("_hjid", "Hotjar", "analytics"),
        ("Hm_lvt_3f5a1b2c", "Baidu", "analytics"),  # written without the wildcard flag
        ("_ym_uid", "Yandex.Metrica", "analytics"),
        ("_uetsid", "Bing / Microsoft", "advertising"),
    ],
)
def test_lookup_cookie(name: str, vendor: str, category: str) -> None:
    found = lookup_cookie(name)
    assert found is not None and (found.vendor, found.category) == (vendor, category)


@pytest.mark.parametrize(
    ("name", "entry"),
    [
        # Of two prefixes that both match, the longer names the cookie: Amplitude's, not Trustpilot's.
        ("amplitude_id_5e6f", CookieEntry("amplitude_id_", "Amplitude", "analytics", prefix=True)),
        ("amplitude_id5e6f", CookieEntry("amplitude_id", "Trustpilot", "advertising", prefix=True)),
        ("_gac_gb_123", CookieEntry("_gac_gb_", "Google Ads", "advertising", prefix=True)),
        ("_gac_gb_", CookieEntry("_gac_gb_", "Google Ads", "advertising", prefix=True)),  # the prefix alone
        ("_gac_1", CookieEntry("_gac_", "Google Analytics", "advertising", prefix=True)),
        ("_fbp", CookieEntry("_fbp", "Facebook", "advertising", prefix=False)),
    ],
)
def test_lookup_cookie_names_the_entry_that_matched(name: str, entry: CookieEntry) -> None:
    assert lookup_cookie(name) == entry


GOOGLE_ADS_PURPOSE = (
    "Google uses cookies for advertising, including serving and rendering ads, personalizing ads (depending on your ad settings at"
    " g.co/adsettings), limiting the number of times an ad is shown to a user, muting ads you have chosen to stop seeing, and"
    " measuring the effectiveness of ads."
)


@pytest.mark.parametrize(
    ("name", "details"),
    [
        ("_ga", CookieDetails("Google", "ID used to identify users", (2, "year"))),
        ("_gac_gb_123", CookieDetails("Google", GOOGLE_ADS_PURPOSE, (90, "day"))),  # a prefix's entry
        ("AMP_TLDTEST", CookieDetails("Amplitude", "Registers statistical data on users' behaviour on the website. Used for internal analytics by the website operator.", "session")),
    ],
)
def test_the_declaration_gets_provider_purpose_and_lifetime_of_the_entry_that_matched(name: str, details: CookieDetails) -> None:
    entry = lookup_cookie(name)
    assert entry is not None and cookie_details(entry) == details


@pytest.mark.parametrize("name", ["sessionid", "csrftoken", "auth_token", "cart", "XSRF-TOKEN", "PHPSESSID", "locale", "uid", "token", "_tracking_consent"])
def test_names_a_site_uses_itself_are_never_catalogued(name: str) -> None:
    assert lookup_cookie(name) is None


APP_COOKIES = [
    (b"content-type", b"text/plain"),
    (b"set-cookie", b"sessionid=abc; Path=/; HttpOnly"),
    (b"set-cookie", b"_ttp=2abc; Path=/; Max-Age=33696000"),
    (b"set-cookie", b"li_fat_id=7d1c; Path=/"),
    (b"set-cookie", b"_clck=1x2y; Path=/"),
    (b"set-cookie", b"_hjSessionUser_3501234=eyJp; Path=/"),
    (b"set-cookie", b"csrftoken=t0k; Path=/"),
]


@pytest.mark.parametrize(
    ("body", "kept"),
    [
        (None, ["sessionid", "csrftoken"]),
        ({"choices": {"analytics": True}}, ["sessionid", "_clck", "_hjSessionUser_3501234", "csrftoken"]),
        ({"accept": "all"}, ["sessionid", "_ttp", "li_fat_id", "_clck", "_hjSessionUser_3501234", "csrftoken"]),
    ],
)
async def test_set_cookie_of_catalogued_trackers_waits_for_their_category(body: dict | None, kept: list[str]) -> None:
    async with client_for(wrap(raw_app(APP_COOKIES))) as client:
        if body is not None:
            await client.post("/_consent", json=body)
        r = await client.get("/page")
    assert [c.split("=", 1)[0] for c in r.headers.get_list("set-cookie")] == kept


async def test_catalogued_cookies_of_an_undeclared_category_are_dropped_for_everyone() -> None:
    # kakao-enterprise declares no advertising category: nobody can consent to _ttp there.
    async with client_for(wrap(raw_app(APP_COOKIES), policy="kakao-enterprise")) as client:
        await client.post("/_consent", json={"accept": "all"})
        r = await client.get("/page")
    # _ttp and li_fat_id (advertising) are dropped; analytics and the site's own cookies pass.
    assert [c.split("=", 1)[0] for c in r.headers.get_list("set-cookie")] == ["sessionid", "_clck", "_hjSessionUser_3501234", "csrftoken"]
    assert load_policy("kakao-enterprise").cookie_category("_ttp") == "?advertising"


async def test_withdrawal_expires_catalogued_cookies_on_the_host_and_the_domains_above_it() -> None:
    async with client_for(wrap(raw_app(APP_COOKIES)), base_url="http://www.shop.example") as client:
        await client.post("/_consent", json={"accept": "all"})
        # _ga is in the preset's own rules, with no domain of its own; the others only in the catalog.
        for name in ("_ttp", "li_fat_id", "_scid", "Hm_lvt_3f5a1b2c", "_ym_uid", "_ga", "sessionid"):
            client.cookies.set(name, "1")
        r = await client.post("/_consent", json={"accept": "necessary"})
    expired: dict[str, set[str]] = {}
    for cookie in r.headers.get_list("set-cookie"):
        if "Max-Age=0" in cookie:
            domain = next((p.split("=", 1)[1] for p in cookie.split("; ") if p.startswith("Domain=")), "")
            expired.setdefault(cookie.split("=", 1)[0], set()).add(domain)
    assert expired == dict.fromkeys(["_ttp", "li_fat_id", "_scid", "Hm_lvt_3f5a1b2c", "_ym_uid", "_ga"], {"", "www.shop.example", "shop.example"})


async def test_withdrawal_expires_only_the_cookies_the_cookie_header_carries() -> None:
    async with client_for(wrap(raw_app(APP_COOKIES)), base_url="http://www.shop.example") as client:
        await client.post("/_consent", json={"accept": "all"})
        client.cookies.set("_ttp", "1")
        # Other headers that look like cookie lines carry no cookie.
        r = await client.post("/_consent", json={"accept": "necessary"}, headers={"accept": "_ga=1", "authorization": "_fbp=1", "x-cookie": "_scid=1"})
    expired = {c.split("=", 1)[0] for c in r.headers.get_list("set-cookie") if "Max-Age=0" in c}
    assert expired == {"_ttp"}


async def test_withdrawal_expires_a_listed_cookie_only_where_its_own_rule_says_when_it_names_domains() -> None:
    policy = json.loads(resources.files("consentmw.core").joinpath("presets", "default.json").read_text("utf-8"))
    for category in policy["categories"]:
        if category["id"] == "analytics":
            category["cookies"] = [{"name": "_ga", "domains": [".shop.example"]}]
    async with client_for(wrap(raw_app(APP_COOKIES), policy=policy), base_url="http://www.shop.example") as client:
        await client.post("/_consent", json={"accept": "all"})
        client.cookies.set("_ga", "1")
        r = await client.post("/_consent", json={"accept": "necessary"})
    expired = [c for c in r.headers.get_list("set-cookie") if c.startswith("_ga=")]
    assert expired == ["_ga=; Max-Age=0; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Domain=.shop.example"]
