"""HTTP to the serving container: ``GET /execution-parameters`` and ``POST /invocations`` with retries.

Retries follow Batch Transform: a 5xx answer or a broken connection is retried (with exponential
back-off, up to ``max_retries`` times, like ``ModelClientConfig.InvocationsMaxRetries``); a 4xx answer
is the container's verdict on the data and is returned to the caller, never retried.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
import urllib3

from pipeline.batch.errors import BatchError, ContainerUnavailable

DEFAULT_TIMEOUT_S = 600.0
"""Per request, as ``ModelClientConfig.InvocationsTimeoutInSeconds``' default."""


@dataclass(frozen=True)
class ExecutionParameters:
    """What the container asks Batch Transform for (``GET /execution-parameters``)."""

    max_concurrent_transforms: int
    max_payload_mb: int
    batch_strategy: str


@dataclass(frozen=True)
class Answer:
    """A final (non-retried) answer of ``/invocations``."""

    status: int
    body: bytes
    attempts: int

    def error(self) -> dict[str, Any]:
        """The container's error object (``{"code", "message", "details"}``), or a stand-in."""
        try:
            document = orjson.loads(self.body)
        except orjson.JSONDecodeError:
            return {
                "code": f"http_{self.status}",
                "message": self.body[:200].decode(errors="replace"),
                "details": [],
            }
        error = document.get("error") if isinstance(document, dict) else None
        if not isinstance(error, dict):
            return {"code": f"http_{self.status}", "message": str(document)[:200], "details": []}
        return error


class ContainerClient:
    """A thread-safe client for one container URL, with at most ``connections`` open connections."""

    def __init__(
        self,
        url: str,
        connections: int,
        *,
        max_retries: int = 3,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        backoff_s: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.url = url.rstrip("/")
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.sleep = sleep
        self._pool = urllib3.PoolManager(
            num_pools=1,
            maxsize=max(1, connections),
            block=True,
            retries=False,
            timeout=urllib3.Timeout(connect=10.0, read=timeout_s),
        )
        self._lock = threading.Lock()
        self.retries = 0
        self.requests = 0

    def execution_parameters(self) -> ExecutionParameters:
        """The container's ``/execution-parameters``; BatchError if it does not answer them."""
        try:
            response = self._pool.request("GET", f"{self.url}/execution-parameters")
        except urllib3.exceptions.HTTPError as exc:
            raise BatchError(f"the container at {self.url} does not answer: {exc}") from None
        if response.status != 200:
            raise BatchError(f"GET {self.url}/execution-parameters answered {response.status}")
        try:
            document = orjson.loads(response.data)
            return ExecutionParameters(
                max_concurrent_transforms=int(document["MaxConcurrentTransforms"]),
                max_payload_mb=int(document["MaxPayloadInMB"]),
                batch_strategy=str(document.get("BatchStrategy", "MULTI_RECORD")),
            )
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise BatchError(f"/execution-parameters is not what Batch Transform expects: {exc}") from None

    def invoke(self, body: bytes, content_type: str, accept: str, where: str) -> Answer:
        """POST ``body``; retries 5xx and connection failures; ContainerUnavailable when they persist."""
        headers = {"Content-Type": content_type, "Accept": accept}
        last = ""
        for attempt in range(self.max_retries + 1):
            if attempt:
                with self._lock:
                    self.retries += 1
                self.sleep(min(self.backoff_s * 2 ** (attempt - 1), 8.0))
            with self._lock:
                self.requests += 1
            try:
                response = self._pool.request(
                    "POST", f"{self.url}/invocations", body=body, headers=headers, preload_content=True
                )
            except urllib3.exceptions.HTTPError as exc:
                last = f"{type(exc).__name__}: {exc}"
                continue
            if response.status < 500:
                return Answer(response.status, response.data, attempt + 1)
            last = f"HTTP {response.status}: {response.data[:300].decode(errors='replace')}"
        raise ContainerUnavailable(
            f"{where}: the container failed {self.max_retries + 1} times; last: {last}"
        )

    def close(self) -> None:
        self._pool.clear()
