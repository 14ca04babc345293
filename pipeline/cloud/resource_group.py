"""The stack's AWS Resource Group: every resource tagged ``project=<prefix>``, in one console view.

The group is a tag query, so it never needs updating as resources come and go. ``members`` asks the
Resource Groups Tagging API what carries the tag, and ``classify`` names each member or flags it as
unknown: a tagged resource that deploy did not create is worth a look (someone else's, or a leftover).
"""

from __future__ import annotations

import json
import re
from typing import Any

from pipeline.cloud.clients import error_code
from pipeline.cloud.names import Names
from pipeline.cloud.progress import Progress

QUERY_TYPE = "TAG_FILTERS_1_0"
# Calls name the group with GroupName: AWS still accepts it next to the newer Group (name or ARN), and
# moto, which the tests run against, knows only GroupName.


def resource_query(names: Names) -> dict[str, str]:
    """The group's query: all supported resource types carrying the project tag."""
    query = {
        "ResourceTypeFilters": ["AWS::AllSupported"],
        "TagFilters": [{"Key": "project", "Values": [names.prefix]}],
    }
    return {"Type": QUERY_TYPE, "Query": json.dumps(query, sort_keys=True)}


def find(groups: Any, names: Names) -> dict[str, Any] | None:
    """The group, or None when it does not exist."""
    try:
        return groups.get_group(GroupName=names.resource_group)["Group"]
    except Exception as exc:
        if error_code(exc) == "NotFoundException":
            return None
        raise


def ensure(groups: Any, names: Names, progress: Progress) -> str:
    """Create the group, or correct its query; returns 'created', 'updated' or 'unchanged'."""
    wanted = resource_query(names)
    if find(groups, names) is None:
        groups.create_group(
            Name=names.resource_group,
            # AWS allows only letters, digits, white space, "_", "." and "-" in a group description.
            Description=f"Resources deploy created for {names.prefix} tagged project {names.prefix}",
            ResourceQuery=wanted,
            Tags=names.tags,
        )
        progress.detail(f"created resource group {names.resource_group} (tag project={names.prefix})")
        return "created"
    have = groups.get_group_query(GroupName=names.resource_group)["GroupQuery"]["ResourceQuery"]
    same_query = json.loads(have.get("Query", "{}")) == json.loads(wanted["Query"])
    if have.get("Type") != wanted["Type"] or not same_query:
        groups.update_group_query(GroupName=names.resource_group, ResourceQuery=wanted)
        progress.detail(f"updated the query of resource group {names.resource_group}")
        return "updated"
    progress.detail(f"resource group {names.resource_group} is current")
    return "unchanged"


def delete(groups: Any, names: Names) -> bool:
    """Delete the group (never its members); False if it did not exist."""
    try:
        groups.delete_group(GroupName=names.resource_group)
        return True
    except Exception as exc:
        if error_code(exc) == "NotFoundException":
            return False
        raise


def members(tagging: Any, names: Names) -> list[str]:
    """ARNs of everything in this region tagged ``project=<prefix>``."""
    arns: list[str] = []
    for page in tagging.get_paginator("get_resources").paginate(
        TagFilters=[{"Key": "project", "Values": [names.prefix]}]
    ):
        arns += [item["ResourceARN"] for item in page.get("ResourceTagMappingList", [])]
    return sorted(arns)


def classify(arn: str, names: Names) -> str | None:
    """What deploy calls the resource at ``arn``, or None if deploy does not create such a thing."""
    p = re.escape(names.prefix)
    kinds = (
        (rf":sagemaker:[^:]*:[^:]*:endpoint/{p}$", "endpoint"),
        (rf":sagemaker:[^:]*:[^:]*:endpoint-config/{p}-config-[0-9a-f]+$", "endpoint config"),
        (rf":sagemaker:[^:]*:[^:]*:model/{p}-model-[0-9a-f]+$", "model"),
        (rf":sagemaker:[^:]*:[^:]*:training-job/{p}-train-", "training job (history)"),
        (rf":logs:[^:]*:[^:]*:log-group:{re.escape(names.function_log_group)}(:\*)?$", "log group"),
        (rf":logs:[^:]*:[^:]*:log-group:{re.escape(names.endpoint_log_group)}(:\*)?$", "log group"),
        (rf":cloudwatch:[^:]*:[^:]*:alarm:{p}-", "alarm"),
        (rf":s3:::{re.escape(names.bucket)}$", "S3 bucket"),
        (rf":ecr:[^:]*:[^:]*:repository/{p}$", "ECR repository"),
        (rf":lambda:[^:]*:[^:]*:function:{re.escape(names.function)}$", "Lambda function"),
        (r":apigateway:[^:]*::/restapis/[^/]+(/stages/[^/]+)?$", "REST API"),
        (r":apigateway:[^:]*::/usageplans/[^/]+$", "usage plan"),
        (r":apigateway:[^:]*::/apikeys/[^/]+$", "API key"),
        (rf":resource-groups:[^:]*:[^:]*:group/{p}$", "resource group"),
        (r":application-autoscaling:[^:]*:[^:]*:scalable-target/", "scalable target"),
        (rf":iam::[^:]*:role/{p}-", "IAM role"),
    )
    for pattern, kind in kinds:
        if re.search(pattern, arn):
            return kind
    return None
