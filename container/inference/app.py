"""The Flask application: routes and the one error-to-response mapping.

``POST /invocations`` runs :class:`inference.service.InvocationService`. In front of the routes
sits the lean path (:mod:`inference.invocations_wsgi`), which answers nginx's plain
``POST /invocations`` requests with the same service before Flask's request machinery.
"""

from __future__ import annotations

import re
from typing import Any

import orjson
from flask import Flask, Response, g, request
from werkzeug.exceptions import HTTPException

from inference.errors import MethodNotAllowed, NotFound, ServingError
from inference.invocations_wsgi import InvocationsWSGI
from inference.readiness import ModelState
from inference.request_context import begin_request, error_parts, internal_error
from inference.request_log import RequestTimer
from inference.service import InvocationService, payload_too_large
from inference.settings import Settings


def create_app(settings: Settings, state: ModelState) -> Flask:
    """The app for an already loaded model ``state``, the lean path in front of its routes."""
    service = InvocationService(settings, state)
    app = build_flask_app(settings, service)
    app.wsgi_app = InvocationsWSGI(app.wsgi_app, service)  # type: ignore[method-assign]
    return app


def build_flask_app(settings: Settings, service: InvocationService) -> Flask:
    """The routes alone, running ``service`` (loading happens once, before the workers fork)."""
    app = Flask("inference")
    app.config["MAX_CONTENT_LENGTH"] = settings.max_payload_bytes

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
        return Response(service.health(), status=200, content_type="application/json")

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

    return app


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
        return payload_too_large(settings.max_payload_bytes, request.content_length)
    generic = ServingError(error.description or error.name)
    generic.status = error.code or 500
    generic.code = re.sub(r"[^a-z0-9]+", "_", (error.name or "error").lower()).strip("_")
    return generic


def _json(payload: dict[str, Any]) -> Response:
    return Response(orjson.dumps(payload), status=200, content_type="application/json")
