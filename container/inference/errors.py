"""Typed serving errors and the one place that turns any of them into a status and a JSON body.

Error body schema (stable; the Lambda proxy and the OpenAPI description rely on it)::

    {
      "error": {
        "code": "invalid_records",          # machine-readable, snake_case, one per error class
        "message": "2 problems in 1 record", # human-readable summary
        "details": [                         # always a list, possibly empty
          {"record": 0, "field": "age", "problem": "out_of_range", "message": "..."}
        ],
        "request_id": "9f0c..."              # the X-Request-Id response header
      }
    }

nginx renders the same shape for the errors it answers itself (413, 502, 504, ...), see nginx.conf.
"""

from __future__ import annotations

from typing import Any

import orjson

JSON_MEDIA_TYPE = "application/json"


class ServingError(Exception):
    """Base of every error the app answers deliberately; subclasses fix the status and code."""

    status: int = 500
    code: str = "internal_error"

    def __init__(self, message: str, details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or []


class MalformedBody(ServingError):
    """The body cannot be parsed as its declared content type (JSON syntax, CSV shape, encoding)."""

    status = 400
    code = "malformed_body"


class InvalidRecords(ServingError):
    """Records parsed but do not match the schema; ``details`` lists record, field and problem."""

    status = 400
    code = "invalid_records"


class NotFound(ServingError):
    status = 404
    code = "not_found"


class MethodNotAllowed(ServingError):
    status = 405
    code = "method_not_allowed"

    def __init__(self, message: str, allowed: list[str]) -> None:
        super().__init__(message, [{"allowed_methods": allowed}])
        self.allowed = allowed


class NotAcceptable(ServingError):
    status = 406
    code = "not_acceptable"


class PayloadTooLarge(ServingError):
    status = 413
    code = "payload_too_large"


class UnsupportedMediaType(ServingError):
    status = 415
    code = "unsupported_media_type"


class ModelNotReady(ServingError):
    """The model failed to load or its self-check failed; ``/ping`` reports the same reason."""

    status = 503
    code = "model_not_ready"


class DeadlineExceeded(ServingError):
    """The request used up its time budget; answered by the app before gunicorn would kill the worker."""

    status = 504
    code = "deadline_exceeded"


class InternalError(ServingError):
    """A real server fault; the message never carries internals (they go to the log)."""

    status = 500
    code = "internal_error"


def error_body(error: ServingError, request_id: str | None) -> bytes:
    """The JSON body for ``error`` in the documented schema."""
    payload: dict[str, Any] = {
        "code": error.code,
        "message": error.message,
        "details": error.details,
    }
    if request_id:
        payload["request_id"] = request_id
    return orjson.dumps({"error": payload})


def error_response_parts(error: ServingError, request_id: str | None) -> tuple[int, bytes, dict[str, str]]:
    """Status, body and extra headers for ``error``: the single mapping used by the app."""
    headers = {"Content-Type": JSON_MEDIA_TYPE}
    if isinstance(error, MethodNotAllowed):
        headers["Allow"] = ", ".join(error.allowed)
    return error.status, error_body(error, request_id), headers
