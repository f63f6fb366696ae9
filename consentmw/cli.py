from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import secrets
import sys
from collections.abc import Iterator, Sequence
from importlib import resources

from consentmw.core.errors import ConfigError, PolicyError
from consentmw.core.model import SHIPPED, standard_tag
from consentmw.core.policy import load_policy, preset_names
from consentmw.core.store.cli import register as register_store_commands
from consentmw.demo import register as register_demo_command
from consentmw.scan.cli import register as register_scan_command

# Shown under every command's --help: what a site owner types, not what argparse can parse.
EXAMPLES = {
    "init": """\
  consentmw init                          # asks for your site's name, controller, contact, languages
  consentmw init --name "Example Shop" --controller "Example Shop Ltd." --contact privacy@example.com --languages en,de
  consentmw init --preset kakao-enterprise --name ... -o consent-policy.json   # a seed's categories, your name""",
    "validate": """\
  consentmw validate policy.json
  consentmw validate policy.json kakao-enterprise   # files and preset names, all at once""",
    "presets": "  consentmw presets",
    "trackers": """\
  consentmw trackers                      # every tracker consentmw recognises
  consentmw trackers --json""",
    "migrate": """\
  consentmw migrate --store sqlite:///consent.db
  consentmw migrate --store postgresql://consentmw@db.internal/consent""",
    "log": """\
  consentmw log export -o consent-2026.csv
  consentmw log stats --since 2026-01-01""",
    "log export": """\
  consentmw log export --since 2026-01-01 --format jsonl -o proof.jsonl
  consentmw log export | head -5""",
    "log show": "  consentmw log show 3f2a9c0e-...        # the id is in GET /_consent",
    "log stats": """\
  consentmw log stats
  consentmw log stats --since 2026-11-01 --latest""",
    "log report": """\
  consentmw log report --html consent-report.html
  consentmw log report --since 2026-11-01 --until 2026-12-01 --html november.html --json november.json""",
    "log prune": """\
  consentmw log prune --older-than 1095 --dry-run
  consentmw log prune --older-than 1095""",
    "log import": """\
  consentmw log export --store sqlite:///consent.db -o all.csv
  consentmw log import all.csv --store postgresql://consentmw@db.internal/consent""",
    "demo": """\
  consentmw demo                          # the FastAPI example on http://127.0.0.1:8000
  consentmw demo --site django --port 8001""",
    "scan": """\
  consentmw scan https://www.example.com/ --html report.html     # exit 1 if anything runs without consent
  consentmw scan http://127.0.0.1:8000/ --offline --pages 20 --json scan.json --policy-draft draft.json""",
}


def validate(args: argparse.Namespace) -> int:
    status = 0
    for source in args.policy:
        try:
            policy = load_policy(source)
        except PolicyError as exc:
            status = 1
            count = len(exc.problems)
            print(f"{source}: invalid, {count} problem{'s' if count > 1 else ''}:", file=sys.stderr)
            for where, what in exc.problems:
                print(f"  {where}: {what}", file=sys.stderr)
        except ConfigError as exc:
            status = 1
            print(f"{source}: invalid: {exc}", file=sys.stderr)
        else:
            print(f"{source}: valid (version {policy.version}, categories: {', '.join(c.id for c in policy.categories)})")
    return status


def presets(args: argparse.Namespace) -> int:
    print("\n".join(preset_names()))
    return 0


def trackers(args: argparse.Namespace) -> int:
    from consentmw.core.trackers import catalog

    rows = [{"id": t.id, "category": t.category, "name": t.name, "vendor": t.vendor} for t in catalog()]
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
    else:
        width = max(len(r["id"]) for r in rows)
        for r in rows:
            print(f"{r['id']:<{width}}  {r['category']:<12}  {r['name']}")
    return 0


# What `consentmw init` asks for, in order: (argument, question).
INIT_QUESTIONS = (
    ("name", "Your site's name (e.g. Example Shop)"),
    ("controller", "Who is responsible for visitors' data: your company's or your own name"),
    ("contact", "Where visitors send privacy questions (an e-mail address or a page)"),
    ("languages", f"Languages to offer, the default first ({', '.join(SHIPPED)})"),
)
TEXT_FIELDS = ("name", "description", "consequence", "purpose", "collects", "retention", "lifetime")


def site_id(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:64].strip("-")
    return slug or "my-site"


def ask(args: argparse.Namespace) -> None:
    """Fills the answers not given as flags from the terminal."""
    print("consentmw init: a policy in your site's name (Enter keeps the [default])")
    for field, question in INIT_QUESTIONS:
        if getattr(args, field):
            continue
        default = "en" if field == "languages" else ""
        answer = input(f"{question}{f' [{default}]' if default else ''}: ").strip()
        setattr(args, field, answer or default)


def parse_languages(given: str) -> list[str]:
    tags = [standard_tag(t.strip()) for t in given.replace(" ", ",").split(",") if t.strip()]
    unknown = [t for t in tags if t not in SHIPPED]
    if unknown:
        raise ConfigError(
            f"consentmw ships no texts in {', '.join(map(repr, unknown))}; pick among {', '.join(SHIPPED)} "
            "(a policy can add another language by giving all its texts: docs/policy.md)"
        )
    return list(dict.fromkeys(tags)) or ["en"]


def only_languages(node: object, keep: list[str]) -> None:
    """Leaves the preset's texts in the chosen languages alone (all of a text's, when it has none of them)."""
    if isinstance(node, list):
        for item in node:
            only_languages(item, keep)
    elif isinstance(node, dict):
        for key, value in node.items():
            if key in TEXT_FIELDS and isinstance(value, dict) and all(isinstance(v, str) for v in value.values()):
                chosen = {lang: value[lang] for lang in keep if lang in value}
                if chosen:
                    node[key] = chosen
            else:
                only_languages(value, keep)


def init(args: argparse.Namespace) -> int:
    if os.path.exists(args.output) and not args.force:
        print(f"consentmw init: {args.output} exists; pass --force to replace it", file=sys.stderr)
        return 1
    if sys.stdin.isatty() and not args.no_input:
        ask(args)
    missing = [f"--{field}" for field in ("name", "controller") if not getattr(args, field)]
    if missing:
        print(
            f"consentmw init: give {' and '.join(missing)} (or run it in a terminal to be asked): the banner and pages "
            "must say who is responsible for visitors' data",
            file=sys.stderr,
        )
        return 2
    try:
        languages = parse_languages(args.languages or "en")
    except ConfigError as exc:
        print(f"consentmw init: {exc}", file=sys.stderr)
        return 2
    data = json.loads(resources.files("consentmw.core").joinpath("presets", f"{args.preset}.json").read_text("utf-8"))
    # A policy of the site's own: its name, and a fresh version, so consent given under the preset is asked again.
    data["id"] = site_id(args.name)
    data["version"] = datetime.date.today().isoformat()
    data["language"] = languages[0]
    data["languages"] = languages
    controller: dict[str, object] = {"name": {lang: args.controller for lang in languages}}
    if args.contact:
        controller["contact"] = args.contact
    if args.privacy_policy_url:
        controller["privacy_policy_url"] = args.privacy_policy_url
    data["controller"] = controller
    only_languages(data["categories"], languages)
    try:
        load_policy(data)
    except PolicyError as exc:
        for where, what in exc.problems:
            print(f"consentmw init: {where}: {what}", file=sys.stderr)
        return 2
    with open(args.output, "w", encoding="utf-8") as f:
        f.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")
    print(f"wrote {args.output}: {args.name}'s policy, controller {args.controller}, in {', '.join(languages)} (categories from the {args.preset!r} preset)")
    print(f"edit it, then: consentmw validate {args.output}")
    print("a new secret key for the middleware; keep it out of the code, the same on every server:")
    print(f"export CONSENTMW_SECRET_KEY='{secrets.token_urlsafe(32)}'")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="consentmw",
        description="Cookie and tracking consent for Python web sites.",
        epilog="examples:\n  consentmw init\n  consentmw validate policy.json\n  consentmw demo\n\n"
        "Every command has its own --help with examples.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("init", help="write a policy in your site's name and print a new secret key")
    p.add_argument("--name", help="your site's name (asked when run in a terminal)")
    p.add_argument("--controller", help="who is responsible for visitors' data: a company or a person (asked)")
    p.add_argument("--contact", help="an e-mail address or page for privacy questions (asked)")
    p.add_argument("--languages", help=f"comma-separated, the default first, among {', '.join(SHIPPED)} (asked; default: en)")
    p.add_argument("--privacy-policy-url", help="your site's privacy policy")
    p.add_argument("--no-input", action="store_true", help="ask nothing, even in a terminal: flags only")
    p.add_argument("--preset", default="default", choices=preset_names(), help="the categories to start from (default: default)")
    p.add_argument("-o", "--output", default="policy.json", help="where to write the policy (default: policy.json)")
    p.add_argument("--force", action="store_true", help="replace the file if it exists")
    p.set_defaults(func=init)
    p = commands.add_parser("validate", help="check policy files (or preset names); every problem, with its JSON path")
    p.add_argument("policy", nargs="+", help="a policy JSON file or a preset name")
    p.set_defaults(func=validate)
    p = commands.add_parser("presets", help="list the policy presets shipped with consentmw")
    p.set_defaults(func=presets)
    p = commands.add_parser("trackers", help="list the trackers consentmw recognises (ids for a policy's services)")
    p.add_argument("--json", action="store_true", help="as JSON")
    p.set_defaults(func=trackers)
    register_store_commands(commands)
    register_demo_command(commands)
    register_scan_command(commands)
    for name, sub in subcommands(parser):
        sub.formatter_class = argparse.RawDescriptionHelpFormatter
        sub.epilog = "examples:\n" + EXAMPLES[name]
    return parser


def subcommands(parser: argparse.ArgumentParser, prefix: str = "") -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """Every subcommand parser, nested ones too, by its full name ("log export")."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                full = f"{prefix}{name}"
                yield full, sub
                yield from subcommands(sub, full + " ")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        status = args.func(args)
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader went away (`consentmw log export | head -1`): stop quietly. Python would
        # flush stdout again at exit and print a traceback, so point it at /dev/null first.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    return status
