"""``python -m pipeline evidence ...`` (read the live stack for the report) and ``verify-gone``.

``evidence endpoint | usage-plan | burst | metrics | logs`` print what the report's AWS captures show
(``make aws-evidence`` records them through ``python -m docs.report.cloud_session``); ``verify-gone``
is the second half of ``make aws-down``: exit 0 only when nothing of the project is left.
Each exits 1 when the stack does not show what it should (no 429, no datapoints, no log lines).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from pipeline.commands import deploy_config
from pipeline.commands.cloud import EXIT_FAILED, _guarded


def register(subparsers: Any) -> None:
    """Add ``evidence`` and ``verify-gone`` to ``python -m pipeline``."""
    common = deploy_config.options()
    evidence = subparsers.add_parser(
        "evidence",
        help="read the live AWS stack for the report (endpoint, usage plan, throttling, metrics, logs)",
        description="Read-only looks at the deployed stack; API key values are never printed.",
    )
    actions = evidence.add_subparsers(dest="evidence_action", required=True, metavar="WHAT")
    actions.add_parser(
        "endpoint", parents=[common], help="DescribeEndpoint as JSON (aws sagemaker describe-endpoint)"
    ).set_defaults(func=run_endpoint)
    actions.add_parser(
        "usage-plan", parents=[common], help="throttle, quota, stages and key ids of the usage plan (JSON)"
    ).set_defaults(func=run_usage_plan)

    burst = actions.add_parser(
        "burst",
        parents=[common],
        help="a bounded burst of GETs with the key until the first 429 (at most 3 x the plan's burst)",
    )
    burst.add_argument("url", help='what to request, e.g. "$API/health" (no model call behind it)')
    burst.add_argument(
        "--key-file", type=Path, help="file holding the key (default .secrets/<prefix>-default.key)"
    )
    burst.add_argument("--concurrency", type=int, help="requests in flight at once (default 32)")
    burst.set_defaults(func=run_burst)

    metrics = actions.add_parser(
        "metrics", parents=[common], help="API Gateway Count and SageMaker Invocations, last hour"
    )
    metrics.add_argument("--minutes", type=int, default=60, help="window (default 60)")
    metrics.add_argument(
        "--wait",
        type=float,
        default=0.0,
        help="seconds to keep reading until a datapoint appears (default 0)",
    )
    metrics.set_defaults(func=run_metrics)

    logs = actions.add_parser("logs", parents=[common], help="the Lambda proxy's last log lines (scrubbed)")
    logs.add_argument("--lines", type=int, default=15, help="how many (default 15)")
    logs.add_argument("--minutes", type=int, default=60, help="window (default 60)")
    logs.set_defaults(func=run_logs)

    gone = subparsers.add_parser(
        "verify-gone",
        parents=[common],
        help="after teardown: exit 0 only if no resource of the project is left (by name and by tag)",
    )
    gone.add_argument(
        "--wait",
        type=float,
        default=120.0,
        help="seconds to look again while the Tagging API still lists deleted resources (default 120)",
    )
    gone.set_defaults(func=run_verify_gone)


def _stack(args: argparse.Namespace) -> tuple[Any, Any, Any]:
    from pipeline.cloud.clients import Clients
    from pipeline.cloud.names import names_for

    config = deploy_config.load(args)
    clients = Clients(config.project.region)
    return config, clients, names_for(config, clients.account_id)


@_guarded
def run_endpoint(args: argparse.Namespace) -> int:
    from pipeline.cloud.evidence import describe_endpoint

    _, clients, names = _stack(args)
    print(json.dumps(describe_endpoint(clients, names), indent=2, default=str))
    return 0


@_guarded
def run_usage_plan(args: argparse.Namespace) -> int:
    from pipeline.cloud.evidence import usage_plan

    _, clients, names = _stack(args)
    print(json.dumps(usage_plan(clients, names), indent=2, default=str))
    return 0


@_guarded
def run_burst(args: argparse.Namespace) -> int:
    from pipeline.cloud import keys
    from pipeline.cloud.errors import CloudError
    from pipeline.cloud.evidence import BURST_CONCURRENCY, burst, burst_cap, render_burst, usage_plan

    _, clients, names = _stack(args)
    key_file = args.key_file or keys.secrets_dir() / f"{names.default_key}.key"
    if not key_file.is_file():
        raise CloudError(f"{key_file} is missing: create a key with `python -m pipeline keys create NAME`")
    concurrency = BURST_CONCURRENCY if args.concurrency is None else args.concurrency
    if concurrency < 1:
        raise CloudError("--concurrency must be at least 1")
    throttle = usage_plan(clients, names)["throttle"] or {}
    rate, limit = float(throttle.get("rateLimit", 0)), int(throttle.get("burstLimit", 0))
    if limit < 1:
        raise CloudError(f"usage plan {names.usage_plan} has no burst limit, so nothing would throttle")
    shown = key_file.relative_to(Path.cwd()) if key_file.is_relative_to(Path.cwd()) else key_file
    print(f"key from {shown} (value not shown)")
    cap = burst_cap(limit)
    result = burst(args.url, key_file.read_text().strip(), cap, concurrency)
    print("\n".join(render_burst(result, args.url, rate, limit, concurrency)))
    return 0 if result.first_throttled is not None else EXIT_FAILED


@_guarded
def run_metrics(args: argparse.Namespace) -> int:
    from pipeline.cloud.evidence import read_metrics, render_metrics, wait_for_metrics

    _, clients, names = _stack(args)
    reads = wait_for_metrics(lambda: read_metrics(clients, names, args.minutes), args.wait)
    print("\n".join(render_metrics(reads, args.minutes, 300)))
    if not reads[0].points:
        print(
            f"no API Gateway datapoints within {args.wait:g} s: CloudWatch publishes metrics after a delay; "
            "run again in a few minutes",
            file=sys.stderr,
        )
        return EXIT_FAILED
    return 0


@_guarded
def run_logs(args: argparse.Namespace) -> int:
    from pipeline.cloud import keys
    from pipeline.cloud.evidence import log_tail

    _, clients, names = _stack(args)
    # Any key this project saved is scrubbed by value too, on top of the key-shaped pattern.
    known = [p.read_text().strip() for p in keys.secrets_dir().glob(f"{names.prefix}-*.key") if p.is_file()]
    lines = log_tail(clients, names.function_log_group, args.lines, args.minutes, known)
    print(f"{names.function_log_group}, last {len(lines)} events of the last {args.minutes} min (UTC):")
    print("\n".join(lines) if lines else "    no events")
    return 0 if lines else EXIT_FAILED


@_guarded
def run_verify_gone(args: argparse.Namespace) -> int:
    from pipeline.cloud.leftovers import render, verify_gone

    config, clients, _ = _stack(args)
    found = verify_gone(config, clients, wait_s=args.wait)
    print("\n".join(render(found, config.project.name_prefix, config.project.region)))
    return 0 if found.clean else EXIT_FAILED
