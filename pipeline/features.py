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


def _as_object_series(values: Sequence[object]) -> pd.Series:
    if isinstance(values, pd.Series | pd.Index):
        values = values.to_numpy(dtype=object)
    return pd.Series(list(values), dtype=object)


def _missing_mask(series: pd.Series) -> np.ndarray:
    """True where a value is None/NaN/NA or a missing token once whitespace is stripped."""
    na = series.isna().to_numpy()
    is_str = series.map(lambda v: isinstance(v, str)).to_numpy(dtype=bool)
    token = np.zeros(len(series), dtype=bool)
    if is_str.any():
        stripped = series[is_str].map(str.strip)
        token[is_str] = stripped.isin(MISSING_TOKENS).to_numpy()
    return na | token


def _numeric_column(name: str, values: Sequence[object]) -> np.ndarray:
    if isinstance(values, pd.Series | np.ndarray) and np.asarray(values).dtype.kind in "iuf":
        return np.asarray(values, dtype=np.float64).copy()
    series = _as_object_series(values)
    missing = _missing_mask(series)
    out = np.full(len(series), np.nan, dtype=np.float64)
    present = series[~missing]
    if len(present):
        if present.map(lambda v: isinstance(v, bool | np.bool_)).any():
            raise InvalidFeatureValueError(f"feature {name!r} is numeric; got a boolean")
        try:
            out[~missing] = pd.to_numeric(present.map(_strip_if_str), errors="raise").to_numpy(
                dtype=np.float64
            )
        except (ValueError, TypeError) as exc:
            raise InvalidFeatureValueError(f"feature {name!r} is numeric; {exc}") from None
    return out


def _categorical_column(values: Sequence[object]) -> np.ndarray:
    series = _as_object_series(values)
    missing = _missing_mask(series)
    out = np.full(len(series), CATEGORICAL_MISSING, dtype=object)
    present = series[~missing]
    if len(present):
        out[~missing] = present.map(lambda v: str(v).strip()).to_numpy(dtype=object)
    return out


def _strip_if_str(value: object) -> object:
    return value.strip() if isinstance(value, str) else value
