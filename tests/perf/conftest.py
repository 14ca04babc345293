"""Fixtures for the ONNX engine and parity-gate tests: one quick HGB pipeline and the held-out data."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def holdout():
    """The shipped ``adult.test`` split (the parity gate's held-out data)."""
    from pipeline.data import load_test

    return load_test()


@pytest.fixture(scope="session")
def quick_pipeline(quick_model_dir: Path):
    """The fitted sklearn pipeline of the shared quick artifact (read-only)."""
    from pipeline.artifact import load_artifact

    return load_artifact(quick_model_dir)
