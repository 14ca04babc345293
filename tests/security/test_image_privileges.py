"""In the real image (run as SageMaker runs it: root, /opt/ml/model read-only), only the processes that
need root keep it: the gunicorn workers and nginx's workers run as nobody."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import requests

from bench.live import RECORD, free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
IMAGE = os.environ.get("BYOC_TEST_IMAGE", "adult-income-byoc:test")
NOBODY = 65534

pytestmark = pytest.mark.docker


def _docker(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture(scope="module")
def image() -> str:
    """The image, built from the repository (layer cache: instant when tests/image built it first)."""
    if shutil.which("docker") is None or _docker("info", timeout=20).returncode != 0:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("CI=true: a Docker engine must answer (bash scripts/docker-up.sh)", pytrace=False)
        pytest.skip("no Docker engine answers `docker info`; start one with `bash scripts/docker-up.sh`")
    built = subprocess.run(
        ["docker", "build", "-q", "-f", "container/Dockerfile", "-t", IMAGE, "."],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=1200, check=False,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr[-3000:]
    return IMAGE


def _uids(container: str) -> list[tuple[int, str]]:
    script = (
        'for d in /proc/[0-9]*; do u=$(sed -n "s/^Uid:\\t\\([0-9]*\\).*/\\1/p" $d/status); '
        'echo "$u $(tr "\\0" " " < $d/cmdline)"; done'
    )
    out = _docker("exec", container, "sh", "-c", script).stdout
    rows = []
    for line in out.splitlines():
        uid, _, cmd = line.partition(" ")
        if uid.isdigit() and cmd.strip():
            rows.append((int(uid), cmd.strip()))
    return rows


def test_image_workers_run_without_root(image: str, quick_model_dir: Path) -> None:
    port = free_port()
    started = _docker(
        "run", "-d", "--rm", "-p", f"127.0.0.1:{port}:8080",
        "-v", f"{quick_model_dir}:/opt/ml/model:ro", "-e", "SAGEMAKER_MODEL_SERVER_WORKERS=2", image, "serve",
    )  # fmt: skip
    assert started.returncode == 0, started.stderr
    container = started.stdout.strip()
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if requests.get(f"http://127.0.0.1:{port}/ping", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.3)
        response = requests.post(f"http://127.0.0.1:{port}/invocations", json=RECORD, timeout=30)
        assert response.status_code == 200, response.text
        time.sleep(0.5)
        processes = _uids(container)
        gunicorn = [(uid, cmd) for uid, cmd in processes if "gunicorn" in cmd]
        workers = [uid for uid, cmd in gunicorn if uid != 0]
        masters = [uid for uid, cmd in gunicorn if uid == 0]
        assert len(masters) == 1, processes  # the master loaded the model as root and forks
        assert workers == [NOBODY, NOBODY], processes
        nginx_workers = [uid for uid, cmd in processes if "nginx: worker" in cmd]
        assert nginx_workers and set(nginx_workers) == {NOBODY}, processes
    finally:
        _docker("stop", "-t", "30", container, timeout=60)
