"""Model selection: stratified k-fold cross-validation of candidates and a time-bounded search.

Every candidate is scored on the same folds (one seeded ``StratifiedKFold``), the whole pipeline
(preprocessing included) is refitted inside each fold, so no fold's statistics leak into another.
Out-of-fold probabilities are kept: the decision threshold is chosen on them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from sklearn.model_selection import ParameterSampler, StratifiedKFold
from threadpoolctl import threadpool_limits

from pipeline.metrics import METRICS, classification_metrics
from pipeline.models import SEARCH_SPACES, make_estimator
from pipeline.preprocessing import build_pipeline
from pipeline.progress import SILENT, Progress

Folds = list[tuple[np.ndarray, np.ndarray]]


@dataclass
class CVResult:
    """One configuration's cross-validation: per-fold metrics (at 0.5) and out-of-fold probabilities."""

    name: str
    params: dict[str, Any]
    fold_metrics: list[dict[str, float]]
    oof: np.ndarray
    fit_seconds: list[float] = field(default_factory=list)

    def mean(self, metric: str) -> float:
        return float(np.mean([m[metric] for m in self.fold_metrics]))

    def summary(self) -> dict[str, dict[str, float]]:
        """Mean and standard deviation of each metric over the folds."""
        return {
            metric: {
                "mean": self.mean(metric),
                "std": float(np.std([m[metric] for m in self.fold_metrics])),
            }
            for metric in METRICS
        }


def make_folds(y: np.ndarray, n_splits: int, random_state: int) -> Folds:
    """The shared, seeded stratified folds."""
    splitter = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=random_state)
    return list(splitter.split(np.zeros(len(y)), y))


def cross_validate(
    name: str,
    params: dict[str, Any],
    X: pd.DataFrame,
    y: np.ndarray,
    folds: Folds,
    random_state: int,
    progress: Progress = SILENT,
    label: str | None = None,
    n_jobs: int = 1,
) -> CVResult:
    """Fit and score ``name`` with ``params`` on every fold; progress names the model, fold and time.

    Folds run in ``n_jobs`` worker processes, each fit single-threaded (see :func:`fit_single_threaded`),
    so the scores do not depend on ``n_jobs``.
    """
    label = label or name
    oof = np.full(len(y), np.nan)
    fold_metrics, fit_seconds = [], []
    jobs = (
        delayed(_fit_and_predict)(name, params, random_state, X.iloc[tr], y[tr], X.iloc[va])
        for tr, va in folds
    )
    results = Parallel(n_jobs=n_jobs, return_as="generator")(jobs)
    for i, ((_, valid_idx), (proba, seconds)) in enumerate(zip(folds, results, strict=True), start=1):
        oof[valid_idx] = proba
        metrics = classification_metrics(y[valid_idx], proba, 0.5)
        fold_metrics.append(metrics)
        fit_seconds.append(seconds)
        progress(f"cv {label} fold {i}/{len(folds)}: roc_auc={metrics['roc_auc']:.4f} ({seconds:.1f} s)")
    result = CVResult(name, dict(params), fold_metrics, oof, fit_seconds)
    progress(f"cv {label}: mean roc_auc={result.mean('roc_auc'):.4f} log_loss={result.mean('log_loss'):.4f}")
    return result


def fit_single_threaded(model: Any, X: pd.DataFrame, y: np.ndarray) -> Any:
    """Fit with OpenMP and BLAS limited to one thread.

    HistGradientBoosting's OpenMP threads spin-wait; on a shared 2-core machine two of them next to
    any other work collapse (a 1.5 s fit took 16-18 s here). One thread per process is faster under
    load, and parallelism comes from running folds in separate processes instead.
    BLAS too, for reproducibility: OpenBLAS splits its sums by thread count, which differs between
    machines and between the parent and loky's workers, so logistic regression's solver ends at a
    different last bit (log-loss std 4e-9 apart between n_jobs=1 and 2). One thread, one answer.
    """
    with threadpool_limits(limits=1):
        return model.fit(X, y)


def _fit_and_predict(
    name: str,
    params: dict[str, Any],
    random_state: int,
    X_train: pd.DataFrame,
    y_train: np.ndarray,
    X_valid: pd.DataFrame,
) -> tuple[np.ndarray, float]:
    start = time.perf_counter()
    model = fit_single_threaded(build_pipeline(make_estimator(name, random_state, params)), X_train, y_train)
    with threadpool_limits(limits=1):
        proba = model.predict_proba(X_valid)[:, 1]
    return proba, time.perf_counter() - start


@dataclass
class SearchResult:
    """The configurations tried for the leading family, in order, and whether the budget cut it short."""

    family: str
    planned: int
    budget_seconds: float
    results: list[CVResult]

    @property
    def truncated(self) -> bool:
        return len(self.results) < self.planned


def search(
    family: str,
    X: pd.DataFrame,
    y: np.ndarray,
    folds: Folds,
    random_state: int,
    iterations: int,
    budget_seconds: float,
    progress: Progress = SILENT,
    n_jobs: int = 1,
) -> SearchResult:
    """Cross-validate up to ``iterations`` seeded random configurations of ``family``.

    The sample (and its order) is fixed by ``random_state``; the time budget only decides whether
    the *next* configuration starts, so a run either tries the same configurations as another run
    or reports ``truncated`` in the manifest.
    """
    space = SEARCH_SPACES[family]
    configs = (
        list(ParameterSampler(space, n_iter=iterations, random_state=random_state)) if iterations else []
    )
    start = time.perf_counter()
    results: list[CVResult] = []
    for i, params in enumerate(configs, start=1):
        spent = time.perf_counter() - start
        if spent >= budget_seconds:
            progress(
                f"search {family}: budget of {budget_seconds:g} s used after {i - 1}/{len(configs)} configs; "
                "the result now depends on machine speed (raise the budget for a reproducible run)"
            )
            break
        params = {k: _plain(v) for k, v in sorted(params.items())}
        progress(f"search {family} {i}/{len(configs)}: {params}")
        results.append(
            cross_validate(
                family,
                params,
                X,
                y,
                folds,
                random_state,
                progress,
                label=f"{family}[search {i}]",
                n_jobs=n_jobs,
            )
        )
    return SearchResult(family, len(configs), budget_seconds, results)


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value
