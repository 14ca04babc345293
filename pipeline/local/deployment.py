"""What the local cloud takes from the deploy configuration, so local and cloud are built from one file.

``config/deploy.toml`` (via :func:`pipeline.cloud.config.load_config`, with the same env and
``--set`` overrides) gives the stage, the usage plan's throttle and quota, the Lambda timeout and memory,
and (via :mod:`pipeline.cloud.names`) the endpoint and function names. The routes are the
cloud API's (``pipeline.cloud.apigateway.ROUTES``, every one requiring an API key), and the function's
environment is the one the cloud deploy gives it (``pipeline.cloud.lambda_function.environment``).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pipeline.cloud import lambda_function
from pipeline.cloud.config import DeployConfig, load_config
from pipeline.cloud.names import names_for
from pipeline.local.settings import REPO_ROOT, LocalSettings
from pipeline.local.usage_plan import PlanLimits

LAMBDA_HANDLER = "lambda_proxy.handler.handler"


@dataclass(frozen=True)
class Route:
    """One API method: ``method`` on ``resource`` (e.g. POST /predict) through the Lambda proxy."""

    method: str
    resource: str
    api_key_required: bool = True


@dataclass(frozen=True)
class LocalDeployment:
    """The deploy configuration as the local gateway and runtime use it."""

    config: DeployConfig
    account_id: str

    @property
    def stage(self) -> str:
        return self.config.api.stage

    @property
    def region(self) -> str:
        return self.config.project.region

    @property
    def endpoint_name(self) -> str:
        return names_for(self.config, self.account_id).endpoint

    @property
    def function_name(self) -> str:
        return names_for(self.config, self.account_id).function

    @property
    def api_id(self) -> str:
        """A stable 10-character id, like API Gateway's, derived from the API's name."""
        name = names_for(self.config, self.account_id).api
        return hashlib.sha256(f"local:{name}".encode()).hexdigest()[:10]

    @property
    def plan(self) -> PlanLimits:
        api = self.config.api
        return PlanLimits(api.throttle_rate, api.throttle_burst, api.quota_limit, api.quota_period)

    @property
    def lambda_timeout_s(self) -> float:
        return float(self.config.lambda_.timeout_seconds)

    @property
    def routes(self) -> tuple[Route, ...]:
        from pipeline.cloud.apigateway import ROUTES  # the cloud API's own route table

        return tuple(Route(method, f"/{path_part}") for path_part, method in ROUTES)

    def lambda_environment(self, runtime_url: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """The function's environment: its configuration, Lambda's standard variables, fake credentials.

        Nothing is inherited from the caller's environment except PATH and locale: in particular no
        AWS profile or credentials, so the handler can only reach the local InvokeEndpoint.
        """
        region = self.region
        function = self.function_name
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": os.environ.get("LANG", "C.UTF-8"),
            "PYTHONPATH": str(REPO_ROOT),
            "PYTHONUNBUFFERED": "1",
            "TZ": "UTC",
            "HOME": "/tmp",  # noqa: S108 - Lambda's only writable directory is /tmp
            # Lambda's own variables.
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
            "AWS_LAMBDA_FUNCTION_NAME": function,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(self.config.lambda_.memory_mb),
            "AWS_LAMBDA_FUNCTION_TIMEOUT": str(self.config.lambda_.timeout_seconds),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{function}",
            "AWS_LAMBDA_LOG_STREAM_NAME": "local",
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{self.config.lambda_.runtime}",
            "LAMBDA_TASK_ROOT": str(REPO_ROOT),
            "_HANDLER": LAMBDA_HANDLER,
            "LOCAL_ACCOUNT_ID": self.account_id,
            # Placeholders, not secrets: the local runtime does not check signatures, and no shared
            # config or credentials file may leak a real profile into the function.
            "AWS_ACCESS_KEY_ID": "LOCALFAKEACCESSKEY",
            "AWS_SECRET_ACCESS_KEY": "local-fake-secret-not-a-credential",
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
            # Only locally: botocore sends the function's InvokeEndpoint calls to the local runtime.
            "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": runtime_url,
        }
        # The function's own configuration, exactly as the cloud deploy sets it.
        env.update(lambda_function.environment(self.config, names_for(self.config, self.account_id)))
        env.update(extra or {})
        return env


def load_deployment(
    settings: LocalSettings,
    config_path: Path | None = None,
    overrides: Mapping[str, object] | None = None,
) -> LocalDeployment:
    """The deployment for ``config_path`` (default ``config/deploy.toml``) with ``overrides``."""
    return LocalDeployment(load_config(config_path, overrides), settings.account_id)
