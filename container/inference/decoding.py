"""Request bodies to records: JSON (object, list, ``{"instances": [...]}``), CSV and JSON Lines.

Decoding only finds the records; whether they match the schema is :mod:`inference.validation`'s job.
A record is either a mapping (field name -> value) or a positional list whose field names are given
by ``DecodedRecords.columns`` (the CSV header, or the schema's feature order).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from inference.content_types import CSV, JSON, JSONLINES
from inference.errors import MalformedBody

_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class DecodedRecords:
    """The records found in a body, before validation."""

    rows: list[Any]
    """Each item is a dict (keyed record) or a list (positional values); anything else is invalid."""
    columns: list[str]
    """Field names for positional rows: the CSV header if there was one, else the schema order."""
    text_values: bool
    """True for CSV: every value arrived as text, so numbers are parsed from strings."""
    header_given: bool = False


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
    return DecodedRecords(rows=rows, columns=list(feature_names), text_values=False)


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
    return DecodedRecords(rows=rows, columns=list(feature_names), text_values=False)


def _decode_csv(body: bytes, feature_names: Sequence[str], header_names: frozenset[str]) -> DecodedRecords:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedBody(f"the body is not valid UTF-8 (byte {exc.start})") from None
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
    return DecodedRecords(rows=rows, columns=columns, text_values=True, header_given=header_given)


def _non_blank(row: list[str]) -> bool:
    return len(row) > 1 or any(cell.strip() for cell in row)  # cheap test first: most rows have cells
