"""Load the model once and decide whether the server is healthy; ``/ping`` reports this state.

Loading never raises: a missing, corrupt or mismatched artifact gives a not-ready state with the
reason, logged once, so the server still starts and ``/ping`` explains the failure instead of the
container crash-looping silently.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inference.request_log import log_event


@dataclass(frozen=True)
class ModelState:
    """The loaded engine (None when loading failed), readiness and why not."""

    engine: Any | None
    ready: bool
    reason: str | None = None
    info: dict[str, Any] = field(default_factory=dict)


def load_model_state(model_dir: Path) -> ModelState:
    """Load the engine from ``model_dir``, run its self-check and log the outcome as one JSON line."""
    from inference.engine import load_engine, self_check  # heavy imports: numpy, pandas, sklearn

    started = time.perf_counter()
    info: dict[str, Any] = {"model_dir": str(model_dir)}
    try:
        engine = load_engine(model_dir)
    except Exception as exc:  # every failure mode must become a reason, never a crash
        return _not_ready(None, f"model could not be loaded: {_describe(exc)}", info)
    info.update(
        engine=engine.name,
        threshold=engine.threshold,
        model=_model_summary(engine.manifest),
    )
    if hasattr(engine, "tables_status"):
        info["tree_tables"] = engine.tables_status
    try:
        self_check(engine)
    except Exception as exc:
        return _not_ready(engine, f"model self-check failed: {_describe(exc)}", info)
    info["load_seconds"] = round(time.perf_counter() - started, 3)
    log_event("info", "model_ready", **info)
    return ModelState(engine=engine, ready=True, info=info)


def _not_ready(engine: Any | None, reason: str, info: dict[str, Any]) -> ModelState:
    log_event("error", "model_not_ready", reason=reason, **info)
    return ModelState(engine=engine, ready=False, reason=reason, info=info)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _model_summary(manifest: dict[str, Any]) -> dict[str, Any]:
    """The manifest fields worth logging (never the whole manifest: it holds the schema)."""
    keys = ("model_id", "model_version", "version", "created_at", "trained_at", "engine", "library_versions")
    return {k: manifest[k] for k in keys if k in manifest}


READY_BODY = b'{"status":"ok"}'


def write_ready_file(path: Path) -> None:
    """Atomically create the file nginx serves as ``GET /ping`` (in the run directory, never the model's)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(READY_BODY)
    tmp.chmod(0o644)  # nginx's workers read it; the run directory limits who can reach it
    os.replace(tmp, path)
