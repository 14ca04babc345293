"""The candidate model families and the hyperparameter space searched for the leader.

Settings are chosen for a 2-core machine and a < 3 minute full run: a modest random forest
(100 trees, depth bounded) and the histogram gradient boosting defaults plus a small search.
Every estimator is single-threaded: training parallelises over CV folds (processes) instead, and a
served model must not start its own thread pools next to the web server's workers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sklearn.base import BaseEstimator
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression

LOGISTIC_REGRESSION = "logistic_regression"
RANDOM_FOREST = "random_forest"
HIST_GRADIENT_BOOSTING = "hist_gradient_boosting"
CANDIDATES: tuple[str, ...] = (LOGISTIC_REGRESSION, RANDOM_FOREST, HIST_GRADIENT_BOOSTING)
ALIASES: dict[str, str] = {
    "lr": LOGISTIC_REGRESSION,
    "logreg": LOGISTIC_REGRESSION,
    "rf": RANDOM_FOREST,
    "hgb": HIST_GRADIENT_BOOSTING,
    "hist_gbm": HIST_GRADIENT_BOOSTING,
}


def _logistic_regression(random_state: int) -> BaseEstimator:
    return LogisticRegression(max_iter=2000, random_state=random_state)


def _random_forest(random_state: int) -> BaseEstimator:
    return RandomForestClassifier(
        n_estimators=100, max_depth=20, min_samples_leaf=2, n_jobs=1, random_state=random_state
    )


def _hist_gradient_boosting(random_state: int) -> BaseEstimator:
    return HistGradientBoostingClassifier(random_state=random_state)


FACTORIES: dict[str, Callable[[int], BaseEstimator]] = {
    LOGISTIC_REGRESSION: _logistic_regression,
    RANDOM_FOREST: _random_forest,
    HIST_GRADIENT_BOOSTING: _hist_gradient_boosting,
}

# Search spaces sampled (seeded) for whichever family leads the cross-validation.
SEARCH_SPACES: dict[str, dict[str, list[Any]]] = {
    LOGISTIC_REGRESSION: {"C": [0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0]},
    RANDOM_FOREST: {
        "max_depth": [12, 16, 20, 24],
        "min_samples_leaf": [1, 2, 4, 8],
        "max_features": ["sqrt", 0.3, 0.5],
    },
    HIST_GRADIENT_BOOSTING: {
        "learning_rate": [0.05, 0.1, 0.2],
        "max_leaf_nodes": [15, 31, 63],
        "min_samples_leaf": [20, 50, 100],
        "l2_regularization": [0.0, 1.0, 10.0],
        "max_iter": [200, 400],
    },
}


def canonical_name(name: str) -> str:
    """The candidate's canonical name (accepts aliases such as ``hgb``); ValueError if unknown."""
    key = name.strip().lower().replace("-", "_")
    key = ALIASES.get(key, key)
    if key not in FACTORIES:
        known = ", ".join([*CANDIDATES, *ALIASES])
        raise ValueError(f"unknown model candidate {name!r}; choose from {known}")
    return key


def make_estimator(name: str, random_state: int, params: dict[str, Any] | None = None) -> BaseEstimator:
    """A fresh, unfitted estimator of the family ``name`` with ``params`` applied over its defaults."""
    estimator = FACTORIES[canonical_name(name)](random_state)
    if params:
        estimator.set_params(**params)
    return estimator
