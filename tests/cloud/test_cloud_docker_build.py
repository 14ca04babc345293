"""The deploy's image build command, run for real on the local engine (push needs ECR, so it is not).

Builds a one-line image from a scratch tree laid out like the repository (``container/Dockerfile``,
context ``.``), through the same runner and argv deploy uses, so ``--platform linux/amd64`` is proven
to work with the engine CI runs. On a machine without an engine the test is skipped with the way to
start one; in CI (``CI`` set) a missing engine is a failure.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from pipeline.cloud.ecr import PLATFORM, build_commands
from pipeline.cloud.progress import Progress
from pipeline.cloud.shell import SubprocessRunner

pytestmark = pytest.mark.docker


def _engine_problem() -> str | None:
    if shutil.which("docker") is None:
        return "docker is not installed"
    try:
        proc = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=20, check=False)
    except subprocess.TimeoutExpired:
        return "`docker info` did not answer"
    return None if proc.returncode == 0 else "no Docker engine is running"


@pytest.fixture
def engine() -> None:
    problem = _engine_problem()
    if problem:
        if os.environ.get("CI"):
            pytest.fail(f"{problem}; CI must run the docker tests (.ci/run starts the engine)")
        pytest.skip(f"{problem}: start one with `bash scripts/docker-up.sh` to run this test")


def test_build_command_builds_a_linux_amd64_image(engine, tmp_path: Path) -> None:
    (tmp_path / "container").mkdir()
    (tmp_path / "container" / "Dockerfile").write_text(
        "FROM debian:bookworm-slim\nCOPY marker.txt /marker.txt\n"
    )
    (tmp_path / "marker.txt").write_text("built by the cloud deploy test\n")
    image = f"adult-income-cloudtest:{uuid.uuid4().hex[:10]}"
    build, _, _ = build_commands(image, "registry.invalid")
    out = io.StringIO()
    try:
        SubprocessRunner(Progress(out)).run(build, cwd=tmp_path)
        inspect = subprocess.run(
            ["docker", "image", "inspect", "--format", "{{.Os}}/{{.Architecture}}", image],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        )
        assert inspect.stdout.strip() == PLATFORM
        assert f"$ docker build --platform {PLATFORM} -f container/Dockerfile -t {image} ." in out.getvalue()
    finally:
        subprocess.run(["docker", "rmi", "-f", image], capture_output=True, check=False, timeout=60)


def test_image_tag_hashes_exactly_the_files_docker_sends(engine) -> None:
    """The content tag's file list equals the build context Docker itself sees from this repository.

    A file outside the context (the Dockerfile aside) must not change the tag, and every file inside
    it must; so the list is compared with a real build that copies its whole context and lists it.
    """
    from pipeline.cloud.ecr import context_files

    repo_root = Path(__file__).resolve().parents[2]
    image = f"adult-income-contexttest:{uuid.uuid4().hex[:10]}"
    probe = "FROM debian:bookworm-slim\nCOPY . /ctx\n"
    try:
        build = subprocess.run(
            ["docker", "build", "-f", "-", "-t", image, "."],
            input=probe,
            cwd=repo_root,
            capture_output=True,
            text=True,
            timeout=300,
            check=True,
            env={**os.environ, "DOCKER_BUILDKIT": "0"},
        )
        listed = subprocess.run(
            ["docker", "run", "--rm", image, "sh", "-c", "cd /ctx && find . -type f | sort"],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout.split()
    finally:
        subprocess.run(["docker", "rmi", "-f", image], capture_output=True, check=False, timeout=60)
    sent = sorted(p.removeprefix("./") for p in listed)
    ours = sorted(p.relative_to(repo_root).as_posix() for p in context_files(repo_root))
    assert build.returncode == 0
    assert ours == sent
