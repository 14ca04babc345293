"""Structured logs: one JSON object per line on stdout (CloudWatch Logs reads the container's stdout).

``log_event`` is for lifecycle events (model loaded, worker started, shutdown); ``log_request``
writes the one line per request. Request lines carry ids, sizes, counts and timings, never payload
values: records are personal data.

A line is serialised with orjson and the timestamp's date-and-seconds part is formatted once per
second: the request line is written for every request, and the standard library's ``json`` plus
``datetime.isoformat`` cost more CPU than scoring a record's features does. Values orjson cannot
write (integers beyond 64 bits, ...) fall back to the standard library, so a line is never lost.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from typing import Any

import orjson

STDOUT_FD = 1
_ORJSON_OPTIONS = orjson.OPT_APPEND_NEWLINE | orjson.OPT_NON_STR_KEYS
_second_cache: list[Any] = [-1, ""]  # [epoch second, "YYYY-MM-DDTHH:MM:SS"]


def utc_timestamp(now: float | None = None) -> str:
    """``now`` (default: the current time) as ISO 8601 UTC with milliseconds (``...T17:04:05.123Z``)."""
    now = time.time() if now is None else now
    millis = int(now * 1000)
    second, ms = divmod(millis, 1000)
    if second != _second_cache[0]:
        _second_cache[:] = [second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))]
    return f"{_second_cache[1]}.{ms:03d}Z"


def log_event(level: str, event: str, **fields: Any) -> None:
    """Write ``{"ts", "level", "event", "pid", **fields}`` as one line in a single write (atomic on pipes)."""
    record = {"ts": utc_timestamp(), "level": level, "event": event, "pid": os.getpid(), **fields}
    try:
        line = orjson.dumps(record, default=str, option=_ORJSON_OPTIONS)
    except (TypeError, orjson.JSONEncodeError):
        text = json.dumps(record, default=str, separators=(",", ":"), ensure_ascii=False)
        line = (text + "\n").encode("utf-8")
    with contextlib.suppress(OSError):  # a closed stdout must never fail a request
        os.write(STDOUT_FD, line)


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
