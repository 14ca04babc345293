"""A thin layer over the ``docker`` command line for the image tests (real engine, no SDK)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

# Containers started by these tests carry this label, so a leftover one is easy to find and remove.
TEST_LABEL = "adult-income-byoc.test=1"


class DockerError(RuntimeError):
    """A docker command failed; the message carries its stderr."""


def docker(
    *args: str, timeout: float = 120, check: bool = True, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``docker ARGS`` and return the finished process (text output)."""
    proc = subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=False, cwd=cwd
    )
    if check and proc.returncode != 0:
        raise DockerError(f"docker {' '.join(args)} exited {proc.returncode}: {proc.stderr.strip()[-2000:]}")
    return proc


def engine_problem() -> str | None:
    """None if a Docker engine answers, else why not."""
    if shutil.which("docker") is None:
        return "the docker command is not installed"
    try:
        proc = docker("info", "--format", "{{.ServerVersion}}", timeout=20, check=False)
    except subprocess.TimeoutExpired:
        return "`docker info` did not answer within 20 s"
    if proc.returncode != 0:
        return f"`docker info` failed: {proc.stderr.strip()[-300:]}"
    return None


def inspect(kind: str, name: str) -> dict[str, Any]:
    """``docker KIND inspect NAME`` as a dict (kind: image or container)."""
    return json.loads(docker(kind, "inspect", name).stdout)[0]


def give_back(path: Path, image: str) -> None:
    """Make files a root container wrote under ``path`` owned by the test user again (no-op as root),
    so pytest can clean its temporary directories."""
    if os.getuid() == 0 or not path.exists():
        return
    docker(
        "run", "--rm", "--label", TEST_LABEL, "-v", f"{path}:/mnt", image,
        "chown", "-R", f"{os.getuid()}:{os.getgid()}", "/mnt",
        check=False,
    )  # fmt: skip


@dataclass
class Container:
    """A detached container started by a test; ``remove()`` must run in a finalizer."""

    image: str
    name: str = field(default_factory=lambda: f"byoc-test-{uuid.uuid4().hex[:10]}")
    started_at: float = 0.0

    def run(self, *args: str, options: tuple[str, ...] = ()) -> Container:
        """``docker run -d`` with the test label; ``args`` follow the image (e.g. ``serve``)."""
        self.started_at = time.monotonic()
        docker("run", "-d", "--name", self.name, "--label", TEST_LABEL, *options, self.image, *args)
        return self

    def host_port(self, container_port: int) -> int:
        """The loopback port Docker published ``container_port`` on (``-p 127.0.0.1::PORT``)."""
        out = docker("port", self.name, f"{container_port}/tcp").stdout.split()
        return int(out[0].rsplit(":", 1)[1])

    def state(self) -> dict[str, Any]:
        return inspect("container", self.name)["State"]

    def logs(self) -> str:
        proc = docker("logs", self.name, check=False)
        return proc.stdout + proc.stderr

    def wait_exit(self, timeout: float) -> int:
        """Wait for the container to exit on its own; its exit code."""
        return int(docker("wait", self.name, timeout=timeout).stdout.strip())

    def remove(self) -> None:
        with contextlib.suppress(DockerError, subprocess.TimeoutExpired):
            docker("rm", "-f", "-v", self.name, timeout=60)


def wait_for_ping(container: Container, url: str, timeout: float) -> float:
    """Poll ``url`` until it answers 200; seconds since the container was started.

    Fails early (with the logs) if the container exits, instead of waiting out the timeout.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(requests.RequestException):
            if requests.get(url, timeout=2).status_code == 200:
                return time.monotonic() - container.started_at
        if not container.state()["Running"]:
            raise DockerError(f"container {container.name} exited before /ping answered:\n{container.logs()}")
        time.sleep(0.05)
    raise DockerError(f"no 200 from {url} within {timeout} s:\n{container.logs()[-3000:]}")
