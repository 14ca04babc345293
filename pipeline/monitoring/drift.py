"""Compare captured traffic with the training baseline: PSI, missing and unknown rates, predictions.

Population stability index of a distribution over buckets, expected (baseline) shares ``e`` and
actual (traffic) shares ``a``::

    PSI = sum_i (a_i - e_i) * ln(a_i / e_i)

Shares are floored at :data:`SHARE_FLOOR` so an empty bucket on either side gives a large but
finite term. Buckets: the baseline's numeric bins or categories (rare ones pooled), ``(unknown)``
for categories training never saw, and ``(missing)``. Each check has a level: ``ok``, ``warn``
(PSI only) or ``alert``; any alert makes the monitor exit non-zero.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

import numpy as np
import pandas as pd

from pipeline.monitoring.baseline import MISSING, UNKNOWN, category_bucket, numeric_bin_counts
from pipeline.monitoring.thresholds import Thresholds

SHARE_FLOOR = 1e-4
OK, WARN, ALERT = "ok", "warn", "alert"


def psi(expected: Sequence[float], actual: Sequence[float], floor: float = SHARE_FLOOR) -> float:
    """The population stability index of ``actual`` against ``expected`` (same buckets, shares)."""
    if len(expected) != len(actual):
        raise ValueError(f"bucket counts differ: {len(expected)} expected, {len(actual)} actual")
    total = 0.0
    for e, a in zip(expected, actual, strict=True):
        e, a = max(float(e), floor), max(float(a), floor)
        total += (a - e) * math.log(a / e)
    return total


def compare(
    baseline: dict[str, Any],
    frame: pd.DataFrame,
    probabilities: np.ndarray | None,
    thresholds: Thresholds,
) -> dict[str, Any]:
    """The drift result: one entry per feature, the predictions, and the overall level."""
    features = {
        name: _feature(name, fb, frame[name], thresholds)
        for name, fb in baseline["features"].items()
        if name in frame
    }
    prediction = None
    if baseline.get("prediction") and probabilities is not None and len(probabilities):
        prediction = _prediction(baseline["prediction"], probabilities, thresholds)
    levels = [f["level"] for f in features.values()] + ([prediction["level"]] if prediction else [])
    records = len(frame)
    enough = records >= thresholds.min_records
    alerts = [f"{name}: {reason}" for name, f in features.items() for reason in f["reasons"]]
    if prediction:
        alerts += [f"prediction: {reason}" for reason in prediction["reasons"]]
    return {
        "records": records,
        "enough_records": enough,
        "level": (ALERT if ALERT in levels else WARN if WARN in levels else OK) if enough else "insufficient",
        "findings": alerts,
        "drifted_features": sorted(name for name, f in features.items() if f["level"] == ALERT),
        "features": features,
        "prediction": prediction,
        "thresholds": asdict(thresholds),
    }


def _level_for_psi(value: float, thresholds: Thresholds) -> str:
    if value >= thresholds.psi_alert:
        return ALERT
    return WARN if value >= thresholds.psi_warn else OK


def _feature(name: str, fb: dict[str, Any], column: pd.Series, thresholds: Thresholds) -> dict[str, Any]:
    if fb["kind"] == "numeric":
        buckets, expected, actual, unknown = _numeric_buckets(fb, column.to_numpy(dtype=np.float64))
    else:
        buckets, expected, actual, unknown = _categorical_buckets(fb, column.to_numpy(dtype=object))
    value = psi(expected, actual)
    missing_then, missing_now = fb["missing_share"], actual[-1]
    level = _level_for_psi(value, thresholds)
    reasons = []
    if level != OK:
        reasons.append(_psi_reason(value, thresholds))
    if abs(missing_now - missing_then) >= thresholds.missing_rate_alert:
        level = ALERT
        reasons.append(
            f"missing rate {missing_now:.1%} vs {missing_then:.1%} in training "
            f"(alert at a change of {thresholds.missing_rate_alert:.0%} points)"
        )
    if unknown is not None and unknown >= thresholds.unknown_rate_alert:
        level = ALERT
        reasons.append(
            f"{unknown:.1%} of values are categories training never saw "
            f"(alert at {thresholds.unknown_rate_alert:.0%})"
        )
    return {
        "kind": fb["kind"],
        "psi": round(value, 6),
        "level": level,
        "reasons": reasons if level != OK else [],
        "missing_rate": {"baseline": missing_then, "observed": round(missing_now, 6)},
        "unknown_rate": None if unknown is None else round(unknown, 6),
        "buckets": buckets,
        "baseline_shares": [round(e, 6) for e in expected],
        "observed_shares": [round(a, 6) for a in actual],
    }


def _numeric_buckets(
    fb: dict[str, Any], values: np.ndarray
) -> tuple[list[str], list[float], list[float], None]:
    edges = fb["edges"]
    missing = float(np.isnan(values).mean()) if len(values) else 0.0
    counts = numeric_bin_counts(values, edges)
    present = counts.sum()
    actual = [(1 - missing) * c / present if present else 0.0 for c in counts]
    expected = [(1 - fb["missing_share"]) * s for s in fb["shares"]]
    return [*_bin_labels(edges), MISSING], [*expected, fb["missing_share"]], [*actual, missing], None


def _categorical_buckets(
    fb: dict[str, Any], values: np.ndarray
) -> tuple[list[str], list[float], list[float], float]:
    shares: dict[str, float] = fb["shares"]
    pooled = frozenset(fb["pooled"])
    counts = Counter(category_bucket(str(v), shares, pooled) for v in values)
    total = max(len(values), 1)
    buckets = [*shares, UNKNOWN, MISSING]
    expected = [*shares.values(), 0.0, fb["missing_share"]]
    actual = [counts.get(b, 0) / total for b in buckets]
    return buckets, expected, actual, counts.get(UNKNOWN, 0) / total


def _prediction(pb: dict[str, Any], probabilities: np.ndarray, thresholds: Thresholds) -> dict[str, Any]:
    counts = numeric_bin_counts(np.asarray(probabilities, dtype=np.float64), pb["edges"])
    actual = list(counts / max(counts.sum(), 1))
    value = psi(pb["shares"], actual)
    rate = float(np.mean(np.asarray(probabilities) >= pb["threshold"]))
    level = _level_for_psi(value, thresholds)
    reasons = [_psi_reason(value, thresholds)] if level != OK else []
    if abs(rate - pb["positive_rate"]) >= thresholds.positive_rate_alert:
        level = ALERT
        reasons.append(
            f"positive rate {rate:.1%} vs {pb['positive_rate']:.1%} at the threshold "
            f"(alert at a change of {thresholds.positive_rate_alert:.0%} points)"
        )
    return {
        "psi": round(value, 6),
        "level": level,
        "reasons": reasons,
        "records": len(probabilities),
        "positive_rate": {"baseline": pb["positive_rate"], "observed": round(rate, 6)},
        "threshold": pb["threshold"],
        "source": pb.get("source"),
        "buckets": _bin_labels(pb["edges"]),
        "baseline_shares": pb["shares"],
        "observed_shares": [round(float(a), 6) for a in actual],
    }


def _psi_reason(value: float, thresholds: Thresholds) -> str:
    return f"PSI {value:.3f} (warn {thresholds.psi_warn}, alert {thresholds.psi_alert})"


def _bin_labels(edges: Sequence[float]) -> list[str]:
    if not edges:
        return ["all"]
    cuts = [f"{e:g}" for e in edges]
    return [f"<= {cuts[0]}", *(f"({lo}, {hi}]" for lo, hi in itertools.pairwise(cuts)), f"> {cuts[-1]}"]
