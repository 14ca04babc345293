"""``python -m pipeline batch INPUT OUTPUT``: score a file or folder of records in mini-batches.

* ``s3://`` INPUT and OUTPUT: a SageMaker Batch Transform job on the deployed model (docs/batch.md).
* Local paths: the same semantics against the real container (``--container-url``, or the container
  of a running ``python -m pipeline local up`` stack).

Exit status: 0 when every record was scored (or, with ``--skip-invalid``, written to an errors
file), 1 when the job failed, 2 for invalid arguments or configuration.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pipeline.commands import deploy_config

EXIT_FAILED = 1
EXIT_USAGE = 2


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``batch`` command."""
    p = subparsers.add_parser(
        "batch",
        parents=[deploy_config.options("batch.instance_count=2")],
        help="score a file/folder (local container) or an S3 prefix (SageMaker Batch Transform)",
        description=__doc__.splitlines()[0],
    )
    p.add_argument("input", help="input file or folder, or an s3:// prefix")
    p.add_argument("output", help="output folder, or an s3:// prefix (one <input name>.out per input)")
    p.add_argument(
        "--id-columns",
        default="",
        metavar="COLS",
        help="comma-separated ID columns passed through to the output: CSV positions (0) or "
        "header names, JSON Lines keys",
    )
    p.add_argument(
        "--content-type",
        choices=("text/csv", "application/jsonlines"),
        help="input format (default: from the file extension; CSV otherwise)",
    )
    p.add_argument(
        "--skip-invalid",
        action="store_true",
        help="write invalid records to <input name>.errors.csv and score the rest "
        "(default: the first invalid record fails the job; local only)",
    )
    p.add_argument(
        "--max-payload-mb", type=int, metavar="MB", help="override the container's MaxPayloadInMB (1-100)"
    )
    p.add_argument(
        "--max-concurrent-transforms",
        type=int,
        metavar="N",
        help="override the container's MaxConcurrentTransforms",
    )
    p.add_argument(
        "--max-retries",
        type=int,
        default=3,
        metavar="N",
        help="retries of a request after a 5xx or a connection error (0-3, default 3)",
    )
    local = p.add_argument_group("local runs")
    local.add_argument(
        "--container-url",
        metavar="URL",
        help="the serving container (default: the running `local up` stack's container)",
    )
    local.add_argument(
        "--resume",
        action="store_true",
        help="skip inputs whose .out already exists (a .out is only ever complete)",
    )
    aws = p.add_argument_group("AWS runs")
    aws.add_argument("--no-wait", action="store_true", help="start the transform job and return")
    aws.add_argument(
        "--poll-seconds", type=float, default=30.0, help="how often to poll the job while waiting"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=run_batch_command)


def run_batch_command(args: argparse.Namespace) -> int:
    """Dispatch to the AWS or the local runner by the form of INPUT and OUTPUT."""
    problems = _argument_problems(args)
    if problems:
        for problem in problems:
            print(f"error: {problem}", file=sys.stderr)
        return EXIT_USAGE
    if args.input.startswith("s3://"):
        return _run_aws(args)
    return _run_local(args)


def _argument_problems(args: argparse.Namespace) -> list[str]:
    problems = []
    remote = [a.startswith("s3://") for a in (args.input, args.output)]
    if any(remote) and not all(remote):
        problems.append("INPUT and OUTPUT must both be s3:// prefixes (AWS) or both local paths")
    if args.max_payload_mb is not None and not 1 <= args.max_payload_mb <= 100:
        problems.append("--max-payload-mb must be between 1 and 100 (SageMaker's range)")
    if args.max_concurrent_transforms is not None and args.max_concurrent_transforms < 1:
        problems.append("--max-concurrent-transforms must be at least 1")
    if not 0 <= args.max_retries <= 3:
        problems.append("--max-retries must be between 0 and 3 (InvocationsMaxRetries' range)")
    if all(remote) and (args.skip_invalid or args.resume or args.container_url):
        problems.append("--skip-invalid, --resume and --container-url apply to local runs only")
    return problems


def _id_columns(args: argparse.Namespace) -> tuple[str, ...]:
    return tuple(c.strip() for c in args.id_columns.split(",") if c.strip())


def _run_local(args: argparse.Namespace) -> int:
    from pipeline.batch.errors import BatchError
    from pipeline.batch.local_runner import LocalJob, run_local_job

    url = args.container_url or _local_stack_container()
    if url is None:
        print(
            "error: no container: pass --container-url, or start one with `python -m pipeline local up`",
            file=sys.stderr,
        )
        return EXIT_USAGE
    job = LocalJob(
        input=Path(args.input),
        output=Path(args.output),
        container_url=url,
        id_columns=_id_columns(args),
        content_type=args.content_type,
        skip_invalid=args.skip_invalid,
        max_payload_mb=args.max_payload_mb,
        max_concurrent_transforms=args.max_concurrent_transforms,
        max_retries=args.max_retries,
        resume=args.resume,
        progress=not args.no_progress and not args.json,
    )
    say = (lambda _m: None) if args.json else (lambda m: print(m, file=sys.stderr))
    try:
        summary = run_local_job(job, say)
    except (BatchError, FileNotFoundError) as exc:
        print(f"batch job failed: {exc}", file=sys.stderr)
        print("no partial .out was left; every .out present is complete", file=sys.stderr)
        return EXIT_FAILED
    if args.json:
        print(json.dumps(summary.as_dict(), indent=2))
        return 0
    for f in summary.files:
        state = "skipped (.out exists)" if f.skipped else f"{f.rows:,} rows, {f.errors:,} invalid"
        print(
            f"  {f.input} -> {f.output}: {state}" + (f" (errors: {f.errors_file})" if f.errors_file else "")
        )
    print(
        f"done: {summary.rows:,} rows scored, {summary.errors:,} invalid, {summary.seconds:.1f} s, "
        f"{summary.rows_per_s:,.0f} rows/s, {summary.requests} requests ({summary.retries} retried)"
    )
    return 0


def _local_stack_container() -> str | None:
    from pipeline.local.settings import load_local_settings
    from pipeline.local.stack import Stack

    running = Stack(load_local_settings(), say=lambda _m: None).running()
    return running.container_url if running is not None else None


def _run_aws(args: argparse.Namespace) -> int:
    from pipeline.batch.transform_job import run_transform_command

    return run_transform_command(args, _id_columns(args))
