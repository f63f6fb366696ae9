"""Loading and checking a policy: the schema, the policy against itself, its Consent Mode
signals, and the policy against consentmw's catalogs, guides and texts. The model it builds is in
``consentmw.core.model``; the names it had before (``json_path``, ``localized``, ...) are
importable from here too."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import Any

import jsonschema

from consentmw.core import consentmode, policy_checks
from consentmw.core.catalog import lookup_cookie
from consentmw.core.errors import PolicyError, did_you_mean
from consentmw.core.regions import RegionRules, gpc_problems
from consentmw.core.model import (
    DEFAULT_ALIASES,
    LANGUAGES,
    Category,
    CookieRule,
    PolicyModel,
    Problem,
    default_texts,
    json_path,
    localized,
)

__all__ = [
    "DEFAULT_ALIASES",
    "LANGUAGES",
    "Category",
    "CookieRule",
    "Policy",
    "PolicyModel",
    "Problem",
    "default_texts",
    "json_path",
    "load_policy",
    "localized",
    "preset_names",
    "schema",
    "schema_problem",
]


@cache
def schema() -> dict[str, Any]:
    return json.loads(resources.files("consentmw.core").joinpath("policy.schema.json").read_text("utf-8"))


@cache
def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(schema())


def preset_names() -> list[str]:
    folder = resources.files("consentmw.core").joinpath("presets")
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".json"))


def schema_problem(error: jsonschema.ValidationError) -> Problem:
    path = json_path(error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, Mapping):
        # Name each unknown key with the closest known one: "catgories" is a typo, not a new field.
        known = error.schema.get("properties", {})
        unknown = [k for k in error.instance if k not in known]
        return path, "; ".join(f"unknown field {k!r}{did_you_mean(k, known)}" for k in unknown)
    return path, error.message


class Policy(PolicyModel):
    """A checked policy: ``Policy(data)`` raises PolicyError naming every problem, with its JSON
    path, or gives the model with its Consent Mode settings derived."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        schema_errors = sorted(_validator().iter_errors(data), key=lambda e: (len(e.absolute_path), list(map(str, e.absolute_path))))
        if schema_errors:
            # The checks below read the policy's structure: they run only on one the schema accepts.
            raise PolicyError("", problems=[schema_problem(e) for e in schema_errors])
        super().__init__(data)
        problems = policy_checks.check_structure(self)
        self.consent_mode, signal_problems = consentmode.settings(self)
        problems += signal_problems
        self.regions = RegionRules(data.get("regions", ()))
        problems += RegionRules.problems(data.get("regions", ())) + gpc_problems(data, self.category_for)
        problems += policy_checks.check(self)
        if problems:
            raise PolicyError("", problems=problems)

    def cookie_category(self, name: str) -> str | None:
        """The category a cookie name belongs to: the policy's rules first, then the cookie catalog
        (``"?<category>"`` when the policy does not declare the catalog's category); None if neither knows it."""
        declared = self.declared_cookie_category(name)
        if declared is not None:
            return declared
        entry = lookup_cookie(name)
        return None if entry is None else self.category_for(entry.category) or "?" + entry.category


def load_policy(source: str | os.PathLike[str] | Mapping[str, Any] | Policy) -> Policy:
    """A Policy from a preset name, a path to a JSON file, a mapping, or a Policy."""
    if isinstance(source, Policy):
        return source
    if isinstance(source, Mapping):
        return Policy(source)
    text = None
    name = os.fspath(source)
    if name in preset_names():
        text = resources.files("consentmw.core").joinpath("presets").joinpath(f"{name}.json").read_text("utf-8")
    else:
        try:
            with open(name, encoding="utf-8") as f:
                text = f.read()
        except OSError as exc:
            raise PolicyError(
                f"cannot read policy file {name!r} ({exc.strerror}); give a path to a JSON file or one of the presets: {', '.join(preset_names())}"
            ) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PolicyError(f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    return Policy(data)
