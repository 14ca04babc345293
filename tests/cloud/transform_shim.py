"""Test-only: Batch Transform jobs that run in moto (moto 5.2 completes them at once and writes nothing).

With the shim, CreateTransformJob leaves the job ``InProgress``; the ``finish_after``-th
DescribeTransformJob "runs" it: every input object under the S3 prefix is split on lines, each line
goes through the job's InputFilter, a canned scorer (not the model: probability = age / 100, label by
0.5) answers ``label,probability``, the answer is appended to the input row (JoinSource=Input), the
OutputFilter is applied, and ``<key>.out`` is written under the output path, as SageMaker names it.
``fail_with`` makes the job end Failed with that FailureReason instead. StopTransformJob (missing in
moto) moves an InProgress job to Stopping, then Stopped. The JSONPath subset understood here is the
one the command generates (``$``, ``$[a:]``, ``$[a:b]``, ``$[i,j,...]`` with negative indices);
anything else fails the test.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import pytest


@dataclass
class TransformShim:
    finish_after: int = 2
    fail_with: str | None = None
    requests: list[dict[str, Any]] = field(default_factory=list)
    polls: dict[str, int] = field(default_factory=dict)
    stopped: list[str] = field(default_factory=list)


def select(path: str, cells: list[str]) -> list[str]:
    """Apply a JSONPath of the generated subset to a CSV row (a JSON array)."""
    if path == "$":
        return cells
    match = re.fullmatch(r"\$\[(-?\d*):(-?\d*)\]", path)
    if match:
        start = int(match[1]) if match[1] else None
        stop = int(match[2]) if match[2] else None
        return cells[start:stop]
    match = re.fullmatch(r"\$\[(-?\d+(?:,-?\d+)*)\]", path)
    if match:
        return [cells[int(i)] for i in match[1].split(",")]
    raise AssertionError(f"JSONPath {path!r} is outside what the shim (and the command) uses")


def _canned_score(features: list[str]) -> list[str]:
    probability = float(features[0]) / 100
    return [">50K" if probability >= 0.5 else "<=50K", repr(probability)]


def install(monkeypatch: pytest.MonkeyPatch) -> TransformShim:
    from moto.core.responses import ActionResult
    from moto.s3.models import s3_backends
    from moto.sagemaker.models import SageMakerModelBackend
    from moto.sagemaker.responses import SageMakerResponse

    shim = TransformShim()
    original_create = SageMakerModelBackend.create_transform_job
    original_describe = SageMakerModelBackend.describe_transform_job

    def create_transform_job(self: Any, **kwargs: Any) -> Any:
        job = original_create(self, **kwargs)
        job.transform_job_status = "InProgress"
        shim.requests.append(kwargs)
        return job

    def describe_transform_job(self: Any, transform_job_name: str) -> Any:
        job = self.transform_jobs[transform_job_name]
        if job.transform_job_status == "Stopping":
            job.transform_job_status = "Stopped"
        elif job.transform_job_status == "InProgress":
            shim.polls[transform_job_name] = shim.polls.get(transform_job_name, 0) + 1
            if shim.polls[transform_job_name] >= shim.finish_after:
                if shim.fail_with:
                    job.transform_job_status, job.failure_reason = "Failed", shim.fail_with
                else:
                    _run(job, s3_backends[self.account_id]["global"])
                    job.transform_job_status = "Completed"
        return original_describe(self, transform_job_name)

    def stop_transform_job(self: Any) -> ActionResult:
        name = self._get_param("TransformJobName")
        job = self.sagemaker_backend.transform_jobs[name]
        if job.transform_job_status == "InProgress":
            job.transform_job_status = "Stopping"
        shim.stopped.append(name)
        return ActionResult({})

    monkeypatch.setattr(SageMakerModelBackend, "create_transform_job", create_transform_job)
    monkeypatch.setattr(SageMakerModelBackend, "describe_transform_job", describe_transform_job)
    monkeypatch.setattr(SageMakerResponse, "stop_transform_job", stop_transform_job, raising=False)
    return shim


def _run(job: Any, s3: Any) -> None:
    source = job.transform_input["DataSource"]["S3DataSource"]["S3Uri"]
    bucket, prefix = source[5:].split("/", 1)
    out_bucket, out_prefix = job.transform_output["S3OutputPath"][5:].split("/", 1)
    processing = job.data_processing or {}
    in_filter = processing.get("InputFilter", "$")
    out_filter = processing.get("OutputFilter", "$")
    join = processing.get("JoinSource") == "Input"
    base = prefix.rsplit("/", 1)[0] + "/" if "/" in prefix else ""
    for key in [k for k in s3.get_bucket(bucket).keys if k.startswith(prefix)]:
        lines = s3.get_object(bucket, key).value.decode().splitlines()
        out = []
        for line in lines:
            cells = line.split(",")
            answer = _canned_score(select(in_filter, cells))
            out.append(",".join(select(out_filter, cells + answer if join else answer)))
        s3.put_object(
            out_bucket, f"{out_prefix.rstrip('/')}/{key[len(base) :]}.out", ("\n".join(out) + "\n").encode()
        )
