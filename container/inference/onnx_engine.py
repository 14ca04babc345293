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
from typing import TYPE_CHECKING, Any

import numpy as np

from pipeline.artifact import ONNX_FILE, TABLES_FILE, schema_and_threshold, verify_artifact
from pipeline.onnx_scoring import FeedBuilder, open_session, predict_positive

if TYPE_CHECKING:
    from pipeline.table_scoring import TableScorer

ENGINE_ONNX = "onnx"
ENGINE_SKLEARN = "sklearn"
ENGINE_AUTO = "auto"
ENGINE_CHOICES = (ENGINE_AUTO, ENGINE_SKLEARN, ENGINE_ONNX)


class OnnxEngineError(Exception):
    """The artifact has no usable ONNX graph (the message says why)."""


class OnnxEngine:
    """Scores validated columns with the artifact's ``model.onnx`` in one pinned ORT session.

    Calls of at least ``table_min_rows`` rows go to the graph's trees compiled into lookup tables
    (:mod:`pipeline.table_scoring`), which return the graph's own probabilities bit for bit and are
    several times faster on large batches; so do calls of one row (a single record), which the
    tables score with Python scalars in under half a graph run. Calls in between, where a table
    pass costs more than a graph run, use the session.
    """

    name = ENGINE_ONNX

    def __init__(
        self, model_dir: Path, manifest: dict[str, Any], session: Any, table_min_rows: int = 0
    ) -> None:
        self.model_dir = model_dir
        self.manifest = manifest
        self.schema, self.threshold = schema_and_threshold(model_dir, manifest)
        self._session = session
        self._feeds = FeedBuilder(self.schema)
        self._tables: TableScorer | None = None
        self._table_min_rows = table_min_rows
        self.tables_status = "off (SERVE_TABLE_SCORING_MIN_ROWS=0)"
        if table_min_rows > 0:
            self._load_tables()

    def _load_tables(self) -> None:
        """The artifact's tables (proven against this session), else tables compiled now, else none."""
        from pipeline.table_scoring import TableScorerError, build_table_scorer, load_table_scorer

        source = f"read from {TABLES_FILE}"
        shipped = self.manifest.get("scoring_tables")
        if TABLES_FILE in self.manifest["artifact_files"]:
            try:
                data = (self.model_dir / TABLES_FILE).read_bytes()
                self._tables = load_table_scorer(data, self.schema, self._session)
            except TableScorerError as exc:
                source = f"compiled at start-up ({TABLES_FILE} not used: {exc})"
        elif isinstance(shipped, dict) and shipped.get("reason"):  # training tried: no retry here
            self.tables_status = f"unavailable: {shipped['reason']} (at training)"
            return
        else:  # an artifact from before training shipped tables
            source = f"compiled at start-up (the artifact has no {TABLES_FILE})"
        if self._tables is None:
            try:
                self._tables = build_table_scorer(
                    (self.model_dir / ONNX_FILE).read_bytes(), self.schema, self._session
                )
            except (TableScorerError, ImportError) as exc:  # the graph then scores every call
                self.tables_status = f"unavailable: {exc}"
                return
        self.tables_status = (
            f"on for calls of 1 row and of {self._table_min_rows}+ rows, {source} "
            f"({self._tables.description})"
        )

    @classmethod
    def load(cls, model_dir: Path, table_min_rows: int = 0) -> OnnxEngine:
        """Verify every artifact checksum (model.onnx included), then open the graph.

        ``table_min_rows`` > 0 also loads the tree tables (see the class docstring): the artifact's
        ``scoring_tables.bin`` when it passes the load-time verification, else compiled from the graph.
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
        return cls(model_dir, manifest, session, table_min_rows)

    def predict_proba(self, columns: Mapping[str, Sequence[object]]) -> np.ndarray:
        """P(positive label) per row, from per-column tensors built straight from ``columns``."""
        if self._tables is not None:
            n_rows = self._feeds.row_count(columns)
            if n_rows == 1 or n_rows >= self._table_min_rows:
                return self._tables.predict(columns)
        return predict_positive(self._session, self._feeds.build(columns))


def choose_engine(manifest: dict[str, Any], forced: str | None) -> str:
    """The engine to run: ``forced`` (``sklearn``/``onnx``) if given, else the manifest's choice."""
    if forced and forced != ENGINE_AUTO:
        if forced not in ENGINE_CHOICES:
            raise ValueError(f"unknown engine {forced!r}; choose one of {', '.join(ENGINE_CHOICES)}")
        return forced
    return ENGINE_ONNX if manifest.get("engine") == ENGINE_ONNX else ENGINE_SKLEARN
