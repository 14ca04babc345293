"""Run the exported ONNX graph: build its per-column input tensors and open a pinned session.

Used by both the packaging-time parity gate (:mod:`pipeline.onnx_export`) and the serving
``OnnxEngine``, so the gate checks exactly the code path that serves requests. Needs only numpy and
onnxruntime (no pandas, no scikit-learn).

The graph has one ``[N, 1]`` input per feature, named like the feature: ``float32`` for numeric
features (``NaN`` = missing, imputed inside the graph) and strings for categorical ones (``""`` =
missing, the same sentinel :func:`pipeline.features.to_model_frame` uses, because ONNX's string
imputer needs a string ``missing_values``). Values are normalised the way ``to_model_frame`` does it:
every spelling of "missing" (None, NaN, ``""``, ``"?"``, surrounding whitespace) means missing, and
category strings are stripped.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from pipeline.schema import MISSING_TOKENS, Schema

ONNX_CATEGORICAL_MISSING = ""
PROBABILITY_OUTPUT = "probabilities"


class OnnxInputError(ValueError):
    """Columns cannot be turned into the graph's inputs (the message names the feature)."""


def open_session(model: bytes | str, intra_op_threads: int = 1) -> Any:
    """An ``onnxruntime.InferenceSession`` with pinned, non-spinning thread pools.

    One intra-op and one inter-op thread with sequential execution by default: each gunicorn worker
    owns one core, and ONNX Runtime's default (one thread per core, spin-waiting) oversubscribes the
    machine as soon as two workers are busy. Spinning is disabled so an idle pool thread never
    burns a core another worker needs.
    """
    import onnxruntime as ort  # heavy import, only where a session is needed

    options = ort.SessionOptions()
    options.intra_op_num_threads = intra_op_threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    options.log_severity_level = 3  # warnings about unused initialisers are noise here
    options.enable_cpu_mem_arena = False  # the arena keeps a big batch's peak per worker for good
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


class FeedBuilder:
    """Turns column data (``name -> sequence``) into the graph's input dict.

    Known clean category strings pass through a set lookup; only other values (None, tokens,
    padded or unknown strings) take the slower normalising path, so the common case stays a single
    list comprehension per column.
    """

    def __init__(self, schema: Schema) -> None:
        self._schema = schema
        self._numeric = schema.numeric
        self._categorical = schema.categorical
        self._optional = {f.name for f in schema.features if f.optional}
        self._clean: dict[str, frozenset[str]] = {
            f.name: frozenset(f.categories) | {ONNX_CATEGORICAL_MISSING}
            for f in schema.features
            if f.kind == "categorical"
        }

    def row_count(self, columns: Mapping[str, Sequence[object]]) -> int:
        """The common length of the feature columns present in ``columns``."""
        lengths = {len(columns[name]) for name in self._schema.names if name in columns}
        if not lengths:
            raise OnnxInputError("no feature columns given")
        if len(lengths) > 1:
            raise OnnxInputError("feature columns have different lengths")
        return lengths.pop()

    def build(self, columns: Mapping[str, Sequence[object]]) -> dict[str, np.ndarray]:
        """The input dict for ``session.run``; absent optional features become all-missing columns."""
        n_rows = self.row_count(columns)
        feed = self.build_numeric(columns, n_rows)
        for name in self._categorical:
            values = self._column(columns, name, n_rows)
            clean = self._clean[name]
            normalised = [v if v in clean else normalise_category(v) for v in values]
            feed[name] = np.array(normalised, dtype=object).reshape(-1, 1)
        return feed

    def build_numeric(self, columns: Mapping[str, Sequence[object]], n_rows: int) -> dict[str, np.ndarray]:
        """The numeric features' input tensors (what :meth:`build` puts in the feed for them)."""
        return {name: _numeric_tensor(name, self._column(columns, name, n_rows)) for name in self._numeric}

    def _column(self, columns: Mapping[str, Sequence[object]], name: str, n_rows: int) -> Sequence[object]:
        if name in columns:
            return columns[name]
        if name in self._optional:
            return [None] * n_rows
        raise OnnxInputError(f"required feature {name!r} is missing")


def _numeric_tensor(name: str, values: Sequence[object]) -> np.ndarray:
    # numpy maps None to NaN for float dtypes; strings (tokens, padded numbers) need the slow path.
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        array = np.array([_parse_number(name, v) for v in values], dtype=np.float64)
    # Cast from float64 like the sklearn pipeline sees it, so rounding happens once, at the graph edge.
    return array.reshape(-1, 1)


def _parse_number(name: str, value: object) -> float:
    if value is None or type(value).__name__ == "NAType":
        return math.nan
    if isinstance(value, str):
        stripped = value.strip()
        if stripped in MISSING_TOKENS:
            return math.nan
        try:
            return float(stripped)
        except ValueError:
            raise OnnxInputError(f"feature {name!r} is numeric; got {value!r}") from None
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise OnnxInputError(f"feature {name!r} is numeric; got {value!r}") from None


def normalise_category(value: object) -> str:
    """The graph's spelling of a category value: stripped, and ``""`` for every kind of missing."""
    if value is None:
        return ONNX_CATEGORICAL_MISSING
    if isinstance(value, float | np.floating) and math.isnan(value):
        return ONNX_CATEGORICAL_MISSING
    if type(value).__name__ == "NAType":  # pandas.NA, without importing pandas
        return ONNX_CATEGORICAL_MISSING
    text = str(value).strip()
    return ONNX_CATEGORICAL_MISSING if text in MISSING_TOKENS else text


def predict_positive(session: Any, feed: Mapping[str, np.ndarray]) -> np.ndarray:
    """P(positive class) per row, as float64 (the graph computes in float32)."""
    (probabilities,) = session.run([PROBABILITY_OUTPUT], dict(feed))
    return probabilities[:, 1].astype(np.float64)
