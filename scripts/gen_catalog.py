"""Generate consentmw/core/data/hosts.json from third-party-web at the pinned version.

    python scripts/gen_catalog.py [path/to/third-party-web-0.30.0.tgz]

Without a path it runs ``npm pack third-party-web@<version>`` in a temporary folder. The tarball's
SHA-256 must be the one pinned in scripts/third-party-web.lock.json. The dataset's categories are
mapped onto consent categories (CATEGORY below, documented in docs/catalog.md), then the hand
curation in scripts/catalog-curation.json is applied. The license is copied beside the output.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "scripts" / "third-party-web.lock.json"
CURATION = ROOT / "scripts" / "catalog-curation.json"
OUT = ROOT / "consentmw" / "core" / "data" / "hosts.json"
LICENSE_OUT = ROOT / "consentmw" / "core" / "data" / "third-party-web.LICENSE"

# third-party-web category -> consent category; None: never blocked because of its host.
CATEGORY: dict[str, str | None] = {
    "ad": "advertising",
    "marketing": "advertising",
    "analytics": "analytics",
    "social": "advertising",  # share buttons, login SDKs and pixels of social networks profile visitors across sites
    "tag-manager": "analytics",  # as the hand-written Google Tag Manager rule: a container loads measurement tags
    "customer-success": "functional",  # chat and help widgets: a service the visitor may use, not needed to see the page
    "video": None,  # a player is the content the visitor came for; a policy can override per entity
    "cdn": None,
    "hosting": None,
    "utility": None,
    "content": None,
    "consent-provider": None,
    "other": None,
}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fetch_tarball(lock: dict[str, Any], folder: Path) -> Path:
    subprocess.run(["npm", "pack", f"{lock['package']}@{lock['version']}", "--silent"], cwd=folder, check=True, capture_output=True, timeout=300)
    return next(folder.glob("*.tgz"))


def read_tarball(path: Path) -> tuple[list[dict[str, Any]], bytes]:
    with tarfile.open(path) as tar:
        entities = json.load(tar.extractfile("package/dist/entities-nostats.json"))  # type: ignore[arg-type]
        license_text = tar.extractfile("package/LICENSE").read()  # type: ignore[union-attr]
    return entities, license_text


def build(tarball: bytes, entities: list[dict[str, Any]], curation_text: bytes, lock: dict[str, Any]) -> dict[str, Any]:
    curation = json.loads(curation_text)
    rows: list[list[Any]] = []
    index: dict[str, int] = {}
    domains: dict[str, int] = {}
    for entity in entities:
        index[entity["name"]] = len(rows)
        rows.append([entity["name"], entity["category"], CATEGORY[entity["category"]]])
        for domain in entity["domains"]:
            domains.setdefault(domain.lower(), index[entity["name"]])
    for name, change in curation["entities"].items():
        rows[entity_index(index, name, "entities")][2] = change["category"]
    for added in curation["add"]:
        i = index.get(added["name"])
        if i is None:
            i = index[added["name"]] = len(rows)
            rows.append([added["name"], added["kind"], CATEGORY[added["kind"]]])
        for domain in added["domains"]:
            domains[domain.lower()] = i  # curation wins over the dataset
    # One rule per kind of service, applied last so that it holds for added entities too.
    for service, rule in curation["services"].items():
        for name in rule["entities"]:
            rows[entity_index(index, name, f"services.{service}")][2] = rule["category"]
    for name in curation["reviewed"]:
        entity_index(index, name, "reviewed")
    return {
        "source": {
            "package": lock["package"],
            "version": lock["version"],
            "license": "MIT, Copyright (c) 2019 Patrick Hulce; see third-party-web.LICENSE",
            "sha256": sha256(tarball),
            "curation_sha256": sha256(curation_text),
        },
        "entities": rows,
        "domains": dict(sorted(domains.items())),
    }


def entity_index(index: dict[str, int], name: str, where: str) -> int:
    if name not in index:
        raise ValueError(f"catalog-curation.json: {where} names {name!r}, which is neither in the dataset nor added")
    return index[name]


def dump(data: dict[str, Any]) -> str:
    """One entity or domain a line: small diffs when the dataset moves."""
    lines = ["{", f'"source": {json.dumps(data["source"], ensure_ascii=False)},', '"entities": [']
    lines.append(",\n".join(json.dumps(e, ensure_ascii=False) for e in data["entities"]))
    lines += ["],", '"domains": {']
    lines.append(",\n".join(f"{json.dumps(d)}: {i}" for d, i in data["domains"].items()))
    lines += ["}", "}"]
    return "\n".join(lines) + "\n"


def generate(tarball_path: Path) -> tuple[str, bytes]:
    """The text of hosts.json and the license, from a tarball; ValueError if it is not the pinned one."""
    lock = json.loads(LOCK.read_text("utf-8"))
    tarball = tarball_path.read_bytes()
    if sha256(tarball) != lock["sha256"]:
        raise ValueError(f"{tarball_path} is not {lock['package']}@{lock['version']} as pinned (sha256 {sha256(tarball)})")
    entities, license_text = read_tarball(tarball_path)
    return dump(build(tarball, entities, CURATION.read_bytes(), lock)), license_text


def main(argv: list[str]) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(argv[1]) if len(argv) > 1 else fetch_tarball(json.loads(LOCK.read_text("utf-8")), Path(tmp))
        text, license_text = generate(path)
    OUT.write_text(text, "utf-8")
    LICENSE_OUT.write_bytes(license_text)
    print(f"wrote {OUT.relative_to(ROOT)} ({len(text.encode()):,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
