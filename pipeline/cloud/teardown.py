"""``python -m pipeline teardown``: find everything deploy created (by name and tag) and delete it.

Order: what bills by the hour first (a running training job, then the endpoint: autoscaling is removed
just before it), then what routes traffic (the usage plan is detached from the stage before the REST
API goes: AWS refuses to delete an API whose stage a plan still names), then storage and IAM, and
last the log groups (a live endpoint writes to its group and would re-create it) and the resource
group. Every step runs even when an earlier one failed; what is left is listed with the reason, the
command exits non-zero, and running it again finishes the job.

Training jobs stay in SageMaker's history (there is no delete; they cost nothing once stopped), and
so does the account-wide log group /aws/sagemaker/TrainingJobs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from pipeline.cloud import (
    alarms,
    alerting,
    apigateway,
    autoscaling,
    dashboard,
    ecr,
    endpoint,
    iam,
    keys,
    lambda_function,
    log_groups,
    log_queries,
    resource_group,
    s3,
    training_job,
    transform_jobs,
)
from pipeline.cloud.clients import Clients
from pipeline.cloud.config import DeployConfig
from pipeline.cloud.errors import describe_failure
from pipeline.cloud.names import Names, names_for
from pipeline.cloud.progress import Progress


@dataclass
class TeardownResult:
    """What is still there after a teardown, and why each failed step failed."""

    left: list[tuple[str, str]] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)  # (step, reason)

    @property
    def complete(self) -> bool:
        return not self.left and not self.failures


def inventory(config: DeployConfig, clients: Clients) -> list[tuple[str, str]]:
    """(kind, name) of every resource of this project that exists now, billable ones first."""
    names = names_for(config, clients.account_id)
    found: list[tuple[str, str]] = [
        ("training job (running)", name) for name in training_job.running(clients.sagemaker, names)
    ]
    found += [
        ("transform job (running)", name)
        for name in transform_jobs.running_transform_jobs(clients.sagemaker, names.prefix)
    ]
    if endpoint.describe_endpoint(clients.sagemaker, names.endpoint):
        found.append(("endpoint", names.endpoint))
    target, policy = autoscaling.current(clients.autoscaling, names)
    if policy:
        found.append(("scaling policy", names.scaling_policy))
    if target:
        found.append(("scalable target", names.scaling_resource_id))
    configs, models = endpoint.list_owned(clients.sagemaker, names)
    found += [("endpoint config", c) for c in configs] + [("model", m) for m in models]
    plan = apigateway.find_usage_plan(clients.apigateway, names.usage_plan)
    if plan:
        found.append(("usage plan", f"{names.usage_plan} ({plan['id']})"))
        found += [
            ("API key", f"{k['name']} ({k['id']})") for k in keys.list_keys(clients.apigateway, plan["id"])
        ]
    found += [
        ("API key (on no plan)", f"{k['name']} ({k['id']})")
        for k in keys.detached_keys(clients.apigateway, names)
    ]
    api = apigateway.find_rest_api(clients.apigateway, names.api)
    if api:
        found.append(("REST API", f"{names.api} ({api['id']})"))
    if lambda_function.function_exists(clients.lambda_, names):
        found.append(("Lambda function", names.function))
    found += [("alarm", a) for a in alarms.existing(clients.cloudwatch, names)]
    found += [("alarm", a) for a in alerting.states(clients.cloudwatch, names)]
    if dashboard.exists(clients.cloudwatch, names):
        found.append(("dashboard", names.dashboard))
    if alerting.topic_exists(clients.sns, names):
        found.append(("SNS topic", names.alarm_topic))
    found += [("saved log query", q) for q in log_queries.saved(clients.logs, names)]
    if ecr.repository_exists(clients.ecr, names):
        found.append(("ECR repository", names.repository))
    if s3.bucket_exists(clients.s3, names.bucket):
        if s3.is_ours(clients.s3, names):
            found.append(("S3 bucket", names.bucket))
        elif s3.has_objects(clients.s3, names.bucket, names.s3_prefix + "/"):
            found.append((f"S3 objects under {names.s3_prefix}/ in", names.bucket))
    found += [("IAM role", role) for role in iam.existing_roles(clients.iam, names)]
    for group in (names.function_log_group, names.endpoint_log_group):
        if log_groups.find(clients.logs, group):
            found.append(("log group", group))
    if resource_group.find(clients.resource_groups, names):
        found.append(("resource group", names.resource_group))
    return found


def teardown(
    config: DeployConfig,
    clients: Clients,
    progress: Progress,
    confirm: Callable[[list[tuple[str, str]]], bool],
    poll_s: float = 10.0,
    sleep: Callable[[float], None] = time.sleep,
) -> TeardownResult:
    """Delete everything in the inventory after ``confirm`` agrees; ``complete`` when nothing is left."""
    found = inventory(config, clients)
    if not found:
        progress.step("Nothing to tear down: no resources of this project exist")
        return TeardownResult()
    progress.step(f"Resources of {config.project.name_prefix} in {config.project.region}")
    for kind, name in found:
        progress.detail(f"{kind}: {name}")
    if not confirm(found):
        progress.step("Teardown cancelled; nothing was deleted")
        return TeardownResult(left=found)
    names = names_for(config, clients.account_id)
    progress.step("Deleting")
    result = TeardownResult()
    for step, delete in _steps(clients, names, progress, poll_s, sleep):
        try:
            done = delete()
        except Exception as exc:  # keep going: later steps may still stop charges
            result.failures.append((step, describe_failure(exc)))
            progress.detail(f"FAILED {step}: {describe_failure(exc)}")
            continue
        if done:
            progress.detail(f"{step}: {done}")
    result.left = inventory(config, clients)
    _report(result, progress)
    return result


def _steps(
    clients: Clients, names: Names, progress: Progress, poll_s: float, sleep: Callable[[float], None]
) -> list[tuple[str, Callable[[], object]]]:
    """(description, action) in deletion order; each action returns what it deleted (falsy: nothing)."""
    return [
        ("stop running training jobs", lambda: training_job.stop_running(clients.sagemaker, names)),
        (
            "stop running batch transform jobs",
            lambda: transform_jobs.stop_running_transform_jobs(clients.sagemaker, names.prefix),
        ),
        ("autoscaling of the endpoint", lambda: autoscaling.remove(clients.autoscaling, names)),
        (
            f"endpoint {names.endpoint}",
            lambda: endpoint.delete_endpoint(clients.sagemaker, names, progress, poll_s, sleep),
        ),
        (
            "endpoint configs and models",
            lambda: _configs_and_models(endpoint.delete_configs_and_models(clients.sagemaker, names)),
        ),
        (
            "usage plan and API keys",
            lambda: _plan_and_keys(apigateway.delete_usage_plan(clients.apigateway, names)),
        ),
        ("API keys on no usage plan", lambda: keys.delete_detached(clients.apigateway, names)),
        ("REST API", lambda: apigateway.delete_rest_api(clients.apigateway, names)),
        (
            f"Lambda function {names.function}",
            lambda: lambda_function.delete_function(clients.lambda_, names),
        ),
        ("rollback alarms", lambda: alarms.delete_alarms(clients.cloudwatch, names)),
        ("operational alarms", lambda: alerting.delete_alarms(clients.cloudwatch, names)),
        (f"dashboard {names.dashboard}", lambda: dashboard.delete(clients.cloudwatch, names)),
        (f"SNS topic {names.alarm_topic}", lambda: alerting.delete_topic(clients.sns, names)),
        ("saved log queries", lambda: log_queries.delete(clients.logs, names)),
        (f"ECR repository {names.repository}", lambda: ecr.delete_repository(clients.ecr, names)),
        (f"S3 bucket {names.bucket}", lambda: _bucket(s3.delete_bucket(clients.s3, names))),
        (
            "IAM roles",
            lambda: [r for r in iam.existing_roles(clients.iam, names) if iam.delete_role(clients.iam, r)],
        ),
        (
            "log groups",
            lambda: [
                g
                for g in (names.function_log_group, names.endpoint_log_group)
                if log_groups.delete(clients.logs, g)
            ],
        ),
        (
            f"resource group {names.resource_group}",
            lambda: resource_group.delete(clients.resource_groups, names),
        ),
    ]


def _configs_and_models(deleted: tuple[list[str], list[str]]) -> str:
    configs, models = deleted
    return f"{len(configs)} endpoint config(s), {len(models)} model(s)" if configs or models else ""


def _plan_and_keys(deleted_keys: list[str] | None) -> str:
    return "" if deleted_keys is None else f"deleted, with {len(deleted_keys)} API key(s)"


def _bucket(outcome: str) -> str:
    return "" if outcome == "absent" else outcome


def _report(result: TeardownResult, progress: Progress) -> None:
    if result.complete:
        progress.step("Everything deploy created is gone (training job history stays in SageMaker)")
        return
    progress.step("Left behind: run `python -m pipeline teardown` again, or delete by hand")
    for kind, name in result.left:
        progress.detail(f"{kind}: {name}")
    for step, reason in result.failures:
        progress.detail(f"{step} failed: {reason}")
