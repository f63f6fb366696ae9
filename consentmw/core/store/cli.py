from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import logging
import os
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

from consentmw.core.errors import ConfigError
from consentmw.core.store import (
    DEFAULT_STORE,
    ConsentLog,
    ConsentRecord,
    LogStats,
    RefusedRecord,
    StoreError,
    open_store,
)
from consentmw.core.store import export, report, report_html

STORE_ENV = "CONSENTMW_STORE"
IMPORT_CHUNK = 500  # records looked up, then written concurrently, while importing: the stores batch them

CLI_TIMEOUT = 60.0  # seconds a log command waits for the log


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

    log = subparsers.add_parser("log", help="read, export, report on and prune the consent log (proof of consent)")
    actions = log.add_subparsers(dest="log_command", required=True, metavar="{export,show,stats,report,prune,import}")

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
    stats.add_argument(
        "--include-scans", action="store_true", help="count the records `consentmw scan` wrote too (left out by default: no visitor chose them)"
    )
    stats.add_argument("--format", choices=("text", "json"), default="text")
    stats.set_defaults(func=_command(_stats))

    report_cmd = actions.add_parser(
        "report",
        parents=[store_option],
        help="what visitors chose, as one HTML page with charts (no server, nothing fetched) and as JSON",
    )
    _period_options(report_cmd)
    report_cmd.add_argument("--html", metavar="FILE", help="write the report as a self-contained HTML page")
    report_cmd.add_argument("--json", metavar="FILE", help="write the same figures as JSON (schema: consentmw/core/store/report.schema.json)")
    report_cmd.add_argument(
        "--by", choices=report.BUCKETS, help=f"chart per day or per week (default: per day up to {report.DAYS_DRAWN_BY_DAY} days)"
    )
    report_cmd.set_defaults(func=_command(_report))

    prune = actions.add_parser("prune", parents=[store_option], help="delete records older than the retention period")
    prune.add_argument("--older-than", type=_days, required=True, metavar="DAYS")
    prune.add_argument("--dry-run", action="store_true", help="only count what would be deleted")
    prune.set_defaults(func=_command(_prune))

    import_cmd = actions.add_parser(
        "import", parents=[store_option], help="add the records of an export the log does not hold yet (e.g. to move from SQLite to PostgreSQL)"
    )
    # utf-8-sig: spreadsheets save "CSV UTF-8" with a BOM. surrogateescape: a byte that is not UTF-8
    # costs its own line (named in the report), not the rest of the file.
    import_cmd.add_argument("file", type=argparse.FileType("r", encoding="utf-8-sig", errors="surrogateescape"))
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
            # No visitor waits on these commands: a log slow under load (an import's batch split
            # to find the record the log refuses) gets a minute, not a page view's seconds.
            store = open_store(args.store, timeout=CLI_TIMEOUT)
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
    if getattr(store, "counts_report_totals", False):
        # It counts the report's totals of an existing log: seconds per million records, said as it goes.
        await store.migrate(progress=lambda line: print(line, file=sys.stderr, flush=True))  # type: ignore[call-arg]
    else:
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
        known = [f"{name} {value}" for name, value in (("region", r.region), ("mode", r.mode), ("language", r.language)) if value]
        if r.scan:
            known.append("written by consentmw scan")
        if known:
            print("    " + "  ".join(known), file=out)
    return 0


async def _stats(store: ConsentLog, args: argparse.Namespace, out: TextIO) -> int:
    stats = await store.stats(since=args.since, until=args.until, latest=args.latest, include_scans=args.include_scans)
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
    if stats.scans:
        print(f"{stats.scans} record(s) written by consentmw scan left out (--include-scans counts them)", file=out)
    if stats.categories:
        width = max(len("category"), *map(len, stats.categories))
        print(f"{'category':<{width}}  {'allowed':>8}  {'refused':>8}  {'allowed %':>9}", file=out)
        for category, counts in stats.categories.items():
            total = counts["allowed"] + counts["refused"]
            share = f"{100 * counts['allowed'] / total:.1f}" if total else "-"
            print(f"{category:<{width}}  {counts['allowed']:>8}  {counts['refused']:>8}  {share:>9}", file=out)
    for method, count in stats.methods.items():
        print(f"method {method}: {count}", file=out)


async def _report(store: ConsentLog, args: argparse.Namespace, out: TextIO) -> int:
    if not args.html and not args.json:
        print("consentmw: name a file to write: --html FILE, --json FILE or both", file=sys.stderr)
        return 2
    figures = await report.build(store, since=args.since, until=args.until, bucket=args.by)
    # Both files are written only once every figure is in: a failed read leaves no half report.
    try:
        if args.json:
            _write_file(args.json, json.dumps(figures, indent=2, ensure_ascii=False) + "\n")
        if args.html:
            # The file's path, or the server without its password.
            _write_file(args.html, report_html.render(figures, getattr(store, "path", None) or repr(store)))
    except OSError as exc:
        print(f"consentmw: cannot write the report: {exc}", file=sys.stderr)
        return 1
    totals = figures["totals"]
    print(
        f"{totals['records']} record(s) from {totals['visitors']} visitor(s)"
        f" ({totals['scans_left_out']} scan record(s) left out); written: {', '.join(f for f in (args.html, args.json) if f)}",
        file=out,
    )
    return 0


def _write_file(path: str, text: str) -> None:
    with open(path, "w", encoding="utf-8") as file:
        file.write(text)


async def _prune(store: ConsentLog, args: argparse.Namespace, out: TextIO) -> int:
    cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(days=args.older_than)
    if args.dry_run:
        count = (await store.stats(until=cutoff, include_scans=True)).records
        print(f"{count} record(s) older than {cutoff:%Y-%m-%d %H:%M} UTC would be deleted", file=out)
    else:
        count = await store.prune(cutoff)
        print(f"{count} record(s) older than {cutoff:%Y-%m-%d %H:%M} UTC deleted", file=out)
    return 0


@dataclass
class _ImportReport:
    imported: int = 0
    present: int = 0  # already in the log, identical in every field but the id
    refused: list[tuple[int, str]] = field(default_factory=list)  # (line, why), for each record not written


async def _import(store: ConsentLog, args: argparse.Namespace, out: TextIO) -> int:
    # Safe to run again: a record already in the log (an earlier run, an overlapping export, the
    # log the export came from) is not written twice. Nothing else identifies a record across logs:
    # the id is the source store's own.
    fmt = args.format or ("jsonl" if args.file.name.endswith((".jsonl", ".ndjson")) else "csv")
    if fmt == "csv":
        args.file.reconfigure(newline="")  # as csv needs: a \r inside a quoted cell stays a \r
    report = _ImportReport()
    stopped: tuple[int, Exception] | None = None
    chunk: list[tuple[int, ConsentRecord]] = []
    await store.migrate()  # the look-ups read the log before anything is written to it
    # The report names every record not written, with its line; the store's own error lines (for
    # a server's log) would repeat them without it.
    store_log = logging.getLogger("consentmw.core.store")
    store_log.addFilter(_silent)
    with args.file:
        try:
            for number, entry in export.entries(args.file, fmt):
                if isinstance(entry, ValueError):
                    report.refused.append((number, str(entry)))
                    continue
                chunk.append((number, entry))
                if len(chunk) == IMPORT_CHUNK:
                    await _import_chunk(store, chunk, report)
                    chunk = []
            await _import_chunk(store, chunk, report)
        except StoreError as exc:
            # The log itself failed (down, slow, locked): every other record would fail the same way.
            stopped = (chunk[0][0], exc)
        finally:
            store_log.removeFilter(_silent)
    present = f"; {report.present} already in the log, not written again" if report.present else ""
    print(f"{report.imported} record(s) imported into {store!r}{present}", file=out)
    for _, why in sorted(report.refused):
        print(f"consentmw: {why}", file=sys.stderr)
    again = "run the same import again: records already in the log are not written twice"
    if stopped is not None:
        print(f"consentmw: stopped at line {stopped[0]}: {stopped[1]}; once the log works, {again}", file=sys.stderr)
    elif report.refused:
        print(f"consentmw: {len(report.refused)} record(s) not imported; to add them, fix those lines and {again}", file=sys.stderr)
    return 1 if stopped or report.refused else 0


def _silent(record: logging.LogRecord) -> bool:
    return False


async def _import_chunk(store: ConsentLog, chunk: list[tuple[int, ConsentRecord]], report: _ImportReport) -> None:
    """Write the records of the chunk the log does not hold yet; raise StoreError if the log fails."""
    if not chunk:
        return
    records = [record for _, record in chunk]
    first_copy: dict[tuple[Any, ...], int] = {}  # identity -> the record written for it
    copy_of: dict[int, int] = {}  # a record that repeats an earlier one of the chunk -> that one
    for i, (record, present) in enumerate(zip(records, await store.already_logged(records))):
        if present:
            report.present += 1
        else:
            copy_of[i] = first_copy.setdefault(record.identity(), i)
    writing = sorted(first_copy.values())
    results = dict(zip(writing, await asyncio.gather(*(store.record(records[i]) for i in writing), return_exceptions=True)))
    failure: BaseException | None = None
    for i, first in sorted(copy_of.items()):
        number, result = chunk[i][0], results[first]
        if result is None:
            if i == first:
                report.imported += 1
            else:
                report.present += 1  # the same record twice in the file: it is in the log now
        elif isinstance(result, RefusedRecord):
            report.refused.append((number, f"line {number}: refused by the log ({result})"))
        else:
            failure = failure or result
    if failure is not None:
        raise failure
