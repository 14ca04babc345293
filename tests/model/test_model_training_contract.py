"""The SageMaker training contract, run as a subprocess (container/train) on a temporary /opt/ml tree."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from pipeline.artifact import load_artifact
from pipeline.data import TEST_FILE, TRAIN_FILE, load_dataset
from pipeline.schema import SCHEMA

REPO_ROOT = Path(__file__).resolve().parents[2]
TRAIN_SCRIPT = REPO_ROOT / "container" / "train"


@pytest.fixture(scope="module")
def small_csvs(tmp_path_factory) -> tuple[Path, Path]:
    """A 3,000-row training CSV (header layout) and a 1,000-row test CSV, from the real files."""
    folder = tmp_path_factory.mktemp("csv")
    columns = [*SCHEMA.names, "income"]
    train = load_dataset(TRAIN_FILE).frame[columns].sample(3000, random_state=1)
    test = load_dataset(TEST_FILE).frame[columns].sample(1000, random_state=1)
    train.to_csv(folder / "train.csv", index=False, na_rep="")
    test.to_csv(folder / "test.csv", index=False, na_rep="?")
    return folder / "train.csv", folder / "test.csv"


def make_tree(
    root: Path,
    *,
    hyperparameters: dict | str | None = None,
    channels: dict[str, list[Path] | None] | None = None,
    input_config: dict | None = None,
) -> Path:
    """A /opt/ml tree: config files and channel directories holding copies of the given files."""
    config = root / "input" / "config"
    config.mkdir(parents=True)
    if hyperparameters is not None:
        text = hyperparameters if isinstance(hyperparameters, str) else json.dumps(hyperparameters)
        (config / "hyperparameters.json").write_text(text)
    channels = channels or {}
    if input_config is None:
        input_config = {name: {"TrainingInputMode": "File", "ContentType": "text/csv"} for name in channels}
    (config / "inputdataconfig.json").write_text(json.dumps(input_config))
    for name, files in channels.items():
        directory = root / "input" / "data" / name
        directory.mkdir(parents=True)
        for path in files or []:
            (directory / path.name).write_bytes(path.read_bytes())
    (root / "model").mkdir()  # SageMaker creates it empty
    return root


def run_train(root: Path, timeout: float = 240) -> subprocess.CompletedProcess:
    env = {**os.environ, "OPT_ML": str(root), "PYTHONPATH": str(REPO_ROOT)}
    env.pop("TRAINING_JOB_NAME", None)
    return subprocess.run(
        [sys.executable, str(TRAIN_SCRIPT), "train"],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def failure(root: Path) -> str:
    return (root / "output" / "failure").read_text()


def assert_failed(root: Path, result: subprocess.CompletedProcess, message: str) -> None:
    assert result.returncode == 1, result.stderr
    text = failure(root)
    assert message in text[:1024], text
    assert message in result.stderr
    assert list((root / "model").iterdir()) == []  # nothing half-written
    assert not any(p.name.startswith(".model.tmp") for p in root.iterdir())


def test_quick_training_on_csv_channels_succeeds(tmp_path, small_csvs):
    train_csv, test_csv = small_csvs
    root = make_tree(
        tmp_path / "ml",
        hyperparameters={"quick": "True", "random_state": "3", "_tuning_objective_metric": "test_roc_auc"},
        channels={"train": [train_csv], "test": [test_csv]},
    )
    (root / "output").mkdir()
    (root / "output" / "failure").write_text("stale failure from an earlier run")
    result = run_train(root)
    assert result.returncode == 0, result.stderr
    assert not (root / "output" / "failure").exists()
    artifact = load_artifact(root / "model")
    manifest = artifact.manifest
    assert manifest["training"]["mode"] == "quick"
    assert manifest["training"]["config"]["random_state"] == 3
    assert manifest["training"]["data"]["train"]["rows"] == 3000
    assert list(manifest["training"]["data"]["train"]["files"]) == ["train.csv"]
    assert manifest["training"]["data"]["test"]["rows"] == 1000
    assert 0.85 < manifest["metrics"]["test"]["roc_auc"] < 0.97
    metrics = json.loads((root / "output" / "data" / "metrics.json").read_text())
    assert metrics["test"]["roc_auc"] == manifest["metrics"]["test"]["roc_auc"]
    assert "test_roc_auc=" in result.stdout  # for SageMaker metric definitions
    assert "ignoring SageMaker-internal hyperparameters: _tuning_objective_metric" in result.stderr


def test_full_mode_small_run_with_raw_uci_file_and_no_test_channel(tmp_path):
    raw = tmp_path / "adult-head.data"
    lines = gzip.decompress(TRAIN_FILE.read_bytes()).decode().splitlines()[:3000]
    raw.write_text("\n".join(lines) + "\n")
    root = make_tree(
        tmp_path / "ml",
        hyperparameters={"cv_folds": "2", "search_iterations": "1", "candidates": "lr,hgb", "n_jobs": "1"},
        channels={"train": [raw]},
    )
    result = run_train(root)
    assert result.returncode == 0, result.stderr
    manifest = load_artifact(root / "model").manifest
    assert manifest["training"]["mode"] == "full"
    assert set(manifest["metrics"]["cv"]) == {"logistic_regression", "hist_gradient_boosting"}
    assert manifest["training"]["search"]["evaluated"] == 1
    assert manifest["training"]["data"]["test"] is None
    assert "cv hist_gradient_boosting fold 2/2" in result.stderr  # progress names model and fold


def test_missing_train_channel(tmp_path, small_csvs):
    root = make_tree(tmp_path / "ml", channels={"test": [small_csvs[1]]}, input_config={"test": {}})
    assert_failed(root, run_train(root), "the 'train' channel is missing from inputdataconfig.json")


def test_missing_train_directory_without_input_config(tmp_path):
    root = make_tree(tmp_path / "ml")
    (root / "input" / "config" / "inputdataconfig.json").unlink()
    assert_failed(root, run_train(root), "channel 'train' is missing:")


def test_empty_train_channel(tmp_path):
    root = make_tree(tmp_path / "ml", channels={"train": []})
    (root / "input" / "data" / "train" / "adult.names").write_text("docs only")
    assert_failed(root, run_train(root), "channel 'train' is empty: no data files in")


def test_csv_with_wrong_columns(tmp_path, small_csvs):
    frame = pd.read_csv(small_csvs[0]).rename(columns={"age": "years"})
    bad = tmp_path / "bad.csv"
    frame.to_csv(bad, index=False)
    root = make_tree(tmp_path / "ml", hyperparameters={"quick": "true"}, channels={"train": [bad]})
    assert_failed(
        root, run_train(root), "bad.csv: wrong columns: missing column(s): age; unexpected column(s): years"
    )


def test_unknown_hyperparameter(tmp_path, small_csvs):
    root = make_tree(tmp_path / "ml", hyperparameters={"cv_fold": "3"}, channels={"train": [small_csvs[0]]})
    result = run_train(root)
    assert_failed(root, result, "unknown hyperparameter 'cv_fold'")
    assert failure(root).startswith("unknown hyperparameter 'cv_fold'")


def test_malformed_hyperparameter(tmp_path, small_csvs):
    root = make_tree(
        tmp_path / "ml", hyperparameters={"cv_folds": "five"}, channels={"train": [small_csvs[0]]}
    )
    assert_failed(root, run_train(root), "hyperparameter 'cv_folds': expected an integer, got 'five'")


def test_hyperparameters_file_that_is_not_json(tmp_path, small_csvs):
    root = make_tree(tmp_path / "ml", hyperparameters="{quick: true", channels={"train": [small_csvs[0]]})
    assert_failed(root, run_train(root), "hyperparameters.json is not valid JSON")


def test_pipe_mode_and_unknown_channel_are_refused(tmp_path, small_csvs):
    root = make_tree(
        tmp_path / "ml",
        channels={"train": [small_csvs[0]]},
        input_config={"train": {"TrainingInputMode": "Pipe"}},
    )
    assert_failed(root, run_train(root), "channel 'train' uses TrainingInputMode 'Pipe'")
    root2 = make_tree(
        tmp_path / "ml2",
        channels={"train": [small_csvs[0]]},
        input_config={"train": {}, "validation": {}},
    )
    assert_failed(root2, run_train(root2), "unknown input channel(s) 'validation'")


def test_multi_instance_job_is_refused(tmp_path, small_csvs):
    root = make_tree(tmp_path / "ml", channels={"train": [small_csvs[0]]})
    (root / "input" / "config" / "resourceconfig.json").write_text(
        json.dumps({"current_host": "algo-1", "hosts": ["algo-1", "algo-2"]})
    )
    assert_failed(root, run_train(root), "set InstanceCount (instance_count) to 1")


def test_model_dir_with_foreign_files_is_not_touched(tmp_path, small_csvs):
    root = make_tree(tmp_path / "ml", hyperparameters={"quick": "true"}, channels={"train": [small_csvs[0]]})
    (root / "model" / "keep.txt").write_text("mine")
    result = run_train(root)
    assert result.returncode == 1
    assert "is not empty (not artifact files: keep.txt)" in failure(root)
    assert [p.name for p in (root / "model").iterdir()] == ["keep.txt"]


def test_single_class_training_data(tmp_path, small_csvs):
    frame = pd.read_csv(small_csvs[0], keep_default_na=False)
    one_class = tmp_path / "one.csv"
    frame[frame["income"] == "<=50K"].to_csv(one_class, index=False)
    root = make_tree(tmp_path / "ml", hyperparameters={"quick": "true"}, channels={"train": [one_class]})
    assert_failed(root, run_train(root), "training data has only one class")


@pytest.mark.slow
def test_sigterm_stops_the_job_cleanly(tmp_path):
    """StopTrainingJob / MaxRuntime send SIGTERM: failure file, exit 2, no model, no staging left."""
    root = make_tree(tmp_path / "ml", hyperparameters={"n_jobs": "2"}, channels={"train": [TRAIN_FILE]})
    env = {**os.environ, "OPT_ML": str(root), "PYTHONPATH": str(REPO_ROOT)}
    process = subprocess.Popen(
        [sys.executable, str(TRAIN_SCRIPT), "train"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        for line in process.stderr:
            if "fold 1/5" in line:
                break
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 2, stderr
    assert failure(root).startswith("training stopped by SIGTERM")
    assert list((root / "model").iterdir()) == []
    assert not any(p.name.startswith(".model.tmp") for p in root.iterdir())


SWALLOWS_SIGTERM = """
import os, signal, sys, time
from pathlib import Path
from pipeline import sagemaker_training as st

st.STOP_GRACE_SECONDS = 1.0
signal.signal(signal.SIGTERM, st._stop_handler(st.TrainingPaths(Path(sys.argv[1]))))
announced = False
while True:  # a library that catches everything, so TrainingStopped never reaches main()
    try:
        if not announced:  # inside the try: a SIGTERM that lands during the print is swallowed too
            print("ready", flush=True)
            announced = True
        time.sleep(0.01)
    except BaseException:
        pass
"""


def test_sigterm_ends_the_job_even_if_a_library_swallows_the_exception(tmp_path):
    (tmp_path / "output").mkdir()
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-c", SWALLOWS_SIGTERM, str(tmp_path)], env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout.readline().strip() == "ready"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 2  # EXIT_INTERNAL
    finally:
        proc.kill()
    assert "stopped by SIGTERM" in (tmp_path / "output" / "failure").read_text()
