from __future__ import annotations

import csv
import json
import re
from collections.abc import AsyncIterable, Callable, Iterator
from typing import Any, TextIO

from consentmw.core.store.base import ConsentRecord
from consentmw.core.store.sql import ADDED_COLUMNS, COLUMNS

FORMATS = ("csv", "jsonl")
# What an export from before region, mode, language and scan existed has: it imports all the same.
REQUIRED_COLUMNS = tuple(c for c in COLUMNS if c not in {name for name, _, _ in ADDED_COLUMNS})

# A cell that starts like a formula runs as one when the CSV is opened in a spreadsheet, and paths
# and browser names come from visitors. Such cells get a leading apostrophe (and so do cells that
# already had one before such a start), which the reader takes off again: the export stays exact.
_FORMULA = re.compile(r"'*[=+\-@\t\r]")


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return "'" + text if _FORMULA.match(text) else text


def _uncell(text: str) -> str:
    return text[1:] if text.startswith("'") and _FORMULA.match(text, 1) else text


def _csv_row(record: ConsentRecord) -> list[str]:
    row = record.as_dict()
    row["choices"] = json.dumps(record.choices, separators=(",", ":"))
    row["scan"] = "true" if record.scan else "false"
    return [_cell(row[column]) for column in COLUMNS]


async def write(records: AsyncIterable[ConsentRecord], out: TextIO, fmt: str) -> int:
    """Write records as CSV (one header row) or JSON lines; return how many."""
    count = 0
    writer = csv.writer(out) if fmt == "csv" else None
    if writer is not None:
        writer.writerow(COLUMNS)
    async for record in records:
        if writer is not None:
            writer.writerow(_csv_row(record))
        else:
            out.write(json.dumps(record.as_dict(), ensure_ascii=False) + "\n")
        count += 1
    return count


def read(lines: TextIO, fmt: str) -> Iterator[ConsentRecord]:
    """Records back from an export, for an audit script or to move a log to another store."""
    for _, entry in entries(lines, fmt):
        if isinstance(entry, ValueError):
            raise entry
        yield entry


def entries(lines: TextIO, fmt: str) -> Iterator[tuple[int, ConsentRecord | ValueError]]:
    """(line number, record) for each record of an export, and (line number, error) for each line
    that is not one, so that one bad line costs only itself. The number is of the line in the file
    where the record starts (a CSV record can span lines). Open the file with
    errors="surrogateescape" to have bytes that are not UTF-8 named here rather than stop the read.

    A file that is not an export at all (no header with the log's columns) raises ValueError.
    """
    if fmt == "jsonl":
        for number, line in enumerate(lines, 1):
            if _NOT_UTF8.search(line):
                yield number, _not_a_record(number, "bytes that are not UTF-8 text")
            elif line.strip():
                yield number, _parse(json.loads, line, number)
        return
    reader = csv.reader(lines)
    header: list[str] | None = None
    while True:
        start = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield start, _not_a_record(start, str(exc))
            continue
        if not row:
            continue  # a blank line
        if header is None:
            header = row
            missing = set(REQUIRED_COLUMNS) - set(header)
            if missing:
                raise ValueError(f"not a consent log export: no column {', '.join(sorted(missing))}")
        elif any(_NOT_UTF8.search(cell) for cell in row):
            yield start, _not_a_record(start, "bytes that are not UTF-8 text")
        elif len(row) != len(header):
            yield start, _not_a_record(start, f"{len(row)} fields where the header has {len(header)}")
        else:
            yield start, _parse(_from_csv_row, dict(zip(header, row)), start)


# What errors="surrogateescape" turns bytes that are not UTF-8 into: valid UTF-8 never decodes to these.
_NOT_UTF8 = re.compile("[\udc80-\udcff]")


def _from_csv_row(row: dict[str, str]) -> dict[str, Any]:
    data: dict[str, Any] = {key: _uncell(row[key]) for key in COLUMNS if key in row}
    data["choices"] = json.loads(data["choices"])
    data["policy_id"] = data["policy_id"] or None
    scan = data.pop("scan", "")
    if scan not in ("", "true", "false"):
        raise ValueError(f"scan {scan!r} is neither true nor false")
    data["scan"] = scan == "true"
    return data


def _not_a_record(number: int, reason: str) -> ValueError:
    return ValueError(f"line {number}: not a consent record ({reason})")


def _parse(load: Callable[[Any], dict[str, Any]], data: Any, number: int) -> ConsentRecord | ValueError:
    try:
        return ConsentRecord.from_dict(load(data))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        return _not_a_record(number, repr(exc))
