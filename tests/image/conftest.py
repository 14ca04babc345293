"""Fixtures for the container image tests: a real Docker engine, the image built once per session,
and a model trained by the image's own ``train`` on a mounted /opt/ml tree.

Without a reachable engine these tests skip with instructions, except in CI (CI=true), where that is a
failure: CI starts the engine with scripts/docker-up.sh and the image must really be tested there.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from .docker_cli import Container, docker, engine_problem, give_back, inspect

REPO_ROOT = Path(__file__).resolve().parents[2]
DATA_DIR = REPO_ROOT / "data"
IMAGE = os.environ.get("BYOC_TEST_IMAGE", "adult-income-byoc:test")
BUILD_TIMEOUT_S = 1200
TRAIN_TIMEOUT_S = 300

# Numbers the session measured; printed in the terminal summary (build time, size, cold start...).
METRICS: dict[str, str] = {}


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if METRICS:
        terminalreporter.section("container image")
        for name, value in METRICS.items():
            terminalreporter.write_line(f"{name}: {value}")


@pytest.fixture(scope="session")
def docker_engine() -> None:
    """A reachable Docker engine, or skip (developer machine) / fail (CI=true)."""
    problem = engine_problem()
    if problem is None:
        return
    message = f"Docker engine not reachable ({problem}); start one with `bash scripts/docker-up.sh` (as root)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true: the image tests must run, not skip. {message}", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def image(docker_engine: None) -> str:
    """The image, built from the repository root exactly as documented (layer cache allowed)."""
    start = time.monotonic()
    proc = docker(
        "build", "-f", "container/Dockerfile", "-t", IMAGE, ".",
        timeout=BUILD_TIMEOUT_S, check=False, cwd=REPO_ROOT,
    )  # fmt: skip
    elapsed = time.monotonic() - start
    if proc.returncode != 0:
        pytest.fail(f"docker build failed after {elapsed:.0f} s:\n{(proc.stdout + proc.stderr)[-4000:]}")
    cached = proc.stdout.count("Using cache")
    METRICS["build"] = f"{elapsed:.1f} s ({cached} cached steps)"
    METRICS["image size"] = f"{inspect('image', IMAGE)['Size'] / 1e6:.0f} MB"
    return IMAGE


@dataclass(frozen=True)
class TrainingRun:
    """One ``docker run IMAGE train`` on a mounted /opt/ml tree."""

    opt_ml: Path
    exit_code: int
    logs: str
    seconds: float

    @property
    def model_dir(self) -> Path:
        return self.opt_ml / "model"


def make_opt_ml(root: Path, hyperparameters: dict[str, str], channels: dict[str, list[Path]]) -> Path:
    """A SageMaker-shaped /opt/ml tree: config files and File-mode channel directories."""
    config = root / "input" / "config"
    config.mkdir(parents=True)
    (config / "hyperparameters.json").write_text(json.dumps(hyperparameters), encoding="utf-8")
    (config / "inputdataconfig.json").write_text(
        json.dumps({name: {"ContentType": "text/csv", "TrainingInputMode": "File"} for name in channels}),
        encoding="utf-8",
    )
    (config / "resourceconfig.json").write_text(
        json.dumps({"current_host": "algo-1", "hosts": ["algo-1"], "network_interface_name": "eth0"}),
        encoding="utf-8",
    )
    for name, files in channels.items():
        channel = root / "input" / "data" / name
        channel.mkdir(parents=True)
        for file in files:
            shutil.copy(file, channel / file.name)
    (root / "model").mkdir()
    (root / "output").mkdir()
    return root


def run_train(image: str, opt_ml: Path, timeout: float = TRAIN_TIMEOUT_S) -> TrainingRun:
    """``docker run IMAGE train`` with ``opt_ml`` mounted as /opt/ml; always removes the container."""
    container = Container(image)
    try:
        container.run("train", options=("-v", f"{opt_ml}:/opt/ml"))
        code = container.wait_exit(timeout)
        return TrainingRun(opt_ml, code, container.logs(), time.monotonic() - container.started_at)
    finally:
        container.remove()


@pytest.fixture(scope="session")
def trained(image: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrainingRun]:
    """A quick training job (train + test channels, as the cloud job passes them) run by the image."""
    opt_ml = make_opt_ml(
        tmp_path_factory.mktemp("train-ok") / "ml",
        {"quick": "true"},
        {"train": [DATA_DIR / "adult.data.gz"], "test": [DATA_DIR / "adult.test.gz"]},
    )
    run = run_train(image, opt_ml)
    METRICS["train (quick, in the image)"] = f"{run.seconds:.1f} s, exit {run.exit_code}"
    yield run
    give_back(opt_ml, image)


@pytest.fixture(scope="session")
def model_dir(trained: TrainingRun) -> Path:
    """The artifact the image's ``train`` wrote (fails, with the logs, if training did not succeed)."""
    if trained.exit_code != 0:
        pytest.fail(f"docker run IMAGE train exited {trained.exit_code}:\n{trained.logs[-4000:]}")
    return trained.model_dir
