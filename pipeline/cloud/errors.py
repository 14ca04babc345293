"""Typed failures of the cloud commands; the CLI maps each to a message and an exit status."""

from __future__ import annotations


class CloudError(RuntimeError):
    """A deployment step failed; the message says what and what to do about it."""


class CommandFailed(CloudError):
    """An external command (docker) exited non-zero."""


class TrainingJobFailed(CloudError):
    """The SageMaker training job ended Failed or Stopped; carries SageMaker's FailureReason."""

    def __init__(self, job_name: str, status: str, reason: str) -> None:
        self.job_name, self.status, self.reason = job_name, status, reason
        super().__init__(f"training job {job_name} {status.lower()}: {reason or '(no reason given)'}")


class EndpointUpdateFailed(CloudError):
    """The endpoint did not reach InService with the new configuration (failed or rolled back)."""


class NotDeployed(CloudError):
    """A command needs a resource that deploy has not created (yet)."""


def describe_failure(exc: Exception) -> str:
    """One line for a failed step: an AWS error's operation, code, message and resource, else str()."""
    response = getattr(exc, "response", None)
    if not isinstance(response, dict) or "Error" not in response:
        return str(exc) or type(exc).__name__
    error = response["Error"]
    operation = getattr(exc, "operation_name", "an AWS call")
    text = f"AWS {operation} failed: {error.get('Code')}: {error.get('Message') or '(no message)'}"
    resource = response.get("ResourceInvolved")
    return f"{text} [{resource}]" if resource else text
