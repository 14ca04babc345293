"""Teardown's part of batch scoring: stop every transform job of this project that still runs.

Transform jobs are named ``<prefix>-batch-<UTC time>`` (pipeline.batch.transform_job). A job cannot
be deleted, only stopped; a stopped job leaves whatever ``.out`` objects it had finished in S3.
This module must not import pipeline.batch (the batch package depends on the cloud package).
"""

from __future__ import annotations

from typing import Any

RUNNING = ("InProgress",)


def transform_job_prefix(name_prefix: str) -> str:
    """The name prefix of this project's transform jobs (kept equal to pipeline.batch's)."""
    return f"{name_prefix}-batch-"


def running_transform_jobs(sagemaker: Any, name_prefix: str) -> list[str]:
    """Names of this project's transform jobs that are InProgress."""
    prefix = transform_job_prefix(name_prefix)
    found: list[str] = []
    token = None
    while True:
        kwargs: dict[str, Any] = {"NameContains": prefix, "StatusEquals": "InProgress", "MaxResults": 100}
        if token:
            kwargs["NextToken"] = token
        page = sagemaker.list_transform_jobs(**kwargs)
        found.extend(
            j["TransformJobName"]
            for j in page.get("TransformJobSummaries", [])
            if j["TransformJobName"].startswith(prefix) and j.get("TransformJobStatus") in RUNNING
        )
        token = page.get("NextToken")
        if not token:
            return found


def stop_running_transform_jobs(sagemaker: Any, name_prefix: str) -> list[str]:
    """Ask SageMaker to stop each running transform job of the project; returns the names stopped."""
    stopped = []
    for name in running_transform_jobs(sagemaker, name_prefix):
        sagemaker.stop_transform_job(TransformJobName=name)
        stopped.append(name)
    return stopped
