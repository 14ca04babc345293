"""Map the container's 400 answers back to input lines, and write ``--skip-invalid``'s errors file.

The container's error body (container/inference/errors.py) lists problems with ``record`` (the
0-based index of the data row in the request), ``field``, ``problem`` and ``message``; header
problems have ``record: null`` and ``line: 1``. Validation reports at most 100 problems per request,
so a caller removing reported records must re-send the rest until the container accepts it.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

ERRORS_COLUMNS = ("file", "line", "field", "problem", "message")


@dataclass(frozen=True)
class ErrorRow:
    """One invalid input line."""

    file: str
    line: int | None
    field: str | None
    problem: str
    message: str


def record_problems(error: dict[str, Any], n_records: int) -> dict[int, dict[str, Any]]:
    """The first problem of each record the container named (index -> detail); empty if none did."""
    found: dict[int, dict[str, Any]] = {}
    for detail in error.get("details") or []:
        if not isinstance(detail, dict):
            continue
        record = detail.get("record")
        if isinstance(record, int) and 0 <= record < n_records and record not in found:
            found[record] = detail
    return found


def header_problem(error: dict[str, Any]) -> dict[str, Any] | None:
    """A problem the container found in the CSV header, if any."""
    for detail in error.get("details") or []:
        if isinstance(detail, dict) and detail.get("record") is None and detail.get("line") == 1:
            return detail
    return None


def errors_header() -> bytes:
    """The first line of an errors file."""
    return (",".join(ERRORS_COLUMNS) + "\n").encode()


def errors_lines(rows: Sequence[ErrorRow]) -> bytes:
    """Errors file lines, one per invalid input line (CSV-quoted)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for row in rows:
        writer.writerow(
            [row.file, "" if row.line is None else row.line, row.field or "", row.problem, row.message]
        )
    return out.getvalue().encode()
