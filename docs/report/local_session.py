"""Record the report's terminal sessions from a real run of the local cloud.

Four sessions, each saved as ``captures/local/NN_name.json``: starting the stack; predictions through the
local API Gateway with an API key; refused requests (no key, a wrong key, an invalid record); and the
usage plan's throttling, shown on a stack restarted with a deliberately tight plan (the override is on
the command line, so the picture says so). The stack is always stopped at the end, even on failure.

The commands run from the repository root with the virtual environment first on PATH, exactly as shown.
The API key is created with the project's key store (``pipeline.local.demo.demo_key``), read into the
``API_KEY`` variable by a shown ``export`` line, and scrubbed from every output.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from . import paths
from .capture import Recorder, save

SAMPLES = paths.REPORT_DIR / "samples"
THROTTLE_OVERRIDES = "--set api.throttle_rate=5 --set api.throttle_burst=10"
CURL = "curl -s -w '  [HTTP %{http_code}]\\n'"


class CaptureError(RuntimeError):
    """The local cloud did not behave as the captures expect (the message shows the output)."""


def record(destination: Path) -> list[Path]:
    """Run the local cloud, record the sessions into ``destination`` and stop the stack; returns the files."""
    from pipeline.local.demo import CSV_BATCH, RECORD, demo_key
    from pipeline.local.settings import load_local_settings
    from pipeline.local.stack import Stack

    SAMPLES.mkdir(parents=True, exist_ok=True)
    # The demo's own samples, written where the shown commands read them.
    (SAMPLES / "record.json").write_text(json.dumps(RECORD, indent=1) + "\n")
    (SAMPLES / "invalid.json").write_text(json.dumps({**RECORD, "age": -4, "hours_per_week": "forty"}) + "\n")
    (SAMPLES / "batch.csv").write_text(CSV_BATCH)
    settings = load_local_settings()
    if Stack(settings).running() is not None:
        print("report: stopping the running local stack to record a fresh run")
        Stack(settings).down(quiet=True)
    venv_bin = str(Path(sys.executable).parent)
    recorder = Recorder(cwd=paths.ROOT, env={"PATH": f"{venv_bin}:{os.environ.get('PATH', '')}"}, timeout=900)
    saved: list[Path] = []
    try:
        _expect(recorder.run("python -m pipeline deploy --dry-run"), "Dry run")
        saved.append(
            save(
                recorder.capture(
                    "00_deploy_plan",
                    "What 'deploy' would create in AWS (dry run: no AWS calls)",
                    "LOCAL",
                    notes="The deploy command's plan, printed without credentials; it was not executed "
                    "against AWS for this report.",
                ),
                destination,
            )
        )
        _expect(recorder.run("python -m pipeline local up"), "the local stack is up")
        saved.append(save(recorder.capture("01_local_up", "Starting the local cloud", "LOCAL"), destination))

        info = Stack(settings).running()
        if info is None:
            raise CaptureError("the local stack is not running after 'local up'")
        key_file, _ = demo_key(settings)
        key = key_file.read_text().strip()
        api = f"{info.gateway_url}/{info.stage}"
        recorder.env = {**recorder.env, "API_KEY": key, "API": api}
        recorder.secrets = [key]
        record_json = "@docs/report/samples/record.json"
        key_path = key_file.relative_to(paths.ROOT) if key_file.is_relative_to(paths.ROOT) else key_file
        exports = f"export API={api} API_KEY=$(cat {key_path})   # the key value is never shown"

        recorder.run(exports)
        recorder.run("cat docs/report/samples/record.json")
        _expect(
            recorder.run(
                f'{CURL} "$API/predict" -H "x-api-key: $API_KEY" -H "Content-Type: application/json" '
                f"-d {record_json}"
            ),
            "[HTTP 200]",
        )
        recorder.run("cat docs/report/samples/batch.csv")
        _expect(
            recorder.run(
                f'{CURL} "$API/predict" -H "x-api-key: $API_KEY" -H "Content-Type: text/csv" '
                "--data-binary @docs/report/samples/batch.csv"
            ),
            "[HTTP 200]",
        )
        saved.append(
            save(
                recorder.capture(
                    "02_predictions",
                    "Predictions through the local API Gateway with an API key",
                    "LOCAL",
                    notes="One JSON record, then a CSV batch with a header row and '?' for missing values.",
                ),
                destination,
            )
        )

        recorder.run(exports)
        _expect(
            recorder.run(f'{CURL} "$API/predict" -H "Content-Type: application/json" -d {record_json}'),
            "[HTTP 403]",
        )
        _expect(
            recorder.run(
                f'{CURL} "$API/predict" -H "x-api-key: not-a-real-key" -H "Content-Type: application/json" '
                f"-d {record_json}"
            ),
            "[HTTP 403]",
        )
        invalid = "@docs/report/samples/invalid.json"
        recorder.run("cat docs/report/samples/invalid.json")
        _expect(
            recorder.run(
                f'{CURL} "$API/predict" -H "x-api-key: $API_KEY" -H "Content-Type: application/json" '
                f"-d {invalid}"
            ),
            "[HTTP 400]",
        )
        saved.append(
            save(
                recorder.capture(
                    "03_refusals",
                    "Refused requests: no API key, a wrong key, an invalid record",
                    "LOCAL",
                    notes="The gateway answers 403 before the Lambda runs; the container names each bad "
                    "field with a 400.",
                ),
                destination,
            )
        )

        recorder.run("python -m pipeline local down")
        _expect(recorder.run(f"python -m pipeline local up {THROTTLE_OVERRIDES}"), "the local stack is up")
        recorder.run(exports)
        _expect(
            recorder.run(f'for i in $(seq 16); do {CURL} -H "x-api-key: $API_KEY" "$API/health"; done'),
            "[HTTP 429]",
        )
        recorder.run("python -m pipeline local down")
        saved.append(
            save(
                recorder.capture(
                    "04_throttling",
                    "Throttling by the usage plan (stack restarted with 5 requests/s, burst 10)",
                    "LOCAL",
                    notes="The tight plan is set on the command line to make the limit visible with a short "
                    "loop; the deployed default is in config/deploy.toml.",
                ),
                destination,
            )
        )
    finally:
        Stack(settings).down(quiet=True)
    return saved


def _expect(step: object, text: str) -> None:
    output = getattr(step, "output", "")
    if text not in output:
        raise CaptureError(f"expected {text!r} in the output of {getattr(step, 'command', '?')!r}:\n{output}")
