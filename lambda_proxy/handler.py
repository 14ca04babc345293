"""Lambda entry point: API Gateway REST proxy event in, proxy response out, always.

Routes (the API's resources): ``POST /predict`` forwards the body to the SageMaker endpoint named by
``ENDPOINT_NAME``; ``GET /health`` answers without touching the model (it proves the key, the gateway
and this function work; ``python -m pipeline cloud status`` reports the endpoint itself).

One JSON log line per request: ids, route, status, latencies, sizes and error code; never the API
key or any payload value.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Mapping
from typing import Any

from lambda_proxy import runtime
from lambda_proxy.errors import ProxyError, from_invoke_failure
from lambda_proxy.proxy_event import ProxyRequest, parse_event
from lambda_proxy.responses import (
    JSON,
    LAMBDA_RESPONSE_LIMIT_BYTES,
    MAX_RESPONSE_BYTES,
    error_response,
    proxy_response,
    serialized_size,
)
from lambda_proxy.settings import DEFAULT_REQUEST_TYPE, Settings, SettingsError, load_settings

ROUTES: dict[str, tuple[str, ...]] = {"/predict": ("POST",), "/health": ("GET",)}


def handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    """The Lambda handler (``lambda_proxy.handler.handler``)."""
    started = time.monotonic()
    log: dict[str, Any] = {"event": "request", "lambda_request_id": getattr(context, "aws_request_id", None)}
    request_id = _request_id(event)
    log["request_id"] = request_id
    try:
        request = parse_event(event)
        log.update(method=request.method, resource=request.resource, api_key_id=request.api_key_id)
        response = _route(request, context, log)
    except ProxyError as error:
        log["error_code"] = error.code
        response = error_response(error, request_id)
    except Exception as exc:  # the gateway turns an escaped exception into a bare 502: answer instead
        log.update(error_code="internal_error", exception=type(exc).__name__)
        response = error_response(
            ProxyError(500, "internal_error", "the proxy failed unexpectedly"), request_id
        )
    response = _within_lambda_limit(response, request_id, log)
    log["status"] = response["statusCode"]
    log["latency_ms"] = round((time.monotonic() - started) * 1000, 1)
    _emit(log)
    return response


def _route(request: ProxyRequest, context: Any, log: dict[str, Any]) -> dict[str, Any]:
    allowed = ROUTES.get(request.resource)
    if allowed is None:
        raise ProxyError(404, "not_found", f"no route {request.resource or '(empty)'}; use POST /predict")
    if request.method not in allowed:
        raise ProxyError(
            405,
            "method_not_allowed",
            f"{request.method or '(none)'} is not allowed on {request.resource}; use {', '.join(allowed)}",
            [{"allowed_methods": list(allowed)}],
            headers={"Allow": ", ".join(allowed)},
        )
    if request.resource == "/health":
        return proxy_response(200, json.dumps({"status": "ok"}), JSON, _id_header(request.request_id))
    return _predict(request, context, log)


def _predict(request: ProxyRequest, context: Any, log: dict[str, Any]) -> dict[str, Any]:
    try:
        settings = load_settings()
    except SettingsError as exc:
        log["config_error"] = str(exc)
        raise ProxyError(500, "internal_error", "the proxy is misconfigured") from exc
    content_type = _check_content_type(request, settings)
    _check_size(request.body, settings)
    accept = request.header("Accept")
    log.update(content_type=content_type, accept=accept, bytes_in=len(request.body))
    invoke_started = time.monotonic()
    try:
        result = runtime.invoke(
            settings,
            request.body,
            content_type,
            accept,
            request.header("X-Amzn-SageMaker-Custom-Attributes"),
            remaining_s=_remaining(context),
        )
    except runtime.InvokeFailed as failed:
        log.update(attempts=failed.attempts, invoke_ms=_ms_since(invoke_started))
        log["upstream_error"] = _upstream_code(failed.cause)
        raise from_invoke_failure(failed.cause, settings.read_timeout_s, failed.attempts) from failed.cause
    log.update(attempts=result.attempts, invoke_ms=_ms_since(invoke_started), bytes_out=len(result.body))
    headers = _id_header(request.request_id)
    if result.custom_attributes:
        headers["X-Amzn-SageMaker-Custom-Attributes"] = result.custom_attributes
    return proxy_response(200, result.body, result.content_type, headers)


def _within_lambda_limit(
    response: dict[str, Any], request_id: str | None, log: dict[str, Any]
) -> dict[str, Any]:
    """``response``, or a 413 if Lambda would drop it for size (the caller would get a bare 502)."""
    size = serialized_size(response)
    log["response_bytes"] = size
    if size <= MAX_RESPONSE_BYTES:
        return response
    log["error_code"] = "response_too_large"
    error = ProxyError(
        413,
        "response_too_large",
        f"the answer to this request would be {size} bytes, over Lambda's {LAMBDA_RESPONSE_LIMIT_BYTES} "
        "byte response limit; split the records into smaller batches, or score large files with "
        "SageMaker Batch Transform",
        [{"limit_bytes": LAMBDA_RESPONSE_LIMIT_BYTES, "size_bytes": size}],
    )
    return error_response(error, request_id)


def _check_content_type(request: ProxyRequest, settings: Settings) -> str:
    """The Content-Type to forward (parameters kept; JSON when absent); 415 unless it is allowed."""
    value = (request.header("Content-Type") or "").strip() or DEFAULT_REQUEST_TYPE
    media_type = value.split(";", 1)[0].strip().lower()
    allowed = settings.allowed_content_types
    if media_type not in allowed:
        raise ProxyError(
            415,
            "unsupported_media_type",
            f"Content-Type {media_type} is not supported; send one of {', '.join(allowed)}",
            [{"supported": list(allowed)}],
        )
    return value


def _check_size(body: bytes, settings: Settings) -> None:
    if not body:
        raise ProxyError(400, "malformed_body", "the request body is empty; send one or more records")
    if len(body) > settings.max_payload_bytes:
        raise ProxyError(
            413,
            "payload_too_large",
            f"the request body is {len(body)} bytes; the limit is {settings.max_payload_bytes} bytes "
            "(SageMaker InvokeEndpoint's real-time limit)",
            [{"limit_bytes": settings.max_payload_bytes, "size_bytes": len(body)}],
        )


def _remaining(context: Any) -> Any:
    get_ms = getattr(context, "get_remaining_time_in_millis", None)
    if get_ms is None:
        return lambda: None
    return lambda: get_ms() / 1000.0


def _request_id(event: Mapping[str, Any]) -> str | None:
    context = event.get("requestContext") if isinstance(event, Mapping) else None
    return context.get("requestId") if isinstance(context, Mapping) else None


def _id_header(request_id: str | None) -> dict[str, str]:
    return {"X-Request-Id": request_id} if request_id else {}


def _upstream_code(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code", "")
        original = response.get("OriginalStatusCode")
        return f"{code}({original})" if original is not None else code
    return type(exc).__name__


def _ms_since(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 1)


def _emit(record: dict[str, Any]) -> None:
    # stdout is the function's CloudWatch log stream; one line per request, None fields dropped.
    line = json.dumps({k: v for k, v in record.items() if v is not None}, separators=(",", ":"))
    sys.stdout.write(line + "\n")
    sys.stdout.flush()
