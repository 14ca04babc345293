"""The SageMaker runtime client (one per execution environment) and a time-boxed invoke.

botocore's own retries are switched off on purpose: its standard mode also retries read timeouts,
and two 24 s attempts cannot fit in a 28 s function. Instead :func:`invoke` retries only failures that
come back fast (throttling, a cold serverless model, a refused connection, a connection closed before
or while the answer was read), and only while a whole further attempt still fits in the function's
remaining time.

A closed connection is the usual failure after a thaw: Lambda freezes the execution environment
between invocations, and a connection pooled by the cached client may be dead when it resumes.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config

from lambda_proxy.errors import is_retryable
from lambda_proxy.settings import Settings

# Seconds kept in reserve after the last attempt to build and log the answer.
_SAFETY_MARGIN_S = 0.5
_BACKOFF_BASE_S = 0.1
_BACKOFF_CAP_S = 1.0

_client: Any = None
_client_key: tuple[object, ...] | None = None


class InvokeFailed(Exception):
    """InvokeEndpoint failed for good; ``cause`` is the last botocore exception."""

    def __init__(self, cause: Exception, attempts: int) -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.attempts = attempts


@dataclass(frozen=True)
class InvokeResult:
    body: bytes
    content_type: str
    custom_attributes: str | None
    attempts: int


def client_for(settings: Settings) -> Any:
    """The cached ``sagemaker-runtime`` client; rebuilt only if its settings change."""
    global _client, _client_key
    key = (settings.region, settings.endpoint_url, settings.connect_timeout_s, settings.read_timeout_s)
    if _client is None or key != _client_key:
        config = Config(
            connect_timeout=settings.connect_timeout_s,
            read_timeout=settings.read_timeout_s,
            retries={"mode": "standard", "total_max_attempts": 1},
        )
        # endpoint_url stays None in AWS; botocore reads AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME itself.
        _client = boto3.client("sagemaker-runtime", region_name=settings.region, config=config)
        _client_key = key
    return _client


def invoke(
    settings: Settings,
    body: bytes,
    content_type: str,
    accept: str | None,
    custom_attributes: str | None,
    remaining_s: Callable[[], float | None],
    sleep: Callable[[float], None] = time.sleep,
) -> InvokeResult:
    """Call InvokeEndpoint, retrying fast failures within the time budget.

    ``remaining_s`` returns the seconds left before the function times out (None: no limit known).
    Raises :class:`InvokeFailed` wrapping the last failure.
    """
    client = client_for(settings)
    params: dict[str, Any] = {
        "EndpointName": settings.endpoint_name,
        "Body": body,
        "ContentType": content_type,
    }
    if accept:
        params["Accept"] = accept
    if custom_attributes:
        params["CustomAttributes"] = custom_attributes
    attempt = 0
    while True:
        attempt += 1
        try:
            return _attempt(client, params, attempt)
        except Exception as exc:
            if attempt >= settings.max_attempts or not is_retryable(exc):
                raise InvokeFailed(exc, attempt) from exc
            delay = random.uniform(0, min(_BACKOFF_CAP_S, _BACKOFF_BASE_S * 2**attempt))  # noqa: S311
            left = remaining_s()
            if left is not None and left - delay < settings.attempt_budget_s + _SAFETY_MARGIN_S:
                raise InvokeFailed(exc, attempt) from exc
            sleep(delay)


def _attempt(client: Any, params: dict[str, Any], attempt: int) -> InvokeResult:
    """One InvokeEndpoint call including reading the body: the connection can drop during either."""
    response = client.invoke_endpoint(**params)
    return InvokeResult(
        body=response["Body"].read(),
        content_type=response.get("ContentType") or "application/octet-stream",
        custom_attributes=response.get("CustomAttributes"),
        attempts=attempt,
    )
