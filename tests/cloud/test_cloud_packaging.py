"""What deploy ships: the Lambda zip (reproducible, stdlib + boto3 only) and the image tag by content."""

from __future__ import annotations

import ast
import io
import subprocess
import sys
import zipfile
from pathlib import Path

from pipeline.cloud.ecr import build_commands, source_tag
from pipeline.cloud.lambda_function import build_zip, code_sha256

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "lambda_proxy"


def test_lambda_zip_is_reproducible_and_holds_only_the_package() -> None:
    first, second = build_zip(PACKAGE), build_zip(PACKAGE)
    assert first == second
    assert code_sha256(first) == code_sha256(second)
    names = zipfile.ZipFile(io.BytesIO(first)).namelist()
    assert "lambda_proxy/handler.py" in names and "lambda_proxy/__init__.py" in names
    assert all(n.startswith("lambda_proxy/") and n.endswith(".py") for n in names)


def test_lambda_package_imports_only_stdlib_boto3_and_itself() -> None:
    allowed = set(sys.stdlib_module_names) | {"boto3", "botocore", "lambda_proxy", "__future__"}
    for path in PACKAGE.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                roots = [alias.name.split(".")[0] for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                roots = [(node.module or "").split(".")[0]]
            else:
                continue
            assert set(roots) <= allowed, f"{path.name} imports {roots}"


def test_handler_imports_from_the_unpacked_zip(tmp_path) -> None:
    zipfile.ZipFile(io.BytesIO(build_zip(PACKAGE))).extractall(tmp_path)
    # A fresh interpreter with only the zip's root on the path (plus site-packages for boto3), as in Lambda.
    code = "import lambda_proxy.handler as h, sys; assert h.__file__.startswith(sys.argv[1]); print('ok')"
    result = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.stdout.strip() == "ok", result.stderr


def _tree(root: Path) -> None:
    for rel, text in {
        "requirements.txt": "flask==3\n",
        "container/Dockerfile": "FROM debian:bookworm-slim\n",
        "pipeline/schema.py": "SCHEMA = 1\n",
        "pipeline/cloud/deploy.py": "x = 1\n",
        "data/adult.data": "39, State-gov\n",
        ".dockerignore": (REPO / ".dockerignore").read_text(),
    }.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_image_tag_follows_the_build_context_only(tmp_path) -> None:
    _tree(tmp_path)
    tag = source_tag(tmp_path)
    assert tag.startswith("src-") and len(tag) == 16
    (tmp_path / "pipeline/cloud/deploy.py").write_text("x = 2\n")  # not in the image (.dockerignore)
    (tmp_path / "pipeline/__pycache__").mkdir()
    (tmp_path / "pipeline/__pycache__/schema.cpython-311.pyc").write_bytes(b"\0")
    (tmp_path / "README.md").write_text("docs\n")
    (tmp_path / "data/adult.data").write_text("40, Private\n")  # data reaches jobs through S3, not the image
    assert source_tag(tmp_path) == tag
    (tmp_path / "pipeline/schema.py").write_text("SCHEMA = 2\n")  # in the image
    changed = source_tag(tmp_path)
    assert changed != tag
    (tmp_path / "container/Dockerfile").write_text("FROM debian:trixie-slim\n")  # builds the image
    assert source_tag(tmp_path) != changed


def test_docker_commands_are_exact() -> None:
    image = "123456789012.dkr.ecr.us-east-1.amazonaws.com/adult-income:src-0123456789ab"
    registry = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
    assert build_commands(image, registry) == [
        ["docker", "build", "--platform", "linux/amd64", "-f", "container/Dockerfile", "-t", image, "."],
        ["docker", "login", "--username", "AWS", "--password-stdin", registry],
        ["docker", "push", image],
    ]


def test_buildkit_builds_add_provenance_false() -> None:
    # BuildKit's default provenance attestation turns the push into an OCI index SageMaker rejects.
    image = "123456789012.dkr.ecr.us-east-1.amazonaws.com/adult-income:src-0123456789ab"
    build, _, _ = build_commands(image, "123456789012.dkr.ecr.us-east-1.amazonaws.com", buildkit=True)
    assert build[:5] == ["docker", "build", "--platform", "linux/amd64", "--provenance=false"]
