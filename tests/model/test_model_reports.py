"""Evaluation reports, EDA output and the model CLI (train / package / evaluate / eda)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pipeline.artifact import load_artifact
from pipeline.data import TEST_FILE, TRAIN_FILE, load_dataset
from pipeline.eda import association_matrix, findings, write_eda
from pipeline.evaluation import evaluate_artifact, write_training_reports
from pipeline.metrics import classification_metrics
from pipeline.schema import SCHEMA
from pipeline.training import TrainingConfig, train_model

REPO_ROOT = Path(__file__).resolve().parents[2]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def frames():
    return load_dataset(TRAIN_FILE).frame, load_dataset(TEST_FILE).frame


def _assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC, path
    assert len(data) > 10_000, path  # a real plot, not an empty canvas


def test_training_reports_match_the_manifest(tmp_path):
    train = load_dataset(TRAIN_FILE)
    test = load_dataset(TEST_FILE)
    idx = np.arange(0, len(train.y), 16)
    small = type(train)(
        train.frame.iloc[idx].reset_index(drop=True),
        train.X.iloc[idx].reset_index(drop=True),
        train.y[idx],
        train.sources,
    )
    config = TrainingConfig(cv_folds=2, search_iterations=1, candidates=("logistic_regression",), n_jobs=1)
    result = train_model(small, test, config)
    written = write_training_reports(tmp_path, result, result.manifest)
    names = sorted(p.name for p in written)
    assert names == sorted(
        [
            "comparison.json",
            "comparison.md",
            "model_card.md",
            "cv_roc_pr.png",
            "roc_curve.png",
            "pr_curve.png",
            "confusion_matrix.png",
            "calibration.png",
        ]
    )
    for path in written:
        if path.suffix == ".png":
            _assert_png(path)
    comparison = json.loads((tmp_path / "comparison.json").read_text())
    assert comparison["test"]["at_threshold"] == result.manifest["metrics"]["test"]
    assert comparison["chosen"]["threshold"] == result.threshold
    assert [c["name"] for c in comparison["candidates"]] == ["logistic_regression"]
    markdown = (tmp_path / "comparison.md").read_text()
    assert "| logistic_regression | " in markdown
    assert f"{result.manifest['metrics']['test']['roc_auc']:.4f}" in markdown
    assert (tmp_path / "model_card.md").read_text() == result.model_card


def test_evaluate_artifact_recomputes_the_test_metrics(quick_model_dir, tmp_path):
    artifact = load_artifact(quick_model_dir)
    test = load_dataset(TEST_FILE)
    report = evaluate_artifact(artifact, test, tmp_path)
    proba = artifact.pipeline.predict_proba(test.X)[:, 1]
    assert report["at_threshold"] == classification_metrics(test.y, proba, artifact.threshold)
    assert report["at_threshold"] == artifact.manifest["metrics"]["test"]
    assert set(report["by_group"]["sex"]) == {"Female", "Male"}
    assert sum(g["n"] for g in report["by_group"]["race"].values()) == len(test.y)
    assert json.loads((tmp_path / "test_metrics.json").read_text()) == report
    for name in ("roc_curve.png", "pr_curve.png", "confusion_matrix.png", "calibration.png"):
        _assert_png(tmp_path / name)


def test_eda_findings_are_computed_from_the_data(frames):
    train, test = frames
    f = findings(train, test)
    assert f["rows"] == {"train": 32561, "test": 16281}
    assert f["missing"] == {"workclass": 1836, "occupation": 1843, "native_country": 583}
    assert f["education_pairs"] == f["education_levels"] == f["education_num_levels"] == 16
    assert f["categories_unseen_in_test"] == {"native_country": ["Holand-Netherlands"]}
    assert min(f["association_with_target"], key=f["association_with_target"].get) == "fnlwgt"
    matrix = association_matrix(train)
    assert matrix.loc["education", "education_num"] == pytest.approx(1.0)
    assert np.allclose(matrix.to_numpy(), matrix.to_numpy().T)


def test_write_eda_writes_figures_and_summary(frames, tmp_path):
    train, test = frames
    written = write_eda(tmp_path, train.iloc[::10], test.iloc[::10])
    assert sorted(p.name for p in written) == sorted(
        [
            "class_balance.png",
            "missingness.png",
            "numeric_by_class.png",
            "categorical_rates_household.png",
            "categorical_rates_work.png",
            "associations.png",
            "summary.md",
        ]
    )
    for path in written[:-1]:
        _assert_png(path)
    summary = (tmp_path / "summary.md").read_text()
    assert f"{len(train.iloc[::10])} training rows" in summary
    assert "`education` duplicates `education_num`" in summary


def _cli(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "pipeline", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_cli_train_quick_package_evaluate(tmp_path):
    sample = tmp_path / "test.csv"
    load_dataset(TEST_FILE).frame[[*SCHEMA.names, "income"]].iloc[::20].to_csv(sample, index=False, na_rep="")
    model_dir = tmp_path / "model"
    trained = _cli("train", "--quick", "--no-test", "--output", str(model_dir))
    assert trained.returncode == 0, trained.stderr
    assert "final fit of hist_gradient_boosting" in trained.stderr
    tarball = tmp_path / "release" / "model.tar.gz"
    packaged = _cli("package", "--model-dir", str(model_dir), "--output", str(tarball))
    assert packaged.returncode == 0, packaged.stderr
    evaluated = _cli("evaluate", "--model", str(tarball), "--test", str(sample))
    assert evaluated.returncode == 0, evaluated.stderr
    report = json.loads(evaluated.stdout)
    assert report["rows"] == len(range(0, 16281, 20))
    assert 0.85 < report["at_threshold"]["roc_auc"] < 0.97
    again = _cli("train", "--quick", "--no-test", "--output", str(model_dir))
    assert again.returncode == 1
    assert "is not empty" in again.stderr and "pass overwrite" in again.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["train", "--quick", "--candidates", "xgboost"],
            "error: candidates: unknown model candidate 'xgboost'",
        ),
        (["train", "--quick", "--cv-folds", "1"], "error: cv_folds must be between 2 and 20"),
        (["evaluate", "--model", "does/not/exist"], "error: model directory does/not/exist does not exist"),
    ],
)
def test_cli_errors_are_one_clear_line(args, message, tmp_path):
    result = _cli(*args, "--output", str(tmp_path / "m")) if args[0] == "train" else _cli(*args)
    assert result.returncode == 1
    assert message in result.stderr
    assert "Traceback" not in result.stderr
