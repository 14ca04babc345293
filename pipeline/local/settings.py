"""Every setting of the local cloud, read from environment variables in this one place.

The deploy configuration (stage, usage plan, Lambda timeout) comes from ``config/deploy.toml`` via
:mod:`pipeline.local.deployment`; this module holds only what exists locally: where state lives, which
loopback ports the services use and the AWS service limits the emulators enforce (overridable so
tests can shrink a 60 s timeout to one second).

| Variable | Default | Meaning |
|---|---|---|
| ``LOCAL_RUN_DIR`` | ``<repo>/run`` | pid files, logs, extracted model, ``stack.json``, ``data-capture/`` |
| ``LOCAL_SECRETS_DIR`` | ``<repo>/.secrets`` | the local API key store and the demo key (mode 0600) |
| ``LOCAL_GATEWAY_PORT`` | ``8700`` | local API Gateway (a free port if taken; ``0``: always a free one) |
| ``LOCAL_RUNTIME_PORT`` | ``8701`` | local InvokeEndpoint |
| ``LOCAL_CONTAINER_PORT`` | ``8702`` | the serving container (host port when run with Docker) |
| ``LOCAL_CONTAINER_MODE`` | ``auto`` | ``docker``, ``host`` or ``auto`` (Docker when an engine answers) |
| ``LOCAL_IMAGE`` | ``adult-income-byoc:latest`` | the container image for Docker mode |
| ``LOCAL_ACCOUNT_ID`` | ``123456789012`` | account id used in ARNs and error messages |
| ``LOCAL_INVOCATION_TIMEOUT_S`` | ``60`` | SageMaker's limit for the container to answer /invocations |
| ``LOCAL_PING_TIMEOUT_S`` | ``2`` | SageMaker's /ping timeout |
| ``LOCAL_INTEGRATION_TIMEOUT_S`` | ``29`` | API Gateway's REST integration timeout |
| ``LOCAL_LAMBDA_MAX_CONCURRENCY`` | ``8`` | Lambda worker processes the gateway may run at once |
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

REPO_ROOT = Path(__file__).resolve().parents[2]

MIB = 1024 * 1024
SAGEMAKER_MAX_BODY_BYTES = 6 * MIB
"""InvokeEndpoint's real-time request limit (botocore's ``BodyBlob`` maximum, 6,291,456 bytes)."""
LAMBDA_MAX_PAYLOAD_BYTES = 6 * MIB
"""Lambda's synchronous invocation payload limit (the whole JSON event, not just the body)."""
GATEWAY_MAX_BODY_BYTES = 10 * MIB
"""API Gateway's REST payload limit."""


class LocalSettingsError(ValueError):
    """An environment variable of the local cloud has an unusable value (the message names it)."""


@dataclass(frozen=True)
class LocalSettings:
    """The resolved local-cloud settings."""

    run_dir: Path
    secrets_dir: Path
    gateway_port: int
    runtime_port: int
    container_port: int
    container_mode: str
    image: str
    account_id: str
    invocation_timeout_s: float
    ping_timeout_s: float
    integration_timeout_s: float
    lambda_max_concurrency: int

    @property
    def log_dir(self) -> Path:
        return self.run_dir / "logs"

    @property
    def capture_dir(self) -> Path:
        """Where the local InvokeEndpoint writes data capture files (the local DestinationS3Uri)."""
        return self.run_dir / "data-capture"

    @property
    def keys_file(self) -> Path:
        return self.secrets_dir / "local-keys.json"

    @property
    def demo_key_file(self) -> Path:
        return self.secrets_dir / "demo.key"

    def as_env(self) -> dict[str, str]:
        """These settings as environment variables, so child services resolve exactly the same ones."""
        return {
            "LOCAL_RUN_DIR": str(self.run_dir),
            "LOCAL_SECRETS_DIR": str(self.secrets_dir),
            "LOCAL_GATEWAY_PORT": str(self.gateway_port),
            "LOCAL_RUNTIME_PORT": str(self.runtime_port),
            "LOCAL_CONTAINER_PORT": str(self.container_port),
            "LOCAL_CONTAINER_MODE": self.container_mode,
            "LOCAL_IMAGE": self.image,
            "LOCAL_ACCOUNT_ID": self.account_id,
            "LOCAL_INVOCATION_TIMEOUT_S": repr(self.invocation_timeout_s),
            "LOCAL_PING_TIMEOUT_S": repr(self.ping_timeout_s),
            "LOCAL_INTEGRATION_TIMEOUT_S": repr(self.integration_timeout_s),
            "LOCAL_LAMBDA_MAX_CONCURRENCY": str(self.lambda_max_concurrency),
        }


def load_local_settings(env: Mapping[str, str] | None = None) -> LocalSettings:
    """Resolve the local-cloud settings from ``env`` (default: the process environment)."""
    env = os.environ if env is None else env
    mode = (env.get("LOCAL_CONTAINER_MODE") or "auto").lower()
    if mode not in ("auto", "docker", "host"):
        raise LocalSettingsError(f"LOCAL_CONTAINER_MODE={mode!r} must be auto, docker or host")
    return LocalSettings(
        run_dir=Path(env.get("LOCAL_RUN_DIR") or REPO_ROOT / "run"),
        secrets_dir=Path(env.get("LOCAL_SECRETS_DIR") or REPO_ROOT / ".secrets"),
        gateway_port=_number(env, "LOCAL_GATEWAY_PORT", 8700, int, 0, 65535),
        runtime_port=_number(env, "LOCAL_RUNTIME_PORT", 8701, int, 0, 65535),
        container_port=_number(env, "LOCAL_CONTAINER_PORT", 8702, int, 0, 65535),
        container_mode=mode,
        image=env.get("LOCAL_IMAGE") or "adult-income-byoc:latest",
        account_id=env.get("LOCAL_ACCOUNT_ID") or "123456789012",
        invocation_timeout_s=_number(env, "LOCAL_INVOCATION_TIMEOUT_S", 60.0, float, 0.1, 3600),
        ping_timeout_s=_number(env, "LOCAL_PING_TIMEOUT_S", 2.0, float, 0.1, 60),
        integration_timeout_s=_number(env, "LOCAL_INTEGRATION_TIMEOUT_S", 29.0, float, 0.05, 300),
        lambda_max_concurrency=_number(env, "LOCAL_LAMBDA_MAX_CONCURRENCY", 8, int, 1, 256),
    )


_Num = TypeVar("_Num", int, float)


def _number(
    env: Mapping[str, str], name: str, default: _Num, kind: type[_Num], low: float, high: float
) -> _Num:
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = kind(raw.strip())
    except ValueError:
        raise LocalSettingsError(
            f"{name}={raw!r} is not a{'n integer' if kind is int else ' number'}"
        ) from None
    if not low <= value <= high:
        raise LocalSettingsError(f"{name}={value} is outside the allowed range {low}..{high}")
    return value
