"""SageMaker hyperparameters (all strings; SDK v2 and v3 spellings) -> TrainingConfig."""

from __future__ import annotations

import pytest

from pipeline.hyperparameters import HyperparameterError, parse_hyperparameters
from pipeline.training import TrainingConfig


def parse(raw):
    return parse_hyperparameters(raw)[0]


def test_empty_means_defaults():
    assert parse({}) == TrainingConfig()


@pytest.mark.parametrize("text", ["True", "true", "TRUE", "1", "yes", " on "])
def test_true_spellings(text):
    assert parse({"quick": text}).quick is True


@pytest.mark.parametrize("text", ["False", "false", "0", "no", "off"])
def test_false_spellings(text):
    assert parse({"quick": text}).quick is False


def test_numbers_as_strings_v2_and_v3():
    config = parse(
        {"cv_folds": "3", "search_budget_seconds": "12.5", "search_iterations": "2.0", "random_state": "7"}
    )
    assert (config.cv_folds, config.search_budget_seconds, config.search_iterations, config.random_state) == (
        3,
        12.5,
        2,
        7,
    )


@pytest.mark.parametrize(
    "text",
    ["lr,hgb", " lr , hgb ", '["lr", "hgb"]', "logistic_regression,hist_gradient_boosting", "LR,HGB,lr"],
)
def test_candidates_comma_or_json_list_with_aliases(text):
    assert parse({"candidates": text}).candidates == ("logistic_regression", "hist_gradient_boosting")


@pytest.mark.parametrize("text", ["None", "null", ""])
def test_unset_spellings_mean_default(text):
    assert parse({"cv_folds": text, "quick": text}) == TrainingConfig()


def test_json_scalars_written_by_hand_are_accepted():
    config = parse({"quick": True, "cv_folds": 4, "search_budget_seconds": 30.0, "candidates": ["rf"]})
    assert (config.quick, config.cv_folds, config.search_budget_seconds, config.candidates) == (
        True,
        4,
        30.0,
        ("random_forest",),
    )


def test_sagemaker_internal_keys_are_ignored_and_reported():
    config, ignored = parse_hyperparameters(
        {"_tuning_objective_metric": "test_roc_auc", "sagemaker_region": '"us-east-1"', "quick": "true"}
    )
    assert config.quick is True
    assert ignored == ["_tuning_objective_metric", "sagemaker_region"]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"cv_fold": "5"}, r"unknown hyperparameter 'cv_fold' \(supported: quick, cv_folds,"),
        ({"quick": "maybe"}, r"hyperparameter 'quick': expected true or false, got 'maybe'"),
        ({"cv_folds": "five"}, r"hyperparameter 'cv_folds': expected an integer, got 'five'"),
        ({"cv_folds": "2.5"}, r"hyperparameter 'cv_folds': expected an integer, got '2.5'"),
        ({"search_budget_seconds": "soon"}, r"'search_budget_seconds': expected a number, got 'soon'"),
        ({"search_budget_seconds": "inf"}, r"expected a finite number"),
        ({"cv_folds": "1"}, r"hyperparameter cv_folds must be between 2 and 20, got 1"),
        ({"search_budget_seconds": "-1"}, r"search_budget_seconds must be >= 0"),
        ({"candidates": "xgboost"}, r"hyperparameter candidates: unknown model candidate 'xgboost'"),
        ({"candidates": "[1, 2]"}, r"expected a list of names"),
        ({"n_jobs": "0"}, r"n_jobs must be between 1 and 64"),
        ({"random_state": "-3"}, r"random_state must be between 0 and 2\*\*32 - 1"),
        ({"quick": {"a": 1}}, r"hyperparameter 'quick': expected a string, got dict"),
    ],
)
def test_malformed_or_unknown_values_are_named(raw, message):
    with pytest.raises(HyperparameterError, match=message):
        parse_hyperparameters(raw)


def test_every_problem_is_reported_at_once():
    with pytest.raises(HyperparameterError) as info:
        parse_hyperparameters({"cv_fold": "5", "quick": "maybe", "random_state": "x"})
    text = str(info.value)
    assert "'cv_fold'" in text and "'quick'" in text and "'random_state'" in text
