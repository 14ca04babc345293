"""Running external commands (docker) with their output streamed, and a way for tests to see them."""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from pipeline.cloud.errors import CommandFailed
from pipeline.cloud.progress import Progress


class CommandRunner(Protocol):
    def run(self, args: Sequence[str], cwd: Path, stdin: bytes | None = None) -> None:
        """Run ``args`` in ``cwd``; ``stdin`` carries secrets so they never appear in argv or logs."""


class SubprocessRunner:
    """Runs commands for real, echoing each command line (never its stdin) before it runs."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress

    def run(self, args: Sequence[str], cwd: Path, stdin: bytes | None = None) -> None:
        self.progress.detail("$ " + shlex.join(args))
        try:
            completed = subprocess.run(list(args), cwd=cwd, input=stdin, check=False)
        except FileNotFoundError:
            raise CommandFailed(f"{args[0]} is not installed or not on PATH") from None
        if completed.returncode != 0:
            raise CommandFailed(f"{shlex.join(args[:2])} ... exited with status {completed.returncode}")
