"""Progress lines for long steps: ``[  12.3s] message`` on stderr, flushed at once."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """Callable logger that prefixes each message with the seconds elapsed since it was created."""

    def __init__(self, stream: TextIO | None = None, enabled: bool = True) -> None:
        self.start = time.perf_counter()
        self.stream = stream
        self.enabled = enabled

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def __call__(self, message: str) -> None:
        if self.enabled:
            stream = self.stream or sys.stderr
            print(f"[{self.elapsed():7.1f}s] {message}", file=stream, flush=True)


SILENT = Progress(enabled=False)
