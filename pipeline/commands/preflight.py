"""``python -m pipeline preflight``: check credentials, Docker, quotas, permissions and cost before a deploy.

Reads the same configuration as the other cloud commands (``--config``, ``ADULT_*``, ``--set``).
Exits 0 when every check passes (warnings allowed), 1 when any fails, 2 for an invalid configuration.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from typing import Any

from pipeline.commands import deploy_config
from pipeline.commands.cloud import EXIT_FAILED, _guarded


def register(subparsers: Any) -> None:
    """Add ``preflight`` to ``python -m pipeline``."""
    parser = subparsers.add_parser(
        "preflight",
        parents=[deploy_config.options()],
        help="check credentials, Docker, SageMaker quotas, IAM permissions and cost; creates nothing",
        description="Check everything a deploy needs before anything is created.",
    )
    parser.add_argument(
        "--skip-docker", action="store_true", help="do not check Docker (deploying with --image-uri)"
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(func=run_preflight_command)


@_guarded
def run_preflight_command(args: argparse.Namespace) -> int:
    from pipeline.cloud.clients import Clients
    from pipeline.cloud.preflight import render, run_preflight
    from pipeline.cloud.progress import Progress

    config = deploy_config.load(args)
    # With --json the per-check lines are not streamed: stdout carries the JSON document only.
    progress = Progress(io.StringIO() if args.json else sys.stdout)
    if not args.json:
        print(f"preflight for {config.project.name_prefix} in {config.project.region}")
    report = run_preflight(
        config, Clients(config.project.region), progress, check_docker=not args.skip_docker
    )
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(render(report)[-1])
    return 0 if report.ok else EXIT_FAILED
