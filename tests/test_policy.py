from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from consentmw import ConfigError, ConsentMiddleware, PolicyError, load_policy
from consentmw.core.policy import preset_names, schema

BASE = load_policy("default").data


def changed(path: list, value: object) -> dict:
    data = copy.deepcopy(BASE)
    target = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return data


INVALID = [
    pytest.param(changed(["version"], ""), "$.version", id="empty-version"),
    pytest.param(changed(["categories", 2, "id"], "Analytics"), "$.categories[2].id", id="bad-category-id"),
    pytest.param(changed(["categories", 1, "name"], {}), "$.categories[1].name", id="empty-name"),
    pytest.param(changed(["categories", 2, "cookies", 0], "bad name;"), "$.categories[2].cookies[0]", id="bad-cookie-pattern"),
    pytest.param(changed(["categories", 3, "id"], "analytics"), "$.categories[3].id", id="duplicate-id"),
    pytest.param(changed(["categories", 0, "gpc"], True), "$.categories[0].gpc", id="required-gpc"),
    pytest.param(changed(["aliases"], {"stats": "nope"}), "$.aliases.stats", id="alias-to-nothing"),
    pytest.param(changed(["consent_max_age_days"], 0), "$.consent_max_age_days", id="zero-lifetime"),
    pytest.param(changed(["colour"], "red"), "$", id="unknown-key"),
    pytest.param(changed(["google_consent_mode"], {"signals": {"ad_storage": "ads-x"}}), "$.google_consent_mode.signals.ad_storage", id="signal-to-nothing"),
    pytest.param(changed(["google_consent_mode"], {"region": ["KR", "EU"]}), "$.google_consent_mode.region[1]", id="region-eu"),
]


def test_schema_is_valid_draft_2020_12() -> None:
    jsonschema.Draft202012Validator.check_schema(schema())


@pytest.mark.parametrize("name", preset_names())
def test_every_preset_validates(name: str) -> None:
    policy = load_policy(name)
    assert policy.required, "a preset must keep at least one required category"


@pytest.mark.parametrize(("data", "path"), INVALID)
def test_invalid_policy_names_the_json_path(data: dict, path: str) -> None:
    with pytest.raises(PolicyError) as excinfo:
        load_policy(data)
    assert excinfo.value.path == path
    assert str(excinfo.value).startswith(path + ": ")


@pytest.mark.parametrize(("data", "path"), INVALID[:3])
def test_middleware_rejects_invalid_policy_at_construction(data: dict, path: str) -> None:
    with pytest.raises(ValueError, match=path.replace("$", r"\$").replace("[", r"\[").replace("]", r"\]").replace(".", r"\.")):
        ConsentMiddleware(lambda *a: None, secret_key="k" * 32, policy=data, store="memory://")


def test_policy_file_path_and_errors(tmp_path: Path) -> None:
    good = tmp_path / "policy.json"
    good.write_text(json.dumps(BASE), "utf-8")
    assert load_policy(good).version == BASE["version"]
    broken = tmp_path / "broken.json"
    broken.write_text("{", "utf-8")
    with pytest.raises(PolicyError, match="not valid JSON"):
        load_policy(broken)
    with pytest.raises(PolicyError, match="cannot read policy file"):
        load_policy(tmp_path / "missing.json")
    # A list or None given by mistake names what a policy can be, not os.fspath's TypeError.
    for wrong in ([1], None, 3):
        with pytest.raises(PolicyError, match=f"a policy is a preset name, a path to a JSON file, a mapping or a Policy, not {type(wrong).__name__}"):
            load_policy(wrong)  # type: ignore[arg-type]


def test_aliases_map_other_tools_names() -> None:
    policy = load_policy("default")
    assert [policy.category_for(n) for n in ("statistics", "C0002", "marketing", "C0004", "preferences", "necessary", "C0001", "nope")] == [
        "analytics", "analytics", "advertising", "advertising", "personalisation", "necessary", "necessary", None,
    ]


def test_cookie_patterns_map_names_to_categories() -> None:
    policy = load_policy("default")
    assert policy.cookie_category("_ga") == "analytics"
    assert policy.cookie_category("_ga_ABC123") == "analytics"
    assert policy.cookie_category("_fbp") == "advertising"
    assert policy.cookie_category("sessionid") == "necessary"
    assert policy.cookie_category("_gax") is None
    assert policy.cookie_category("unrelated") is None


def test_secret_key_is_required() -> None:
    with pytest.raises(ConfigError, match="secret_key is required"):
        ConsentMiddleware(lambda *a: None, secret_key="", store="memory://")


@pytest.mark.parametrize("prefix", ["consent", "/consent/", "/"])
def test_bad_prefix_is_refused(prefix: str) -> None:
    with pytest.raises(ConfigError, match="prefix"):
        ConsentMiddleware(lambda *a: None, secret_key="k" * 32, prefix=prefix, store="memory://")


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "consentmw", *args], capture_output=True, text=True, timeout=60)


def test_cli_validate(tmp_path: Path) -> None:
    ok = run_cli("validate", "default")
    assert ok.returncode == 0 and "valid" in ok.stdout
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(changed(["categories", 2, "id"], "Analytics")), "utf-8")
    result = run_cli("validate", str(bad))
    assert result.returncode == 1
    assert "$.categories[2].id" in result.stderr
