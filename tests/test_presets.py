from __future__ import annotations

import json
import os
from functools import cache
from importlib import resources
from pathlib import Path

import jsonschema
import pytest

from consentmw.core import browsers
from consentmw.core.policy import Policy, load_policy, preset_names, schema

# The privacy policies the presets come from; outside the package, so checked only where present.
SEEDS = Path(os.environ.get("CONSENTMW_SEEDS", "/work/shared/seeds"))
SEED_FILES = {
    "naver-cloud": "000_cbd6de2902b0b994.txt",
    "naver-cloud-en": "000_cbd6de2902b0b994.txt",  # 001 has no cookie chapter: the Korean one, in English
    "nexcore": "002_58f3a37a19a5f111.txt",
    "kakaopage": "003_a7a609b42ec43f98.txt",
    "kakao-enterprise": "004_5e45035272b2506e.txt",
}
CHAPTER_LANGUAGE = {"naver-cloud": "ko", "naver-cloud-en": "en", "nexcore": "ko", "kakaopage": "ko", "kakao-enterprise": "ko"}

NAVER_PURPOSES_KO = [
    # (what the chapter names, the category that must carry it, a word its description must use)
    ("방문 및 이용형태", "analytics", "이용하는지"),
    ("인기 검색어", "analytics", "인기 검색어"),
    ("고객 규모", "analytics", "이용자 규모"),
    ("광고를 포함한 최적화된 맞춤형 정보", "advertising", "광고를 포함해"),
    ("맞춤화 된 서비스", "personalisation", "개인화 서비스"),
    ("환경설정을 유지", "personalisation", "환경설정"),
]
NAVER_PURPOSES_EN = [
    ("방문 및 이용형태", "analytics", "visit and use"),
    ("인기 검색어", "analytics", "popular"),
    ("고객 규모", "analytics", "number of users"),
    ("광고를 포함한 최적화된 맞춤형 정보", "advertising", "advertising included"),
    ("맞춤화 된 서비스", "personalisation", "personalised service"),
    ("환경설정을 유지", "personalisation", "settings"),
]
PURPOSES = {
    "naver-cloud": NAVER_PURPOSES_KO,
    "naver-cloud-en": NAVER_PURPOSES_EN,
    "nexcore": [
        ("방문한 고객지원 센터의 각 서비스", "analytics", "어떤 서비스를 방문"),
        ("최적화된 정보 제공", "personalisation", "최적화된 정보"),
        ("특화된 맞춤서비스", "personalisation", "맞춤 서비스"),
    ],
    "kakaopage": [
        ("개인화되고 맞춤화된 서비스", "personalisation", "개인화된 서비스"),
        ("환경설정을 유지", "personalisation", "환경설정"),
        ("설정한 대로 접속", "personalisation", "설정한 대로"),
        ("방문 기록, 이용 형태", "advertising", "방문 기록과 이용 형태"),
        ("최적화된 광고 등 맞춤형 정보", "advertising", "최적화된 광고"),
        ("온라인 맞춤형 광고 개인정보보호 가이드 라인", "advertising", "가이드라인"),
    ],
    "kakao-enterprise": [
        ("효율적이고 안전한 웹 사용", "necessary", "효율적이고 안전한"),
        ("지난 설정과 과거 이용내역", "personalisation", "지난 설정"),
        ("서비스 접속 시간 및 빈도", "analytics", "접속 시간과 빈도"),
        ("서비스 이용 통계 분석", "analytics", "이용 통계"),
    ],
}
# Browsers each chapter gives refusal steps for, as the chapter spells them.
CHAPTER_BROWSERS = {
    "naver-cloud": {"Internet Explorer": "ie"},
    "naver-cloud-en": {"Internet Explorer": "ie"},
    "nexcore": {"인터넷 익스플로어": "ie"},
    "kakaopage": {"Internet Explorer": "ie", "Chrome": "chrome", "Edge": "edge"},
    "kakao-enterprise": {"Internet Explorer": "ie", "Safari": "safari", "FireFox": "firefox", "Chrome": "chrome"},
}
# What each chapter says refusing costs, in the preset's language.
CONSEQUENCE_WORDS = {
    "naver-cloud": "로그인",
    "naver-cloud-en": "signing in",
    "nexcore": "로그인",
    "kakaopage": "로그인이 필요한",
    "kakao-enterprise": "편리한 기능",
}
PRESETS = list(SEED_FILES)


@cache
def preset(name: str) -> Policy:
    return load_policy(name)


def raw_preset(name: str) -> dict:
    return json.loads(resources.files("consentmw.core").joinpath("presets", f"{name}.json").read_text("utf-8"))


def test_every_seed_preset_ships() -> None:
    assert set(PRESETS) <= set(preset_names())


@pytest.mark.parametrize("name", preset_names())
def test_preset_is_valid_against_the_policy_schema(name: str) -> None:
    data = raw_preset(name)
    assert list(jsonschema.Draft202012Validator(schema()).iter_errors(data)) == []
    policy = load_policy(name)
    assert isinstance(policy, Policy) and policy.id == name  # loads by name


@pytest.mark.parametrize(("name", "purpose", "category", "word"), [(n, *row) for n in PRESETS for row in PURPOSES[n]])
def test_every_purpose_of_the_chapter_is_a_category(name: str, purpose: str, category: str, word: str) -> None:
    policy = preset(name)
    assert category in policy.by_id, f"{name}: the chapter's purpose {purpose!r} has no {category!r} category"
    lang = CHAPTER_LANGUAGE[name]
    assert policy.language == lang
    assert word in policy.by_id[category].description[lang]


@pytest.mark.parametrize(("name", "purpose"), [(n, row[0]) for n in PRESETS for row in PURPOSES[n]])
def test_purpose_table_quotes_the_chapter(name: str, purpose: str) -> None:
    seed = SEEDS / SEED_FILES[name]
    if not seed.is_file():
        pytest.skip(f"seed texts not present at {SEEDS}")
    assert purpose in seed.read_text("utf-8")


@pytest.mark.parametrize(("name", "spelling", "family"), [(n, s, f) for n in PRESETS for s, f in CHAPTER_BROWSERS[n].items()])
def test_every_browser_the_chapter_names_has_a_guide_listed_first(name: str, spelling: str, family: str) -> None:
    policy = preset(name)
    assert family in policy.browser_guides
    guide_ids = browsers.resolve(policy.browser_guides)
    assert any(browsers.guides()[g]["family"] == family for g in guide_ids)
    named = set(CHAPTER_BROWSERS[name].values())
    assert set(policy.browser_guides[: len(named)]) == named
    seed = SEEDS / SEED_FILES[name]
    if seed.is_file():
        assert spelling in seed.read_text("utf-8")


@pytest.mark.parametrize("name", preset_names())
def test_every_listed_browser_guide_exists(name: str) -> None:
    policy = preset(name)
    assert all(browsers.resolve([g]) for g in policy.browser_guides)


@pytest.mark.parametrize("name", PRESETS)
def test_refusal_consequence_is_stated(name: str) -> None:
    policy = preset(name)
    lang = CHAPTER_LANGUAGE[name]
    required = [c for c in policy.categories if c.required]
    assert len(required) == 1
    consequence = raw_preset(name)["categories"][0]["consequence"]
    assert CONSEQUENCE_WORDS[name] in consequence[lang]
    # Every category says what refusing it changes, in both languages.
    for raw in raw_preset(name)["categories"]:
        assert set(raw["consequence"]) == {"ko", "en"}


@pytest.mark.parametrize("name", PRESETS)
def test_texts_are_bilingual_and_the_presets_own(name: str) -> None:
    policy = preset(name)
    body = policy.texts["banner_body"]
    assert body["ko"] and body["en"]
    seed = SEEDS / SEED_FILES[name]
    if seed.is_file():
        chapter = seed.read_text("utf-8")
        # Own words: no sentence of the preset is copied from the policy it reproduces.
        for text in (body["ko"], *(c.description["ko"] for c in policy.categories)):
            for sentence in filter(None, (s.strip() for s in text.split("."))):
                assert sentence not in chapter


def test_kakao_enterprise_declares_google_analytics() -> None:
    policy = preset("kakao-enterprise")
    services = {s["id"]: s for s in policy.by_id["analytics"].services}
    ga = services["google-analytics"]
    assert ga["opt_out_url"] == "https://tools.google.com/dlpage/gaoptout"
    assert ga["collects"]["ko"] and ga["collects"]["en"]
    assert policy.consent_mode["enabled"] and policy.consent_mode["signals"]["analytics_storage"] == "analytics"
    assert policy.cookie_category("_ga_ABC123") == "analytics"


def test_english_edition_carries_the_korean_chapter() -> None:
    korean, english = raw_preset("naver-cloud"), raw_preset("naver-cloud-en")
    assert english["language"] == "en" and korean["language"] == "ko"
    assert [c["id"] for c in english["categories"]] == [c["id"] for c in korean["categories"]]
    assert all(c["description"]["en"] for c in english["categories"])
