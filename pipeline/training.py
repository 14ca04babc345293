"""Training runs: the full model selection and the quick single fit, both ending in a complete artifact.

Full run: stratified k-fold CV of every candidate family -> seeded, time-bounded search of the
leader's hyperparameters -> the best configuration by mean CV ROC AUC -> threshold that maximises
F1 on its out-of-fold probabilities -> final fit on all training rows -> scores on the test split
(which is never used for fitting or choosing anything).

Quick run: one fit of the default gradient boosting model with threshold 0.5; seconds instead of
minutes, for tests and smoke runs. Its manifest says ``"mode": "quick"``.
"""

from __future__ import annotations

import importlib
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from threadpoolctl import threadpool_limits

from pipeline.data import Dataset
from pipeline.features import CATEGORICAL_MISSING
from pipeline.manifest import json_ready, library_versions, python_version, volatile_fields
from pipeline.metrics import (
    QUICK_THRESHOLD_RULE,
    THRESHOLD_RULE,
    best_f1_threshold,
    classification_metrics,
    group_metrics,
)
from pipeline.model_card import render_model_card
from pipeline.models import CANDIDATES, HIST_GRADIENT_BOOSTING, make_estimator
from pipeline.preprocessing import build_pipeline
from pipeline.progress import SILENT, Progress
from pipeline.schema import SCHEMA, CategoricalFeature, Schema
from pipeline.selection import CVResult, SearchResult, cross_validate, fit_single_threaded, make_folds, search

GROUP_COLUMNS = ("sex", "race")
DEFAULT_RANDOM_STATE = 42


@dataclass(frozen=True)
class TrainingConfig:
    """Settings of one training run (also the SageMaker hyperparameters)."""

    quick: bool = False
    cv_folds: int = 5
    search_budget_seconds: float = 120.0
    search_iterations: int = 6
    candidates: tuple[str, ...] = CANDIDATES
    random_state: int = DEFAULT_RANDOM_STATE
    n_jobs: int = 2

    def quick_candidate(self) -> str:
        """The family a quick run fits: gradient boosting unless the candidates exclude it."""
        return HIST_GRADIENT_BOOSTING if HIST_GRADIENT_BOOSTING in self.candidates else self.candidates[0]


@dataclass
class TrainingResult:
    """A fitted model with everything needed to write the artifact and the reports."""

    pipeline: Any
    manifest: dict[str, Any]
    model_card: str
    threshold: float
    test_proba: np.ndarray | None = None
    train_labels: np.ndarray | None = None
    test_labels: np.ndarray | None = None
    onnx_model: bytes | None = None  # the exported graph, when it passed the ONNX parity gate
    scoring_tables: bytes | None = None  # that graph's trees as proven lookup tables (table_scoring)
    candidates: list[CVResult] = field(default_factory=list)
    search: SearchResult | None = None
    chosen: CVResult | None = None


def train_model(
    train: Dataset,
    test: Dataset | None = None,
    config: TrainingConfig | None = None,
    progress: Progress = SILENT,
) -> TrainingResult:
    """Run a full or quick training (per ``config.quick``) and return the fitted model and manifest.

    Every BLAS and OpenMP pool in this process runs one thread (fold workers limit their own, see
    :func:`~pipeline.selection.fit_single_threaded`): OpenBLAS splits a sum by its thread count, so
    metrics computed here would otherwise differ in the last bits between machines.
    """
    with threadpool_limits(limits=1):
        return _train_model(train, test, config or TrainingConfig(), progress)


def _train_model(
    train: Dataset, test: Dataset | None, config: TrainingConfig, progress: Progress
) -> TrainingResult:
    _check_training_data(train, config)
    durations: dict[str, float] = {}
    candidates: list[CVResult] = []
    searched: SearchResult | None = None
    chosen: CVResult | None = None

    if config.quick:
        name, params = config.quick_candidate(), {}
        threshold, rule = 0.5, QUICK_THRESHOLD_RULE
    else:
        start = time.perf_counter()
        folds = make_folds(train.y, config.cv_folds, config.random_state)
        for candidate in config.candidates:
            candidates.append(
                cross_validate(
                    candidate,
                    {},
                    train.X,
                    train.y,
                    folds,
                    config.random_state,
                    progress,
                    n_jobs=config.n_jobs,
                )
            )
        durations["cross_validation"] = time.perf_counter() - start

        leader = max(candidates, key=lambda r: r.mean("roc_auc"))
        progress(f"leader: {leader.name} (mean CV roc_auc {leader.mean('roc_auc'):.4f})")
        start = time.perf_counter()
        searched = search(
            leader.name,
            train.X,
            train.y,
            folds,
            config.random_state,
            config.search_iterations,
            config.search_budget_seconds,
            progress,
            n_jobs=config.n_jobs,
        )
        durations["search"] = time.perf_counter() - start
        # Ties keep the earlier configuration, i.e. the defaults before any searched one.
        chosen = max([leader, *searched.results], key=lambda r: r.mean("roc_auc"))
        name, params = chosen.name, chosen.params
        threshold, rule = best_f1_threshold(train.y, chosen.oof), THRESHOLD_RULE
        progress(f"chosen: {name} {params or '(defaults)'}; threshold {threshold:.4f} (best out-of-fold F1)")

    start = time.perf_counter()
    estimator = make_estimator(name, config.random_state, params)
    pipeline = fit_single_threaded(build_pipeline(estimator), train.X, train.y)
    durations["final_fit"] = time.perf_counter() - start
    progress(f"final fit of {name} on {len(train.y)} rows ({durations['final_fit']:.1f} s)")

    test_proba = None
    metrics: dict[str, Any] = {
        "cv": {r.name: r.summary() for r in candidates},
        "search": [
            {"params": r.params, **{k: v["mean"] for k, v in r.summary().items()}} for r in searched.results
        ]
        if searched
        else [],
        "chosen": _chosen_metrics(chosen, train.y, threshold) if chosen else None,
    }
    if test is not None:
        test_proba = pipeline.predict_proba(test.X)[:, 1]
        metrics["test"] = classification_metrics(test.y, test_proba, threshold)
        metrics["test_at_0_5"] = classification_metrics(test.y, test_proba, 0.5)
        metrics["test_by_group"] = {
            column: group_metrics(test.y, test_proba, test.frame[column].to_numpy(dtype=object), threshold)
            for column in GROUP_COLUMNS
        }
        progress(
            "test: "
            + " ".join(f"{k}={v:.4f}" for k, v in metrics["test"].items())
            + f" (threshold {threshold:.4f}, {len(test.y)} rows)"
        )

    # ONNX export + parity gate (pipeline/onnx_export.py): decides the manifest's "engine".
    from pipeline.onnx_export import export_with_parity_gate

    start = time.perf_counter()
    schema = schema_from_training(train)
    baseline = _monitoring_baseline(train, schema, chosen, test_proba, threshold)
    onnx = export_with_parity_gate(pipeline, schema, threshold, test.frame if test is not None else None)
    durations["onnx_export"] = time.perf_counter() - start
    progress(f"engine: {onnx.engine} ({onnx.reason})")
    start = time.perf_counter()
    scoring_tables, tables_fields = _scoring_tables(onnx.model_bytes, schema)
    durations["scoring_tables"] = time.perf_counter() - start
    progress(f"scoring tables: {tables_fields.get('reason') or str(tables_fields['bytes']) + ' bytes'}")
    manifest = json_ready(
        {
            **onnx.manifest_fields(),
            "scoring_tables": tables_fields,
            "model": {
                "name": name,
                "estimator": _qualified_name(estimator),
                "params": _json_params(estimator),
                "searched_params": params,
                "pipeline_steps": [step for step, _ in pipeline.steps],
            },
            "threshold": threshold,
            "threshold_rule": rule,
            "positive_label": SCHEMA.positive_label,
            "negative_label": SCHEMA.negative_label,
            "schema": schema.to_dict(),
            "training": {
                "mode": "quick" if config.quick else "full",
                "config": {**asdict(config), "candidates": list(config.candidates)},
                "data": {"train": train.summary(), "test": test.summary() if test is not None else None},
                "search": _search_summary(searched),
            },
            "metrics": metrics,
            "baseline": baseline,
            "library_versions": library_versions(),
            "python_version": python_version(),
        }
    )
    card = render_model_card(manifest)
    manifest["volatile"] = volatile_fields({**durations, "total": progress.elapsed()})
    return TrainingResult(
        pipeline=pipeline,
        manifest=manifest,
        model_card=card,
        threshold=threshold,
        test_proba=test_proba,
        train_labels=train.y,
        test_labels=test.y if test is not None else None,
        onnx_model=onnx.model_bytes,
        scoring_tables=scoring_tables,
        candidates=candidates,
        search=searched,
        chosen=chosen,
    )


def _scoring_tables(model_bytes: bytes | None, schema: Schema) -> tuple[bytes | None, dict[str, Any]]:
    """The graph's compiled, proven tables for the artifact (the server then reads instead of
    compiling them), and the manifest's ``scoring_tables`` fields; no tables and the reason if the
    graph's trees do not compile (the server then scores with the graph alone)."""
    from pipeline.artifact import TABLES_FILE
    from pipeline.table_scoring import TABLES_FORMAT, TableScorerError, export_tables

    if model_bytes is None:
        return None, {"reason": "no ONNX graph to compile"}
    try:
        data = export_tables(model_bytes, schema)
    except TableScorerError as exc:
        return None, {"reason": f"not compiled: {exc}"}
    return data, {"file": TABLES_FILE, "format": TABLES_FORMAT, "bytes": len(data)}


def schema_from_training(train: Dataset, base: Schema = SCHEMA) -> Schema:
    """``base`` with each categorical feature's categories set to those seen in the training data.

    For adult.data they equal the categories written in :mod:`pipeline.schema`; for a user's CSV
    they are the levels the fitted encoder really knows, so the artifact documents its own input.
    """
    features = []
    for feature in base.features:
        if isinstance(feature, CategoricalFeature):
            seen = sorted(set(train.X[feature.name]) - {CATEGORICAL_MISSING})
            feature = replace(feature, categories=tuple(seen))
        features.append(feature)
    return replace(base, features=tuple(features))


def _monitoring_baseline(
    train: Dataset,
    schema: Schema,
    chosen: CVResult | None,
    test_proba: np.ndarray | None,
    threshold: float,
) -> dict[str, Any]:
    """The drift monitor's baseline (pipeline/monitoring/baseline.py): training features, and the
    out-of-fold predictions of a full run (the held-out test predictions of a quick one)."""
    from pipeline.monitoring.baseline import compute_baseline

    if chosen is not None:
        probabilities, source = chosen.oof, "out_of_fold"
    elif test_proba is not None:
        probabilities, source = test_proba, "test"
    else:
        probabilities, source = None, None
    return compute_baseline(
        train.X,
        schema,
        probabilities,
        threshold,
        data=f"training split ({', '.join(train.sources)})",
        prediction_source=source,
    )


def _check_training_data(train: Dataset, config: TrainingConfig) -> None:
    counts = np.bincount(train.y, minlength=2)
    if counts.min() == 0:
        raise ValueError(
            f"training data has only one class ({counts[1]} x {SCHEMA.positive_label}, "
            f"{counts[0]} x {SCHEMA.negative_label}); both are needed"
        )
    if not config.quick and counts.min() < config.cv_folds:
        raise ValueError(
            f"the rarer class has {counts.min()} rows, fewer than cv_folds={config.cv_folds}; "
            "add data, lower cv_folds or use quick mode"
        )


def _chosen_metrics(chosen: CVResult, y: np.ndarray, threshold: float) -> dict[str, Any]:
    return {
        "name": chosen.name,
        "params": chosen.params,
        "cv": chosen.summary(),
        "out_of_fold_at_threshold": classification_metrics(y, chosen.oof, threshold),
    }


def _search_summary(searched: SearchResult | None) -> dict[str, Any] | None:
    if searched is None:
        return None
    return {
        "family": searched.family,
        "planned": searched.planned,
        "evaluated": len(searched.results),
        "truncated": searched.truncated,
        "budget_seconds": searched.budget_seconds,
    }


def _qualified_name(estimator: BaseEstimator) -> str:
    """The shortest public import path of the estimator's class, e.g. ``sklearn.ensemble.X``."""
    cls = type(estimator)
    parts = cls.__module__.split(".")
    for i in range(1, len(parts) + 1):
        module = importlib.import_module(".".join(parts[:i]))
        if getattr(module, cls.__qualname__, None) is cls:
            return f"{module.__name__}.{cls.__qualname__}"
    return f"{cls.__module__}.{cls.__qualname__}"


def _json_params(estimator: BaseEstimator) -> dict[str, Any]:
    return {
        k: v if isinstance(v, str | int | float | bool | type(None)) else repr(v)
        for k, v in estimator.get_params().items()
    }


def config_from_options(
    *,
    quick: bool = False,
    cv_folds: int | None = None,
    search_budget_seconds: float | None = None,
    search_iterations: int | None = None,
    candidates: str | list[str] | tuple[str, ...] | None = None,
    random_state: int | None = None,
    n_jobs: int | None = None,
) -> TrainingConfig:
    """A validated :class:`TrainingConfig` (``None`` = default); ValueError names a bad option."""
    from pipeline.models import canonical_name

    default = TrainingConfig()
    if isinstance(candidates, str):
        candidates = [c for c in candidates.split(",") if c.strip()]
    try:
        names = (
            tuple(dict.fromkeys(canonical_name(c) for c in candidates)) if candidates else default.candidates
        )
    except ValueError as exc:
        raise ValueError(f"candidates: {exc}") from None
    if candidates is not None and not names:
        raise ValueError("candidates: give at least one model family")
    config = TrainingConfig(
        quick=quick,
        cv_folds=default.cv_folds if cv_folds is None else cv_folds,
        search_budget_seconds=default.search_budget_seconds
        if search_budget_seconds is None
        else search_budget_seconds,
        search_iterations=default.search_iterations if search_iterations is None else search_iterations,
        candidates=names,
        random_state=default.random_state if random_state is None else random_state,
        n_jobs=default.n_jobs if n_jobs is None else n_jobs,
    )
    if not 2 <= config.cv_folds <= 20:
        raise ValueError(f"cv_folds must be between 2 and 20, got {config.cv_folds}")
    if config.search_budget_seconds < 0:
        raise ValueError(f"search_budget_seconds must be >= 0, got {config.search_budget_seconds:g}")
    if not 0 <= config.search_iterations <= 100:
        raise ValueError(f"search_iterations must be between 0 and 100, got {config.search_iterations}")
    if not 1 <= config.n_jobs <= 64:
        raise ValueError(f"n_jobs must be between 1 and 64, got {config.n_jobs}")
    if not 0 <= config.random_state < 2**32:
        raise ValueError(f"random_state must be between 0 and 2**32 - 1, got {config.random_state}")
    return config


def train_to_directory(
    train_files: list[Path],
    test_files: list[Path] | None,
    config: TrainingConfig,
    model_dir: Path,
    progress: Progress = SILENT,
    *,
    overwrite: bool = False,
) -> tuple[TrainingResult, dict[str, Any]]:
    """Load the files, train, and write the artifact to ``model_dir`` (atomically).

    Returns the training result and the completed manifest (with ``artifact_files``).
    """
    from pipeline.artifact import check_destination, write_artifact
    from pipeline.data import load_dataset

    # Fail on an occupied destination before minutes of training, not after.
    check_destination(Path(model_dir), overwrite)
    train = load_dataset(train_files)
    progress(
        f"training data: {len(train.y)} rows, {train.positive_rate:.1%} positive ({', '.join(train.sources)})"
    )
    test = load_dataset(test_files) if test_files else None
    if test is not None:
        progress(f"test data: {len(test.y)} rows ({', '.join(test.sources)})")
    result = train_model(train, test, config, progress)
    manifest = write_artifact(
        Path(model_dir),
        result.pipeline,
        result.manifest,
        result.model_card,
        overwrite=overwrite,
        onnx_model=result.onnx_model,
        scoring_tables=result.scoring_tables,
    )
    return result, manifest
