"""The ECR repository and the container image: build for linux/amd64, tag by content, push.

The tag is a digest of exactly what the image is built from, the Dockerfile and the files
``.dockerignore`` lets into the build context, so an unchanged tree maps to a tag that is already in
ECR and deploy skips the build and push entirely (the repository's tags are immutable).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

from pipeline.cloud.clients import error_code
from pipeline.cloud.names import Names
from pipeline.cloud.progress import Progress
from pipeline.cloud.shell import CommandRunner

DOCKERFILE = "container/Dockerfile"
PLATFORM = "linux/amd64"  # SageMaker runs x86_64 images only; an arm64 build fails with "exec format error"
_UNTAGGED_DAYS = 1


def source_tag(repo_root: Path) -> str:
    """``src-<12 hex>``: a digest of the Dockerfile and of every file in the image's build context."""
    digest = hashlib.sha256()
    for path in sorted({repo_root / DOCKERFILE, *context_files(repo_root)}):
        rel = path.relative_to(repo_root).as_posix()
        digest.update(rel.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    return "src-" + digest.hexdigest()[:12]


def context_files(repo_root: Path) -> list[Path]:
    """The files ``docker build`` sends from ``repo_root``, by the rules in its ``.dockerignore``."""
    rules = _dockerignore_rules(repo_root / ".dockerignore")
    reincluded = [pattern for negate, pattern, _ in rules if negate]
    found: list[Path] = []
    for directory, subdirs, files in os.walk(repo_root):
        rel_dir = Path(directory).relative_to(repo_root).as_posix()
        rel_dir = "" if rel_dir == "." else rel_dir + "/"
        # Do not descend into an excluded folder unless a '!' rule could bring something below it back.
        subdirs[:] = [
            d
            for d in subdirs
            if _included(rel_dir + d, rules)
            or any(p.startswith(rel_dir + d + "/") or p.startswith("**") for p in reincluded)
        ]
        found += [Path(directory) / f for f in files if _included(rel_dir + f, rules)]
    return found


def _dockerignore_rules(path: Path) -> list[tuple[bool, str, re.Pattern[str]]]:
    """(negated, pattern, regex) for each rule, in file order (the last matching rule wins)."""
    rules = []
    for raw in path.read_text().splitlines() if path.exists() else []:
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = line[1:].strip() if negate else line
        pattern = pattern.strip("/")
        rules.append((negate, pattern, re.compile(_glob_regex(pattern))))
    return rules


def _glob_regex(pattern: str) -> str:
    """Docker's pattern syntax: ``**`` any number of folders, ``*`` and ``?`` within one name."""
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "[":
            end = pattern.index("]", i)
            out.append(pattern[i : end + 1])
            i = end + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return "".join(out)


def _included(rel: str, rules: list[tuple[bool, str, re.Pattern[str]]]) -> bool:
    # A rule that matches a folder applies to everything in it, as in Docker.
    parts = rel.split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    excluded = False
    for negate, _, regex in rules:
        if any(regex.fullmatch(prefix) for prefix in prefixes):
            excluded = not negate
    return not excluded


def ensure_repository(ecr: Any, names: Names, progress: Progress) -> str:
    """Create the repository if needed (scan on push, immutable tags, lifecycle); returns its URI."""
    try:
        repo = ecr.describe_repositories(repositoryNames=[names.repository])["repositories"][0]
        progress.detail(f"repository {names.repository} exists")
    except Exception as exc:
        if error_code(exc) != "RepositoryNotFoundException":
            raise
        repo = ecr.create_repository(
            repositoryName=names.repository,
            imageTagMutability="IMMUTABLE",
            imageScanningConfiguration={"scanOnPush": True},
            encryptionConfiguration={"encryptionType": "AES256"},
            tags=names.tag_list(),
        )["repository"]
        progress.detail(f"created repository {names.repository}")
    if _lifecycle_policy_text(ecr, names.repository) != json.loads(lifecycle_policy()):
        ecr.put_lifecycle_policy(repositoryName=names.repository, lifecyclePolicyText=lifecycle_policy())
    return repo["repositoryUri"]


def _lifecycle_policy_text(ecr: Any, repository: str) -> Any:
    try:
        return json.loads(ecr.get_lifecycle_policy(repositoryName=repository)["lifecyclePolicyText"])
    except Exception as exc:
        if error_code(exc) == "LifecyclePolicyNotFoundException":
            return None
        raise


def lifecycle_policy() -> str:
    """Expire untagged images only.

    A count rule over tagged images ("keep the newest 10") can expire the image the live endpoint
    runs: after enough rebuilds its tag is among the oldest, and the next scale-out or instance
    replacement fails to pull. Tagged images stay until teardown deletes the repository; untagged
    layers (interrupted pushes) go after a day.
    """
    rule = {
        "rulePriority": 1,
        "description": f"expire untagged images after {_UNTAGGED_DAYS} day(s)",
        "selection": {
            "tagStatus": "untagged",
            "countType": "sinceImagePushed",
            "countUnit": "days",
            "countNumber": _UNTAGGED_DAYS,
        },
        "action": {"type": "expire"},
    }
    return json.dumps({"rules": [rule]})


def image_exists(ecr: Any, repository: str, tag: str) -> bool:
    try:
        return bool(
            ecr.describe_images(repositoryName=repository, imageIds=[{"imageTag": tag}])["imageDetails"]
        )
    except Exception as exc:
        if error_code(exc) in ("ImageNotFoundException", "RepositoryNotFoundException"):
            return False
        raise


def build_commands(
    image_uri: str, registry: str, user: str = "AWS", buildkit: bool = False
) -> list[list[str]]:
    """The exact docker commands, in order: build for linux/amd64, log in (password on stdin), push.

    With BuildKit (``buildkit=True``: a CLI with buildx, e.g. Docker Desktop) the build also needs
    ``--provenance=false``: otherwise the push is an OCI image index with an attestation, and
    SageMaker's CreateModel rejects it ("Unsupported manifest media type"). The legacy builder
    rejects that flag, so it is only added when BuildKit builds.
    """
    build = ["docker", "build", "--platform", PLATFORM]
    if buildkit:
        build.append("--provenance=false")
    return [
        [*build, "-f", DOCKERFILE, "-t", image_uri, "."],
        ["docker", "login", "--username", user, "--password-stdin", registry],
        ["docker", "push", image_uri],
    ]


def build_and_push(
    ecr: Any, runner: CommandRunner, repo_root: Path, repository_uri: str, tag: str, progress: Progress
) -> str:
    """Build and push ``repository_uri:tag`` unless ECR already has it; returns the image URI."""
    image_uri = f"{repository_uri}:{tag}"
    if image_exists(ecr, repository_uri.split("/", 1)[1], tag):
        progress.detail(f"image {image_uri} already in ECR (sources unchanged): not rebuilding")
        return image_uri
    user, password, registry = registry_login(ecr)
    build, login, push = build_commands(image_uri, registry, user, buildkit=buildkit_builds())
    progress.detail(f"building {image_uri} for {PLATFORM}")
    runner.run(build, cwd=repo_root)
    runner.run(login, cwd=repo_root, stdin=password.encode())
    progress.detail("pushing")
    runner.run(push, cwd=repo_root)
    return image_uri


def buildkit_builds() -> bool:
    """True when ``docker build`` uses BuildKit: the CLI has the buildx plugin and nothing turned it off."""
    if os.environ.get("DOCKER_BUILDKIT") == "0" or shutil.which("docker") is None:
        return False
    probe = subprocess.run(["docker", "buildx", "version"], capture_output=True, check=False)
    return probe.returncode == 0


def registry_login(ecr: Any) -> tuple[str, str, str]:
    """(user, password, registry host) from ECR's authorization token."""
    data = ecr.get_authorization_token()["authorizationData"][0]
    user, _, password = base64.b64decode(data["authorizationToken"]).decode().partition(":")
    registry = data["proxyEndpoint"].removeprefix("https://")
    return user, password, registry


def repository_exists(ecr: Any, names: Names) -> bool:
    try:
        ecr.describe_repositories(repositoryNames=[names.repository])
        return True
    except Exception as exc:
        if error_code(exc) == "RepositoryNotFoundException":
            return False
        raise


def delete_repository(ecr: Any, names: Names) -> bool:
    """Delete the repository and its images; False if it did not exist."""
    try:
        ecr.delete_repository(repositoryName=names.repository, force=True)
        return True
    except Exception as exc:
        if error_code(exc) == "RepositoryNotFoundException":
            return False
        raise
