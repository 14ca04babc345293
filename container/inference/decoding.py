"""Request bodies to records: JSON (object, list, ``{"instances": [...]}``), CSV and JSON Lines.

Decoding only finds the records; whether they match the schema is :mod:`inference.validation`'s job.
A record is either a mapping (field name -> value) or a positional list whose field names are given
by ``DecodedRecords.columns`` (the CSV header, or the schema's feature order).
"""

from __future__ import annotations

import csv
import io
import itertools
from collections.abc import Iterator, Sequence
from typing import Any

import orjson

from inference.content_types import CSV, JSON, JSONLINES
from inference.errors import MalformedBody

_BOM = b"\xef\xbb\xbf"


class DecodedRecords:
    """The records found in a body, before validation.

    Row-wise (``rows``) for JSON and for CSV that needs the CSV parser. Plain CSV (no quotes, the
    same number of fields on every line) keeps its data lines and hands them out column by column,
    whole (``text_columns``) or a block of lines at a time (``text_column_blocks``), which is how
    the columnar validator wants them; rows are built from the lines only if somebody asks.
    """

    def __init__(
        self,
        columns: list[str],
        *,
        rows: list[Any] | None = None,
        lines: list[str] | None = None,
        text_values: bool = False,
        header_given: bool = False,
    ) -> None:
        if (rows is None) == (lines is None):
            raise ValueError("give either rows or lines")
        self.columns = columns
        """Field names for positional rows: the CSV header if there was one, else the schema order."""
        self.text_values = text_values
        """True for CSV: every value arrived as text, so numbers are parsed from strings."""
        self.header_given = header_given
        self._rows = rows
        self._lines = lines

    @property
    def rows(self) -> list[Any]:
        """Each item is a dict (keyed record) or a list (positional values); anything else is invalid."""
        if self._rows is None:
            assert self._lines is not None
            self._rows = [line.split(",") for line in self._lines]
        return self._rows

    @property
    def plain(self) -> bool:
        """True for plain CSV: the columnar forms below are available."""
        return self._lines is not None

    @property
    def text_columns(self) -> list[list[str]] | None:
        """Every record's cells column by column (plain CSV only, else None)."""
        if self._lines is None:
            return None
        return next(self.text_column_blocks(max(1, len(self._lines))))

    def text_column_blocks(self, block_rows: int) -> Iterator[list[list[str]]]:
        """The cells of ``block_rows`` records at a time, column by column (plain CSV only).

        One flat split per block: no list per row, which would also wake the garbage collector every
        few hundred rows, and only one block's cells exist at a time.
        """
        assert self._lines is not None, "only plain CSV has text columns"
        width = len(self.columns)
        for start in range(0, len(self._lines), block_rows):
            cells = ",".join(self._lines[start : start + block_rows]).split(",")
            yield [cells[i::width] for i in range(width)]

    @property
    def n_records(self) -> int:
        """How many records the body holds."""
        return len(self._rows) if self._rows is not None else len(self._lines or ())


def decode(
    body: bytes, fmt: str, feature_names: Sequence[str], header_names: frozenset[str]
) -> DecodedRecords:
    """Decode ``body`` in canonical format ``fmt`` (see :mod:`inference.content_types`).

    ``feature_names`` orders headerless CSV and positional JSON rows; a CSV first row is a header
    when any of its cells is one of ``header_names`` (feature names plus known non-feature columns).
    Raises MalformedBody (400) for syntax errors and empty bodies.
    """
    if body.startswith(_BOM):
        body = body[len(_BOM) :]
    if not body.strip():
        raise MalformedBody("the request body is empty; send at least one record")
    if fmt == JSON:
        return _decode_json(body, feature_names)
    if fmt == JSONLINES:
        return _decode_jsonlines(body, feature_names)
    if fmt == CSV:
        return _decode_csv(body, feature_names, header_names)
    raise ValueError(f"no decoder for {fmt!r}")  # content_types only yields the formats above


def _decode_json(body: bytes, feature_names: Sequence[str]) -> DecodedRecords:
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise MalformedBody(f"the body is not valid JSON: {exc}") from None
    if isinstance(document, dict) and "instances" in document:
        extra = sorted(k for k in document if k != "instances")
        if extra:
            raise MalformedBody(
                f'unexpected top-level keys next to "instances": {extra}',
                [{"field": k, "problem": "unknown_field"} for k in extra],
            )
        rows = document["instances"]
        if not isinstance(rows, list):
            raise MalformedBody('"instances" must be a list of records')
    elif isinstance(document, dict):
        rows = [document]
    elif isinstance(document, list):
        rows = document
    else:
        raise MalformedBody('expected a JSON object (one record), a list of records or {"instances": [...]}')
    if not rows:
        raise MalformedBody("the request contains no records")
    return DecodedRecords(list(feature_names), rows=rows)


def _decode_jsonlines(body: bytes, feature_names: Sequence[str]) -> DecodedRecords:
    rows = []
    for line_number, line in enumerate(body.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append(orjson.loads(line))
        except orjson.JSONDecodeError as exc:
            raise MalformedBody(
                f"line {line_number} is not valid JSON: {exc}",
                [{"record": len(rows), "line": line_number, "problem": "invalid_json"}],
            ) from None
    return DecodedRecords(list(feature_names), rows=rows)


def _decode_csv(body: bytes, feature_names: Sequence[str], header_names: frozenset[str]) -> DecodedRecords:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedBody(f"the body is not valid UTF-8 (byte {exc.start})") from None
    lines = _plain_csv_lines(text)
    if lines is not None:
        first = lines[0].split(",")
        header_given = any(cell.strip() in header_names for cell in first)
        columns = [cell.strip() for cell in first] if header_given else list(feature_names)
        if header_given:
            lines = lines[1:]
        if not lines:
            raise MalformedBody("the CSV body contains no data rows")
        if len(columns) == len(first):  # else a headerless body of the wrong width: the row path reports it
            return DecodedRecords(columns, lines=lines, text_values=True, header_given=header_given)
    try:
        rows = [row for row in csv.reader(io.StringIO(text, newline=""), strict=True) if _non_blank(row)]
    except csv.Error as exc:
        raise MalformedBody(f"the body is not valid CSV: {exc}") from None
    header_given = bool(rows) and any(cell.strip() in header_names for cell in rows[0])
    columns = [cell.strip() for cell in rows[0]] if header_given else list(feature_names)
    if header_given:
        rows = rows[1:]
    if not rows:
        raise MalformedBody("the CSV body contains no data rows")
    return DecodedRecords(columns, rows=rows, text_values=True, header_given=header_given)


def _plain_csv_lines(text: str) -> list[str] | None:
    """The lines of ``text`` if it is CSV that needs no CSV parser; else None.

    That is: no quotes, no NUL, no line break but LF or CRLF, and the same number of fields (at
    least two) on every line, so no line is blank either. Splitting such lines on commas gives
    exactly what ``csv.reader`` gives, at a fraction of the cost.
    """
    if '"' in text or "\x00" in text:
        return None
    if "\r" in text:
        text = text.replace("\r\n", "\n")
        if "\r" in text:
            return None
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    if not lines:
        return None
    commas = lines[0].count(",")
    if commas == 0 or len(set(map(str.count, lines, itertools.repeat(",")))) != 1:
        return None
    return lines


def _non_blank(row: list[str]) -> bool:
    return len(row) > 1 or any(cell.strip() for cell in row)  # cheap test first: most rows have cells
