"""Lambda proxy responses: the only shape API Gateway accepts (anything else becomes its 502)."""

from __future__ import annotations

import base64
import json
from typing import Any

from lambda_proxy.errors import ProxyError

JSON = "application/json"
# Lambda quota "Invocation payload (request and response)": 6 MB for synchronous invocations, which
# is 6,291,456 bytes of the serialized result, i.e. this whole proxy response as JSON (statusCode,
# headers, the escaped or base64 body). Over it Lambda drops the result and API Gateway answers a
# bare 502. https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html
LAMBDA_RESPONSE_LIMIT_BYTES = 6_291_456
# Room kept under the quota for the envelope the runtime may serialize differently from
# serialized_size (whitespace, key order, a header added later); a few KB cost no real answer.
RESPONSE_MARGIN_BYTES = 4096
MAX_RESPONSE_BYTES = LAMBDA_RESPONSE_LIMIT_BYTES - RESPONSE_MARGIN_BYTES
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


def serialized_size(response: dict[str, Any]) -> int:
    """Bytes of ``response`` once the Lambda runtime serializes it, at most (what its quota counts).

    The runtime's JSON encoder uses ``json.dumps``'s separators; it escapes non-ASCII characters
    (``\\uXXXX``, 6 or 12 bytes) on older runtimes and writes UTF-8 (2 to 4 bytes) on python3.12.
    ``json.dumps``'s defaults escape, so this is an upper bound for every runtime.
    """
    return len(json.dumps(response).encode("ascii"))


def _shape(status: int, headers: dict[str, str], body: str, is_base64: bool) -> dict[str, Any]:
    return {"statusCode": status, "headers": headers, "body": body, "isBase64Encoded": is_base64}
