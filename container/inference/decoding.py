"""Request bodies to records: JSON (object, list, ``{"instances": [...]}``), CSV and JSON Lines.

Decoding only finds the records; whether they match the schema is :mod:`inference.validation`'s job.
A record is either a mapping (field name -> value) or a positional list whose field names are given
by ``DecodedRecords.columns`` (the CSV header, or the schema's feature order).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
from typing import Any

import orjson

from inference.content_types import CSV, JSON, JSONLINES
from inference.csv_fields import CsvFields, locate_fields
from inference.errors import MalformedBody

_BOM = b"\xef\xbb\xbf"
PLAIN_MIN_LINES = 64
"""CSV bodies of fewer lines skip the plain path: locating fields and validating column by column
costs ~0.4 ms a body whatever its size, the csv module and the per-record validator ~6 µs a line."""


class DecodedRecords:
    """The records found in a body, before validation.

    Row-wise (``rows``) for JSON and for CSV that needs the CSV parser. Plain CSV (no quotes, the
    same number of fields on every line) keeps only where its fields are (``fields``, see
    :mod:`inference.csv_fields`), which is what the columnar validator reads, whole or a block of
    records at a time; rows of text are made from them only if somebody asks.
    """

    def __init__(
        self,
        columns: list[str],
        *,
        rows: list[Any] | None = None,
        fields: CsvFields | None = None,
        text_values: bool = False,
        header_given: bool = False,
    ) -> None:
        if (rows is None) == (fields is None):
            raise ValueError("give either rows or fields")
        self.columns = columns
        """Field names for positional rows: the CSV header if there was one, else the schema order."""
        self.text_values = text_values
        """True for CSV: every value arrived as text, so numbers are parsed from strings."""
        self.header_given = header_given
        self._rows = rows
        self.fields = fields
        """Plain CSV's data records, located (None for every other body)."""

    @property
    def rows(self) -> list[Any]:
        """Each item is a dict (keyed record) or a list (positional values); anything else is invalid."""
        if self._rows is None:
            assert self.fields is not None
            self._rows = self.fields.rows()
        return self._rows

    @property
    def plain(self) -> bool:
        """True for plain CSV: ``fields`` and :meth:`field_blocks` are available."""
        return self.fields is not None

    def field_blocks(self, block_rows: int) -> Iterator[CsvFields]:
        """The records' fields, ``block_rows`` records at a time (plain CSV only)."""
        assert self.fields is not None, "only plain CSV has located fields"
        for start in range(0, self.fields.n_rows, block_rows):
            yield self.fields.rows_between(start, start + block_rows)

    @property
    def n_records(self) -> int:
        """How many records the body holds."""
        return len(self._rows) if self._rows is not None else self.fields.n_rows  # type: ignore[union-attr]


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
    if not body.isascii():  # ASCII is UTF-8; anything else must decode (checked once, up front)
        try:
            body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedBody(f"the body is not valid UTF-8 (byte {exc.start})") from None
    fields = locate_fields(body, PLAIN_MIN_LINES)
    if fields is not None:
        first = fields.row_texts(0)
        header_given = any(cell.strip() in header_names for cell in first)
        columns = [cell.strip() for cell in first] if header_given else list(feature_names)
        if header_given:
            fields = fields.rows_between(1, fields.n_rows)
        if not fields.n_rows:
            raise MalformedBody("the CSV body contains no data rows")
        if len(columns) == fields.width:  # else a headerless body of the wrong width: the row path reports it
            return DecodedRecords(columns, fields=fields, text_values=True, header_given=header_given)
    try:
        reader = csv.reader(io.StringIO(body.decode("utf-8"), newline=""), strict=True)
        rows = [row for row in reader if _non_blank(row)]
    except csv.Error as exc:
        raise MalformedBody(f"the body is not valid CSV: {exc}") from None
    header_given = bool(rows) and any(cell.strip() in header_names for cell in rows[0])
    columns = [cell.strip() for cell in rows[0]] if header_given else list(feature_names)
    if header_given:
        rows = rows[1:]
    if not rows:
        raise MalformedBody("the CSV body contains no data rows")
    return DecodedRecords(columns, rows=rows, text_values=True, header_given=header_given)


def _non_blank(row: list[str]) -> bool:
    return len(row) > 1 or any(cell.strip() for cell in row)  # cheap test first: most rows have cells
