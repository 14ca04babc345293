"""Every error the proxy answers, and the one mapping from InvokeEndpoint failures to them.

Bodies use the container's error shape (``container/inference/errors.py``) so a client parses one
format whichever hop answered::

    {"error": {"code": "...", "message": "...", "details": [...], "request_id": "..."}}

Mapping of InvokeEndpoint outcomes (after the retries in ``lambda_proxy/runtime.py``):

=====================================================  ======  ==========================
SageMaker answer                                       status  code
=====================================================  ======  ==========================
ModelError, container answered 4xx                     same    the container's own body
ModelError, container timed out (status 0) or 504      504     model_timeout
ModelError, container answered another 5xx             502     model_error
ValidationError: body over the size limit              413     payload_too_large
ValidationError (endpoint missing or not InService)    503     endpoint_unavailable
ThrottlingException (retried)                          429     too_many_requests
ModelNotReadyException (serverless cold start, ret.)   503     model_not_ready
ServiceUnavailable (retried)                           503     service_unavailable
other service errors (InternalFailure retried, ...)    502     upstream_error
read timeout (the Lambda's own budget; never retried)  504     model_timeout
cannot connect to the runtime endpoint (retried)       502     upstream_unreachable
connection closed before or while reading (retried)    502     upstream_connection_closed
any other HTTP client failure                          502     upstream_error
=====================================================  ======  ==========================

The handler adds one answer of its own after a success: a proxy response larger than Lambda's
response limit becomes 413 ``response_too_large`` (see ``lambda_proxy/responses.py``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    HTTPClientError,
    IncompleteReadError,
    ReadTimeoutError,
    ResponseStreamingError,
)
from botocore.exceptions import (
    ConnectionError as BotocoreConnectionError,
)

# Codes SageMaker returns quickly and that a short retry may clear.
RETRYABLE_CODES = frozenset(
    {"ThrottlingException", "ModelNotReadyException", "ServiceUnavailable", "InternalFailure"}
)
_MAX_PASSED_MESSAGE = 2048
# The connection went away before a whole answer arrived: closed or reset before the status line
# (typically a pooled connection that died while the execution environment was frozen), or cut
# while the body was being read. These are HTTPClientErrors, not botocore ConnectionErrors.
CONNECTION_LOST = (ConnectionClosedError, ResponseStreamingError, IncompleteReadError)


@dataclass(eq=False)
class ProxyError(Exception):
    """An answer other than success: status, machine code, human message, extra headers."""

    status: int
    code: str
    message: str
    details: list[dict[str, Any]] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    # A body to send verbatim (the container's own 4xx JSON), instead of building one.
    raw_body: str | None = None

    def __str__(self) -> str:
        return f"{self.status} {self.code}: {self.message}"

    def body(self, request_id: str | None) -> str:
        """The JSON body in the shared error shape."""
        if self.raw_body is not None:
            return self.raw_body
        payload: dict[str, Any] = {"code": self.code, "message": self.message, "details": self.details}
        if request_id:
            payload["request_id"] = request_id
        return json.dumps({"error": payload})


def is_retryable(exc: Exception) -> bool:
    """True for failures that come back fast and may clear on retry (never a read timeout)."""
    if isinstance(exc, ReadTimeoutError):
        return False  # checked first: it is an HTTPClientError too, and it has spent the budget
    if isinstance(exc, BotocoreConnectionError):
        return True  # connect timeout or refused: nothing reached the model
    if isinstance(exc, CONNECTION_LOST):
        # The request may have reached the model and been scored before the connection died.
        # Sending it again is safe: InvokeEndpoint only scores the records (no state changes,
        # nothing is stored or counted per request), so a repeat gives the same answer.
        return True
    if isinstance(exc, ClientError):
        return exc.response.get("Error", {}).get("Code") in RETRYABLE_CODES
    return False


def from_invoke_failure(exc: Exception, read_timeout_s: float, attempts: int = 1) -> ProxyError:
    """Translate an InvokeEndpoint exception (the last of ``attempts``) into the proxy's answer."""
    if isinstance(exc, ReadTimeoutError):
        return ProxyError(504, "model_timeout", f"the model did not answer within {read_timeout_s:g} s")
    tried = [{"attempts": attempts}]
    if isinstance(exc, BotocoreConnectionError):
        return ProxyError(
            502,
            "upstream_unreachable",
            f"could not connect to the SageMaker runtime ({_tries(attempts)})",
            tried,
        )
    if isinstance(exc, CONNECTION_LOST):
        return ProxyError(
            502,
            "upstream_connection_closed",
            "the connection to the SageMaker runtime closed before a complete answer arrived "
            f"({_tries(attempts)}); retry the request",
            tried,
        )
    if isinstance(exc, HTTPClientError):
        return ProxyError(
            502, "upstream_error", f"the call to the SageMaker runtime failed ({type(exc).__name__})", tried
        )
    if not isinstance(exc, ClientError):
        raise exc
    code = exc.response.get("Error", {}).get("Code", "")
    message = exc.response.get("Error", {}).get("Message", "") or ""
    if code == "ModelError":
        return _from_model_error(exc.response)
    if code == "ValidationError":
        if "oversize" in message.lower() or "content length" in message.lower():
            return ProxyError(
                413, "payload_too_large", "the request body is larger than the endpoint accepts"
            )
        return ProxyError(
            503, "endpoint_unavailable", "the model endpoint is not available (missing or not InService)"
        )
    if code == "ThrottlingException":
        return ProxyError(
            429,
            "too_many_requests",
            "the model endpoint is throttling requests",
            headers={"Retry-After": "1"},
        )
    if code == "ModelNotReadyException":
        return ProxyError(
            503, "model_not_ready", "the model is starting; retry shortly", headers={"Retry-After": "5"}
        )
    if code == "ServiceUnavailable":
        return ProxyError(503, "service_unavailable", "SageMaker is unavailable; retry shortly")
    return ProxyError(502, "upstream_error", f"SageMaker failed the request ({code or 'unknown error'})")


def _tries(attempts: int) -> str:
    return "1 attempt" if attempts == 1 else f"{attempts} attempts"


def _from_model_error(response: dict[str, Any]) -> ProxyError:
    original_status = _as_int(response.get("OriginalStatusCode"))
    original = response.get("OriginalMessage") or ""
    if original_status == 0 or original_status == 504 or "timed out" in (response.get("Message") or ""):
        return ProxyError(504, "model_timeout", "the model container did not answer in time")
    if original_status is not None and 400 <= original_status < 500:
        if _is_error_document(original):
            return ProxyError(original_status, "model_client_error", "", raw_body=original)
        return ProxyError(original_status, "model_client_error", original[:_MAX_PASSED_MESSAGE])
    details: list[dict[str, Any]] = [{"container_status": original_status}]
    container_code = _container_code(original)
    if container_code:
        details[0]["container_code"] = container_code
    return ProxyError(502, "model_error", f"the model container failed (HTTP {original_status})", details)


def _as_int(value: object) -> int | None:
    try:
        return int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def _is_error_document(text: str) -> bool:
    try:
        doc = json.loads(text)
    except ValueError:
        return False
    return isinstance(doc, dict) and isinstance(doc.get("error"), dict)


def _container_code(text: str) -> str | None:
    if not _is_error_document(text):
        return None
    code = json.loads(text)["error"].get("code")
    return code if isinstance(code, str) else None
