"""Score a validated batch in chunks under a deadline.

Native scoring code cannot be interrupted, so the deadline is checked between phases and between
chunks: a request that runs out of time gets a JSON 504 from the app well before gunicorn's worker
timeout would kill the process (and every other request on it).
"""

from __future__ import annotations

import time

import numpy as np

from inference.engine import Engine
from inference.errors import DeadlineExceeded
from inference.validation import ValidatedBatch


class Deadline:
    """A point in monotonic time after which a request must give up.

    ``already_spent_s`` is time the request waited before the app saw it (queued behind busy
    workers, measured from nginx's X-Request-Start); it counts against the budget.
    """

    def __init__(self, budget_s: float, already_spent_s: float = 0.0) -> None:
        self.budget_s = budget_s
        self.expires = time.monotonic() + budget_s - max(0.0, already_spent_s)

    def check(self, phase: str) -> None:
        """Raise DeadlineExceeded (504) if the budget is used up; ``phase`` names where it happened."""
        if time.monotonic() > self.expires:
            raise DeadlineExceeded(
                f"the request did not finish within {self.budget_s:g} s (ran out during {phase}); "
                "send fewer records per request",
                [{"deadline_seconds": self.budget_s, "phase": phase}],
            )


def score(engine: Engine, batch: ValidatedBatch, deadline: Deadline, chunk_rows: int) -> np.ndarray:
    """P(positive) for every record in ``batch``, scored ``chunk_rows`` at a time."""
    n = batch.n_records
    deadline.check("validation")
    if n <= chunk_rows:
        return engine.predict_proba(batch.columns)
    parts = []
    for start in range(0, n, chunk_rows):
        if start:
            deadline.check("scoring")
        chunk = {name: values[start : start + chunk_rows] for name, values in batch.columns.items()}
        parts.append(engine.predict_proba(chunk))
    # A result that is complete is returned even if late: discarding finished work helps nobody.
    return np.concatenate(parts)
