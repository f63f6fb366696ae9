"""Finding and starting the Chromium the scanner drives."""

from __future__ import annotations

import os
import shutil
from typing import Any

# The usual places of an installed Chromium or Chrome, then names looked up on PATH.
CHROMIUM_PATHS = (
    "/usr/bin/chromium",
    "/usr/bin/chromium-browser",
    "/usr/bin/google-chrome",
    "/usr/bin/google-chrome-stable",
    "/snap/bin/chromium",
    "/Applications/Chromium.app/Contents/MacOS/Chromium",
    "/Applications/Google Chrome.app/Contents/MacOS/Google Chrome",
    r"C:\Program Files\Google\Chrome\Application\chrome.exe",
)
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
# Headless, and nothing of the browser's own (updates, sync, first-run pages) mixed into what the
# site makes it request.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
HOW_TO_GET_ONE = (
    "install one (Debian/Ubuntu: apt-get install chromium; macOS: install Chrome or Chromium; anywhere:"
    " python -m playwright install chromium) and, if it is not in a usual place, give its path with --browser PATH"
)


class ScanError(Exception):
    """The scan cannot start or go on as asked; the message says what to change (exit status 2)."""


def find_chromium(path: str | None, playwright: Any = None) -> str:
    if path is not None:
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
        raise ScanError(f"--browser {path}: no executable file there; {HOW_TO_GET_ONE}")
    for candidate in CHROMIUM_PATHS:
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    for name in CHROMIUM_NAMES:
        if found := shutil.which(name):
            return found
    if playwright is not None:  # a browser that `playwright install chromium` downloaded
        bundled = playwright.chromium.executable_path
        if bundled and os.path.isfile(bundled):
            return bundled
    raise ScanError(f"no Chromium found (looked in {', '.join(CHROMIUM_PATHS[:5])} and on PATH); {HOW_TO_GET_ONE}")


def offline_flags(site_hosts: list[str]) -> list[str]:
    """Chromium's resolver answers "not found" for every host but the site's: requests to other
    sites are still made (and recorded), and fail at once instead of leaving the machine."""
    rules = ", ".join(["MAP * ~NOTFOUND", *(f"EXCLUDE {host}" for host in site_hosts)])
    return [f"--host-resolver-rules={rules}"]
