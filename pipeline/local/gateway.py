"""Local API Gateway (REST API): the stage's routes, API keys, the usage plan, the Lambda proxy.

Built from the deploy configuration (:mod:`pipeline.local.deployment`), it behaves as API Gateway does
for this API, in this order:

1. body over 10 MB: 413 ``{"message":"Request Too Long"}``;
2. no such stage, resource or method: 403 ``{"message":"Missing Authentication Token"}``;
3. ``x-api-key`` missing, unknown or revoked: 403 ``{"message":"Forbidden"}`` (keys from
   :mod:`pipeline.local.keys`, compared in constant time);
4. the key's token bucket is empty: 429 ``{"message":"Too Many Requests"}``; its quota for the
   period is used up: 429 ``{"message":"Limit Exceeded"}``;
5. the REST proxy event (format 1.0) is built and the real ``lambda_proxy`` handler runs in a separate
   worker process (:mod:`pipeline.local.lambda_pool`): an event over Lambda's 6 MB limit gets 413,
   a failed invocation or a malformed proxy response 502 ``{"message": "Internal server error"}``, no
   answer within the 29 s integration timeout 504 ``{"message": "Endpoint request timed out"}``.

Run it with ``python -m pipeline.local.gateway --runtime-url http://127.0.0.1:PORT``.
"""

from __future__ import annotations

import argparse
import base64
import json
import logging
import secrets
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from pipeline.cloud.config import ConfigError, parse_override
from pipeline.local.deployment import LAMBDA_HANDLER, LocalDeployment, Route, load_deployment
from pipeline.local.http_server import (
    BadRequestBody,
    BodyTooLarge,
    JsonHandler,
    LoopbackServer,
    configure_logging,
    serve_until_signalled,
    write_port_file,
)
from pipeline.local.keys import KeyRecord, KeyStoreView
from pipeline.local.lambda_pool import (
    FunctionError,
    FunctionSpec,
    IntegrationTimeout,
    LambdaPool,
    PayloadTooLarge,
)
from pipeline.local.proxy_event import ApiContext, Caller, MalformedProxyResponse, build_event, parse_response
from pipeline.local.settings import GATEWAY_MAX_BODY_BYTES, load_local_settings
from pipeline.local.usage_plan import Clock, QuotaExceeded, Throttled, UsagePlan

log = logging.getLogger("pipeline.local.gateway")


# --- the gateway's own answers: status, message and x-amzn-ErrorType, sent in one place ---


class GatewayError(Exception):
    status = 500
    message = "Internal server error"
    error_type: str | None = "InternalServerErrorException"

    def __init__(self, detail: str = "") -> None:
        super().__init__(detail or self.message)
        self.detail = detail  # for the gateway's log only; clients get ``message``


class MissingAuthenticationToken(GatewayError):
    status, message, error_type = 403, "Missing Authentication Token", "MissingAuthenticationTokenException"


class Forbidden(GatewayError):
    status, message, error_type = 403, "Forbidden", "ForbiddenException"


class TooManyRequests(GatewayError):
    status, message, error_type = 429, "Too Many Requests", "TooManyRequestsException"


class LimitExceeded(GatewayError):
    status, message, error_type = 429, "Limit Exceeded", "LimitExceededException"


class RequestTooLarge(GatewayError):
    status, message, error_type = 413, "Request Too Long", None


class BadRequest(GatewayError):
    status, message, error_type = 400, "Bad Request", "BadRequestException"


class EndpointTimeout(GatewayError):
    status, message, error_type = 504, "Endpoint request timed out", "InternalServerErrorException"


class InternalServerError(GatewayError):
    status, message, error_type = 502, "Internal server error", "InternalServerErrorException"


@dataclass
class Request:
    """What the gateway needs from one HTTP request."""

    method: str
    raw_path: str
    headers: list[tuple[str, str]]
    source_ip: str
    request_id: str

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        return next((v for n, v in self.headers if n.lower() == lowered), None)


class Gateway:
    """API Gateway's request pipeline for one REST API stage, independent of the HTTP server."""

    def __init__(
        self,
        deployment: LocalDeployment,
        keys: KeyStoreView,
        pool: LambdaPool,
        integration_timeout_s: float,
        clock: Clock | None = None,
        binary_media_types: tuple[str, ...] = (),
    ) -> None:
        self.deployment = deployment
        self.keys = keys
        self.pool = pool
        self.integration_timeout_s = integration_timeout_s
        self.plan = UsagePlan(deployment.plan, clock)
        self.binary_media_types = binary_media_types
        self._routes = {(r.method, r.resource): r for r in deployment.routes}
        self.api = ApiContext(
            api_id=deployment.api_id,
            account_id=deployment.account_id,
            stage=deployment.stage,
            domain_name=f"{deployment.api_id}.execute-api.localhost",
        )

    def route(self, method: str, raw_path: str) -> tuple[Route, str, str]:
        """The route for a request, its resource path (without stage) and query string."""
        parts = urlsplit(raw_path)
        stage, _, rest = parts.path.lstrip("/").partition("/")
        resource = "/" + rest
        route = self._routes.get((method, resource)) if stage == self.deployment.stage else None
        if route is None:
            raise MissingAuthenticationToken(f"no method {method} {parts.path}")
        return route, resource, parts.query

    def authorize(self, route: Route, api_key: str | None) -> KeyRecord | None:
        """The caller's key record if the method needs one; Forbidden if missing, unknown or revoked."""
        if not route.api_key_required:
            return None
        if not api_key:
            raise Forbidden("no x-api-key header")
        record = self.keys.lookup(api_key)
        if record is None:
            raise Forbidden("unknown API key")
        if not record.enabled:
            raise Forbidden(f"API key {record.id} is revoked")
        return record

    def admit(self, key: KeyRecord | None) -> None:
        """Apply the usage plan to the key: TooManyRequests or LimitExceeded when over it."""
        if key is None:
            return
        try:
            self.plan.admit(key.id)
        except Throttled:
            limits = self.plan.limits
            raise TooManyRequests(
                f"key {key.id} throttled (rate {limits.rate:g}, burst {limits.burst})"
            ) from None
        except QuotaExceeded:
            limits = self.plan.limits
            raise LimitExceeded(
                f"key {key.id} quota exhausted (limit {limits.quota_limit} per {limits.quota_period})"
            ) from None

    def integrate(
        self,
        request: Request,
        route: Route,
        resource: str,
        query: str,
        body: bytes,
        key: KeyRecord | None,
        api_key: str | None,
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        """Run the Lambda proxy integration; returns status, headers and body for the client."""
        content_type = (request.header("Content-Type") or "").split(";", 1)[0].strip().lower()
        event = build_event(
            method=request.method,
            resource=resource,
            path=resource,
            query=query,
            headers=[*request.headers, *self._added_headers(request)],
            body=body,
            binary=content_type in self.binary_media_types,
            caller=Caller(request.source_ip, request.header("User-Agent"), api_key, key.id if key else None),
            api=self.api,
            request_id=request.request_id,
        )
        payload = json.dumps(event, separators=(",", ":")).encode("utf-8")
        try:
            result = self.pool.invoke(payload, request.request_id, self.integration_timeout_s)
        except PayloadTooLarge as exc:
            raise RequestTooLarge(f"Execution failed: {exc}") from None
        except IntegrationTimeout as exc:
            raise EndpointTimeout(f"Execution failed due to a timeout error: {exc}") from None
        except FunctionError as exc:
            raise InternalServerError(f"Lambda execution failed: {exc}") from None
        try:
            response = parse_response(result)
        except MalformedProxyResponse as exc:
            raise InternalServerError(
                f"Execution failed due to configuration error: Malformed Lambda proxy response: {exc}"
            ) from None
        headers = response.headers
        if not any(n.lower() == "content-type" for n, _ in headers):
            headers = [("Content-Type", "application/json"), *headers]
        return response.status, headers, response.body

    def _added_headers(self, request: Request) -> list[tuple[str, str]]:
        """Headers API Gateway adds to what the integration sees."""
        return [
            ("X-Amzn-Trace-Id", _trace_id()),
            ("X-Forwarded-For", request.source_ip),
            ("X-Forwarded-Port", "443"),
            ("X-Forwarded-Proto", "https"),
        ]


def _trace_id() -> str:
    return f"Root=1-{int(time.time()):08x}-{secrets.token_hex(12)}"


class GatewayHandler(JsonHandler):
    """HTTP front of :class:`Gateway` (the server binds ``gateway``)."""

    server_name = "local-apigateway"
    logger = log
    gateway: Gateway

    def handle_any(self) -> None:
        request = Request(
            method=self.command,
            raw_path=self.path,
            headers=list(self.headers.items()),
            source_ip=self.client_address[0],
            request_id=str(uuid.uuid4()),
        )
        try:
            status, headers, body = self._pipeline(request)
        except GatewayError as error:
            self.answer_error(error, request.request_id)
            return
        self.send_bytes(status, body, [*headers, *self._common_headers(request.request_id)])

    def _pipeline(self, request: Request) -> tuple[int, list[tuple[str, str]], bytes]:
        gateway = self.gateway
        try:
            length = self.content_length()
        except BadRequestBody as exc:
            self.close_connection = True
            raise BadRequest(str(exc)) from None
        if length is not None and length > GATEWAY_MAX_BODY_BYTES:
            self.drain(length)
            raise RequestTooLarge(f"HTTP content length {length} exceeds {GATEWAY_MAX_BODY_BYTES} bytes")
        try:
            route, resource, query = gateway.route(request.method, request.raw_path)
            api_key = request.header("x-api-key")
            key = gateway.authorize(route, api_key)
            gateway.admit(key)
        except GatewayError:
            self.drain(length)
            raise
        try:
            body = self.read_body(GATEWAY_MAX_BODY_BYTES)
        except BodyTooLarge as exc:
            raise RequestTooLarge(str(exc)) from None
        except BadRequestBody as exc:
            raise BadRequest(str(exc)) from None
        return gateway.integrate(request, route, resource, query, body, key, api_key)

    def answer_error(self, error: GatewayError, request_id: str) -> None:
        """The one place a :class:`GatewayError` becomes a status, headers and JSON body."""
        log.info(
            "%s %s -> %d %s (%s)",
            self.command,
            urlsplit(self.path).path,
            error.status,
            error.message,
            error.detail or "-",
        )
        headers = dict(self._common_headers(request_id))
        headers["Content-Type"] = "application/json"
        if error.error_type:
            headers["x-amzn-ErrorType"] = error.error_type
        body = json.dumps({"message": error.message}).encode("utf-8")
        self.send_bytes(error.status, body, headers)

    @staticmethod
    def _common_headers(request_id: str) -> list[tuple[str, str]]:
        apigw_id = base64.urlsafe_b64encode(secrets.token_bytes(12)).decode()[:16]
        return [("x-amzn-RequestId", request_id), ("x-amz-apigw-id", apigw_id)]

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = handle_any


def make_server(gateway: Gateway, port: int = 0, host: str = "127.0.0.1") -> LoopbackServer:
    """A ready-to-serve gateway server (``port=0`` picks a free port)."""
    handler = type("BoundGatewayHandler", (GatewayHandler,), {"gateway": gateway})
    return LoopbackServer(host, port, handler)


def build_gateway(
    runtime_url: str,
    *,
    config_path: Path | None = None,
    overrides: dict[str, object] | None = None,
    keys_file: Path | None = None,
    lambda_env: dict[str, str] | None = None,
    handler: str = LAMBDA_HANDLER,
    clock: Clock | None = None,
    integration_timeout_s: float | None = None,
) -> Gateway:
    """A gateway wired from the deploy configuration and local settings (the app factory)."""
    settings = load_local_settings()
    deployment = load_deployment(settings, config_path, overrides)
    spec = FunctionSpec(
        handler=handler,
        environment=deployment.lambda_environment(runtime_url, lambda_env),
        timeout_s=deployment.lambda_timeout_s,
        max_concurrency=settings.lambda_max_concurrency,
    )
    return Gateway(
        deployment,
        KeyStoreView(keys_file or settings.keys_file),
        LambdaPool(spec),
        settings.integration_timeout_s if integration_timeout_s is None else integration_timeout_s,
        clock,
    )


def _key_value(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"{text!r} must be NAME=VALUE")
    return name, value


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m pipeline.local.gateway``: serve until SIGTERM/SIGINT."""
    settings = load_local_settings()
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.local.gateway", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--runtime-url", required=True, help="the local InvokeEndpoint, http://127.0.0.1:PORT"
    )
    parser.add_argument("--port", type=int, default=settings.gateway_port, help="0 picks a free port")
    parser.add_argument("--port-file", type=Path, help="write the bound port here once listening")
    parser.add_argument("--config", type=Path, help="deploy configuration (default config/deploy.toml)")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override a deploy configuration value (repeatable)",
    )
    parser.add_argument(
        "--keys-file", type=Path, help="key store (default $LOCAL_SECRETS_DIR/local-keys.json)"
    )
    parser.add_argument(
        "--lambda-env",
        action="append",
        type=_key_value,
        default=[],
        metavar="NAME=VALUE",
        help="extra environment variable for the function (repeatable)",
    )
    parser.add_argument("--prewarm", type=int, default=1, help="Lambda environments to start up front")
    args = parser.parse_args(argv)
    configure_logging("gateway")
    try:
        overrides = dict(parse_override(text) for text in args.overrides)
        gateway = build_gateway(
            args.runtime_url,
            config_path=args.config,
            overrides=overrides,
            keys_file=args.keys_file,
            lambda_env=dict(args.lambda_env),
        )
    except ConfigError as exc:
        log.error("%s", exc)
        return 2
    # Start the first Lambda environment in the background: the port opens at once, and a request
    # arriving before the environment is ready simply starts its own (a cold start, as in Lambda).
    threading.Thread(target=gateway.pool.prewarm, args=(args.prewarm,), daemon=True).start()
    server = make_server(gateway, args.port)
    write_port_file(args.port_file, server.port)
    limits = gateway.deployment.plan
    log.info(
        "API Gateway listening on http://127.0.0.1:%d/%s (routes: %s; usage plan rate %g/s, burst %d, "
        "quota %d per %s; Lambda -> %s)",
        server.port, gateway.deployment.stage,
        ", ".join(f"{r.method} {r.resource}" for r in gateway.deployment.routes),
        limits.rate, limits.burst, limits.quota_limit, limits.quota_period, args.runtime_url,
    )  # fmt: skip
    try:
        return serve_until_signalled(server)
    finally:
        gateway.pool.close()


if __name__ == "__main__":
    raise SystemExit(main())
