"""Every setting of the serving stack, read from environment variables in this one place.

``serve``, ``gunicorn.conf.py`` and the Flask app all call :func:`load_settings`; nothing else
reads the environment. This module imports only the standard library, so ``serve`` can use it
before any native library (numpy, OpenMP) is loaded.

| Variable | Default | Meaning |
|---|---|---|
| ``OPT_ML`` | ``/opt/ml`` | SageMaker's root directory |
| ``MODEL_DIR`` | ``$OPT_ML/model`` | the extracted artifact (read-only: nothing is written there) |
| ``SAGEMAKER_BIND_TO_PORT`` | ``8080`` | the port nginx listens on |
| ``SERVE_LISTEN_HOST`` | ``0.0.0.0`` | the address nginx listens on (tests use ``127.0.0.1``) |
| ``SAGEMAKER_MODEL_SERVER_WORKERS`` | CPU count | gunicorn workers (alias ``MODEL_SERVER_WORKERS``) |
| ``SAGEMAKER_MODEL_SERVER_TIMEOUT`` | ``60`` | seconds a request may take (alias ``MODEL_SERVER_TIMEOUT``) |
| ``MAX_PAYLOAD_MB`` | ``SAGEMAKER_MAX_PAYLOAD_IN_MB``, else 6 | body limit in MiB (6 MiB = 6,291,456 bytes) |
| ``SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT`` | ``application/json`` | output for a missing/``*/*`` Accept |
| ``SERVE_RUN_DIR`` | a new temporary directory | nginx config, pid, temp files, gunicorn socket |
| ``SERVE_SCORING_CHUNK_ROWS`` | ``16384`` | rows per engine call (the deadline is checked between calls) |
| ``SERVE_SHUTDOWN_GRACE`` | ``25`` | seconds to drain after SIGTERM (SageMaker kills at 30) |
| ``SERVE_LOG_LEVEL`` | ``info`` | gunicorn's log level (alias ``SAGEMAKER_CONTAINER_LOG_LEVEL``) |
| ``MODEL_SERVER_ENGINE`` | ``auto`` | ``auto`` (the manifest's ``engine``), or force ``sklearn`` / ``onnx`` |
| ``SERVE_TABLE_SCORING_MIN_ROWS`` | ``256`` | ONNX engine calls this large use the tree tables; ``0``: off |
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

MIB = 1024 * 1024
"""SageMaker's "6 MB" real-time limit is 6 MiB: botocore's ``Body`` maximum is 6,291,456 bytes."""

SUPPORTED_LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


class SettingsError(ValueError):
    """An environment variable has a value that cannot be used (the message names it)."""


@dataclass(frozen=True)
class Settings:
    """The resolved configuration of one serving process tree."""

    opt_ml: Path
    model_dir: Path
    port: int
    listen_host: str
    workers: int
    timeout_s: int
    max_payload_mb: int
    default_accept: str
    run_dir: Path | None
    scoring_chunk_rows: int
    shutdown_grace_s: float
    log_level: str
    engine: str = "auto"
    table_scoring_min_rows: int = 256

    @property
    def max_payload_bytes(self) -> int:
        """The largest accepted request body, inclusive (nginx and the app enforce the same number)."""
        return self.max_payload_mb * MIB

    @property
    def request_deadline_s(self) -> float:
        """Budget for one request inside the app; past it the app answers 504 itself."""
        return float(self.timeout_s)

    @property
    def gunicorn_timeout_s(self) -> int:
        """Gunicorn kills a worker silent this long: only a backstop for work the app cannot interrupt."""
        return self.timeout_s + 5

    @property
    def nginx_proxy_timeout_s(self) -> int:
        """nginx waits longer than gunicorn, so a killed worker yields a JSON 502, never an nginx 504 race."""
        return self.timeout_s + 10

    @property
    def ready_file(self) -> Path:
        """Written once a worker serves a loaded, self-checked model; nginx answers /ping from it."""
        if self.run_dir is None:
            raise SettingsError("SERVE_RUN_DIR is not set; serve creates it and passes it on")
        return self.run_dir / "health" / "ready.json"

    @property
    def gunicorn_socket(self) -> Path:
        """The unix socket between nginx and gunicorn (inside the run directory)."""
        if self.run_dir is None:
            raise SettingsError("SERVE_RUN_DIR is not set; serve creates it and passes it on")
        return self.run_dir / "gunicorn.sock"


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Resolve all settings from ``env`` (default: the process environment)."""
    env = os.environ if env is None else env
    opt_ml = Path(env.get("OPT_ML") or "/opt/ml")
    model_dir = Path(env.get("MODEL_DIR") or opt_ml / "model")
    payload_default = env.get("SAGEMAKER_MAX_PAYLOAD_IN_MB") or "6"
    run_dir = env.get("SERVE_RUN_DIR")
    log_level = (env.get("SERVE_LOG_LEVEL") or env.get("SAGEMAKER_CONTAINER_LOG_LEVEL") or "info").lower()
    if log_level not in SUPPORTED_LOG_LEVELS:
        # SageMaker's own variable may carry numeric levels (e.g. "20"); fall back rather than fail.
        log_level = "info"
    return Settings(
        opt_ml=opt_ml,
        model_dir=model_dir,
        port=_int(env, ("SAGEMAKER_BIND_TO_PORT",), "8080", low=1, high=65535),
        listen_host=env.get("SERVE_LISTEN_HOST") or "0.0.0.0",  # noqa: S104 - a container must listen on all
        workers=_int(
            env,
            ("SAGEMAKER_MODEL_SERVER_WORKERS", "MODEL_SERVER_WORKERS"),
            str(os.cpu_count() or 1),
            low=1,
            high=256,
        ),
        timeout_s=_int(
            env, ("SAGEMAKER_MODEL_SERVER_TIMEOUT", "MODEL_SERVER_TIMEOUT"), "60", low=1, high=3600
        ),
        max_payload_mb=_int(env, ("MAX_PAYLOAD_MB",), payload_default, low=1, high=100),
        default_accept=env.get("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT") or "application/json",
        run_dir=Path(run_dir) if run_dir else None,
        scoring_chunk_rows=_int(env, ("SERVE_SCORING_CHUNK_ROWS",), "16384", low=1, high=1_000_000),
        shutdown_grace_s=float(_int(env, ("SERVE_SHUTDOWN_GRACE",), "25", low=0, high=3600)),
        log_level=log_level,
        engine=_engine(env),
        table_scoring_min_rows=_int(env, ("SERVE_TABLE_SCORING_MIN_ROWS",), "256", low=0, high=1_000_000),
    )


ENGINE_CHOICES = ("auto", "sklearn", "onnx")


def _engine(env: Mapping[str, str]) -> str:
    """MODEL_SERVER_ENGINE: which scoring engine to run (see inference.onnx_engine.choose_engine)."""
    value = (env.get("MODEL_SERVER_ENGINE") or "auto").strip().lower()
    if value not in ENGINE_CHOICES:
        raise SettingsError(f"MODEL_SERVER_ENGINE={value!r} must be one of {', '.join(ENGINE_CHOICES)}")
    return value


def _int(env: Mapping[str, str], names: tuple[str, ...], default: str, *, low: int, high: int) -> int:
    """The first of ``names`` that is set, as an int within [low, high]; else ``default``."""
    name, raw = next(((n, env[n]) for n in names if env.get(n)), (names[0], default))
    try:
        value = int(raw.strip())
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not an integer") from None
    if not low <= value <= high:
        raise SettingsError(f"{name}={value} is outside the allowed range {low}..{high}")
    return value


NATIVE_THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)
"""Native thread pools to pin to one thread per worker process.

With one gunicorn worker per core, HistGradientBoosting's OpenMP regions would otherwise start one
spinning thread per core in every worker, and throughput collapses as concurrency rises (see
docs on serving performance). Values already set in the environment are kept.
"""


def pin_native_threads(env: dict[str, str] | os._Environ[str]) -> None:
    """Set every NATIVE_THREAD_VARIABLES entry to "1" in ``env`` unless it is already set.

    Must run before numpy/scipy/OpenMP are loaded, since those read the variables at load time.
    """
    for name in NATIVE_THREAD_VARIABLES:
        if not env.get(name):
            env[name] = "1"
