"""The scoring engine behind one small interface, and the scikit-learn implementation.

The HTTP layer only ever calls :meth:`Engine.predict_proba` with validated columns, so a faster
engine (ONNX Runtime, ...) plugs in by implementing the same protocol and being returned by
:func:`load_engine`; nothing else changes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from pipeline.artifact import Artifact, ArtifactError, load_artifact, read_manifest
from pipeline.schema import CategoricalFeature, NumericFeature, Schema


class EngineError(Exception):
    """The engine cannot be built from the artifact, or its self-check failed."""


class Engine(Protocol):
    """Scores validated records. Implementations are loaded once per process tree and are read-only."""

    name: str
    schema: Schema
    threshold: float
    manifest: dict[str, Any]

    def predict_proba(self, columns: Mapping[str, Sequence[object]]) -> np.ndarray:
        """P(positive label) for each row; ``columns`` maps every feature name to one value per row."""
        ...


class SklearnEngine:
    """Runs the fitted scikit-learn Pipeline from the artifact on :func:`to_model_frame` output."""

    name = "sklearn"

    def __init__(self, artifact: Artifact) -> None:
        self.schema = artifact.schema
        self.threshold = artifact.threshold
        self.manifest = artifact.manifest
        self._pipeline = artifact.pipeline
        self._positive = _positive_index(artifact.pipeline, artifact.schema)

    def predict_proba(self, columns: Mapping[str, Sequence[object]]) -> np.ndarray:
        from pipeline.features import to_model_frame  # pandas: only sklearn-engine workers load it

        frame = to_model_frame(columns, self.schema)
        return np.asarray(self._pipeline.predict_proba(frame)[:, self._positive], dtype=np.float64)


def load_engine(model_dir: Path, engine: str | None = None) -> Engine:
    """Load and verify the artifact in ``model_dir`` (read-only) and wrap it in an engine.

    The engine is the manifest's ``engine`` unless ``engine`` (default: the ``MODEL_SERVER_ENGINE``
    setting) forces ``sklearn`` or ``onnx``. When the manifest chose ONNX but its graph cannot be
    loaded, the sklearn engine serves instead (logged). Raises ArtifactError (missing, corrupt,
    wrong version) or EngineError (unusable classifier, or a forced ONNX engine that cannot load).
    """
    from inference.onnx_engine import OnnxEngine, OnnxEngineError, choose_engine
    from inference.settings import load_settings

    model_dir = Path(model_dir)
    settings = load_settings()
    forced = engine if engine is not None else settings.engine
    if choose_engine(read_manifest(model_dir), forced) == "onnx":
        try:
            return OnnxEngine.load(model_dir, settings.table_scoring_min_rows)
        except OnnxEngineError as exc:
            if forced == "onnx":
                raise EngineError(f"MODEL_SERVER_ENGINE=onnx, but {exc}") from exc
            from inference.request_log import log_event

            log_event("warning", "onnx_engine_fallback", reason=str(exc), engine="sklearn")
    return SklearnEngine(load_artifact(model_dir))


def self_check(engine: Engine) -> None:
    """Score a few synthetic records and check the answers are sane; raise EngineError if not.

    The records cover a typical value of every feature, all features missing and unknown
    categories, and each is scored alone and in the batch: a model that loads but cannot score,
    or scores a row differently alone than in a batch, must not report healthy.
    """
    columns = _self_check_columns(engine.schema)
    n_rows = len(next(iter(columns.values())))
    try:
        batch = np.asarray(engine.predict_proba(columns), dtype=np.float64)
        alone = [
            float(engine.predict_proba({k: v[i : i + 1] for k, v in columns.items()})[0])
            for i in range(n_rows)
        ]
    except Exception as exc:
        raise EngineError(f"self-check prediction failed: {type(exc).__name__}: {exc}") from exc
    if batch.shape != (n_rows,):
        raise EngineError(f"self-check: expected {n_rows} probabilities, got shape {batch.shape}")
    for i, (p_batch, p_alone) in enumerate(zip(batch, alone, strict=True)):
        if not (math.isfinite(p_batch) and 0.0 <= p_batch <= 1.0):
            raise EngineError(f"self-check: row {i} probability {p_batch} is not in [0, 1]")
        if abs(p_batch - p_alone) > 1e-9:
            raise EngineError(f"self-check: row {i} scores {p_alone} alone but {p_batch} in a batch")


def _self_check_columns(schema: Schema) -> dict[str, list[object]]:
    columns: dict[str, list[object]] = {}
    for feature in schema.features:
        if isinstance(feature, NumericFeature):
            typical = feature.minimum + (feature.maximum - feature.minimum) / 4
            columns[feature.name] = [typical, None, feature.minimum]
        elif isinstance(feature, CategoricalFeature):
            first = feature.categories[0] if feature.categories else "x"
            columns[feature.name] = [first, None, "__self_check_unknown_category__"]
    return columns


def _positive_index(pipeline: Any, schema: Schema) -> int:
    classes = list(getattr(pipeline, "classes_", []))
    for candidate in (schema.positive_label, 1, True):
        matches = [i for i, c in enumerate(classes) if c == candidate and type(c) is type(candidate)]
        if matches:
            return matches[0]
    # numpy scalars (np.int64(1), np.str_) compare equal but are other types; fall back to equality.
    for candidate in (schema.positive_label, 1):
        matches = [i for i, c in enumerate(classes) if c == candidate]
        if matches:
            return matches[0]
    raise EngineError(
        f"cannot tell which class is {schema.positive_label!r}: the classifier's classes are {classes!r}"
    )


__all__ = ["ArtifactError", "Engine", "EngineError", "SklearnEngine", "load_engine", "self_check"]
