"""SageMaker Batch Transform on the deployed model: build, start, wait for and report a transform job.

The job uses the model the endpoint serves now (endpoint -> endpoint config -> production variant's
ModelName), ``SplitType=Line`` and ``BatchStrategy=MultiRecord``. ``MaxPayloadInMB`` and
``MaxConcurrentTransforms`` are left out unless configured: SageMaker then asks the container's
``GET /execution-parameters`` itself (CreateTransformJob values > the container's > SageMaker's
defaults). ``DataProcessing`` drops the ID columns before the model (``InputFilter``), joins the input
row to each prediction (``JoinSource=Input``) and keeps IDs, label and probability (``OutputFilter``).

``CreateTransformJob`` has no S3 data distribution setting: with ``InstanceCount`` > 1 SageMaker
hands whole input objects to the instances, so an input must be split into at least as many objects
as instances (one object is never shared between instances).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from pipeline.batch.errors import BatchError
from pipeline.batch.records import CSV, HEADER_NAMES, JSONLINES, csv_cells
from pipeline.schema import SCHEMA

MAX_FILTER_LENGTH = 63
"""DataProcessing's InputFilter and OutputFilter are at most 63 characters (API reference)."""
POLL_S = 30.0
TERMINAL = ("Completed", "Failed", "Stopped")


def job_prefix(name_prefix: str) -> str:
    """Transform jobs of this project are named ``<prefix>-batch-<UTC time>`` (teardown stops them)."""
    from pipeline.cloud.transform_jobs import transform_job_prefix

    return transform_job_prefix(name_prefix)


def job_name(name_prefix: str, now: dt.datetime | None = None) -> str:
    """A new job name (≤ 63 characters, unique to the second)."""
    now = now or dt.datetime.now(dt.UTC)
    return f"{job_prefix(name_prefix)}{now:%Y%m%d-%H%M%S}"


def deployed_model_name(sagemaker: Any, endpoint_name: str) -> str:
    """The model the endpoint serves now; NotDeployed if there is no endpoint."""
    from pipeline.cloud.endpoint import describe_endpoint
    from pipeline.cloud.errors import NotDeployed

    endpoint = describe_endpoint(sagemaker, endpoint_name)
    if endpoint is None:
        raise NotDeployed(f"endpoint {endpoint_name} does not exist; run `python -m pipeline deploy` first")
    config = sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    return str(config["ProductionVariants"][0]["ModelName"])


def data_processing(fmt: str, id_positions: Sequence[int]) -> dict[str, str] | None:
    """DataProcessing for CSV input whose ID columns are at ``id_positions`` (None without IDs).

    Input rows are the ID columns plus the 12 schema features in schema order, no header. After
    ``JoinSource=Input`` a row is the whole input row followed by the container's ``label,probability``,
    so the OutputFilter keeps the ID positions and the last two cells.
    """
    if not id_positions:
        return None
    if fmt != CSV:
        raise BatchError(
            "ID columns in AWS need CSV input: a JSONPath InputFilter of at most 63 characters cannot "
            "remove keys from a flat JSON Lines object (use the local runner, or CSV)"
        )
    ids = sorted(set(id_positions))
    width = len(SCHEMA.names) + len(ids)
    if ids[-1] >= width:
        raise BatchError(f"ID column {ids[-1]} is beyond the {width} columns of an input row")
    features = [i for i in range(width) if i not in ids]
    if features == list(range(features[0], width)):
        input_filter = f"$[{features[0]}:]"
    elif features == list(range(features[0], features[-1] + 1)):
        input_filter = f"$[{features[0]}:{features[-1] + 1}]"
    else:
        input_filter = "$[" + ",".join(map(str, features)) + "]"
    output_filter = "$[" + ",".join(map(str, ids)) + ",-2,-1]"
    for name, text in (("InputFilter", input_filter), ("OutputFilter", output_filter)):
        if len(text) > MAX_FILTER_LENGTH:
            raise BatchError(
                f"{name} {text!r} is longer than {MAX_FILTER_LENGTH} characters; put the ID columns first"
            )
    return {"InputFilter": input_filter, "JoinSource": "Input", "OutputFilter": output_filter}


def transform_request(
    *,
    name: str,
    model_name: str,
    input_uri: str,
    output_uri: str,
    fmt: str,
    id_positions: Sequence[int],
    batch: Any,
    tags: list[dict[str, str]],
    max_payload_mb: int | None = None,
    max_concurrent_transforms: int | None = None,
    max_retries: int | None = None,
) -> dict[str, Any]:
    """The CreateTransformJob request (``batch`` is the [batch] config section)."""
    request: dict[str, Any] = {
        "TransformJobName": name,
        "ModelName": model_name,
        "BatchStrategy": "MultiRecord",
        "ModelClientConfig": {
            "InvocationsTimeoutInSeconds": batch.invocations_timeout_seconds,
            "InvocationsMaxRetries": batch.invocations_max_retries if max_retries is None else max_retries,
        },
        "TransformInput": {
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": input_uri}},
            "ContentType": fmt,
            "CompressionType": "None",
            "SplitType": "Line",
        },
        "TransformOutput": {"S3OutputPath": output_uri, "Accept": fmt, "AssembleWith": "Line"},
        "TransformResources": {"InstanceType": batch.instance_type, "InstanceCount": batch.instance_count},
        "Tags": tags,
    }
    payload = max_payload_mb or batch.max_payload_mb
    concurrent = max_concurrent_transforms or batch.max_concurrent_transforms
    if payload:
        request["MaxPayloadInMB"] = payload
    if concurrent:
        request["MaxConcurrentTransforms"] = concurrent
    processing = data_processing(fmt, id_positions)
    if processing is not None:
        request["DataProcessing"] = processing
    return request


def check_under_project_prefix(uri: str, bucket: str, prefix: str) -> None:
    """Inputs and outputs must lie under ``s3://<bucket>/<prefix>/``: the only place the execution
    role (which the transform job runs as) may read and write."""
    have_bucket, key = split_s3_uri(uri)
    if have_bucket != bucket or not key.startswith(prefix + "/"):
        raise BatchError(
            f"{uri} is outside s3://{bucket}/{prefix}/, the only place the SageMaker execution role may "
            "read and write; copy the input there (e.g. s3://{bucket}/{prefix}/batch/in/) and write the "
            "output there too".replace("{bucket}", bucket).replace("{prefix}", prefix)
        )


def split_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/key/prefix`` -> (bucket, key prefix)."""
    if not uri.startswith("s3://") or not uri[5:].split("/", 1)[0]:
        raise BatchError(f"{uri!r} is not an s3:// URI")
    bucket, _, key = uri[5:].partition("/")
    return bucket, key


def input_objects(s3: Any, input_uri: str) -> list[tuple[str, int]]:
    """The (key, size) of every object under the input prefix, as Batch Transform will read them."""
    bucket, prefix = split_s3_uri(input_uri)
    found: list[tuple[str, int]] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        found.extend(
            (o["Key"], int(o["Size"])) for o in page.get("Contents", []) if not o["Key"].endswith("/")
        )
    return found


def headers_found(s3: Any, input_uri: str, objects: Sequence[tuple[str, int]]) -> list[str]:
    """Objects whose first line is a CSV header (Batch Transform would send it as a record)."""
    bucket, _ = split_s3_uri(input_uri)
    flagged = []
    for key, size in objects:
        if not size:
            continue
        head = s3.get_object(Bucket=bucket, Key=key, Range="bytes=0-65535")["Body"].read()
        first = head.split(b"\n", 1)[0]
        if any(cell.strip() in HEADER_NAMES for cell in csv_cells(first)):
            flagged.append(key)
    return flagged


def output_locations(input_uri: str, output_uri: str, objects: Sequence[tuple[str, int]]) -> list[str]:
    """Where Batch Transform writes each object's results: the output path + key below the prefix + .out."""
    _, prefix = split_s3_uri(input_uri)
    base = output_uri.rstrip("/")
    cut = prefix.rsplit("/", 1)[0] + "/" if "/" in prefix else ""
    return [f"{base}/{key[len(cut) :]}.out" for key, _ in objects]


def wait_for_job(
    sagemaker: Any,
    name: str,
    say: Callable[[str], None],
    poll_s: float = POLL_S,
    sleep: Callable[[float], None] = time.sleep,
    max_wait_s: float | None = None,
) -> dict[str, Any]:
    """Poll DescribeTransformJob until the job ends; prints each status change and elapsed time."""
    started, last = time.monotonic(), None
    while True:
        described = sagemaker.describe_transform_job(TransformJobName=name)
        status = described["TransformJobStatus"]
        if status != last:
            say(f"transform job {name}: {status} ({time.monotonic() - started:.0f} s)")
            last = status
        if status in TERMINAL:
            return described
        if max_wait_s is not None and time.monotonic() - started > max_wait_s:
            raise BatchError(f"transform job {name} still {status} after {max_wait_s:.0f} s")
        sleep(poll_s)


def run_transform_command(args: argparse.Namespace, id_columns: tuple[str, ...]) -> int:
    """``python -m pipeline batch s3://... s3://...``: start the job, wait, report."""
    from pipeline.cloud.clients import Clients
    from pipeline.cloud.config import ConfigError, load_config, parse_override
    from pipeline.cloud.errors import CloudError, describe_failure
    from pipeline.cloud.names import names_for

    try:
        config = load_config(args.config, dict(parse_override(o) for o in args.overrides))
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    say = (lambda m: print(m, file=sys.stderr)) if args.json else print
    try:
        positions = [int(c) for c in id_columns]
    except ValueError:
        print(
            "error: in AWS, --id-columns are CSV positions (0, 1...): the input has no header",
            file=sys.stderr,
        )
        return 2
    fmt = args.content_type or (
        JSONLINES if args.input.rstrip("/").endswith((".jsonl", ".jsonlines")) else CSV
    )
    clients = Clients(config.project.region)
    try:
        names = names_for(config, clients.account_id)
        for uri in (args.input, args.output):
            check_under_project_prefix(uri, names.bucket, names.s3_prefix)
        report = start_and_report(
            clients.sagemaker,
            clients.s3,
            config=config,
            prefix=names.prefix,
            endpoint_name=names.endpoint,
            tags=names.tag_list(),
            input_uri=args.input,
            output_uri=args.output,
            fmt=fmt,
            id_positions=positions,
            wait=not args.no_wait,
            say=say,
            max_payload_mb=args.max_payload_mb,
            max_concurrent_transforms=args.max_concurrent_transforms,
            max_retries=args.max_retries,
            poll_s=args.poll_seconds,
        )
    except (BatchError, CloudError) as exc:
        print(f"batch job failed: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # an AWS API error: one line, never a traceback
        if getattr(exc, "response", None) is None:
            raise
        print(f"batch job failed: {describe_failure(exc)}", file=sys.stderr)
        return 1
    if args.json:
        import json

        print(json.dumps(report, indent=2, default=str))
    return 0 if report["status"] in ("Completed", "InProgress") else 1


def start_and_report(
    sagemaker: Any,
    s3: Any,
    *,
    config: Any,
    prefix: str,
    endpoint_name: str,
    tags: list[dict[str, str]],
    input_uri: str,
    output_uri: str,
    fmt: str,
    id_positions: Sequence[int],
    wait: bool,
    say: Callable[[str], None],
    poll_s: float = POLL_S,
    sleep: Callable[[float], None] = time.sleep,
    max_payload_mb: int | None = None,
    max_concurrent_transforms: int | None = None,
    max_retries: int | None = None,
) -> dict[str, Any]:
    """Check the input, start the job, optionally wait; returns a report (status, reason, outputs)."""
    objects = input_objects(s3, input_uri)
    if not objects:
        raise BatchError(f"no input objects under {input_uri}")
    if fmt == CSV:
        with_header = headers_found(s3, input_uri, objects)
        if with_header:
            raise BatchError(
                f"{len(with_header)} input object(s) start with a CSV header ({with_header[0]}...): Batch "
                "Transform sends every line as a record; remove the header line"
            )
    if config.batch.instance_count > len(objects):
        say(
            f"warning: {config.batch.instance_count} instances but {len(objects)} input object(s): "
            "each object goes to one instance; split the input into at least as many objects as instances"
        )
    model = deployed_model_name(sagemaker, endpoint_name)
    name = job_name(prefix)
    request = transform_request(
        name=name,
        model_name=model,
        input_uri=input_uri,
        output_uri=output_uri,
        fmt=fmt,
        id_positions=id_positions,
        batch=config.batch,
        tags=tags,
        max_payload_mb=max_payload_mb,
        max_concurrent_transforms=max_concurrent_transforms,
        max_retries=max_retries,
    )
    sagemaker.create_transform_job(**request)
    say(
        f"started transform job {name} on model {model}: {len(objects)} object(s), "
        f"{config.batch.instance_count} x {config.batch.instance_type}"
    )
    outputs = output_locations(input_uri, output_uri, objects)
    report: dict[str, Any] = {"job": name, "model": model, "status": "InProgress", "outputs": outputs}
    if not wait:
        say(f"not waiting; follow it with: aws sagemaker describe-transform-job --transform-job-name {name}")
        return report
    described = wait_for_job(sagemaker, name, say, poll_s=poll_s, sleep=sleep)
    report["status"] = described["TransformJobStatus"]
    report["failure_reason"] = described.get("FailureReason") or None
    if report["status"] == "Completed":
        say(f"done: results in {output_uri.rstrip('/')}/ ({len(outputs)} .out file(s), e.g. {outputs[0]})")
    else:
        reason = report["failure_reason"] or "(no reason given)"
        say(f"transform job {name} {report['status'].lower()}: {reason}")
        say(f"container log: CloudWatch group /aws/sagemaker/TransformJobs, streams {name}/...")
    return report
