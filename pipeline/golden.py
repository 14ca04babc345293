"""Golden predictions: records as a client sends them, with the label and probability of the release.

The serving tests (container HTTP, Docker image, local gateway -> Lambda -> runtime) compare every
answer with this file instead of with an engine loaded in the test process: an engine that scores
wrong in the server would score wrong in the test too, and the test could not fail.

So the numbers here never go through the serving engines (``inference.engine``/``onnx_engine``):
they come from the fitted scikit-learn Pipeline's own ``predict_proba`` on the frame training
builds (:func:`pipeline.features.to_model_frame`, the same gate :func:`pipeline.data.load_dataset`
uses). The file is written by ``train --release`` next to ``model.tar.gz`` and frozen with it; a
later change to any code path then shows up as a mismatch. ``python -m pipeline golden`` rewrites
it for an existing release without retraining.

The records cover rows of ``adult.test``, every spelling of a missing value the JSON API accepts
(null, an absent optional key, ``""``, ``"?"`` and those padded with spaces) in categorical and
numeric fields, schema edge values, non-integer numbers, padded and unknown categories.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pipeline.artifact import MODEL_FILE, Artifact
from pipeline.schema import CategoricalFeature, NumericFeature, Schema

GOLDEN_FILE = "golden_predictions.json"
TEST_ROWS = 24
"""How many leading rows of ``adult.test`` the fixture holds (real, varied records)."""

# Every spelling of "no value" the JSON API accepts in a field that is present (see
# inference.validation and pipeline.schema.MISSING_TOKENS); an absent optional key is the sixth.
MISSING_SPELLINGS: tuple[object, ...] = (None, "", "?", " ? ", "   ")


def golden_cases(schema: Schema, test_rows: Sequence[dict[str, object]]) -> list[tuple[str, dict]]:
    """(name, record) pairs: the given test rows, then missing-value spellings and edge values."""
    cases = [(f"adult.test row {i}", dict(row)) for i, row in enumerate(test_rows)]
    # The variations start from a married row: its probability is mid-range, so they move it.
    base = dict(next((r for r in test_rows if r.get("marital_status") == "Married-civ-spouse"), test_rows[0]))
    optional = [f.name for f in schema.features if f.optional]
    required_categorical = [
        f.name for f in schema.features if isinstance(f, CategoricalFeature) and not f.optional
    ]
    for spelling in MISSING_SPELLINGS:
        cases.append((f"optional categoricals = {spelling!r}", {**base, **dict.fromkeys(optional, spelling)}))
        cases.append(
            (f"age, hours_per_week = {spelling!r}", {**base, "age": spelling, "hours_per_week": spelling})
        )
    cases.append((f"{required_categorical[0]} = null", {**base, required_categorical[0]: None}))
    cases.append(("optional keys absent", {k: v for k, v in base.items() if k not in optional}))
    cases.append(("every feature null", dict.fromkeys(schema.names)))
    for feature in schema.features:
        if isinstance(feature, NumericFeature):
            for edge in ("minimum", "maximum"):
                value = _plain_number(getattr(feature, edge))
                cases.append((f"{feature.name} = {edge} {value}", {**base, feature.name: value}))
    cases.append(("capital_gain = 99999 (the data's cap)", {**base, "capital_gain": 99999}))
    cases.append(("non-integer numbers", {**base, "age": 44.5, "hours_per_week": 47.25}))
    padded = {n: f"  {v}  " for n, v in base.items() if isinstance(v, str)}
    cases.append(("categories padded with spaces", {**base, **padded}))
    cases.append(("unknown categories", {**base, "native_country": "Atlantis", "occupation": "Astronaut"}))
    return cases


def records_from_frame(test_frame: Any, schema: Schema, rows: int = TEST_ROWS) -> list[dict[str, object]]:
    """The first ``rows`` rows of a model frame as JSON records (missing -> null, whole numbers -> int)."""
    records = []
    for _, row in test_frame.head(rows).iterrows():
        record: dict[str, object] = {}
        for feature in schema.features:
            value = row[feature.name]
            if isinstance(feature, NumericFeature):
                record[feature.name] = None if math.isnan(value) else _plain_number(float(value))
            else:
                record[feature.name] = value or None
        records.append(record)
    return records


def compute_golden(artifact: Artifact, cases: Sequence[tuple[str, dict]]) -> dict[str, Any]:
    """The fixture document: each case's record with the Pipeline's own label and probability."""
    from pipeline.features import to_model_frame

    schema = artifact.schema
    # A record's absent key reaches the frame as None, exactly as an absent optional column would.
    columns = {name: [record.get(name) for _, record in cases] for name in schema.names}
    frame = to_model_frame(columns, schema)
    classes = [int(c) for c in artifact.pipeline.classes_]
    probabilities = artifact.pipeline.predict_proba(frame)[:, classes.index(1)]
    threshold = artifact.threshold
    return {
        "about": (
            "Release-time golden predictions: scikit-learn Pipeline.predict_proba on the training "
            "frame builder's output, never the serving engines. Written by `python -m pipeline train "
            "--release` (or `python -m pipeline golden`); serving tests assert against it."
        ),
        "model_sha256": artifact.manifest["artifact_files"][MODEL_FILE],
        "threshold": threshold,
        "positive_label": schema.positive_label,
        "negative_label": schema.negative_label,
        "cases": [
            {
                "name": name,
                "record": record,
                "label": schema.positive_label if p >= threshold else schema.negative_label,
                "probability": float(p),
            }
            for (name, record), p in zip(cases, probabilities, strict=True)
        ],
    }


def build_golden(artifact: Artifact, test_file: Path) -> dict[str, Any]:
    """The fixture for ``artifact``, with its first records taken from ``test_file``."""
    from pipeline.data import load_dataset

    rows = records_from_frame(load_dataset(test_file, artifact.schema).X, artifact.schema)
    return compute_golden(artifact, golden_cases(artifact.schema, rows))


def write_golden(document: dict[str, Any], path: Path) -> Path:
    """Write the fixture as stable JSON (floats in shortest round-trip form)."""
    path = Path(path)
    path.write_text(json.dumps(document, indent=1, ensure_ascii=False, allow_nan=False) + "\n", "utf-8")
    return path


def read_golden(path: Path) -> dict[str, Any]:
    """Load a fixture written by :func:`write_golden`."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def _plain_number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else float(value)
