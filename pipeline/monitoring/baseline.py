"""The training baseline the drift monitor compares traffic with, stored in ``manifest.json``.

Computed once at training time from the model frame of the training split (adult.data), so the
monitor needs no training data at run time:

* numeric features: decile edges of the non-missing training values (duplicates dropped: a feature
  that is mostly 0, like ``capital_gain``, gets fewer bins) and the share of training rows in each
  right-closed bin ``(edge[i-1], edge[i]]``, plus the missing share;
* categorical features: the share of each training category, categories rarer than
  :data:`RARE_SHARE` pooled into ``(other)`` (a handful of rows per category makes PSI noisy), plus
  the missing share;
* predictions: decile edges of the predicted probability and the share per bin, and the positive
  rate at the decision threshold. The source is the chosen configuration's out-of-fold predictions
  on the same training rows (a full run): the same population as the feature baseline, scored by
  models that did not see the row. A quick run has no out-of-fold predictions and uses the held-out
  test split's predictions instead, when there is one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from pipeline.features import CATEGORICAL_MISSING
from pipeline.schema import CategoricalFeature, Schema

BASELINE_VERSION = 1
QUANTILES = tuple(q / 10 for q in range(1, 10))
"""Deciles: ten bins keep the sampling noise of PSI small at a few hundred records (about 9/n)."""
RARE_SHARE = 0.01
"""Categories with a smaller training share are pooled into :data:`OTHER`."""
OTHER = "(other)"
UNKNOWN = "(unknown)"
MISSING = "(missing)"
_DIGITS = 6


def compute_baseline(
    frame: pd.DataFrame,
    schema: Schema,
    probabilities: np.ndarray | None,
    threshold: float,
    *,
    data: str,
    prediction_source: str | None,
) -> dict[str, Any]:
    """The baseline section of the manifest for the model frame ``frame``.

    ``probabilities`` are the positive-class predictions the prediction baseline is made from
    (``prediction_source`` says which ones); None leaves the prediction baseline out.
    """
    features: dict[str, Any] = {}
    for feature in schema.features:
        column = frame[feature.name]
        if isinstance(feature, CategoricalFeature):
            features[feature.name] = _categorical(column)
        else:
            features[feature.name] = _numeric(column.to_numpy(dtype=np.float64))
    baseline: dict[str, Any] = {
        "version": BASELINE_VERSION,
        "data": data,
        "rows": len(frame),
        "features": features,
        "prediction": None,
    }
    if probabilities is not None:
        baseline["prediction"] = {
            "source": prediction_source,
            **prediction_baseline(np.asarray(probabilities, dtype=np.float64), threshold),
        }
    return baseline


def prediction_baseline(probabilities: np.ndarray, threshold: float) -> dict[str, Any]:
    """Decile bins of the probabilities and the positive rate at ``threshold``."""
    valid = probabilities[np.isfinite(probabilities)]
    summary = _numeric(valid)
    return {
        "rows": len(valid),
        "edges": summary["edges"],
        "shares": summary["shares"],
        "threshold": threshold,
        "positive_rate": round(float(np.mean(valid >= threshold)), _DIGITS),
    }


def numeric_bin_counts(values: np.ndarray, edges: Sequence[float]) -> np.ndarray:
    """Counts of the non-missing ``values`` per right-closed bin of ``edges`` (len(edges) + 1 bins)."""
    present = values[~np.isnan(values)]
    index = np.searchsorted(np.asarray(edges, dtype=np.float64), present, side="left")
    return np.bincount(index, minlength=len(edges) + 1)


def category_bucket(value: str, shares: dict[str, float], pooled: frozenset[str]) -> str:
    """The baseline bucket a categorical model-frame value falls in."""
    if value == CATEGORICAL_MISSING:
        return MISSING
    if value in shares:
        return value
    return OTHER if value in pooled else UNKNOWN


def _numeric(values: np.ndarray) -> dict[str, Any]:
    present = values[~np.isnan(values)]
    if len(present) == 0:
        return {"kind": "numeric", "edges": [], "shares": [1.0], "missing_share": 1.0 if len(values) else 0.0}
    edges = sorted({float(v) for v in np.quantile(present, QUANTILES)})
    counts = numeric_bin_counts(present, edges)
    return {
        "kind": "numeric",
        "edges": edges,
        "shares": _round(counts / len(present)),
        "missing_share": round(1 - len(present) / len(values), _DIGITS),
        "mean": round(float(present.mean()), _DIGITS),
    }


def _categorical(column: pd.Series) -> dict[str, Any]:
    values = column.to_numpy(dtype=object)
    total = len(values)
    present = values[values != CATEGORICAL_MISSING]
    names, counts = np.unique(present.astype(str), return_counts=True) if len(present) else ([], [])
    shares: dict[str, float] = {}
    pooled: list[str] = []
    other = 0
    for name, count in zip(names, counts, strict=True):
        if count / total < RARE_SHARE:
            pooled.append(str(name))
            other += int(count)
        else:
            shares[str(name)] = round(int(count) / total, _DIGITS)
    if pooled:
        shares[OTHER] = round(other / total, _DIGITS)
    return {
        "kind": "categorical",
        "shares": shares,
        "pooled": pooled,
        "missing_share": round(1 - len(present) / total, _DIGITS) if total else 0.0,
    }


def _round(shares: np.ndarray) -> list[float]:
    return [round(float(s), _DIGITS) for s in shares]
