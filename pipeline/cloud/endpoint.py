"""SageMaker model, endpoint configuration and endpoint: create, or update in place without downtime.

Models and endpoint configurations are immutable in SageMaker, so each is named by a digest of its
content: an unchanged deploy finds both already there and the endpoint already using the config.
A changed one creates new ones and calls UpdateEndpoint with a blue/green deployment (all traffic at
once after the new fleet is healthy, then a baking period under the rollback alarms; SageMaker rolls
back by itself if an alarm fires). Real-time updates keep the variant's current, autoscaled instance
count (RetainAllVariantProperties).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from typing import Any

from pipeline.cloud.clients import error_code
from pipeline.cloud.config import EndpointConfig
from pipeline.cloud.errors import CloudError, EndpointUpdateFailed
from pipeline.cloud.names import VARIANT_NAME, Names
from pipeline.cloud.progress import Progress, StatusTicker

MAX_UPDATE_SECONDS = 3600
_SETTLING = ("Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting")


def _digest(spec: object) -> str:
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:10]


def model_spec(image_uri: str, model_data_url: str, endpoint: EndpointConfig) -> dict[str, Any]:
    """The container definition. Serverless gets one worker (one model copy per memory-limited host)."""
    environment = {"SAGEMAKER_MODEL_SERVER_WORKERS": "1"} if endpoint.serverless else {}
    return {"Image": image_uri, "ModelDataUrl": model_data_url, "Environment": environment}


def model_request(
    name: str, names: Names, role_arn: str, container: dict[str, Any], endpoint: EndpointConfig
) -> dict[str, Any]:
    """The CreateModel request.

    Real-time models run with network isolation: the container serves from /opt/ml/model and needs
    no network. Serverless Inference refuses network isolation (one of its documented feature
    exclusions), so a serverless model must not ask for it or the endpoint fails to create.
    """
    request: dict[str, Any] = {
        "ModelName": name,
        "PrimaryContainer": container,
        "ExecutionRoleArn": role_arn,
        "Tags": names.tag_list(),
    }
    if not endpoint.serverless:
        request["EnableNetworkIsolation"] = True
    return request


def ensure_model(
    sagemaker: Any,
    names: Names,
    role_arn: str,
    container: dict[str, Any],
    endpoint: EndpointConfig,
    progress: Progress,
) -> str:
    """Create the model named by a digest of its request unless it exists; returns the name."""
    request = model_request("", names, role_arn, container, endpoint)
    name = f"{names.model_prefix}-{_digest([container, role_arn, request.get('EnableNetworkIsolation')])}"
    try:
        sagemaker.describe_model(ModelName=name)
        progress.detail(f"model {name} exists")
    except Exception as exc:
        if error_code(exc) != "ValidationException":
            raise
        sagemaker.create_model(**{**request, "ModelName": name})
        progress.detail(f"created model {name}")
    return name


def production_variant(model_name: str, endpoint: EndpointConfig) -> dict[str, Any]:
    variant: dict[str, Any] = {"VariantName": VARIANT_NAME, "ModelName": model_name}
    if endpoint.serverless:
        variant["ServerlessConfig"] = {
            "MemorySizeInMB": endpoint.serverless_memory_mb,
            "MaxConcurrency": endpoint.serverless_max_concurrency,
        }
    else:
        variant.update(
            InstanceType=endpoint.instance_type,
            InitialInstanceCount=endpoint.initial_instance_count,
            InitialVariantWeight=1.0,
        )
    return variant


def ensure_endpoint_config(
    sagemaker: Any,
    names: Names,
    model_name: str,
    endpoint: EndpointConfig,
    progress: Progress,
    data_capture: dict[str, Any] | None = None,
) -> str:
    """The endpoint config for this variant (and data capture), named by a digest of both."""
    variant = production_variant(model_name, endpoint)
    # Capture is part of the name: configs are immutable, so turning capture on must make a new one.
    name = f"{names.endpoint_config_prefix}-{_digest([variant, data_capture] if data_capture else variant)}"
    try:
        sagemaker.describe_endpoint_config(EndpointConfigName=name)
        progress.detail(f"endpoint config {name} exists")
    except Exception as exc:
        if error_code(exc) != "ValidationException":
            raise
        request: dict[str, Any] = {
            "EndpointConfigName": name,
            "ProductionVariants": [variant],
            "Tags": names.tag_list(),
        }
        if data_capture:
            request["DataCaptureConfig"] = data_capture
        sagemaker.create_endpoint_config(**request)
        progress.detail(f"created endpoint config {name}")
    return name


def describe_endpoint(sagemaker: Any, name: str) -> dict[str, Any] | None:
    try:
        return sagemaker.describe_endpoint(EndpointName=name)
    except Exception as exc:
        if error_code(exc) == "ValidationException":
            return None
        raise


def deployment_config(endpoint: EndpointConfig, alarm_names: list[str]) -> dict[str, Any]:
    """Blue/green, all traffic at once once the new fleet passes health checks, then a bake period."""
    return {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 0},
            "TerminationWaitInSeconds": endpoint.bake_seconds,
            "MaximumExecutionTimeoutInSeconds": MAX_UPDATE_SECONDS,
        },
        "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": name} for name in alarm_names]},
    }


def _variant_of_config(sagemaker: Any, config_name: str) -> dict[str, Any]:
    config = sagemaker.describe_endpoint_config(EndpointConfigName=config_name)
    return config["ProductionVariants"][0]


def deploy(
    sagemaker: Any,
    names: Names,
    config_name: str,
    endpoint: EndpointConfig,
    alarm_names: list[str],
    progress: Progress,
    before_instance_type_change: Callable[[], None],
    poll_s: float = 30.0,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """Create the endpoint or move it to ``config_name``; returns 'created', 'updated' or 'unchanged'."""
    current = describe_endpoint(sagemaker, names.endpoint)
    if current and current["EndpointStatus"] in _SETTLING:
        progress.detail(f"endpoint is {current['EndpointStatus']}: waiting for it to settle first")
        current = _wait_settled(sagemaker, names.endpoint, progress, poll_s, sleep)
    if current and current["EndpointStatus"] == "Failed":
        progress.detail(
            f"endpoint {names.endpoint} is Failed ({current.get('FailureReason', '')}); recreating it"
        )
        delete_endpoint(sagemaker, names, progress, poll_s, sleep)
        current = None
    if current is None:
        sagemaker.create_endpoint(
            EndpointName=names.endpoint, EndpointConfigName=config_name, Tags=names.tag_list()
        )
        progress.detail(f"creating endpoint {names.endpoint} (several minutes)")
        _expect_config(_wait_settled(sagemaker, names.endpoint, progress, poll_s, sleep), config_name)
        return "created"
    if current["EndpointConfigName"] == config_name:
        progress.detail(f"endpoint {names.endpoint} already uses {config_name}")
        return "unchanged"

    old = _variant_of_config(sagemaker, current["EndpointConfigName"])
    old_mode = "serverless" if "ServerlessConfig" in old else "realtime"
    if old_mode != endpoint.mode:
        raise CloudError(
            f"endpoint {names.endpoint} is {old_mode}; SageMaker cannot switch it to {endpoint.mode} in "
            f"place. Run `python -m pipeline teardown` first, or keep endpoint.mode={old_mode}"
        )
    if not endpoint.serverless and old.get("InstanceType") != endpoint.instance_type:
        # Application Auto Scaling rejects an instance-type change on a registered variant.
        before_instance_type_change()
    params: dict[str, Any] = {
        "EndpointName": names.endpoint,
        "EndpointConfigName": config_name,
        "DeploymentConfig": deployment_config(endpoint, alarm_names),
    }
    if not endpoint.serverless:
        params["RetainAllVariantProperties"] = True  # keep the instance count autoscaling chose
    sagemaker.update_endpoint(**params)
    progress.detail(
        f"updating endpoint {names.endpoint}: {current['EndpointConfigName']} -> {config_name} "
        f"(blue/green, {endpoint.bake_seconds} s bake, rollback on {', '.join(alarm_names)})"
    )
    _expect_config(_wait_settled(sagemaker, names.endpoint, progress, poll_s, sleep), config_name)
    return "updated"


def _expect_config(described: dict[str, Any], config_name: str) -> None:
    if described["EndpointStatus"] != "InService":
        raise EndpointUpdateFailed(
            f"endpoint {described['EndpointName']} is {described['EndpointStatus']}: "
            f"{described.get('FailureReason') or 'no reason given'}"
        )
    if described["EndpointConfigName"] != config_name:
        raise EndpointUpdateFailed(
            f"the update to {config_name} was rolled back; the endpoint still serves "
            f"{described['EndpointConfigName']}: {described.get('FailureReason') or 'a rollback alarm fired'}"
        )


def _wait_settled(
    sagemaker: Any, name: str, progress: Progress, poll_s: float, sleep: Callable[[float], None]
) -> dict[str, Any]:
    started = time.monotonic()
    ticker = StatusTicker()
    while True:
        described = sagemaker.describe_endpoint(EndpointName=name)
        status = described["EndpointStatus"]
        if ticker.due(status):
            progress.waiting(f"endpoint {name}", status, started)
        if status not in _SETTLING:
            return described
        sleep(poll_s)


def delete_endpoint(
    sagemaker: Any,
    names: Names,
    progress: Progress,
    poll_s: float = 10.0,
    sleep: Callable[[float], None] = time.sleep,
) -> bool:
    """Delete the endpoint and wait until it is gone; False if it did not exist."""
    if describe_endpoint(sagemaker, names.endpoint) is None:
        return False
    sagemaker.delete_endpoint(EndpointName=names.endpoint)
    started = time.monotonic()
    while describe_endpoint(sagemaker, names.endpoint) is not None:
        progress.waiting(f"endpoint {names.endpoint}", "Deleting", started)
        sleep(poll_s)
    return True


def list_owned(sagemaker: Any, names: Names) -> tuple[list[str], list[str]]:
    """Names of this project's endpoint configs and models."""
    configs = _list_names(
        sagemaker.list_endpoint_configs, "EndpointConfigs", "EndpointConfigName", names.endpoint_config_prefix
    )
    models = _list_names(sagemaker.list_models, "Models", "ModelName", names.model_prefix)
    return configs, models


def _list_names(call: Callable[..., Any], key: str, field: str, prefix: str) -> list[str]:
    found: list[str] = []
    token = None
    while True:
        kwargs: dict[str, Any] = {"NameContains": prefix, "MaxResults": 100}
        if token:
            kwargs["NextToken"] = token
        page = call(**kwargs)
        found += [item[field] for item in page.get(key, []) if item[field].startswith(prefix + "-")]
        token = page.get("NextToken")
        if not token:
            return found


def delete_configs_and_models(sagemaker: Any, names: Names) -> tuple[list[str], list[str]]:
    configs, models = list_owned(sagemaker, names)
    for config in configs:
        sagemaker.delete_endpoint_config(EndpointConfigName=config)
    for model in models:
        sagemaker.delete_model(ModelName=model)
    return configs, models
