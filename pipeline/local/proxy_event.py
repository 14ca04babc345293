"""The Lambda proxy integration's formats (REST API, payload format 1.0): the event in, the response out.

:func:`build_event` makes the event API Gateway sends a proxy Lambda: header names keep the client's
casing, ``headers`` keeps the last value of a repeated header and ``multiValueHeaders`` all of them,
absent query strings and path parameters are ``null``, and ``requestContext`` carries the stage,
request id and the caller's identity including ``apiKey`` and ``apiKeyId``.

:func:`parse_response` accepts exactly the shape API Gateway accepts
(``statusCode``, ``headers``, ``multiValueHeaders``, ``body``, ``isBase64Encoded``); anything else is a
:class:`MalformedProxyResponse`, which the gateway answers with 502 as API Gateway does.
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import parse_qsl

RESPONSE_KEYS = frozenset({"statusCode", "headers", "multiValueHeaders", "body", "isBase64Encoded"})
# Headers API Gateway sets itself; a Lambda's values for them are passed on renamed, as AWS does.
REMAPPED_HEADERS = frozenset({"connection", "content-length", "date", "transfer-encoding", "server"})


@dataclass(frozen=True)
class Caller:
    """Who sent the request, as API Gateway saw it."""

    source_ip: str
    user_agent: str | None
    api_key: str | None
    api_key_id: str | None


@dataclass(frozen=True)
class ApiContext:
    """The API the request arrived on."""

    api_id: str
    account_id: str
    stage: str
    domain_name: str


@dataclass(frozen=True)
class ProxyResponse:
    """A validated proxy response, ready to send."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes


class MalformedProxyResponse(Exception):
    """The Lambda's return value is not a valid proxy response (API Gateway answers 502)."""


def build_event(
    *,
    method: str,
    resource: str,
    path: str,
    query: str,
    headers: Sequence[tuple[str, str]],
    body: bytes,
    binary: bool,
    caller: Caller,
    api: ApiContext,
    request_id: str,
    now: float | None = None,
) -> dict[str, object]:
    """The REST proxy event (format 1.0) for one request; ``path`` is without the stage prefix."""
    now = time.time() if now is None else now
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for name, value in headers:
        single[name] = value
        multi.setdefault(name, []).append(value)
    query_single: dict[str, str] = {}
    query_multi: dict[str, list[str]] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        query_single[name] = value
        query_multi.setdefault(name, []).append(value)
    if not body:
        event_body: str | None = None
    elif binary:
        event_body = base64.b64encode(body).decode("ascii")
    else:
        event_body = body.decode("utf-8", errors="replace")
    stamp = datetime.fromtimestamp(now, UTC)
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": single,
        "multiValueHeaders": multi,
        "queryStringParameters": query_single or None,
        "multiValueQueryStringParameters": query_multi or None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "resourceId": api.api_id[:6],
            "resourcePath": resource,
            "httpMethod": method,
            "extendedRequestId": request_id[:16],
            "requestTime": stamp.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "path": f"/{api.stage}{path}",
            "accountId": api.account_id,
            "protocol": "HTTP/1.1",
            "stage": api.stage,
            "domainPrefix": api.domain_name.split(".", 1)[0],
            "requestTimeEpoch": int(now * 1000),
            "requestId": request_id,
            "identity": {
                "cognitoIdentityPoolId": None,
                "accountId": None,
                "cognitoIdentityId": None,
                "caller": None,
                "apiKey": caller.api_key,
                "apiKeyId": caller.api_key_id,
                "sourceIp": caller.source_ip,
                "principalOrgId": None,
                "accessKey": None,
                "cognitoAuthenticationType": None,
                "cognitoAuthenticationProvider": None,
                "userArn": None,
                "userAgent": caller.user_agent,
                "user": None,
            },
            "domainName": api.domain_name,
            "apiId": api.api_id,
        },
        "body": event_body,
        "isBase64Encoded": bool(body) and binary,
    }


def parse_response(result: object) -> ProxyResponse:
    """Validate a Lambda's return value as a proxy response; MalformedProxyResponse if it is not one."""
    if not isinstance(result, dict):
        raise MalformedProxyResponse(f"the response is a {type(result).__name__}, not a JSON object")
    unknown = sorted(set(result) - RESPONSE_KEYS)
    if unknown:
        raise MalformedProxyResponse(f"unexpected keys {unknown}; allowed: {sorted(RESPONSE_KEYS)}")
    status = result.get("statusCode")
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        raise MalformedProxyResponse(f"statusCode must be an integer HTTP status, got {status!r}")
    headers: list[tuple[str, str]] = []
    for name, value in _mapping(result, "headers").items():
        headers.append((str(name), _scalar(name, value)))
    for name, values in _mapping(result, "multiValueHeaders").items():
        if not isinstance(values, list):
            raise MalformedProxyResponse(f"multiValueHeaders[{name!r}] must be a list")
        seen = {v for n, v in headers if n.lower() == str(name).lower()}
        headers.extend((str(name), _scalar(name, v)) for v in values if _scalar(name, v) not in seen)
    encoded = result.get("isBase64Encoded", False)
    if not isinstance(encoded, bool):
        raise MalformedProxyResponse(f"isBase64Encoded must be a boolean, got {encoded!r}")
    body = result.get("body")
    if body is None:
        data = b""
    elif not isinstance(body, str):
        raise MalformedProxyResponse(f"body must be a string, got {type(body).__name__}")
    elif encoded:
        try:
            data = base64.b64decode(body, validate=True)
        except binascii.Error:
            raise MalformedProxyResponse("isBase64Encoded is true but body is not base64") from None
    else:
        data = body.encode("utf-8")
    remapped = [(f"x-amzn-Remapped-{n}" if n.lower() in REMAPPED_HEADERS else n, v) for n, v in headers]
    return ProxyResponse(status, remapped, data)


def _mapping(result: dict[str, object], key: str) -> dict[str, object]:
    value = result.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise MalformedProxyResponse(f"{key} must be an object, got {type(value).__name__}")
    return value


def _scalar(name: object, value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise MalformedProxyResponse(f"header {name!r} must have a string value, got {type(value).__name__}")
