"""The proxy's settings, read from environment variables in this one place.

=============================  =========  ======================================================
variable                       default    meaning
=============================  =========  ======================================================
ENDPOINT_NAME                  (required) SageMaker endpoint to invoke
MAX_PAYLOAD_MB                 6          request body limit (InvokeEndpoint's real-time limit)
ALLOWED_CONTENT_TYPES          see below  comma-separated media types the container decodes
INVOKE_CONNECT_TIMEOUT_S       2          botocore connect timeout
INVOKE_READ_TIMEOUT_S          24         botocore read timeout (must fit in the Lambda timeout)
INVOKE_MAX_ATTEMPTS            3          attempts for fast, retryable failures (throttling, ...)
AWS_REGION / AWS_DEFAULT_REGION us-east-1 region of the endpoint (Lambda sets AWS_REGION)
=============================  =========  ======================================================

``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME`` is read by botocore itself (the local cloud uses it).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

# The request media types the container decodes (container/inference/content_types.py; a test keeps
# the two lists equal). Checking here saves an invocation for a request the model would refuse.
DEFAULT_CONTENT_TYPES = (
    "application/json",
    "text/csv",
    "application/jsonlines",
    "application/x-jsonlines",
    "application/json-lines",
    "application/jsonl",
    "application/x-ndjson",
)
# What a request without Content-Type is sent as (the container reads such bodies as JSON too).
DEFAULT_REQUEST_TYPE = "application/json"


class SettingsError(RuntimeError):
    """The function is misconfigured (a deployment fault, answered as 500)."""


@dataclass(frozen=True)
class Settings:
    endpoint_name: str
    max_payload_bytes: int
    allowed_content_types: tuple[str, ...]
    connect_timeout_s: float
    read_timeout_s: float
    max_attempts: int
    region: str
    endpoint_url: str | None

    @property
    def attempt_budget_s(self) -> float:
        """The longest one InvokeEndpoint attempt can take."""
        return self.connect_timeout_s + self.read_timeout_s


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Settings from ``environ`` (default ``os.environ``); raises SettingsError naming the variable."""
    env = os.environ if environ is None else environ
    endpoint_name = env.get("ENDPOINT_NAME", "").strip()
    if not endpoint_name:
        raise SettingsError("ENDPOINT_NAME is not set")
    types = env.get("ALLOWED_CONTENT_TYPES", "")
    allowed = tuple(t.strip().lower() for t in types.split(",") if t.strip()) or DEFAULT_CONTENT_TYPES
    return Settings(
        endpoint_name=endpoint_name,
        max_payload_bytes=int(_number(env, "MAX_PAYLOAD_MB", 6) * 1024 * 1024),
        allowed_content_types=allowed,
        connect_timeout_s=_number(env, "INVOKE_CONNECT_TIMEOUT_S", 2),
        read_timeout_s=_number(env, "INVOKE_READ_TIMEOUT_S", 24),
        max_attempts=max(1, int(_number(env, "INVOKE_MAX_ATTEMPTS", 3))),
        region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
        endpoint_url=env.get("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME") or None,
    )


def _number(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or not raw.strip():
        return float(default)
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a number") from None
    if value <= 0:
        raise SettingsError(f"{name}={raw!r} must be greater than 0")
    return value
