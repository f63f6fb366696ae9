from __future__ import annotations

import csv
import json
import re
from collections.abc import AsyncIterable, Callable, Iterator
from typing import Any, TextIO

from consentmw.store.base import ConsentRecord
from consentmw.store.sql import COLUMNS

FORMATS = ("csv", "jsonl")

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
    if fmt == "jsonl":
        for number, line in enumerate(lines, 1):
            if line.strip():
                yield _parse(json.loads, line, number)
        return
    reader = csv.DictReader(lines)
    missing = set(COLUMNS) - set(reader.fieldnames or ())
    if missing:
        raise ValueError(f"not a consent log export: no column {', '.join(sorted(missing))}")
    for row in reader:
        yield _parse(_from_csv_row, row, reader.line_num)


def _from_csv_row(row: dict[str, str]) -> dict[str, Any]:
    data: dict[str, Any] = {key: _uncell(row[key]) for key in COLUMNS}
    data["choices"] = json.loads(data["choices"])
    data["policy_id"] = data["policy_id"] or None
    return data


def _parse(load: Callable[[Any], dict[str, Any]], data: Any, number: int) -> ConsentRecord:
    try:
        return ConsentRecord.from_dict(load(data))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"line {number}: not a consent record ({exc!r})") from exc
