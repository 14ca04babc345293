"""A loopback stand-in for SageMaker's InvokeEndpoint that answers exactly as the service does.

The endpoint name in the URL picks the behaviour, so one server serves every test. The error answers
follow the botocore service model (status, ``x-amzn-ErrorType`` header, JSON members), which is what
makes botocore raise the same modeled exceptions (ModelError with OriginalStatusCode, ...).

Two behaviours break the connection instead of answering, as a connection pooled across a Lambda
freeze does: ``drop`` reads the request and closes the connection with nothing sent (and a reset, as
a dead peer does); ``cutbody`` sends the status line, the headers and half of an ``ok`` body, then
closes it (a plain close, so the client reliably gets the headers and fails reading the body).
"""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CONTAINER_400 = {
    "error": {
        "code": "invalid_records",
        "message": "1 problem in 1 record",
        "details": [
            {"record": 0, "field": "age", "problem": "out_of_range", "message": "age must be <= 120"}
        ],
        "request_id": "c0ffee",
    }
}
LOG_STREAM_ARN = "arn:aws:logs:us-east-1:123456789012:log-group:/aws/sagemaker/Endpoints/x"


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class FakeRuntime:
    url: str
    requests: list[Seen] = field(default_factory=list)
    # endpoint name -> list of behaviours to use before falling back to the name's own behaviour
    scripted: dict[str, list[str]] = field(default_factory=dict)
    slow_seconds: float = 2.0
    # size of the ``sized`` behaviour's JSON answer, in bytes
    sized_bytes: int = 1024


def _model_error(status: int, original: str, message: str | None = None) -> tuple[int, dict[str, str], bytes]:
    msg = message or (
        f'Received client error ({status}) from primary with message "{original}". See '
        "https://us-east-1.console.aws.amazon.com/cloudwatch/home for more information."
    )
    body = {
        "ErrorCode": "CLIENT_ERROR_FROM_MODEL" if 400 <= status < 500 else "SERVER_ERROR_FROM_MODEL",
        "LogStreamArn": LOG_STREAM_ARN,
        "Message": msg,
        "OriginalMessage": original,
        "OriginalStatusCode": status,
    }
    return 424, {"x-amzn-ErrorType": "ModelError"}, json.dumps(body).encode()


def _service_error(status: int, error_type: str, message: str) -> tuple[int, dict[str, str], bytes]:
    return status, {"x-amzn-ErrorType": error_type}, json.dumps({"message": message}).encode()


def answer(behaviour: str, seen: Seen, runtime: FakeRuntime) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body for one request."""
    if behaviour == "ok":
        echo = {
            "predictions": [{"label": ">50K", "probability": 0.87}],
            "received_content_type": seen.headers.get("content-type"),
            "received_accept": seen.headers.get("accept"),
            "received_bytes": len(seen.body),
        }
        headers = {"Content-Type": "application/json", "x-Amzn-Invoked-Production-Variant": "AllTraffic"}
        if "x-amzn-sagemaker-custom-attributes" in seen.headers:
            headers["X-Amzn-SageMaker-Custom-Attributes"] = (
                "echo=" + seen.headers["x-amzn-sagemaker-custom-attributes"]
            )
        return 200, headers, json.dumps(echo).encode()
    if behaviour == "binary":
        return 200, {"Content-Type": "application/x-npy"}, b"\x93NUMPY\x00\xff"
    if behaviour == "model400":
        return _model_error(400, json.dumps(CONTAINER_400))
    if behaviour == "model415text":
        return _model_error(415, "This predictor only supports CSV data")
    if behaviour == "model500":
        return _model_error(500, json.dumps({"error": {"code": "internal_error", "message": "boom"}}))
    if behaviour == "model503":
        return _model_error(503, json.dumps({"error": {"code": "model_not_ready", "message": "no model"}}))
    if behaviour == "modeltimeout":
        return _model_error(
            0,
            "",
            'Received server error (0) from primary with message "Your invocation timed out while waiting '
            'for a response from container primary."',
        )
    if behaviour == "missing":
        return _service_error(400, "ValidationError", "Endpoint missing of account 123456789012 not found.")
    if behaviour == "oversize":
        return _service_error(400, "ValidationError", "Request 1f2e has oversize body.")
    if behaviour == "throttled":
        return _service_error(429, "ThrottlingException", "Rate exceeded")
    if behaviour == "notready":
        return _service_error(429, "ModelNotReadyException", "Model is not ready")
    if behaviour == "unavailable":
        return _service_error(503, "ServiceUnavailable", "Service unavailable")
    if behaviour == "internal":
        return _service_error(500, "InternalFailure", "Internal failure")
    if behaviour == "sized":
        return 200, {"Content-Type": "application/json"}, sized_json(runtime.sized_bytes)
    if behaviour == "sizedbin":
        return 200, {"Content-Type": "application/octet-stream"}, b"\x00" * runtime.sized_bytes
    if behaviour == "slow":
        time.sleep(runtime.slow_seconds)
        return answer("ok", seen, runtime)
    raise AssertionError(f"unknown behaviour {behaviour}")


def sized_json(size: int) -> bytes:
    """A JSON document of exactly ``size`` bytes (ASCII, no characters JSON must escape)."""
    head, tail = b'{"predictions":"', b'"}'
    return head + b"p" * (size - len(head) - len(tail)) + tail


def _reset(connection: socket.socket) -> None:
    """Make the coming close end with RST (SO_LINGER 0): the peer sees the connection reset."""
    connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def start() -> tuple[ThreadingHTTPServer, FakeRuntime]:
    """Start the server on 127.0.0.1 with a free port (the caller must shut it down)."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            runtime: FakeRuntime = self.server.runtime  # type: ignore[attr-defined]
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            seen = Seen(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            runtime.requests.append(seen)
            parts = self.path.strip("/").split("/")
            if len(parts) != 3 or parts[0] != "endpoints" or parts[2] != "invocations":
                status, headers, payload = _service_error(404, "UnknownOperationException", "no such path")
            else:
                name = parts[1]
                queue = runtime.scripted.get(name)
                behaviour = queue.pop(0) if queue else name.split("-")[0]
                if behaviour == "drop":
                    self._break_connection()
                    return
                status, headers, payload = answer(
                    "ok" if behaviour == "cutbody" else behaviour, seen, runtime
                )
                if behaviour == "cutbody":
                    self._break_connection(status, headers, payload)
                    return
            try:
                self.send_response(status)
                headers = {
                    "Content-Type": "application/json",
                    "x-amzn-RequestId": str(uuid.uuid4()),
                    **headers,
                }
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (read timeout tests)

        def _break_connection(
            self, status: int = 0, headers: dict[str, str] | None = None, payload: bytes = b""
        ) -> None:
            """Close the connection; with a status, after the headers and half of ``payload``."""
            self.close_connection = True  # the server closes the socket when this returns
            if not status:
                _reset(self.connection)
                return
            try:
                self.send_response(status)
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload[: len(payload) // 2])
                self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                pass

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    runtime = FakeRuntime(url=f"http://127.0.0.1:{server.server_address[1]}")
    server.runtime = runtime  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, name="fake-sagemaker-runtime", daemon=True).start()
    return server, runtime
