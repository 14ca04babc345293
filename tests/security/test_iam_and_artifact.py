"""What deploy grants in IAM, and what the serving stack refuses to unpack or unpickle.

Complements tests/cloud (the roles as created in moto, role by role) and tests/model (the common
unsafe tar entries): here every policy document the code can produce is scanned for wildcards with
one rule, and an artifact carrying a malicious pickle is shown never to be unpickled, in the library
and in the running container.
"""

from __future__ import annotations

import ast
import io
import pathlib
import pickle
import shutil
import tarfile
from pathlib import Path
from typing import Any

import pytest
import requests

from bench.live import ServeRun
from pipeline.artifact import ChecksumMismatchError, UnsafeArchiveError, load_artifact, safe_extract
from pipeline.cloud import apigateway, iam
from pipeline.cloud.config import load_config
from pipeline.cloud.names import names_for

REPO_ROOT = Path(__file__).resolve().parents[2]
ACCOUNT = "123456789012"
# Actions AWS does not let a policy scope to a resource: only these may have Resource "*".
NO_RESOURCE_LEVEL = {"ecr:GetAuthorizationToken", "cloudwatch:PutMetricData"}


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _documents() -> dict[str, dict[str, Any]]:
    names = names_for(load_config(), ACCOUNT)
    return {"sagemaker": iam.sagemaker_policy(names), "lambda": iam.lambda_policy(names)}


@pytest.mark.parametrize("role", ["sagemaker", "lambda"])
def test_policies_have_no_wildcard_actions_and_star_resources_only_where_aws_requires(role: str) -> None:
    names = names_for(load_config(), ACCOUNT)
    for statement in _documents()[role]["Statement"]:
        assert statement["Effect"] == "Allow"
        assert not {"NotAction", "NotResource", "NotPrincipal"} & set(statement)
        actions = _as_list(statement["Action"])
        assert all("*" not in action and "?" not in action for action in actions), actions
        assert not any(a.startswith("iam:") for a in actions), actions  # no PassRole or role editing
        for resource in _as_list(statement["Resource"]):
            if resource == "*":
                assert set(actions) <= NO_RESOURCE_LEVEL, actions
                continue
            assert resource.count("*") <= 1 and (
                resource.endswith(":*") or resource.endswith("/*") or "*" not in resource
            )
            # Every other resource names this project (and, where ARNs carry one, this account), except
            # the log group SageMaker itself names for all training jobs of an account.
            shared = resource.startswith(
                f"arn:aws:logs:{names.region}:{ACCOUNT}:log-group:/aws/sagemaker/TrainingJobs:"
            )
            assert names.prefix in resource or names.bucket in resource or shared, resource
            if resource.startswith(("arn:aws:logs", "arn:aws:ecr", "arn:aws:sagemaker")):
                assert f":{ACCOUNT}:" in resource, resource


def test_roles_trust_one_service_and_carry_only_the_generated_policy() -> None:
    names = names_for(load_config(), ACCOUNT)
    for service in ("sagemaker.amazonaws.com", "lambda.amazonaws.com"):
        [statement] = iam.trust_policy(service, names)["Statement"]
        assert statement["Principal"] == {"Service": service} and statement["Action"] == "sts:AssumeRole"
        # Confused deputy: only this account's SageMaker jobs/endpoints or Lambda functions may assume it.
        assert statement["Condition"]["StringEquals"] == {"aws:SourceAccount": ACCOUNT}
        if service.startswith("sagemaker"):
            assert statement["Condition"]["ArnLike"] == {
                "aws:SourceArn": f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:*"
            }
    cloud_sources = {
        p.name: p.read_text(encoding="utf-8") for p in (REPO_ROOT / "pipeline" / "cloud").glob("*.py")
    }
    for name, source in cloud_sources.items():
        assert "attach_role_policy(" not in source, f"{name} attaches a managed policy"
        assert "arn:aws:iam::aws:policy" not in source, f"{name} names an AWS managed policy"
    # The only inline policies put on roles are the two documents scanned above.
    deploy = ast.parse(cloud_sources["deploy.py"])
    policies = [
        ast.unparse(call.args[4])
        for call in ast.walk(deploy)
        if isinstance(call, ast.Call) and ast.unparse(call.func) == "iam.ensure_role"
    ]
    assert sorted(policies) == ["iam.lambda_policy(names)", "iam.sagemaker_policy(names)"]
    assert cloud_sources["iam.py"].count("put_role_policy(") == 1


def test_api_gateway_may_invoke_the_lambda_only_from_this_apis_routes() -> None:
    names = names_for(load_config(), ACCOUNT)
    arn = apigateway.source_arn(names, "abc123", "POST", "predict")
    assert arn == f"arn:aws:execute-api:{names.region}:{ACCOUNT}:abc123/{names.stage}/POST/predict"
    source = (REPO_ROOT / "pipeline" / "cloud" / "lambda_function.py").read_text(encoding="utf-8")
    assert "SourceArn=source_arn" in source and "SourceAccount=names.account_id" in source


# --- the artifact ----------------------------------------------------------------------------


class _Evil:
    """Unpickling this creates the file ``marker``: proof that unpickling happened."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return (pathlib.Path.touch, (pathlib.Path(self.marker),))


@pytest.fixture
def poisoned_model(quick_model_dir: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A copy of the quick model whose model.joblib was replaced by a malicious pickle."""
    model_dir = Path(shutil.copytree(quick_model_dir, tmp_path / "model"))
    marker = tmp_path / "UNPICKLED"
    (model_dir / "model.joblib").write_bytes(pickle.dumps(_Evil(marker)))
    return model_dir, marker


def test_a_replaced_model_file_is_refused_before_unpickling(poisoned_model: tuple[Path, Path]) -> None:
    model_dir, marker = poisoned_model
    with pytest.raises(ChecksumMismatchError, match="SHA-256"):
        load_artifact(model_dir)
    assert not marker.exists(), "the malicious pickle was unpickled"


def test_the_container_never_unpickles_a_replaced_model_file(
    poisoned_model: tuple[Path, Path], tmp_path: Path
) -> None:
    model_dir, marker = poisoned_model
    server = ServeRun(model_dir, tmp_path / "logs", workers=1)
    try:
        with pytest.raises(RuntimeError, match="did not answer 200"):
            server.start(wait_s=20)
        ping = requests.get(f"{server.url}/ping", timeout=5)
        assert ping.status_code == 503
        assert ping.json()["error"]["code"] == "model_not_ready"
        assert "SHA-256" in ping.json()["error"]["message"]
    finally:
        server.stop()
    assert not marker.exists(), "the malicious pickle was unpickled"


def _tar_with(members: list[tarfile.TarInfo], path: Path) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for member in members:
            tar.addfile(member, io.BytesIO(b"x" * member.size) if member.isfile() else None)
    return path


def _member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    info.size = 1 if kind == tarfile.REGTYPE else 0
    return info


@pytest.mark.parametrize(
    "members",
    [
        [_member("fifo", tarfile.FIFOTYPE)],
        [_member("tty", tarfile.CHRTYPE)],
        [_member("disk", tarfile.BLKTYPE)],
        [_member("C:/Windows/evil")],
        [_member("\\\\server\\share\\evil")],
        [_member("ok.txt"), _member("inner", tarfile.SYMTYPE, "sub/../../outside")],
        [_member("ok.txt"), _member("hard", tarfile.LNKTYPE, "/etc/passwd")],
    ],
    ids=[
        "fifo",
        "chardev",
        "blockdev",
        "drive-letter",
        "unc-path",
        "symlink-via-dotdot",
        "hardlink-absolute",
    ],
)
def test_unsafe_archives_are_refused_before_anything_is_written(
    tmp_path: Path, members: list[tarfile.TarInfo]
) -> None:
    archive = _tar_with(members, tmp_path / "model.tar.gz")
    dest = tmp_path / "extract"
    with pytest.raises(UnsafeArchiveError):
        safe_extract(archive, dest)
    assert not dest.exists() or not any(dest.iterdir())
    assert not (tmp_path / "outside").exists()
