"""Structured logs: one JSON object per line on stdout (CloudWatch Logs reads the container's stdout).

``log_event`` is for lifecycle events (model loaded, worker started, shutdown); ``log_request``
writes the one line per request. Request lines carry ids, sizes, counts and timings, never payload
values: records are personal data. Only the standard library is used, so ``serve`` can log too.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from datetime import UTC, datetime
from typing import Any

STDOUT_FD = 1


def log_event(level: str, event: str, **fields: Any) -> None:
    """Write ``{"ts", "level", "event", "pid", **fields}`` as one line in a single write (atomic on pipes)."""
    record = {
        "ts": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "level": level,
        "event": event,
        "pid": os.getpid(),
        **fields,
    }
    line = json.dumps(record, default=str, separators=(",", ":"), ensure_ascii=False) + "\n"
    with contextlib.suppress(OSError):  # a closed stdout must never fail a request
        os.write(STDOUT_FD, line.encode("utf-8"))


class RequestTimer:
    """Collects what the request line reports while the request is being handled."""

    def __init__(self, request_id: str, method: str, path: str, bytes_in: int | None) -> None:
        self.started = time.perf_counter()
        self.fields: dict[str, Any] = {
            "request_id": request_id,
            "method": method,
            "path": path,
            "bytes_in": bytes_in or 0,
        }

    def note(self, **fields: Any) -> None:
        """Add fields (record count, media types, unknown-category counts, error code)."""
        self.fields.update({k: v for k, v in fields.items() if v is not None})

    def finish(self, status: int, bytes_out: int) -> None:
        """Write the request line."""
        latency_ms = round((time.perf_counter() - self.started) * 1000, 3)
        level = "error" if status >= 500 else "warning" if status >= 400 else "info"
        log_event(level, "request", status=status, latency_ms=latency_ms, bytes_out=bytes_out, **self.fields)
