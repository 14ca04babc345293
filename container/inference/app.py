"""The Flask application: routes, the request pipeline and the one error-to-response mapping.

Request path for ``POST /invocations``: negotiate Content-Type and Accept -> check size -> decode ->
validate against the artifact's schema -> score (chunked, under a deadline) -> encode.
"""

from __future__ import annotations

import re
import time
import traceback
import uuid
from typing import Any

import orjson
from flask import Flask, Response, g, request
from werkzeug.exceptions import HTTPException

from inference.content_types import OUTPUT_TYPES, negotiate_accept, parse_media_type, request_format
from inference.decoding import decode
from inference.encoding import Labeller, encode
from inference.errors import (
    InternalError,
    MethodNotAllowed,
    ModelNotReady,
    NotFound,
    PayloadTooLarge,
    ServingError,
    error_response_parts,
)
from inference.readiness import READY_BODY, ModelState
from inference.request_log import RequestTimer, log_event
from inference.scoring import Deadline, score
from inference.settings import Settings
from inference.validation import Validator

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def create_app(settings: Settings, state: ModelState) -> Flask:
    """Build the app for an already loaded model ``state`` (loading happens once, before workers fork)."""
    app = Flask("inference")
    app.config["MAX_CONTENT_LENGTH"] = settings.max_payload_bytes
    default_accept = _default_accept(settings.default_accept)
    service = _Service(settings, state, default_accept)
    app.extensions["model_state"] = state  # read by gunicorn's post_worker_init (health file)

    @app.before_request
    def _start() -> None:
        supplied = request.headers.get("X-Request-Id", "")
        request_id = supplied if _REQUEST_ID.match(supplied) else uuid.uuid4().hex
        g.timer = RequestTimer(request_id, request.method, request.path, request.content_length)
        g.queued_s = _queued_seconds(request.headers.get("X-Request-Start"))
        if g.queued_s is not None:
            g.timer.note(queue_ms=round(g.queued_s * 1000, 3))

    @app.after_request
    def _finish(response: Response) -> Response:
        timer: RequestTimer | None = g.get("timer")
        if timer is not None:
            response.headers["X-Request-Id"] = timer.fields["request_id"]
            timer.finish(response.status_code, response.calculate_content_length() or 0)
        return response

    @app.get("/ping")
    def ping() -> Response:
        if not state.ready:
            raise ModelNotReady(state.reason or "model is not loaded")
        return Response(READY_BODY, status=200, content_type="application/json")

    @app.get("/execution-parameters")
    def execution_parameters() -> Response:
        return _json(
            {
                "MaxConcurrentTransforms": settings.workers,
                "BatchStrategy": "MULTI_RECORD",
                "MaxPayloadInMB": settings.max_payload_mb,
            }
        )

    @app.post("/invocations")
    def invocations() -> Response:
        return service.invoke()

    @app.errorhandler(ServingError)
    def _serving_error(error: ServingError) -> Response:
        return _error_response(error)

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException) -> Response:
        return _error_response(_from_werkzeug(error, settings))

    @app.errorhandler(Exception)
    def _unexpected(error: Exception) -> Response:
        timer: RequestTimer | None = g.get("timer")
        log_event(
            "error",
            "unhandled_exception",
            request_id=timer.fields["request_id"] if timer else None,
            exception=type(error).__name__,
            traceback=traceback.format_exc(),
        )
        return _error_response(
            InternalError("internal server error; see the container log for this request id")
        )

    return app


class _Service:
    """The /invocations pipeline, built once per app with the schema-derived helpers it needs."""

    def __init__(self, settings: Settings, state: ModelState, default_accept: str) -> None:
        self.settings = settings
        self.state = state
        self.default_accept = default_accept
        engine = state.engine
        if engine is not None:
            self.validator = Validator(engine.schema)
            self.labeller = Labeller(
                engine.threshold, engine.schema.positive_label, engine.schema.negative_label
            )

    def invoke(self) -> Response:
        deadline = Deadline(self.settings.request_deadline_s, g.get("queued_s") or 0.0)
        timer: RequestTimer = g.timer
        if not self.state.ready:
            raise ModelNotReady(self.state.reason or "model is not loaded")
        deadline.check("queueing")
        fmt = request_format(request.headers.get("Content-Type"))
        output = negotiate_accept(request.headers.get("Accept"), self.default_accept)
        timer.note(content_type=fmt, accept=output)
        limit = self.settings.max_payload_bytes
        if request.content_length is not None and request.content_length > limit:
            raise _too_large(limit, request.content_length)
        body = request.get_data(cache=False)
        decoded = decode(body, fmt, self.validator.names, self.validator.header_names)
        timer.note(records=len(decoded.rows))
        batch = self.validator.validate(decoded)
        if batch.unknown_categories:
            timer.note(unknown_categories=batch.unknown_categories)
        probabilities = score(self.state.engine, batch, deadline, self.settings.scoring_chunk_rows)
        return Response(encode(probabilities, self.labeller, output), status=200, content_type=output)


def _error_response(error: ServingError) -> Response:
    timer: RequestTimer | None = g.get("timer")
    request_id = timer.fields["request_id"] if timer else None
    if timer is not None:
        # Field names (never values), joined into one string that a log query can group by, rank the
        # fields clients get wrong.
        fields = sorted({d["field"] for d in error.details if isinstance(d.get("field"), str)})
        timer.note(error_code=error.code, invalid_fields=",".join(fields) or None)
    status, body, headers = error_response_parts(error, request_id)
    return Response(body, status=status, headers=headers)


def _from_werkzeug(error: HTTPException, settings: Settings) -> ServingError:
    """Routing and protocol errors raised by Flask/werkzeug, as typed serving errors."""
    if error.code == 404:
        return NotFound(
            f"no such path {request.path!r}; the endpoints are POST /invocations, GET /ping, "
            "GET /execution-parameters"
        )
    if error.code == 405:
        allowed = sorted(m for m in (getattr(error, "valid_methods", None) or []) if m != "OPTIONS")
        return MethodNotAllowed(
            f"{request.method} is not allowed on {request.path}; use {', '.join(allowed)}", allowed
        )
    if error.code == 413:
        return _too_large(settings.max_payload_bytes, request.content_length)
    generic = ServingError(error.description or error.name)
    generic.status = error.code or 500
    generic.code = re.sub(r"[^a-z0-9]+", "_", (error.name or "error").lower()).strip("_")
    return generic


def _queued_seconds(header: str | None) -> float | None:
    """Seconds since nginx passed the request on (``X-Request-Start: t=<epoch seconds>``), if sane."""
    if not header or not header.startswith("t="):
        return None
    try:
        queued = time.time() - float(header[2:])
    except ValueError:
        return None
    # Clock steps or a forged header must not fail requests: ignore anything implausible.
    return queued if 0.0 <= queued <= 3600.0 else None


def _too_large(limit: int, received: int | None) -> PayloadTooLarge:
    mib = limit / (1024 * 1024)
    details: dict[str, Any] = {"limit_bytes": limit}
    if received is not None:
        details["received_bytes"] = received
    return PayloadTooLarge(
        f"the request body exceeds the limit of {limit} bytes ({mib:g} MiB); "
        "split the records into smaller requests",
        [details],
    )


def _default_accept(configured: str) -> str:
    media = parse_media_type(configured)
    if media is not None and media.essence in OUTPUT_TYPES:
        return media.essence
    log_event("warning", "bad_default_accept", configured=configured, using=OUTPUT_TYPES[0])
    return OUTPUT_TYPES[0]


def _json(payload: dict[str, Any]) -> Response:
    return Response(orjson.dumps(payload), status=200, content_type="application/json")
