"""Progress output for the cloud commands: numbered steps, details and waits, on one stream."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """Prints what a command is doing; never pass secrets to it."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout
        self._started = time.monotonic()
        self._step = 0

    def step(self, title: str) -> None:
        """Start a new numbered step."""
        self._step += 1
        self._write(f"[{self._step}] {title}")

    def detail(self, message: str) -> None:
        """A line under the current step."""
        self._write(f"    {message}")

    def waiting(self, what: str, status: str, since: float) -> None:
        """A progress line while waiting on AWS (status and elapsed seconds)."""
        self._write(f"    {what}: {status} ({time.monotonic() - since:.0f} s)")

    def _write(self, line: str) -> None:
        print(line, file=self.stream, flush=True)
