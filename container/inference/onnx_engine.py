"""The ONNX Runtime engine, and the rule that picks an engine for an artifact.

The artifact's manifest says which engine packaging chose (``engine``: ``onnx`` only when the
exported graph passed the parity gate in :mod:`pipeline.onnx_export`); ``MODEL_SERVER_ENGINE``
(read by :mod:`inference.settings`) can force either one. scikit-learn stays the reference: when
the manifest asks for ONNX but the graph cannot be loaded, the server falls back to it and logs why.

This module imports neither pandas nor scikit-learn: an ONNX-serving worker never loads them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.artifact import ONNX_FILE, schema_and_threshold, verify_artifact
from pipeline.onnx_scoring import FeedBuilder, open_session, predict_positive

ENGINE_ONNX = "onnx"
ENGINE_SKLEARN = "sklearn"
ENGINE_AUTO = "auto"
ENGINE_CHOICES = (ENGINE_AUTO, ENGINE_SKLEARN, ENGINE_ONNX)


class OnnxEngineError(Exception):
    """The artifact has no usable ONNX graph (the message says why)."""


class OnnxEngine:
    """Scores validated columns with the artifact's ``model.onnx`` in one pinned ORT session."""

    name = ENGINE_ONNX

    def __init__(self, model_dir: Path, manifest: dict[str, Any], session: Any) -> None:
        self.model_dir = model_dir
        self.manifest = manifest
        self.schema, self.threshold = schema_and_threshold(model_dir, manifest)
        self._session = session
        self._feeds = FeedBuilder(self.schema)

    @classmethod
    def load(cls, model_dir: Path) -> OnnxEngine:
        """Verify every artifact checksum (model.onnx included), then open the graph.

        Raises ArtifactError subclasses for a missing/corrupt artifact and OnnxEngineError when
        the artifact has no ONNX graph or ONNX Runtime cannot load it.
        """
        model_dir = Path(model_dir)
        manifest = verify_artifact(model_dir)
        if ONNX_FILE not in manifest["artifact_files"]:
            reason = manifest.get("engine_reason") or "the artifact was packaged without an ONNX graph"
            raise OnnxEngineError(f"{model_dir} has no {ONNX_FILE}: {reason}")
        try:
            session = open_session((model_dir / ONNX_FILE).read_bytes())
        except ImportError as exc:
            raise OnnxEngineError(f"onnxruntime is not installed ({exc})") from None
        except Exception as exc:  # ORT raises its own exception types for unloadable graphs
            raise OnnxEngineError(f"ONNX Runtime cannot load {model_dir / ONNX_FILE}: {exc}") from exc
        return cls(model_dir, manifest, session)

    def predict_proba(self, columns: Mapping[str, Sequence[object]]) -> np.ndarray:
        """P(positive label) per row, from per-column tensors built straight from ``columns``."""
        return predict_positive(self._session, self._feeds.build(columns))


def choose_engine(manifest: dict[str, Any], forced: str | None) -> str:
    """The engine to run: ``forced`` (``sklearn``/``onnx``) if given, else the manifest's choice."""
    if forced and forced != ENGINE_AUTO:
        if forced not in ENGINE_CHOICES:
            raise ValueError(f"unknown engine {forced!r}; choose one of {', '.join(ENGINE_CHOICES)}")
        return forced
    return ENGINE_ONNX if manifest.get("engine") == ENGINE_ONNX else ENGINE_SKLEARN
