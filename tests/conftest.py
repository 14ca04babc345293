"""Shared fixtures: a quick-trained artifact and the released artifact, each in a temporary directory."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
RELEASED_TARBALL = REPO_ROOT / "model" / "model.tar.gz"


@pytest.fixture(scope="session")
def quick_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An artifact directory from ``train --quick`` (one default gradient-boosting fit, threshold 0.5).

    Built through the same code path as the CLI (load the shipped files, train, write atomically),
    in a few seconds. Treat it as read-only: it is shared by the whole session.
    """
    from pipeline.data import TEST_FILE, TRAIN_FILE
    from pipeline.training import TrainingConfig, train_to_directory

    model_dir = tmp_path_factory.mktemp("quick-model") / "model"
    train_to_directory([TRAIN_FILE], [TEST_FILE], TrainingConfig(quick=True), model_dir)
    return model_dir


@pytest.fixture(scope="session")
def released_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The committed ``model/model.tar.gz``, safely extracted (read-only by convention)."""
    from pipeline.artifact import safe_extract

    if not RELEASED_TARBALL.is_file():
        pytest.fail(f"{RELEASED_TARBALL} is missing; run `make train` to build the released artifact")
    return safe_extract(RELEASED_TARBALL, tmp_path_factory.mktemp("released-model") / "model")
