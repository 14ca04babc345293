"""The whole project lifecycle run as the deployer under moto's IAM enforcement, recording every call.

Used by test_cloud_iam_enforced.py: the runs must succeed with only the (projected) deployer policy,
and what they record is then checked against the real, resource-scoped policy.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from cloud_stack import Stack
from fake_aws_env import FAKE_ENV
from iam_enforcement import (
    ADMIN,
    Principal,
    create_user,
    enforced,
    install_signature_fix,
    project,
    unenforced,
)

from pipeline.cli import main
from pipeline.cloud import deployer_policy, preflight, status, teardown
from pipeline.cloud.config import DeployConfig, load_config
from pipeline.cloud.docker_check import DockerFacts
from pipeline.cloud.names import Names, names_for
from pipeline.cloud.progress import Progress

ACCOUNT = "123456789012"
X86 = DockerFacts(installed=True, daemon=True, architecture="x86_64")


@dataclass(frozen=True)
class Call:
    """One API call the code made: botocore service name, operation name, request parameters."""

    service: str
    operation: str
    params: dict[str, Any]


@dataclass
class Run:
    """What one lifecycle did: its calls in order, the docker commands, and what it produced."""

    names: Names
    calls: list[Call] = field(default_factory=list)
    docker: list[list[str]] = field(default_factory=list)
    created: dict[str, Any] = field(default_factory=dict)  # evidence for the execution-role checks
    log: list[str] = field(default_factory=list)


def record_calls(session: boto3.Session, calls: list[Call]) -> None:
    """Append every API call made through ``session`` (with its parameters) to ``calls``."""

    def before_parameter_build(params: dict[str, Any], model: Any, **_: Any) -> None:
        calls.append(Call(model.service_model.service_name, model.name, dict(params)))

    session.events.register("before-parameter-build.*.*", before_parameter_build)


PREFLIGHT: dict[str, Any] = {}  # the installed preflight shims of the current moto_environment


@contextmanager
def moto_environment() -> Iterator[pytest.MonkeyPatch]:
    """moto in-process with the test shims and fake credentials, for a module-scoped fixture."""
    from moto import mock_aws
    from moto_shims import install as install_moto_shims
    from preflight_shims import install as install_preflight_shims

    with pytest.MonkeyPatch.context() as mp:
        for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL"):
            mp.delenv(name, raising=False)
        for name, value in FAKE_ENV.items():
            mp.setenv(name, value)
        install_moto_shims(mp)
        quotas = install_preflight_shims(mp)
        PREFLIGHT["shims"] = quotas
        quotas.applied.update({"ml.m5.large for endpoint usage": 4, "ml.c5.large for endpoint usage": 4})
        quotas.defaults.update(
            {
                "ml.m5.large for training job usage": 2,
                "Maximum total concurrency that can be allocated across all serverless endpoints": 10,
            }
        )
        install_signature_fix(mp)
        with mock_aws(config={"lambda": {"use_docker": False}}):
            yield mp


def deployer_and_admin(
    config: DeployConfig, document: dict[str, Any] | None = None
) -> tuple[Principal, Principal]:
    """The deployer (holding the projection of ``document``, default the rendered policy) and an admin."""
    document = document or deployer_policy.render(names_for(config, ACCOUNT))
    with unenforced():
        return create_user(project(document)), create_user(ADMIN)


def enforced_stack(
    tmp: Path, config: DeployConfig, document: dict[str, Any] | None = None
) -> tuple[Stack, Run]:
    """A Stack whose clients act as the deployer; SageMaker's and docker's own writes act as admin."""
    document = document or deployer_policy.render(names_for(config, ACCOUNT))
    deployer, admin = deployer_and_admin(config, document)
    if "shims" in PREFLIGHT:  # preflight's simulation answers for the real policy, not the projection
        PREFLIGHT["shims"].documents[deployer.arn] = [document]
    stack = Stack(tmp, session=deployer.session, services=admin.session)
    run = Run(names_for(config, ACCOUNT))
    record_calls(stack.session, run.calls)
    run.created["admin"] = admin.session
    run.created["deployer_arn"] = deployer.arn
    return stack, run


def _teardown(stack: Stack, config: DeployConfig) -> teardown.TeardownResult:
    return teardown.teardown(
        config, stack.clients, Progress(stack.output), lambda found: True, poll_s=0, sleep=lambda s: None
    )


def _cli(*argv: str) -> str:
    out = io.StringIO()
    with redirect_stdout(out), redirect_stderr(out):
        status_code = main(list(argv))
    if status_code != 0:
        raise AssertionError(f"{' '.join(argv)} exited {status_code}: {out.getvalue()}")
    return out.getvalue()


def _preflight(stack: Stack, config: DeployConfig) -> None:
    report = preflight.run_preflight(config, stack.clients, Progress(stack.output), docker_probe=lambda: X86)
    if not report.ok:
        raise AssertionError(
            "preflight failed: " + "; ".join(f"{c.name}: {c.message}" for c in report.failures)
        )


def _teardown(stack: Stack, config: DeployConfig, run: Run) -> None:
    result = teardown.teardown(
        config, stack.clients, Progress(stack.output), lambda found: True, poll_s=0, sleep=lambda s: None
    )
    if result.failures or result.left:
        raise AssertionError(f"teardown failed {result.failures}, left {result.left}")
    run.log.append("teardown")


def _evidence(stack: Stack, run: Run, result: Any) -> None:
    """What SageMaker and Lambda were asked to do, read back as admin (for the execution-role checks)."""
    admin = run.created["admin"]
    sm = admin.client("sagemaker", region_name="us-east-1")
    run.created["training_job"] = sm.describe_training_job(TrainingJobName=result.training_job)
    endpoint = sm.describe_endpoint(EndpointName=run.names.endpoint)
    config = sm.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    run.created["endpoint"] = endpoint
    run.created["model"] = sm.describe_model(ModelName=config["ProductionVariants"][0]["ModelName"])
    run.created["function"] = admin.client("lambda", region_name="us-east-1").get_function(
        FunctionName=run.names.function
    )["Configuration"]
    iam = admin.client("iam", region_name="us-east-1")
    for role in (run.names.sagemaker_role, run.names.lambda_role):
        run.created[role] = {
            "trust": iam.get_role(RoleName=role)["Role"]["AssumeRolePolicyDocument"],
            "policy": iam.get_role_policy(RoleName=role, PolicyName="least-privilege")["PolicyDocument"],
        }


def realtime_lifecycle(tmp: Path, mp: pytest.MonkeyPatch) -> Run:
    """preflight → deploy → status → keys create/list/revoke → two re-deploys → teardown, enforced.

    Alarm notifications go to one address, then another (unsubscribe), then none (topic deleted).
    """
    config = load_config(overrides={"alarms.email": "oncall@example.com"})
    stack, run = enforced_stack(tmp, config)
    mp.setattr("pipeline.cloud.clients.Clients", lambda region, session=None: stack.clients)
    mp.setenv("SECRETS_DIR", str(tmp / "secrets"))
    with enforced():
        _preflight(stack, config)
        run.log.append("preflight")
        result = stack.deploy(config)
        run.log.append("deploy")
        _evidence(stack, run, result)
        report = status.gather(config, stack.clients)
        run.created["status"] = report
        run.log.append("status")
        created = _cli("keys", "create", "alice")
        key_id = created.split("created key ", 1)[1].split(";", 1)[0]
        run.created["keys listed"] = _cli("keys", "list", "--json")
        _cli("keys", "revoke", key_id)
        run.log.append("keys")
        # a setting that needs a new endpoint config (blue/green UpdateEndpoint) ...
        updated = stack.deploy(
            load_config(
                overrides={"endpoint.initial_instance_count": "2", "alarms.email": "team@example.com"}
            )
        )
        run.created["update actions"] = dict(updated.actions)
        # ... and an instance-type change (autoscaling deregistered around the update)
        changed = stack.deploy(load_config(overrides={"endpoint.instance_type": "ml.c5.large"}))
        run.created["instance change actions"] = dict(changed.actions)
        run.log.append("re-deploy")
        _teardown(stack, config, run)
    run.docker = stack.runner.commands
    return run


def serverless_lifecycle(tmp: Path, mp: pytest.MonkeyPatch) -> Run:
    """Serverless deploy → teardown, enforced."""
    config = load_config(overrides={"endpoint.mode": "serverless"})
    stack, run = enforced_stack(tmp, config)
    with enforced():
        _preflight(stack, config)
        run.log.append("preflight")
        result = stack.deploy(config)
        run.log.append("deploy")
        _evidence(stack, run, result)
        _teardown(stack, config, run)
    run.docker = stack.runner.commands
    return run
