"""Writes the field reference of docs/policy.md from the policy's JSON Schema, so the two cannot
drift apart: the text between the BEGIN/END markers is replaced, the rest of the page is kept.

    python scripts/policy_reference.py          # rewrite docs/policy.md
    python scripts/policy_reference.py --check  # exit 1 when docs/policy.md is out of date
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "consentmw" / "core" / "policy.schema.json"
PAGE = ROOT / "docs" / "policy.md"
BEGIN = "<!-- BEGIN field reference: written by scripts/policy_reference.py from consentmw/core/policy.schema.json -->"
END = "<!-- END field reference -->"


def resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    if ref is None:
        return node
    target: Any = schema
    for part in ref.removeprefix("#/").split("/"):
        target = target[part]
    return {**target, **{k: v for k, v in node.items() if k != "$ref"}}


def type_of(schema: dict[str, Any], node: dict[str, Any]) -> str:
    ref = node.get("$ref", "")
    if ref == "#/$defs/text":
        return 'text: `{"en": "...", "de": "..."}`'
    if ref == "#/$defs/lang":
        return "language tag (BCP 47)"
    node = resolve(schema, node)
    if "enum" in node:
        return " or ".join(f"`{json.dumps(v)}`" for v in node["enum"])
    if "oneOf" in node:
        return " or ".join(type_of(schema, option) for option in node["oneOf"])
    kind = node.get("type")
    if isinstance(kind, list):
        return " or ".join(kind)
    if kind == "array":
        item = node.get("items", {})
        name = ref_name(item) or type_of(schema, item)
        return f"list of {name}"
    if kind == "object":
        values = node.get("additionalProperties")
        if isinstance(values, dict) and "properties" not in node:
            return f"map of name to {ref_name(values) or type_of(schema, values)}"
        return "object"
    if kind == "integer" and "minimum" in node:
        return f"integer, {node['minimum']} to {node['maximum']}" if "maximum" in node else f"integer, at least {node['minimum']}"
    if kind == "string" and node.get("pattern", "").startswith("^https?://"):
        return "URL"
    return kind or "any"


def ref_name(node: dict[str, Any]) -> str:
    names = {"#/$defs/text": "text", "#/$defs/category": "category", "#/$defs/service": "service", "#/$defs/cookie_rule": "cookie rule", "#/$defs/cookie_path": "path"}
    return names.get(node.get("$ref", ""), "")


def table(schema: dict[str, Any], title: str, node: dict[str, Any], intro: str = "") -> list[str]:
    node = resolve(schema, node)
    required = set(node.get("required", ()))
    lines = [f"### {title}", ""]
    if intro or node.get("description"):
        lines += [intro or node["description"], ""]
    lines += ["| field | type | default | meaning |", "|---|---|---|---|"]
    for name, prop in node.get("properties", {}).items():
        full = resolve(schema, prop)
        default = f"`{json.dumps(full['default'])}`" if "default" in full else ("required" if name in required else "")
        meaning = prop.get("description") or full.get("description", "")
        lines.append(f"| `{name}` | {type_of(schema, prop)} | {default} | {meaning} |")
    return [*lines, ""]


def nested(schema: dict[str, Any], node: dict[str, Any], prefix: str) -> list[tuple[str, dict[str, Any]]]:
    """Object-valued fields below ``node`` that have fields of their own, depth first."""
    found = []
    for name, prop in resolve(schema, node).get("properties", {}).items():
        full = resolve(schema, prop)
        if full.get("type") == "array":
            item = resolve(schema, full.get("items", {}))
            options = [resolve(schema, o) for o in item.get("oneOf", [item])]
            for option in options:
                if option.get("properties"):
                    found.append((f"{prefix}{name}[]", option))
                    found += nested(schema, option, f"{prefix}{name}[].")
        elif full.get("properties") and prop.get("$ref") != "#/$defs/text":
            found.append((f"{prefix}{name}", full))
            found += nested(schema, full, f"{prefix}{name}.")
    return found


def render(schema: dict[str, Any]) -> str:
    lines = [BEGIN, "", *table(schema, "Top level", schema, "A policy file is one JSON object with these fields.")]
    for title, node in nested(schema, schema, ""):
        lines += table(schema, f"`{title}`", node)
    return "\n".join([*lines, END])


def updated(page: str, schema: dict[str, Any]) -> str:
    head, _, rest = page.partition(BEGIN)
    _, _, tail = rest.partition(END)
    return head + render(schema) + tail


def main(argv: list[str]) -> int:
    schema = json.loads(SCHEMA.read_text("utf-8"))
    page = PAGE.read_text("utf-8")
    if BEGIN not in page or END not in page:
        print(f"{PAGE}: the {BEGIN!r} and {END!r} markers are missing", file=sys.stderr)
        return 1
    new = updated(page, schema)
    if "--check" in argv:
        if new != page:
            print(f"{PAGE.relative_to(ROOT)} is out of date; run: python scripts/policy_reference.py", file=sys.stderr)
            return 1
        return 0
    PAGE.write_text(new, "utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
