"""Turn caller or training data into exactly the frame the fitted pipeline consumes.

``to_model_frame`` is the single gate between data and model, used by training, evaluation and
serving alike, so a record means the same thing wherever it comes from. It normalises every
spelling of "missing" to one representation per kind:

* numeric features: ``float64`` with ``NaN`` (the numeric imputer's ``missing_values``);
* categorical features: ``object`` dtype holding stripped ``str`` values, with ``""`` for missing
  (the categorical imputer's ``missing_values``). A string sentinel, not ``NaN``/``None``, because
  ``None`` is *not* seen as missing by ``SimpleImputer(missing_values=np.nan)`` in a single-row
  object column (it would score as an unknown category), and because ONNX's string imputer needs a
  string ``missing_values``.

Dtypes never depend on the number of rows, so a record scores bit-for-bit the same alone as in a batch.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from pipeline.schema import MISSING_TOKENS, SCHEMA, Schema

CATEGORICAL_MISSING = ""
"""The one representation of a missing categorical value inside the model frame."""


class FeatureError(ValueError):
    """Input data cannot be turned into a model frame (the message names the feature)."""


class MissingFeatureError(FeatureError):
    """A required feature column is absent."""


class InvalidFeatureValueError(FeatureError):
    """A value cannot be read as its feature's kind (e.g. text in a numeric feature)."""


ColumnData = Mapping[str, Sequence[object]] | pd.DataFrame


def to_model_frame(columns: ColumnData, schema: Schema = SCHEMA) -> pd.DataFrame:
    """Return a DataFrame with the schema's features, in order, with normalised dtypes and missing values.

    ``columns`` maps feature names to equally long sequences (or is a DataFrame). Columns not in the
    schema are ignored (raw files carry ``fnlwgt``, ``education``, the target). An absent optional
    feature becomes an all-missing column; an absent required one raises ``MissingFeatureError``.
    Missing values may be ``None``, ``NaN``, ``pd.NA``, ``""``, ``"?"`` or whitespace around those.
    """
    n_rows = _row_count(columns, schema)
    data: dict[str, pd.Series] = {}
    index = pd.RangeIndex(n_rows)
    for feature in schema.features:
        if feature.name in columns:
            values = columns[feature.name]
        elif feature.optional:
            values = [None] * n_rows
        else:
            raise MissingFeatureError(f"required feature {feature.name!r} is missing")
        # Explicit dtypes: pandas 3 would otherwise infer its ``str`` dtype for text, differently
        # for one row (None) and many (NaN); the model frame must not depend on the row count.
        if feature.kind == "numeric":
            data[feature.name] = pd.Series(
                _numeric_column(feature.name, values), index=index, dtype=np.float64
            )
        else:
            data[feature.name] = pd.Series(_categorical_column(values), index=index, dtype=object)
    return pd.DataFrame(data, columns=schema.names, index=index)


def _row_count(columns: ColumnData, schema: Schema) -> int:
    if isinstance(columns, pd.DataFrame):
        return len(columns)
    lengths = {name: len(columns[name]) for name in schema.names if name in columns}
    if not lengths:
        raise MissingFeatureError("no feature columns given")
    if len(set(lengths.values())) > 1:
        raise FeatureError(f"feature columns have different lengths: {lengths}")
    return next(iter(lengths.values()))


def _values(values: Sequence[object]) -> Sequence[object]:
    """A plain sequence to iterate (Series/Index give their object values, not their index)."""
    if isinstance(values, pd.Series | pd.Index):
        return values.to_numpy(dtype=object)
    return values


def _numeric_column(name: str, values: Sequence[object]) -> np.ndarray:
    if isinstance(values, pd.Series | np.ndarray) and np.asarray(values).dtype.kind in "iuf":
        out = np.asarray(values, dtype=np.float64).copy()  # fast path: already numeric (training)
    else:
        # A per-value loop: for the 1-100 rows of a request it is several times faster than pandas'
        # vectorised calls, whose fixed cost per column dominates at that size.
        items = _values(values)
        out = np.empty(len(items), dtype=np.float64)
        for i, value in enumerate(items):
            out[i] = _to_float(name, value)
    if np.isinf(out).any():
        raise InvalidFeatureValueError(f"feature {name!r} is numeric; got an infinite value")
    return out


def _to_float(name: str, value: object) -> float:
    if value is None:
        return math.nan
    if isinstance(value, bool | np.bool_):
        raise InvalidFeatureValueError(f"feature {name!r} is numeric; got a boolean")
    if isinstance(value, str):
        text = value.strip()
        if text in MISSING_TOKENS:
            return math.nan
        try:
            return float(text)
        except ValueError:
            raise InvalidFeatureValueError(f"feature {name!r} is numeric; got {value!r}") from None
    if isinstance(value, float | int | np.floating | np.integer):
        return float(value)
    if value is pd.NA or value is pd.NaT:
        return math.nan
    raise InvalidFeatureValueError(f"feature {name!r} is numeric; got {type(value).__name__} {value!r}")


def _categorical_column(values: Sequence[object]) -> np.ndarray:
    items = _values(values)
    out = np.empty(len(items), dtype=object)
    for i, value in enumerate(items):
        out[i] = _to_category(value)
    return out


def _to_category(value: object) -> str:
    if isinstance(value, str):
        text = value.strip()
        return CATEGORICAL_MISSING if text in MISSING_TOKENS else text
    if value is None or value is pd.NA or value is pd.NaT:
        return CATEGORICAL_MISSING
    if isinstance(value, float | np.floating) and math.isnan(value):
        return CATEGORICAL_MISSING
    return str(value).strip()
