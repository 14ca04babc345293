"""``docker run IMAGE train`` on a mounted /opt/ml tree, as a SageMaker training job runs it."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from .conftest import DATA_DIR, REPO_ROOT, TrainingRun, make_opt_ml, run_train
from .docker_cli import Container, docker, give_back

pytestmark = pytest.mark.docker


def _pins() -> dict[str, str]:
    pins = {}
    for line in (REPO_ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("#")[0].strip().split("==")
            pins[name.lower().replace("_", "-")] = version
    return pins


def test_train_writes_a_complete_model(trained: TrainingRun, model_dir: Path) -> None:
    assert trained.exit_code == 0
    for name in ("model.joblib", "manifest.json", "model_card.md"):
        assert (model_dir / name).stat().st_size > 0, name
    assert not (trained.opt_ml / "output" / "failure").exists()
    metrics = json.loads((trained.opt_ml / "output" / "data" / "metrics.json").read_text(encoding="utf-8"))
    assert metrics, "training wrote empty test metrics"
    manifest = json.loads((model_dir / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["library_versions"]["scikit-learn"] == _pins()["scikit-learn"]


def test_the_host_loads_what_the_image_trained(model_dir: Path) -> None:
    """Same pins inside and outside: the artifact verifies and loads in the project's own venv."""
    from pipeline.artifact import load_artifact

    artifact = load_artifact(model_dir)
    assert 0.0 < artifact.threshold < 1.0


def test_train_with_an_empty_channel_fails_with_a_reason(image: str, tmp_path: Path) -> None:
    opt_ml = make_opt_ml(tmp_path / "ml", {"quick": "true"}, {"train": []})
    try:
        run = run_train(image, opt_ml, timeout=120)
        assert run.exit_code != 0, run.logs
        reason = (opt_ml / "output" / "failure").read_text(encoding="utf-8")
        assert "train" in reason and len(reason) <= 1025, reason
        assert list((opt_ml / "model").iterdir()) == []  # never a half-written artifact
    finally:
        give_back(opt_ml, image)


def test_docker_stop_ends_a_running_training_job_promptly(image: str, tmp_path: Path) -> None:
    """StopTrainingJob is `docker stop` (SIGTERM, SIGKILL 120 s later). `train` runs as PID 1 without
    an init, so it must handle SIGTERM itself: it stops at once and explains why in output/failure."""
    opt_ml = make_opt_ml(tmp_path / "ml", {"quick": "false"}, {"train": [DATA_DIR / "adult.data.gz"]})
    container = Container(image)
    try:
        container.run("train", options=("-v", f"{opt_ml}:/opt/ml"))
        deadline = time.monotonic() + 120
        while not re.search(r"training data: \d+ rows", container.logs()):  # past start-up, now fitting
            assert container.state()["Running"], container.logs()
            assert time.monotonic() < deadline, container.logs()
            time.sleep(0.2)
        started = time.monotonic()
        docker("stop", "-t", "60", container.name, timeout=90)
        stop_seconds = time.monotonic() - started
        state = container.state()
        assert stop_seconds < 20, f"train ignored SIGTERM and waited for SIGKILL ({stop_seconds:.1f} s)"
        assert state["ExitCode"] not in (0, 137), container.logs()
        reason = (opt_ml / "output" / "failure").read_text(encoding="utf-8")
        assert "SIGTERM" in reason
        assert not (opt_ml / "model" / "model.joblib").exists()
    finally:
        container.remove()
        give_back(opt_ml, image)
