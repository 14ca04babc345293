"""Captured request and response bodies back to feature columns and predicted probabilities.

The request shapes are the serving container's (``container/inference/decoding.py``): JSON (one
object, a list of objects or positional lists, or ``{"instances": [...]}``), JSON Lines, and CSV
with or without a header row (a first row is a header when a cell names a feature, ``fnlwgt``,
``education`` or the target). That package is not importable from ``python -m pipeline`` (it lives
in the image), so the shapes are read here again; tests/monitoring checks both readers agree on
the same bodies. Values are normalised by :func:`pipeline.features.to_model_frame`, the gate
training and serving share, so a record means here what it meant to the model.

Responses are the container's (``container/inference/encoding.py``): ``{"predictions": [{"label",
"probability"}]}``, JSON Lines of those objects, or ``label,probability`` CSV lines.
"""

from __future__ import annotations

import base64
import csv
import io
import json
from collections.abc import Sequence
from typing import Any

import pandas as pd

from pipeline.features import FeatureError, to_model_frame
from pipeline.monitoring.capture import BASE64_ENCODING, media_essence
from pipeline.schema import DROPPED_COLUMNS, Schema

JSON_TYPES = frozenset({"application/json"})
JSONLINES_TYPES = frozenset(
    {
        "application/jsonlines",
        "application/x-jsonlines",
        "application/json-lines",
        "application/jsonl",
        "application/x-ndjson",
    }
)
CSV_TYPES = frozenset({"text/csv"})


class PayloadError(ValueError):
    """A captured body cannot be read as records or predictions (the message says why)."""


def payload_bytes(payload: dict[str, Any]) -> bytes:
    """The body of an ``endpointInput``/``endpointOutput`` object, decoded per its ``encoding``."""
    data = payload.get("data")
    if not isinstance(data, str):
        raise PayloadError("'data' is missing or not a string")
    if payload.get("encoding") == BASE64_ENCODING:
        try:
            return base64.b64decode(data, validate=True)
        except ValueError:
            raise PayloadError("'data' is not valid base64") from None
    return data.encode("utf-8")


def decode_records(body: bytes, content_type: str, schema: Schema) -> pd.DataFrame:
    """The model frame of the records in a request body."""
    text = _text(body)
    essence = media_essence(content_type) or "application/json"  # the container's default
    if essence in CSV_TYPES:
        columns = _csv_columns(text, schema)
    elif essence in JSON_TYPES:
        columns = _row_columns(_json_rows(text), schema)
    elif essence in JSONLINES_TYPES:
        columns = _row_columns(_jsonlines_rows(text), schema)
    else:
        raise PayloadError(f"request content type {content_type!r} is not one the endpoint reads")
    try:
        return to_model_frame(columns, schema)
    except FeatureError as exc:
        raise PayloadError(str(exc)) from None


def decode_probabilities(body: bytes, content_type: str) -> list[float]:
    """The positive-class probabilities in a response body, in record order."""
    text = _text(body)
    essence = media_essence(content_type)
    if essence in JSON_TYPES:
        document = _json(text)
        predictions = document.get("predictions") if isinstance(document, dict) else None
        if not isinstance(predictions, list):
            raise PayloadError('the response has no "predictions" list')
        return [_probability(p) for p in predictions]
    if essence in JSONLINES_TYPES:
        return [_probability(_json(line)) for line in text.splitlines() if line.strip()]
    if essence in CSV_TYPES:
        rows = [row for row in csv.reader(io.StringIO(text)) if row]
        try:
            return [float(row[-1]) for row in rows]
        except ValueError:
            raise PayloadError("a CSV response line does not end in a probability") from None
    raise PayloadError(f"response content type {content_type!r} is not one the endpoint writes")


def _text(body: bytes) -> str:
    try:
        return body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise PayloadError(f"the body is not UTF-8 (byte {exc.start})") from None


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise PayloadError(f"not valid JSON: {exc}") from None


def _json_rows(text: str) -> list[Any]:
    document = _json(text)
    if isinstance(document, dict) and "instances" in document:
        document = document["instances"]
    if isinstance(document, dict):
        return [document]
    if isinstance(document, list):
        return document
    raise PayloadError("the JSON body is neither a record, a list of records nor {'instances': [...]}")


def _jsonlines_rows(text: str) -> list[Any]:
    return [_json(line) for line in text.splitlines() if line.strip()]


def _row_columns(rows: Sequence[Any], schema: Schema) -> dict[str, list[Any]]:
    """Keyed or positional (schema order) rows -> one list per feature (absent keys: None)."""
    if not rows:
        raise PayloadError("the body holds no records")
    columns: dict[str, list[Any]] = {name: [] for name in schema.names}
    for row in rows:
        if isinstance(row, list):
            if len(row) != len(schema.names):
                raise PayloadError(f"a positional record has {len(row)} values, not {len(schema.names)}")
            row = dict(zip(schema.names, row, strict=True))
        if not isinstance(row, dict):
            raise PayloadError("a record is neither an object nor a list")
        for name in schema.names:
            columns[name].append(row.get(name))
    return columns


def _csv_columns(text: str, schema: Schema) -> dict[str, list[Any]]:
    try:
        rows = [row for row in csv.reader(io.StringIO(text, newline=""), strict=True) if _non_blank(row)]
    except csv.Error as exc:
        raise PayloadError(f"not valid CSV: {exc}") from None
    header_names = set(schema.names) | set(DROPPED_COLUMNS) | {schema.target}
    header = bool(rows) and any(cell.strip() in header_names for cell in rows[0])
    names = [cell.strip() for cell in rows[0]] if header else list(schema.names)
    rows = rows[1:] if header else rows
    if not rows:
        raise PayloadError("the CSV body holds no data rows")
    return _row_columns([dict(zip(names, row, strict=False)) for row in rows], schema)


def _non_blank(row: list[str]) -> bool:
    return len(row) > 1 or any(cell.strip() for cell in row)


def _probability(prediction: Any) -> float:
    value = prediction.get("probability") if isinstance(prediction, dict) else None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PayloadError("a prediction has no numeric 'probability'")
    return float(value)
