"""PSI arithmetic and the drift comparison on distributions whose answer is known by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from pipeline.monitoring.baseline import compute_baseline
from pipeline.monitoring.drift import ALERT, OK, WARN, compare, psi
from pipeline.monitoring.thresholds import Thresholds
from pipeline.schema import CategoricalFeature, NumericFeature, Schema


def test_identical_distributions_have_zero_psi() -> None:
    assert psi([0.2, 0.3, 0.5], [0.2, 0.3, 0.5]) == 0.0


def test_psi_of_a_known_shift() -> None:
    # (0.25 - 0.5) ln(0.25/0.5) + (0.75 - 0.5) ln(0.75/0.5)
    expected = -0.25 * math.log(0.5) + 0.25 * math.log(1.5)
    assert psi([0.5, 0.5], [0.25, 0.75]) == pytest.approx(expected, abs=1e-12)
    assert psi([0.5, 0.5], [0.25, 0.75]) == pytest.approx(0.274653, abs=1e-6)


def test_psi_is_symmetric_in_its_arguments() -> None:
    assert psi([0.1, 0.9], [0.4, 0.6]) == pytest.approx(psi([0.4, 0.6], [0.1, 0.9]))


def test_an_empty_bucket_is_floored_not_infinite() -> None:
    value = psi([1.0, 0.0], [0.9, 0.1])
    assert value == pytest.approx(-0.1 * math.log(0.9) + (0.1 - 1e-4) * math.log(0.1 / 1e-4), rel=1e-9)
    assert math.isfinite(value)


def test_bucket_counts_must_match() -> None:
    with pytest.raises(ValueError, match="bucket counts differ"):
        psi([0.5, 0.5], [1.0])


SCHEMA = Schema(
    features=(
        NumericFeature("x", "a number", 0, 100),
        CategoricalFeature("c", "a category", ("a", "b", "r"), optional=True),
    )
)


def _frame(x: list[float], c: list[str]) -> pd.DataFrame:
    return pd.DataFrame({"x": np.asarray(x, dtype=np.float64), "c": np.asarray(c, dtype=object)})


@pytest.fixture
def baseline() -> dict:
    # x uniform over 1..100 (deciles 10.9, 20.8, ...); c: 60 % a, 39.5 % b, 0.5 % r (pooled), no missing.
    x = list(range(1, 101)) * 20
    c = ["a"] * 1200 + ["b"] * 790 + ["r"] * 10
    proba = np.linspace(0, 1, 2000)
    return compute_baseline(_frame(x, c), SCHEMA, proba, 0.5, data="unit", prediction_source="test")


def test_the_baseline_bins_and_shares(baseline: dict) -> None:
    x = baseline["features"]["x"]
    assert len(x["edges"]) == 9 and x["shares"] == [0.1] * 10
    c = baseline["features"]["c"]
    assert c["shares"] == {"a": 0.6, "b": 0.395, "(other)": 0.005} and c["pooled"] == ["r"]
    assert baseline["prediction"]["positive_rate"] == 0.5
    assert baseline["prediction"]["source"] == "test"


def test_the_same_population_is_quiet(baseline: dict) -> None:
    result = compare(
        baseline,
        _frame(list(range(1, 101)) * 5, ["a"] * 300 + ["b"] * 200),
        np.linspace(0, 1, 500),
        Thresholds(min_records=100),
    )
    assert result["level"] == OK and result["findings"] == []
    assert result["features"]["x"]["psi"] == pytest.approx(0.0, abs=1e-9)


def test_a_shifted_numeric_feature_alerts_with_its_psi(baseline: dict) -> None:
    # Everything in the top two deciles: 0.5 per bin where 0.1 was expected, 1e-4 in the other eight.
    shifted = _frame([95.0] * 250 + [85.0] * 250, ["a"] * 300 + ["b"] * 200)
    result = compare(baseline, shifted, None, Thresholds(min_records=100))
    expected = 2 * (0.5 - 0.1) * math.log(0.5 / 0.1) + 8 * (1e-4 - 0.1) * math.log(1e-4 / 0.1)
    assert result["features"]["x"]["psi"] == pytest.approx(expected, abs=1e-5)
    assert result["level"] == ALERT and result["drifted_features"] == ["x"]


def test_missing_and_unknown_rates_alert_on_their_own(baseline: dict) -> None:
    c = ["a"] * 290 + ["b"] * 190 + [""] * 10 + ["zzz"] * 10  # 2 % missing, 2 % unknown
    result = compare(baseline, _frame(list(range(1, 101)) * 5, c), None, Thresholds(min_records=100))
    feature = result["features"]["c"]
    assert feature["missing_rate"] == {"baseline": 0.0, "observed": 0.02}
    assert feature["unknown_rate"] == 0.02
    assert feature["level"] == ALERT  # unknown 2 % >= 1 %
    assert any("never saw" in r for r in feature["reasons"])
    assert not any("missing rate" in r for r in feature["reasons"])  # 2 points < 5


def test_a_moderate_shift_only_warns(baseline: dict) -> None:
    c = ["a"] * 200 + ["b"] * 300  # PSI(0.6/0.395/0.005 -> 0.4/0.6/0) ~ 0.17
    result = compare(baseline, _frame(list(range(1, 101)) * 5, c), None, Thresholds(min_records=100))
    assert 0.1 <= result["features"]["c"]["psi"] < 0.25
    assert result["features"]["c"]["level"] == WARN and result["level"] == WARN


def test_positive_rate_change_alerts(baseline: dict) -> None:
    result = compare(
        baseline,
        _frame(list(range(1, 101)) * 5, ["a"] * 300 + ["b"] * 200),
        np.full(500, 0.9),
        Thresholds(min_records=100),
    )
    assert result["prediction"]["positive_rate"] == {"baseline": 0.5, "observed": 1.0}
    assert result["prediction"]["level"] == ALERT and result["level"] == ALERT


def test_too_few_records_is_not_a_verdict(baseline: dict) -> None:
    result = compare(baseline, _frame([95.0] * 50, ["a"] * 50), None, Thresholds(min_records=100))
    assert result["level"] == "insufficient"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"psi_warn": 0.3, "psi_alert": 0.2}, "0 < warn <= alert"),
        ({"psi_warn": 0.0}, "0 < warn <= alert"),
        ({"missing_rate_alert": 1.5}, "missing_rate_alert"),
        ({"unknown_rate_alert": 0.0}, "unknown_rate_alert"),
        ({"min_records": 0}, "min_records"),
    ],
)
def test_threshold_problems_are_named(kwargs: dict, message: str) -> None:
    problems = Thresholds(**kwargs).problems()
    assert len(problems) == 1 and message in problems[0]
