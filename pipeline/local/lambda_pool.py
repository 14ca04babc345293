"""Local Lambda: runs the real handler in worker processes, as Lambda runs it in execution environments.

Each worker (:mod:`pipeline.local.lambda_worker`) imports the handler once (cold start) and then serves
one invocation at a time; idle workers are reused newest-first (warm starts). Workers get only the
function's environment variables, never the gateway's. Lambda's limits apply: the event must fit in
6 MB, the result in 6 MB, and an invocation running past the function timeout is killed (its worker
is replaced), which API Gateway reports as 502; if the gateway's own integration timeout comes first
it answers 504 and the worker is killed too.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import select
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pipeline.local.settings import LAMBDA_MAX_PAYLOAD_BYTES, REPO_ROOT

log = logging.getLogger("pipeline.local.lambda")

LAMBDA_MAX_RESPONSE_BYTES = LAMBDA_MAX_PAYLOAD_BYTES + 100  # Lambda allows 100 bytes more for responses
INIT_TIMEOUT_S = 10.0  # Lambda's init phase limit


class InvocationError(Exception):
    """The invocation did not produce a result (API Gateway: 502, or 504 for IntegrationTimeout)."""


class FunctionError(InvocationError):
    """The function failed: an exception, an init failure, a timeout or an oversized result."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(f"{error_type}: {message}")
        self.error_type = error_type
        self.message = message


class IntegrationTimeout(InvocationError):
    """The gateway stopped waiting before the function finished."""


class PayloadTooLarge(InvocationError):
    """The event exceeds Lambda's synchronous payload limit (the request never reaches the function)."""

    def __init__(self, size: int) -> None:
        super().__init__(
            f"{size} byte payload is too large for the RequestResponse invocation type "
            f"(limit {LAMBDA_MAX_PAYLOAD_BYTES} bytes)"
        )
        self.size = size


@dataclass(frozen=True)
class FunctionSpec:
    """The function: its handler, environment, timeout and how many environments may run at once."""

    handler: str
    environment: Mapping[str, str]
    timeout_s: float
    max_concurrency: int = 8
    cwd: Path = REPO_ROOT


class _Worker:
    def __init__(self, spec: FunctionSpec) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pipeline.local.lambda_worker", spec.handler],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=dict(spec.environment),
            cwd=spec.cwd,
        )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self._in = self.proc.stdin
        self._out_fd = self.proc.stdout.fileno()
        self._buffer = b""

    def send(self, line: bytes) -> None:
        self._in.write(line + b"\n")
        self._in.flush()

    def receive(self, deadline: float) -> dict[str, object] | None:
        """The next message, or None if ``deadline`` (monotonic) passes first; EOFError if it died."""
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            readable, _, _ = select.select([self._out_fd], [], [], remaining)
            if not readable:
                return None
            chunk = os.read(self._out_fd, 1 << 20)
            if not chunk:
                raise EOFError(f"the Lambda worker exited with status {self.proc.poll()}")
            self._buffer += chunk
            if len(self._buffer) > 2 * LAMBDA_MAX_RESPONSE_BYTES:
                raise FunctionError("Function.ResponseSizeTooLarge", "the response exceeds Lambda's limit")
        line, _, self._buffer = self._buffer.partition(b"\n")
        if len(line) > LAMBDA_MAX_RESPONSE_BYTES + 64:
            raise FunctionError(
                "Function.ResponseSizeTooLarge",
                "Response payload size exceeded maximum allowed payload size "
                f"({LAMBDA_MAX_RESPONSE_BYTES} bytes).",
            )
        return json.loads(line)

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()
        with contextlib.suppress(Exception):
            self._in.close()
        self.proc.wait(timeout=5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


class LambdaPool:
    """Runs invocations of one function on up to ``max_concurrency`` worker processes."""

    def __init__(self, spec: FunctionSpec) -> None:
        self.spec = spec
        self._idle: queue.LifoQueue[_Worker] = queue.LifoQueue()
        self._lock = threading.Lock()
        self._count = 0
        self._closed = False

    def prewarm(self, count: int = 1) -> None:
        """Start ``count`` environments now so the first requests are not cold starts."""
        for _ in range(count):
            try:
                worker = self._spawn()
            except InvocationError as exc:
                log.error("could not start a Lambda execution environment: %s", exc)
                return
            if worker is not None:
                self._idle.put(worker)

    def invoke(self, event: bytes, request_id: str, wait_s: float) -> object:
        """Run the handler on ``event`` (a JSON document); returns its result.

        Waits at most ``wait_s`` (the integration timeout) and at most the function timeout. Raises
        PayloadTooLarge, FunctionError or IntegrationTimeout.
        """
        if len(event) > LAMBDA_MAX_PAYLOAD_BYTES:
            raise PayloadTooLarge(len(event))
        started = time.monotonic()
        gateway_deadline = started + wait_s
        worker = self._acquire(gateway_deadline)
        function_deadline = time.monotonic() + self.spec.timeout_s
        deadline_ms = int((time.time() + self.spec.timeout_s) * 1000)
        message = json.dumps({"request_id": request_id, "deadline_ms": deadline_ms}).encode()
        try:
            # Splice the raw event in: it is already JSON, re-encoding 6 MB would cost time.
            worker.send(message[:-1] + b',"event":' + event + b"}")
            reply = worker.receive(min(gateway_deadline, function_deadline))
        except (EOFError, BrokenPipeError, ValueError) as exc:
            self._discard(worker)
            raise FunctionError("Runtime.ExitError", f"the execution environment failed: {exc}") from None
        except FunctionError:
            self._discard(worker)
            raise
        if reply is None:
            self._discard(worker)
            if gateway_deadline <= function_deadline:
                raise IntegrationTimeout(f"no response within {wait_s:g} s")
            raise FunctionError("Sandbox.Timedout", f"Task timed out after {self.spec.timeout_s:.2f} seconds")
        if self._closed:
            self._discard(worker)
        else:
            self._idle.put(worker)
        if not reply.get("ok"):
            raise FunctionError(str(reply.get("errorType")), str(reply.get("errorMessage")))
        return reply.get("result")

    def close(self) -> None:
        """Stop every idle environment (busy ones are stopped as they come back)."""
        self._closed = True
        while True:
            try:
                worker = self._idle.get_nowait()
            except queue.Empty:
                return
            self._discard(worker)

    def _acquire(self, deadline: float) -> _Worker:
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            pass
        worker = self._spawn()
        if worker is not None:
            return worker
        remaining = deadline - time.monotonic()
        try:
            return self._idle.get(timeout=max(0.0, remaining))
        except queue.Empty:
            raise IntegrationTimeout("every Lambda execution environment stayed busy") from None

    def _spawn(self) -> _Worker | None:
        """A new, initialised environment, or None when ``max_concurrency`` are already running."""
        with self._lock:
            if self._closed or self._count >= self.spec.max_concurrency:
                return None
            self._count += 1
        try:
            worker = _Worker(self.spec)
            ready = worker.receive(time.monotonic() + INIT_TIMEOUT_S)
        except BaseException:
            with self._lock:
                self._count -= 1
            raise
        if ready is None:
            self._discard(worker)
            raise FunctionError(
                "Runtime.InitTimeout", f"the handler did not load within {INIT_TIMEOUT_S:g} s"
            )
        log.info("Lambda execution environment started (pid %d)", worker.proc.pid)
        return worker

    def _discard(self, worker: _Worker) -> None:
        worker.kill()
        with self._lock:
            self._count -= 1
