"""Score batches and single records with the ONNX graph's trees compiled into tables, bit for bit
the graph's output.

:func:`build_table_scorer` cuts the graph (:mod:`pipeline.onnx_graph_cut`), compiles its tree
ensemble (:mod:`pipeline.tree_tables`) and then *proves* the result: on a verification batch (every
category string the graph knows in every feature, every spelling of missing, padded and unknown
values, random mixes, numbers across each feature's range) the tables must return exactly the
full graph's probabilities, every bit. Anything else raises :class:`TableScorerError` and the
caller keeps scoring with the full graph; the reason is logged.

Compiling takes ~0.2 s (the ``onnx`` import, the cut, walking every tree), most of a server's
start-up. So training compiles them once, proves them on the whole verification batch, and ships
them in the artifact (:data:`pipeline.artifact.TABLES_FILE`, :func:`export_tables`); the server
reads them back (:func:`load_table_scorer`) and proves them again against its own graph on a
smaller batch (every targeted probe row, fewer random rows) before using them.

A request whose numeric block holds a NaN (which the graph's imputer makes impossible, but the
check is cheap) is scored by the full graph, never approximately.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from pipeline.onnx_graph_cut import UNKNOWN_PROBE, GraphCut, GraphCutError, cut_graph
from pipeline.onnx_scoring import FeedBuilder, open_session, predict_positive
from pipeline.schema import CategoricalFeature, NumericFeature, Schema
from pipeline.table_file import TableFile, TableFileError, dump_table_file, load_table_file
from pipeline.tree_tables import InputLayout, TreeTables, TreeTablesError

VERIFY_RANDOM_ROWS = 2048
VERIFY_SINGLE_ROWS = 256
"""Verification rows also scored one call each (one-row calls have a path of their own)."""
LOAD_VERIFY_RANDOM_ROWS = 128
LOAD_VERIFY_SINGLE_ROWS = 32
"""The smaller verification of tables read from the artifact (they passed the whole one in training)."""
_VERIFY_SEED = 20261203
TABLES_FORMAT = 1
"""The layout of the saved tables; a file of another format is not read (the server compiles instead)."""


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

    def to_bytes(self) -> bytes:
        """The cut and the tables as a table file (:mod:`pipeline.table_file`), for the artifact."""
        cut_meta, cut_arrays, numeric_model = self._cut.state()
        tables_meta, tables_arrays = self._tables.state()
        arrays = {f"cut_{name}": array for name, array in cut_arrays.items()}
        arrays.update({f"tables_{name}": array for name, array in tables_arrays.items()})
        meta = {"format": TABLES_FORMAT, "cut": cut_meta, "tables": tables_meta}
        return dump_table_file(TableFile(meta, arrays, {"numeric_model": numeric_model}))


def build_table_scorer(model_bytes: bytes, schema: Schema, full_session: Any) -> TableScorer:
    """Compile and verify; TableScorerError (with the reason) if the tables cannot stand in."""
    try:
        cut = cut_graph(model_bytes, schema)
        tables = TreeTables.compile(cut.classifier, _layout(cut, schema))
    except (GraphCutError, TreeTablesError) as exc:
        raise TableScorerError(str(exc)) from exc
    scorer = TableScorer(schema, cut, tables, full_session)
    verify_table_scorer(scorer, schema, full_session, VERIFY_RANDOM_ROWS, VERIFY_SINGLE_ROWS)
    return scorer


def export_tables(model_bytes: bytes, schema: Schema) -> bytes:
    """Compile and verify the tables of ``model_bytes`` (training time): the artifact's table file."""
    return build_table_scorer(model_bytes, schema, open_session(model_bytes)).to_bytes()


def load_table_scorer(data: bytes, schema: Schema, full_session: Any) -> TableScorer:
    """The tables of an artifact's table file, verified against ``full_session`` (its own graph).

    TableScorerError (with the reason) if the file is unreadable, of another format, or its tables
    differ from the graph on any verification row.
    """
    try:
        content = load_table_file(data)
    except TableFileError as exc:
        raise TableScorerError(str(exc)) from None
    if content.meta.get("format") != TABLES_FORMAT:
        found = content.meta.get("format")
        raise TableScorerError(f"table format {found!r}; this server reads format {TABLES_FORMAT}")
    try:
        cut = GraphCut.from_state(
            content.meta["cut"], _prefixed(content.arrays, "cut_"), content.blobs["numeric_model"]
        )
        tables = TreeTables.from_state(content.meta["tables"], _prefixed(content.arrays, "tables_"))
    except (GraphCutError, TreeTablesError, KeyError) as exc:
        raise TableScorerError(f"{type(exc).__name__}: {exc}") from None
    except Exception as exc:  # ONNX Runtime's own exception types for an unloadable numeric model
        raise TableScorerError(f"the numeric model cannot be loaded: {type(exc).__name__}: {exc}") from None
    scorer = TableScorer(schema, cut, tables, full_session)
    try:
        verify_table_scorer(scorer, schema, full_session, LOAD_VERIFY_RANDOM_ROWS, LOAD_VERIFY_SINGLE_ROWS)
    except (IndexError, ValueError, TypeError) as exc:  # arrays that do not fit: found here, not in a request
        raise TableScorerError(f"the saved tables fail to score: {type(exc).__name__}: {exc}") from None
    return scorer


def _prefixed(arrays: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    return {name[len(prefix) :]: array for name, array in arrays.items() if name.startswith(prefix)}


def verify_table_scorer(
    scorer: TableScorer, schema: Schema, full_session: Any, random_rows: int, single_rows: int
) -> None:
    """Raise TableScorerError unless ``scorer`` returns the graph's probabilities on every
    verification row, in calls of every shape; ``single_rows`` of them also one call each."""
    tables = scorer._tables
    columns = verification_columns(schema, scorer._cut.probes, random_rows)
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
    single = np.linspace(0, len(expected) - 1, single_rows).astype(int)
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


def verification_columns(
    schema: Schema, probes: Sequence[str], random_rows: int = VERIFY_RANDOM_ROWS
) -> dict[str, list[object]]:
    """Every probe string in every categorical feature, then random rows mixing every spelling."""
    rng = random.Random(_VERIFY_SEED)  # noqa: S311 - reproducible rows; numpy.random's import is ~10 ms
    n_targeted = len(probes) * len(schema.categorical)
    n_rows = n_targeted + random_rows
    columns: dict[str, list[object]] = {}
    for feature in schema.features:
        if isinstance(feature, CategoricalFeature):
            spellings = _category_spellings(feature)
            values = rng.choices(spellings, k=n_rows)
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


def _numbers(rng: random.Random, feature: NumericFeature, n_rows: int) -> list[object]:
    """Missing, the bounds, whole numbers (as the data has them) and arbitrary fractions."""
    low, high = feature.minimum, feature.maximum
    values: list[object] = []
    for i in range(n_rows):
        kind = rng.randrange(10)
        fraction = low + rng.random() * (high - low)
        if kind < 6:
            values.append(float(round(fraction)))
        elif kind == 6:
            values.append(None)
        elif kind == 7:
            values.append(low if i % 2 else high)
        else:
            values.append(fraction)
    return values
