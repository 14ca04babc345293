"""The deploy command against moto: every resource exists with the configured settings.

moto gaps filled in the test setup (tests/cloud/moto_shims.py): UpdateEndpoint is added, and the
model.tar.gz a training job would write is put in S3 after CreateTrainingJob.
"""

from __future__ import annotations

import json
import stat
from typing import Any

import pytest
from cloud_stack import Stack
from secret_checks import assert_absent, assert_same_secret

from pipeline.cloud.errors import CloudError, EndpointUpdateFailed, TrainingJobFailed

ACCOUNT = "123456789012"
ENDPOINT_ARN = f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:endpoint/adult-income"


@pytest.fixture
def stack(aws, tmp_path) -> Stack:
    return Stack(tmp_path)


def _statements(document: Any) -> list[dict[str, Any]]:
    statements = document["Statement"]
    return statements if isinstance(statements, list) else [statements]


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_deploy_creates_every_resource_with_the_configured_settings(stack: Stack, capsys) -> None:
    result = stack.deploy()
    out = stack.output.getvalue()

    # --- image: exact docker commands, password only on stdin ------------------------------
    repo = stack.client("ecr").describe_repositories(repositoryNames=["adult-income"])["repositories"][0]
    image = result.image_uri
    assert image.startswith(repo["repositoryUri"] + ":src-")
    registry = repo["repositoryUri"].split("/")[0]
    assert stack.runner.commands == [
        ["docker", "build", "--platform", "linux/amd64", "-f", "container/Dockerfile", "-t", image, "."],
        ["docker", "login", "--username", "AWS", "--password-stdin", registry],
        ["docker", "push", image],
    ]
    password = (stack.runner.stdins[1] or b"").decode()
    assert password  # docker login reads the registry password from stdin ...
    assert_absent(password, json.dumps(stack.runner.commands), out)  # ... never from argv or the output
    assert repo["imageTagMutability"] == "IMMUTABLE"

    # --- S3 and training ---------------------------------------------------------------------
    s3 = stack.client("s3")
    bucket = f"adult-income-{ACCOUNT}-us-east-1"
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert any(
        k.startswith("adult-income/training-data/") and k.endswith("/train/adult.data.gz") for k in keys
    )
    assert any(k.endswith("/test/adult.test.gz") for k in keys)
    block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    assert all(block.values())
    sm = stack.client("sagemaker")
    job = sm.describe_training_job(TrainingJobName=result.training_job)
    assert job["AlgorithmSpecification"]["TrainingImage"] == image
    assert job["RoleArn"] == f"arn:aws:iam::{ACCOUNT}:role/adult-income-sagemaker-execution"
    channels = {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"] for c in job["InputDataConfig"]}
    assert set(channels) == {"train", "test"}
    assert channels["train"].startswith(f"s3://{bucket}/adult-income/training-data/")
    assert job["OutputDataConfig"]["S3OutputPath"] == f"s3://{bucket}/adult-income/training-output/"
    assert job["ResourceConfig"]["InstanceType"] == "ml.m5.large"
    assert job["StoppingCondition"]["MaxRuntimeInSeconds"] == 3600
    assert (
        result.model_data
        == f"s3://{bucket}/adult-income/training-output/{result.training_job}/output/model.tar.gz"
    )

    # --- model, endpoint config, endpoint ----------------------------------------------------
    endpoint = sm.describe_endpoint(EndpointName="adult-income")
    assert endpoint["EndpointStatus"] == "InService"
    config = sm.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    [variant] = config["ProductionVariants"]
    assert variant["InstanceType"] == "ml.m5.large" and variant["InitialInstanceCount"] == 1
    model = sm.describe_model(ModelName=variant["ModelName"])
    assert model["PrimaryContainer"]["Image"] == image
    assert model["PrimaryContainer"]["ModelDataUrl"] == result.model_data
    alarms = stack.client("cloudwatch").describe_alarms(AlarmNamePrefix="adult-income-")["MetricAlarms"]
    rollback = [a for a in alarms if not a["AlarmName"].startswith("adult-income-ops-")]
    assert {a["MetricName"] for a in rollback} == {"Invocation5XXErrors", "ModelLatency"}

    # --- autoscaling -------------------------------------------------------------------------
    aas = stack.client("application-autoscaling")
    [target] = aas.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"]
    assert target["ResourceId"] == "endpoint/adult-income/variant/AllTraffic"
    assert (target["MinCapacity"], target["MaxCapacity"]) == (1, 4)
    [policy] = aas.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"]
    tracking = policy["TargetTrackingScalingPolicyConfiguration"]
    assert policy["PolicyType"] == "TargetTrackingScaling"
    assert tracking["TargetValue"] == float(stack.config().endpoint.autoscaling_target_invocations)
    assert (
        tracking["PredefinedMetricSpecification"]["PredefinedMetricType"]
        == "SageMakerVariantInvocationsPerInstance"
    )

    # --- Lambda --------------------------------------------------------------------------------
    fn = stack.client("lambda").get_function(FunctionName="adult-income-proxy")["Configuration"]
    assert fn["Timeout"] == 28 and fn["MemorySize"] == 1024
    assert fn["Handler"] == "lambda_proxy.handler.handler"
    assert fn["Role"] == f"arn:aws:iam::{ACCOUNT}:role/adult-income-lambda-proxy"
    env = fn["Environment"]["Variables"]
    assert env["ENDPOINT_NAME"] == "adult-income"
    assert int(env["INVOKE_CONNECT_TIMEOUT_S"]) + int(env["INVOKE_READ_TIMEOUT_S"]) < 28
    [group] = stack.client("logs").describe_log_groups(logGroupNamePrefix="/aws/lambda/adult-income-proxy")[
        "logGroups"
    ]
    assert group["retentionInDays"] == 14

    # --- API Gateway -----------------------------------------------------------------------------
    apigw = stack.client("apigateway")
    resources = {r["path"]: r for r in apigw.get_resources(restApiId=result.api_id)["items"]}
    for path, method in (("/predict", "POST"), ("/health", "GET")):
        got = apigw.get_method(restApiId=result.api_id, resourceId=resources[path]["id"], httpMethod=method)
        assert got["apiKeyRequired"] is True
        assert got["methodIntegration"]["type"] == "AWS_PROXY"
        assert fn["FunctionArn"] in got["methodIntegration"]["uri"]
    stage = apigw.get_stage(restApiId=result.api_id, stageName="prod")
    assert stage["deploymentId"]
    [plan] = apigw.get_usage_plans()["items"]
    assert plan["apiStages"] == [{"apiId": result.api_id, "stage": "prod"}]
    assert plan["throttle"] == {"rateLimit": 50.0, "burstLimit": 100}
    assert plan["quota"]["limit"] == 100000 and plan["quota"]["period"] == "DAY"
    [plan_key] = apigw.get_usage_plan_keys(usagePlanId=plan["id"])["items"]
    assert plan_key["id"] == result.key_id and plan_key["type"] == "API_KEY"
    key = apigw.get_api_key(apiKey=result.key_id, includeValue=True)
    assert key["enabled"] is True
    statements = json.loads(stack.client("lambda").get_policy(FunctionName="adult-income-proxy")["Policy"])[
        "Statement"
    ]
    arns = sorted(s["Condition"]["ArnLike"]["AWS:SourceArn"] for s in statements)
    base = f"arn:aws:execute-api:us-east-1:{ACCOUNT}:{result.api_id}/prod"
    assert arns == [f"{base}/GET/health", f"{base}/POST/predict"]
    assert all(s["Principal"]["Service"] == "apigateway.amazonaws.com" for s in statements)
    assert result.invoke_url == f"https://{result.api_id}.execute-api.us-east-1.amazonaws.com/prod"

    # --- the key value: in a 0600 file only, never in the output -------------------------------
    assert result.key_file is not None
    assert_same_secret(result.key_file.read_text().strip(), key["value"])
    assert stat.S_IMODE(result.key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(result.key_file.parent.stat().st_mode) == 0o700
    captured = capsys.readouterr()
    assert_absent(key["value"], out, captured.out, captured.err)
    assert f"{result.invoke_url}/predict" in out and result.key_id in out


def test_iam_policies_are_least_privilege(stack: Stack) -> None:
    stack.deploy()
    iam = stack.client("iam")
    lambda_doc = iam.get_role_policy(RoleName="adult-income-lambda-proxy", PolicyName="least-privilege")[
        "PolicyDocument"
    ]
    by_action = {tuple(_as_list(s["Action"])): s for s in _statements(lambda_doc)}
    assert set(by_action) == {("sagemaker:InvokeEndpoint",), ("logs:CreateLogStream", "logs:PutLogEvents")}
    assert by_action[("sagemaker:InvokeEndpoint",)]["Resource"] == ENDPOINT_ARN
    assert by_action[("logs:CreateLogStream", "logs:PutLogEvents")]["Resource"] == (
        f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:/aws/lambda/adult-income-proxy:*"
    )
    assert iam.list_attached_role_policies(RoleName="adult-income-lambda-proxy")["AttachedPolicies"] == []

    sm_doc = iam.get_role_policy(RoleName="adult-income-sagemaker-execution", PolicyName="least-privilege")[
        "PolicyDocument"
    ]
    bucket = f"adult-income-{ACCOUNT}-us-east-1"
    for statement in _statements(sm_doc):
        actions = _as_list(statement["Action"])
        assert statement["Effect"] == "Allow"
        assert all("*" not in action for action in actions), actions  # no wildcard actions
        for resource in _as_list(statement["Resource"]):
            if resource == "*":
                # these actions support no resource scoping
                assert actions in (["ecr:GetAuthorizationToken"], ["cloudwatch:PutMetricData"])
            elif resource.startswith("arn:aws:s3"):
                assert resource in (f"arn:aws:s3:::{bucket}/adult-income/*", f"arn:aws:s3:::{bucket}")
            elif resource.startswith("arn:aws:ecr"):
                assert resource == f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/adult-income"
            else:
                assert resource.startswith(f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:/aws/sagemaker/")
        if "s3:ListBucket" in actions:
            assert statement["Condition"] == {"StringLike": {"s3:prefix": ["adult-income/*"]}}
    trust = iam.get_role(RoleName="adult-income-sagemaker-execution")["Role"]["AssumeRolePolicyDocument"]
    assert _statements(trust)[0]["Principal"] == {"Service": "sagemaker.amazonaws.com"}


def test_second_deploy_changes_nothing(stack: Stack) -> None:
    first = stack.deploy()
    mark = len(stack.calls)
    second = stack.deploy()
    assert stack.mutating_calls(mark) == []  # not one create/update/put/delete call
    assert len(stack.runner.commands) == 3  # no second build or push
    assert second.training_job == first.training_job and second.model_data == first.model_data
    assert second.api_id == first.api_id and second.usage_plan_id == first.usage_plan_id
    assert second.key_id is None  # the plan already has a key; no new one
    assert second.actions == {
        "endpoint": "unchanged",
        "autoscaling": "unchanged",
        "lambda": "unchanged",
        "stage": "unchanged",
        "dashboard": "unchanged",
    }
    assert len(stack.client("sagemaker").list_training_jobs()["TrainingJobSummaries"]) == 1


def test_changed_settings_update_in_place_with_blue_green(stack: Stack, aws) -> None:
    first = stack.deploy()
    sm = stack.client("sagemaker")
    old_config = sm.describe_endpoint(EndpointName="adult-income")["EndpointConfigName"]
    config = stack.config(
        endpoint__instance_type="ml.c5.large",
        lambda__timeout_seconds="20",
        lambda__memory_mb="1024",
        api__throttle_rate="10",
        api__quota_limit="500",
    )
    mark = len(stack.calls)
    second = stack.deploy(config)
    endpoint = sm.describe_endpoint(EndpointName="adult-income")
    assert endpoint["EndpointConfigName"] != old_config
    [update] = aws.update_calls
    assert update["EndpointConfigName"] == endpoint["EndpointConfigName"]
    assert update["RetainAllVariantProperties"] is True
    blue_green = update["DeploymentConfig"]["BlueGreenUpdatePolicy"]
    assert blue_green["TrafficRoutingConfiguration"]["Type"] == "ALL_AT_ONCE"
    assert blue_green["TerminationWaitInSeconds"] == 300
    rollback = update["DeploymentConfig"]["AutoRollbackConfiguration"]["Alarms"]
    assert {a["AlarmName"] for a in rollback} == {"adult-income-invocation-5xx", "adult-income-model-latency"}
    # Instance type changed: autoscaling was deregistered before the update and registered again after.
    ops = [op for _, op in stack.calls[mark:]]
    assert (
        ops.index("DeregisterScalableTarget")
        < ops.index("UpdateEndpoint")
        < ops.index("RegisterScalableTarget")
    )
    assert second.actions["endpoint"] == "updated"
    assert second.api_id == first.api_id and second.training_job == first.training_job  # nothing else rebuilt
    fn = stack.client("lambda").get_function(FunctionName="adult-income-proxy")["Configuration"]
    assert (fn["Timeout"], fn["MemorySize"]) == (20, 1024)
    assert int(fn["Environment"]["Variables"]["INVOKE_READ_TIMEOUT_S"]) == 16
    [plan] = stack.client("apigateway").get_usage_plans()["items"]
    assert plan["throttle"]["rateLimit"] == 10.0 and plan["quota"]["limit"] == 500
    aas = stack.client("application-autoscaling")
    [target] = aas.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"]
    assert (target["MinCapacity"], target["MaxCapacity"]) == (1, 4)
    assert len(aas.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"]) == 1


def test_new_image_updates_the_model_without_touching_autoscaling(stack: Stack, aws, tmp_path) -> None:
    stack.deploy()
    repo_uri = stack.client("ecr").describe_repositories()["repositories"][0]["repositoryUri"]
    mark = len(stack.calls)
    stack.deploy(image_uri=f"{repo_uri}:v2")
    [update] = aws.update_calls
    ops = [op for _, op in stack.calls[mark:]]
    assert "DeregisterScalableTarget" not in ops  # a model change is allowed under autoscaling
    assert "CreateTrainingJob" in ops  # a new image means a new training run
    model = stack.client("sagemaker").describe_model(
        ModelName=stack.client("sagemaker").describe_endpoint_config(
            EndpointConfigName=update["EndpointConfigName"]
        )["ProductionVariants"][0]["ModelName"]
    )
    assert model["PrimaryContainer"]["Image"] == f"{repo_uri}:v2"


def test_rolled_back_update_is_reported(stack: Stack, aws) -> None:
    stack.deploy()
    aws.rollback_reason = "Alarm adult-income-invocation-5xx fired during baking"
    with pytest.raises(EndpointUpdateFailed, match=r"rolled back.*invocation-5xx"):
        stack.deploy(stack.config(endpoint__initial_instance_count="2"))


def test_serverless_mode(stack: Stack, aws) -> None:
    config = stack.config(endpoint__mode="serverless", endpoint__serverless_memory_mb="3072")
    stack.deploy(config)
    sm = stack.client("sagemaker")
    endpoint = sm.describe_endpoint(EndpointName="adult-income")
    [variant] = sm.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])[
        "ProductionVariants"
    ]
    assert variant["ServerlessConfig"] == {"MemorySizeInMB": 3072, "MaxConcurrency": 5}
    assert "InstanceType" not in variant
    model = sm.describe_model(ModelName=variant["ModelName"])
    assert model["PrimaryContainer"]["Environment"] == {"SAGEMAKER_MODEL_SERVER_WORKERS": "1"}
    aas = stack.client("application-autoscaling")
    assert aas.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"] == []
    env = stack.client("lambda").get_function(FunctionName="adult-income-proxy")["Configuration"][
        "Environment"
    ]
    assert env["Variables"]["MAX_PAYLOAD_MB"] == "4"
    # a serverless update is blue/green too, without instance counts to retain
    stack.deploy(stack.config(endpoint__mode="serverless", endpoint__serverless_max_concurrency="10"))
    [update] = aws.update_calls
    assert update["RetainAllVariantProperties"] is None
    assert "BlueGreenUpdatePolicy" in update["DeploymentConfig"]


def test_switching_realtime_to_serverless_is_refused_with_a_clear_message(stack: Stack, aws) -> None:
    stack.deploy()
    with pytest.raises(CloudError, match=r"cannot switch it to serverless in place.*teardown"):
        stack.deploy(stack.config(endpoint__mode="serverless"))
    assert aws.update_calls == []


def test_dry_run_calls_nothing_and_creates_nothing(stack: Stack) -> None:
    stack.deploy(dry_run=True)
    assert stack.calls == []
    assert stack.runner.commands == []
    text = stack.output.getvalue()
    assert "no AWS calls" in text and "docker build --platform linux/amd64" in text
    assert "apiKeyRequired" not in text and "POST /predict and GET /health (API key required" in text
    assert stack.client("sagemaker").list_endpoints()["Endpoints"] == []
    assert stack.client("lambda").list_functions()["Functions"] == []
    assert stack.client("apigateway").get_rest_apis()["items"] == []
    assert stack.client("s3").list_buckets()["Buckets"] == []


def test_failed_training_job_reports_the_failure_reason(stack: Stack, aws) -> None:
    reason = "AlgorithmError: training channel 'train' is empty: no CSV files in /opt/ml/input/data/train"
    aws.training_failure = reason
    with pytest.raises(TrainingJobFailed) as failed:
        stack.deploy()
    assert failed.value.reason == reason
    assert failed.value.status == "Failed"
    assert reason in str(failed.value)
    assert stack.client("sagemaker").list_models()["Models"] == []  # deploy stopped at the failure
    assert "Failed" in stack.output.getvalue()


def test_training_job_is_rerun_when_data_changes_and_reused_otherwise(stack: Stack, tmp_path) -> None:
    first = stack.deploy()
    other = tmp_path / "adult-small.csv"
    other.write_text("age,workclass\n39,State-gov\n")
    second = stack.deploy(stack.config(training__train_data=str(other)))
    assert second.training_job != first.training_job
    third = stack.deploy(stack.config(training__train_data=str(other)))
    assert third.training_job == second.training_job


def test_model_data_outside_the_project_prefix_is_refused(stack: Stack) -> None:
    with pytest.raises(
        CloudError, match=r"must be under s3://adult-income-123456789012-us-east-1/adult-income/"
    ):
        stack.deploy(model_data="s3://someone-else/model.tar.gz")


def test_missing_training_file_is_a_clear_error(stack: Stack, tmp_path) -> None:
    with pytest.raises(CloudError, match=r"training.train_data .*nope.csv does not exist"):
        stack.deploy(stack.config(training__train_data=str(tmp_path / "nope.csv")))
