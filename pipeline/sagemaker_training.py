"""The SageMaker training contract: what ``docker run IMAGE train`` does.

Reads (under ``$OPT_ML``, default ``/opt/ml``, so it also runs on a laptop and in tests):

* ``input/config/hyperparameters.json``: see :mod:`pipeline.hyperparameters`;
* ``input/config/inputdataconfig.json``: the declared channels (absent on a laptop: then the
  channel directories decide);
* ``input/config/resourceconfig.json``: refuses multi-instance jobs (this algorithm is single-node);
* ``input/data/train/`` (required) and ``input/data/test/`` (optional): raw UCI files or CSV with a
  header, gzip or plain (format in ``data/README.md``).

Writes the artifact to ``model/`` (staged and moved into place: never half-written), the test
metrics to ``output/data/metrics.json`` (SageMaker uploads it as ``output.tar.gz``), and on any
failure the reason to ``output/failure`` (SageMaker shows its first 1024 characters as
``FailureReason``) with a non-zero exit code: 1 for a problem with the inputs, 2 for an internal
error. Exit code 0 means the model directory is complete.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import traceback
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from pipeline.progress import Progress

OPT_ML_ENV = "OPT_ML"
DEFAULT_OPT_ML = "/opt/ml"
TRAIN_CHANNEL = "train"
TEST_CHANNEL = "test"
CHANNELS = (TRAIN_CHANNEL, TEST_CHANNEL)
FAILURE_LIMIT = 1024
EXIT_OK, EXIT_BAD_INPUT, EXIT_INTERNAL = 0, 1, 2


class TrainingInputError(ValueError):
    """The job's configuration or channels are unusable (missing channel, Pipe mode, bad JSON...)."""


class TrainingStopped(Exception):
    """SIGTERM arrived (StopTrainingJob or MaxRuntimeInSeconds)."""


@dataclass(frozen=True)
class TrainingPaths:
    """Every path of the contract, derived from one root."""

    root: Path

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> TrainingPaths:
        """Root from ``$OPT_ML`` (default ``/opt/ml``)."""
        env = os.environ if environ is None else environ
        return cls(Path(env.get(OPT_ML_ENV) or DEFAULT_OPT_ML))

    @property
    def config_dir(self) -> Path:
        return self.root / "input" / "config"

    @property
    def hyperparameters(self) -> Path:
        return self.config_dir / "hyperparameters.json"

    @property
    def input_data_config(self) -> Path:
        return self.config_dir / "inputdataconfig.json"

    @property
    def resource_config(self) -> Path:
        return self.config_dir / "resourceconfig.json"

    def channel(self, name: str) -> Path:
        return self.root / "input" / "data" / name

    @property
    def model_dir(self) -> Path:
        return self.root / "model"

    @property
    def output_data(self) -> Path:
        return self.root / "output" / "data"

    @property
    def failure(self) -> Path:
        return self.root / "output" / "failure"


def main(argv: list[str] | None = None) -> int:
    """Run a training job per the contract; returns the process exit code (never raises)."""
    del argv  # SageMaker passes "train"; every setting comes from files under $OPT_ML
    paths = TrainingPaths.from_env()
    progress = Progress()
    previous_handler = signal.signal(signal.SIGTERM, _stop_handler(paths))
    try:
        paths.failure.unlink(missing_ok=True)  # a stale failure from an earlier local run misleads
        return _run(paths, progress)
    except TrainingStopped:
        return _fail(paths, STOPPED_MESSAGE, EXIT_INTERNAL)
    except Exception as exc:
        from pipeline.artifact import ArtifactError
        from pipeline.data import DataError
        from pipeline.features import FeatureError
        from pipeline.hyperparameters import HyperparameterError

        if isinstance(exc, TrainingInputError | HyperparameterError | DataError | FeatureError):
            return _fail(paths, str(exc), EXIT_BAD_INPUT)
        if isinstance(exc, ArtifactError):
            return _fail(paths, f"cannot write the model: {exc}", EXIT_BAD_INPUT)
        if isinstance(exc, ValueError):  # e.g. a training set with one class
            return _fail(paths, str(exc), EXIT_BAD_INPUT)
        traceback.print_exc(file=sys.stderr)
        return _fail(paths, f"internal error: {type(exc).__name__}: {exc}", EXIT_INTERNAL)
    finally:
        signal.signal(signal.SIGTERM, previous_handler)


def _run(paths: TrainingPaths, progress: Progress) -> int:
    from pipeline.hyperparameters import parse_hyperparameters
    from pipeline.training import train_to_directory

    job = os.environ.get("TRAINING_JOB_NAME", "(local run)")
    progress(f"training job {job}; OPT_ML={paths.root}")
    raw = _read_json_object(paths.hyperparameters, required=False) or {}
    config, ignored = parse_hyperparameters(raw)
    if ignored:
        progress(f"ignoring SageMaker-internal hyperparameters: {', '.join(ignored)}")
    progress(f"settings: {config}")
    _check_single_host(paths)
    declared = _declared_channels(paths)
    train_files = _channel_files(paths, TRAIN_CHANNEL, required=True, declared=declared)
    test_files = _channel_files(paths, TEST_CHANNEL, required=False, declared=declared)
    _, manifest = train_to_directory(
        train_files, test_files, config, paths.model_dir, progress, overwrite=True
    )
    _write_metrics(paths, manifest)
    progress(f"model written to {paths.model_dir}")
    return EXIT_OK


STOPPED_MESSAGE = "training stopped by SIGTERM (StopTrainingJob or MaxRuntimeInSeconds)"
# How long the main thread may take to unwind after SIGTERM before the process exits regardless.
# The exception can be swallowed (raised inside a __del__ or a library's cleanup) or held up
# (joblib waiting for busy workers); SageMaker would only SIGKILL 120 s later, with no reason given.
STOP_GRACE_SECONDS = 10.0


def _stop_handler(paths: TrainingPaths) -> Any:
    """A SIGTERM handler: raise TrainingStopped, and make sure the process ends even if it is lost."""

    def handler(signum: int, frame: FrameType | None) -> None:
        watchdog = threading.Timer(STOP_GRACE_SECONDS, _exit_stopped, args=(paths,))
        watchdog.daemon = True
        watchdog.start()
        raise TrainingStopped()

    return handler


def _exit_stopped(paths: TrainingPaths) -> None:
    os._exit(_fail(paths, STOPPED_MESSAGE, EXIT_INTERNAL))


def _fail(paths: TrainingPaths, message: str, code: int) -> int:
    """Write the failure file (the first FAILURE_LIMIT characters are what SageMaker shows)."""
    text = message.strip() or "training failed"
    print(f"training failed: {text}", file=sys.stderr, flush=True)
    try:
        paths.failure.parent.mkdir(parents=True, exist_ok=True)
        paths.failure.write_text(text + "\n", encoding="utf-8")
    except OSError as exc:
        print(f"could not write {paths.failure}: {exc}", file=sys.stderr, flush=True)
    return code


def _read_json_object(path: Path, *, required: bool) -> dict[str, Any] | None:
    if not path.is_file():
        if required:
            raise TrainingInputError(f"{path} is missing")
        return None
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TrainingInputError(f"{path.name} is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise TrainingInputError(f"{path.name} must hold a JSON object, got {type(value).__name__}")
    return value


def _check_single_host(paths: TrainingPaths) -> None:
    resource = _read_json_object(paths.resource_config, required=False)
    hosts = (resource or {}).get("hosts") or []
    if isinstance(hosts, list) and len(hosts) > 1:
        raise TrainingInputError(
            f"this algorithm trains on a single instance, but the job has {len(hosts)} hosts; "
            "set InstanceCount (instance_count) to 1"
        )


def _declared_channels(paths: TrainingPaths) -> dict[str, dict[str, Any]] | None:
    """The channels in inputdataconfig.json (None when the file is absent, as on a laptop)."""
    config = _read_json_object(paths.input_data_config, required=False)
    if config is None:
        return None
    unknown = sorted(set(config) - set(CHANNELS))
    if unknown:
        raise TrainingInputError(
            f"unknown input channel(s) {', '.join(map(repr, unknown))}; this algorithm reads "
            f"{TRAIN_CHANNEL!r} (required) and {TEST_CHANNEL!r} (optional)"
        )
    for name, spec in config.items():
        if not isinstance(spec, dict):
            raise TrainingInputError(f"inputdataconfig.json: channel {name!r} must be a JSON object")
        mode = spec.get("TrainingInputMode", "File")
        if mode not in ("File", "FastFile"):
            raise TrainingInputError(
                f"channel {name!r} uses TrainingInputMode {mode!r}; this algorithm reads files: "
                "use File or FastFile"
            )
    if TRAIN_CHANNEL not in config:
        raise TrainingInputError(
            f"the {TRAIN_CHANNEL!r} channel is missing from inputdataconfig.json; give the training data "
            f"as the {TRAIN_CHANNEL!r} input channel"
        )
    return config


def _channel_files(
    paths: TrainingPaths, name: str, *, required: bool, declared: dict[str, dict[str, Any]] | None
) -> list[Path] | None:
    from pipeline.data import data_files_in

    directory = paths.channel(name)
    if declared is not None and name not in declared:
        if directory.exists() and any(directory.iterdir()):
            raise TrainingInputError(
                f"{directory} has data but channel {name!r} is not in inputdataconfig.json"
            )
        return None
    if not directory.is_dir():
        if required or declared is not None:
            raise TrainingInputError(
                f"channel {name!r} is missing: {directory} does not exist"
                + ("; give the training data as the 'train' input channel" if required else "")
            )
        return None
    files = data_files_in(directory)
    if not files:
        raise TrainingInputError(
            f"channel {name!r} is empty: no data files in {directory} (hidden and *.names files are skipped)"
        )
    return files


def _write_metrics(paths: TrainingPaths, manifest: dict[str, Any]) -> None:
    """Metrics as JSON for output.tar.gz, and as ``name=value`` log lines for SageMaker metric regexes."""
    metrics = manifest.get("metrics", {})
    summary = {
        "model": manifest["model"]["name"],
        "threshold": manifest["threshold"],
        "test": metrics.get("test"),
        "chosen_cv": (metrics.get("chosen") or {}).get("cv"),
    }
    paths.output_data.mkdir(parents=True, exist_ok=True)
    (paths.output_data / "metrics.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    for key, value in (metrics.get("test") or {}).items():
        print(f"test_{key}={value:.6f}", flush=True)
