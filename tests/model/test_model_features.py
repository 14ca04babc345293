"""to_model_frame: every missing form means the same, and one record scores alone as in a batch."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.artifact import load_artifact
from pipeline.features import (
    CATEGORICAL_MISSING,
    FeatureError,
    InvalidFeatureValueError,
    MissingFeatureError,
    to_model_frame,
)
from pipeline.schema import EXAMPLE_RECORD, SCHEMA, CategoricalFeature, NumericFeature

BASE = dict(EXAMPLE_RECORD)
ABSENT = object()  # marker: leave the key out of the record
MISSING_FORMS = [None, math.nan, np.float64("nan"), pd.NA, "", "?", "  ?  ", "   "]


@pytest.fixture(scope="module")
def model(quick_model_dir):
    return load_artifact(quick_model_dir).pipeline


def _columns(records: list[dict]) -> dict[str, list]:
    """Column form of records; a key absent from a record is None in the batch."""
    names = [n for n in SCHEMA.names if any(n in r for r in records)]
    return {n: [r.get(n) for r in records] for n in names}


def _score(model, records: list[dict]) -> np.ndarray:
    return model.predict_proba(to_model_frame(_columns(records)))[:, 1]


def test_model_frame_dtypes_and_order_do_not_depend_on_row_count():
    one = to_model_frame({k: [v] for k, v in BASE.items()})
    many = to_model_frame({k: [v] * 5 for k, v in BASE.items()})
    assert list(one.columns) == SCHEMA.names
    assert one.dtypes.tolist() == many.dtypes.tolist()
    assert {str(one[n].dtype) for n in SCHEMA.numeric} == {"float64"}
    assert {str(one[n].dtype) for n in SCHEMA.categorical} == {"object"}


@pytest.mark.parametrize("form", [*MISSING_FORMS, ABSENT], ids=repr)
def test_every_missing_form_normalises_to_one_value(form):
    record = {k: v for k, v in BASE.items() if k != "workclass"}
    record["age"] = None if form is ABSENT else form
    if form is not ABSENT:
        record["workclass"] = form
    frame = to_model_frame({k: [v] for k, v in record.items()})
    assert frame.loc[0, "workclass"] == CATEGORICAL_MISSING
    assert np.isnan(frame.loc[0, "age"])


@pytest.mark.parametrize("form", [*MISSING_FORMS, ABSENT], ids=repr)
def test_every_missing_form_scores_like_none(model, form):
    """Regression for the single-row None pitfall: None must not score like an unknown category."""
    reference = _score(model, [{**BASE, "workclass": None}])
    record = {k: v for k, v in BASE.items() if k != "workclass"}
    if form is not ABSENT:
        record["workclass"] = form
    assert _score(model, [record])[0] == reference[0]
    # ... and it is encoded as the imputed level, not as an unknown category (all zeros).
    encoded = model[:-1].transform(to_model_frame(_columns([record])))
    names = list(model[:-1].get_feature_names_out())
    assert encoded[0, names.index("categorical__workclass_missing")] == 1.0


def test_values_are_stripped_and_numeric_strings_read():
    frame = to_model_frame({**{k: [v] for k, v in BASE.items()}, "sex": ["  Male "], "age": [" 39 "]})
    assert frame.loc[0, "sex"] == "Male"
    assert frame.loc[0, "age"] == 39.0


def test_required_feature_absent_is_named():
    columns = {k: [v] for k, v in BASE.items() if k != "age"}
    with pytest.raises(MissingFeatureError, match="'age'"):
        to_model_frame(columns)


def test_optional_feature_absent_is_missing():
    columns = {k: [v, v] for k, v in BASE.items() if k != "native_country"}
    frame = to_model_frame(columns)
    assert frame["native_country"].tolist() == [CATEGORICAL_MISSING] * 2


@pytest.mark.parametrize("bad", ["abc", True, [1], float("inf"), "-inf", {"a": 1}])
def test_non_numeric_value_in_numeric_feature_is_named(bad):
    with pytest.raises(InvalidFeatureValueError, match="'hours_per_week'"):
        to_model_frame({**{k: [v] for k, v in BASE.items()}, "hours_per_week": [bad]})


def test_numpy_scalars_and_series_are_read():
    columns = {k: pd.Series([v, v]) for k, v in BASE.items()}
    columns["age"] = np.array([np.int64(30), np.float32(31.5)], dtype=object)
    columns["sex"] = pd.Series(["Male", np.nan], dtype="str")
    frame = to_model_frame(columns)
    assert frame["age"].tolist() == [30.0, 31.5]
    assert frame["sex"].tolist() == ["Male", CATEGORICAL_MISSING]


def test_columns_of_different_lengths_are_refused():
    with pytest.raises(FeatureError, match="different lengths"):
        to_model_frame({**{k: [v] for k, v in BASE.items()}, "age": [1, 2]})


def test_extra_columns_are_ignored():
    frame = to_model_frame({**{k: [v] for k, v in BASE.items()}, "fnlwgt": [1], "income": [">50K"]})
    assert list(frame.columns) == SCHEMA.names


def _value(feature):
    missing = st.sampled_from(MISSING_FORMS)
    if isinstance(feature, NumericFeature):
        present = st.one_of(
            st.integers(int(feature.minimum), int(min(feature.maximum, 100_000))),
            st.floats(feature.minimum, min(feature.maximum, 100_000.0), allow_nan=False),
        )
    else:
        assert isinstance(feature, CategoricalFeature)
        known = st.sampled_from(feature.categories)
        padded = known.map(lambda c: f"  {c} ")
        present = st.one_of(known, padded, st.text(min_size=1, max_size=8))
    options = [present, present, missing]
    if feature.optional:
        options.append(st.just(ABSENT))
    return st.one_of(*options)


record_strategy = st.fixed_dictionaries({f.name: _value(f) for f in SCHEMA.features}).map(
    lambda r: {k: v for k, v in r.items() if v is not ABSENT}
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(records=st.lists(record_strategy, min_size=1, max_size=10))
def test_single_record_scores_bitwise_like_in_a_batch(model, records):
    batch = _score(model, records)
    singles = np.array([_score(model, [r])[0] for r in records])
    assert np.array_equal(batch, singles), (batch, singles)
