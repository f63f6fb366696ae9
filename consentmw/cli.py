from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from consentmw.demo import register as register_demo_command
from consentmw.core.errors import ConfigError
from consentmw.core.policy import load_policy, preset_names
from consentmw.core.store.cli import register as register_store_commands
from consentmw.scan.cli import register as register_scan_command


def validate(args: argparse.Namespace) -> int:
    status = 0
    for source in args.policy:
        try:
            policy = load_policy(source)
        except ConfigError as exc:
            print(f"{source}: invalid: {exc}", file=sys.stderr)
            status = 1
        else:
            print(f"{source}: valid (version {policy.version}, categories: {', '.join(c.id for c in policy.categories)})")
    return status


def presets(args: argparse.Namespace) -> int:
    print("\n".join(preset_names()))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="consentmw", description="Cookie and tracking consent for ASGI sites.")
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("validate", help="check policy files (or preset names) against the policy schema")
    p.add_argument("policy", nargs="+", help="a policy JSON file or a preset name")
    p.set_defaults(func=validate)
    p = commands.add_parser("presets", help="list the policy presets shipped with consentmw")
    p.set_defaults(func=presets)
    register_store_commands(commands)
    register_demo_command(commands)
    register_scan_command(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)
