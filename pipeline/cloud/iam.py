"""The two IAM roles, each with one inline policy that grants only what its principal does.

* SageMaker execution role (training jobs and the endpoint's containers): read and write objects under
  this project's S3 prefix only, list the bucket only for that prefix, pull from this project's ECR
  repository, write its own CloudWatch log groups and publish instance metrics.
  ``ecr:GetAuthorizationToken`` and ``cloudwatch:PutMetricData`` are the ``*`` resources: those actions
  have no resource-level permissions.
* Lambda proxy role: ``sagemaker:InvokeEndpoint`` on this endpoint's ARN and writing to the function's
  own log group (which deploy creates, so no ``logs:CreateLogGroup``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import unquote

from pipeline.cloud.clients import error_code
from pipeline.cloud.names import Names
from pipeline.cloud.progress import Progress

POLICY_NAME = "least-privilege"
T = TypeVar("T")


def _document(statements: list[dict[str, Any]]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": statements}


SAGEMAKER_SERVICE = "sagemaker.amazonaws.com"
LAMBDA_SERVICE = "lambda.amazonaws.com"


def trust_policy(service: str, names: Names) -> dict[str, Any]:
    """Who may assume the role: one AWS service principal, acting for this account only.

    ``aws:SourceAccount`` stops another account's SageMaker job or Lambda function from being pointed
    at this role (the cross-service confused deputy). SageMaker also sets ``aws:SourceArn`` to the
    job or endpoint acting, so its role is pinned to SageMaker resources of this account and region;
    Lambda assumes execution roles without a function ARN to match, so only the account is pinned.
    """
    condition: dict[str, Any] = {"StringEquals": {"aws:SourceAccount": names.account_id}}
    if service == SAGEMAKER_SERVICE:
        condition["ArnLike"] = {"aws:SourceArn": names.arn("sagemaker", "*")}
    return _document(
        [
            {
                "Effect": "Allow",
                "Principal": {"Service": service},
                "Action": "sts:AssumeRole",
                "Condition": condition,
            }
        ]
    )


def sagemaker_policy(names: Names) -> dict[str, Any]:
    """The SageMaker execution role's permissions."""
    logs_arn = names.arn("logs", "log-group")
    s3_arn = f"arn:{names.partition}:s3:::{names.bucket}"
    return _document(
        [
            {
                "Sid": "ProjectObjects",
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:PutObject"],
                "Resource": f"{s3_arn}/{names.s3_prefix}/*",
            },
            {
                "Sid": "ListProjectPrefix",
                "Effect": "Allow",
                "Action": "s3:ListBucket",
                "Resource": s3_arn,
                "Condition": {"StringLike": {"s3:prefix": [f"{names.s3_prefix}/*"]}},
            },
            {
                "Sid": "PullProjectImage",
                "Effect": "Allow",
                "Action": [
                    "ecr:BatchGetImage",
                    "ecr:GetDownloadUrlForLayer",
                    "ecr:BatchCheckLayerAvailability",
                ],
                "Resource": names.arn("ecr", f"repository/{names.repository}"),
            },
            {
                "Sid": "RegistryToken",
                "Effect": "Allow",
                "Action": "ecr:GetAuthorizationToken",
                "Resource": "*",  # this action supports no resource-level scoping
            },
            {
                "Sid": "OwnLogs",
                "Effect": "Allow",
                "Action": [
                    "logs:CreateLogGroup",
                    "logs:CreateLogStream",
                    "logs:PutLogEvents",
                    "logs:DescribeLogStreams",
                ],
                "Resource": [
                    f"{logs_arn}:{names.training_log_group}:*",
                    f"{logs_arn}:{names.endpoint_log_group}:*",
                ],
            },
            {
                "Sid": "InstanceMetrics",
                "Effect": "Allow",
                "Action": "cloudwatch:PutMetricData",
                "Resource": "*",  # this action supports no resource-level scoping
            },
        ]
    )


def lambda_policy(names: Names) -> dict[str, Any]:
    """The Lambda proxy role's permissions."""
    logs_arn = names.arn("logs", f"log-group:{names.function_log_group}:*")
    return _document(
        [
            {
                "Sid": "InvokeThisEndpoint",
                "Effect": "Allow",
                "Action": "sagemaker:InvokeEndpoint",
                "Resource": names.endpoint_arn,
            },
            {
                "Sid": "OwnLogs",
                "Effect": "Allow",
                "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": logs_arn,
            },
        ]
    )


def ensure_role(
    iam: Any,
    names: Names,
    role_name: str,
    service: str,
    policy: dict[str, Any],
    description: str,
    progress: Progress,
) -> str:
    """Create or bring up to date ``role_name`` with its trust and inline policy; returns the ARN."""
    trust = trust_policy(service, names)
    try:
        role = iam.get_role(RoleName=role_name)["Role"]
        if _as_dict(role["AssumeRolePolicyDocument"]) != trust:
            iam.update_assume_role_policy(RoleName=role_name, PolicyDocument=json.dumps(trust))
            progress.detail(f"updated trust policy of role {role_name}")
    except Exception as exc:
        if error_code(exc) != "NoSuchEntity":
            raise
        role = iam.create_role(
            RoleName=role_name,
            AssumeRolePolicyDocument=json.dumps(trust),
            Description=description,
            MaxSessionDuration=3600,
            Tags=names.tag_list(),
        )["Role"]
        progress.detail(f"created role {role_name}")
    current = _inline_policy(iam, role_name)
    if current != policy:
        iam.put_role_policy(RoleName=role_name, PolicyName=POLICY_NAME, PolicyDocument=json.dumps(policy))
        progress.detail(f"{'set' if current is None else 'updated'} policy of role {role_name}")
    else:
        progress.detail(f"role {role_name} is up to date")
    return role["Arn"]


def _inline_policy(iam: Any, role_name: str) -> dict[str, Any] | None:
    try:
        return _as_dict(iam.get_role_policy(RoleName=role_name, PolicyName=POLICY_NAME)["PolicyDocument"])
    except Exception as exc:
        if error_code(exc) == "NoSuchEntity":
            return None
        raise


def _as_dict(document: Any) -> dict[str, Any]:
    # IAM returns documents URL-encoded strings in some APIs and parsed dicts in others (boto3).
    if isinstance(document, str):
        return json.loads(unquote(document))
    return document


def existing_roles(iam: Any, names: Names) -> list[str]:
    """Which of the project's two roles exist now."""
    found = []
    for role in (names.sagemaker_role, names.lambda_role):
        try:
            iam.get_role(RoleName=role)
            found.append(role)
        except Exception as exc:
            if error_code(exc) != "NoSuchEntity":
                raise
    return found


def delete_role(iam: Any, role_name: str) -> bool:
    """Delete the role and its policies; False if it did not exist."""
    try:
        for policy in iam.list_role_policies(RoleName=role_name)["PolicyNames"]:
            iam.delete_role_policy(RoleName=role_name, PolicyName=policy)
        for attached in iam.list_attached_role_policies(RoleName=role_name)["AttachedPolicies"]:
            iam.detach_role_policy(RoleName=role_name, PolicyArn=attached["PolicyArn"])
        iam.delete_role(RoleName=role_name)
        return True
    except Exception as exc:
        if error_code(exc) == "NoSuchEntity":
            return False
        raise


def retry_while_role_propagates(
    call: Callable[[], T],
    is_propagation_error: Callable[[Exception], bool],
    progress: Progress,
    sleep: Callable[[float], None] = time.sleep,
    attempts: int = 10,
    delay_s: float = 3.0,
) -> T:
    """Run ``call``, retrying while a just-created role is not yet usable (IAM is eventually consistent)."""
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except Exception as exc:
            if attempt == attempts or not is_propagation_error(exc):
                raise
            progress.detail(f"waiting for the new IAM role to propagate (attempt {attempt}/{attempts})")
            sleep(delay_s)
    raise AssertionError("unreachable")
