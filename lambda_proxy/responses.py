"""Lambda proxy responses: the only shape API Gateway accepts (anything else becomes its 502)."""

from __future__ import annotations

import base64
from typing import Any

from lambda_proxy.errors import ProxyError

JSON = "application/json"
# Media types returned as text; anything else is base64-encoded so binary survives the gateway.
_TEXT_TYPES = ("text/", "application/json", "application/jsonlines", "application/x-jsonlines")


def proxy_response(
    status: int, body: bytes | str, content_type: str, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    """``{statusCode, headers, body, isBase64Encoded}`` with the body as text when it is text."""
    all_headers = {"Content-Type": content_type, **(headers or {})}
    if isinstance(body, str):
        return _shape(status, all_headers, body, False)
    if content_type.lower().startswith(_TEXT_TYPES):
        try:
            return _shape(status, all_headers, body.decode("utf-8"), False)
        except UnicodeDecodeError:
            pass
    return _shape(status, all_headers, base64.b64encode(body).decode("ascii"), True)


def error_response(error: ProxyError, request_id: str | None) -> dict[str, Any]:
    """The proxy response for ``error`` in the shared JSON error shape."""
    headers = dict(error.headers)
    if request_id:
        headers["X-Request-Id"] = request_id
    return proxy_response(error.status, error.body(request_id), JSON, headers)


def _shape(status: int, headers: dict[str, str], body: str, is_base64: bool) -> dict[str, Any]:
    return {"statusCode": status, "headers": headers, "body": body, "isBase64Encoded": is_base64}
