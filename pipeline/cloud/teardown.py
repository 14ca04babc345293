"""``python -m pipeline teardown``: find everything deploy created (by name and tag) and delete it.

Training jobs are the one thing left: SageMaker keeps their history and offers no delete (they cost
nothing once finished). The shared log group /aws/sagemaker/TrainingJobs is also left alone.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from pipeline.cloud import alarms, apigateway, autoscaling, ecr, endpoint, iam, keys, lambda_function, s3
from pipeline.cloud.clients import Clients, error_code
from pipeline.cloud.config import DeployConfig
from pipeline.cloud.names import Names, names_for
from pipeline.cloud.progress import Progress


def inventory(config: DeployConfig, clients: Clients) -> list[tuple[str, str]]:
    """(kind, name) of every resource of this project that exists now."""
    names = names_for(config, clients.account_id)
    found: list[tuple[str, str]] = []
    target, policy = autoscaling.current(clients.autoscaling, names)
    if policy:
        found.append(("scaling policy", names.scaling_policy))
    if target:
        found.append(("scalable target", names.scaling_resource_id))
    api = apigateway.find_rest_api(clients.apigateway, names.api)
    if api:
        found.append(("REST API", f"{names.api} ({api['id']})"))
    plan = apigateway.find_usage_plan(clients.apigateway, names.usage_plan)
    if plan:
        found.append(("usage plan", f"{names.usage_plan} ({plan['id']})"))
        found += [
            ("API key", f"{k['name']} ({k['id']})") for k in keys.list_keys(clients.apigateway, plan["id"])
        ]
    if _function_exists(clients, names):
        found.append(("Lambda function", names.function))
    for group in (names.function_log_group, names.endpoint_log_group):
        if lambda_function.find_log_group(clients.logs, group):
            found.append(("log group", group))
    described = endpoint.describe_endpoint(clients.sagemaker, names.endpoint)
    if described:
        found.append(("endpoint", names.endpoint))
    configs, models = endpoint.list_owned(clients.sagemaker, names)
    found += [("endpoint config", c) for c in configs] + [("model", m) for m in models]
    alarm_names = clients.cloudwatch.describe_alarms(AlarmNames=list(names.rollback_alarms))["MetricAlarms"]
    found += [("alarm", a["AlarmName"]) for a in alarm_names]
    try:
        clients.ecr.describe_repositories(repositoryNames=[names.repository])
        found.append(("ECR repository", names.repository))
    except Exception as exc:
        if error_code(exc) != "RepositoryNotFoundException":
            raise
    if s3.bucket_exists(clients.s3, names.bucket):
        if s3.is_ours(clients.s3, names):
            found.append(("S3 bucket", names.bucket))
        elif s3.has_objects(clients.s3, names.bucket, names.s3_prefix + "/"):
            found.append((f"S3 objects under {names.s3_prefix}/ in", names.bucket))
    for role in (names.sagemaker_role, names.lambda_role):
        try:
            clients.iam.get_role(RoleName=role)
            found.append(("IAM role", role))
        except Exception as exc:
            if error_code(exc) != "NoSuchEntity":
                raise
    return found


def _function_exists(clients: Clients, names: Names) -> bool:
    try:
        clients.lambda_.get_function(FunctionName=names.function)
        return True
    except Exception as exc:
        if error_code(exc) == "ResourceNotFoundException":
            return False
        raise


def teardown(
    config: DeployConfig,
    clients: Clients,
    progress: Progress,
    confirm: Callable[[list[tuple[str, str]]], bool],
    poll_s: float = 10.0,
    sleep: Callable[[float], None] = time.sleep,
) -> list[tuple[str, str]]:
    """Delete everything in the inventory after ``confirm`` agrees; returns what is left (should be [])."""
    found = inventory(config, clients)
    if not found:
        progress.step("Nothing to tear down: no resources of this project exist")
        return []
    progress.step(f"Resources of {config.project.name_prefix} in {config.project.region}")
    for kind, name in found:
        progress.detail(f"{kind}: {name}")
    if not confirm(found):
        progress.step("Teardown cancelled; nothing was deleted")
        return found
    names = names_for(config, clients.account_id)
    _delete_all(clients, names, progress, poll_s, sleep)
    left = inventory(config, clients)
    if left:
        progress.step("Left behind (delete by hand or run teardown again):")
        for kind, name in left:
            progress.detail(f"{kind}: {name}")
    else:
        progress.step("Everything deploy created is gone (training job history stays in SageMaker)")
    return left


def _delete_all(
    clients: Clients, names: Names, progress: Progress, poll_s: float, sleep: Callable[[float], None]
) -> None:
    # Order: what routes traffic first (autoscaling must go before its endpoint), IAM last.
    progress.step("Deleting")
    if autoscaling.remove(clients.autoscaling, names):
        progress.detail("autoscaling policy and scalable target")
    api_id = apigateway.delete_rest_api(clients.apigateway, names)
    if api_id:
        progress.detail(f"REST API {api_id}")
    deleted_keys = apigateway.delete_usage_plan(clients.apigateway, names)
    if deleted_keys:
        progress.detail(f"usage plan and {len(deleted_keys)} API key(s)")
    if lambda_function.delete_function(clients.lambda_, names):
        progress.detail(f"Lambda function {names.function}")
    for group in (names.function_log_group, names.endpoint_log_group):
        if lambda_function.delete_log_group(clients.logs, group):
            progress.detail(f"log group {group}")
    if endpoint.delete_endpoint(clients.sagemaker, names, progress, poll_s, sleep):
        progress.detail(f"endpoint {names.endpoint}")
    configs, models = endpoint.delete_configs_and_models(clients.sagemaker, names)
    if configs or models:
        progress.detail(f"{len(configs)} endpoint config(s), {len(models)} model(s)")
    if alarms.delete_alarms(clients.cloudwatch, names):
        progress.detail("rollback alarms")
    if ecr.delete_repository(clients.ecr, names):
        progress.detail(f"ECR repository {names.repository} and its images")
    outcome = s3.delete_bucket(clients.s3, names)
    if outcome != "absent":
        progress.detail(f"S3 bucket {names.bucket}: {outcome}")
    for role in (names.sagemaker_role, names.lambda_role):
        if iam.delete_role(clients.iam, role):
            progress.detail(f"IAM role {role}")
