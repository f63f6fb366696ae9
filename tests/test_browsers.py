from __future__ import annotations

import copy
import json
import re
from importlib import resources

import jsonschema
import pytest

from consentmw.core import browsers
from consentmw.core.browsers import detect, family
from consentmw.core.errors import ConfigError

# Real User-Agent strings as browsers and apps send them (versions vary; the tokens are what matter).
CHROME_WINDOWS = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
CHROME_MAC = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/138.0.0.0 Safari/537.36"
CHROME_LINUX = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
CHROME_CHROMEOS = "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
CHROME_ANDROID = "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36"
CHROME_ANDROID_TABLET = "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
CHROME_IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/129.0.6668.69 Mobile/15E148 Safari/604.1"
CHROME_IPAD = "Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/124.0.6367.88 Mobile/15E148 Safari/604.1"
CHROME_IPAD_DESKTOP_MODE = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/124.0.6367.88 Mobile/15E148 Safari/604.1"
EDGE_WINDOWS = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.80"
EDGE_MAC = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.80"
EDGE_ANDROID = "Mozilla/5.0 (Linux; Android 11; SM-A205F) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/96.0.4664.55 Mobile Safari/537.36 EdgA/96.0.1054.36"
EDGE_IOS = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 EdgiOS/124.0.2478.50 Mobile/15E148 Safari/605.1.15"
EDGE_LEGACY = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/70.0.3538.102 Safari/537.36 Edge/18.19582"
SAFARI_MAC = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Safari/605.1.15"
SAFARI_IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.0 Mobile/15E148 Safari/604.1"
SAFARI_IPAD = "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1"
# iPadOS asks for desktop sites by default and then sends exactly a Mac Safari UA.
SAFARI_IPAD_DESKTOP_MODE = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.0 Safari/605.1.15"
FIREFOX_WINDOWS = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:122.0) Gecko/20100101 Firefox/122.0"
FIREFOX_MAC = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.4; rv:125.0) Gecko/20100101 Firefox/125.0"
FIREFOX_LINUX = "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0"
FIREFOX_ANDROID = "Mozilla/5.0 (Android 14; Mobile; rv:125.0) Gecko/125.0 Firefox/125.0"
FIREFOX_IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) FxiOS/125.0 Mobile/15E148 Safari/605.1.15"
SAMSUNG_PHONE = "Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-S921N) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/25.0 Chrome/121.0.0.0 Mobile Safari/537.36"
SAMSUNG_OLD = "Mozilla/5.0 (Linux; Android 10; SM-G975F) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/114.0.0.0 Mobile Safari/537.36 SamsungBrowser/18.0"
SAMSUNG_DESKTOP_MODE = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/25.0 Chrome/121.0.0.0 Safari/537.36"
WHALE_WINDOWS = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/142.0.0.0 Whale/4.35.351.16 Safari/537.36"
WHALE_MAC = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Whale/3.26.244.21 Safari/537.36"
# The Whale browser app itself: a real version and no "; wv" (it is not a web view).
WHALE_ANDROID = "Mozilla/5.0 (Linux; Android 14; SM-S921N) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0.0.0 Mobile Safari/537.36 Whale/3.27.91.18"
OPERA_WINDOWS = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 OPR/110.0.0.0"
OPERA_MAC = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/114.0.0.0 Safari/537.36 OPR/100.0.0.0"
OPERA_ANDROID = "Mozilla/5.0 (Linux; Android 13; TECNO KI5q) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0.6045.193 Mobile Safari/537.36 OPR/80.0.2254.73545"
OPERA_GX_ANDROID = "Mozilla/5.0 (Linux; Android 8.0.0; Infinix X608 Build/OPR1.170623.032) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/91.0.4472.120 Mobile Safari/537.36 OPX/1.0"
OPERA_IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1 OPT/5.0.2"
OPERA_MINI_IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 12_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) OPiOS/16.0.14.122053 Mobile/16C101 Safari/9537.53"
OPERA_MINI_PRESTO = "Opera/9.80 (J2ME/MIDP; Opera Mini/5.1.21214/28.2725; U; ru) Presto/2.8.119 Version/11.10"
IE11_WINDOWS10 = "Mozilla/5.0 (Windows NT 10.0; WOW64; Trident/7.0; rv:11.0) like Gecko"
IE11_WINDOWS7 = "Mozilla/5.0 (Windows NT 6.1; WOW64; Trident/7.0; rv:11.0) like Gecko"
IE10 = "Mozilla/5.0 (compatible; MSIE 10.0; Windows NT 6.2; Trident/6.0)"
KAKAOTALK_IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 KAKAOTALK 10.8.5"
KAKAOTALK_ANDROID = "Mozilla/5.0 (Linux; Android 14; SM-S921N; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/129.0 Mobile Safari/537.36 KAKAOTALK 10.8.0"
KAKAOTALK_ANDROID_SEMICOLON = "Mozilla/5.0 (Linux; Android 13; SM-S908N Build/TP1A.220624.014; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/119.0.0.0 Mobile Safari/537.36;KAKAOTALK 2410500"
NAVER_APP_IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 16_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/20F66 NAVER(inapp; search; 2000; 12.5.5)"
NAVER_APP_IPHONE_SAFARI_TOKENS = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.4 Mobile/15E148 Safari/605.1 NAVER(inapp; search; 2000; 12.13.0; 16PROMAX)"
# The NAVER app's Android web view also carries Whale/ and Chrome/.
NAVER_APP_ANDROID = "Mozilla/5.0 (Linux; Android 15; SM-S911N Build/AP3A.240905.015.A2; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/128.0.0.0 Whale/1.0.0.0 Crosswalk/29.128.0.15 Mobile Safari/537.36 NAVER(inapp; search; 2000; 12.14.32)"
# NAVER's Whale-based web view (Whale/1.0.0.0 Crosswalk/) inside an app that adds no NAVER(inapp
# token: "; wv)" says in-app before Whale/ can say the Whale browser, whose menus it does not have.
NAVER_WEBVIEW_ANDROID = "Mozilla/5.0 (Linux; Android 12; SM-A536N Build/SP1A.210812.016; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/90.0.4430.232 Whale/1.0.0.0 Crosswalk/26.90.3.25 Mobile Safari/537.36"
# KakaoTalk's link-preview fetcher: "KAKAOTALK" followed by neither a space nor "/".
KAKAOTALK_SCRAPER = "facebookexternalhit/1.1; kakaotalk-scrap/1.0; +https://devtalk.kakao.com/t/scrap/33984"
FACEBOOK_ANDROID = "Mozilla/5.0 (Linux; Android 13; SM-S908N Build/TP1A.220624.014; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/116.0.0.0 Mobile Safari/537.36 [FB_IAB/FB4A;FBAV/430.0.0.23.113;]"
INSTAGRAM_IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 Instagram 320.0.0.0.0"
ANDROID_WEBVIEW = "Mozilla/5.0 (Linux; Android 13; Pixel 7 Build/TQ3A.230805.001; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/133.0.0.0 Mobile Safari/537.36"
IOS_WEBVIEW = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148"
CURL = "curl/8.5.0"
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"

UA_TABLE = [
    # (user agent, guide id, family, platform)
    (CHROME_WINDOWS, "chrome", "chrome", "windows"),
    (CHROME_MAC, "chrome", "chrome", "macos"),
    (CHROME_LINUX, "chrome", "chrome", "linux"),
    (CHROME_CHROMEOS, "chrome", "chrome", "chromeos"),
    (CHROME_ANDROID, "chrome-android", "chrome", "android"),
    (CHROME_ANDROID_TABLET, "chrome-android", "chrome", "android"),
    (CHROME_IPHONE, "chrome-ios", "chrome", "ios"),
    (CHROME_IPAD, "chrome-ios", "chrome", "ios"),
    (CHROME_IPAD_DESKTOP_MODE, "chrome-ios", "chrome", "ios"),
    (EDGE_WINDOWS, "edge", "edge", "windows"),
    (EDGE_MAC, "edge", "edge", "macos"),
    (EDGE_ANDROID, "edge", "edge", "android"),
    (EDGE_IOS, "edge", "edge", "ios"),
    (EDGE_LEGACY, "edge", "edge", "windows"),
    (SAFARI_MAC, "safari", "safari", "macos"),
    (SAFARI_IPHONE, "safari-ios", "safari", "ios"),
    (SAFARI_IPAD, "safari-ios", "safari", "ios"),
    (SAFARI_IPAD_DESKTOP_MODE, "safari", "safari", "macos"),
    (FIREFOX_WINDOWS, "firefox", "firefox", "windows"),
    (FIREFOX_MAC, "firefox", "firefox", "macos"),
    (FIREFOX_LINUX, "firefox", "firefox", "linux"),
    (FIREFOX_ANDROID, "firefox-android", "firefox", "android"),
    (FIREFOX_IPHONE, "firefox-ios", "firefox", "ios"),
    (SAMSUNG_PHONE, "samsung", "samsung", "android"),
    (SAMSUNG_OLD, "samsung", "samsung", "android"),
    (SAMSUNG_DESKTOP_MODE, "samsung", "samsung", "linux"),
    (WHALE_WINDOWS, "whale", "whale", "windows"),
    (WHALE_MAC, "whale", "whale", "macos"),
    (WHALE_ANDROID, "whale", "whale", "android"),
    (OPERA_WINDOWS, "opera", "opera", "windows"),
    (OPERA_MAC, "opera", "opera", "macos"),
    (OPERA_ANDROID, "opera", "opera", "android"),
    (OPERA_GX_ANDROID, "opera", "opera", "android"),
    (OPERA_IPHONE, "opera", "opera", "ios"),
    (OPERA_MINI_IPHONE, "opera", "opera", "ios"),
    (OPERA_MINI_PRESTO, "opera", "opera", "other"),
    (IE11_WINDOWS10, "ie", "ie", "windows"),
    (IE11_WINDOWS7, "ie", "ie", "windows"),
    (IE10, "ie", "ie", "windows"),
    (KAKAOTALK_IPHONE, "kakaotalk", "kakaotalk", "ios"),
    (KAKAOTALK_ANDROID, "kakaotalk", "kakaotalk", "android"),
    (KAKAOTALK_ANDROID_SEMICOLON, "kakaotalk", "kakaotalk", "android"),
    (NAVER_APP_IPHONE, "naver-app", "naver-app", "ios"),
    (NAVER_APP_IPHONE_SAFARI_TOKENS, "naver-app", "naver-app", "ios"),
    (NAVER_APP_ANDROID, "naver-app", "naver-app", "android"),
    (FACEBOOK_ANDROID, "in-app", "in-app", "android"),
    (INSTAGRAM_IPHONE, "in-app", "in-app", "ios"),
    (ANDROID_WEBVIEW, "in-app", "in-app", "android"),
    (NAVER_WEBVIEW_ANDROID, "in-app", "in-app", "android"),
    (IOS_WEBVIEW, "in-app", "in-app", "ios"),
    (KAKAOTALK_SCRAPER, "unknown", "other", "other"),
    (CURL, "unknown", "other", "other"),
    (GOOGLEBOT, "unknown", "other", "other"),
    ("", "unknown", "other", "other"),
]


@pytest.mark.parametrize(("user_agent", "guide", "family_name", "platform"), UA_TABLE)
def test_detects_browser_from_user_agent(user_agent: str, guide: str, family_name: str, platform: str) -> None:
    browser = detect(user_agent)
    assert (browser.id, browser.family, browser.platform) == (guide, family_name, platform)
    assert family(user_agent) == family_name


def test_table_is_large_and_every_guide_is_reachable() -> None:
    assert len(UA_TABLE) >= 40
    reached = {guide for _, guide, _, _ in UA_TABLE}
    assert set(browsers.guides()) - reached == set()


def test_in_app_browsers_are_flagged() -> None:
    assert detect(KAKAOTALK_ANDROID).in_app
    assert detect(NAVER_APP_ANDROID).in_app
    assert not detect(WHALE_ANDROID).in_app
    assert detect(NAVER_WEBVIEW_ANDROID).in_app
    assert not detect(CHROME_ANDROID).in_app


# Sec-CH-UA as Chromium browsers send it, with their GREASE brands.
CH_EDGE = '"Chromium";v="124", "Microsoft Edge";v="124", "Not-A.Brand";v="99"'
CH_OPERA = '"Opera";v="110", "Not?A_Brand";v="8", "Chromium";v="124"'
CH_WHALE = '"Whale";v="4", "Not-A.Brand";v="8", "Chromium";v="142"'
CH_SAMSUNG = '"Samsung Internet";v="25.0", "Chromium";v="121", "Not.A/Brand";v="24"'
CH_CHROME = '"Google Chrome";v="124", "Chromium";v="124", "Not-A.Brand";v="99"'
CH_CHROMIUM = '"Chromium";v="124", "Not-A.Brand";v="99"'
# The same brands in other orders, with newer GREASE brands that hold ";" and "=": presence counts.
CH_EDGE_LAST = '"Not)A;Brand";v="8", "Chromium";v="138", "Microsoft Edge";v="138"'
CH_EDGE_FIRST = '"Microsoft Edge";v="131", "Chromium";v="131", "Not_A Brand";v="24"'
CH_CHROME_GREASE_FIRST = '"Not;A=Brand";v="99", "Google Chrome";v="139", "Chromium";v="139"'
CH_WEBVIEW = '"Android WebView";v="133", "Chromium";v="133", "Not(A:Brand";v="99"'


@pytest.mark.parametrize(
    ("user_agent", "sec_ch_ua", "guide"),
    [
        # A UA without the look-alike's token (reduced or overridden): the brand list decides.
        (CHROME_WINDOWS, CH_EDGE, "edge"),
        (CHROME_WINDOWS, CH_OPERA, "opera"),
        (CHROME_WINDOWS, CH_WHALE, "whale"),
        (CHROME_ANDROID, CH_SAMSUNG, "samsung"),
        (CHROME_ANDROID, CH_CHROME, "chrome-android"),
        (CHROME_WINDOWS, CH_CHROMIUM, "chrome"),
        (CHROME_WINDOWS, CH_EDGE_LAST, "edge"),
        (CHROME_MAC, CH_EDGE_FIRST, "edge"),
        (CHROME_ANDROID, CH_CHROME_GREASE_FIRST, "chrome-android"),
        (CHROME_ANDROID, CH_WEBVIEW, "in-app"),
        # The in-app token in the UA is more specific than any brand.
        (KAKAOTALK_ANDROID, CH_WEBVIEW, "kakaotalk"),
        (NAVER_APP_ANDROID, CH_WHALE, "naver-app"),
        # Brands never override a non-Chromium UA, and garbage is ignored.
        (FIREFOX_WINDOWS, CH_EDGE, "firefox"),
        (CHROME_WINDOWS, 'garbage;;"', "chrome"),
        (CHROME_WINDOWS, "", "chrome"),
    ],
)
def test_sec_ch_ua_brands_refine_chromium_look_alikes(user_agent: str, sec_ch_ua: str, guide: str) -> None:
    assert detect(user_agent, sec_ch_ua).id == guide


def test_huge_user_agent_is_cut_not_crashed() -> None:
    assert detect("A" * 100_000 + " Firefox/1").family == "other"
    assert detect(FIREFOX_WINDOWS + " " + "x" * 100_000).family == "firefox"


def test_guides_file_validates_against_its_schema() -> None:
    data = json.loads(resources.files("consentmw.core").joinpath("browsers.json").read_text("utf-8"))
    jsonschema.Draft202012Validator.check_schema(browsers.schema())
    assert list(jsonschema.Draft202012Validator(browsers.schema()).iter_errors(data)) == []


def test_a_broken_guide_is_refused_with_its_json_path() -> None:
    data = json.loads(resources.files("consentmw.core").joinpath("browsers.json").read_text("utf-8"))
    broken = copy.deepcopy(data)
    del broken["guides"][2]["actions"]["delete_site"]
    with pytest.raises(ConfigError, match=r"\$\.guides\[2\]\.actions"):
        browsers.load_guides(broken)
    twice = copy.deepcopy(data)
    twice["guides"].append(copy.deepcopy(data["guides"][0]))
    with pytest.raises(ConfigError, match="used twice"):
        browsers.load_guides(twice)


REQUIRED_GUIDES = [
    "chrome", "chrome-android", "chrome-ios", "edge", "safari", "safari-ios", "firefox", "firefox-android",
    "firefox-ios", "samsung", "whale", "opera", "ie", "kakaotalk", "naver-app",
]


@pytest.mark.parametrize("guide_id", REQUIRED_GUIDES)
@pytest.mark.parametrize("lang", ["ko", "en"])
def test_every_guide_says_how_to_refuse_in_both_languages(guide_id: str, lang: str) -> None:
    guide = browsers.localized_guide(browsers.guides()[guide_id], lang)
    wanted = ["open_in_browser"] if guide["in_app"] else ["block_all", "block_third_party", "delete_site"]
    assert list(guide["actions"]) == wanted
    for action in guide["actions"].values():
        assert action["path"] or action["note"]
    if not guide["in_app"]:
        assert guide["help_url"].startswith("https://")
    hangul = re.compile("[\uac00-\ud7a3]")
    texts = [guide["name"], *(t for a in guide["actions"].values() for t in (*a["path"], a["choose"] or ""))]
    assert any(hangul.search(t) for t in texts) == (lang == "ko")


def test_settings_addresses_are_internal_pages_only() -> None:
    addresses = [a.get("address") for g in browsers.guides().values() for a in g["actions"].values()]
    assert {a.split(":")[0] for a in addresses if a} <= {"chrome", "edge", "whale", "opera", "about"}


def test_resolve_accepts_families_and_guide_ids_in_order() -> None:
    assert browsers.resolve(["ie", "safari-ios", "chrome", "nonexistent"]) == ["ie", "safari-ios", "chrome", "chrome-android", "chrome-ios"]


# Browsers with menus of their own and no guide yet, as their users' requests carry them. Each
# carries Chrome's or Safari's token; none may be shown that browser's menus.
OWN_MENUS = [
    # (user agent, guide id, family, platform)
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.200 YaBrowser/24.1.0.0 Safari/537.36", "unknown", "yandex", "windows"),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/123.0.0.0 YaBrowser/24.2.0 Yowser/2.5 Safari/537.36", "unknown", "yandex", "macos"),
    ("Mozilla/5.0 (Linux; arm_64; Android 13; SM-A525F) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.6261.128 YaBrowser/24.4.1.100.00 SA/3 Mobile Safari/537.36", "unknown", "yandex", "android"),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 YaBrowser/24.4.5.514.10 SA/3 Mobile/15E148 Safari/604.1", "unknown", "yandex", "ios"),
    ("Mozilla/5.0 (Linux; U; Android 10; en-US; SCV39 Build/QP1A.190711.020) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/78.0.3904.108 UCBrowser/13.4.0.1306 Mobile Safari/537.36", "unknown", "uc", "android"),
    ("Mozilla/5.0 (Linux; U; Android 9; en-US; Redmi Note 8 Build/PKQ1.190616.001) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 UCBrowser/13.4.0.1306 Mobile Safari/537.36", "unknown", "uc", "android"),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 12_1 like Mac OS X; zh-CN) AppleWebKit/537.51.1 (KHTML, like Gecko) Mobile/16B92 UCBrowser/12.1.7.1109 Mobile AliApp(TUnionSDK/0.1.20.3)", "unknown", "uc", "ios"),
    # WeChat opens links in its own browser: the in-app guide ("open it in your browser").
    ("Mozilla/5.0 (Windows NT 10.0; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/81.0.4044.138 Safari/537.36 NetType/WIFI MicroMessenger/7.0.20.1781(0x6700143B) WindowsWechat(0x63090621) XWEB/8391 Flue", "in-app", "in-app", "windows"),
    ("Mozilla/5.0 (Linux; Android 10; V1838A Build/QP1A.190711.020; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/78.0.3904.62 XWEB/2691 MMWEBSDK/200801 Mobile Safari/537.36 MMWEBID/7170 MicroMessenger/7.0.18.1740(0x27001235) Process/toolsmp WeChat/arm64 NetType/WIFI Language/zh_CN ABI/arm64", "in-app", "in-app", "android"),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 16_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.30(0x18001e31) NetType/WIFI Language/zh_CN", "in-app", "in-app", "ios"),
    # A headless Chrome is a program (a test, a crawler), not a person with menus to open.
    ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.6099.28 Safari/537.36", "unknown", "headless", "linux"),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.0.0 Safari/537.36", "unknown", "headless", "windows"),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 DuckDuckGo/7 Safari/605.1.15", "unknown", "duckduckgo", "ios"),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 18_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/26.4 Mobile/15E148 Safari/604.1 Ddg/26.4", "unknown", "duckduckgo", "ios"),
    ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/130.0.0.0 Mobile DuckDuckGo/5 Safari/537.36", "unknown", "duckduckgo", "android"),
]


@pytest.mark.parametrize(("user_agent", "guide", "family_name", "platform"), OWN_MENUS)
def test_browsers_with_menus_of_their_own_get_the_generic_guide(user_agent: str, guide: str, family_name: str, platform: str) -> None:
    browser = detect(user_agent)
    assert (browser.id, browser.family, browser.platform) == (guide, family_name, platform)


@pytest.mark.parametrize(
    ("sec_ch_ua", "family_name"),
    [
        ('"HeadlessChrome";v="131", "Chromium";v="131", "Not_A Brand";v="24"', "headless"),
        ('"Chromium";v="122", "Not(A:Brand";v="24", "YaBrowser";v="24.4", "Yowser";v="2.5"', "yandex"),
    ],
)
def test_sec_ch_ua_names_headless_and_yandex(sec_ch_ua: str, family_name: str) -> None:
    browser = detect(CHROME_WINDOWS, sec_ch_ua)
    assert (browser.id, browser.family) == ("unknown", family_name)
