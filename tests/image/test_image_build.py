"""The built image: SageMaker metadata, size, and exactly the runtime the training lock pins."""

from __future__ import annotations

import json
import re

import pytest

from .conftest import REPO_ROOT
from .docker_cli import docker, inspect

pytestmark = pytest.mark.docker

MAX_IMAGE_BYTES = 600e6  # measured ~495 MB; a jump past this means something unintended got in


def test_metadata_follows_the_sagemaker_contract(image: str) -> None:
    meta = inspect("image", image)
    config = meta["Config"]
    assert config["Labels"]["com.amazonaws.sagemaker.capabilities.accept-bind-to-port"] == "true"
    # SageMaker runs `docker run IMAGE serve|train`: the argument replaces CMD and must not be handed
    # to an ENTRYPOINT (tini included, which SageMaker documents as unsupported).
    assert not config.get("Entrypoint")
    assert config["Cmd"] == ["serve"]
    assert "8080/tcp" in config["ExposedPorts"]
    assert config.get("User", "") in ("", "root", "0")  # SageMaker requires root
    env = dict(item.split("=", 1) for item in config["Env"])
    assert env["PATH"].startswith("/opt/program:/opt/venv/bin:")
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["PYTHONUNBUFFERED"] == "1"
    assert meta["Os"] == "linux"
    assert meta["Architecture"] == "amd64"  # SageMaker runs x86_64 only


def test_image_size_is_bounded(image: str) -> None:
    size = inspect("image", image)["Size"]
    assert size < MAX_IMAGE_BYTES, f"image is {size / 1e6:.0f} MB (bound {MAX_IMAGE_BYTES / 1e6:.0f} MB)"


# Runs inside the image: everything the runtime environment must and must not contain, as JSON.
_PROBE = r"""
import importlib.util, json, os, shutil, sys
from importlib import metadata
site = [p for p in sys.path if p.endswith("site-packages")][0]
print(json.dumps({
    "python": "%d.%d" % sys.version_info[:2],
    "executable": sys.executable,
    "dists": sorted(f"{d.metadata['Name']}=={d.version}" for d in metadata.distributions()),
    "importable": {m: importlib.util.find_spec(m) is not None for m in ("pip", "setuptools", "boto3")},
    "program": sorted(os.listdir("/opt/program")),
    "pipeline": sorted(os.listdir("/opt/program/pipeline")),
    "executables": {n: shutil.which(n) for n in ("serve", "train", "nginx", "python")},
    "test_dirs": [r for r, ds, _ in os.walk(site) if os.path.basename(r) == "tests"],
}))
"""


@pytest.fixture(scope="module")
def probe(image: str) -> dict:
    return json.loads(docker("run", "--rm", image, "python", "-c", _PROBE, timeout=120).stdout)


def _canonical(requirement: str) -> str:
    name, version = requirement.split("==")
    return f"{re.sub(r'[-_.]+', '-', name).lower()}=={version}"


def test_runtime_environment_is_exactly_the_training_lock(probe: dict) -> None:
    lock = [
        line.split("#")[0].strip()
        for line in (REPO_ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines()
    ]
    want = sorted(_canonical(r) for r in lock if r)
    assert sorted(_canonical(d) for d in probe["dists"]) == want
    assert probe["python"] == "3.11"
    assert probe["executable"] == "/opt/venv/bin/python"


def test_build_tooling_and_cloud_code_are_not_in_the_image(probe: dict) -> None:
    assert probe["importable"] == {"pip": False, "setuptools": False, "boto3": False}
    assert "cloud" not in probe["pipeline"] and "local" not in probe["pipeline"]
    assert "__init__.py" in probe["pipeline"] and "sagemaker_training.py" in probe["pipeline"]
    assert probe["test_dirs"] == []


def test_program_directory_holds_the_entry_points_and_nothing_else(probe: dict) -> None:
    assert set(probe["program"]) == {
        "serve", "train", "nginx.conf", "gunicorn.conf.py", "wsgi.py", "inference", "pipeline", "__pycache__",
    }  # fmt: skip
    assert probe["executables"] == {
        "serve": "/opt/program/serve",
        "train": "/opt/program/train",
        "nginx": "/usr/sbin/nginx",
        "python": "/opt/venv/bin/python",
    }


def test_build_is_cached_when_nothing_changed(image: str) -> None:
    """A rebuild with no source change reuses every layer (code is copied after the dependencies)."""
    args = ("build", "-f", "container/Dockerfile", "-t", image, ".")
    docker(*args, timeout=600, cwd=REPO_ROOT)  # catches up with any edit since the session's build
    proc = docker(*args, timeout=600, cwd=REPO_ROOT)
    steps = len(re.findall(r"^Step \d+/\d+ : (?:RUN|COPY)", proc.stdout, flags=re.MULTILINE))
    if steps == 0:  # BuildKit output (buildx installed): no step lines to count
        assert "CACHED" in proc.stdout + proc.stderr
        return
    assert proc.stdout.count("Using cache") >= steps, proc.stdout[-3000:]
