"""The Flask application: routes, the request pipeline and the one error-to-response mapping.

Request path for ``POST /invocations``: negotiate Content-Type and Accept -> check size -> decode ->
validate against the artifact's schema -> score (chunked, under a deadline) -> encode.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np
import orjson
from flask import Flask, Response, g, request
from werkzeug.exceptions import HTTPException

from inference.content_types import OUTPUT_TYPES, negotiate_accept, parse_media_type, request_format
from inference.decoding import decode
from inference.encoding import Labeller, encode
from inference.errors import (
    MethodNotAllowed,
    ModelNotReady,
    NotFound,
    PayloadTooLarge,
    ServingError,
)
from inference.invocations_wsgi import InvocationsWSGI
from inference.memory import PAUSE_GC_FROM_BYTES, TRIM_FROM_BYTES, garbage_collection_paused
from inference.readiness import READY_BODY, ModelState
from inference.request_context import begin_request, error_parts, internal_error
from inference.request_log import RequestTimer, log_event
from inference.scoring import Deadline, score
from inference.settings import Settings
from inference.validation import Validator
from pipeline.heap import release_freed_memory


def create_app(settings: Settings, state: ModelState) -> Flask:
    """Build the app for an already loaded model ``state`` (loading happens once, before workers fork)."""
    app = Flask("inference")
    app.config["MAX_CONTENT_LENGTH"] = settings.max_payload_bytes
    default_accept = _default_accept(settings.default_accept)
    service = _Service(settings, state, default_accept)
    app.extensions["model_state"] = state  # read by gunicorn's post_worker_init (health file)

    @app.before_request
    def _start() -> None:
        g.timer, g.queued_s = begin_request(
            request.headers.get("X-Request-Id"),
            request.method,
            request.path,
            request.content_length,
            request.headers.get("X-Request-Start"),
        )

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
        # Reached only by requests the lean path (inference.invocations_wsgi) hands on to Flask.
        body, media_type = service.invoke(
            request.headers.get("Content-Type"),
            request.headers.get("Accept"),
            request.content_length,
            lambda: request.get_data(cache=False),
            g.timer,
            g.get("queued_s"),
        )
        return Response(body, status=200, content_type=media_type)

    @app.errorhandler(ServingError)
    def _serving_error(error: ServingError) -> Response:
        return _error_response(error)

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException) -> Response:
        return _error_response(_from_werkzeug(error, settings))

    @app.errorhandler(Exception)
    def _unexpected(error: Exception) -> Response:
        return _error_response(internal_error(g.get("timer"), error))

    app.wsgi_app = InvocationsWSGI(app.wsgi_app, service)  # type: ignore[method-assign]
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

    def invoke(
        self,
        content_type: str | None,
        accept: str | None,
        content_length: int | None,
        read_body: Callable[[], bytes],
        timer: RequestTimer,
        queued_s: float | None,
    ) -> tuple[bytes, str]:
        """Run the pipeline for one request; the response body and its media type (or a ServingError)."""
        deadline = Deadline(self.settings.request_deadline_s, queued_s or 0.0)
        if not self.state.ready:
            raise ModelNotReady(self.state.reason or "model is not loaded")
        deadline.check("queueing")
        fmt = request_format(content_type)
        output = negotiate_accept(accept, self.default_accept)
        timer.note(content_type=fmt, accept=output)
        limit = self.settings.max_payload_bytes
        if content_length is not None and content_length > limit:
            raise _too_large(limit, content_length)
        body = read_body()
        if len(body) < PAUSE_GC_FROM_BYTES:
            return self._answer(body, fmt, output, timer, deadline), output
        try:
            with garbage_collection_paused():
                return self._answer(body, fmt, output, timer, deadline), output
        finally:  # _answer's decoded and validated batch is garbage now: hand its pages back
            if len(body) >= TRIM_FROM_BYTES:
                release_freed_memory()

    def _answer(self, body: bytes, fmt: str, output: str, timer: RequestTimer, deadline: Deadline) -> bytes:
        """Decode, validate, score and encode ``body``: the response body."""
        decoded = decode(body, fmt, self.validator.names, self.validator.header_names)
        timer.note(records=decoded.n_records)
        chunk_rows = self.settings.scoring_chunk_rows
        blocks = self.validator.validate_blocks(decoded, chunk_rows)
        if blocks is None:  # JSON, JSON Lines, CSV that needs the csv module: validated whole
            batch = self.validator.validate(decoded)
            if batch.unknown_categories:
                timer.note(unknown_categories=batch.unknown_categories)
            return encode(score(self.state.engine, batch, deadline, chunk_rows), self.labeller, output)
        parts: list[np.ndarray] = []
        unknown: Counter[str] = Counter()
        for start, batch in blocks:
            if start == 0:  # the first block, or the whole body validated again (see validate_blocks)
                parts.clear()
                unknown.clear()
            else:
                deadline.check("scoring")
            unknown.update(batch.unknown_categories)
            parts.append(score(self.state.engine, batch, deadline, chunk_rows))
        if unknown:
            timer.note(unknown_categories=dict(unknown))
        probabilities = parts[0] if len(parts) == 1 else np.concatenate(parts)
        return encode(probabilities, self.labeller, output)


def _error_response(error: ServingError) -> Response:
    status, body, headers = error_parts(error, g.get("timer"))
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
