"""Helpers to run the real deploy code against moto and look at what it did."""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from moto_shims import write_artifacts_like_a_training_job

from pipeline.cloud.clients import Clients
from pipeline.cloud.config import DeployConfig, load_config
from pipeline.cloud.deploy import DeployOptions, DeployResult, deploy
from pipeline.cloud.progress import Progress

READ_PREFIXES = ("Get", "Describe", "List", "Head")


@dataclass
class RecordingRunner:
    """Stands in for docker: records each command and its stdin; ``push`` puts the image into (moto) ECR."""

    ecr: Any = None
    commands: list[list[str]] = field(default_factory=list)
    stdins: list[bytes | None] = field(default_factory=list)

    def run(self, args: Sequence[str], cwd: Path, stdin: bytes | None = None) -> None:
        self.commands.append(list(args))
        self.stdins.append(stdin)
        if list(args[:2]) == ["docker", "push"] and self.ecr is not None:
            repository, tag = args[2].split("/", 1)[1].split(":")
            manifest = {
                "schemaVersion": 2,
                "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "config": {"digest": "sha256:" + "0" * 64},
                "layers": [],
            }
            self.ecr.put_image(repositoryName=repository, imageManifest=json.dumps(manifest), imageTag=tag)


@dataclass
class Stack:
    """One deploy environment: clients on a recording session, fake docker, captured output."""

    tmp: Path
    session: boto3.Session = field(default_factory=lambda: boto3.Session(region_name="us-east-1"))
    runner: RecordingRunner = field(default_factory=RecordingRunner)
    calls: list[tuple[str, str]] = field(default_factory=list)
    output: io.StringIO = field(default_factory=io.StringIO)
    # Who plays SageMaker and docker (writes model.tar.gz, pushes the image); default: ``session``.
    # With IAM enforced, an admin session here keeps those calls out of the deployer's record.
    services: boto3.Session | None = None

    def __post_init__(self) -> None:
        services = self.services or self.session
        write_artifacts_like_a_training_job(self.session, writer=services)
        self.session.events.register("before-call.*.*", self._record)
        self.clients = Clients("us-east-1", self.session)
        self.runner.ecr = services.client("ecr", region_name="us-east-1")

    def _record(self, model: Any, **kwargs: Any) -> None:
        self.calls.append((model.service_model.service_name, model.name))

    def config(self, **overrides: object) -> DeployConfig:
        return load_config(overrides={k.replace("__", "."): v for k, v in overrides.items()})

    def deploy(self, config: DeployConfig | None = None, **options: Any) -> DeployResult:
        options.setdefault("poll_seconds", 0)
        options.setdefault("preflight", False)  # moto lacks its APIs; tests/cloud/test_cloud_preflight.py
        options.setdefault("secrets_dir", self.tmp / "secrets")
        return deploy(
            config or self.config(),
            DeployOptions(**options),
            clients=self.clients,
            progress=Progress(self.output),
            runner=self.runner,
            sleep=lambda s: None,
        )

    def mutating_calls(self, since: int = 0) -> list[tuple[str, str]]:
        return [c for c in self.calls[since:] if not c[1].startswith(READ_PREFIXES)]

    def client(self, service: str) -> Any:
        return self.session.client(service, region_name="us-east-1")
