"""SECURITY.md names the tests that show each defence: every one it names must exist."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_test_security_md_names_exists() -> None:
    text = (ROOT / "SECURITY.md").read_text("utf-8")
    named = re.findall(r"`(tests/[\w/]+(?:\.py)?)((?:::\w+)?)`", text)
    # "`::name`" right after a file reference means a test in that file.
    current = None
    references: list[tuple[str, str]] = []
    for match in re.finditer(r"`(tests/[\w/.]+)(?:::(\w+))?`|`::(\w+)`", text):
        path, name, same_file = match.groups()
        if path:
            current = path
            references.append((path, name or ""))
        elif current:
            references.append((current, same_file))
    assert len(named) >= 20 and len(references) >= len(named)
    for path, name in references:
        target = ROOT / path
        assert target.exists(), path
        if name:
            assert re.search(rf"^(?:async )?def {name}\(", target.read_text("utf-8"), re.M), f"{path}::{name}"
