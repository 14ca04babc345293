"""IAM, enforced and checked: the deployer policy and the two execution roles hold what the code needs.

1. The whole lifecycle (preflight → deploy → status → keys create/list/revoke → re-deploy with an
   UpdateEndpoint and with an instance-type change → teardown; and serverless deploy → teardown) runs
   as an IAM user holding only the deployer policy, with moto enforcing IAM (iam_enforcement.py says
   what moto can and cannot check). Dropping one action from the policy makes the run fail with
   AccessDenied naming it.
2. Every call recorded in those runs is mapped to the IAM actions and resources it needs
   (iam_actions.py, including the implicit ones) and evaluated against the real, rendered,
   resource-scoped policy with its conditions (iam_evaluator.py).
3. What SageMaker and Lambda do with the execution roles (documented lists, from what deploy asked of
   them) is evaluated against the roles' inline policies; the trust policies pin the account.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from iam_actions import Need, docker_needs, iam_action, lambda_role_needs, needs, sagemaker_role_needs
from iam_enforcement import enforced
from iam_evaluator import ALLOWED, condition_holds, evaluate
from iam_lifecycle import (
    ACCOUNT,
    Run,
    enforced_stack,
    moto_environment,
    realtime_lifecycle,
    serverless_lifecycle,
)

from pipeline.cloud import deployer_policy
from pipeline.cloud.config import load_config
from pipeline.cloud.names import names_for

# Actions the policy holds that no call of the recorded runs needs, and why each stays (for now).
UNTESTED_PATH = "called by pipeline/cloud on a path the moto runs do not take"
BATCH = "called by `python -m pipeline batch s3://...` (pipeline/batch/transform_job.py), not in the runs"
EVIDENCE = "called by pipeline/cloud/evidence.py (`make aws-evidence`), which the enforced runs do not run"
NOT_EXERCISED = {
    "iam:UpdateAssumeRolePolicy": UNTESTED_PATH + " (trust policy of an existing role changed)",
    "iam:DetachRolePolicy": UNTESTED_PATH + " (someone attached a managed policy to a project role)",
    "lambda:RemovePermission": UNTESTED_PATH + " (stale invoke permission after the API id changed)",
    "lambda:UpdateFunctionCode": UNTESTED_PATH + " (proxy code changed)",
    "lambda:UpdateFunctionConfiguration": UNTESTED_PATH + " (a Lambda setting changed)",
    "resource-groups:UpdateGroupQuery": UNTESTED_PATH + " (the group's query changed)",
    "sagemaker:StopTrainingJob": UNTESTED_PATH + " (teardown while a job runs; moto's jobs end at once)",
    "sagemaker:CreateTransformJob": BATCH,
    "sagemaker:DescribeTransformJob": BATCH,
    "sagemaker:StopTransformJob": UNTESTED_PATH + " (teardown while a batch job runs)",
    "cloudwatch:GetMetricStatistics": EVIDENCE,
    "logs:FilterLogEvents": EVIDENCE,
    "logs:TagLogGroup": "older name of logs:TagResource for tagging a log group on creation; kept so a "
    "deploy cannot fail on whichever of the two CloudWatch Logs checks (unverified which)",
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    """Both enforced lifecycles, once for the module (they are what every test below inspects).

    moto is stopped before the tests run: each test that needs moto starts its own.
    """
    with moto_environment() as mp:
        realtime = realtime_lifecycle(tmp_path_factory.mktemp("realtime"), mp)
    with moto_environment() as mp:
        serverless = serverless_lifecycle(tmp_path_factory.mktemp("serverless"), mp)
    return {"realtime": realtime, "serverless": serverless}


def rendered_policy() -> dict[str, Any]:
    return deployer_policy.render(names_for(load_config(), ACCOUNT))


# --- 1. enforced ------------------------------------------------------------------------------


def test_the_whole_lifecycle_runs_with_only_the_deployer_policy(runs: dict[str, Run]) -> None:
    realtime, serverless = runs["realtime"], runs["serverless"]
    assert realtime.log == ["preflight", "deploy", "status", "keys", "re-deploy", "teardown"]
    assert serverless.log == ["preflight", "deploy", "teardown"]
    assert realtime.created["update actions"]["endpoint"] == "updated"
    assert realtime.created["instance change actions"]["endpoint"] == "updated"
    operations = {(c.service, c.operation) for c in realtime.calls}
    for expected in (
        ("sagemaker", "UpdateEndpoint"),
        ("application-autoscaling", "DeregisterScalableTarget"),
        ("iam", "SimulatePrincipalPolicy"),
        ("apigateway", "DeleteApiKey"),
        ("s3", "DeleteObjects"),
    ):
        assert expected in operations
    assert [name for name in json.loads(realtime.created["keys listed"]) if name["name"].endswith("alice")]
    assert serverless.created["endpoint"]["ProductionVariants"][0].get("CurrentServerlessConfig")


def test_enforcement_is_on_for_the_deployer(tmp_path: Path) -> None:
    with moto_environment():
        stack, _ = enforced_stack(tmp_path, load_config())
        with enforced(), pytest.raises(ClientError, match=r"not authorized to perform: iam:CreateUser"):
            stack.session.client("iam").create_user(UserName="intruder")


@pytest.mark.parametrize(
    ("statement", "action", "operation"),
    [
        ("ProjectFunction", "lambda:AddPermission", "AddPermission"),
        ("ProjectEndpointConfigs", "sagemaker:CreateEndpointConfig", "CreateEndpointConfig"),
        ("EndpointAutoscaling", "application-autoscaling:RegisterScalableTarget", "RegisterScalableTarget"),
        ("RestApi", "apigateway:PUT", "PutMethod"),
        ("ProjectAlarms", "cloudwatch:PutMetricAlarm", "PutMetricAlarm"),
    ],
)
def test_a_missing_action_fails_the_deploy_with_access_denied_naming_it(
    tmp_path: Path, statement: str, action: str, operation: str
) -> None:
    policy = rendered_policy()
    for s in policy["Statement"]:
        if s["Sid"] == statement:
            s["Action"] = [
                a for a in deployer_policy.statements({"Statement": [s]})[0]["Action"] if a != action
            ]
    assert action not in deployer_policy.actions(policy)
    moto_name = action.replace("cloudwatch:", "monitoring:").replace("apigateway:PUT", "apigateway:PutMethod")
    with moto_environment():
        stack, _ = enforced_stack(tmp_path, load_config(), policy)
        with enforced(), pytest.raises(ClientError) as denied:
            stack.deploy(load_config())
    assert denied.value.operation_name == operation
    assert f"is not authorized to perform: {moto_name}" in str(denied.value)


# --- 2. static: every recorded call against the real policy ----------------------------------


def all_needs(run: Run) -> list[tuple[str, Need]]:
    found = [(f"{c.service}.{c.operation}", n) for c in run.calls for n in needs(c, run.names)]
    found += [("docker push", n) for n in docker_needs(run.docker, run.names)]
    return found


def test_every_recorded_call_is_allowed_by_the_rendered_deployer_policy(runs: dict[str, Run]) -> None:
    policy = [rendered_policy()]
    denied = sorted(
        {
            f"{call} -> {n.action} on {n.resource} {n.context_dict() or ''} ({n.why})"
            for run in runs.values()
            for call, n in all_needs(run)
            if evaluate(policy, n.action, n.resource, n.context_dict()) != ALLOWED
        }
    )
    assert denied == [], "the deployer policy does not allow:\n" + "\n".join(denied)


def test_the_static_check_catches_a_missing_implicit_action(runs: dict[str, Run]) -> None:
    # iam:PassRole and the autoscaling service-linked role are never checked by moto; the static check
    # must catch them, with the condition context the call implies.
    policy = rendered_policy()
    policy["Statement"] = [s for s in policy["Statement"] if s["Sid"] != "PassProjectRolesToTheirServices"]
    denied = {
        (n.action, n.why)
        for _, n in all_needs(runs["realtime"])
        if evaluate([policy], n.action, n.resource, n.context_dict()) != ALLOWED
    }
    assert denied == {("iam:PassRole", "role passed")}
    wrong_service = Need(
        "iam:PassRole",
        f"arn:aws:iam::{ACCOUNT}:role/adult-income-lambda-proxy",
        (("iam:PassedToService", ("ec2.amazonaws.com",)),),
    )
    assert (
        evaluate(
            [rendered_policy()], wrong_service.action, wrong_service.resource, wrong_service.context_dict()
        )
        != ALLOWED
    )


def test_renamed_and_implicit_actions_are_mapped(runs: dict[str, Run]) -> None:
    assert iam_action("s3", "HeadObject") == "s3:GetObject"
    assert iam_action("s3", "PutPublicAccessBlock") == "s3:PutBucketPublicAccessBlock"
    assert iam_action("apigateway", "UpdateUsagePlan") == "apigateway:PATCH"
    assert iam_action("resourcegroupstaggingapi", "GetResources") == "tag:GetResources"
    implicit = {(n.action, n.why) for _, n in all_needs(runs["realtime"]) if n.why != "the call"}
    for expected in (
        ("iam:PassRole", "role passed"),
        ("iam:CreateServiceLinkedRole", "autoscaling service-linked role"),
        ("sagemaker:UpdateEndpointWeightsAndCapacities", "Application Auto Scaling, as the caller"),
        ("cloudwatch:PutMetricAlarm", "target-tracking alarms"),
        ("ecr:PutImage", "docker push"),
        ("s3:DeleteObjectVersion", "DeleteObjects with VersionId"),
        ("iam:TagRole", "tags on create"),
    ):
        assert expected in implicit


def test_policy_actions_no_recorded_call_needs_are_documented(runs: dict[str, Run]) -> None:
    needed = {n.action.lower() for run in runs.values() for _, n in all_needs(run)}
    unused = [a for a in deployer_policy.actions(rendered_policy()) if a.lower() not in needed]
    print("deployer actions not needed by the recorded runs:")
    for action in unused:
        print(f"  {action}: {NOT_EXERCISED.get(action, 'UNDOCUMENTED')}")
    assert [a for a in unused if a not in NOT_EXERCISED] == []
    assert sorted(set(NOT_EXERCISED) - set(unused)) == []  # no stale entries


# --- 3. execution roles ------------------------------------------------------------------------


def _as_document(document: Any) -> dict[str, Any]:
    return json.loads(document) if isinstance(document, str) else document


@pytest.mark.parametrize("mode", ["realtime", "serverless"])
def test_the_sagemaker_role_allows_what_sagemaker_does_for_the_stack(runs: dict[str, Run], mode: str) -> None:
    run = runs[mode]
    role = run.created[run.names.sagemaker_role]
    wanted = sagemaker_role_needs(
        run.created["training_job"], run.created["model"], run.names.endpoint, run.names
    )
    assert {n.action for n in wanted} >= {
        "s3:GetObject",
        "s3:PutObject",
        "ecr:BatchGetImage",
        "cloudwatch:PutMetricData",
    }
    policy = [_as_document(role["policy"])]
    denied = [
        f"{n.action} on {n.resource} ({n.why})"
        for n in wanted
        if evaluate(policy, n.action, n.resource, n.context_dict()) != ALLOWED
    ]
    assert denied == []


def test_the_lambda_role_allows_invoking_the_endpoint_and_writing_its_logs(runs: dict[str, Run]) -> None:
    run = runs["realtime"]
    policy = [_as_document(run.created[run.names.lambda_role]["policy"])]
    wanted = lambda_role_needs(run.created["function"], run.names)
    denied = [n for n in wanted if evaluate(policy, n.action, n.resource) != ALLOWED]
    assert denied == []
    # and nothing beyond: another endpoint, another function's logs
    other = f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:endpoint/someone-else"
    assert evaluate(policy, "sagemaker:InvokeEndpoint", other) != ALLOWED
    other_logs = f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:/aws/lambda/other:log-stream:x"
    assert evaluate(policy, "logs:PutLogEvents", other_logs) != ALLOWED


def test_the_sagemaker_role_refuses_objects_outside_the_project_prefix(runs: dict[str, Run]) -> None:
    run = runs["realtime"]
    policy = [_as_document(run.created[run.names.sagemaker_role]["policy"])]
    bucket = f"arn:aws:s3:::{run.names.bucket}"
    assert evaluate(policy, "s3:GetObject", f"{bucket}/other-project/data.csv") != ALLOWED
    assert evaluate(policy, "s3:ListBucket", bucket, {"s3:prefix": ["other-project/"]}) != ALLOWED
    assert evaluate(policy, "s3:ListBucket", bucket) != ALLOWED  # listing without a prefix


@pytest.mark.parametrize("role_kind", ["sagemaker", "lambda"])
def test_trust_policies_pin_the_account(runs: dict[str, Run], role_kind: str) -> None:
    run = runs["realtime"]
    role = run.names.sagemaker_role if role_kind == "sagemaker" else run.names.lambda_role
    [statement] = _as_document(run.created[role]["trust"])["Statement"]
    service = f"{role_kind}.amazonaws.com"
    assert statement["Principal"] == {"Service": service}
    condition = statement["Condition"]
    source_arn = f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:training-job/x" if role_kind == "sagemaker" else None
    ours = {"aws:sourceaccount": [ACCOUNT]} | ({"aws:sourcearn": [source_arn]} if source_arn else {})
    assert condition_holds(condition, ours)
    assert not condition_holds(condition, {**ours, "aws:sourceaccount": ["999999999999"]})
    assert not condition_holds(condition, {k: v for k, v in ours.items() if k != "aws:sourceaccount"})
    if role_kind == "sagemaker":
        elsewhere = "arn:aws:sagemaker:us-east-1:999999999999:training-job/x"
        assert not condition_holds(condition, {**ours, "aws:sourcearn": [elsewhere]})
