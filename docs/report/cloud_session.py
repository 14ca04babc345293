"""Record the report's terminal sessions against the AWS deployment (``python -m docs.report --target aws``).

Needs AWS credentials for the account ``python -m pipeline deploy`` deployed to, and the API key that
deploy saved in ``.secrets/<prefix>-default.key``. Sessions, saved as ``captures/cloud/NN_name.json``: the
deployment's status, predictions through the API Gateway URL with the key, and refused requests. No load
is sent: throttling is left to the local run. When ``captures/cloud/`` holds captures, the report shows them
and labels its evidence as AWS.
"""

from __future__ import annotations

import json
from pathlib import Path

from . import paths
from .capture import save
from .sessions import CaptureError, expect, new_recorder, record_requests, use_key, write_samples

WHERE = "AWS"


def record(destination: Path) -> list[Path]:
    """Record the AWS sessions into ``destination``; returns the files written."""
    from pipeline.cloud.config import load_config

    write_samples()
    recorder = new_recorder()
    status_step = recorder.run("python -m pipeline status")
    expect(status_step, "api")
    saved = [
        save(recorder.capture("01_status", "The AWS deployment ('pipeline status')", WHERE), destination)
    ]

    status = json.loads(new_recorder().run("python -m pipeline status --json").output)
    if not status.get("api") or not status.get("endpoint"):
        raise CaptureError("no deployed API or endpoint found: run 'python -m pipeline deploy' first")
    if status["endpoint"].get("status") != "InService":
        raise CaptureError(f"the endpoint is {status['endpoint'].get('status')}, not InService")
    key_file = paths.ROOT / ".secrets" / f"{load_config().project.name_prefix}-default.key"
    if not key_file.is_file():
        raise CaptureError(f"{key_file} is missing: create a key with 'python -m pipeline keys create NAME'")
    api = status["api"]["url"].removesuffix("/predict")
    exports = use_key(recorder, api, key_file)
    saved += record_requests(recorder, exports, WHERE, destination, "the AWS API Gateway")
    return saved
