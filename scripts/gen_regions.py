"""Generate consentmw/core/data/iso3166.json (the country and subdivision codes a policy's
"regions" and a CDN's country header are checked against) from iso-codes at the pinned version.

    python scripts/gen_regions.py [path/to/iso-codes/json/]

The folder (default: ``default_path`` in scripts/iso-codes.lock.json; Debian's ``iso-codes``
package installs it) holds ``iso_3166-1.json`` and ``iso_3166-2.json``, whose SHA-256 must be the
pinned ones. Only the codes are kept. The license (LGPL-2.1+) is copied beside the output.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "scripts" / "iso-codes.lock.json"
OUT = ROOT / "consentmw" / "core" / "data" / "iso3166.json"
LICENSE_OUT = ROOT / "consentmw" / "core" / "data" / "iso-codes.LICENSE"


def build(countries_bytes: bytes, subdivisions_bytes: bytes, lock: dict[str, Any]) -> dict[str, Any]:
    codes: dict[str, list[str]] = {c["alpha_2"]: [] for c in json.loads(countries_bytes)["3166-1"]}
    for subdivision in json.loads(subdivisions_bytes)["3166-2"]:
        country, _, code = subdivision["code"].partition("-")
        codes[country].append(code)
    return {
        "source": {
            "name": lock["name"],
            "repository": lock["repository"],
            "version": lock["version"],
            "license": "LGPL-2.1-or-later; see iso-codes.LICENSE",
        },
        "codes": {country: " ".join(sorted(codes[country])) for country in sorted(codes)},
    }


def dump(data: dict[str, Any]) -> str:
    rows = ",\n".join(f"{json.dumps(k)}: {json.dumps(v)}" for k, v in data["codes"].items())
    return f'{{\n"source": {json.dumps(data["source"])},\n"codes": {{\n{rows}\n}}\n}}\n'


def main(argv: list[str]) -> int:
    lock = json.loads(LOCK.read_text("utf-8"))
    folder = Path(argv[0]) if argv else Path(lock["default_path"])
    read = {}
    for name, pinned in lock["files"].items():
        data = (folder / name).read_bytes()
        if hashlib.sha256(data).hexdigest() != pinned:
            print(f"{folder / name} is not iso-codes {lock['version']} (SHA-256 differs from {LOCK.name})", file=sys.stderr)
            return 1
        read[name] = data
    OUT.write_text(dump(build(read["iso_3166-1.json"], read["iso_3166-2.json"], lock)), "utf-8")
    notice = Path(lock["copyright_path"]).read_text("utf-8")
    LICENSE_OUT.write_text(notice + "\n\n" + Path(lock["license_path"]).read_text("utf-8"), "utf-8")
    print(f"wrote {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
