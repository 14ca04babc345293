"""Progress output for the cloud commands: numbered steps, details and waits, on one stream."""

from __future__ import annotations

import sys
import time
from typing import TextIO

HEARTBEAT_S = 60.0


class StatusTicker:
    """Decides when a wait prints: on every status change, and once a minute while nothing changes."""

    def __init__(self, heartbeat_s: float = HEARTBEAT_S) -> None:
        self.heartbeat_s = heartbeat_s
        self._last: object = None
        self._printed_at = 0.0

    def due(self, status: object) -> bool:
        now = time.monotonic()
        if status != self._last or now - self._printed_at >= self.heartbeat_s:
            self._last, self._printed_at = status, now
            return True
        return False


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
