"""One monitor run: captured events -> records and predictions -> drift against the baseline."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from pipeline.monitoring.capture_files import CapturedEvent, FileReport
from pipeline.monitoring.drift import Thresholds, compare
from pipeline.monitoring.payloads import PayloadError, decode_probabilities, decode_records, payload_bytes
from pipeline.schema import Schema


class NoBaselineError(ValueError):
    """The model's manifest has no monitoring baseline (trained before the baseline existed)."""


@dataclass
class Traffic:
    """The records and predictions decoded from the captured events."""

    frame: pd.DataFrame
    probabilities: np.ndarray
    events: int
    undecodable: list[dict[str, Any]] = field(default_factory=list)
    first: datetime | None = None
    last: datetime | None = None


def decode_events(events: list[CapturedEvent], schema: Schema) -> Traffic:
    """Decode every event; an event whose body cannot be read is listed (file, line, why) and skipped.

    Predictions are kept only for events whose output holds one probability per input record, so
    records and predictions describe the same requests.
    """
    frames: list[pd.DataFrame] = []
    probabilities: list[float] = []
    undecodable: list[dict[str, Any]] = []
    for event in events:
        try:
            frame = decode_records(
                payload_bytes(event.endpoint_input),
                str(event.endpoint_input.get("observedContentType", "")),
                schema,
            )
        except PayloadError as exc:
            undecodable.append({"file": event.source, "line": event.line, "problem": f"input: {exc}"})
            continue
        frames.append(frame)
        if event.endpoint_output is None:
            continue
        try:
            probs = decode_probabilities(
                payload_bytes(event.endpoint_output),
                str(event.endpoint_output.get("observedContentType", "")),
            )
        except PayloadError as exc:
            undecodable.append({"file": event.source, "line": event.line, "problem": f"output: {exc}"})
            continue
        if len(probs) != len(frame):
            undecodable.append(
                {
                    "file": event.source,
                    "line": event.line,
                    "problem": f"output: {len(probs)} predictions for {len(frame)} records",
                }
            )
            continue
        probabilities += probs
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=schema.names)
    times = [e.inference_time for e in events]
    return Traffic(
        frame=frame,
        probabilities=np.asarray(probabilities, dtype=np.float64),
        events=len(events),
        undecodable=undecodable,
        first=min(times) if times else None,
        last=max(times) if times else None,
    )


def run_monitor(
    manifest: dict[str, Any],
    schema: Schema,
    events: list[CapturedEvent],
    file_reports: list[FileReport],
    thresholds: Thresholds,
    source: str,
    since: datetime | None = None,
) -> dict[str, Any]:
    """The full result the report is written from."""
    baseline = manifest.get("baseline")
    if not baseline:
        raise NoBaselineError(
            "the model's manifest.json has no 'baseline' section: retrain with this version "
            "(python -m pipeline train) so the training run stores one"
        )
    traffic = decode_events(events, schema)
    drift = compare(baseline, traffic.frame, traffic.probabilities, thresholds)
    return {
        "source": source,
        "since": since.isoformat() if since else None,
        "window": {
            "first": traffic.first.isoformat() if traffic.first else None,
            "last": traffic.last.isoformat() if traffic.last else None,
        },
        "events": traffic.events,
        "files": {
            "read": len(file_reports),
            "with_problems": [
                {
                    "file": r.source,
                    "events": r.events,
                    "skipped_lines": r.skipped_lines,
                    "problems": r.problems,
                }
                for r in file_reports
                if r.problems
            ],
        },
        "undecodable_events": traffic.undecodable,
        "baseline": {
            "data": baseline.get("data"),
            "rows": baseline.get("rows"),
            "prediction_source": (baseline.get("prediction") or {}).get("source"),
            "model_sha256": manifest.get("artifact_files", {}).get("model.joblib"),
        },
        **drift,
    }
