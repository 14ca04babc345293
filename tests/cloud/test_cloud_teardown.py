"""Teardown against moto: after deploy, nothing of the project is left; cancelling deletes nothing."""

from __future__ import annotations

import pytest
from cloud_stack import Stack
from stack_snapshot import leftovers

from pipeline.cloud.progress import Progress
from pipeline.cloud.teardown import inventory, teardown

ACCOUNT = "123456789012"
BUCKET = f"adult-income-{ACCOUNT}-us-east-1"


@pytest.fixture
def stack(aws, tmp_path) -> Stack:
    return Stack(tmp_path)


def _run(stack: Stack, config=None, answer: bool = True):
    asked: list[int] = []

    def confirm(found):
        asked.append(len(found))
        return answer

    result = teardown(
        config or stack.config(),
        stack.clients,
        Progress(stack.output),
        confirm,
        poll_s=0,
        sleep=lambda s: None,
    )
    assert result.failures == []
    return result.left, asked


def assert_nothing_left(stack: Stack) -> None:
    iam = stack.client("iam")
    assert [
        r["RoleName"] for r in iam.list_roles()["Roles"] if r["RoleName"].startswith("adult-income")
    ] == []
    assert stack.client("ecr").describe_repositories()["repositories"] == []
    assert stack.client("s3").list_buckets()["Buckets"] == []
    sm = stack.client("sagemaker")
    assert sm.list_endpoints()["Endpoints"] == []
    assert sm.list_endpoint_configs()["EndpointConfigs"] == []
    assert sm.list_models()["Models"] == []
    assert stack.client("cloudwatch").describe_alarms()["MetricAlarms"] == []
    aas = stack.client("application-autoscaling")
    assert aas.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"] == []
    assert aas.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"] == []
    assert stack.client("lambda").list_functions()["Functions"] == []
    assert stack.client("logs").describe_log_groups()["logGroups"] == []
    apigw = stack.client("apigateway")
    assert apigw.get_rest_apis()["items"] == []
    assert apigw.get_usage_plans()["items"] == []
    assert apigw.get_api_keys()["items"] == []
    # and the rest, in every service: object versions, the resource group, Lambda permissions (they
    # go with the function), running training jobs; only the account-wide training log group stays.
    assert leftovers(stack) == {}


def test_teardown_after_deploy_leaves_nothing(stack: Stack) -> None:
    stack.deploy()
    stack.deploy(stack.config(endpoint__initial_instance_count="2"))  # two configs and models now
    # Deploy creates the endpoint's log group before the endpoint, with a retention (else SageMaker
    # would create it at the first container start and keep the logs forever).
    [group] = stack.client("logs").describe_log_groups(logGroupNamePrefix="/aws/sagemaker/Endpoints/")[
        "logGroups"
    ]
    assert (group["logGroupName"], group["retentionInDays"]) == ("/aws/sagemaker/Endpoints/adult-income", 14)
    found = inventory(stack.config(), stack.clients)
    kinds = {kind for kind, _ in found}
    assert {
        "REST API",
        "usage plan",
        "API key",
        "Lambda function",
        "endpoint",
        "endpoint config",
        "model",
    } <= kinds
    assert {
        "scalable target",
        "scaling policy",
        "alarm",
        "ECR repository",
        "S3 bucket",
        "IAM role",
        "log group",
    } <= kinds
    left, asked = _run(stack)
    assert left == []
    assert asked == [len(found)]
    assert_nothing_left(stack)
    # a second teardown finds nothing and asks nothing
    left, asked = _run(stack)
    assert left == [] and asked == []
    assert "Nothing to tear down" in stack.output.getvalue()


def test_teardown_of_serverless_deploy(stack: Stack) -> None:
    stack.deploy(stack.config(endpoint__mode="serverless"))
    left, _ = _run(stack)
    assert left == []
    assert_nothing_left(stack)


def test_cancelled_teardown_deletes_nothing(stack: Stack) -> None:
    stack.deploy()
    before = inventory(stack.config(), stack.clients)
    mark = len(stack.calls)
    left, asked = _run(stack, answer=False)
    assert left == before and asked == [len(before)]
    assert stack.mutating_calls(mark) == []
    assert "cancelled" in stack.output.getvalue()


def test_a_bucket_deploy_did_not_create_is_emptied_of_our_prefix_only(stack: Stack) -> None:
    s3 = stack.client("s3")
    s3.create_bucket(Bucket="team-shared-bucket")
    s3.put_object(Bucket="team-shared-bucket", Key="other-team/data.csv", Body=b"keep me")
    config = stack.config(project__bucket="team-shared-bucket")
    stack.deploy(config)
    left, _ = _run(stack, config)
    assert left == []
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="team-shared-bucket")["Contents"]]
    assert keys == ["other-team/data.csv"]
