"""Predictions to response bodies: JSON (default), CSV and JSON Lines.

Every prediction carries the label (positive when P(>50K) >= the artifact's threshold) and the
probability of the positive class, in request order:

* ``application/json``: ``{"predictions": [{"label": ">50K", "probability": 0.8123}, ...]}``
  (a list even for a single record, so one client path handles both);
* ``text/csv``: one ``label,probability`` line per record, no header (Batch Transform joins output
  lines to input lines one to one); the number is written exactly as in the JSON output (the
  shortest text that reads back as the same double, without an exponent for small values);
* ``application/jsonlines``: one ``{"label": ..., "probability": ...}`` object per line.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import orjson

from inference.content_types import CSV, JSON, JSONLINES


@dataclass(frozen=True)
class Labeller:
    """Turns probabilities into labels with the artifact's decision threshold."""

    threshold: float
    positive_label: str
    negative_label: str

    def labels(self, probabilities: np.ndarray | list[float]) -> list[str]:
        # Python floats compare ~10x faster than numpy scalars in a comprehension.
        if isinstance(probabilities, list):
            values = probabilities
        else:
            values = np.asarray(probabilities, dtype=np.float64).tolist()
        return [self.positive_label if p >= self.threshold else self.negative_label for p in values]


ENCODE_CHUNK_ROWS = 4096
"""Rows encoded at a time. A 6 MiB batch's per-row Python objects (floats, labels, dicts, lines)
would otherwise all exist at once, ~20 MiB for 65,000 rows; the answer is joined from the pieces."""


def encode(probabilities: np.ndarray, labeller: Labeller, media_type: str) -> bytes:
    """The response body for ``probabilities`` in ``media_type`` (one of the OUTPUT_TYPES)."""
    if media_type not in _PIECES:
        raise ValueError(f"no encoder for {media_type!r}")  # negotiation only yields the types above
    probs = np.asarray(probabilities, dtype=np.float64)
    step = ENCODE_CHUNK_ROWS
    # Python floats, as float(p) gives.
    pieces = [_PIECES[media_type](probs[i : i + step].tolist(), labeller) for i in range(0, len(probs), step)]
    if media_type == JSON:
        return b'{"predictions":[' + b",".join(pieces) + b"]}"
    if media_type == JSONLINES and not pieces:
        return b"\n"
    return b"".join(pieces)


def _json_piece(probs: list[float], labeller: Labeller) -> bytes:
    """The predictions' objects, comma-separated (the inside of the JSON list)."""
    labels = labeller.labels(probs)
    predictions = [{"label": lab, "probability": p} for lab, p in zip(labels, probs, strict=True)]
    return orjson.dumps(predictions)[1:-1]


def _jsonlines_piece(probs: list[float], labeller: Labeller) -> bytes:
    labels = labeller.labels(probs)
    lines = [orjson.dumps({"label": lab, "probability": p}) for lab, p in zip(labels, probs, strict=True)]
    return b"\n".join(lines) + b"\n"


def _csv_piece(probs: list[float], labeller: Labeller) -> bytes:
    labels = labeller.labels(probs)
    # orjson formats the whole list in one native call; a repr() per number costs 4x as much.
    numbers = orjson.dumps(probs)[1:-1].split(b",")
    cells = {lab: _csv_cell(lab).encode() + b"," for lab in set(labels)}
    return b"".join([cells[lab] + number + b"\n" for lab, number in zip(labels, numbers, strict=True)])


_PIECES = {JSON: _json_piece, JSONLINES: _jsonlines_piece, CSV: _csv_piece}


def _csv_cell(text: str) -> str:
    """Quote a CSV cell only when it needs it (the schema's labels ">50K"/"<=50K" never do)."""
    if any(c in text for c in ',"\r\n'):
        return '"' + text.replace('"', '""') + '"'
    return text
