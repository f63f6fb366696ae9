from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TextIO

from consentmw.errors import ConfigError
from consentmw.store import DEFAULT_STORE, ConsentLog, ConsentRecord, LogStats, StoreError, open_store
from consentmw.store import export

STORE_ENV = "CONSENTMW_STORE"
IMPORT_CHUNK = 500  # records written concurrently while importing: the stores batch them


def register(subparsers: Any) -> None:
    """Add `consentmw log ...` and `consentmw migrate` to the main parser's subcommands."""
    store_option = argparse.ArgumentParser(add_help=False)
    store_option.add_argument(
        "--store",
        default=os.environ.get(STORE_ENV, DEFAULT_STORE),
        help=f"the consent log: sqlite:///PATH or postgresql://... (default: ${STORE_ENV}, else {DEFAULT_STORE})",
    )

    migrate = subparsers.add_parser(
        "migrate", parents=[store_option], help="create the consent log table (safe to run again)"
    )
    migrate.set_defaults(func=_command(_migrate))

    log = subparsers.add_parser("log", help="read, export and prune the consent log (proof of consent)")
    actions = log.add_subparsers(dest="log_command", required=True, metavar="{export,show,stats,prune,import}")

    export_cmd = actions.add_parser("export", parents=[store_option], help="write records as CSV or JSON lines")
    _period_options(export_cmd)
    export_cmd.add_argument("--format", choices=export.FORMATS, default="csv")
    export_cmd.add_argument("--output", "-o", metavar="FILE", help="write to FILE instead of standard output")
    export_cmd.set_defaults(func=_command(_export))

    show = actions.add_parser("show", parents=[store_option], help="every record of one visitor's consent id")
    show.add_argument("consent_id")
    show.add_argument("--format", choices=("text", *export.FORMATS), default="text")
    show.set_defaults(func=_command(_show))

    stats = actions.add_parser("stats", parents=[store_option], help="counts per category and choice over a period")
    _period_options(stats)
    stats.add_argument(
        "--latest", action="store_true", help="count each visitor once, by their last choice in the period"
    )
    stats.add_argument("--format", choices=("text", "json"), default="text")
    stats.set_defaults(func=_command(_stats))

    prune = actions.add_parser("prune", parents=[store_option], help="delete records older than the retention period")
    prune.add_argument("--older-than", type=_days, required=True, metavar="DAYS")
    prune.add_argument("--dry-run", action="store_true", help="only count what would be deleted")
    prune.set_defaults(func=_command(_prune))

    import_cmd = actions.add_parser(
        "import", parents=[store_option], help="append records from an export (e.g. to move from SQLite to PostgreSQL)"
    )
    import_cmd.add_argument("file", type=argparse.FileType("r", encoding="utf-8"))
    import_cmd.add_argument("--format", choices=export.FORMATS, help="default: from the file name, else csv")
    import_cmd.set_defaults(func=_command(_import))


def _period_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--since", type=_moment, metavar="DATE", help="from this UTC date or ISO time on")
    parser.add_argument("--until", type=_moment, metavar="DATE", help="before this UTC date or ISO time")


def _moment(text: str) -> dt.datetime:
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD) or ISO time") from None
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment


def _days(text: str) -> int:
    try:
        days = int(text)
    except ValueError:
        days = -1
    if days < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of days")
    return days


def _command(action: Callable[[ConsentLog, argparse.Namespace, TextIO], Awaitable[int]]) -> Callable[..., int]:
    def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
        async def go() -> int:
            store = open_store(args.store)
            try:
                return await action(store, args, out or sys.stdout)  # type: ignore[arg-type]
            finally:
                await store.close()

        try:
            return asyncio.run(go())
        except (StoreError, ConfigError, ValueError) as exc:
            print(f"consentmw: {exc}", file=sys.stderr)
            return 1

    return run


async def _migrate(store: ConsentLog, args: argparse.Namespace, out: TextIO) -> int:
    await store.migrate()
    print(f"consent log ready: {store!r}", file=out)
    return 0


async def _export(store: ConsentLog, args: argparse.Namespace, out: TextIO) -> int:
    records = store.history(since=args.since, until=args.until)
    if args.output is None:
        count = await export.write(records, out, args.format)
    else:
        with open(args.output, "w", encoding="utf-8", newline="") as file:
            count = await export.write(records, file, args.format)
    print(f"{count} record(s) exported", file=sys.stderr)
    return 0


async def _show(store: ConsentLog, args: argparse.Namespace, out: TextIO) -> int:
    records = [r async for r in store.history(consent_id=args.consent_id)]
    if not records:
        print(f"consentmw: no record of consent id {args.consent_id!r}", file=sys.stderr)
        return 1

    async def listed() -> Any:
        for r in records:
            yield r

    if args.format != "text":
        await export.write(listed(), out, args.format)
        return 0
    print(f"consent id {args.consent_id}: {len(records)} record(s), oldest first (times in UTC)", file=out)
    for r in records:
        choices = ", ".join(f"{cat} {'yes' if allowed else 'no'}" for cat, allowed in r.choices.items())
        print(f"#{r.id}  {r.created_at:%Y-%m-%d %H:%M:%S}  {r.method}  policy {r.policy_version}  {choices}", file=out)
        print(f"    page {r.path or '-'}  network {r.ip or '-'}  browser {r.user_agent or '-'}", file=out)
    return 0


async def _stats(store: ConsentLog, args: argparse.Namespace, out: TextIO) -> int:
    stats = await store.stats(since=args.since, until=args.until, latest=args.latest)
    if args.format == "json":
        print(json.dumps(stats.as_dict(), indent=2), file=out)
    else:
        _print_stats(stats, args, out)
    return 0


def _print_stats(stats: LogStats, args: argparse.Namespace, out: TextIO) -> None:
    since = f"{args.since:%Y-%m-%d %H:%M}" if args.since else "the first record"
    until = f"before {args.until:%Y-%m-%d %H:%M}" if args.until else "now"
    counted = "each visitor's last choice" if args.latest else "every choice"
    print(f"from {since} to {until} (UTC), {counted}", file=out)
    print(f"{stats.records} record(s) from {stats.visitors} visitor(s)", file=out)
    if stats.categories:
        width = max(len("category"), *map(len, stats.categories))
        print(f"{'category':<{width}}  {'allowed':>8}  {'refused':>8}  {'allowed %':>9}", file=out)
        for category, counts in stats.categories.items():
            total = counts["allowed"] + counts["refused"]
            share = f"{100 * counts['allowed'] / total:.1f}" if total else "-"
            print(f"{category:<{width}}  {counts['allowed']:>8}  {counts['refused']:>8}  {share:>9}", file=out)
    for method, count in stats.methods.items():
        print(f"method {method}: {count}", file=out)


async def _prune(store: ConsentLog, args: argparse.Namespace, out: TextIO) -> int:
    cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(days=args.older_than)
    if args.dry_run:
        count = (await store.stats(until=cutoff)).records
        print(f"{count} record(s) older than {cutoff:%Y-%m-%d %H:%M} UTC would be deleted", file=out)
    else:
        count = await store.prune(cutoff)
        print(f"{count} record(s) older than {cutoff:%Y-%m-%d %H:%M} UTC deleted", file=out)
    return 0


async def _import(store: ConsentLog, args: argparse.Namespace, out: TextIO) -> int:
    fmt = args.format or ("jsonl" if args.file.name.endswith((".jsonl", ".ndjson")) else "csv")
    count = 0
    chunk: list[ConsentRecord] = []
    with args.file:
        for record in export.read(args.file, fmt):
            chunk.append(record)
            if len(chunk) == IMPORT_CHUNK:
                count += len(await asyncio.gather(*map(store.record, chunk)))
                chunk = []
        count += len(await asyncio.gather(*map(store.record, chunk)))
    print(f"{count} record(s) imported into {store!r}", file=out)
    return 0
