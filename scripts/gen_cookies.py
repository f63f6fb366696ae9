"""Generate consentmw/core/data/cookies.json from the Open Cookie Database at the pinned commit.

    python scripts/gen_cookies.py [path/to/open-cookie-database/]

The folder (default: ``default_path`` in scripts/open-cookie-database.lock.json, relative to the
repository) holds ``open-cookie-database.csv`` and ``LICENSE``; the CSV's SHA-256 must be the
pinned one. Marketing cookies become advertising, Analytics cookies analytics; only names a
site's own app would not use are taken (see distinctive() and docs/catalog.md), then the hand curation in
scripts/cookie-curation.json is applied. Each name keeps what the cookie declaration page shows where a
policy is silent: the provider (the data controller), the purpose and the lifetime ("session",
[count, unit], or the database's own words when they are no plain duration). The license is copied
beside the output.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "scripts" / "open-cookie-database.lock.json"
CURATION = ROOT / "scripts" / "cookie-curation.json"
OUT = ROOT / "consentmw" / "core" / "data" / "cookies.json"
LICENSE_OUT = ROOT / "consentmw" / "core" / "data" / "open-cookie-database.LICENSE"

CATEGORY = {"Marketing": "advertising", "Analytics": "analytics"}
SESSION = {"session", "sessions", "end of session", "end of session (browser)", "browser session"}
DURATION = re.compile(r"(\d+)\s*(second|sec|minute|min|hour|day|week|month|year)s?", re.IGNORECASE)
UNITS = {"sec": "second", "min": "minute"}


def lifetime(text: str) -> str | list[Any]:
    """A retention period as "session", [count, unit] or, for anything else, the text itself."""
    text = " ".join(text.split())
    if text.lower() in SESSION:
        return "session"
    m = DURATION.fullmatch(text)
    if m is None:
        return text
    unit = m.group(2).lower()
    return [int(m.group(1)), UNITS.get(unit, unit)]


def default_folder() -> Path:
    return (ROOT / json.loads(LOCK.read_text("utf-8"))["default_path"]).resolve()


def distinctive(name: str, prefix: bool, curation: dict[str, Any]) -> bool:
    """A name no site's own app is likely to use: it starts with "_" (3+ characters), or holds
    "_", "." or "-" (5+ characters, 4 for the start of names), and is none of the generic names
    and words of the curation (sessions, logins, consent)."""
    low = name.lower()
    if low in curation["skip_names"] or any(word in low for word in curation["skip_words"]):
        return False
    if name.startswith("_"):
        return len(name) >= (4 if prefix else 3)
    return len(name) >= (4 if prefix else 5) and any(c in name for c in "_.-")


def build(csv_bytes: bytes, curation_text: bytes, lock: dict[str, Any]) -> dict[str, Any]:
    curation = json.loads(curation_text)
    found: dict[tuple[str, bool], list[Any]] = {}
    for row in csv.DictReader(io.StringIO(csv_bytes.decode("utf-8"))):
        platform, name = row["Platform"].strip(), row["Cookie / Data Key name"].strip()
        # A name ending in "_" is the start of names with an id after it (Hm_lvt_<site id>).
        prefix = row["Wildcard match"].strip() == "1" or name.endswith(("*", "_"))
        name = name.rstrip("*")
        category = CATEGORY.get(row["Category"].strip())
        if category is None and platform in curation["functional_of_trackers"]:
            category = curation["functional_of_trackers"][platform]["category"]
        if category is None or platform in curation["skip_platforms"] or not distinctive(name, prefix, curation):
            continue
        provider = row["Data Controller"].strip() or platform
        details = [provider, " ".join(row["Description"].split()), lifetime(row["Retention period"])]
        found.setdefault((name, prefix), [name, platform, category, prefix, *details])
    for name, entry in curation["names"].items():
        found[(name, False)] = [name, entry["vendor"], entry["category"], False, entry["vendor"], "", ""]
    return {
        "source": {
            "name": lock["name"],
            "repository": lock["repository"],
            "commit": lock["commit"],
            "license": "Apache-2.0; see open-cookie-database.LICENSE",
            "sha256": hashlib.sha256(csv_bytes).hexdigest(),
            "curation_sha256": hashlib.sha256(curation_text).hexdigest(),
        },
        "cookies": [found[k] for k in sorted(found)],
    }


def dump(data: dict[str, Any]) -> str:
    rows = ",\n".join(json.dumps(c, ensure_ascii=False) for c in data["cookies"])
    return f'{{\n"source": {json.dumps(data["source"], ensure_ascii=False)},\n"cookies": [\n{rows}\n]\n}}\n'


def generate(folder: Path) -> tuple[str, bytes]:
    """The text of cookies.json and the license; ValueError if the CSV is not the pinned one."""
    lock = json.loads(LOCK.read_text("utf-8"))
    csv_bytes = (folder / lock["file"]).read_bytes()
    if hashlib.sha256(csv_bytes).hexdigest() != lock["sha256"]:
        raise ValueError(f"{folder / lock['file']} is not the Open Cookie Database at commit {lock['commit']} as pinned")
    return dump(build(csv_bytes, CURATION.read_bytes(), lock)), (folder / "LICENSE").read_bytes()


def main(argv: list[str]) -> int:
    text, license_text = generate(Path(argv[1]) if len(argv) > 1 else default_folder())
    OUT.write_text(text, "utf-8")
    LICENSE_OUT.write_bytes(license_text)
    print(f"wrote {OUT.relative_to(ROOT)} ({len(text.encode()):,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
