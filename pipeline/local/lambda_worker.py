"""One local Lambda execution environment: a process that imports the handler once and runs invocations.

Started by :mod:`pipeline.local.lambda_pool` with exactly the function's environment (as Lambda gives
a sandbox its configured variables). Protocol, one JSON document per line: the pool writes
``{"event": ..., "request_id": ..., "deadline_ms": ...}`` to stdin; the worker answers on the original
stdout with ``{"ok": true, "result": ...}`` or ``{"ok": false, "errorType": ..., "errorMessage": ...}``.
The handler's own prints and logs go to stderr (the function's "CloudWatch" log), never into the
protocol channel. The first line the worker writes says whether the handler imported (init phase).
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import sys
import time
import traceback
from typing import Any, BinaryIO


class LambdaContext:
    """The parts of Lambda's context object handlers use."""

    def __init__(self, request_id: str, deadline_ms: int) -> None:
        self.aws_request_id = request_id
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "local-function")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "")
        region = os.environ.get("AWS_REGION", "us-east-1")
        account = os.environ.get("LOCAL_ACCOUNT_ID", "123456789012")
        self.invoked_function_arn = f"arn:aws:lambda:{region}:{account}:function:{self.function_name}"
        self.identity = None
        self.client_context = None
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self._deadline_ms - int(time.time() * 1000))


def load_handler(spec: str) -> Any:
    """``module.path:function`` (or Lambda's ``module.function``) to the callable."""
    module_name, sep, attr = spec.partition(":")
    if not sep:
        module_name, _, attr = spec.rpartition(".")
    return getattr(importlib.import_module(module_name), attr)


def _error(exc: BaseException, error_type: str | None = None) -> dict[str, object]:
    return {
        "ok": False,
        "errorType": error_type or type(exc).__name__,
        "errorMessage": str(exc),
        "stackTrace": traceback.format_tb(exc.__traceback__),
    }


def _send(channel: BinaryIO, message: dict[str, object]) -> None:
    try:
        line = json.dumps(message, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        # Lambda cannot serialise the handler's return value: the invocation fails.
        line = json.dumps(_error(exc, "Runtime.MarshalError"))
    channel.write(line.encode("utf-8") + b"\n")
    channel.flush()


def serve(spec: str) -> int:
    """Import the handler, then answer invocations from stdin until it closes."""
    channel = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # print() in the handler now lands in the log, not in the protocol channel
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="[%(levelname)s] %(name)s %(message)s")
    try:
        handler = load_handler(spec)
    except Exception as exc:  # Lambda reports init failures on every invocation (Runtime.ImportModuleError)
        traceback.print_exc()
        _send(channel, _error(exc, "Runtime.ImportModuleError"))
        handler = None
    else:
        _send(channel, {"ok": True, "ready": True})
    for line in sys.stdin.buffer:
        request = json.loads(line)
        request_id = request["request_id"]
        started = time.perf_counter()
        print(f"START RequestId: {request_id} Version: $LATEST", file=sys.stderr, flush=True)
        if handler is None:
            _send(channel, {"ok": False, "errorType": "Runtime.ImportModuleError", "errorMessage": spec})
            continue
        try:
            result = handler(request["event"], LambdaContext(request_id, int(request["deadline_ms"])))
        except Exception as exc:
            print(f"[ERROR] {type(exc).__name__}: {exc}", file=sys.stderr)
            traceback.print_exc()
            _send(channel, _error(exc))
        else:
            _send(channel, {"ok": True, "result": result})
        elapsed_ms = (time.perf_counter() - started) * 1000
        print(f"END RequestId: {request_id}", file=sys.stderr)
        print(f"REPORT RequestId: {request_id}\tDuration: {elapsed_ms:.2f} ms", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(serve(sys.argv[1]))
