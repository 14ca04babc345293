"""The API Gateway REST proxy event (payload format 1.0), parsed into what the proxy needs."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lambda_proxy.errors import ProxyError


@dataclass(frozen=True)
class ProxyRequest:
    method: str
    resource: str
    headers: Mapping[str, str]  # names lower-cased: HTTP header names are case-insensitive
    body: bytes
    request_id: str | None
    api_key_id: str | None

    def header(self, name: str) -> str | None:
        """A header's value by case-insensitive name, or None."""
        return self.headers.get(name.lower())


def parse_event(event: Mapping[str, Any]) -> ProxyRequest:
    """Parse a REST proxy event; raises ProxyError(400) for a body that cannot be decoded."""
    context = event.get("requestContext") or {}
    identity = context.get("identity") or {}
    return ProxyRequest(
        method=str(event.get("httpMethod") or context.get("httpMethod") or "").upper(),
        resource=str(event.get("resource") or context.get("resourcePath") or event.get("path") or ""),
        headers=_headers(event),
        body=_body(event),
        request_id=context.get("requestId"),
        api_key_id=identity.get("apiKeyId"),
    )


def _headers(event: Mapping[str, Any]) -> dict[str, str]:
    merged: dict[str, str] = {}
    # multiValueHeaders carries every value; headers only the last one. Either may be null.
    for name, values in (event.get("multiValueHeaders") or {}).items():
        if values:
            merged[name.lower()] = ", ".join(str(v) for v in values)
    for name, value in (event.get("headers") or {}).items():
        if value is not None:
            merged.setdefault(name.lower(), str(value))
    return merged


def _body(event: Mapping[str, Any]) -> bytes:
    body = event.get("body")
    if body is None:
        return b""
    if event.get("isBase64Encoded"):
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise ProxyError(
                400, "malformed_body", "the body is marked base64-encoded but is not valid base64"
            ) from None
    return body.encode("utf-8") if isinstance(body, str) else bytes(body)
