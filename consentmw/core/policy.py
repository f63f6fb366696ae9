"""Loading and checking a policy: the schema, the policy against itself, its Consent Mode
signals, and the policy against consentmw's catalogs, guides and texts. The model it builds is in
``consentmw.core.model``; the names it had before (``json_path``, ``localized``, ...) are
importable from here too."""

from __future__ import annotations

import copy
import json
import os
import re
from collections.abc import Callable, Mapping
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
    path, or gives the model with its Consent Mode settings derived. Schema errors do not hide the
    other problems: the checks also run on the part of the policy the schema accepts."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        schema_errors = sorted(_validator().iter_errors(data), key=lambda e: (len(e.absolute_path), list(map(str, e.absolute_path))))
        if schema_errors:
            problems = [schema_problem(e) for e in schema_errors]
            accepted = accepted_part(data)
            if accepted is not None:
                part, where = accepted
                for path, message in checked(PolicyModel(part))[1]:
                    if (where(path), message) not in problems:
                        problems.append((where(path), message))
            raise PolicyError("", problems=problems)
        super().__init__(data)
        self.consent_mode, problems = checked(self)
        if problems:
            raise PolicyError("", problems=problems)
        self.regions = RegionRules(data.get("regions", ()))

    def cookie_category(self, name: str) -> str | None:
        """The category a cookie name belongs to: the policy's rules first, then the cookie catalog
        (``"?<category>"`` when the policy does not declare the catalog's category); None if neither knows it."""
        declared = self.declared_cookie_category(name)
        if declared is not None:
            return declared
        entry = lookup_cookie(name)
        return None if entry is None else self.category_for(entry.category) or "?" + entry.category


def checked(policy: PolicyModel) -> tuple[dict[str, Any], list[Problem]]:
    """The Consent Mode settings of a policy the schema accepts, and every problem the checks find."""
    problems = policy_checks.check_structure(policy)
    consent_mode, signal_problems = consentmode.settings(policy)
    problems += signal_problems
    regions = policy.data.get("regions", ())
    problems += RegionRules.problems(regions) + gpc_problems(policy.data, policy.category_for)
    return consent_mode, problems + policy_checks.check(policy)


PATH_PART = re.compile(r"\.([^.\[]+)|\[(\d+)\]")


def accepted_part(data: Mapping[str, Any]) -> tuple[dict[str, Any], Callable[[str], str]] | None:
    """The policy without what the schema refuses, to check the rest, and a function that turns a
    JSON path in it into the path in ``data``; None when too little is left to check. Unknown
    fields are dropped; any other refused value goes with the smallest object or list item that
    holds it and can go (a service with a bad id goes whole, as the checks need its id)."""
    part: Any = copy.deepcopy(dict(data))
    origins: dict[int, list[int]] = {}  # id(list) -> the original index of each item left
    filled = False
    for _ in range(16):
        errors = list(_validator().iter_errors(part))
        if not errors:
            break
        # Deepest first, and the higher index first within a list: earlier deletions move nothing later ones use.
        for error in sorted(errors, key=lambda e: [(0, p) if isinstance(p, int) else (1, str(p)) for p in e.absolute_path], reverse=True):
            path = list(error.absolute_path)
            if error.validator == "additionalProperties" and isinstance(error.instance, dict):
                known = error.schema.get("properties", {})
                for key in [k for k in error.instance if k not in known]:
                    del error.instance[key]
                continue
            if not path:
                if error.validator != "required" or filled:
                    return None
                filled = True  # the checks need these two; the schema error already says they are missing
                part.setdefault("version", "unchecked")
                part.setdefault("categories", [{"id": "unchecked", "name": {"en": "-"}}])
                continue
            parent = part
            try:
                for key in path[:-1]:
                    parent = parent[key]
                last = path[-1]
                if isinstance(parent, list):
                    origins.setdefault(id(parent), list(range(len(parent))))
                    del origins[id(parent)][last]
                del parent[last]
            except (KeyError, IndexError, TypeError):
                continue  # gone with an enclosing deletion
    else:
        return None

    def where(path: str) -> str:
        node: Any = part
        out = "$"
        for key, index in PATH_PART.findall(path[1:]):
            if key:
                out += "." + key
                node = node.get(key) if isinstance(node, dict) else None
            else:
                i = int(index)
                out += f"[{origins.get(id(node), range(i + 1))[i] if isinstance(node, list) and i < len(node) else i}]"
                node = node[i] if isinstance(node, list) and i < len(node) else None
        return out

    return part, where


def load_policy(source: str | os.PathLike[str] | Mapping[str, Any] | Policy) -> Policy:
    """A Policy from a preset name, a path to a JSON file, a mapping, or a Policy."""
    if isinstance(source, Policy):
        return source
    if isinstance(source, Mapping):
        return Policy(source)
    if not isinstance(source, (str, os.PathLike)):
        raise PolicyError(f"a policy is a preset name, a path to a JSON file, a mapping or a Policy, not {type(source).__name__}: {source!r:.60}")
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
