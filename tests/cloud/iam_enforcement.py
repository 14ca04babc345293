"""Run deploy code as an IAM user that holds only the deployer policy, with moto enforcing IAM.

moto 5.2.5 checks each request's action against the caller's identity policies once
``INITIAL_NO_AUTH_ACTION_COUNT`` requests have been served, but its check is not IAM's:

* the action is ``<signing name>:<operation>`` (CloudWatch is ``monitoring:``, the tagging API
  ``tagging:``, API Gateway has operation names instead of HTTP verbs), and S3 uses a table of its own
  (``HeadBucket``, ``PutPublicAccessBlock``; ``PutBucketEncryption`` is checked as ``CreateBucket``);
* the resource is ``*`` for every service except S3 (bucket/key ARNs) and IAM (a role's ARN, when the
  role exists), so a resource-scoped Allow never matches elsewhere;
* S3's multi-object delete is checked as ``s3:DeleteObject`` on the bucket, not on each key;
* a Condition moto cannot evaluate (an operator other than StringEquals, a key it does not supply)
  makes the statement DENY, even an Allow.

So the user holds a *projection* of the rendered deployer policy (``project``): the same actions,
renamed where moto's names differ, with ``Resource: *`` (S3 keeps its bucket and key scope, which
moto does check, plus the bucket for s3:DeleteObject) and without conditions. The projection only
ever renames: an action missing from deployer.json has no moto name in it, so the call that needs
it fails with AccessDenied. What the projection drops (resource scopes, conditions, implicit actions
such as iam:PassRole) is checked by the static test in test_cloud_iam_enforced.py against the real
policy.

moto also fails its own signature check for body-less Lambda and API Gateway requests (GET/DELETE):
it hashes its parsed request dict instead of the empty body, so every such call answers
SignatureDoesNotMatch whatever the policy. ``install`` fixes exactly that (hash the raw body for those
two services), so they are enforced like the rest.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import boto3
import botocore.session
import pytest
from iam_evaluator import as_list

REGION = "us-east-1"
# moto names an action by the service's SigV4 signing name where IAM's prefix differs.
MOTO_PREFIX = {"cloudwatch": "monitoring", "tag": "tagging"}
# S3 actions whose API calls moto checks under another name (moto.s3.responses.ACTION_MAP).
MOTO_S3_NAMES = {
    "s3:ListBucket": ["s3:ListBucket", "s3:HeadBucket"],
    "s3:GetBucketPublicAccessBlock": ["s3:GetPublicAccessBlock"],
    "s3:PutBucketPublicAccessBlock": ["s3:PutPublicAccessBlock"],
}
# Services whose resources moto passes as real ARNs (everything else is checked against "*").
MOTO_SCOPED = {"s3"}


def _apigateway_operations_by_method() -> dict[str, list[str]]:
    model = botocore.session.get_session().get_service_model("apigateway")
    table: dict[str, list[str]] = {}
    for name in model.operation_names:
        table.setdefault(model.operation_model(name).http["method"], []).append(name)
    return table


def moto_names(action: str) -> list[str]:
    """The names under which moto checks the API calls that IAM's ``action`` covers."""
    prefix, _, name = action.partition(":")
    if prefix == "apigateway":  # IAM authorises API Gateway's management API by HTTP method
        return [f"apigateway:{op}" for op in _apigateway_operations_by_method().get(name, [])]
    if action in MOTO_S3_NAMES:
        return MOTO_S3_NAMES[action]
    return [f"{MOTO_PREFIX.get(prefix, prefix)}:{name}"]


def project(policy: dict[str, Any]) -> dict[str, Any]:
    """The policy as moto can evaluate it: same actions (renamed), no conditions, ``*`` resources."""
    statements = []
    for statement in as_list(policy["Statement"]):
        actions = as_list(statement["Action"])
        services = {a.split(":", 1)[0] for a in actions}
        resources = as_list(statement["Resource"]) if services <= MOTO_SCOPED else ["*"]
        if "s3:DeleteObject" in actions and services <= MOTO_SCOPED:
            # moto checks a multi-object delete (DeleteObjects) against the bucket's ARN; IAM checks
            # s3:DeleteObject on each key, which the static check does against the real policy.
            resources = sorted({*resources, *(r.split("/", 1)[0] for r in resources)})
        statements.append(
            {
                "Sid": statement.get("Sid", ""),
                "Effect": statement["Effect"],
                "Action": sorted({m for a in actions for m in moto_names(a)}),
                "Resource": resources,
            }
        )
    return {"Version": "2012-10-17", "Statement": statements}


@dataclass(frozen=True)
class Principal:
    arn: str
    session: boto3.Session


def create_user(document: dict[str, Any], name: str | None = None) -> Principal:
    """An IAM user holding ``document`` as its only (inline) policy, and a session with its key.

    Call while authentication is off (``disable_iam_authentication``).
    """
    iam = boto3.client("iam", region_name=REGION)
    name = name or f"deployer-{uuid.uuid4().hex[:8]}"
    arn = iam.create_user(UserName=name)["User"]["Arn"]
    iam.put_user_policy(UserName=name, PolicyName="only-this", PolicyDocument=json.dumps(document))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    session = boto3.Session(
        aws_access_key_id=key["AccessKeyId"],
        aws_secret_access_key=key["SecretAccessKey"],
        region_name=REGION,
    )
    return Principal(arn, session)


ADMIN = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}


def install_signature_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make moto sign body-less Lambda/API Gateway requests over the empty body, as botocore does."""
    from botocore.awsrequest import AWSRequest
    from moto.iam.access_control import IAMRequestBase

    original = IAMRequestBase._create_aws_request

    def create_aws_request(self: Any) -> AWSRequest:
        request = original(self)
        if self._service in ("lambda", "apigateway") and not self._body:
            request.data = b""
        return request

    monkeypatch.setattr(IAMRequestBase, "_create_aws_request", create_aws_request)


@contextmanager
def enforced() -> Iterator[None]:
    """moto checks every request's signature and action while inside."""
    from moto.core.authorization import enable_iam_authentication

    with enable_iam_authentication():
        yield


@contextmanager
def unenforced() -> Iterator[None]:
    """Set-up calls (users, keys) that need no authority."""
    from moto.core.authorization import disable_iam_authentication

    with disable_iam_authentication():
        yield
