"""Model selection on a small sample: threshold rule, determinism, no influence of the test split."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from pipeline.data import TEST_FILE, TRAIN_FILE, Dataset, load_dataset
from pipeline.metrics import best_f1_threshold, classification_metrics, group_metrics
from pipeline.training import TrainingConfig, config_from_options, train_model

SMALL = TrainingConfig(
    cv_folds=3, search_iterations=2, candidates=("logistic_regression", "hist_gradient_boosting"), n_jobs=1
)


def _sample(dataset: Dataset, n: int, seed: int) -> Dataset:
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(len(dataset.y), size=n, replace=False))
    frame = dataset.frame.iloc[idx].reset_index(drop=True)
    return Dataset(
        frame=frame, X=dataset.X.iloc[idx].reset_index(drop=True), y=dataset.y[idx], sources=dataset.sources
    )


@pytest.fixture(scope="module")
def small_train() -> Dataset:
    return _sample(load_dataset(TRAIN_FILE), 2000, 0)


@pytest.fixture(scope="module")
def small_test() -> Dataset:
    return _sample(load_dataset(TEST_FILE), 1000, 0)


@pytest.fixture(scope="module")
def small_result(small_train, small_test):
    return train_model(small_train, small_test, SMALL)


def test_best_f1_threshold_on_a_known_case():
    y = np.array([0, 0, 1, 1, 0, 1])
    p = np.array([0.1, 0.4, 0.35, 0.8, 0.7, 0.9])
    threshold = best_f1_threshold(y, p)
    f1 = classification_metrics(y, p, threshold)["f1"]
    assert threshold == 0.8  # the two top scores, both positives: P = 1, R = 2/3, F1 = 0.8
    assert f1 == pytest.approx(0.8)
    for other in p:
        assert classification_metrics(y, p, other)["f1"] <= f1


def test_threshold_is_the_best_out_of_fold_f1(small_result, small_train):
    threshold = small_result.threshold
    assert threshold == best_f1_threshold(small_train.y, small_result.chosen.oof)
    assert small_result.manifest["threshold"] == threshold
    best = classification_metrics(small_train.y, small_result.chosen.oof, threshold)["f1"]
    for other in np.linspace(0.05, 0.95, 19):
        assert classification_metrics(small_train.y, small_result.chosen.oof, other)["f1"] <= best + 1e-12
    assert small_result.manifest["metrics"]["chosen"]["out_of_fold_at_threshold"]["f1"] == best


def test_out_of_fold_predictions_cover_every_training_row_once(small_result, small_train):
    for candidate in small_result.candidates:
        assert candidate.oof.shape == small_train.y.shape
        assert not np.isnan(candidate.oof).any()
        assert len(candidate.fold_metrics) == 3


def test_chosen_model_has_the_best_mean_cv_roc_auc(small_result):
    manifest = small_result.manifest
    leader = max(manifest["metrics"]["cv"], key=lambda n: manifest["metrics"]["cv"][n]["roc_auc"]["mean"])
    assert manifest["model"]["name"] == leader
    scores = [manifest["metrics"]["cv"][leader]["roc_auc"]["mean"]]
    scores += [s["roc_auc"] for s in manifest["metrics"]["search"]]
    assert manifest["metrics"]["chosen"]["cv"]["roc_auc"]["mean"] == max(scores)
    assert manifest["training"]["search"] == {
        "family": leader,
        "planned": 2,
        "evaluated": 2,
        "truncated": False,
        "budget_seconds": SMALL.search_budget_seconds,
    }


def test_model_is_reproducible_and_blind_to_test_labels_and_worker_count(
    small_result, small_train, small_test
):
    """A second run with flipped test labels and 2 worker processes: the same model, bit for bit."""
    flipped = replace(small_test, y=1 - small_test.y)
    other = train_model(small_train, flipped, replace(SMALL, n_jobs=2))
    assert other.threshold == small_result.threshold
    assert other.manifest["model"] == small_result.manifest["model"]
    assert other.manifest["metrics"]["cv"] == small_result.manifest["metrics"]["cv"]
    assert other.manifest["metrics"]["search"] == small_result.manifest["metrics"]["search"]
    assert other.manifest.get("onnx", {}).get("sha256") == small_result.manifest.get("onnx", {}).get("sha256")
    assert np.array_equal(other.test_proba, small_result.test_proba)
    assert other.manifest["metrics"]["test"]["roc_auc"] == pytest.approx(
        1 - small_result.manifest["metrics"]["test"]["roc_auc"]
    )
    # The same fitted model: identical probabilities on every training row too. (Byte equality of
    # model.joblib is checked across fresh processes by the slow reproduction test: pickle bytes
    # also depend on which equal strings are the same object in the process.)
    assert np.array_equal(
        other.pipeline.predict_proba(small_train.X), small_result.pipeline.predict_proba(small_train.X)
    )


def test_zero_search_budget_stops_before_the_first_configuration(small_train):
    budget_zero = replace(SMALL, search_budget_seconds=0.0, candidates=("hist_gradient_boosting",))
    result = train_model(small_train, None, budget_zero)
    search = result.manifest["training"]["search"]
    assert (search["evaluated"], search["planned"], search["truncated"]) == (0, 2, True)
    assert result.manifest["model"]["searched_params"] == {}


def test_quick_mode_fits_one_model_at_threshold_one_half(small_train):
    result = train_model(small_train, None, TrainingConfig(quick=True))
    assert result.threshold == 0.5
    assert result.manifest["training"]["mode"] == "quick"
    assert result.manifest["metrics"]["cv"] == {}
    assert result.manifest["model"]["estimator"] == "sklearn.ensemble.HistGradientBoostingClassifier"
    lr = train_model(small_train, None, config_from_options(quick=True, candidates="lr"))
    assert lr.manifest["model"]["estimator"] == "sklearn.linear_model.LogisticRegression"


def test_group_metrics_on_a_known_case():
    y = np.array([1, 0, 1, 0, 1, 0])
    p = np.array([0.9, 0.8, 0.2, 0.1, 0.7, 0.3])
    groups = np.array(["a", "a", "a", "b", "b", "b"])
    out = group_metrics(y, p, groups, 0.5)
    assert out["a"]["n"] == 3
    assert out["a"]["selection_rate"] == pytest.approx(2 / 3)
    assert out["a"]["true_positive_rate"] == pytest.approx(0.5)
    assert out["a"]["false_positive_rate"] == pytest.approx(1.0)
    assert out["b"]["true_positive_rate"] == 1.0
    assert out["b"]["false_positive_rate"] == 0.0
    assert out["b"]["positive_rate"] == pytest.approx(1 / 3)


def test_model_card_reports_groups_and_threshold(small_result):
    card = small_result.model_card
    assert f"{small_result.threshold:.4f}" in card
    assert "### Test metrics by `sex`" in card and "### Test metrics by `race`" in card
    assert "| Female |" in card and "| White |" in card
    assert "doi.org/10.24432/C5XW20" in card
    assert "created" not in card.lower()  # no volatile fields: the card's checksum is reproducible
