"""boto3 clients for one region, created lazily and shared by every step of a command.

Endpoints come from botocore's usual sources, so ``AWS_ENDPOINT_URL`` (moto, LocalStack) and the
service-specific ``AWS_ENDPOINT_URL_<SERVICE>`` variables work without code changes.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

import boto3
from botocore.config import Config

# Control-plane calls: retry throttling a little harder than the default, with jitter (standard mode).
_CONTROL_PLANE = Config(
    retries={"mode": "standard", "max_attempts": 6}, user_agent_extra="adult-income-deploy"
)


# Request parameters that name the resource a call acts on, in the order they are looked for.
_RESOURCE_PARAMETERS = (
    "EndpointName",
    "EndpointConfigName",
    "ModelName",
    "TrainingJobName",
    "FunctionName",
    "RoleName",
    "Bucket",
    "Key",
    "repositoryName",
    "logGroupName",
    "AlarmName",
    "AlarmNames",
    "ResourceId",
    "restApiId",
    "usagePlanId",
    "apiKey",
    "Group",
    "Name",
)
RESOURCE_KEY = "ResourceInvolved"


class Clients:
    """One boto3 session and its clients; pass ``session`` to control credentials or event hooks.

    A failed call's ``ClientError.response`` carries ``ResourceInvolved`` (e.g. ``EndpointName=x``),
    so an error message can name what the call was acting on.
    """

    def __init__(self, region: str, session: boto3.Session | None = None) -> None:
        self.region = region
        self.session = session or boto3.Session(region_name=region)
        self.session.events.register("before-parameter-build.*.*", _remember_resource)
        self.session.events.register("after-call.*.*", _attach_resource)

    def client(self, service: str) -> Any:
        return self.session.client(service, region_name=self.region, config=_CONTROL_PLANE)

    @cached_property
    def s3(self) -> Any:
        return self.client("s3")

    @cached_property
    def ecr(self) -> Any:
        return self.client("ecr")

    @cached_property
    def iam(self) -> Any:
        return self.client("iam")

    @cached_property
    def sagemaker(self) -> Any:
        return self.client("sagemaker")

    @cached_property
    def autoscaling(self) -> Any:
        return self.client("application-autoscaling")

    @cached_property
    def cloudwatch(self) -> Any:
        return self.client("cloudwatch")

    @cached_property
    def lambda_(self) -> Any:
        return self.client("lambda")

    @cached_property
    def logs(self) -> Any:
        return self.client("logs")

    @cached_property
    def apigateway(self) -> Any:
        return self.client("apigateway")

    @cached_property
    def sns(self) -> Any:
        return self.client("sns")

    @cached_property
    def resource_groups(self) -> Any:
        return self.client("resource-groups")

    @cached_property
    def tagging(self) -> Any:
        return self.client("resourcegroupstaggingapi")

    @cached_property
    def account_id(self) -> str:
        """The caller's account id (STS GetCallerIdentity)."""
        return self.client("sts").get_caller_identity()["Account"]


def _remember_resource(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
    named = [
        f"{key}={value}" for key in _RESOURCE_PARAMETERS if (value := params.get(key)) not in (None, "", [])
    ]
    if named:
        context[RESOURCE_KEY] = ", ".join(named[:2])


def _attach_resource(http_response: Any, parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
    if http_response.status_code >= 300 and RESOURCE_KEY in context and isinstance(parsed, dict):
        parsed.setdefault(RESOURCE_KEY, context[RESOURCE_KEY])


def error_code(exc: Exception) -> str:
    """The AWS error code of a botocore ClientError ('' for anything else)."""
    response = getattr(exc, "response", None)
    return response.get("Error", {}).get("Code", "") if isinstance(response, dict) else ""
