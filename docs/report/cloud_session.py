"""Record the report's terminal sessions against the AWS deployment (``make aws-evidence``).

``python -m docs.report.cloud_session`` (or ``python -m docs.report --target aws``, which also builds the
report). Needs AWS credentials for the account ``make aws-up`` deployed to, the API key deploy saved in
``.secrets/<prefix>-default.key`` and the deploy output ``make aws-up`` saved in ``build/aws/deploy.log``.

Sessions, saved as ``captures/cloud/NN_name.json``: the deploy output; ``pipeline status``; predictions
with the key (200) and refused requests (no key or a wrong key 403, an invalid record 400); a bounded
burst until the usage plan answers 429; DescribeEndpoint; the usage plan (key ids only); a CloudWatch
metric read; the Lambda's log tail. Every HTTP step carries the status it must show and every other
step must succeed and show a stated text, so a capture that contradicts its caption fails the
recording. The key goes to commands only as ``$API_KEY`` (read from the file by a shown ``export``
line) or from its file inside ``pipeline evidence burst``; outputs are scrubbed of its value. The
captures are written to a scratch directory and replace ``captures/cloud/`` only when all succeeded,
so the report never mixes a partial AWS run with an older one. When ``captures/cloud/`` holds captures,
the report shows them and labels its evidence as AWS.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from . import paths
from .capture import CaptureMismatchError, Recorder, save
from .sessions import CaptureError, expect, new_recorder, record_requests, use_key, write_samples
from .terminal import Step

WHERE = "AWS"
DEPLOY_LOG = paths.ROOT / "build" / "aws" / "deploy.log"
# The deploy's own lines in the saved log: aws-up's header, numbered steps and their indented details
# (docker build and other tools' raw output is left out of the picture; the log file keeps it).
DEPLOY_LINES = r"^(==|\[[0-9]+\]|    )"
METRICS_WAIT_S = 300.0


def record(
    destination: Path,
    *,
    deploy_log: Path = DEPLOY_LOG,
    api_url: str | None = None,
    metrics_wait_s: float = METRICS_WAIT_S,
) -> list[Path]:
    """Record the AWS sessions and replace ``destination`` with them; returns the files written.

    ``api_url`` replaces the deployed stage URL (``https://<id>.execute-api.<region>.../<stage>``) for
    the HTTP requests; the tests point it at a loopback stand-in because moto cannot serve an API.
    """
    from pipeline.cloud.config import load_config
    from pipeline.cloud.keys import secrets_dir

    write_samples()
    status = _deployed_status()
    key_file = secrets_dir() / f"{load_config().project.name_prefix}-default.key"
    if not key_file.is_file():
        raise CaptureError(f"{key_file} is missing: create a key with 'python -m pipeline keys create NAME'")
    api = api_url or status["api"]["url"].removesuffix("/predict")
    recorder = new_recorder()
    exports = use_key(recorder, api, key_file)  # from here on every output is scrubbed of the key
    scratch = destination.with_name(f".{destination.name}.recording")
    shutil.rmtree(scratch, ignore_errors=True)
    try:
        saved = [_deploy_output(recorder, deploy_log, key_file, scratch)]
        _succeeded(recorder.run("python -m pipeline status"), "InService")
        saved.append(
            save(recorder.capture("01_status", "The AWS deployment ('pipeline status')", WHERE), scratch)
        )
        saved += record_requests(recorder, exports, WHERE, scratch, "the AWS API Gateway")
        saved += _aws_sessions(recorder, exports, scratch, metrics_wait_s)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)  # a failed recording leaves the previous one as it was
        raise
    shutil.rmtree(destination, ignore_errors=True)
    scratch.rename(destination)
    return [destination / p.name for p in saved]


def _deployed_status() -> dict:
    """``pipeline status --json``, after checking there is an API and an endpoint in service."""
    step = new_recorder().run("python -m pipeline status --json")
    if step.exit_code != 0:
        raise CaptureError(f"'python -m pipeline status --json' failed:\n{step.output}")
    status = json.loads(step.output)
    if not status.get("api") or not status.get("endpoint"):
        raise CaptureError("no deployed API or endpoint found: run 'make aws-up' first")
    if status["endpoint"].get("status") != "InService":
        raise CaptureError(f"the endpoint is {status['endpoint'].get('status')}, not InService")
    return status


def _shown(path: Path) -> Path:
    return path.relative_to(paths.ROOT) if path.is_relative_to(paths.ROOT) else path


def _succeeded(step: Step, text: str) -> Step:
    """The step exited 0 and shows ``text`` (what its caption says it shows)."""
    if step.exit_code != 0:
        raise CaptureError(f"{step.command!r} exited with status {step.exit_code}:\n{step.output}")
    expect(step, text)
    return step


def _deploy_output(recorder: Recorder, deploy_log: Path, key_file: Path, destination: Path) -> Path:
    """The saved output of the last ``make aws-up``; refuses a log holding the key or an unfinished deploy."""
    if not deploy_log.is_file():
        raise CaptureError(f"{deploy_log} is missing: 'make aws-up' writes it")
    text = deploy_log.read_text(errors="replace")
    if key_file.read_text().strip() in text:
        raise CaptureError(
            f"{deploy_log} contains the API key's value (a deploy run with --show-key?): delete it and run "
            "'make aws-up' again"
        )
    if "invoke URL:" not in text:
        raise CaptureError(f"{deploy_log} has no deploy summary: the last 'make aws-up' did not finish")
    _succeeded(recorder.run(f"grep -E '{DEPLOY_LINES}' {_shown(deploy_log)}"), "invoke URL:")
    return save(
        recorder.capture(
            "00_deploy",
            "Deploying to AWS ('make aws-up'): the deploy's own output",
            WHERE,
            notes=f"The output of the last 'make aws-up', saved to {_shown(deploy_log)} as it ran; docker "
            "and other tools' raw output is in that file and left out here.",
        ),
        destination,
    )


def _aws_sessions(recorder: Recorder, exports: str, destination: Path, metrics_wait_s: float) -> list[Path]:
    """Throttling, DescribeEndpoint, the usage plan, a metric read and the Lambda's log tail."""
    from pipeline.cloud.evidence import BURST_CONCURRENCY, BURST_FACTOR

    saved = []
    recorder.run(exports)
    recorder.run('python -m pipeline evidence burst "$API/health"', expect_status=429)
    saved.append(
        save(
            recorder.capture(
                "04_throttling",
                "Throttling by the deployed usage plan: a bounded burst until the first 429",
                WHERE,
                notes="GET /health (the Lambda answers it without calling the model) with the key, "
                f"{BURST_CONCURRENCY} at a time, at most {BURST_FACTOR} times the plan's burst limit; it "
                "stops issuing at the first 429, which API Gateway answers before the Lambda runs.",
            ),
            destination,
        )
    )
    _succeeded(recorder.run("python -m pipeline evidence endpoint"), '"EndpointStatus": "InService"')
    saved.append(
        save(
            recorder.capture(
                "05_endpoint",
                "The SageMaker endpoint (DescribeEndpoint, as 'aws sagemaker describe-endpoint')",
                WHERE,
            ),
            destination,
        )
    )
    _succeeded(recorder.run("python -m pipeline evidence usage-plan"), '"throttle"')
    saved.append(
        save(
            recorder.capture(
                "06_usage_plan",
                "The usage plan: throttle, quota, stage and the keys on it (ids only)",
                WHERE,
            ),
            destination,
        )
    )
    _succeeded(
        recorder.run(f"python -m pipeline evidence metrics --wait {metrics_wait_s:g}"), "AWS/ApiGateway Count"
    )
    saved.append(
        save(
            recorder.capture(
                "07_metrics",
                "CloudWatch metrics of the last hour: API Gateway requests and endpoint invocations",
                WHERE,
                notes="GetMetricStatistics, Sum per 5 minutes; the requests above appear after CloudWatch's "
                "publishing delay.",
            ),
            destination,
        )
    )
    _succeeded(recorder.run("python -m pipeline evidence logs --lines 15"), '"event":"request"')
    saved.append(
        save(
            recorder.capture(
                "08_lambda_logs",
                "The Lambda proxy's log tail: one JSON line per request, no payloads, no key values",
                WHERE,
                notes="FilterLogEvents on the function's log group; the key id is logged, never its value, "
                "and anything shaped like a key is replaced by *** before printing.",
            ),
            destination,
        )
    )
    return saved


def main(argv: Sequence[str] | None = None) -> int:
    """``make aws-evidence``: record the AWS captures (the report is built by ``make report``)."""
    parser = argparse.ArgumentParser(
        prog="python -m docs.report.cloud_session", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--deploy-log", type=Path, default=DEPLOY_LOG, help="the saved 'make aws-up' output")
    parser.add_argument(
        "--metrics-wait", type=float, default=METRICS_WAIT_S, help="seconds to wait for CloudWatch datapoints"
    )
    args = parser.parse_args(argv)
    try:
        written = record(
            paths.CAPTURES / "cloud", deploy_log=args.deploy_log, metrics_wait_s=args.metrics_wait
        )
    except (CaptureError, CaptureMismatchError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for path in written:
        print(f"wrote {_shown(path)}")
    print("'make report' now shows these AWS captures instead of the local ones")
    return 0


if __name__ == "__main__":
    sys.exit(main())
