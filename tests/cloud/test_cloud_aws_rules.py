"""AWS rules that moto does not enforce, each checked on what deploy actually asks AWS for.

Each test names the rule and where AWS documents it; each failed on the code before the fix (the
issue's defect list: serverless network isolation, autoscaling lost on a failed update, log groups
without retention, ECR lifecycle expiring the live image, TLS-only bucket, partitions, deprecated
Lambda runtimes, unknown regions, errors naming their resource).
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
from cloud_stack import Stack

from pipeline.cloud import deployer_policy, ecr
from pipeline.cloud.config import ConfigError, load_config, validate
from pipeline.cloud.errors import EndpointUpdateFailed
from pipeline.cloud.names import names_for

ACCOUNT = "123456789012"
BUCKET = f"adult-income-{ACCOUNT}-us-east-1"


@pytest.fixture
def stack(aws, tmp_path) -> Stack:
    return Stack(tmp_path)


def _model_of_endpoint(stack: Stack) -> dict:
    sm = stack.client("sagemaker")
    endpoint = sm.describe_endpoint(EndpointName="adult-income")
    [variant] = sm.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])[
        "ProductionVariants"
    ]
    return sm.describe_model(ModelName=variant["ModelName"])


# --- SageMaker Serverless Inference feature exclusions ------------------------------------------


def test_serverless_model_is_created_without_network_isolation(stack: Stack) -> None:
    # "Feature exclusions" of Serverless Inference: network isolation is not supported; a serverless
    # endpoint on such a model fails to create.
    create_model_requests: list[dict] = []
    stack.session.events.register(
        "provide-client-params.sagemaker.CreateModel",
        lambda params, **_: create_model_requests.append(dict(params)),
    )
    stack.deploy(stack.config(endpoint__mode="serverless"))
    [request] = create_model_requests
    assert "EnableNetworkIsolation" not in request
    assert _model_of_endpoint(stack).get("EnableNetworkIsolation") in (None, False)


def test_realtime_model_keeps_network_isolation(stack: Stack) -> None:
    create_model_requests: list[dict] = []
    stack.session.events.register(
        "provide-client-params.sagemaker.CreateModel",
        lambda params, **_: create_model_requests.append(dict(params)),
    )
    stack.deploy()
    [request] = create_model_requests
    assert request["EnableNetworkIsolation"] is True


def test_serverless_with_an_accelerated_instance_is_refused_naming_the_rule() -> None:
    with pytest.raises(ConfigError, match=r"Serverless Inference runs on CPU only \(no GPUs\)"):
        load_config(overrides={"endpoint.mode": "serverless", "endpoint.instance_type": "ml.g5.xlarge"})


def test_serverless_endpoint_log_group_exists_with_retention_before_the_first_cold_start(
    stack: Stack,
) -> None:
    # A serverless endpoint creates /aws/sagemaker/Endpoints/<name> at its first cold start, without a
    # retention; deploy creates it first.
    stack.deploy(stack.config(endpoint__mode="serverless", project__log_retention_days="30"))
    groups = {
        g["logGroupName"]: g.get("retentionInDays")
        for g in stack.client("logs").describe_log_groups()["logGroups"]
    }
    assert groups["/aws/sagemaker/Endpoints/adult-income"] == 30
    assert groups["/aws/lambda/adult-income-proxy"] == 30


# --- Autoscaling around an instance-type change ----------------------------------------------------


def test_a_rolled_back_instance_type_change_leaves_autoscaling_registered(stack: Stack, aws) -> None:
    stack.deploy()
    aws.rollback_reason = "Alarm adult-income-model-latency fired during baking"
    with pytest.raises(EndpointUpdateFailed, match="rolled back"):
        stack.deploy(stack.config(endpoint__instance_type="ml.c5.large"))
    aas = stack.client("application-autoscaling")
    [target] = aas.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"]
    assert (target["MinCapacity"], target["MaxCapacity"]) == (1, 4)
    [policy] = aas.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"]
    assert policy["PolicyName"] == "adult-income-invocations-per-instance"
    assert "re-registered after" in stack.output.getvalue()


def test_an_update_that_raises_leaves_autoscaling_registered(stack: Stack, monkeypatch) -> None:
    from moto.sagemaker.responses import SageMakerResponse

    stack.deploy()

    def refuse(self):  # AWS refusing the update outright (e.g. a quota), after the deregistration
        from moto.sagemaker.exceptions import ValidationError

        raise ValidationError(message="The account-level service limit 'ml.c5.large for endpoint usage' is 0")

    monkeypatch.setattr(SageMakerResponse, "update_endpoint", refuse, raising=False)
    with pytest.raises(Exception, match="service limit"):
        stack.deploy(stack.config(endpoint__instance_type="ml.c5.large"))
    aas = stack.client("application-autoscaling")
    assert len(aas.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"]) == 1
    assert len(aas.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"]) == 1


# --- Logs, ECR, S3 ------------------------------------------------------------------------------


def test_shared_training_log_group_gets_a_retention_only_when_it_has_none(stack: Stack) -> None:
    logs = stack.client("logs")
    logs.create_log_group(logGroupName="/aws/sagemaker/TrainingJobs")
    stack.deploy()
    [group] = logs.describe_log_groups(logGroupNamePrefix="/aws/sagemaker/TrainingJobs")["logGroups"]
    assert group["retentionInDays"] == 14

    logs.put_retention_policy(logGroupName="/aws/sagemaker/TrainingJobs", retentionInDays=365)
    stack.deploy(stack.config(training__volume_size_gb="11"))  # a new training job
    [group] = logs.describe_log_groups(logGroupNamePrefix="/aws/sagemaker/TrainingJobs")["logGroups"]
    assert group["retentionInDays"] == 365  # another team's choice is never shortened


def test_ecr_lifecycle_never_expires_a_tagged_image(stack: Stack) -> None:
    stack.deploy()
    text = stack.client("ecr").get_lifecycle_policy(repositoryName="adult-income")["lifecyclePolicyText"]
    rules = json.loads(text)["rules"]
    assert rules and all(rule["selection"]["tagStatus"] == "untagged" for rule in rules)
    assert json.loads(ecr.lifecycle_policy()) == json.loads(text)


def test_bucket_refuses_plain_http_and_keeps_versions(stack: Stack) -> None:
    stack.deploy()
    s3 = stack.client("s3")
    policy = json.loads(s3.get_bucket_policy(Bucket=BUCKET)["Policy"])
    [deny] = [s for s in policy["Statement"] if s["Effect"] == "Deny"]
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert deny["Action"] == "s3:*" and deny["Principal"] == "*"
    assert set(deny["Resource"]) == {f"arn:aws:s3:::{BUCKET}", f"arn:aws:s3:::{BUCKET}/*"}
    assert s3.get_bucket_versioning(Bucket=BUCKET)["Status"] == "Enabled"
    [rule] = s3.get_bucket_lifecycle_configuration(Bucket=BUCKET)["Rules"]
    assert rule["NoncurrentVersionExpiration"]["NoncurrentDays"] == 30


def test_a_bucket_the_user_named_is_left_as_it_is(stack: Stack) -> None:
    s3 = stack.client("s3")
    s3.create_bucket(Bucket="team-shared-bucket")
    stack.deploy(stack.config(project__bucket="team-shared-bucket"))
    with pytest.raises(s3.exceptions.ClientError, match="NoSuchBucketPolicy"):
        s3.get_bucket_policy(Bucket="team-shared-bucket")
    assert "Status" not in s3.get_bucket_versioning(Bucket="team-shared-bucket")


def test_execution_role_may_publish_instance_metrics(stack: Stack) -> None:
    stack.deploy()
    document = stack.client("iam").get_role_policy(
        RoleName="adult-income-sagemaker-execution", PolicyName="least-privilege"
    )["PolicyDocument"]
    actions = {
        a
        for s in document["Statement"]
        for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    }
    assert "cloudwatch:PutMetricData" in actions


# --- Partitions, regions, runtimes ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("region", "partition", "host"),
    [
        ("us-east-1", "aws", "execute-api.us-east-1.amazonaws.com"),
        ("cn-north-1", "aws-cn", "execute-api.cn-north-1.amazonaws.com.cn"),
        ("us-gov-west-1", "aws-us-gov", "execute-api.us-gov-west-1.amazonaws.com"),
    ],
)
def test_arns_and_hosts_follow_the_regions_partition(region: str, partition: str, host: str) -> None:
    names = names_for(load_config(overrides={"project.region": region}), ACCOUNT)
    assert names.partition == partition
    assert names.endpoint_arn == f"arn:{partition}:sagemaker:{region}:{ACCOUNT}:endpoint/adult-income"
    assert names.role_arn("r") == f"arn:{partition}:iam::{ACCOUNT}:role/r"
    assert names.invoke_url("abc123") == f"https://abc123.{host}/prod"
    policy = json.dumps(deployer_policy.render(names))
    assert "${" not in policy
    other = {"aws", "aws-cn", "aws-us-gov"} - {partition}
    assert all(f"arn:{p}:" not in policy for p in other)


def test_roles_and_lambda_permissions_use_the_partition(aws, tmp_path) -> None:
    from pipeline.cloud import apigateway, iam

    names = names_for(load_config(overrides={"project.region": "cn-north-1"}), ACCOUNT)
    for document in (iam.sagemaker_policy(names), iam.lambda_policy(names)):
        text = json.dumps(document)
        assert "arn:aws:" not in text and "arn:aws-cn:" in text
    assert apigateway.source_arn(names, "abc", "POST", "predict").startswith("arn:aws-cn:execute-api:")
    assert apigateway.integration_uri(names, names.function_arn).startswith("arn:aws-cn:apigateway:")


def test_an_unknown_region_is_refused_before_any_call() -> None:
    with pytest.raises(ConfigError, match="not a region where SageMaker is offered"):
        load_config(overrides={"project.region": "us-west-9"})


def test_deprecated_lambda_runtimes_are_refused_with_their_date() -> None:
    config = load_config(overrides={"lambda.runtime": "python3.11"})
    assert validate(config, today=dt.date(2026, 12, 3)) == []
    [problem] = validate(config, today=dt.date(2027, 7, 1))
    assert "deprecated by Lambda on 2027-06-30" in problem
    with pytest.raises(ConfigError, match=r"python3\.9.*not a Lambda Python runtime deploy supports"):
        load_config(overrides={"lambda.runtime": "python3.9"})


# --- AWS errors name the resource ------------------------------------------------------------------


def test_an_aws_error_surfaces_with_code_message_and_resource(aws) -> None:
    from pipeline.cloud.clients import Clients
    from pipeline.cloud.errors import describe_failure

    clients = Clients("us-east-1")
    with pytest.raises(Exception) as failed:
        clients.sagemaker.describe_model(ModelName="adult-income-model-missing")
    assert describe_failure(failed.value) == (
        "AWS DescribeModel failed: ValidationException: Could not find model "
        f"'arn:aws:sagemaker:us-east-1:{ACCOUNT}:model/adult-income-model-missing'. "
        "[ModelName=adult-income-model-missing]"
    )
    with pytest.raises(Exception) as failed:
        clients.lambda_.get_function(FunctionName="adult-income-proxy")
    assert describe_failure(failed.value).endswith("[FunctionName=adult-income-proxy]")


def test_the_cli_prints_aws_errors_without_a_traceback(aws, capsys, monkeypatch) -> None:
    from botocore.exceptions import ClientError

    from pipeline.cli import main

    def refuse(apigateway, name):
        raise ClientError(
            {
                "Error": {
                    "Code": "AccessDeniedException",
                    "Message": "not authorized to perform apigateway:GET",
                },
                "ResourceInvolved": "usagePlanId=abc123",
            },
            "GetUsagePlans",
        )

    monkeypatch.setattr("pipeline.cloud.apigateway.find_usage_plan", refuse)
    assert main(["keys", "list"]) == 1
    err = capsys.readouterr().err
    assert err == (
        "error: AWS GetUsagePlans failed: AccessDeniedException: not authorized to perform apigateway:GET "
        "[usagePlanId=abc123]\n"
    )


# --- The project's resource group ----------------------------------------------------------------


def test_deploy_creates_a_tag_query_group_and_status_names_its_members(stack: Stack) -> None:
    from pipeline.cloud.status import gather, render

    stack.deploy()
    groups = stack.client("resource-groups")
    query = groups.get_group_query(GroupName="adult-income")["GroupQuery"]["ResourceQuery"]
    assert query["Type"] == "TAG_FILTERS_1_0"
    assert json.loads(query["Query"])["TagFilters"] == [{"Key": "project", "Values": ["adult-income"]}]

    # Something tagged as ours that deploy did not create is flagged, by ARN.
    stack.client("logs").create_log_group(logGroupName="/someone/else", tags={"project": "adult-income"})
    report = gather(stack.config(), stack.clients)
    # moto 5.2.5's tagging API returns endpoint-config ARNs as the text of a Python tuple, "('arn:...',)";
    # AWS returns the ARN itself. Those rows are moto's, not ours, and are set aside here.
    report["resource_group"]["unknown"] = [a for a in report["resource_group"]["unknown"] if a[0] != "("]
    kinds = {m["kind"] for m in report["resource_group"]["members"]}
    # (moto's tagging API leaves out some types, e.g. endpoint configs; AWS lists them too)
    assert {"endpoint", "model", "log group", "S3 bucket", "alarm"} <= kinds
    unknown = f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:/someone/else"
    assert report["resource_group"]["unknown"] == [unknown]
    text = "\n".join(render(report))
    assert f"tagged project=adult-income but not created by deploy: {unknown}" in text
    [row] = [line for line in text.splitlines() if line.strip().startswith("resource group")]
    assert row.split(None, 2)[2].startswith("adult-income: ") and "1 endpoint" in row


def test_a_second_deploy_leaves_the_group_alone(stack: Stack) -> None:
    stack.deploy()
    mark = len(stack.calls)
    stack.deploy()
    assert [c for c in stack.mutating_calls(mark) if c[0] == "resource-groups"] == []


def test_objects_s3_refuses_to_delete_are_reported_not_ignored(stack: Stack, monkeypatch) -> None:
    from pipeline.cloud import s3 as s3_module
    from pipeline.cloud.errors import CloudError

    stack.deploy()
    client = stack.clients.s3
    real = client.delete_objects

    def refuse_one(**kwargs):
        answer = real(**kwargs)
        first = kwargs["Delete"]["Objects"][0]["Key"]
        return {**answer, "Errors": [{"Key": first, "Code": "AccessDenied", "Message": "Access Denied"}]}

    monkeypatch.setattr(client, "delete_objects", refuse_one)
    with pytest.raises(
        CloudError, match=r"S3 refused to delete 1 object\(s\) in .*AccessDenied: Access Denied"
    ):
        s3_module.delete_prefix(client, BUCKET, "adult-income/")
