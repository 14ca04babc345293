"""Which IAM actions, on which resources, each AWS API call the code makes needs.

Default: ``<IAM prefix>:<Operation>``. The prefix is the service's IAM prefix, which is not always
botocore's service name (``PREFIX``). Exceptions where IAM's name differs from the operation's are in
``RENAMED``; API Gateway's management API is authorised by HTTP verb on a path. Implicit actions (an
operation that needs more than its own action: iam:PassRole, tagging on create, what Application Auto
Scaling does with the caller's rights, what ``docker push`` does) are added by ``needs``.

Sources (Service Authorization Reference, "Actions, resources, and condition keys for <service>",
https://docs.aws.amazon.com/service-authorization/latest/reference/reference_policies_actions-resources-contextkeys.html,
and the pages cited next to each entry).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import botocore.session
from iam_lifecycle import Call

from pipeline.cloud.names import Names

# botocore service name -> IAM service prefix (where they differ).
PREFIX = {
    "resourcegroupstaggingapi": "tag",
    "service-quotas": "servicequotas",
}

# S3 operations whose IAM action has another name. Amazon S3 user guide, "Amazon S3 policy actions"
# (mapping of API operations to policy actions):
# https://docs.aws.amazon.com/AmazonS3/latest/userguide/using-with-s3-policy-actions.html
RENAMED = {
    ("s3", "HeadBucket"): "s3:ListBucket",
    ("s3", "HeadObject"): "s3:GetObject",
    ("s3", "ListObjects"): "s3:ListBucket",
    ("s3", "ListObjectsV2"): "s3:ListBucket",
    ("s3", "ListObjectVersions"): "s3:ListBucketVersions",
    ("s3", "ListBuckets"): "s3:ListAllMyBuckets",
    ("s3", "PutPublicAccessBlock"): "s3:PutBucketPublicAccessBlock",
    ("s3", "GetPublicAccessBlock"): "s3:GetBucketPublicAccessBlock",
    ("s3", "PutBucketEncryption"): "s3:PutEncryptionConfiguration",
    ("s3", "GetBucketEncryption"): "s3:GetEncryptionConfiguration",
    ("s3", "PutBucketLifecycleConfiguration"): "s3:PutLifecycleConfiguration",
    ("s3", "GetBucketLifecycleConfiguration"): "s3:GetLifecycleConfiguration",
    ("s3", "DeleteBucketLifecycle"): "s3:PutLifecycleConfiguration",
    # multipart uploads (upload_file of a large file) are authorised as s3:PutObject
    ("s3", "CreateMultipartUpload"): "s3:PutObject",
    ("s3", "UploadPart"): "s3:PutObject",
    ("s3", "CompleteMultipartUpload"): "s3:PutObject",
    ("s3", "AbortMultipartUpload"): "s3:AbortMultipartUpload",
    # DeleteObjects is authorised per key (handled in _s3), listed here for the record
    ("s3", "DeleteObjects"): "s3:DeleteObject",
}

# Tag-on-create: a Create call that carries tags also needs the service's tagging action.
# SageMaker: https://docs.aws.amazon.com/sagemaker/latest/dg/security_iam_id-based-policy-examples.html
#   ("sagemaker:AddTags" for Create* with Tags); IAM: CreateRole with Tags needs iam:TagRole
#   (https://docs.aws.amazon.com/IAM/latest/UserGuide/id_tags_roles.html); ECR: CreateRepository with
#   tags needs ecr:TagResource (list_amazonelasticcontainerregistry.html, dependent actions); Lambda:
#   CreateFunction with Tags needs lambda:TagResource (https://docs.aws.amazon.com/lambda/latest/dg/
#   tagging.html); CloudWatch Logs: CreateLogGroup with tags needs logs:TagResource
#   (list_amazoncloudwatchlogs.html); CloudWatch: PutMetricAlarm with Tags needs cloudwatch:TagResource
#   (list_amazoncloudwatch.html); Application Auto Scaling: RegisterScalableTarget with Tags needs
#   application-autoscaling:TagResource (https://docs.aws.amazon.com/autoscaling/application/userguide/
#   resource-tagging-support.html); Resource Groups: CreateGroup with Tags needs resource-groups:Tag
#   (list_awsresourcegroups.html); API Gateway: tags on create are a PUT on /tags/<arn>
#   (https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-tagging-iam-policy.html).
TAG_ON_CREATE = {
    ("sagemaker", "CreateTrainingJob"): ("Tags", "sagemaker:AddTags"),
    ("sagemaker", "CreateModel"): ("Tags", "sagemaker:AddTags"),
    ("sagemaker", "CreateEndpointConfig"): ("Tags", "sagemaker:AddTags"),
    ("sagemaker", "CreateEndpoint"): ("Tags", "sagemaker:AddTags"),
    ("iam", "CreateRole"): ("Tags", "iam:TagRole"),
    ("ecr", "CreateRepository"): ("tags", "ecr:TagResource"),
    ("lambda", "CreateFunction"): ("Tags", "lambda:TagResource"),
    ("logs", "CreateLogGroup"): ("tags", "logs:TagResource"),
    ("cloudwatch", "PutMetricAlarm"): ("Tags", "cloudwatch:TagResource"),
    ("application-autoscaling", "RegisterScalableTarget"): ("Tags", "application-autoscaling:TagResource"),
    ("resource-groups", "CreateGroup"): ("Tags", "resource-groups:Tag"),
    # SNS: "To create a topic with tags you need sns:CreateTopic and sns:TagResource" (SNS developer
    # guide, "Amazon SNS tags" / CreateTopic API reference).
    ("sns", "CreateTopic"): ("Tags", "sns:TagResource"),
}

# Roles passed to a service: the call needs iam:PassRole on the role, with iam:PassedToService.
# https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_use_passrole.html; CreateTrainingJob:
# "To be able to pass this role to SageMaker, the caller of this API must have the iam:PassRole
# permission" (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateTrainingJob.html).
PASSED_ROLES = {
    ("sagemaker", "CreateTrainingJob"): ("RoleArn", "sagemaker.amazonaws.com"),
    ("sagemaker", "CreateModel"): ("ExecutionRoleArn", "sagemaker.amazonaws.com"),
    ("lambda", "CreateFunction"): ("Role", "lambda.amazonaws.com"),
    ("lambda", "UpdateFunctionConfiguration"): ("Role", "lambda.amazonaws.com"),
}

AUTOSCALING_SLR_SERVICE = "sagemaker.application-autoscaling.amazonaws.com"

# ``docker push`` to ECR, authorised as these actions on the repository; ``docker login`` uses the
# token from ecr:GetAuthorizationToken (called through boto3, so recorded as a call).
# https://docs.aws.amazon.com/AmazonECR/latest/userguide/image-push-iam.html
DOCKER_PUSH = (
    "ecr:BatchCheckLayerAvailability",
    "ecr:InitiateLayerUpload",
    "ecr:UploadLayerPart",
    "ecr:CompleteLayerUpload",
    "ecr:PutImage",
    "ecr:BatchGetImage",
)


@dataclass(frozen=True)
class Need:
    """One action on one resource (with the request context IAM would see), and why it is needed."""

    action: str
    resource: str
    context: tuple[tuple[str, tuple[str, ...]], ...] = ()
    why: str = ""

    def context_dict(self) -> dict[str, list[str]]:
        return {k: list(v) for k, v in self.context}


def iam_action(service: str, operation: str) -> str:
    """The IAM action named for the operation itself (before implicit ones)."""
    if (service, operation) in RENAMED:
        return RENAMED[(service, operation)]
    if service == "apigateway":
        return f"apigateway:{_operation_model(service, operation).http['method']}"
    return f"{PREFIX.get(service, service)}:{operation}"


def _operation_model(service: str, operation: str) -> Any:
    return botocore.session.get_session().get_service_model(service).operation_model(operation)


# --- resources per service ------------------------------------------------------------------


def _sagemaker(call: Call, names: Names) -> list[str]:
    p = call.params
    kinds = (
        ("TrainingJobName", "training-job"),
        ("ModelName", "model"),
        ("EndpointConfigName", "endpoint-config"),
        ("EndpointName", "endpoint"),
    )
    # CreateEndpoint and UpdateEndpoint are authorised on the endpoint and on the config they use.
    found = [names.arn("sagemaker", f"{kind}/{p[key].lower()}") for key, kind in kinds if p.get(key)]
    if call.operation.startswith("List") or not found:
        return ["*"]
    return found


def _s3(call: Call, names: Names) -> list[str]:
    bucket = call.params.get("Bucket")
    if not bucket:
        return ["*"]
    base = f"arn:{names.partition}:s3:::{bucket}"
    if call.params.get("Key"):
        return [f"{base}/{call.params['Key']}"]
    return [base]


def _log_group(names: Names, group: str) -> list[str]:
    # CloudWatch Logs authorises some actions on "log-group:<name>" and others on "log-group:<name>:*";
    # the policy must allow both forms.
    arn = names.arn("logs", f"log-group:{group}")
    return [arn, f"{arn}:*"]


def _logs(call: Call, names: Names) -> list[str]:
    group = call.params.get("logGroupName")
    if group:
        return _log_group(names, group)
    return [names.arn("logs", "log-group:*")]  # DescribeLogGroups lists across groups


def _iam(call: Call, names: Names) -> list[str]:
    if call.params.get("RoleName"):
        return [names.role_arn(call.params["RoleName"])]
    if call.params.get("PolicySourceArn"):
        return [call.params["PolicySourceArn"]]
    if call.params.get("UserName"):
        return [names.arn("iam", f"user/{call.params['UserName']}", region="")]
    return ["*"]


def _lambda(call: Call, names: Names) -> list[str]:
    function = call.params.get("FunctionName") or call.params.get("Resource")
    if not function:
        return ["*"]
    return [function if function.startswith("arn:") else names.arn("lambda", f"function:{function}")]


def _ecr(call: Call, names: Names) -> list[str]:
    if call.operation == "GetAuthorizationToken":
        return ["*"]
    repositories = call.params.get("repositoryNames") or [call.params.get("repositoryName")]
    return [
        names.arn("ecr", f"repository/{r}") if r else names.arn("ecr", "repository/*") for r in repositories
    ]


def _cloudwatch(call: Call, names: Names) -> list[str]:
    # Dashboards are global: arn:<partition>:cloudwatch::<account>:dashboard/<name> (CloudWatch's
    # Service Authorization Reference page).
    dashboards = call.params.get("DashboardNames") or [call.params.get("DashboardName")]
    if dashboards != [None]:
        return [names.arn("cloudwatch", f"dashboard/{d}", region="") for d in dashboards]
    alarms = call.params.get("AlarmNames") or [call.params.get("AlarmName")]
    if alarms != [None]:
        return [names.arn("cloudwatch", f"alarm:{a}") for a in alarms]
    if call.params.get("AlarmNamePrefix"):
        return [names.arn("cloudwatch", f"alarm:{call.params['AlarmNamePrefix']}*")]
    return ["*"]


def _sns(call: Call, names: Names) -> list[str]:
    if call.params.get("TopicArn"):
        return [call.params["TopicArn"]]
    if call.params.get("SubscriptionArn"):  # <topic arn>:<subscription id>
        return [call.params["SubscriptionArn"].rsplit(":", 1)[0]]
    if call.params.get("ResourceArn"):
        return [call.params["ResourceArn"]]
    if call.params.get("Name"):
        return [names.arn("sns", call.params["Name"])]
    return ["*"]


def _resource_groups(call: Call, names: Names) -> list[str]:
    group = call.params.get("Group") or call.params.get("GroupName") or call.params.get("Name")
    if not group:
        return ["*"]
    return [group if group.startswith("arn:") else names.arn("resource-groups", f"group/{group}")]


def _apigateway(call: Call, names: Names) -> list[str]:
    model = _operation_model("apigateway", call.operation)
    path = model.http["requestUri"].split("?", 1)[0]
    for member_name, member in model.input_shape.members.items():
        if member.serialization.get("location") == "uri" and member_name in call.params:
            path = path.replace("{" + member.serialization["name"] + "}", str(call.params[member_name]))
    return [f"arn:{names.partition}:apigateway:{names.region}::{path}"]


RESOURCES = {
    "sagemaker": _sagemaker,
    "s3": _s3,
    "logs": _logs,
    "iam": _iam,
    "lambda": _lambda,
    "ecr": _ecr,
    "cloudwatch": _cloudwatch,
    "resource-groups": _resource_groups,
    "apigateway": _apigateway,
    "sns": _sns,
}


def needs(call: Call, names: Names) -> list[Need]:
    """Every (action, resource, context) ``call`` needs, including the implicit ones."""
    key = (call.service, call.operation)
    resources = RESOURCES.get(call.service, lambda c, n: ["*"])(call, names)
    found = [Need(iam_action(*key), r, _s3_context(call), "the call") for r in resources]
    if key == ("s3", "DeleteObjects"):
        found = _delete_objects(call, names)
    if key in TAG_ON_CREATE:
        parameter, action = TAG_ON_CREATE[key]
        if call.params.get(parameter):
            found += [Need(action, r, why="tags on create") for r in resources[:1]]
    if call.service == "apigateway" and call.params.get("tags") and call.operation.startswith("Create"):
        base = f"arn:{names.partition}:apigateway:{names.region}::"
        created = resources[0][len(base) :]
        found.append(
            Need("apigateway:PUT", f"{base}/tags/{quote(base + created, safe='')}", why="tags on create")
        )
    if key in PASSED_ROLES:
        parameter, service = PASSED_ROLES[key]
        if call.params.get(parameter):
            found.append(
                Need(
                    "iam:PassRole",
                    call.params[parameter],
                    (("iam:PassedToService", (service,)),),
                    "role passed",
                )
            )
    if key == ("application-autoscaling", "RegisterScalableTarget"):
        found += _autoscaling_register(call, names)
    if key in (
        ("application-autoscaling", "PutScalingPolicy"),
        ("application-autoscaling", "DeleteScalingPolicy"),
    ):
        found += _target_tracking_alarms(call, names)
    return found


def _s3_context(call: Call) -> tuple[tuple[str, tuple[str, ...]], ...]:
    if call.service == "s3" and "Prefix" in call.params:
        return (("s3:prefix", (call.params["Prefix"],)),)
    return ()


def _delete_objects(call: Call, names: Names) -> list[Need]:
    # DeleteObjects is authorised per key: s3:DeleteObject, plus s3:DeleteObjectVersion for a VersionId.
    base = f"arn:{names.partition}:s3:::{call.params['Bucket']}"
    found = []
    for obj in call.params["Delete"]["Objects"]:
        arn = f"{base}/{obj['Key']}"
        found.append(Need("s3:DeleteObject", arn, why="DeleteObjects, per key"))
        if obj.get("VersionId"):
            found.append(Need("s3:DeleteObjectVersion", arn, why="DeleteObjects with VersionId"))
    return found


def _autoscaling_register(call: Call, names: Names) -> list[Need]:
    # Registering a SageMaker variant: the caller needs the endpoint actions Application Auto Scaling
    # uses, and creates its service-linked role on first use.
    # https://docs.aws.amazon.com/sagemaker/latest/dg/endpoint-auto-scaling-prerequisites.html
    # https://docs.aws.amazon.com/autoscaling/application/userguide/application-auto-scaling-service-linked-roles.html
    endpoint = call.params["ResourceId"].split("/")[1]
    endpoint_arn = names.arn("sagemaker", f"endpoint/{endpoint}")
    role = names.arn(
        "iam",
        f"role/aws-service-role/{AUTOSCALING_SLR_SERVICE}/AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint",
        region="",
    )
    return [
        Need(
            "iam:CreateServiceLinkedRole",
            role,
            (("iam:AWSServiceName", (AUTOSCALING_SLR_SERVICE,)),),
            "autoscaling service-linked role",
        ),
        Need("sagemaker:DescribeEndpoint", endpoint_arn, why="Application Auto Scaling, as the caller"),
        Need(
            "sagemaker:DescribeEndpointConfig",
            names.arn("sagemaker", f"endpoint-config/{names.endpoint_config_prefix}-*"),
            why="Application Auto Scaling, as the caller",
        ),
        Need(
            "sagemaker:UpdateEndpointWeightsAndCapacities",
            endpoint_arn,
            why="Application Auto Scaling, as the caller",
        ),
    ]


def _target_tracking_alarms(call: Call, names: Names) -> list[Need]:
    # A target-tracking policy creates and deletes CloudWatch alarms named
    # TargetTracking-<resource id>-Alarm{High,Low}-<uuid> with the caller's permissions.
    # https://docs.aws.amazon.com/autoscaling/application/userguide/security_iam_id-based-policy-examples.html
    alarm = names.arn("cloudwatch", f"alarm:TargetTracking-{call.params['ResourceId']}-AlarmHigh-0000")
    return [
        Need(action, alarm, why="target-tracking alarms")
        for action in ("cloudwatch:PutMetricAlarm", "cloudwatch:DescribeAlarms", "cloudwatch:DeleteAlarms")
    ]


def docker_needs(commands: list[list[str]], names: Names) -> list[Need]:
    """What the recorded docker commands need (``docker push`` to the project's repository)."""
    found = []
    for command in commands:
        if command[:2] == ["docker", "push"]:
            repository = command[2].split("/", 1)[1].rsplit(":", 1)[0]
            arn = names.arn("ecr", f"repository/{repository}")
            found += [Need(action, arn, why="docker push") for action in DOCKER_PUSH]
    return found


# --- what SageMaker and Lambda do with the execution roles -----------------------------------
# SageMaker: "How to use SageMaker AI execution roles", sections "CreateTrainingJob API: Execution Role
# Permissions" and "CreateModel API: Execution Role Permissions"
# (https://docs.aws.amazon.com/sagemaker/latest/dg/sagemaker-roles.html): read the input channels
# (s3:GetObject, and s3:ListBucket for S3Prefix channels), write the output (s3:PutObject), pull the
# image (ecr:GetAuthorizationToken, BatchGetImage, GetDownloadUrlForLayer, BatchCheckLayerAvailability),
# write logs (logs:CreateLogGroup, CreateLogStream, PutLogEvents, DescribeLogStreams) and publish
# metrics (cloudwatch:PutMetricData).
# Lambda: "Defining Lambda function permissions with an execution role"
# (https://docs.aws.amazon.com/lambda/latest/dg/lambda-intro-execution-role.html) and the
# AWSLambdaBasicExecutionRole policy: logs:CreateLogStream and PutLogEvents on the function's group
# (deploy creates the group, so logs:CreateLogGroup is not needed); the proxy's own call is
# sagemaker:InvokeEndpoint on the endpoint.

_IMAGE_PULL = ("ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability")
_LOG_WRITE = ("logs:CreateLogStream", "logs:PutLogEvents")


def _s3_uri(uri: str, names: Names) -> tuple[str, str, str]:
    bucket, _, key = uri[len("s3://") :].partition("/")
    return bucket, key, f"arn:{names.partition}:s3:::{bucket}"


def _image_needs(image: str, names: Names, why: str) -> list[Need]:
    repository = image.split("/", 1)[1].split("@")[0].rsplit(":", 1)[0]
    arn = names.arn("ecr", f"repository/{repository}")
    return [Need("ecr:GetAuthorizationToken", "*", why=why)] + [Need(a, arn, why=why) for a in _IMAGE_PULL]


def _log_needs(group: str, stream: str, names: Names, why: str, create_group: bool) -> list[Need]:
    group_arn = names.arn("logs", f"log-group:{group}")
    stream_arn = f"{group_arn}:log-stream:{stream}"
    found = [Need(a, stream_arn, why=why) for a in _LOG_WRITE]
    found.append(Need("logs:DescribeLogStreams", f"{group_arn}:*", why=why))
    if create_group:
        found.append(Need("logs:CreateLogGroup", f"{group_arn}:*", why=why))
    return found


def sagemaker_role_needs(
    job: dict[str, Any], model: dict[str, Any], endpoint: str, names: Names
) -> list[Need]:
    """What SageMaker does with the execution role for this training job, model and endpoint."""
    found: list[Need] = []
    for channel in job["InputDataConfig"]:
        uri = channel["DataSource"]["S3DataSource"]["S3Uri"]
        _, key, bucket_arn = _s3_uri(uri, names)
        why = f"training channel {channel['ChannelName']}"
        found.append(Need("s3:ListBucket", bucket_arn, (("s3:prefix", (key,)),), why))
        found.append(Need("s3:GetObject", f"{bucket_arn}/{key.rstrip('/')}/part-0", why=why))
    _, output_key, bucket_arn = _s3_uri(job["OutputDataConfig"]["S3OutputPath"], names)
    output = f"{bucket_arn}/{output_key.rstrip('/')}/{job['TrainingJobName']}/output/model.tar.gz"
    found.append(Need("s3:PutObject", output, why="training output"))
    found += _image_needs(job["AlgorithmSpecification"]["TrainingImage"], names, "training image")
    found += _log_needs(
        names.training_log_group, f"{job['TrainingJobName']}/algo-1-0", names, "training logs", True
    )
    container = model["PrimaryContainer"]
    _, model_key, bucket_arn = _s3_uri(container["ModelDataUrl"], names)
    found.append(Need("s3:GetObject", f"{bucket_arn}/{model_key}", why="model artifact"))
    found += _image_needs(container["Image"], names, "serving image")
    found += _log_needs(names.endpoint_log_group, "AllTraffic/i-0", names, "endpoint logs", True)
    found.append(Need("cloudwatch:PutMetricData", "*", why="instance metrics"))
    return found


def lambda_role_needs(function: dict[str, Any], names: Names) -> list[Need]:
    """What the Lambda proxy does with its role: invoke the endpoint, write its logs."""
    endpoint = function["Environment"]["Variables"]["ENDPOINT_NAME"]
    found = [
        Need("sagemaker:InvokeEndpoint", names.arn("sagemaker", f"endpoint/{endpoint.lower()}"), why="proxy")
    ]
    group = f"/aws/lambda/{function['FunctionName']}"
    arn = names.arn("logs", f"log-group:{group}:log-stream:2026/01/01/[$LATEST]0")
    found += [Need(a, arn, why="function logs") for a in _LOG_WRITE]
    return found
