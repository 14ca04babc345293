"""Column-at-a-time validation of plain CSV bodies: the fast path for large batches.

:class:`inference.validation.Validator` checks a record at a time, which costs ~19 µs per CSV row
(a function call, a try block and an append per field). A valid 10,000-row plain CSV body does not
need that: :mod:`inference.csv_fields` has located its fields, and each column is looked up as a
whole in a per-feature table of *distinct field text -> validated value* (:mod:`inference.field_keys`).
Only a text the table has not seen yet is stripped, parsed and range-checked, once, with the same
rules as the per-record validator; it then joins the table (bounded: a table that reaches
:data:`MEMO_LIMIT` starts over). Known categories are the schema's own string objects.

It only ever *accepts*: on the first value it does not like (unknown or missing column, text in
a numeric column, a number out of range) it returns None and the caller runs the per-record
validator, which then reports every problem with the exact messages. For valid input the columns
hold the per-record path's values (tests/perf checks this); numeric columns come as float arrays
with NaN for missing, categorical ones as :class:`pipeline.coded_column.CodedColumn` (the table's
values and an entry per row) with None for missing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from inference.csv_fields import CsvFields
from inference.field_keys import MAX_WORDS, KeyTable, field_hashes, field_words
from pipeline.coded_column import CodedColumn
from pipeline.schema import MISSING_TOKENS, CategoricalFeature, NumericFeature, Schema

Value = float | str | None
MEMO_LIMIT = 65_536
"""Distinct texts remembered per feature; a table that reaches it starts over (bounded memory)."""
WORDS_BYTES = 512 * 1024
"""Largest words array made at once: it and its temporaries stay under the workers' mmap
threshold (:mod:`pipeline.heap`), so they reuse heap pages instead of faulting in new ones."""


class _Reject(Exception):
    """Some value needs the per-record validator's judgement (and message)."""


@dataclass
class ColumnarResult:
    """Validated columns (schema order) and how many values of each feature were unknown categories."""

    columns: dict[str, np.ndarray | CodedColumn]
    unknown_categories: dict[str, int]


@dataclass
class _FeatureTable:
    """One feature's distinct texts and their validated values."""

    feature: NumericFeature | CategoricalFeature
    keys: KeyTable = field(default_factory=KeyTable)
    array: np.ndarray = field(default_factory=lambda: np.empty(0))
    unknown: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=bool))
    known: dict[str, str] = field(default_factory=dict)
    """Category -> the schema's own string object."""

    def __post_init__(self) -> None:
        if isinstance(self.feature, CategoricalFeature):
            self.known = {category: category for category in self.feature.categories}
        self.reset()

    def reset(self) -> None:
        """Forget every text but the schema's categories, spelled as the schema spells them."""
        self.keys = KeyTable()
        self.array = np.empty(0)
        self.unknown = np.empty(0, dtype=bool)
        seeds = self.feature.categories if isinstance(self.feature, CategoricalFeature) else ()
        self._learn([category.encode() for category in seeds])

    def lookup(
        self, fields: CsvFields, column: int, words: np.ndarray, lengths: np.ndarray, hashes: np.ndarray
    ) -> np.ndarray:
        """The entry of each field of ``column`` (learning new texts); _Reject if one is invalid.

        ``words``, ``lengths`` and ``hashes`` are the column's, from :func:`field_words`.
        """
        if len(self.keys) >= MEMO_LIMIT:
            self.reset()
        entries = self.keys.lookup(words, lengths, hashes)
        missing = np.flatnonzero(entries < 0)
        if missing.size:
            _, first = np.unique(hashes.take(missing), return_index=True)
            self._learn([fields.cell(column, int(row)) for row in missing.take(first)])
            entries[missing] = self.keys.lookup(
                words[:, missing], lengths.take(missing), hashes.take(missing)
            )
            for row in missing[entries.take(missing) < 0].tolist():  # long texts, hash twins
                text = fields.cell(column, row)
                if text not in self.keys.entries:
                    self._learn([text])
                entries[row] = self.keys.entries[text]
        return entries

    def _learn(self, texts: list[bytes]) -> None:
        new = [text for text in dict.fromkeys(texts) if text not in self.keys.entries]
        values = [self._convert(text.decode()) for text in new]  # may raise _Reject: learn nothing then
        self.keys.add(new)
        if isinstance(self.feature, NumericFeature):
            added = np.array([math.nan if v is None else v for v in values], dtype=np.float64)
        else:
            added = np.array(values, dtype=object)
            unknown = np.array([v is not None and v not in self.known for v in values], dtype=bool)
            self.unknown = np.concatenate([self.unknown, unknown])
        self.array = np.concatenate([self.array, added]) if self.array.size else added

    def _convert(self, text: str) -> Value:
        stripped = text.strip()
        if stripped in MISSING_TOKENS:
            return None
        if isinstance(self.feature, CategoricalFeature):
            return self.known.get(stripped, stripped)
        try:
            number = float(stripped)
        except ValueError:
            raise _Reject from None
        if math.isnan(number):
            return None
        if not self.feature.minimum <= number <= self.feature.maximum:
            raise _Reject
        return number


class ColumnarValidator:
    """Validates plain CSV bodies a column at a time; one per process, reused for every request."""

    def __init__(self, schema: Schema) -> None:
        self._features = {feature.name: feature for feature in schema.features}
        self._tables = {
            feature.name: _FeatureTable(feature)
            for feature in schema.features
            if isinstance(feature, NumericFeature | CategoricalFeature)
        }

    def validate(self, header: list[str], fields: CsvFields) -> ColumnarResult | None:
        """Validated columns for all-valid plain CSV ``fields``, or None to use the slow path.

        ``header`` names the fields' columns (the CSV header or the schema's feature order).
        """
        width = len(header)
        if fields.width != width or len(set(header)) != width:
            return None
        if any(name not in self._tables for name in header):
            return None
        position = {name: i for i, name in enumerate(header)}
        n_rows = fields.n_rows
        columns: dict[str, np.ndarray | CodedColumn] = {}
        unknown: dict[str, int] = {}
        try:
            found = self._entries(header, fields)
        except _Reject:
            return None
        for name, feature in self._features.items():
            if name not in position:
                if not feature.optional:
                    return None
                columns[name] = np.full(n_rows, math.nan if isinstance(feature, NumericFeature) else None)
                continue
            table, entries = self._tables[name], found[position[name]]
            if isinstance(feature, NumericFeature):
                columns[name] = table.array.take(entries)
            else:
                columns[name] = CodedColumn(table.array, entries)
            if table.unknown.size:
                count = int(np.count_nonzero(table.unknown.take(entries)))
                if count:
                    unknown[name] = count
        return ColumnarResult(columns, unknown)

    def _entries(self, header: list[str], fields: CsvFields) -> list[np.ndarray]:
        """Each column's table entries; _Reject if a value needs the per-record validator.

        Columns whose longest field needs as many 8-byte words are read together (fewer numpy
        calls for a small body, no extra words for a numeric column next to a long category), as
        many at a time as keep the words array within :data:`WORDS_BYTES`.
        """
        lengths = fields.lengths.astype(np.intp)
        needed = np.minimum(-(-lengths.max(axis=1, initial=0) // 8), MAX_WORDS)
        found: list[np.ndarray] = [np.empty(0, dtype=np.intp)] * fields.width
        for n_words in sorted(set(needed.tolist())):  # a few columns: np.unique costs more
            same = np.flatnonzero(needed == n_words)
            step = max(1, WORDS_BYTES // (8 * max(1, n_words * fields.n_rows)))
            for first in range(0, len(same), step):
                columns = same[first : first + step]
                words = field_words(fields, columns, lengths[columns], n_words)
                hashes = field_hashes(words, lengths[columns])
                for j, column in enumerate(columns.tolist()):
                    table = self._tables[header[column]]
                    found[column] = table.lookup(fields, column, words[:, j], lengths[column], hashes[j])
        return found
