"""Everything of the project in every service, as comparable data; and what a teardown left.

``snapshot`` reads each service the deploy writes to and keeps the settings that matter, with what
AWS generates (ids, timestamps, version ids, the time in a training job's name) replaced by stable
placeholders, so two deploys that built the same stack give equal snapshots, and one with a second
REST API, an extra key or model, or a missing policy does not.
"""

from __future__ import annotations

import json
import re
from typing import Any

PREFIX = "adult-income"
# Shared by every SageMaker training job in the account: deploy sets its retention, teardown keeps it.
SHARED_LOG_GROUPS = {"/aws/sagemaker/TrainingJobs"}
JOB_TIME = re.compile(r"(adult-income-train-[0-9a-f]+)-\d{17}")
# Models and endpoint configs are named by a digest of their request, which holds the training job's
# name and so its time.
DIGEST_NAME = re.compile(r"(adult-income-(?:model|config))-[0-9a-f]{10}\b")


def snapshot(stack: Any) -> dict[str, Any]:
    """The project's resources in IAM, ECR, S3, SageMaker, CloudWatch, Application Auto Scaling,
    Lambda, CloudWatch Logs, API Gateway and Resource Groups, normalised (see module docstring)."""
    ids: dict[str, str] = {}
    raw = {
        "iam": _iam(stack),
        "ecr": _ecr(stack),
        "s3": _s3(stack),
        "sagemaker": _sagemaker(stack),
        "alarms": _alarms(stack),
        "autoscaling": _autoscaling(stack),
        "lambda": _lambda(stack),
        "logs": _logs(stack),
        "apigateway": _apigateway(stack, ids),
        "resource_groups": _resource_groups(stack),
    }
    text = json.dumps(raw, sort_keys=True, default=str)
    for real, placeholder in ids.items():
        text = text.replace(real, placeholder)
    text = DIGEST_NAME.sub(r"\1-<digest>", JOB_TIME.sub(r"\1-<time>", text))
    normalised = json.loads(text)
    for kind in ("models", "endpoint_configs"):  # lists, so that two alike stay two
        normalised["sagemaker"][kind].sort(key=lambda item: json.dumps(item, sort_keys=True))
    return normalised


def leftovers(stack: Any) -> dict[str, Any]:
    """Whatever of the project still exists after a teardown, by service (empty lists: nothing)."""
    sm = stack.client("sagemaker")
    running = [
        j["TrainingJobName"]
        for j in sm.list_training_jobs(StatusEquals="InProgress")["TrainingJobSummaries"]
        if j["TrainingJobName"].startswith(PREFIX)
    ]
    lam = stack.client("lambda")
    functions = [f["FunctionName"] for f in lam.list_functions()["Functions"]]
    apigw = stack.client("apigateway")
    found = {
        "iam roles": [
            r["RoleName"] for r in stack.client("iam").list_roles()["Roles"] if _ours(r["RoleName"])
        ],
        "ecr repositories": [
            r["repositoryName"] for r in stack.client("ecr").describe_repositories()["repositories"]
        ],
        "s3 buckets": [b["Name"] for b in stack.client("s3").list_buckets()["Buckets"]],
        "s3 object versions": _all_versions(stack),
        "endpoints": [e["EndpointName"] for e in sm.list_endpoints()["Endpoints"]],
        "endpoint configs": [c["EndpointConfigName"] for c in sm.list_endpoint_configs()["EndpointConfigs"]],
        "models": [m["ModelName"] for m in sm.list_models()["Models"]],
        "running training jobs": running,
        "alarms": [a["AlarmName"] for a in stack.client("cloudwatch").describe_alarms()["MetricAlarms"]],
        "scalable targets": _aas(stack, "describe_scalable_targets", "ScalableTargets", "ResourceId"),
        "scaling policies": _aas(stack, "describe_scaling_policies", "ScalingPolicies", "PolicyName"),
        "lambda functions": functions,
        "log groups": [
            g["logGroupName"]
            for g in stack.client("logs").describe_log_groups()["logGroups"]
            if g["logGroupName"] not in SHARED_LOG_GROUPS
        ],
        "rest apis": [a["name"] for a in apigw.get_rest_apis()["items"]],
        "usage plans": [p["name"] for p in apigw.get_usage_plans()["items"]],
        "api keys": [k.get("name") for k in apigw.get_api_keys()["items"]],
        "resource groups": [
            g["GroupName"] for g in stack.client("resource-groups").list_groups()["GroupIdentifiers"]
        ],
    }
    return {kind: names for kind, names in found.items() if names}


def _aas(stack: Any, operation: str, field: str, name: str) -> list[str]:
    read = getattr(stack.client("application-autoscaling"), operation)
    return [item[name] for item in read(ServiceNamespace="sagemaker")[field]]


def _ours(name: str) -> bool:
    return name.startswith(PREFIX)


def _iam(stack: Any) -> dict[str, Any]:
    iam = stack.client("iam")
    roles = {}
    for role in iam.list_roles()["Roles"]:
        name = role["RoleName"]
        if not _ours(name):
            continue
        full = iam.get_role(RoleName=name)["Role"]
        roles[name] = {
            "trust": full["AssumeRolePolicyDocument"],
            "description": full.get("Description"),
            "tags": _tag_dict(full.get("Tags", [])),
            "inline": {
                p: iam.get_role_policy(RoleName=name, PolicyName=p)["PolicyDocument"]
                for p in iam.list_role_policies(RoleName=name)["PolicyNames"]
            },
            "attached": [
                p["PolicyArn"] for p in iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]
            ],
        }
    return roles


def _ecr(stack: Any) -> dict[str, Any]:
    ecr = stack.client("ecr")
    repos = {}
    for repo in ecr.describe_repositories()["repositories"]:
        name = repo["repositoryName"]
        try:
            lifecycle = json.loads(ecr.get_lifecycle_policy(repositoryName=name)["lifecyclePolicyText"])
        except ecr.exceptions.LifecyclePolicyNotFoundException:
            lifecycle = None
        repos[name] = {
            "mutability": repo.get("imageTagMutability"),
            "scan": repo.get("imageScanningConfiguration"),
            "encryption": repo.get("encryptionConfiguration"),
            "lifecycle": lifecycle,
            "tags": _tag_dict(ecr.list_tags_for_resource(resourceArn=repo["repositoryArn"])["tags"]),
            "images": sorted(
                tag
                for image in ecr.describe_images(repositoryName=name)["imageDetails"]
                for tag in image.get("imageTags", [])
            ),
        }
    return repos


def _s3(stack: Any) -> dict[str, Any]:
    s3 = stack.client("s3")
    buckets = {}
    for bucket in s3.list_buckets()["Buckets"]:
        name = bucket["Name"]
        buckets[name] = {
            "policy": json.loads(
                _or_none(lambda name=name: s3.get_bucket_policy(Bucket=name)["Policy"]) or "null"
            ),
            "versioning": s3.get_bucket_versioning(Bucket=name).get("Status"),
            "encryption": _or_none(
                lambda name=name: s3.get_bucket_encryption(Bucket=name)["ServerSideEncryptionConfiguration"]
            ),
            "public_access_block": _or_none(
                lambda name=name: s3.get_public_access_block(Bucket=name)["PublicAccessBlockConfiguration"]
            ),
            "lifecycle": _or_none(
                lambda name=name: s3.get_bucket_lifecycle_configuration(Bucket=name)["Rules"]
            ),
            "tags": _tag_dict(_or_none(lambda name=name: s3.get_bucket_tagging(Bucket=name)["TagSet"]) or []),
            "versions": _versions(s3, name),
        }
    return buckets


def _versions(s3: Any, bucket: str) -> list[list[Any]]:
    listing = s3.list_object_versions(Bucket=bucket)
    rows = [[v["Key"], "version", v["IsLatest"], v.get("Size")] for v in listing.get("Versions", [])]
    rows += [[m["Key"], "delete marker", m["IsLatest"], None] for m in listing.get("DeleteMarkers", [])]
    return sorted(rows, key=lambda r: [str(x) for x in r])


def _all_versions(stack: Any) -> list[str]:
    s3 = stack.client("s3")
    return [f"{b['Name']}/{row[0]}" for b in s3.list_buckets()["Buckets"] for row in _versions(s3, b["Name"])]


def _sagemaker(stack: Any) -> dict[str, Any]:
    sm = stack.client("sagemaker")
    models = []
    for summary in sm.list_models()["Models"]:
        model = sm.describe_model(ModelName=summary["ModelName"])
        models.append(
            {
                "name": model["ModelName"],
                "container": model.get("PrimaryContainer"),
                "role": model.get("ExecutionRoleArn"),
                "network_isolation": model.get("EnableNetworkIsolation"),
            }
        )
    configs = []
    for summary in sm.list_endpoint_configs()["EndpointConfigs"]:
        config = sm.describe_endpoint_config(EndpointConfigName=summary["EndpointConfigName"])
        configs.append(
            {
                "name": config["EndpointConfigName"],
                "variants": config["ProductionVariants"],
                "data_capture": config.get("DataCaptureConfig"),
            }
        )
    endpoints = {}
    for summary in sm.list_endpoints()["Endpoints"]:
        endpoint = sm.describe_endpoint(EndpointName=summary["EndpointName"])
        endpoints[endpoint["EndpointName"]] = {
            "config": endpoint["EndpointConfigName"],
            "status": endpoint["EndpointStatus"],
        }
    jobs = sm.list_training_jobs()["TrainingJobSummaries"]
    return {
        "models": models,
        "endpoint_configs": configs,
        "endpoints": endpoints,
        "training_jobs": sorted(f"{j['TrainingJobName']} {j['TrainingJobStatus']}" for j in jobs),
    }


def _alarms(stack: Any) -> dict[str, Any]:
    keep = (
        "MetricName",
        "Namespace",
        "Statistic",
        "Threshold",
        "ComparisonOperator",
        "EvaluationPeriods",
        "Period",
        "Dimensions",
        "TreatMissingData",
        "ActionsEnabled",
        "AlarmActions",
    )
    return {
        a["AlarmName"]: {k: a.get(k) for k in keep}
        for a in stack.client("cloudwatch").describe_alarms()["MetricAlarms"]
    }


def _autoscaling(stack: Any) -> dict[str, Any]:
    aas = stack.client("application-autoscaling")
    targets = aas.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"]
    policies = aas.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"]
    return {
        "targets": sorted(
            [t["ResourceId"], t["ScalableDimension"], t["MinCapacity"], t["MaxCapacity"]] for t in targets
        ),
        "policies": sorted(
            [
                p["PolicyName"],
                p["ResourceId"],
                p["PolicyType"],
                json.dumps(p.get("TargetTrackingScalingPolicyConfiguration"), sort_keys=True, default=str),
            ]
            for p in policies
        ),
    }


def _lambda(stack: Any) -> dict[str, Any]:
    lam = stack.client("lambda")
    functions = {}
    for summary in lam.list_functions()["Functions"]:
        name = summary["FunctionName"]
        config = lam.get_function_configuration(FunctionName=name)
        policy = _or_none(lambda name=name: json.loads(lam.get_policy(FunctionName=name)["Policy"])) or {}
        functions[name] = {
            "config": {
                k: config.get(k)
                for k in (
                    "Runtime",
                    "Handler",
                    "Role",
                    "Timeout",
                    "MemorySize",
                    "Environment",
                    "CodeSha256",
                    "Architectures",
                    "LoggingConfig",
                    "TracingConfig",
                )
            },
            "permissions": sorted(
                (
                    {k: st.get(k) for k in ("Sid", "Effect", "Action", "Principal", "Condition")}
                    for st in policy.get("Statement", [])
                ),
                key=lambda st: st["Sid"],
            ),
            "tags": lam.list_tags(Resource=config["FunctionArn"]).get("Tags", {}),
        }
    return functions


def _logs(stack: Any) -> dict[str, Any]:
    return {
        g["logGroupName"]: g.get("retentionInDays")
        for g in stack.client("logs").describe_log_groups()["logGroups"]
    }


def _apigateway(stack: Any, ids: dict[str, str]) -> dict[str, Any]:
    apigw = stack.client("apigateway")
    apis = []
    for n, api in enumerate(sorted(apigw.get_rest_apis()["items"], key=lambda a: a["name"])):
        api_id = api["id"]
        ids[api_id] = f"<api-{n}>"
        resources = []
        for resource in apigw.get_resources(restApiId=api_id, embed=["methods"])["items"]:
            methods = {}
            for verb in resource.get("resourceMethods", {}):
                method = apigw.get_method(restApiId=api_id, resourceId=resource["id"], httpMethod=verb)
                integration = method.get("methodIntegration") or {}
                methods[verb] = {
                    "auth": method.get("authorizationType"),
                    "key_required": method.get("apiKeyRequired"),
                    "integration": {
                        k: integration.get(k) for k in ("type", "httpMethod", "uri", "timeoutInMillis")
                    },
                }
            resources.append({"path": resource["path"], "methods": methods})
        stages = apigw.get_stages(restApiId=api_id)["item"]
        deployments = apigw.get_deployments(restApiId=api_id)["items"]
        apis.append(
            {
                "name": api["name"],
                "key_source": api.get("apiKeySource"),
                "endpoint": api.get("endpointConfiguration", {}).get("types"),
                "tags": api.get("tags"),
                "resources": sorted(resources, key=lambda r: r["path"]),
                "stages": sorted(s["stageName"] for s in stages),
                # Not a count: a run stopped between CreateDeployment and CreateStage leaves one more
                # deployment, a snapshot inside the API that goes with it and costs nothing.
                "stage deployments exist": all(
                    s["deploymentId"] in {d["id"] for d in deployments} for s in stages
                ),
            }
        )
    plans = []
    for n, plan in enumerate(sorted(apigw.get_usage_plans()["items"], key=lambda p: p["name"])):
        ids[plan["id"]] = f"<plan-{n}>"
        plan_keys = apigw.get_usage_plan_keys(usagePlanId=plan["id"])["items"]
        plans.append(
            {
                "name": plan["name"],
                "throttle": plan.get("throttle"),
                "quota": plan.get("quota"),
                "stages": plan.get("apiStages"),
                "tags": plan.get("tags"),
                "keys": sorted(k["name"] for k in plan_keys),
            }
        )
    keys = []
    for n, key in enumerate(
        sorted(apigw.get_api_keys()["items"], key=lambda k: (k.get("name", ""), k["id"]))
    ):
        ids[key["id"]] = f"<key-{n}>"
        keys.append({"name": key.get("name"), "enabled": key.get("enabled"), "tags": key.get("tags")})
    return {"apis": apis, "usage_plans": plans, "api_keys": keys}


def _resource_groups(stack: Any) -> dict[str, Any]:
    rg = stack.client("resource-groups")
    groups = {}
    for ident in rg.list_groups()["GroupIdentifiers"]:
        name = ident["GroupName"]
        query = rg.get_group_query(GroupName=name)["GroupQuery"]["ResourceQuery"]
        groups[name] = {"type": query["Type"], "query": json.loads(query["Query"])}
    return groups


def _tag_dict(tags: list[dict[str, str]]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in tags}


def _or_none(read: Any) -> Any:
    """``read()``, or None when the resource has no such setting (AWS answers with an error)."""
    try:
        return read()
    except Exception as exc:  # each of S3's "no such configuration" errors has its own code
        if getattr(exc, "response", {}).get("Error", {}).get("Code", "") in _ABSENT:
            return None
        raise


_ABSENT = {
    "NoSuchBucketPolicy",
    "ServerSideEncryptionConfigurationNotFoundError",
    "NoSuchPublicAccessBlockConfiguration",
    "NoSuchLifecycleConfiguration",
    "NoSuchTagSet",
    "ResourceNotFoundException",
}
