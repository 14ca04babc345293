"""The request sessions the report shows, shared by the local and the AWS recordings.

Given an API base URL (``.../<stage>``) and the file holding an API key, they record: predictions with a
key (one JSON record, a CSV batch) and refused requests (no key, a wrong key, an invalid record). The key is
read into ``$API_KEY`` by a shown ``export`` line and never printed; the commands read the request bodies
from ``docs/report/samples/`` so the pictures stay readable.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from . import paths
from .capture import Recorder, save

SAMPLES = paths.REPORT_DIR / "samples"
CURL = "curl -s -w '  [HTTP %{http_code}]\\n'"
RECORD_FILE = "@docs/report/samples/record.json"
INVALID_FILE = "@docs/report/samples/invalid.json"


class CaptureError(RuntimeError):
    """The service did not behave as the captures expect (the message shows the output)."""


def write_samples() -> None:
    """The demo's own sample requests, written where the shown commands read them."""
    from pipeline.local.demo import CSV_BATCH
    from pipeline.schema import EXAMPLE_RECORD as RECORD

    SAMPLES.mkdir(parents=True, exist_ok=True)
    (SAMPLES / "record.json").write_text(json.dumps(RECORD) + "\n")  # one line: a shorter capture
    (SAMPLES / "invalid.json").write_text(json.dumps({**RECORD, "age": -4, "hours_per_week": "forty"}) + "\n")
    (SAMPLES / "batch.csv").write_text(CSV_BATCH)


def new_recorder() -> Recorder:
    """A recorder in the repository root with the virtual environment first on PATH (``python`` = venv)."""
    venv_bin = str(Path(sys.executable).parent)
    return Recorder(cwd=paths.ROOT, env={"PATH": f"{venv_bin}:{os.environ.get('PATH', '')}"}, timeout=900)


def expect(step: object, text: str) -> None:
    """Fail the recording when a step's output lacks ``text`` (a capture must show what it claims)."""
    output = getattr(step, "output", "")
    if text not in output:
        raise CaptureError(f"expected {text!r} in the output of {getattr(step, 'command', '?')!r}:\n{output}")


def use_key(recorder: Recorder, api: str, key_file: Path) -> str:
    """Give the recorder the API URL and key; returns the ``export`` line the sessions show."""
    key = key_file.read_text().strip()
    recorder.env = {**recorder.env, "API_KEY": key, "API": api}
    recorder.secrets = [*recorder.secrets, key]
    shown = key_file.relative_to(paths.ROOT) if key_file.is_relative_to(paths.ROOT) else key_file
    return f"export API={api} API_KEY=$(cat {shown})   # the key value is never shown"


def record_requests(
    recorder: Recorder, exports: str, where: str, destination: Path, gateway: str
) -> list[Path]:
    """Record the predictions and the refusals; ``gateway`` names the API ("the local API Gateway" ...)."""
    saved = []
    recorder.run(exports)
    recorder.run("cat docs/report/samples/record.json")
    recorder.run(
        f'{CURL} "$API/predict" -H "x-api-key: $API_KEY" -H "Content-Type: application/json" '
        f"-d {RECORD_FILE}",
        expect_status=200,
    )
    recorder.run("cat docs/report/samples/batch.csv")
    recorder.run(
        f'{CURL} "$API/predict" -H "x-api-key: $API_KEY" -H "Content-Type: text/csv" '
        "--data-binary @docs/report/samples/batch.csv",
        expect_status=200,
    )
    saved.append(
        save(
            recorder.capture(
                "02_predictions",
                f"Predictions through {gateway} with an API key",
                where,
                notes="One JSON record, then a CSV batch with a header row and '?' for missing values.",
            ),
            destination,
        )
    )

    recorder.run(exports)
    recorder.run(
        f'{CURL} "$API/predict" -H "Content-Type: application/json" -d {RECORD_FILE}', expect_status=403
    )
    recorder.run(
        f'{CURL} "$API/predict" -H "x-api-key: not-a-real-key" -H "Content-Type: application/json" '
        f"-d {RECORD_FILE}",
        expect_status=403,
    )
    recorder.run("cat docs/report/samples/invalid.json")
    recorder.run(
        f'{CURL} "$API/predict" -H "x-api-key: $API_KEY" -H "Content-Type: application/json" '
        f"-d {INVALID_FILE}",
        expect_status=400,
    )
    saved.append(
        save(
            recorder.capture(
                "03_refusals",
                "Refused requests: no API key, a wrong key, an invalid record",
                where,
                notes="The gateway answers 403 before the Lambda runs; the container names each bad field "
                "with a 400.",
            ),
            destination,
        )
    )
    return saved
