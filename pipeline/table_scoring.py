"""Score large batches with the ONNX graph's trees compiled into tables, bit for bit the graph's output.

:func:`build_table_scorer` cuts the graph (:mod:`pipeline.onnx_graph_cut`), compiles its tree
ensemble (:mod:`pipeline.tree_tables`) and then *proves* the result: on a verification batch (every
category string the graph knows in every feature, every spelling of missing, padded and unknown
values, random mixes, numbers across each feature's range) the tables must return exactly the
full graph's probabilities, every bit. Anything else raises :class:`TableScorerError` and the
caller keeps scoring with the full graph; the reason is logged.

A request whose numeric block holds a NaN (which the graph's imputer makes impossible, but the
check is cheap) is scored by the full graph, never approximately.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from pipeline.onnx_graph_cut import UNKNOWN_PROBE, GraphCut, GraphCutError, cut_graph
from pipeline.onnx_scoring import FeedBuilder, predict_positive
from pipeline.schema import CategoricalFeature, NumericFeature, Schema
from pipeline.tree_tables import InputLayout, TreeTables, TreeTablesError

VERIFY_RANDOM_ROWS = 2048
VERIFY_SINGLE_ROWS = 256
"""Verification rows also scored one call each (one-row calls have a path of their own)."""
_VERIFY_SEED = 20261203


class TableScorerError(Exception):
    """The tables cannot be used for this graph (the message says why)."""


class TableScorer:
    """Scores validated columns with the compiled tables; the full ONNX session is the fallback."""

    def __init__(self, schema: Schema, cut: GraphCut, tables: TreeTables, full_session: Any) -> None:
        self._schema = schema
        self._cut = cut
        self._tables = tables
        self._full_session = full_session
        self._feeds = FeedBuilder(schema)

    @property
    def description(self) -> str:
        """One line for the load log."""
        return (
            f"{self._tables.n_cells} table cells, {self._tables.n_groups} key groups, "
            f"{self._tables.chunk_rows}-row chunks"
        )

    def predict(self, columns: Mapping[str, Sequence[object]]) -> np.ndarray:
        """P(positive) per row: exactly what the full graph returns for ``columns``."""
        n_rows = self._feeds.row_count(columns)
        if n_rows == 1:
            return self._predict_row(columns)
        numeric = self._cut.numeric_values(self._feeds, columns, n_rows)
        if np.isnan(numeric).any():
            return predict_positive(self._full_session, self._feeds.build(columns))
        codes = {name: self._cut.codes(name, columns.get(name), n_rows) for name in self._schema.categorical}
        return self._tables.probabilities(numeric, codes)

    def _predict_row(self, columns: Mapping[str, Sequence[object]]) -> np.ndarray:
        """:meth:`predict` of a one-row call, through :meth:`TreeTables.row_probability`."""
        row = self._cut.numeric_row(self._feeds, columns)
        if any(math.isnan(value) for value in row):
            return predict_positive(self._full_session, self._feeds.build(columns))
        codes = {name: self._cut.code_of_one(name, columns.get(name)) for name in self._schema.categorical}
        return np.array([self._tables.row_probability(row, codes)])


def build_table_scorer(model_bytes: bytes, schema: Schema, full_session: Any) -> TableScorer:
    """Compile and verify; TableScorerError (with the reason) if the tables cannot stand in."""
    try:
        cut = cut_graph(model_bytes, schema)
        tables = TreeTables.compile(cut.classifier, _layout(cut, schema))
    except (GraphCutError, TreeTablesError) as exc:
        raise TableScorerError(str(exc)) from exc
    scorer = TableScorer(schema, cut, tables, full_session)
    columns = verification_columns(schema, cut.probes)
    expected = predict_positive(full_session, FeedBuilder(schema).build(columns))
    # Once whole (in chunks), once in slices of one chunk each, and the first rows in calls of one,
    # two and three rows (the smallest shapes numpy reduces).
    step = tables.chunk_rows
    small = [
        scorer.predict({name: values[start : start + step] for name, values in columns.items()})
        for start in range(0, len(expected), step)
    ]
    tiny = [
        scorer.predict({name: values[start : start + size] for name, values in columns.items()})
        for start, size in ((0, 1), (1, 2), (3, 3))
    ]
    # One-row calls take their own path (scalars, libm's expf on every value): rows spread over
    # the whole batch, so every stretch of targeted probes and the random rows are in it.
    single = np.linspace(0, len(expected) - 1, VERIFY_SINGLE_ROWS).astype(int)
    singles = [
        scorer.predict({name: values[row : row + 1] for name, values in columns.items()}) for row in single
    ]
    for actual, wanted in (
        (scorer.predict(columns), expected),
        (np.concatenate(small), expected),
        (np.concatenate(tiny), expected[:6]),
        (np.concatenate(singles), expected[single]),
    ):
        _require_equal(wanted, actual)
    return scorer


def _require_equal(expected: np.ndarray, actual: np.ndarray) -> None:
    if not np.array_equal(expected, actual):
        mismatches = int(np.sum(expected != actual))
        worst = float(np.max(np.abs(expected - actual)))
        raise TableScorerError(
            f"the tables differ from the graph on {mismatches} of {len(expected)} verification rows "
            f"(max |Δp| {worst:.3g})"
        )


def _layout(cut: GraphCut, schema: Schema) -> InputLayout:
    numeric = {cut.numeric_offset + j: j for j in range(cut.numeric_width)}
    categorical = {
        cut.categorical_offset + column: (name, column)
        for name in schema.categorical
        for column in cut.columns_of(name)
    }
    return InputLayout(numeric=numeric, categorical=categorical)


def verification_columns(schema: Schema, probes: Sequence[str]) -> dict[str, list[object]]:
    """Every probe string in every categorical feature, then random rows mixing every spelling."""
    rng = np.random.default_rng(_VERIFY_SEED)
    n_targeted = len(probes) * len(schema.categorical)
    n_rows = n_targeted + VERIFY_RANDOM_ROWS
    columns: dict[str, list[object]] = {}
    for feature in schema.features:
        if isinstance(feature, CategoricalFeature):
            spellings = _category_spellings(feature)
            values = [spellings[i] for i in rng.integers(0, len(spellings), n_rows).tolist()]
            if feature.name in schema.categorical:  # this feature's stretch of targeted rows
                start = schema.categorical.index(feature.name) * len(probes)
                values[start : start + len(probes)] = probes
        else:
            assert isinstance(feature, NumericFeature)
            values = _numbers(rng, feature, n_rows)
        columns[feature.name] = values
    return columns


def _category_spellings(feature: CategoricalFeature) -> list[object]:
    """Missing in every spelling, each category as is (weighted up) and padded, an unknown value."""
    categories = list(feature.categories)
    return [None, "", "?", " ? ", *categories * 3, *(f" {c} " for c in categories), UNKNOWN_PROBE]


def _numbers(rng: np.random.Generator, feature: NumericFeature, n_rows: int) -> list[object]:
    """Missing, the bounds, whole numbers (as the data has them) and arbitrary fractions."""
    low, high = feature.minimum, feature.maximum
    fraction = low + rng.random(n_rows) * (high - low)
    kind = rng.integers(0, 10, n_rows)
    values: list[object] = np.where(kind < 6, np.round(fraction), fraction).tolist()
    for i in np.flatnonzero(kind == 6).tolist():
        values[i] = None
    for i in np.flatnonzero(kind == 7).tolist():
        values[i] = low if i % 2 else high
    return values
