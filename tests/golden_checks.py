"""The release's golden predictions (``model/golden_predictions.json``) and how serving answers must match.

The expected values come from the file the release wrote with the fitted scikit-learn Pipeline
(:mod:`pipeline.golden`), never from an engine loaded by the test: a serving path is checked
against numbers the code under test cannot influence.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pipeline.golden import GOLDEN_FILE, read_golden
from pipeline.schema import SCHEMA

REPO_ROOT = Path(__file__).resolve().parent.parent
GOLDEN_PATH = REPO_ROOT / "model" / GOLDEN_FILE

SKLEARN_TOLERANCE = 1e-9
"""The sklearn engine runs the same Pipeline on the same frame: equal up to float formatting."""


def golden() -> dict[str, Any]:
    """The committed fixture (a test fails, not skips, when it is missing)."""
    assert GOLDEN_PATH.is_file(), f"{GOLDEN_PATH} is missing; `python -m pipeline golden` writes it"
    return read_golden(GOLDEN_PATH)


def tolerance(engine: str, manifest: dict[str, Any]) -> float:
    """How far an engine's probability may be from the Pipeline's.

    ONNX Runtime computes in float32 and orders its sums differently, so its probabilities are not
    bit-equal to scikit-learn's. The release chose ONNX only because the parity gate
    (pipeline.onnx_export) found every one of its rows within ``onnx.parity.tolerance`` (1e-5; the
    measured maximum is ~1e-7): that gate is the promise a serving answer is held to.
    """
    if engine == "sklearn" or (engine == "auto" and manifest.get("engine") != "onnx"):
        return SKLEARN_TOLERANCE
    return float(manifest["onnx"]["parity"]["tolerance"])


def assert_matches_golden(
    probabilities: Sequence[float],
    labels: Sequence[str],
    cases: Sequence[dict[str, Any]],
    tol: float,
    threshold: float,
) -> None:
    """Every answer's label exactly and probability within ``tol`` of its golden case (named on failure)."""
    assert len(probabilities) == len(labels) == len(cases), (len(probabilities), len(labels), len(cases))
    # A golden probability within tol of the threshold could legitimately get either label.
    assert all(abs(c["probability"] - threshold) > tol for c in cases), "a golden case sits on the threshold"
    wrong = [
        f"{c['name']}: got {label} {p!r}, golden {c['label']} {c['probability']!r}"
        for c, p, label in zip(cases, probabilities, labels, strict=True)
        if label != c["label"] or not abs(float(p) - c["probability"]) <= tol
    ]
    summary = f"{len(wrong)} of {len(cases)} answers differ from the golden predictions:"
    assert not wrong, "\n".join([summary, *wrong])


def records(cases: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records exactly as a JSON client sends them (absent keys stay absent)."""
    return [c["record"] for c in cases]


def csv_body(cases: Sequence[dict[str, Any]], header: bool) -> str:
    """The records as CSV rows in schema order (null and absent -> empty field; other spellings kept)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    if header:
        writer.writerow(SCHEMA.names)
    for record in records(cases):
        writer.writerow(["" if record.get(name) is None else record[name] for name in SCHEMA.names])
    return out.getvalue()
