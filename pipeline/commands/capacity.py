"""``python -m pipeline capacity``: the capacity plan for a peak load, from the measured throughput.

Reads the deploy configuration (``--config``, ``ADULT_*``, ``--set``) for the instance type, limits and
prices. Exit 0 with a plan; 2 for bad arguments, an invalid configuration or an instance type missing
from the vCPU table; 1 when the benchmark result or price table cannot be used or no measured point
meets ``--p99-ms``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any

from pipeline.commands import deploy_config

EXIT_FAILED = 1
EXIT_USAGE = 2


def _positive(what: str) -> Any:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what} must be a number, got {text!r}") from None
        if not (math.isfinite(value) and value > 0):
            raise argparse.ArgumentTypeError(f"{what} must be greater than 0, got {text}")
        return value

    return parse


def register(subparsers: Any) -> None:
    """Add ``capacity`` to ``python -m pipeline``."""
    parser = subparsers.add_parser(
        "capacity",
        parents=[deploy_config.options("endpoint.instance_type=ml.c5.xlarge")],
        help="instances, autoscaling target, throttle, Lambda concurrency and cost for a peak load",
        description="Turn the measured per-instance throughput (bench/results/engines.json) into a "
        "capacity plan for a peak load on the configured endpoint instance type.",
    )
    parser.add_argument(
        "--peak-rps",
        required=True,
        type=_positive("--peak-rps"),
        metavar="N",
        help="peak requests per second",
    )
    parser.add_argument(
        "--p99-ms",
        type=_positive("--p99-ms"),
        metavar="M",
        help="plan on the highest measured throughput whose p99 (at the container) is within M ms",
    )
    parser.add_argument(
        "--bench", metavar="PATH", help="benchmark result (default: bench/results/engines.json)"
    )
    parser.add_argument("--engine", help="scoring engine to plan for (default: the one the manifest names)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(func=run_capacity)


def run_capacity(args: argparse.Namespace) -> int:
    """Build and print the plan; expected failures become one message on stderr and an exit status."""
    from pathlib import Path

    from pipeline.capacity.errors import CapacityError, UnknownInstanceType
    from pipeline.capacity.measurement import read_measurement
    from pipeline.capacity.plan import make_plan, render
    from pipeline.cloud.config import ConfigError
    from pipeline.cloud.cost import PriceTableError

    # The one place errors become exit statuses: configuration problems are usage errors.
    try:
        config = deploy_config.load(args)
        measurement = read_measurement(Path(args.bench) if args.bench else None, args.engine)
        plan = make_plan(args.peak_rps, config, p99_ms=args.p99_ms, measurement=measurement)
    except (ConfigError, UnknownInstanceType) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (CapacityError, PriceTableError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print(json.dumps(plan.to_dict(), indent=2) if args.json else "\n".join(render(plan)))
    return 0
