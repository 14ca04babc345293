"""Local SageMaker InvokeEndpoint: ``POST /endpoints/{name}/invocations`` in front of the real container.

It answers the way the SageMaker runtime does, so boto3 (and everything built on it: the Lambda proxy,
the SageMaker Python SDK) raises the same exceptions with the same fields as against AWS:

* 200 with the container's body, ``Content-Type``, ``x-Amzn-Invoked-Production-Variant``,
  ``x-amzn-RequestId`` and ``X-Amzn-SageMaker-Custom-Attributes`` only when the container set it;
* 424 ``ModelError`` (``Message``, ``OriginalStatusCode``, ``OriginalMessage``, ``LogStreamArn``) when
  the container answers non-2xx, or does not answer within 60 s (``OriginalStatusCode`` 0);
* 400 ``ValidationError`` for an unknown endpoint, a body over 6 MiB or an over-long header;
* 429 ``ModelNotReadyException`` while the container's ``GET /ping`` is not 200 (not started yet, still
  loading, or gone).

Only the request headers InvokeEndpoint defines reach the container (SageMaker strips the rest).
With ``--capture-dir`` it also does SageMaker Data Capture: sampled successful invocations are written
as SageMaker's JSON Lines capture records under ``<dir>/<endpoint>/<variant>/yyyy/mm/dd/hh/``
(:mod:`pipeline.monitoring.capture`), off the request path.
Run it with ``python -m pipeline.local.runtime --endpoint NAME=http://127.0.0.1:PORT``.
"""

from __future__ import annotations

import argparse
import logging
import re
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

import urllib3

from pipeline.local.http_server import (
    BadRequestBody,
    BodyTooLarge,
    JsonHandler,
    LoopbackServer,
    configure_logging,
    serve_until_signalled,
    write_port_file,
)
from pipeline.local.settings import SAGEMAKER_MAX_BODY_BYTES, load_local_settings
from pipeline.monitoring.capture import DEFAULT_CSV_TYPES, DEFAULT_JSON_TYPES, CaptureSettings, CaptureWriter

log = logging.getLogger("pipeline.local.runtime")

_PATH = re.compile(r"^/endpoints/(?P<name>[^/]+)/invocations$")
_ENDPOINT_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")

# Request headers InvokeEndpoint defines; only these are forwarded to the container (with the
# limits botocore's model gives them). Routing headers (target model/variant/container) are not sent on.
FORWARDED_HEADERS: dict[str, int] = {
    "Content-Type": 1024,
    "Accept": 1024,
    "X-Amzn-SageMaker-Custom-Attributes": 1024,
    "X-Amzn-SageMaker-Inference-Id": 64,
    "X-Amzn-SageMaker-Enable-Explanations": 64,
    "X-Amzn-SageMaker-Session-Id": 256,
}
ROUTING_HEADERS = (
    "X-Amzn-SageMaker-Target-Model",
    "X-Amzn-SageMaker-Target-Variant",
    "X-Amzn-SageMaker-Target-Container-Hostname",
    "X-Amzn-SageMaker-Inference-Component",
)
RETURNED_HEADERS = (
    "X-Amzn-SageMaker-Custom-Attributes",
    "X-Amzn-SageMaker-New-Session-Id",
    "X-Amzn-SageMaker-Closed-Session-Id",
)
TIMEOUT_MESSAGE = (
    "Your invocation timed out while waiting for a response from container primary. Review the latency "
    "metrics for each container in Amazon CloudWatch, resolve the issue, and try again."
)
_MAX_ORIGINAL_MESSAGE = 4096


# --- errors: each knows its status, error type and body; RuntimeHandler.answer_error sends them ---


class InvokeError(Exception):
    """An error InvokeEndpoint answers itself."""

    status = 500
    error_type = "InternalFailure"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def body(self) -> dict[str, object]:
        return {"message": self.message}


class ValidationError(InvokeError):
    status = 400
    error_type = "ValidationError"


class ModelNotReady(InvokeError):
    status = 429
    error_type = "ModelNotReadyException"


class UnknownOperation(InvokeError):
    status = 404
    error_type = "UnknownOperationException"


class ModelError(InvokeError):
    """The container failed the invocation; carries what it said (status 0: it never answered)."""

    status = 424
    error_type = "ModelError"

    def __init__(self, message: str, original_status: int, original_message: str, log_stream_arn: str):
        super().__init__(message)
        self.original_status = original_status
        self.original_message = original_message
        self.log_stream_arn = log_stream_arn

    def body(self) -> dict[str, object]:
        return {
            "ErrorCode": "CLIENT_ERROR_FROM_MODEL"
            if 400 <= self.original_status < 500
            else "SERVER_ERROR_FROM_MODEL",
            "LogStreamArn": self.log_stream_arn,
            "Message": self.message,
            "OriginalMessage": self.original_message,
            "OriginalStatusCode": self.original_status,
        }


# --- the endpoint registry and the container connection ---


@dataclass(frozen=True)
class Endpoint:
    """A local endpoint: its name, the container's base URL and the production variant it reports."""

    name: str
    container_url: str
    variant: str = "AllTraffic"


@dataclass(frozen=True)
class RuntimeConfig:
    """Everything the runtime needs; built from the CLI (and :mod:`pipeline.local.settings`)."""

    endpoints: Mapping[str, Endpoint]
    region: str = "us-east-1"
    account_id: str = "123456789012"
    invocation_timeout_s: float = 60.0
    ping_timeout_s: float = 2.0
    healthy_recheck_s: float = 1.0
    connect_timeout_s: float = 2.0
    log_hint: str | None = None
    """Where the container's log is (named in ModelError messages, as SageMaker names CloudWatch)."""
    max_body_bytes: int = SAGEMAKER_MAX_BODY_BYTES
    max_connections: int = 32
    capture: CaptureSettings | None = None
    """Data capture for every endpoint (None: off)."""


class Container:
    """HTTP to one container: pooled keep-alive connections, ``/invocations`` and a cached ``/ping``."""

    def __init__(self, endpoint: Endpoint, config: RuntimeConfig) -> None:
        parts = urlsplit(endpoint.container_url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"container URL {endpoint.container_url!r} must be http://host:port")
        self.endpoint = endpoint
        self.config = config
        self.pool = urllib3.HTTPConnectionPool(
            parts.hostname,
            parts.port or 80,
            maxsize=config.max_connections,
            block=False,
            retries=False,
        )
        self._lock = threading.Lock()
        self._healthy_at: float | None = None

    def ready(self) -> bool:
        """True if ``/ping`` answered 200 within the last ``healthy_recheck_s`` or does now."""
        with self._lock:
            if (
                self._healthy_at is not None
                and time.monotonic() - self._healthy_at < self.config.healthy_recheck_s
            ):
                return True
        healthy = self._ping()
        with self._lock:
            self._healthy_at = time.monotonic() if healthy else None
        return healthy

    def forget_health(self) -> None:
        """Make the next :meth:`ready` ping again (after the container dropped a connection)."""
        with self._lock:
            self._healthy_at = None

    def _ping(self) -> bool:
        try:
            response = self.pool.request(
                "GET",
                "/ping",
                timeout=urllib3.Timeout(connect=self.config.ping_timeout_s, read=self.config.ping_timeout_s),
                preload_content=True,
            )
        except urllib3.exceptions.HTTPError:
            return False
        return response.status == 200

    def invoke(self, body: bytes, headers: Mapping[str, str]) -> urllib3.BaseHTTPResponse:
        """POST ``/invocations``; urllib3 timeout/connection errors propagate to the caller."""
        return self.pool.request(
            "POST",
            "/invocations",
            body=body,
            headers=dict(headers),
            timeout=urllib3.Timeout(
                connect=self.config.connect_timeout_s, read=self.config.invocation_timeout_s
            ),
            preload_content=True,
        )


class Runtime:
    """The InvokeEndpoint logic, independent of the HTTP server (one instance per server)."""

    def __init__(self, config: RuntimeConfig) -> None:
        self.config = config
        self.containers = {name: Container(ep, config) for name, ep in config.endpoints.items()}
        self.captures: dict[str, CaptureWriter] = {}
        if config.capture is not None:
            self.captures = {
                name: CaptureWriter(config.capture, name, ep.variant) for name, ep in config.endpoints.items()
            }

    def close(self) -> None:
        """Write the capture records still queued (at shutdown)."""
        for writer in self.captures.values():
            writer.close()

    def invoke(
        self, name: str, body: bytes, headers: Mapping[str, str]
    ) -> tuple[bytes, list[tuple[str, str]]]:
        """Run one invocation; returns (body, response headers) or raises an :class:`InvokeError`."""
        container = self._container(name)
        forwarded = self._forwarded_headers(headers)
        if not container.ready():
            raise ModelNotReady(
                f"Model for endpoint {name} is not ready: the container's GET /ping does not answer 200 "
                "yet (starting, loading the model, or stopped). Retry once it passes its health check."
            )
        try:
            response = container.invoke(body, forwarded)
        except urllib3.exceptions.ReadTimeoutError:
            raise self._model_error(name, 0, TIMEOUT_MESSAGE, server=True) from None
        except urllib3.exceptions.HTTPError as exc:  # refused, reset, or not accepted in time
            # The container dropped or refused the connection: if /ping now fails it is down (not
            # ready); if it still answers, this one invocation failed without a response.
            container.forget_health()
            if not container.ready():
                raise ModelNotReady(
                    f"Model for endpoint {name} is not ready: the container stopped answering "
                    "(GET /ping fails). Retry once it passes its health check."
                ) from None
            raise self._model_error(
                name,
                0,
                f"The container closed the connection without a response ({type(exc).__name__}).",
                True,
            ) from None
        text = response.data.decode("utf-8", errors="replace")
        if not 200 <= response.status < 300:
            raise self._model_error(name, response.status, text, server=response.status >= 500)
        out = [
            ("Content-Type", response.headers.get("Content-Type") or "application/octet-stream"),
            ("x-Amzn-Invoked-Production-Variant", container.endpoint.variant),
        ]
        out += [(h, response.headers[h]) for h in RETURNED_HEADERS if response.headers.get(h)]
        writer = self.captures.get(name)
        if writer is not None:  # queues only: never delays or fails the answer
            writer.offer(
                body,
                forwarded.get("Content-Type"),
                response.data,
                out[0][1],
                forwarded.get("X-Amzn-SageMaker-Inference-Id"),
            )
        return response.data, out

    def _container(self, name: str) -> Container:
        if not _ENDPOINT_NAME.match(name):
            raise ValidationError(
                f"1 validation error detected: Value '{name}' at 'endpointName' failed to satisfy "
                "constraint: Member must satisfy regular expression pattern: ^[a-zA-Z0-9](-*[a-zA-Z0-9])*"
            )
        container = self.containers.get(name)
        if container is None:
            raise ValidationError(f"Endpoint {name} of account {self.config.account_id} not found.")
        return container

    def _forwarded_headers(self, headers: Mapping[str, str]) -> dict[str, str]:
        forwarded: dict[str, str] = {}
        for header, limit in FORWARDED_HEADERS.items():
            value = headers.get(header)
            if value is None:
                continue
            if len(value) > limit:
                raise ValidationError(
                    f"1 validation error detected: Value at '{header}' failed to satisfy constraint: "
                    f"Member must have length less than or equal to {limit}"
                )
            forwarded[header] = value
        return forwarded

    def _model_error(self, name: str, status: int, original: str, server: bool) -> ModelError:
        original = original[:_MAX_ORIGINAL_MESSAGE]
        kind = "server" if server else "client"
        where = self.config.log_hint or (
            f"https://{self.config.region}.console.aws.amazon.com/cloudwatch/home?region={self.config.region}"
            f"#logEventViewer:group=/aws/sagemaker/Endpoints/{name} in account {self.config.account_id}"
        )
        message = (
            f'Received {kind} error ({status}) from primary with message "{original}". '
            f"See {where} for more information."
        )
        region, account = self.config.region, self.config.account_id
        arn = f"arn:aws:logs:{region}:{account}:log-group:/aws/sagemaker/Endpoints/{name}"
        return ModelError(message, status, original, arn)


class RuntimeHandler(JsonHandler):
    """HTTP front of :class:`Runtime` (the server sets ``runtime``)."""

    server_name = "local-sagemaker-runtime"
    logger = log
    runtime: Runtime

    def do_POST(self) -> None:
        request_id = str(uuid.uuid4())
        try:
            match = _PATH.match(urlsplit(self.path).path)
            if match is None:
                self.drain(self._length_or_none())
                raise UnknownOperation(f"No operation matches POST {urlsplit(self.path).path}")
            name = unquote(match["name"])
            try:
                body = self.read_body(self.runtime.config.max_body_bytes)
            except BodyTooLarge as exc:
                size = f"{exc.size} bytes" if exc.size is not None else "a body"
                raise ValidationError(
                    f"Request {request_id} has oversize body: {size} exceeds the InvokeEndpoint limit of "
                    f"{exc.limit} bytes (6 MB)."
                ) from None
            except BadRequestBody as exc:
                raise ValidationError(f"Request {request_id} has a malformed body: {exc}") from None
            data, headers = self.runtime.invoke(name, body, self.headers)
        except InvokeError as exc:
            self.answer_error(exc, request_id)
            return
        self.send_bytes(200, data, [*headers, ("x-amzn-RequestId", request_id)])

    def do_GET(self) -> None:
        self.answer_error(
            UnknownOperation(f"No operation matches GET {urlsplit(self.path).path}"), str(uuid.uuid4())
        )

    do_PUT = do_DELETE = do_PATCH = do_GET

    def answer_error(self, error: InvokeError, request_id: str) -> None:
        """The one place an :class:`InvokeError` becomes a status, headers and JSON body."""
        if isinstance(error, ModelError):
            log.warning("ModelError for %s: original status %s", self.path, error.original_status)
        self.send_json(
            error.status,
            error.body(),
            {
                "x-amzn-ErrorType": f"{error.error_type}:http://internal.amazon.com/coral/com.amazonaws.sagemaker/",
                "x-amzn-RequestId": request_id,
            },
        )

    def _length_or_none(self) -> int | None:
        try:
            return self.content_length()
        except BadRequestBody:
            return None


def make_server(config: RuntimeConfig, port: int = 0, host: str = "127.0.0.1") -> LoopbackServer:
    """A ready-to-serve runtime server (call ``serve_forever``; ``port=0`` picks a free port)."""
    handler = type("BoundRuntimeHandler", (RuntimeHandler,), {"runtime": Runtime(config)})
    return LoopbackServer(host, port, handler)


def _media_types(text: str) -> tuple[str, ...]:
    return tuple(t.strip() for t in text.split(",") if t.strip())


def _capture_settings(args: argparse.Namespace) -> CaptureSettings | None:
    if args.capture_dir is None:
        return None
    try:
        return CaptureSettings(
            root=args.capture_dir,
            sampling_percentage=args.capture_sampling,
            csv_content_types=_media_types(args.capture_csv_types),
            json_content_types=_media_types(args.capture_json_types),
            seed=args.capture_seed,
        )
    except ValueError as exc:
        raise SystemExit(f"--capture-sampling: {exc}") from None


def _parse_endpoint(text: str) -> Endpoint:
    name, sep, url = text.partition("=")
    if not sep or not name or not url:
        raise argparse.ArgumentTypeError(f"--endpoint {text!r} must be NAME=http://127.0.0.1:PORT")
    variant = "AllTraffic"
    if "#" in url:
        url, variant = url.split("#", 1)
    return Endpoint(name, url.rstrip("/"), variant)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m pipeline.local.runtime``: serve until SIGTERM/SIGINT."""
    settings = load_local_settings()
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.local.runtime", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--endpoint",
        action="append",
        type=_parse_endpoint,
        required=True,
        help="NAME=http://127.0.0.1:PORT[#VARIANT] (repeatable)",
    )
    parser.add_argument("--port", type=int, default=settings.runtime_port, help="0 picks a free port")
    parser.add_argument("--port-file", type=Path, help="write the bound port here once listening")
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--log-hint", help="where the container log is (named in ModelError messages)")
    parser.add_argument("--capture-dir", type=Path, help="turn on data capture, writing under this folder")
    parser.add_argument("--capture-sampling", type=int, default=100, help="percent of invocations captured")
    parser.add_argument("--capture-csv-types", default=",".join(DEFAULT_CSV_TYPES), help="comma-separated")
    parser.add_argument("--capture-json-types", default=",".join(DEFAULT_JSON_TYPES), help="comma-separated")
    parser.add_argument("--capture-seed", type=int, help="seed the sampling (tests)")
    args = parser.parse_args(argv)
    configure_logging("runtime")
    config = RuntimeConfig(
        endpoints={ep.name: ep for ep in args.endpoint},
        region=args.region,
        account_id=settings.account_id,
        invocation_timeout_s=settings.invocation_timeout_s,
        ping_timeout_s=settings.ping_timeout_s,
        log_hint=args.log_hint,
        capture=_capture_settings(args),
    )
    server = make_server(config, args.port)
    write_port_file(args.port_file, server.port)
    log.info(
        "InvokeEndpoint listening on http://127.0.0.1:%d (endpoints: %s)",
        server.port,
        ", ".join(f"{e.name} -> {e.container_url}" for e in args.endpoint),
    )
    if config.capture is not None:
        log.info(
            "data capture: %d%% of invocations to %s", config.capture.sampling_percentage, config.capture.root
        )
    try:
        return serve_until_signalled(server)
    finally:
        server.RequestHandlerClass.runtime.close()  # type: ignore[attr-defined]


if __name__ == "__main__":
    raise SystemExit(main())
