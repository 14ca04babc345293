"""``python -m pipeline deploy``: the whole stack in order, each step idempotent.

Order: identity -> IAM roles -> ECR image -> S3 data -> training job -> model, endpoint config and
endpoint -> autoscaling -> Lambda -> REST API, stage, usage plan -> first API key. Running it again
with nothing changed creates nothing; a changed input updates only what depends on it (the endpoint
by a blue/green update).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.cloud import (
    alarms,
    alerting,
    apigateway,
    autoscaling,
    cost,
    dashboard,
    data_capture,
    ecr,
    endpoint,
    iam,
    keys,
    lambda_function,
    log_groups,
    log_queries,
    resource_group,
    s3,
)
from pipeline.cloud import training_job as training
from pipeline.cloud.clients import Clients, error_code
from pipeline.cloud.config import DeployConfig
from pipeline.cloud.errors import CloudError, describe_failure
from pipeline.cloud.names import Names, names_for
from pipeline.cloud.preflight import PreflightFailed, run_preflight
from pipeline.cloud.progress import Progress
from pipeline.cloud.shell import CommandRunner, SubprocessRunner

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class DeployOptions:
    dry_run: bool = False
    image_uri: str | None = None  # an image already in the project's ECR repository: skip build and push
    model_data: str | None = None  # a model.tar.gz under the project's S3 prefix: skip training
    show_key: bool = False  # print a new key's value once instead of writing it to .secrets/
    preflight: bool = True  # run the preflight checks first and stop before creating anything
    poll_seconds: float = 30.0
    secrets_dir: Path | None = None


@dataclass
class DeployResult:
    invoke_url: str = ""
    api_id: str = ""
    usage_plan_id: str = ""
    key_id: str | None = None
    key_file: Path | None = None
    image_uri: str = ""
    model_data: str = ""
    dashboard_url: str = ""
    training_job: str | None = None
    actions: dict[str, str] = field(default_factory=dict)


def plan(config: DeployConfig, options: DeployOptions) -> list[str]:
    """What deploy does, step by step, with the names it uses (no AWS calls)."""
    names = names_for(config, "<account-id>")
    ep = config.endpoint
    image = (
        options.image_uri
        or f"<account-id>.dkr.ecr.{names.region}.amazonaws.com/{names.repository}:<source tag>"
    )
    steps = [
        "preflight: credentials, region, Docker (linux/amd64), SageMaker quotas, the caller's "
        "permissions (iam:SimulatePrincipalPolicy), cost estimate; stop if any check fails",
        "look up the AWS account (sts:GetCallerIdentity); resource group "
        f"{names.resource_group} (tag project={names.prefix})",
        f"IAM roles {names.sagemaker_role} (S3 {names.bucket}/{names.s3_prefix}/*, ECR pull, logs) and "
        f"{names.lambda_role} (sagemaker:InvokeEndpoint on {names.endpoint_arn}, its logs)",
    ]
    if options.image_uri:
        steps.append(f"use existing image {options.image_uri}")
    else:
        steps.append(
            f"ECR repository {names.repository}; docker build --platform {ecr.PLATFORM} and push {image} "
            "(skipped if that tag is already in ECR)"
        )
    if options.model_data:
        steps.append(f"use existing model artifact {options.model_data}")
    else:
        steps.append(
            f"S3 bucket {names.bucket} (private, SSE-S3, TLS only, versioned); upload "
            f"{config.training.train_data}"
            + (f" and {config.training.test_data}" if config.training.test_data else "")
            + f" under s3://{names.bucket}/{names.training_data_prefix}/"
        )
        steps.append(
            f"training job {names.training_job_prefix}-<digest>-<time> on {config.training.instance_count} x "
            f"{config.training.instance_type} (reused if one with the same inputs completed and its "
            "model.tar.gz still exists)"
        )
    if ep.serverless:
        variant = f"serverless {ep.serverless_memory_mb} MB, max concurrency {ep.serverless_max_concurrency}"
    else:
        variant = f"{ep.initial_instance_count} x {ep.instance_type}"
    steps.append(
        f"log group {names.endpoint_log_group} ({config.project.log_retention_days} days), then "
        f"model, endpoint config ({variant}) and endpoint {names.endpoint}: create, or blue/green update "
        f"with {ep.bake_seconds} s bake and rollback alarms {', '.join(names.rollback_alarms)}"
    )
    if ep.serverless:
        steps.append("no instance autoscaling (serverless); remove any left from real-time mode")
    else:
        steps.append(
            f"autoscaling {ep.autoscaling_min}-{ep.autoscaling_max} instances, target "
            f"{ep.autoscaling_target_invocations} invocations per instance per minute"
        )
    lm = config.lambda_
    steps.append(
        f"log group {names.function_log_group} ({config.project.log_retention_days} days); "
        f"Lambda {names.function} "
        f"({lm.runtime}, {lm.memory_mb} MB, {lm.timeout_seconds} s, ENDPOINT_NAME={names.endpoint})"
    )
    api = config.api
    steps.append(
        f"REST API {names.api}: POST /predict and GET /health (API key required, Lambda proxy), stage "
        f"{names.stage}; usage plan {names.usage_plan} ({api.throttle_rate:g} req/s, burst "
        f"{api.throttle_burst}, {api.quota_limit} per {api.quota_period.lower()})"
    )
    steps.append(
        f"API key {names.default_key} on the plan if it has none (value to .secrets/, never printed)"
    )
    if config.monitoring.data_capture and not ep.serverless:
        steps.append(
            f"data capture of {config.monitoring.capture_sampling_percentage} % of invocations (request "
            f"and response) to {data_capture.capture_destination(config, names)}/"
        )
    al = config.alarms
    steps.append(
        f"CloudWatch dashboard {names.dashboard}; alarms on API 5xx > {al.api_5xx_percent:g} %, p99 > "
        f"{al.p99_latency_ms} ms, Lambda errors and throttles"
        + ("" if ep.serverless else f", {al.at_max_instances_minutes} min at {ep.autoscaling_max} instances")
        + (f", notifying {al.email} (SNS topic {names.alarm_topic})" if al.email else " (no notifications)")
        + f"; Logs Insights queries under {names.query_folder}/"
    )
    return steps


def deploy(
    config: DeployConfig,
    options: DeployOptions | None = None,
    clients: Clients | None = None,
    progress: Progress | None = None,
    runner: CommandRunner | None = None,
    repo_root: Path = REPO_ROOT,
    sleep: Callable[[float], None] = time.sleep,
) -> DeployResult:
    """Deploy or update the stack; with ``options.dry_run`` print the plan and call nothing."""
    options = options or DeployOptions()
    progress = progress or Progress()
    if options.dry_run:
        progress.step("Dry run: nothing will be created or changed; no AWS calls are made")
        for number, line in enumerate(plan(config, options), 1):
            progress.detail(f"{number:2}. {line}")
        return DeployResult()
    clients = clients or Clients(config.project.region)
    runner = runner or SubprocessRunner(progress)
    result = DeployResult()

    if options.preflight:
        progress.step("Preflight (nothing is created until every check passes)")
        report = run_preflight(config, clients, progress, check_docker=options.image_uri is None)
        if not report.ok:
            raise PreflightFailed(report)
    progress.step("AWS account and resource group")
    names = names_for(config, clients.account_id)
    progress.detail(f"account {names.account_id}, region {names.region}, prefix {names.prefix}")
    # First, so that whatever this run creates, even if it stops half-way, shows up in one place.
    resource_group.ensure(clients.resource_groups, names, progress)

    progress.step("IAM roles (least privilege)")
    sagemaker_role = iam.ensure_role(
        clients.iam,
        names,
        names.sagemaker_role,
        iam.SAGEMAKER_SERVICE,
        iam.sagemaker_policy(names),
        f"SageMaker training and hosting for {names.prefix}",
        progress,
    )
    lambda_role = iam.ensure_role(
        clients.iam,
        names,
        names.lambda_role,
        iam.LAMBDA_SERVICE,
        iam.lambda_policy(names),
        f"Lambda proxy for {names.endpoint}",
        progress,
    )

    progress.step("Container image")
    repository_uri = ecr.ensure_repository(clients.ecr, names, progress)
    if options.image_uri:
        if not options.image_uri.startswith(repository_uri + ":") and not options.image_uri.startswith(
            repository_uri + "@"
        ):
            raise CloudError(
                f"--image-uri must be in this project's repository {repository_uri} (the execution role "
                "may pull only from it)"
            )
        result.image_uri = options.image_uri
        progress.detail(f"using {options.image_uri}")
    else:
        result.image_uri = ecr.build_and_push(
            clients.ecr, runner, repo_root, repository_uri, ecr.source_tag(repo_root), progress
        )

    if options.model_data:
        progress.step("Model artifact")
        _check_model_data(options.model_data, names)
        if not s3.object_exists(clients.s3, options.model_data):
            raise CloudError(f"{options.model_data} does not exist")
        result.model_data = options.model_data
        progress.detail(f"using {options.model_data}")
    else:
        progress.step("Training data in S3")
        s3.ensure_bucket(clients.s3, names, progress)
        channels = _upload_channels(clients, config, names, repo_root, progress)
        progress.step("Training job")
        result.training_job, result.model_data = _train(
            clients,
            config,
            names,
            sagemaker_role,
            training.TrainingInputs(result.image_uri, channels),
            options,
            progress,
            sleep,
        )

    progress.step("SageMaker model, endpoint config and endpoint")
    log_groups.ensure(
        clients.logs, names.endpoint_log_group, config.project.log_retention_days, names.tags, progress
    )
    container = endpoint.model_spec(result.image_uri, result.model_data, config.endpoint)
    model_name = iam.retry_while_role_propagates(
        lambda: endpoint.ensure_model(
            clients.sagemaker, names, sagemaker_role, container, config.endpoint, progress
        ),
        _sagemaker_role_not_ready,
        progress,
        sleep=sleep,
    )
    config_name = endpoint.ensure_endpoint_config(
        clients.sagemaker,
        names,
        model_name,
        config.endpoint,
        progress,
        data_capture.data_capture_config(config, names),
    )
    alarm_names = alarms.ensure_alarms(clients.cloudwatch, names)
    paused: list[bool] = []
    try:
        result.actions["endpoint"] = endpoint.deploy(
            clients.sagemaker,
            names,
            config_name,
            config.endpoint,
            alarm_names,
            progress,
            before_instance_type_change=lambda: paused.append(_pause_autoscaling(clients, names, progress)),
            poll_s=options.poll_seconds,
            sleep=sleep,
        )
    finally:
        if any(paused):
            # Whatever the update's outcome (done, rolled back, failed), the endpoint that serves must
            # not be left without autoscaling.
            _restore_autoscaling(clients, names, config, progress)

    progress.step("Autoscaling")
    if config.endpoint.serverless:
        removed = autoscaling.remove(clients.autoscaling, names)
        result.actions["autoscaling"] = "removed" if removed else "none (serverless)"
        progress.detail("serverless endpoint: SageMaker scales it; no instance autoscaling")
    else:
        result.actions["autoscaling"] = autoscaling.ensure(
            clients.autoscaling, names, config.endpoint, progress
        )

    progress.step("Lambda proxy")
    log_groups.ensure(
        clients.logs, names.function_log_group, config.project.log_retention_days, names.tags, progress
    )
    zip_bytes = lambda_function.build_zip(repo_root / "lambda_proxy")
    result.actions["lambda"] = lambda_function.ensure_function(
        clients.lambda_, config, names, lambda_role, zip_bytes, progress, sleep
    )

    progress.step("API Gateway")
    result.api_id, _ = apigateway.ensure_rest_api(clients.apigateway, names, progress)
    routes_changed = apigateway.ensure_routes(
        clients.apigateway, names, result.api_id, names.function_arn, progress
    )
    for path_part, method in apigateway.ROUTES:
        lambda_function.ensure_permission(
            clients.lambda_,
            names,
            f"apigateway-{method.lower()}-{path_part}",
            apigateway.source_arn(names, result.api_id, method, path_part),
            progress,
        )
    result.actions["stage"] = apigateway.ensure_stage(
        clients.apigateway, names, result.api_id, routes_changed, progress
    )
    result.usage_plan_id = apigateway.ensure_usage_plan(
        clients.apigateway, names, result.api_id, config.api, progress
    )
    result.invoke_url = names.invoke_url(result.api_id)

    progress.step("API key")
    existing = keys.list_keys(clients.apigateway, result.usage_plan_id)
    if existing:
        progress.detail(
            f"{len(existing)} key(s) already on the plan; manage them with `python -m pipeline keys`"
        )
    else:
        result.key_id, value = keys.create_key(clients.apigateway, names, result.usage_plan_id, "default")
        if options.show_key:
            # Shown once, on purpose, to the user who asked; it is not stored anywhere.
            print(f"    API key {result.key_id} value (shown once, store it now): {value}", flush=True)
        else:
            result.key_file = keys.write_secret(names.default_key, value, options.secrets_dir)
            progress.detail(f"created key {result.key_id}; value written to {result.key_file} (mode 0600)")

    progress.step("Operations: alarms, dashboard, saved log queries")
    topic = alerting.ensure_topic(clients.sns, names, config.alarms.email, progress)
    alarm_arns = alerting.ensure_alarms(clients.cloudwatch, names, config, topic)
    result.actions["dashboard"] = dashboard.ensure(clients.cloudwatch, names, config, alarm_arns)
    saved_queries = log_queries.ensure(clients.logs, names)
    result.dashboard_url = dashboard.url(names)
    progress.detail(
        f"{len(alarm_arns)} alarms ({'notifying ' + config.alarms.email if topic else 'no notifications'}), "
        f"dashboard {names.dashboard} ({result.actions['dashboard']}), {len(saved_queries)} Logs Insights "
        f"queries under {names.query_folder}/"
    )

    _summary(result, config, names, progress)
    return result


def _check_model_data(uri: str, names: Names) -> None:
    bucket, key = s3.split_uri(uri)
    if bucket != names.bucket or not key.startswith(names.s3_prefix + "/"):
        raise CloudError(
            f"--model-data must be under s3://{names.bucket}/{names.s3_prefix}/ (the execution role may read "
            "only there); copy it there first"
        )


def _upload_channels(
    clients: Clients, config: DeployConfig, names: Names, repo_root: Path, progress: Progress
) -> dict[str, str]:
    channels: dict[str, str] = {}
    for channel, relative in (("train", config.training.train_data), ("test", config.training.test_data)):
        if not relative:
            continue
        path = Path(relative) if Path(relative).is_absolute() else repo_root / relative
        if not path.is_file():
            raise CloudError(f"training.{channel}_data {path} does not exist")
        # Content-addressed prefix: a channel never mixes the current file with an older one.
        digest = s3.file_sha256(path)[:12]
        prefix = f"{names.training_data_prefix}/{digest}/{channel}"
        s3.upload_if_changed(clients.s3, names.bucket, f"{prefix}/{path.name}", path, progress)
        channels[channel] = f"s3://{names.bucket}/{prefix}/"
    return channels


def _train(
    clients: Clients,
    config: DeployConfig,
    names: Names,
    role_arn: str,
    inputs: training.TrainingInputs,
    options: DeployOptions,
    progress: Progress,
    sleep: Callable[[float], None],
) -> tuple[str, str]:
    base = training.job_base_name(names, inputs, config.training)
    job = training.latest_completed(clients.sagemaker, base)
    if job and not s3.object_exists(clients.s3, job["ModelArtifacts"]["S3ModelArtifacts"]):
        # SageMaker keeps a job's history after its output is gone (teardown deletes the bucket): the
        # inputs match, but there is nothing to serve, so train again under a new job name.
        progress.detail(f"job {job['TrainingJobName']} completed earlier but its model.tar.gz is gone")
        job = None
    if job:
        progress.detail(f"reusing completed job {job['TrainingJobName']} (same image, data and settings)")
    else:
        request = training.training_job_request(
            training.new_job_name(base), names, role_arn, inputs, config.training
        )
        name = iam.retry_while_role_propagates(
            lambda: training.start(clients.sagemaker, request, progress),
            _sagemaker_role_not_ready,
            progress,
            sleep=sleep,
        )
        job = training.wait(clients.sagemaker, name, progress, poll_s=options.poll_seconds, sleep=sleep)
        log_groups.ensure_shared_retention(
            clients.logs, names.training_log_group, config.project.log_retention_days, progress
        )
    artifact = job["ModelArtifacts"]["S3ModelArtifacts"]
    if not s3.object_exists(clients.s3, artifact):
        raise CloudError(f"training job {job['TrainingJobName']} completed but {artifact} is missing")
    progress.detail(f"model artifact {artifact}")
    return job["TrainingJobName"], artifact


def _sagemaker_role_not_ready(exc: Exception) -> bool:
    # A role created seconds ago: SageMaker answers "Could not assume role ..." until IAM has propagated.
    return error_code(exc) == "ValidationException" and "assume" in str(exc).lower()


def _pause_autoscaling(clients: Clients, names: Names, progress: Progress) -> bool:
    removed = autoscaling.remove(clients.autoscaling, names)
    if removed:
        progress.detail(
            "instance type changes: autoscaling deregistered for the update (re-registered after)"
        )
    return removed


def _restore_autoscaling(clients: Clients, names: Names, config: DeployConfig, progress: Progress) -> None:
    try:
        autoscaling.ensure(clients.autoscaling, names, config.endpoint, progress)
    except Exception as exc:  # reported, never hiding the update's own outcome
        progress.detail(
            f"could not re-register autoscaling ({describe_failure(exc)}); run deploy again to restore it"
        )


def _cost_line(config: DeployConfig) -> str:
    hourly = cost.hourly_cost(config)
    if config.endpoint.serverless:
        return "serverless: nothing while idle, billed per request (`python -m pipeline preflight`)"
    ep = config.endpoint
    return (
        f"{cost.usd(hourly)} per hour for {ep.initial_instance_count} x {ep.instance_type} while it runs, "
        f"up to {ep.autoscaling_max} instances under load; `make aws-down` stops it (estimate: "
        "config/aws-prices.toml)"
    )


def _summary(result: DeployResult, config: DeployConfig, names: Names, progress: Progress) -> None:
    progress.step("Done")
    progress.detail(f"endpoint:   {names.endpoint} ({result.actions.get('endpoint')})")
    progress.detail(f"cost:       {_cost_line(config)}")
    progress.detail(f"invoke URL: {result.invoke_url}/predict")
    progress.detail(f"health:     {result.invoke_url}/health")
    progress.detail(f"dashboard:  {result.dashboard_url}")
    if result.key_id:
        where = result.key_file or "shown above"
        progress.detail(f"API key id: {result.key_id} (value: {where})")
    key_ref = f"$(cat {result.key_file})" if result.key_file else "<your key>"
    progress.detail(
        f'try it:     curl -H "x-api-key: {key_ref}" -H "Content-Type: application/json" '
        f"-d @record.json {result.invoke_url}/predict   (record.json: see docs/deploy.md)"
    )
