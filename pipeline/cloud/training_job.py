"""The SageMaker training job: the container's own ``train`` on the uploaded data channels.

A job's name starts with a digest of everything that determines its result (image, data, instance
settings), so a deploy with unchanged inputs reuses the last completed job instead of training again.
SageMaker job names can never be reused, hence the timestamp after the digest.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pipeline.cloud.clients import error_code
from pipeline.cloud.config import TrainingConfig
from pipeline.cloud.errors import CloudError, TrainingJobFailed
from pipeline.cloud.names import Names
from pipeline.cloud.progress import Progress, StatusTicker

TERMINAL = ("Completed", "Failed", "Stopped")


@dataclass(frozen=True)
class TrainingInputs:
    image_uri: str
    channels: dict[str, str]  # channel name ("train", "test") -> s3:// prefix holding its files

    def digest(self, training: TrainingConfig) -> str:
        spec = {
            "image": self.image_uri,
            "channels": self.channels,
            "instance_type": training.instance_type,
            "instance_count": training.instance_count,
        }
        return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:10]


def job_base_name(names: Names, inputs: TrainingInputs, training: TrainingConfig) -> str:
    return f"{names.training_job_prefix}-{inputs.digest(training)}"


def training_job_request(
    job_name: str, names: Names, role_arn: str, inputs: TrainingInputs, training: TrainingConfig
) -> dict[str, Any]:
    """The CreateTrainingJob request: File-mode channels, output under the project prefix."""
    channels = [
        {
            "ChannelName": name,
            "DataSource": {
                "S3DataSource": {
                    "S3DataType": "S3Prefix",
                    "S3Uri": uri,
                    "S3DataDistributionType": "FullyReplicated",
                }
            },
            "InputMode": "File",
        }
        for name, uri in sorted(inputs.channels.items())
    ]
    return {
        "TrainingJobName": job_name,
        "AlgorithmSpecification": {"TrainingImage": inputs.image_uri, "TrainingInputMode": "File"},
        "RoleArn": role_arn,
        "InputDataConfig": channels,
        "OutputDataConfig": {"S3OutputPath": f"s3://{names.bucket}/{names.training_output_prefix}/"},
        "ResourceConfig": {
            "InstanceType": training.instance_type,
            "InstanceCount": training.instance_count,
            "VolumeSizeInGB": training.volume_size_gb,
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": training.max_runtime_seconds},
        # The container needs no network: data comes in and the model goes out through SageMaker.
        "EnableNetworkIsolation": True,
        "Tags": names.tag_list(),
    }


def latest_completed(sagemaker: Any, base_name: str) -> dict[str, Any] | None:
    """The newest Completed job whose name starts with ``base_name``, described, or None."""
    response = sagemaker.list_training_jobs(
        NameContains=base_name, StatusEquals="Completed", SortBy="CreationTime", SortOrder="Descending"
    )
    for summary in response.get("TrainingJobSummaries", []):
        if summary["TrainingJobName"].startswith(base_name):
            return sagemaker.describe_training_job(TrainingJobName=summary["TrainingJobName"])
    return None


def start(sagemaker: Any, request: dict[str, Any], progress: Progress) -> str:
    sagemaker.create_training_job(**request)
    progress.detail(f"started training job {request['TrainingJobName']}")
    return request["TrainingJobName"]


def wait(
    sagemaker: Any,
    job_name: str,
    progress: Progress,
    poll_s: float = 30.0,
    sleep: Callable[[float], None] = time.sleep,
    timeout_s: float | None = None,
) -> dict[str, Any]:
    """Poll until the job ends, printing each status change; raises TrainingJobFailed with the reason.

    The reason is SageMaker's FailureReason, i.e. the first 1024 characters the container wrote to
    ``/opt/ml/output/failure``.
    """
    started = time.monotonic()
    ticker = StatusTicker()
    while True:
        job = sagemaker.describe_training_job(TrainingJobName=job_name)
        status, secondary = job["TrainingJobStatus"], job.get("SecondaryStatus", "")
        if ticker.due((status, secondary)):
            message = _latest_message(job)
            progress.waiting(
                job_name, f"{status}/{secondary}" + (f" - {message}" if message else ""), started
            )
        if status == "Completed":
            return job
        if status in ("Failed", "Stopped"):
            raise TrainingJobFailed(job_name, status, job.get("FailureReason", ""))
        if timeout_s is not None and time.monotonic() - started > timeout_s:
            raise CloudError(f"gave up waiting for training job {job_name} after {timeout_s:.0f} s")
        sleep(poll_s)


def _latest_message(job: dict[str, Any]) -> str:
    transitions = job.get("SecondaryStatusTransitions") or []
    return transitions[-1].get("StatusMessage", "") if transitions else ""


def describe(sagemaker: Any, job_name: str) -> dict[str, Any] | None:
    try:
        return sagemaker.describe_training_job(TrainingJobName=job_name)
    except Exception as exc:
        if error_code(exc) == "ValidationException":
            return None
        raise


def running(sagemaker: Any, names: Names) -> list[str]:
    """Names of this project's training jobs that are still in progress (and billing)."""
    found: list[str] = []
    for page in sagemaker.get_paginator("list_training_jobs").paginate(
        NameContains=names.training_job_prefix, StatusEquals="InProgress"
    ):
        found += [
            s["TrainingJobName"]
            for s in page.get("TrainingJobSummaries", [])
            if s["TrainingJobName"].startswith(names.training_job_prefix + "-")
        ]
    return found


def stop_running(sagemaker: Any, names: Names) -> list[str]:
    """Ask SageMaker to stop every running job of this project; returns their names."""
    jobs = running(sagemaker, names)
    for name in jobs:
        sagemaker.stop_training_job(TrainingJobName=name)
    return jobs


def new_job_name(base_name: str, now: datetime | None = None) -> str:
    """``<base>-<UTC time to the millisecond>``: a name never used before (SageMaker never frees one)."""
    now = now or datetime.now(UTC)
    return f"{base_name}-{now.strftime('%Y%m%d%H%M%S')}{now.microsecond // 1000:03d}"
