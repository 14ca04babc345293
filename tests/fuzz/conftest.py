"""Live servers for fuzzing: the real container and the full local gateway path (``bench/live.py``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.live import LocalPath, ServeRun

# Enough for a few hundred fuzz cases from one key (the default plan throttles at 50 req/s).
FUZZ_PLAN = {"api.throttle_rate": 10000.0, "api.throttle_burst": 5000, "api.quota_limit": 1_000_000}


@pytest.fixture(scope="module")
def live_container(quick_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeRun]:
    with ServeRun(quick_model_dir, tmp_path_factory.mktemp("fuzz-serve"), workers=2) as server:
        yield server


@pytest.fixture(scope="module")
def live_gateway(quick_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPath]:
    with LocalPath(quick_model_dir, tmp_path_factory.mktemp("fuzz-local"), overrides=FUZZ_PLAN) as path:
        yield path
