"""Check decoded records against the artifact's schema and turn them into engine columns.

Problems are collected for every record (up to a cap) so a caller can fix a batch in one round
trip; each names the record index, the field and the problem. Unknown categories are not errors
(the model's one-hot encoder ignores them) but are counted for the request log.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from inference.columnar import ColumnarValidator
from inference.decoding import DecodedRecords
from inference.errors import InvalidRecords
from pipeline.schema import DROPPED_COLUMNS, MISSING_TOKENS, CategoricalFeature, NumericFeature, Schema

MAX_REPORTED_PROBLEMS = 100
"""Validation stops after this many problems: enough to fix a batch, bounded work for a bad one."""

Value = float | str | None


@dataclass
class ValidatedBatch:
    """Validated columns in schema order: float|None for numeric, str|None for categorical features.

    Lists from the per-record path; numpy arrays from the columnar path (NaN for a missing number).
    """

    columns: Mapping[str, Sequence[Value]]
    n_records: int
    unknown_categories: dict[str, int] = field(default_factory=dict)


class _Problem(Exception):
    """One invalid value; carries the problem code and a message (internal to this module)."""

    def __init__(self, problem: str, message: str) -> None:
        super().__init__(message)
        self.problem = problem
        self.message = message


class Validator:
    """Validates records for one schema; build once per process and reuse for every request."""

    def __init__(self, schema: Schema) -> None:
        self.schema = schema
        self.names = schema.names
        self._not_features = set(DROPPED_COLUMNS) | {schema.target}
        self.header_names = frozenset(self.names) | frozenset(self._not_features)
        self._checks: dict[str, tuple[bool, Callable[[Any], Value], Callable[[Any], Value]]] = {}
        for feature in schema.features:
            if isinstance(feature, NumericFeature):
                self._checks[feature.name] = (
                    feature.optional,
                    _numeric_json(feature),
                    _numeric_text(feature),
                )
            elif isinstance(feature, CategoricalFeature):
                check = _categorical(feature)
                self._checks[feature.name] = (feature.optional, check, check)
        self._categories = {
            f.name: frozenset(f.categories) for f in schema.features if isinstance(f, CategoricalFeature)
        }
        self._columnar = ColumnarValidator(schema)

    def validate(self, decoded: DecodedRecords) -> ValidatedBatch:
        """Validated columns for ``decoded``, or InvalidRecords (400) listing every problem found."""
        self._require_valid_header(decoded)
        problems: list[dict[str, Any]] = []
        if decoded.fields is not None:  # plain CSV: the column-at-a-time path (accepts valid bodies only)
            fast = self._columnar.validate(decoded.columns, decoded.fields)
            if fast is not None:
                return ValidatedBatch(fast.columns, decoded.n_records, fast.unknown_categories)
        columns: dict[str, list[Value]] = {name: [] for name in self.names}
        for index, row in enumerate(decoded.rows):
            if len(problems) >= MAX_REPORTED_PROBLEMS:
                break
            record = self._as_mapping(index, row, decoded.columns, problems)
            if record is None:
                continue
            self._validate_record(index, record, decoded.text_values, columns, problems)
        if problems:
            raise _invalid(problems, len(decoded.rows))
        return ValidatedBatch(
            columns=columns,
            n_records=len(decoded.rows),
            unknown_categories=self._count_unknown(columns),
        )

    def validate_blocks(
        self, decoded: DecodedRecords, block_rows: int
    ) -> Iterator[tuple[int, ValidatedBatch]] | None:
        """Plain CSV validated ``block_rows`` records at a time, as (first record's index, batch).

        Large bodies then never hold more than one block's cells and validated values. None when
        ``decoded`` is not plain CSV. A bad header raises InvalidRecords. A block the columnar path
        does not accept sends the *whole* body through :meth:`validate`, so errors name records by
        their index in the body; should it accept the body after all, it is yielded as one batch
        starting at record 0, replacing what came before.
        """
        if not decoded.plain:
            return None
        return self._blocks(decoded, block_rows)

    def _blocks(self, decoded: DecodedRecords, block_rows: int) -> Iterator[tuple[int, ValidatedBatch]]:
        self._require_valid_header(decoded)
        start = 0
        for fields in decoded.field_blocks(block_rows):
            fast = self._columnar.validate(decoded.columns, fields)
            if fast is None:
                yield 0, self.validate(decoded)
                return
            yield start, ValidatedBatch(fast.columns, fields.n_rows, fast.unknown_categories)
            start += fields.n_rows

    def _require_valid_header(self, decoded: DecodedRecords) -> None:
        """InvalidRecords naming every problem of a CSV header (none without a header)."""
        if decoded.header_given:
            problems: list[dict[str, Any]] = []
            self._check_header(decoded.columns, problems)
            if problems:
                raise _invalid(problems, decoded.n_records)

    def _check_header(self, header: list[str], problems: list[dict[str, Any]]) -> None:
        seen: set[str] = set()
        for name in header:
            if name in seen:
                problems.append(_header_problem(name, "duplicate_field", f"column {name!r} appears twice"))
            seen.add(name)
            if name not in self._checks:
                problems.append(_header_problem(name, "unknown_field", self._unknown_message(name)))
        for name, (optional, _, _) in self._checks.items():
            if name not in seen and not optional:
                problems.append(
                    _header_problem(name, "missing_field", f"required column {name!r} is missing")
                )

    def _as_mapping(
        self, index: int, row: Any, columns: list[str], problems: list[dict[str, Any]]
    ) -> Mapping[str, Any] | None:
        if isinstance(row, dict):
            return row
        if isinstance(row, list):
            if len(row) != len(columns):
                problems.append(
                    _problem(
                        index,
                        None,
                        "wrong_length",
                        f"expected {len(columns)} values ({', '.join(columns)}), got {len(row)}",
                    )
                )
                return None
            return dict(zip(columns, row, strict=True))
        problems.append(
            _problem(index, None, "invalid_record", f"a record must be an object or a list, got {_kind(row)}")
        )
        return None

    def _validate_record(
        self,
        index: int,
        record: Mapping[str, Any],
        text_values: bool,
        columns: dict[str, list[Value]],
        problems: list[dict[str, Any]],
    ) -> None:
        for name, (optional, check_json, check_text) in self._checks.items():
            if name not in record:
                if not optional:
                    problems.append(
                        _problem(index, name, "missing_field", f"required field {name!r} is missing")
                    )
                columns[name].append(None)
                continue
            try:
                columns[name].append((check_text if text_values else check_json)(record[name]))
            except _Problem as problem:
                problems.append(_problem(index, name, problem.problem, problem.message))
                columns[name].append(None)
        for name in record:
            if name not in self._checks:
                problems.append(_problem(index, str(name), "unknown_field", self._unknown_message(str(name))))

    def _unknown_message(self, name: str) -> str:
        if name in DROPPED_COLUMNS:
            return f"field {name!r} is not a model input ({DROPPED_COLUMNS[name]}); remove it"
        if name in self._not_features:
            return f"field {name!r} is the prediction target, not an input; remove it"
        return f"unknown field {name!r}; expected fields: {', '.join(self.names)}"

    def _count_unknown(self, columns: dict[str, list[Value]]) -> dict[str, int]:
        counts = {}
        for name, known in self._categories.items():
            values = columns[name]
            unknown = len(values) - sum(map(known.__contains__, values)) - values.count(None)
            if unknown:
                counts[name] = unknown
        return counts


def _numeric_json(feature: NumericFeature) -> Callable[[Any], Value]:
    def check(value: Any) -> Value:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            if isinstance(value, str) and value.strip() in MISSING_TOKENS:
                return None
            raise _Problem("wrong_type", f"expected a number or null, got {_kind(value)}")
        return _in_range(feature, float(value))

    return check


def _numeric_text(feature: NumericFeature) -> Callable[[Any], Value]:
    def check(value: Any) -> Value:
        text = value.strip()
        if text in MISSING_TOKENS:
            return None
        try:
            number = float(text)
        except ValueError:
            raise _Problem("wrong_type", f"expected a number, got the text {_preview(text)}") from None
        return _in_range(feature, number)

    return check


def _in_range(feature: NumericFeature, number: float) -> Value:
    if math.isnan(number):
        return None
    if not feature.minimum <= number <= feature.maximum:
        raise _Problem(
            "out_of_range",
            f"{_format_number(number)} is outside the allowed range {_format_number(feature.minimum)}"
            f"..{_format_number(feature.maximum)}",
        )
    return number


def _categorical(feature: CategoricalFeature) -> Callable[[Any], Value]:
    def check(value: Any) -> Value:
        if value is None:
            return None
        if not isinstance(value, str):
            raise _Problem("wrong_type", f"expected a string or null, got {_kind(value)}")
        text = value.strip()
        return None if text in MISSING_TOKENS else text

    return check


def _problem(record: int | None, field_name: str | None, problem: str, message: str) -> dict[str, Any]:
    return {"record": record, "field": field_name, "problem": problem, "message": message}


def _header_problem(field_name: str, problem: str, message: str) -> dict[str, Any]:
    return {**_problem(None, field_name, problem, message), "line": 1}


def _invalid(problems: list[dict[str, Any]], n_records: int) -> InvalidRecords:
    records = {p["record"] for p in problems if p["record"] is not None}
    truncated = len(problems) >= MAX_REPORTED_PROBLEMS
    summary = (
        f"{len(problems)} problem{'s' if len(problems) != 1 else ''} in "
        f"{len(records)} of {n_records} record{'s' if n_records != 1 else ''}"
    )
    if not records:
        summary = f"{len(problems)} problem{'s' if len(problems) != 1 else ''} in the CSV header"
    if truncated:
        summary += f" (validation stopped after {MAX_REPORTED_PROBLEMS} problems)"
    first = problems[0]
    where = f"record {first['record']}" if first["record"] is not None else "header"
    field_part = f", field {first['field']!r}" if first["field"] else ""
    return InvalidRecords(f"{summary}; first: {where}{field_part}: {first['message']}", problems)


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _preview(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")


def _format_number(number: float) -> str:
    return str(int(number)) if float(number).is_integer() else repr(number)
