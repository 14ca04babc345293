"""Preflight against moto (plus preflight_shims): credentials, docker, quotas, permissions and cost."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tomllib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from preflight_shims import PreflightShims, install

from pipeline.cli import main
from pipeline.cloud import deployer_policy
from pipeline.cloud.checks import FAIL, OK, SKIPPED, WARN
from pipeline.cloud.clients import Clients
from pipeline.cloud.config import DeployConfig, load_config
from pipeline.cloud.cost import (
    ASSUMED_REQUEST_SECONDS,
    PRICES_PATH,
    PriceTableError,
    estimate,
    hourly_cost,
    load_prices,
    render,
)
from pipeline.cloud.docker_check import DockerFacts, check_docker, probe_docker
from pipeline.cloud.errors import CloudError
from pipeline.cloud.lambda_function import ARCHITECTURE
from pipeline.cloud.names import names_for
from pipeline.cloud.permissions import PROBE, concrete, probes
from pipeline.cloud.preflight import PreflightFailed, PreflightReport, run_preflight
from pipeline.cloud.progress import Progress
from pipeline.cloud.quotas import SERVERLESS_QUOTA

ACCOUNT = "123456789012"
REPO = Path(__file__).resolve().parents[2]
PRICES = tomllib.loads(PRICES_PATH.read_text())
ENDPOINT_QUOTA = "ml.m5.large for endpoint usage"
TRAINING_QUOTA = "ml.m5.large for training job usage"
X86 = DockerFacts(installed=True, daemon=True, architecture="x86_64")


def config(**overrides: object) -> DeployConfig:
    return load_config(overrides={k.replace("__", "."): v for k, v in overrides.items()})


def deployer_document(
    drop: dict[str, set[str]] | None = None, without: set[str] = frozenset()
) -> dict[str, Any]:
    """The rendered deployer policy, minus actions per statement Sid (``drop``) or whole statements."""
    policy = deployer_policy.render(names_for(config(), ACCOUNT))
    statements = []
    for s in deployer_policy.statements(policy):
        if s["Sid"] in without:
            continue
        s = {**s, "Action": [a for a in s["Action"] if a not in (drop or {}).get(s["Sid"], set())]}
        statements.append(s)
    return {"Version": "2012-10-17", "Statement": statements}


def good_quotas(shims: PreflightShims) -> None:
    # Applied values for some, AWS defaults for others (the training quota is only a default), and
    # more entries than a page so both listings must be paginated.
    shims.applied.update(
        {"ml.t3.medium for endpoint usage": 0, ENDPOINT_QUOTA: 4, "ml.c5.xlarge for endpoint usage": 2}
    )
    shims.defaults.update(
        {
            "ml.m5.xlarge for training job usage": 1,
            "ml.c5.xlarge for endpoint usage": 0,
            TRAINING_QUOTA: 2,
            SERVERLESS_QUOTA: 10,
        }
    )


@pytest.fixture
def shims(aws: object, monkeypatch: pytest.MonkeyPatch) -> PreflightShims:
    shims = install(monkeypatch)
    good_quotas(shims)
    return shims


def iam_user(document: dict[str, Any], path: str = "/") -> tuple[str, str, str]:
    """A new IAM user holding ``document`` as a managed policy: (arn, access key id, secret)."""
    iam = boto3.client("iam", region_name="us-east-1")
    name = f"deployer-{uuid.uuid4().hex[:8]}"
    arn = iam.create_user(UserName=name, Path=path)["User"]["Arn"]
    policy = iam.create_policy(PolicyName=f"{name}-policy", PolicyDocument=json.dumps(document))
    iam.attach_user_policy(UserName=name, PolicyArn=policy["Policy"]["Arn"])
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return arn, key["AccessKeyId"], key["SecretAccessKey"]


def session_for(key_id: str, secret: str) -> boto3.Session:
    return boto3.Session(aws_access_key_id=key_id, aws_secret_access_key=secret, region_name="us-east-1")


def preflight(
    session: boto3.Session, cfg: DeployConfig | None = None, **kwargs: Any
) -> tuple[PreflightReport, str]:
    out = io.StringIO()
    kwargs.setdefault("docker_probe", lambda: X86)
    report = run_preflight(cfg or config(), Clients("us-east-1", session), Progress(out), **kwargs)
    return report, out.getvalue()


def by_name(report: PreflightReport) -> dict[str, Any]:
    return {c.name: c for c in report.checks}


def use_credentials(monkeypatch: pytest.MonkeyPatch, key_id: str, secret: str) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)


# --- all good ---------------------------------------------------------------------------------


def test_all_good_exits_zero_and_the_cost_line_is_table_price_times_config(
    shims: PreflightShims, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    arn, key_id, secret = iam_user(deployer_document())
    use_credentials(monkeypatch, key_id, secret)

    status = main(["preflight", "--skip-docker", "--set", "endpoint.initial_instance_count=2"])

    out = capsys.readouterr()
    assert status == 0, out.out + out.err
    assert f"[ok]       credentials: account {ACCOUNT} as {arn}" in out.out
    assert "[ok]       region: us-east-1 (partition aws)" in out.out
    assert "[skipped]  docker: not needed" in out.out
    assert f"'{TRAINING_QUOTA}' (L-" in out.out and "(AWS default" in out.out
    assert f"[ok]       endpoint quota: '{ENDPOINT_QUOTA}' (L-" in out.out
    assert f"[ok]       permissions: {arn} is allowed all" in out.out
    price = PRICES["sagemaker"]["hosting"]["ml.m5.large"]
    hourly, ceiling = price * 2, price * 4  # initial_instance_count=2, autoscaling_max=4 (deploy.toml)
    assert f"${hourly:.4f}/hour, ${hourly * 730:,.2f}/month always on" in out.out
    assert f"at autoscaling max ${ceiling:.4f}/hour, ${ceiling * 730:,.2f}/month" in out.out
    training = PRICES["sagemaker"]["training"]["ml.m5.large"] * 3600 / 3600  # max_runtime 3600 s, 1 instance
    assert f"one training run at its max runtime (ml.m5.large): ${training:.4f}" in out.out
    assert out.out.rstrip().endswith("preflight passed: nothing was created")
    # Both quota listings were followed page by page (page size 2, more entries than that).
    assert ("ListServiceQuotas", "2") in shims.quota_calls
    assert ("ListAWSDefaultServiceQuotas", "2") in shims.quota_calls
    # Every statement and resource of the deployer policy was simulated, with PassRole's context.
    sources = {call["source"] for call in shims.simulated}
    assert sources == {arn}
    passrole = [c for c in shims.simulated if c["actions"] == ["iam:PassRole"]]
    assert sorted(c["context"]["iam:passedtoservice"][0] for c in passrole) == [
        "lambda.amazonaws.com",
        "sagemaker.amazonaws.com",
    ]


def test_json_output_carries_every_check_and_the_cost_numbers(
    shims: PreflightShims, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _, key_id, secret = iam_user(deployer_document())
    use_credentials(monkeypatch, key_id, secret)

    status = main(["preflight", "--skip-docker", "--json"])

    document = json.loads(capsys.readouterr().out)
    assert status == 0 and document["ok"] is True
    assert [c["name"] for c in document["checks"]] == [
        "credentials",
        "region",
        "docker",
        "training quota",
        "endpoint quota",
        "permissions",
        "cost",
    ]
    price = PRICES["sagemaker"]["hosting"]["ml.m5.large"]
    assert document["cost"]["endpoint_hourly"] == pytest.approx(price * 1)
    assert document["cost"]["endpoint_monthly"] == pytest.approx(price * 730)
    assert document["cost"]["endpoint_ceiling_hourly"] == pytest.approx(price * 4)
    assert document["cost"]["api_per_million"] == PRICES["apigateway"]["rest_per_million_requests"]
    assert document["cost"]["unconfirmed"] == ["sagemaker", "lambda.duration.arm64"]
    assert document["cost"]["lambda_architecture"] == "arm64"


# --- quotas -----------------------------------------------------------------------------------


def test_endpoint_quota_zero_fails_naming_the_quota_and_how_to_raise_it(
    shims: PreflightShims, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    shims.applied[ENDPOINT_QUOTA] = 0
    _, key_id, secret = iam_user(deployer_document())
    use_credentials(monkeypatch, key_id, secret)

    status = main(["preflight", "--skip-docker"])

    out = capsys.readouterr().out
    assert status == 1
    line = next(x.strip() for x in out.splitlines() if "endpoint quota" in x)
    assert line.startswith("[fail]")
    assert f"'{ENDPOINT_QUOTA}' (L-" in line and "is 0" in line
    assert "endpoint.initial_instance_count needs 1" in line
    assert "New accounts often have 0" in line and "request an increase" in line
    assert "preflight FAILED (1 check(s))" in out


def test_instance_type_without_a_quota_entry_is_not_offered(shims: PreflightShims) -> None:
    _, key_id, secret = iam_user(deployer_document())
    cfg = config(endpoint__instance_type="ml.m5.4xlarge")

    report, _ = preflight(session_for(key_id, secret), cfg)

    check = by_name(report)["endpoint quota"]
    assert check.status == FAIL and not report.ok
    assert "ml.m5.4xlarge is not offered for endpoints in us-east-1" in check.message
    assert "'ml.m5.4xlarge for endpoint usage'" in check.message
    # Not found among the applied values, so the defaults were read too, to the last page.
    assert [op for op, _ in shims.quota_calls].count("ListAWSDefaultServiceQuotas") == 2


def test_quota_below_autoscaling_max_warns_but_passes(shims: PreflightShims) -> None:
    shims.applied[ENDPOINT_QUOTA] = 2
    _, key_id, secret = iam_user(deployer_document())

    report, output = preflight(session_for(key_id, secret))

    check = by_name(report)["endpoint quota"]
    assert check.status == WARN and report.ok
    assert "is 2: enough to deploy 1, but endpoint.autoscaling_max needs 4" in check.message
    assert "[warn]" in output


def test_training_quota_below_instance_count_fails(shims: PreflightShims) -> None:
    _, key_id, secret = iam_user(deployer_document())

    report, _ = preflight(session_for(key_id, secret), config(training__instance_count=3))

    check = by_name(report)["training quota"]
    assert check.status == FAIL
    assert f"'{TRAINING_QUOTA}'" in check.message and "is 2" in check.message
    assert "training.instance_count needs 3" in check.message


def test_serverless_checks_the_concurrency_quota(shims: PreflightShims) -> None:
    _, key_id, secret = iam_user(deployer_document())
    cfg = config(endpoint__mode="serverless", endpoint__serverless_max_concurrency=20)

    report, _ = preflight(session_for(key_id, secret), cfg)

    check = by_name(report)["endpoint quota"]
    assert check.status == FAIL
    assert f"'{SERVERLESS_QUOTA}'" in check.message and "is 10" in check.message
    assert "endpoint.serverless_max_concurrency needs 20" in check.message


# --- permissions ------------------------------------------------------------------------------


def test_a_caller_missing_two_deployer_actions_gets_both_listed(
    shims: PreflightShims, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    document = deployer_document(
        drop={
            "ProjectEndpointConfigs": {"sagemaker:CreateEndpoint"},
            "ProjectEndpoint": {"sagemaker:CreateEndpoint"},
            "ProjectFunction": {"lambda:AddPermission"},
        }
    )
    arn, key_id, secret = iam_user(document)
    use_credentials(monkeypatch, key_id, secret)

    status = main(["preflight", "--skip-docker"])

    out = capsys.readouterr().out
    assert status == 1
    prefix = f"arn:aws:sagemaker:us-east-1:{ACCOUNT}"
    assert f"[fail]     permissions: {arn} is denied 3 action/resource pairs of the deployer policy" in out
    config_arn = f"{prefix}:endpoint-config/adult-income-config-{PROBE}"
    assert f"ProjectEndpointConfigs: sagemaker:CreateEndpoint on {config_arn}" in out
    assert f"ProjectEndpoint: sagemaker:CreateEndpoint on {prefix}:endpoint/adult-income" in out
    function_arn = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:adult-income-proxy"
    assert f"ProjectFunction: lambda:AddPermission on {function_arn}" in out


def test_simulation_itself_denied_says_how_to_grant_it(shims: PreflightShims) -> None:
    arn, key_id, secret = iam_user(deployer_document(without={"PreflightSelfCheck"}))

    report, _ = preflight(session_for(key_id, secret))

    check = by_name(report)["permissions"]
    assert check.status == FAIL
    assert f"{arn} may not call iam:SimulatePrincipalPolicy on itself" in check.message
    assert "statement PreflightSelfCheck" in check.message


def test_assumed_role_caller_is_simulated_as_its_role_with_path(shims: PreflightShims) -> None:
    iam = boto3.client("iam", region_name="us-east-1")
    trust = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": ACCOUNT}, "Action": "sts:AssumeRole"}],
    }
    role = iam.create_role(
        RoleName="AWSReservedSSO_Deployer_0123",
        Path="/aws-reserved/sso.amazonaws.com/",
        AssumeRolePolicyDocument=json.dumps(trust),
    )["Role"]
    iam.put_role_policy(
        RoleName=role["RoleName"], PolicyName="deployer", PolicyDocument=json.dumps(deployer_document())
    )
    creds = boto3.client("sts", region_name="us-east-1").assume_role(
        RoleArn=role["Arn"], RoleSessionName="alice"
    )["Credentials"]
    session = boto3.Session(
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
        region_name="us-east-1",
    )

    report, _ = preflight(session)

    assert report.caller_arn == f"arn:aws:sts::{ACCOUNT}:assumed-role/AWSReservedSSO_Deployer_0123/alice"
    check = by_name(report)["permissions"]
    assert check.status == OK, check
    assert (
        role["Arn"]
        == f"arn:aws:iam::{ACCOUNT}:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_Deployer_0123"
    )
    assert check.message.startswith(f"{role['Arn']} is allowed all")
    assert {c["source"] for c in shims.simulated} == {role["Arn"]}


def test_probes_make_wildcard_resources_concrete_and_keep_bare_star() -> None:
    assert concrete("*") == "*"
    assert concrete("arn:aws:logs:us-east-1:1:log-group:*") == f"arn:aws:logs:us-east-1:1:log-group:{PROBE}"
    policy = deployer_policy.render(names_for(config(), ACCOUNT))
    all_probes = probes(policy)
    assert all("*" not in p.resource or p.resource == "*" for p in all_probes)
    covered = {a for p in all_probes for a in p.actions}
    assert covered == set(deployer_policy.actions(policy))
    slr = [p for p in all_probes if p.actions == ("iam:CreateServiceLinkedRole",)]
    assert [p.context for p in slr] == [
        (("iam:AWSServiceName", "sagemaker.application-autoscaling.amazonaws.com"),)
    ]


# --- credentials ------------------------------------------------------------------------------


def test_no_credentials_is_a_clear_message_without_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)

    status = main(["preflight", "--skip-docker"])

    out = capsys.readouterr()
    assert status == 1
    assert "[fail]     credentials: no AWS credentials found; configure them" in out.out
    for name in ("training quota", "endpoint quota", "permissions"):
        assert f"[skipped]  {name}: needs working credentials" in out.out
    assert "Traceback" not in out.out + out.err
    assert "[ok]       cost:" in out.out  # the estimate needs no AWS call


def test_preflight_failed_is_a_cloud_error_listing_each_failure() -> None:
    report = PreflightReport()
    from pipeline.cloud.checks import Check

    report.checks += [Check("docker", FAIL, "no docker"), Check("region", OK, "us-east-1")]
    error = PreflightFailed(report)
    assert isinstance(error, CloudError) and error.report is report
    assert str(error) == "preflight failed, nothing was created:\n  - docker: no docker"


# --- docker -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("facts", "status", "words"),
    [
        (DockerFacts(True, True, "aarch64", ("linux/arm64",)), FAIL, "buildx does not list linux/amd64"),
        (DockerFacts(True, True, "aarch64", ("linux/amd64", "linux/arm64")), OK, "emulated"),
        (
            DockerFacts(False, False, error="docker is not on PATH"),
            FAIL,
            "docker is not on PATH: install Docker",
        ),
        (
            DockerFacts(True, False, error="Cannot connect to the Docker daemon"),
            FAIL,
            "daemon is not reachable",
        ),
        (X86, OK, "natively"),
    ],
)
def test_docker_check(facts: DockerFacts, status: str, words: str) -> None:
    check = check_docker(lambda: facts)
    assert check.status == status and words in check.message


def test_docker_arm64_without_emulation_fails_the_preflight(shims: PreflightShims) -> None:
    _, key_id, secret = iam_user(deployer_document())

    report, output = preflight(
        session_for(key_id, secret), docker_probe=lambda: DockerFacts(True, True, "aarch64", ("linux/arm64",))
    )

    assert not report.ok and [c.name for c in report.failures] == ["docker"]
    assert "[fail]     docker: daemon is aarch64" in output


def test_docker_probe_parses_info_and_buildx(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: "/usr/bin/docker")
    outputs = {
        "info": subprocess.CompletedProcess([], 0, "aarch64\n", ""),
        "buildx": subprocess.CompletedProcess(
            [],
            0,
            "NAME/NODE DRIVER STATUS PLATFORMS\ndefault * docker\n"
            "  default running linux/arm64*, linux/amd64\n",
            "",
        ),
    }
    facts = probe_docker(lambda args: outputs[args[1]])
    assert facts == DockerFacts(True, True, "aarch64", ("linux/amd64", "linux/arm64"))
    down = probe_docker(
        lambda args: subprocess.CompletedProcess([], 1, "", "Cannot connect to the Docker daemon\n")
    )
    assert not down.daemon and down.error == "Cannot connect to the Docker daemon"


@pytest.mark.skipif(shutil.which("docker") is None, reason="needs a docker CLI")
def test_real_docker_on_this_machine() -> None:
    facts = probe_docker()
    check = check_docker(lambda: facts)
    expected = OK if facts.architecture in ("x86_64", "amd64") or "linux/amd64" in facts.platforms else FAIL
    assert facts.daemon, facts.error
    assert check.status == expected


# --- cost -------------------------------------------------------------------------------------


def test_serverless_cost_is_per_request_arithmetic_from_the_table() -> None:
    cost = estimate(
        config(endpoint__mode="serverless", endpoint__serverless_memory_mb=2048, lambda__memory_mb=512)
    )
    serverless = 2 * ASSUMED_REQUEST_SECONDS * PRICES["sagemaker"]["serverless"]["per_gb_second"] * 1e6
    lam = (
        PRICES["lambda"]["per_million_requests"]
        + 0.5 * ASSUMED_REQUEST_SECONDS * PRICES["lambda"]["duration"][ARCHITECTURE]["per_gb_second"] * 1e6
    )
    assert cost.serverless_per_million == pytest.approx(serverless)
    assert cost.lambda_per_million == pytest.approx(lam)
    assert cost.requests_per_million == pytest.approx(
        serverless + lam + PRICES["apigateway"]["rest_per_million_requests"]
    )
    assert cost.endpoint_hourly is None and hourly_cost(config(endpoint__mode="serverless")) == 0.0
    assert "100 ms per request in Lambda (arm64) and in the serverless endpoint" in "; ".join(
        cost.assumptions
    )


def test_lambda_is_priced_at_the_deployed_functions_architecture() -> None:
    cost = estimate(config(lambda__memory_mb=1024))
    arm64 = PRICES["lambda"]["duration"]["arm64"]["per_gb_second"]
    x86 = PRICES["lambda"]["duration"]["x86_64"]["per_gb_second"]
    assert ARCHITECTURE == "arm64" and arm64 < x86
    # 1 GB for ASSUMED_REQUEST_SECONDS, a million times, at the arm64 price (not the x86 one).
    expected = PRICES["lambda"]["per_million_requests"] + ASSUMED_REQUEST_SECONDS * arm64 * 1e6
    assert cost.lambda_architecture == "arm64"
    assert cost.lambda_per_million == pytest.approx(expected)
    assert cost.lambda_per_million != pytest.approx(
        PRICES["lambda"]["per_million_requests"] + ASSUMED_REQUEST_SECONDS * x86 * 1e6
    )


def test_each_priced_section_says_whether_it_was_confirmed(tmp_path: Path) -> None:
    prices = load_prices()
    assert prices.unconfirmed == ("sagemaker", "lambda.duration.arm64")
    assert set(prices.sources) == {
        "sagemaker",
        "lambda",
        "lambda.duration.x86_64",
        "lambda.duration.arm64",
        "apigateway",
    }
    text = PRICES_PATH.read_text()
    silent = tmp_path / "silent.toml"  # a sourced section that does not say whether it was confirmed
    arm64 = text.index("[lambda.duration.arm64]")
    silent.write_text(text[:arm64] + text[arm64:].replace("confirmed = false\n", "", 1))
    with pytest.raises(PriceTableError, match=r"lambda\.duration\.arm64\.confirmed"):
        load_prices(silent)


def test_a_table_without_the_functions_architecture_is_no_estimate(
    tmp_path: Path, shims: PreflightShims
) -> None:
    table = tmp_path / "x86-only.toml"
    text = PRICES_PATH.read_text()
    table.write_text(text[: text.index("[lambda.duration.arm64]")] + text[text.index("[apigateway]") :])
    prices = load_prices(table)
    with pytest.raises(PriceTableError, match="no Lambda duration price for arm64"):
        estimate(config(), prices)
    report, _ = preflight(boto3.Session(region_name="us-east-1"), prices=prices)
    check = by_name(report)["cost"]
    assert check.status == SKIPPED and "no Lambda duration price for arm64" in check.message


def test_missing_instance_price_and_other_region_are_said_not_failed(shims: PreflightShims) -> None:
    cfg = config(endpoint__instance_type="ml.c5.xlarge", project__region="eu-west-1")
    cost = estimate(cfg)
    lines = render(cost)
    assert cost.endpoint_hourly is None and hourly_cost(cfg) is None
    assert "prices are us-east-1 list prices; eu-west-1 differs (estimate only)" in lines
    assert "endpoint ml.c5.xlarge: no price in table" in lines
    assert hourly_cost(config()) == pytest.approx(PRICES["sagemaker"]["hosting"]["ml.m5.large"])


# --- the real CLI in a separate process against a moto server ---------------------------------


@pytest.fixture
def moto_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, PreflightShims]]:
    from moto.server import ThreadedMotoServer

    shims = install(monkeypatch)  # the server runs in this process, so the shims apply to it
    good_quotas(shims)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}", shims
    finally:
        server.stop()


def test_cli_process_over_http(moto_server: tuple[str, PreflightShims], tmp_path: Path) -> None:
    url, shims = moto_server
    iam = boto3.client(
        "iam", endpoint_url=url, region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t"
    )
    name = f"ci-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName="deployer", PolicyDocument=json.dumps(deployer_document()))
    key = iam.create_access_key(UserName=name)["AccessKey"]

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ADULT_"))}
        env.update(
            AWS_ACCESS_KEY_ID=key["AccessKeyId"],
            AWS_SECRET_ACCESS_KEY=key["SecretAccessKey"],
            AWS_DEFAULT_REGION="us-east-1",
            AWS_CONFIG_FILE="/nonexistent",
            AWS_SHARED_CREDENTIALS_FILE="/nonexistent",
            AWS_EC2_METADATA_DISABLED="true",
            AWS_ENDPOINT_URL=url,
        )
        return subprocess.run(
            [sys.executable, "-m", "pipeline", "preflight", "--skip-docker", *args],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    passed = cli("--json")
    assert passed.returncode == 0, passed.stdout + passed.stderr
    document = json.loads(passed.stdout)
    assert document["caller_arn"] == f"arn:aws:iam::{ACCOUNT}:user/{name}"
    assert {c["name"]: c["status"] for c in document["checks"]}["permissions"] == OK

    shims.applied[ENDPOINT_QUOTA] = 0
    failed = cli()
    assert failed.returncode == 1
    assert f"[fail]     endpoint quota: '{ENDPOINT_QUOTA}'" in failed.stdout
    assert "Traceback" not in failed.stderr
    assert SKIPPED not in {c["status"] for c in document["checks"] if c["name"] != "docker"}


def test_an_unexpected_aws_error_in_a_check_becomes_a_failed_check(shims: PreflightShims) -> None:
    # The caller's user is deleted after STS answered: SimulatePrincipalPolicy then fails (NoSuchEntity).
    arn, key_id, secret = iam_user(deployer_document())
    session = session_for(key_id, secret)
    iam = boto3.client("iam", region_name="us-east-1")
    name = arn.rsplit("/", 1)[-1]

    def delete_user(**kwargs: Any) -> None:
        for policy in iam.list_attached_user_policies(UserName=name)["AttachedPolicies"]:
            iam.detach_user_policy(UserName=name, PolicyArn=policy["PolicyArn"])
        iam.delete_access_key(UserName=name, AccessKeyId=key_id)
        iam.delete_user(UserName=name)

    session.events.register("before-call.iam.SimulatePrincipalPolicy", delete_user)

    report, _ = preflight(session)

    check = by_name(report)["permissions"]
    assert check.status == FAIL
    assert check.message.startswith("could not be checked: SimulatePrincipalPolicy failed with")
    assert report.checks[-1].name == "cost"  # the report still completes


# --- deploy runs preflight first ----------------------------------------------------------------


def test_deploy_stops_before_creating_anything_when_preflight_fails(shims: PreflightShims, tmp_path) -> None:
    from cloud_stack import Stack

    shims.applied[ENDPOINT_QUOTA] = 0
    _, key_id, secret = iam_user(deployer_document())
    stack = Stack(tmp_path, session=session_for(key_id, secret))
    with pytest.raises(PreflightFailed) as failed:
        stack.deploy(preflight=True)
    assert ENDPOINT_QUOTA in str(failed.value)
    assert "nothing was created" in str(failed.value)
    # Preflight only reads and simulates; nothing was created anywhere.
    assert {op for _, op in stack.mutating_calls()} <= {"SimulatePrincipalPolicy"}
    assert stack.client("sagemaker").list_endpoints()["Endpoints"] == []
    assert stack.client("ecr").describe_repositories()["repositories"] == []


def test_deploy_with_a_passing_preflight_goes_on_and_prints_the_cost_per_hour(
    shims: PreflightShims, tmp_path
) -> None:
    from cloud_stack import Stack

    _, key_id, secret = iam_user(deployer_document())
    stack = Stack(tmp_path, session=session_for(key_id, secret))
    result = stack.deploy(preflight=True)
    out = stack.output.getvalue()
    assert result.invoke_url.endswith("/prod")
    assert out.index("Preflight") < out.index("AWS account and resource group")
    hourly = hourly_cost(config())
    assert hourly == PRICES["sagemaker"]["hosting"]["ml.m5.large"]
    assert f"cost:       ${hourly:.4f} per hour for 1 x ml.m5.large" in out
