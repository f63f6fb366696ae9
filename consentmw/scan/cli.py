"""``consentmw scan URL``: exit status 0 when nothing happened without consent, 1 when something
did (the violations), 2 when the scan could not run as asked or a pass of a page could not run."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, TextIO

from consentmw.core.errors import install_command

from .browser import ScanError

EXIT_CLEAN, EXIT_VIOLATIONS, EXIT_USAGE = 0, 1, 2


def register(subparsers: Any) -> None:
    """Add `consentmw scan` to the main parser's subcommands."""
    p = subparsers.add_parser(
        "scan",
        help="audit a site in Chromium: cookies and tracker requests before consent, after refusal and after acceptance",
        description="Crawl a site in Chromium and record every request, cookie and localStorage key of each page"
        " for a fresh visitor and, on a consentmw site, after 'reject non-essential' and after 'accept all'."
        " Exit status: 0 no violation, 1 violations, 2 the scan could not run.",
    )
    p.add_argument("url", help="the first page, e.g. https://www.example.com/")
    p.add_argument("--pages", type=int, default=10, metavar="N", help="pages to visit, breadth first (default: 10)")
    p.add_argument(
        "--same-site-only", action="store_true", help="leave out pages whose address ends on another site after redirects"
    )
    p.add_argument("--json", metavar="FILE", help="write the report as JSON (schema: docs/scan.md)")
    p.add_argument("--html", metavar="FILE", help="write the report as one self-contained HTML page")
    p.add_argument("--policy-draft", metavar="FILE", help="write a policy JSON declaring the services and cookies found")
    p.add_argument("--browser", metavar="PATH", help="the Chromium or Chrome to drive (default: the usual install paths)")
    p.add_argument("--timeout", type=float, default=30.0, metavar="S", help="seconds a page may take to load (default: 30)")
    p.add_argument("--policy", metavar="PRESET|FILE", help="classify with this policy (default: the site's own, else the default preset)")
    p.add_argument(
        "--offline",
        action="store_true",
        help="requests to other sites are recorded but fail in the browser instead of leaving the machine (CI without internet)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    try:
        # The scanner needs the `scan` extra: imported here, so other commands work without it.
        # Playwright too, which the scanner itself imports only when it starts the browser.
        import playwright.sync_api  # noqa: F401

        from .scanner import ScanOptions, scan
    except ModuleNotFoundError as exc:
        print(f"consentmw scan needs {(exc.name or '').split('.')[0]}: {install_command('scan')}", file=sys.stderr)
        return EXIT_USAGE
    options = ScanOptions(
        url=args.url,
        pages=args.pages,
        same_site_only=args.same_site_only,
        timeout=args.timeout,
        browser=args.browser,
        offline=args.offline,
        policy=args.policy,
    )
    progress = _progress(args.pages)
    try:
        report = scan(options, on_page=progress.step)
    except ScanError as exc:
        print(f"consentmw scan: {exc}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        progress.close()
    try:
        _write_outputs(report, args)
    except (OSError, ScanError) as exc:
        print(f"consentmw scan: {exc}", file=sys.stderr)
        return EXIT_USAGE
    from .summary import print_summary

    print_summary(report, out)
    if report.violations:
        return EXIT_VIOLATIONS
    # A pass that could not run (its page timed out, the consent API refused the choice) saw nothing:
    # "clean" would be a claim the scan cannot make.
    return EXIT_USAGE if report.errors else EXIT_CLEAN


def _write_outputs(report: Any, args: argparse.Namespace) -> None:
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(report.as_json(), f, ensure_ascii=False, indent=2)
            f.write("\n")
    if args.html:
        from .html_report import render

        with open(args.html, "w", encoding="utf-8") as f:
            f.write(render(report))
    if args.policy_draft:
        from .draft import policy_draft

        with open(args.policy_draft, "w", encoding="utf-8") as f:
            json.dump(policy_draft(report), f, ensure_ascii=False, indent=2)
            f.write("\n")


class _progress:
    """A progress bar on standard error while it is a terminal (tqdm stays silent otherwise)."""

    def __init__(self, total: int) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=total, unit="page", desc="scanning", disable=None, file=sys.stderr, leave=False)

    def step(self, page: Any, queued: int) -> None:
        done = self.bar.n + 1
        if queued == 0 and done < (self.bar.total or 0):
            self.bar.total = done  # the site has no more pages than this
        self.bar.set_postfix_str(page.url[-60:], refresh=False)
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()
