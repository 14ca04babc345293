"""SageMaker hyperparameters -> :class:`pipeline.training.TrainingConfig`.

CreateTrainingJob passes hyperparameters as a string -> string map, and the SDKs serialise
differently: SDK v2 uses ``str(value)`` (``True`` -> ``"True"``, ``None`` -> ``"None"``), SDK v3
JSON-encodes non-strings (``True`` -> ``"true"``, ``["lr", "hgb"]`` -> ``'["lr", "hgb"]'``). Both
are accepted. ``"None"``, ``"null"`` and ``""`` mean "use the default".

Keys starting with ``sagemaker_`` or ``_`` are set by SageMaker tooling (e.g. automatic model
tuning adds ``_tuning_objective_metric``) and are ignored; any other unknown key is an error, so a
typo (``cv_fold``) fails the job instead of being silently ignored.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pipeline.training import TrainingConfig, config_from_options

UNSET = {"", "none", "null"}
TRUE = {"true", "1", "yes", "y", "on"}
FALSE = {"false", "0", "no", "n", "off"}
IGNORED_PREFIXES = ("sagemaker_", "_")


class HyperparameterError(ValueError):
    """One or more hyperparameters are unknown or malformed; the message lists each problem."""


@dataclass(frozen=True)
class Hyperparameter:
    """A supported hyperparameter: how to parse it and what it does."""

    name: str
    parse: Callable[[str], Any]
    kind: str
    help: str


def _bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in TRUE:
        return True
    if lowered in FALSE:
        return False
    raise ValueError(f"expected true or false, got {text!r}")


def _int(text: str) -> int:
    stripped = text.strip()
    try:
        return int(stripped)
    except ValueError:
        pass
    try:
        number = float(stripped)
    except ValueError:
        raise ValueError(f"expected an integer, got {text!r}") from None
    if not number.is_integer():
        raise ValueError(f"expected an integer, got {text!r}")
    return int(number)


def _float(text: str) -> float:
    try:
        number = float(text.strip())
    except ValueError:
        raise ValueError(f"expected a number, got {text!r}") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise ValueError(f"expected a finite number, got {text!r}")
    return number


def _names(text: str) -> list[str]:
    stripped = text.strip()
    if stripped.startswith("["):
        try:
            value = json.loads(stripped)
        except json.JSONDecodeError:
            raise ValueError(f"expected a comma-separated list or JSON list, got {text!r}") from None
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValueError(f"expected a list of names, got {text!r}")
        return value
    return [part.strip() for part in stripped.split(",") if part.strip()]


HYPERPARAMETERS: dict[str, Hyperparameter] = {
    h.name: h
    for h in (
        Hyperparameter("quick", _bool, "bool", "one default fit, no cross-validation or search (fast runs)"),
        Hyperparameter("cv_folds", _int, "int", "stratified cross-validation folds, 2-20 (default 5)"),
        Hyperparameter(
            "search_budget_seconds",
            _float,
            "float",
            "time limit for the leader's search (default 120; 0 = skip it)",
        ),
        Hyperparameter(
            "search_iterations", _int, "int", "configurations the search samples, 0-100 (default 6)"
        ),
        Hyperparameter(
            "candidates",
            _names,
            "list",
            "model families to compare: logistic_regression (lr), random_forest (rf), "
            "hist_gradient_boosting (hgb); default all",
        ),
        Hyperparameter("random_state", _int, "int", "seed for folds, search and models (default 42)"),
        Hyperparameter("n_jobs", _int, "int", "worker processes for cross-validation folds (default 2)"),
    )
}


def parse_hyperparameters(raw: Mapping[str, Any]) -> tuple[TrainingConfig, list[str]]:
    """Validate ``raw`` and build the training config; returns it and the ignored SageMaker keys.

    Raises :class:`HyperparameterError` naming every unknown or malformed entry at once.
    """
    problems: list[str] = []
    ignored: list[str] = []
    options: dict[str, Any] = {}
    for key in sorted(raw):
        value = raw[key]
        if key.startswith(IGNORED_PREFIXES):
            ignored.append(key)
            continue
        spec = HYPERPARAMETERS.get(key)
        if spec is None:
            problems.append(f"unknown hyperparameter {key!r} (supported: {', '.join(HYPERPARAMETERS)})")
            continue
        text = _as_text(value)
        if text is None:
            problems.append(f"hyperparameter {key!r}: expected a string, got {type(value).__name__}")
            continue
        if text.strip().lower() in UNSET:
            continue
        try:
            options[key] = spec.parse(text)
        except ValueError as exc:
            problems.append(f"hyperparameter {key!r}: {exc}")
    if problems:
        raise HyperparameterError("; ".join(problems))
    try:
        config = config_from_options(**options)
    except ValueError as exc:
        raise HyperparameterError(f"hyperparameter {exc}") from None
    return config, ignored


def _as_text(value: Any) -> str | None:
    """The string form of a value; JSON scalars written by hand into hyperparameters.json are accepted."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if value is None:
        return ""
    if isinstance(value, list):
        return json.dumps(value)
    return None
