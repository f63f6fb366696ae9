"""`consentmw validate` and the middleware's start-up name schema mistakes and the other checks'
findings together, each at its JSON path in the file as written: a misspelt field does not hide an
unknown tracker id."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette

from consentmw import ConsentMiddleware, load_policy
from consentmw.core.errors import ConfigError, PolicyError
from tests.test_cli import run

SECRET = "test-secret-key-0123456789abcdef"


def default() -> dict[str, Any]:
    return load_policy("default").data


def problems(data: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(PolicyError) as raised:
        load_policy(data)
    return raised.value.problems


def test_a_misspelt_field_and_an_unknown_tracker_are_both_named(tmp_path: Path) -> None:
    data = default()
    data["categories"][2]["descripton"] = data["categories"][2].pop("description")
    data["categories"][2]["services"].append({"id": "naver-analytic"})
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(data), "utf-8")
    result = run("validate", str(path))
    assert result.returncode == 1
    assert f"{path}: invalid, 2 problems:" in result.stderr
    assert "  $.categories[2]: unknown field 'descripton'; did you mean 'description'?" in result.stderr
    assert "  $.categories[2].services[1].id: 'naver-analytic' is not in the tracker catalog; did you mean 'naver-analytics'?" in result.stderr


def test_paths_name_the_file_as_written_when_a_refused_part_is_left_out() -> None:
    data = default()
    data["categories"][1]["id"] = "Personal"  # refused by the schema: the category is left out of the checks
    data["categories"][3]["services"] = [{"id": "BAD ID"}, {"id": "meta-pixl"}]
    found = problems(data)
    assert found[0] == ("$.categories[1].id", "'Personal' does not match '^[a-z][a-z0-9_]{0,31}$'")
    assert ("$.categories[3].services[0].id", "'BAD ID' does not match '^[a-z0-9][a-z0-9-]{0,63}$'") in found
    assert [p for p, m in found if "meta-pixl" in m] == ["$.categories[3].services[1].id"]  # not [2] or [0]
    assert len(found) == 3


def test_two_refused_items_of_one_list_leave_the_others_checked() -> None:
    data = default()
    data["categories"][3]["services"] = [{"id": "BAD 1"}, {"id": "meta-pixl"}, {"id": "BAD 2"}, {"id": "naver-analytic"}]
    found = dict(problems(data))
    assert set(found) == {f"$.categories[3].services[{i}].id" for i in range(4)}
    assert "meta-pixel" in found["$.categories[3].services[1].id"] and "naver-analytics" in found["$.categories[3].services[3].id"]


def test_a_missing_version_does_not_hide_the_rest() -> None:
    data = default()
    del data["version"]
    data["browser_guides"] = ["chrom"]
    data["texts"] = {"banner_titel": {"en": "Cookies"}}
    assert [p for p, _ in problems(data)] == ["$", "$.browser_guides[0]", "$.texts.banner_titel"]


def test_the_middleware_refuses_to_start_naming_them_all() -> None:
    data = default()
    data["catgories"] = []
    data["aliases"] = {"stats": "analytic"}
    with pytest.raises(ConfigError) as raised:
        ConsentMiddleware(Starlette(), secret_key=SECRET, policy=data, store="memory://")
    text = str(raised.value)
    assert "$: unknown field 'catgories'; did you mean 'categories'?" in text
    assert "$.aliases.stats: alias target 'analytic' is not a category of this policy; did you mean 'analytics'?" in text
