"""Writes the command reference of docs/cli.md from the argument parser (consentmw.cli.build_parser),
so the two cannot drift apart: the text between the BEGIN/END markers is replaced, the rest of the
page is kept.

    python scripts/cli_reference.py          # rewrite docs/cli.md
    python scripts/cli_reference.py --check  # exit 1 when docs/cli.md is out of date
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from consentmw.cli import build_parser, subcommands  # noqa: E402

PAGE = ROOT / "docs" / "cli.md"
BEGIN = "<!-- BEGIN commands: written by scripts/cli_reference.py from the argument parser (consentmw/cli.py) -->"
END = "<!-- END commands -->"


def cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def value(action: argparse.Action) -> str:
    if action.choices is not None and not isinstance(action.choices, dict) and len(action.choices) <= 4:
        return "|".join(str(c) for c in action.choices)
    return action.metavar if isinstance(action.metavar, str) else action.dest.upper()


def options(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in parser._actions if not isinstance(a, (argparse._HelpAction, argparse._SubParsersAction))]


def synopsis(name: str, parser: argparse.ArgumentParser) -> str:
    parts = [name]
    for action in options(parser):
        if not action.option_strings:
            word = value(action)
            parts.append(f"{word}..." if action.nargs in ("+", "*") else word)
        else:
            word = action.option_strings[0] if action.nargs == 0 else f"{action.option_strings[0]} {value(action)}"
            parts.append(word if action.required else f"[{word}]")
    if any(isinstance(a, argparse._SubParsersAction) for a in parser._actions):
        parts.append("COMMAND")
    return " ".join(parts)


def option_name(action: argparse.Action) -> str:
    if not action.option_strings:
        return value(action)
    flags = ", ".join(action.option_strings)
    return flags if action.nargs == 0 else f"{flags} {value(action)}"


def helps(parser: argparse.ArgumentParser) -> dict[str, str]:
    """Each subcommand's one-line help, by full name."""
    found: dict[str, str] = {}

    def walk(p: argparse.ArgumentParser, prefix: str) -> None:
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                for choice in action._choices_actions:
                    found[prefix + choice.dest] = choice.help or ""
                for name, sub in action.choices.items():
                    walk(sub, f"{prefix}{name} ")

    walk(parser, "")
    return found


def reference() -> str:
    parser = build_parser()
    commands = list(subcommands(parser))
    help_of = helps(parser)
    lines = ["| command | what it does |", "|---|---|"]
    for name, sub in commands:
        lines.append(f"| `{cell(synopsis(name, sub))}` | {cell(help_of.get(name, ''))} |")
    for name, sub in commands:
        rows = [a for a in options(sub)]
        lines += ["", f"### `consentmw {name}`", ""]
        lines.append(cell(sub.description or help_of.get(name, "")))
        if rows:
            lines += ["", "| argument | |", "|---|---|"]
            for action in rows:
                text = action.help % {"default": action.default, "prog": sub.prog} if action.help else ""
                if not text and action.default not in (None, False):
                    text = f"default: {action.default}"
                lines.append(f"| `{cell(option_name(action))}` | {cell(text)} |")
    return "\n".join(lines)


def render(page: str) -> str:
    head, found, rest = page.partition(BEGIN)
    if not found or END not in rest:
        raise SystemExit(f"{PAGE}: the markers {BEGIN!r} ... {END!r} are missing")
    tail = rest.partition(END)[2]
    return f"{head}{BEGIN}\n{reference()}\n{END}{tail}"


def main(argv: list[str]) -> int:
    page = PAGE.read_text("utf-8")
    new = render(page)
    if "--check" in argv:
        if new != page:
            print(f"{PAGE.relative_to(ROOT)} is out of date: run python scripts/cli_reference.py", file=sys.stderr)
            return 1
        return 0
    PAGE.write_text(new, "utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
