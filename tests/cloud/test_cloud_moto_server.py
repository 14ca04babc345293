"""The real CLI, as separate processes, against a moto server on loopback (real HTTP, env endpoints).

deploy (with an existing image and model artifact, so no docker and no training), status, keys and
teardown all run as ``python -m pipeline ...`` with ``AWS_ENDPOINT_URL`` pointing at moto, as an IAM
user holding the deployer policy. The first deploy runs its preflight for real against the server
(with the test-only SimulatePrincipalPolicy and Service Quotas shims in tests/cloud/preflight_shims.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from secret_checks import assert_absent

REPO = Path(__file__).resolve().parents[2]
ACCOUNT = "123456789012"
BUCKET = f"adult-income-{ACCOUNT}-us-east-1"
MODEL_DATA = f"s3://{BUCKET}/adult-income/models/model.tar.gz"
IMAGE = f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/adult-income:prebuilt"


@pytest.fixture
def moto_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    from moto.server import ThreadedMotoServer
    from moto_shims import install as install_moto_shims
    from preflight_shims import install

    install_moto_shims(monkeypatch)  # the server runs in this process, so the patches reach it
    shims = install(monkeypatch)
    shims.applied.update({"ml.m5.large for endpoint usage": 4, "ml.m5.large for training job usage": 1})

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def deployer_user(url: str) -> tuple[str, str]:
    """An IAM user on the server holding the rendered deployer policy: (access key id, secret)."""
    from pipeline.cloud import deployer_policy
    from pipeline.cloud.config import load_config
    from pipeline.cloud.names import names_for

    iam = boto3.client(
        "iam", endpoint_url=url, region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t"
    )
    document = deployer_policy.render(names_for(load_config(), ACCOUNT))
    iam.create_user(UserName="deployer")
    iam.put_user_policy(UserName="deployer", PolicyName="deployer", PolicyDocument=json.dumps(document))
    key = iam.create_access_key(UserName="deployer")["AccessKey"]
    return key["AccessKeyId"], key["SecretAccessKey"]


def cli(url: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ADULT_"))}
    key_id, secret = (tmp_path / "deployer.credentials").read_text().split()
    env.update(
        AWS_ACCESS_KEY_ID=key_id,
        AWS_SECRET_ACCESS_KEY=secret,
        AWS_DEFAULT_REGION="us-east-1",
        AWS_CONFIG_FILE="/nonexistent",
        AWS_SHARED_CREDENTIALS_FILE="/nonexistent",
        AWS_EC2_METADATA_DISABLED="true",
        AWS_ENDPOINT_URL=url,
        SECRETS_DIR=str(tmp_path / "secrets"),
    )
    return subprocess.run(
        [sys.executable, "-m", "pipeline", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_deploy_status_keys_teardown_over_http(moto_server: str, tmp_path: Path) -> None:
    s3 = boto3.client(
        "s3",
        endpoint_url=moto_server,
        region_name="us-east-1",
        aws_access_key_id="t",
        aws_secret_access_key="t",
    )
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="adult-income/models/model.tar.gz", Body=b"artifact")
    (tmp_path / "deployer.credentials").write_text(" ".join(deployer_user(moto_server)))

    deployed = cli(
        moto_server,
        tmp_path,
        "deploy",
        "--image-uri",
        IMAGE,
        "--model-data",
        MODEL_DATA,
        "--poll-seconds",
        "0",
    )
    assert deployed.returncode == 0, deployed.stderr
    assert "Preflight" in deployed.stdout and "permissions" in deployed.stdout
    assert "invoke URL: https://" in deployed.stdout and "/prod/predict" in deployed.stdout
    [key_file] = (tmp_path / "secrets").glob("*.key")
    assert_absent(key_file.read_text().strip(), deployed.stdout, deployed.stderr)

    again = cli(
        moto_server,
        tmp_path,
        "deploy",
        "--image-uri",
        IMAGE,
        "--model-data",
        MODEL_DATA,
        "--poll-seconds",
        "0",
        "--skip-preflight",
    )
    assert again.returncode == 0, again.stderr
    assert "Preflight" not in again.stdout
    assert "already uses" in again.stdout and "key(s) already on the plan" in again.stdout

    status = cli(moto_server, tmp_path, "status")
    assert status.returncode == 0, status.stderr
    assert "adult-income: InService" in status.stdout

    created = cli(moto_server, tmp_path, "keys", "create", "ci")
    assert created.returncode == 0, created.stderr
    listed = cli(moto_server, tmp_path, "keys", "list")
    assert "adult-income-ci" in listed.stdout and "adult-income-default" in listed.stdout

    gone = cli(moto_server, tmp_path, "teardown", "--yes", "--poll-seconds", "0")
    assert gone.returncode == 0, gone.stderr
    assert "Everything deploy created is gone" in gone.stdout
    after = cli(moto_server, tmp_path, "status")
    assert "endpoint       absent" in after.stdout and "usage plan     absent" in after.stdout
    # The bucket existed before deploy (created above, untagged): kept, with our prefix emptied.
    assert s3.list_objects_v2(Bucket=BUCKET).get("KeyCount") == 0
