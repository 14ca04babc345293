"""Can this machine build the linux/amd64 image SageMaker runs? (docker on PATH, daemon up, amd64.)

SageMaker hosts x86_64 images only (see pipeline.cloud.ecr.PLATFORM). On an x86_64 daemon that is
native; elsewhere (Apple silicon, arm64 Linux) buildx must list linux/amd64, i.e. QEMU emulation is
installed. The probe runs read-only docker commands with a timeout and is injectable for tests.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from pipeline.cloud.checks import FAIL, OK, Check

TIMEOUT_S = 20.0
NATIVE_AMD64 = ("x86_64", "amd64")


@dataclass(frozen=True)
class DockerFacts:
    """What the probe saw; ``error`` is set when docker is missing or its daemon is unreachable."""

    installed: bool
    daemon: bool
    architecture: str = ""
    platforms: tuple[str, ...] = field(default_factory=tuple)
    error: str = ""


DockerProbe = Callable[[], DockerFacts]
Runner = Callable[[Sequence[str]], subprocess.CompletedProcess[str]]


def _run(args: Sequence[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=TIMEOUT_S, check=False)


def probe_docker(run: Runner = _run) -> DockerFacts:
    """Ask the local docker: is it there, is the daemon up, its architecture, buildx's platforms."""
    if shutil.which("docker") is None:
        return DockerFacts(installed=False, daemon=False, error="docker is not on PATH")
    try:
        info = run(["docker", "info", "--format", "{{.Architecture}}"])
    except subprocess.TimeoutExpired:
        return DockerFacts(True, False, error=f"`docker info` did not answer within {TIMEOUT_S:g} s")
    if info.returncode != 0:
        reason = (info.stderr or info.stdout).strip().splitlines()
        return DockerFacts(
            True, False, error=reason[-1] if reason else f"docker info exited {info.returncode}"
        )
    architecture = info.stdout.strip()
    try:
        buildx = run(["docker", "buildx", "ls"])
        listing = buildx.stdout if buildx.returncode == 0 else ""
    except subprocess.TimeoutExpired:
        listing = ""
    platforms = tuple(
        sorted({p.strip().rstrip("*") for p in listing.replace(",", " ").split() if p.startswith("linux/")})
    )
    return DockerFacts(True, True, architecture, platforms)


def check_docker(probe: DockerProbe = probe_docker) -> Check:
    """Fail unless an image for linux/amd64 can be built here."""
    facts = probe()
    if not facts.installed:
        return Check(
            "docker",
            FAIL,
            f"{facts.error}: install Docker (or pass --image-uri with an image already in ECR)",
        )
    if not facts.daemon:
        return Check(
            "docker", FAIL, f"the Docker daemon is not reachable ({facts.error}): start Docker and retry"
        )
    if facts.architecture in NATIVE_AMD64:
        return Check("docker", OK, f"daemon is {facts.architecture}: builds linux/amd64 natively")
    if "linux/amd64" in facts.platforms:
        return Check(
            "docker",
            OK,
            f"daemon is {facts.architecture}; buildx lists linux/amd64 (emulated: builds are slower)",
        )
    return Check(
        "docker",
        FAIL,
        f"daemon is {facts.architecture or 'of unknown architecture'} and buildx does not list linux/amd64, "
        "so the image would not run on SageMaker (x86_64 only). Install amd64 emulation "
        "(`docker run --privileged --rm tonistiigi/binfmt --install amd64`, or enable it in Docker Desktop), "
        "build on an x86_64 machine, or pass --image-uri",
    )
