"""Waiting on SageMaker with progress output. moto finishes everything at once, so these use scripted
describe answers (a stand-in for the service's state over time) to exercise the loops themselves."""

from __future__ import annotations

import io
from typing import Any

import pytest

from pipeline.cloud import training_job
from pipeline.cloud.endpoint import _wait_settled
from pipeline.cloud.errors import TrainingJobFailed
from pipeline.cloud.progress import Progress, StatusTicker


class ScriptedSageMaker:
    """Returns the scripted describe answers in order, repeating the last one."""

    def __init__(self, answers: list[dict[str, Any]]) -> None:
        self.answers = answers
        self.calls = 0

    def _next(self) -> dict[str, Any]:
        answer = self.answers[min(self.calls, len(self.answers) - 1)]
        self.calls += 1
        return answer

    def describe_training_job(self, TrainingJobName: str) -> dict[str, Any]:
        return {"TrainingJobName": TrainingJobName, **self._next()}

    def describe_endpoint(self, EndpointName: str) -> dict[str, Any]:
        return {"EndpointName": EndpointName, **self._next()}


def test_training_wait_prints_each_status_change_and_returns_the_job() -> None:
    sm = ScriptedSageMaker(
        [
            {"TrainingJobStatus": "InProgress", "SecondaryStatus": "Starting"},
            {"TrainingJobStatus": "InProgress", "SecondaryStatus": "Starting"},
            {
                "TrainingJobStatus": "InProgress",
                "SecondaryStatus": "Training",
                "SecondaryStatusTransitions": [{"StatusMessage": "Training image download completed."}],
            },
            {
                "TrainingJobStatus": "Completed",
                "SecondaryStatus": "Completed",
                "ModelArtifacts": {"S3ModelArtifacts": "s3://b/k"},
            },
        ]
    )
    out = io.StringIO()
    sleeps: list[float] = []
    job = training_job.wait(sm, "job-1", Progress(out), poll_s=15, sleep=sleeps.append)
    assert job["ModelArtifacts"]["S3ModelArtifacts"] == "s3://b/k"
    assert sleeps == [15, 15, 15]
    lines = out.getvalue().splitlines()
    assert len(lines) == 3  # the repeated "Starting" is not printed twice
    assert "InProgress/Starting" in lines[0]
    assert "InProgress/Training - Training image download completed." in lines[1]
    assert "Completed/Completed" in lines[2]


@pytest.mark.parametrize("status", ["Failed", "Stopped"])
def test_training_wait_raises_with_the_failure_reason(status: str) -> None:
    reason = "ClientError: unknown hyperparameter 'max_dept'"
    sm = ScriptedSageMaker(
        [
            {"TrainingJobStatus": "InProgress", "SecondaryStatus": "Training"},
            {"TrainingJobStatus": status, "SecondaryStatus": status, "FailureReason": reason},
        ]
    )
    with pytest.raises(TrainingJobFailed, match="max_dept") as failed:
        training_job.wait(sm, "job-2", Progress(io.StringIO()), poll_s=0, sleep=lambda s: None)
    assert (failed.value.status, failed.value.reason) == (status, reason)


def test_endpoint_wait_returns_once_settled() -> None:
    sm = ScriptedSageMaker(
        [{"EndpointStatus": "Creating"}] * 3 + [{"EndpointStatus": "InService", "EndpointConfigName": "c"}]
    )
    out = io.StringIO()
    described = _wait_settled(sm, "ep", Progress(out), poll_s=0, sleep=lambda s: None)
    assert described["EndpointStatus"] == "InService"
    assert sm.calls == 4
    assert out.getvalue().count("Creating") == 1


def test_ticker_repeats_an_unchanged_status_after_the_heartbeat(monkeypatch) -> None:
    now = [1000.0]
    monkeypatch.setattr("pipeline.cloud.progress.time.monotonic", lambda: now[0])
    ticker = StatusTicker(heartbeat_s=60)
    assert ticker.due("Creating")
    now[0] += 30
    assert not ticker.due("Creating")
    now[0] += 31
    assert ticker.due("Creating")  # a minute without change: say we are still waiting
    assert ticker.due("InService")


def _client_error(code: str, message: str) -> Exception:
    from botocore.exceptions import ClientError

    return ClientError({"Error": {"Code": code, "Message": message}}, "CreateTrainingJob")


def test_a_new_role_is_retried_until_iam_has_propagated() -> None:
    from pipeline.cloud.deploy import _sagemaker_role_not_ready
    from pipeline.cloud.iam import retry_while_role_propagates

    failures = [_client_error("ValidationException", "Could not assume role arn:aws:iam::1:role/x")] * 2
    sleeps: list[float] = []

    def call() -> str:
        if failures:
            raise failures.pop()
        return "started"

    out = io.StringIO()
    assert (
        retry_while_role_propagates(call, _sagemaker_role_not_ready, Progress(out), sleep=sleeps.append)
        == "started"
    )
    assert sleeps == [3.0, 3.0]
    assert "propagate" in out.getvalue()


def test_other_errors_are_not_retried() -> None:
    from pipeline.cloud.deploy import _sagemaker_role_not_ready
    from pipeline.cloud.iam import retry_while_role_propagates

    calls = []

    def call() -> None:
        calls.append(1)
        raise _client_error("ValidationException", "Could not find model data at s3://b/k")

    with pytest.raises(Exception, match="Could not find model data"):
        retry_while_role_propagates(
            call, _sagemaker_role_not_ready, Progress(io.StringIO()), sleep=lambda s: None
        )
    assert calls == [1]
