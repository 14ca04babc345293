"""Deliberately broken engines, for testing the load-time self-check (test-only code).

Each fault wraps a real engine and breaks one promise the server makes on ``/ping``: that the model
can score, returns one probability per row, in [0, 1], and scores a row alone as in a batch.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

FAULT_ENV = "SERVE_TEST_ENGINE_FAULT"

# fault -> a piece of the reason /ping must give for it
FAULTS: dict[str, str] = {
    "raises": "self-check prediction failed: RuntimeError: engine fault injected by the test",
    "wrong_shape": "expected 3 probabilities, got shape (4,)",
    "two_columns": "expected 3 probabilities, got shape (3, 2)",
    "nan": "row 2 probability nan is not in [0, 1]",
    "out_of_range": "is not in [0, 1]",
    "batch_differs": "alone but",
}


class FaultyEngine:
    """A real engine whose ``predict_proba`` is broken as ``fault`` says (``none``: not broken)."""

    def __init__(self, engine: Any, fault: str) -> None:
        if fault != "none" and fault not in FAULTS:
            raise ValueError(f"unknown engine fault {fault!r}")
        self._engine = engine
        self.fault = fault

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)

    def predict_proba(self, columns: Mapping[str, Sequence[object]]) -> np.ndarray:
        if self.fault == "raises":
            raise RuntimeError("engine fault injected by the test")
        p = np.array(self._engine.predict_proba(columns), dtype=np.float64)
        if self.fault == "wrong_shape":
            return np.append(p, 0.5)
        if self.fault == "two_columns":
            return np.column_stack([1 - p, p]) if len(p) > 1 else p
        if self.fault == "nan":
            p[-1] = math.nan
        elif self.fault == "out_of_range":
            p += 1.0
        elif self.fault == "batch_differs" and len(p) > 1:
            p[-1] = p[-1] + 1e-6 if p[-1] < 0.5 else p[-1] - 1e-6  # subtle: 1e-6 moves no label
        return p


def wrap_loader(load_engine: Any, fault: str) -> Any:
    """``load_engine`` with its result wrapped in :class:`FaultyEngine`."""

    def load(*args: Any, **kwargs: Any) -> FaultyEngine:
        return FaultyEngine(load_engine(*args, **kwargs), fault)

    return load
