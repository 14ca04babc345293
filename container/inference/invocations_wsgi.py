"""The lean path for ``POST /invocations``: answered at the WSGI level, before Flask's machinery.

Flask's request context, URL routing, before/after hooks and response object cost more CPU than
scoring one record does. A plain ``POST /invocations`` whose body has a ``Content-Length`` (which is
every request behind nginx: it buffers the body and always sends one) is answered here with the same
pipeline (``InvocationService.invoke``), the same request id, the same error mapping and the same
request log line as the Flask route. Everything else (other paths and methods, chunked bodies, a
script root) goes to Flask unchanged, so routing errors, 405s and the rest keep their one
implementation.

:func:`create_server` is what gunicorn serves. Its Flask app is built the first time a request
needs it: nginx answers ``/ping`` once the server is ready and the lean path answers every
``POST /invocations`` it sends, so a worker may never need Flask at all, and importing it (with
werkzeug, jinja2 and click) took a third of the server's start-up. This module imports neither.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any

from inference.errors import MalformedBody, ServingError
from inference.readiness import ModelState
from inference.request_context import begin_request, error_parts, internal_error
from inference.service import InvocationService
from inference.settings import Settings

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
PATH = "/invocations"
# The status line Flask (werkzeug) writes, so both paths answer byte-for-byte alike (a test
# compares every status a ServingError can have with werkzeug's table).
_STATUS_LINES = {status.value: f"{status.value} {status.phrase.upper()}" for status in HTTPStatus}


class InvocationsWSGI:
    """WSGI middleware: answers plain ``POST /invocations`` itself and hands every other request on."""

    def __init__(self, flask_wsgi: WSGIApp, service: InvocationService) -> None:
        self._flask = flask_wsgi
        self._service = service

    @property
    def model_state(self) -> ModelState:
        """The loaded model's state (gunicorn's post_worker_init writes the ready file from it)."""
        return self._service.state

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        length = environ.get("CONTENT_LENGTH") or ""
        if (
            environ.get("PATH_INFO") != PATH
            or environ.get("REQUEST_METHOD") != "POST"
            or environ.get("SCRIPT_NAME")
            or "HTTP_TRANSFER_ENCODING" in environ
            or not (length.isascii() and length.isdigit())
        ):
            return self._flask(environ, start_response)
        content_length = int(length)
        request_start = environ.get("HTTP_X_REQUEST_START")
        timer, queued_s = begin_request(
            environ.get("HTTP_X_REQUEST_ID"), "POST", PATH, content_length, request_start
        )
        try:
            body, media_type = self._service.invoke(
                environ.get("CONTENT_TYPE"),
                environ.get("HTTP_ACCEPT"),
                content_length,
                lambda: _read_body(environ["wsgi.input"], content_length),
                timer,
                queued_s,
            )
            status, headers = 200, {"Content-Type": media_type}
        except ServingError as error:
            status, body, headers = error_parts(error, timer)
        except Exception as error:  # the same contract as Flask's catch-all handler: JSON 500, logged
            status, body, headers = error_parts(internal_error(timer, error), timer)
        request_id = timer.fields["request_id"]
        start_response(
            _STATUS_LINES.get(status, str(status)),
            [*headers.items(), ("Content-Length", str(len(body))), ("X-Request-Id", request_id)],
        )
        timer.finish(status, len(body))
        return [body]


def create_server(settings: Settings, state: ModelState) -> InvocationsWSGI:
    """The WSGI app gunicorn serves: the lean path, with the Flask app built on first use."""
    service = InvocationService(settings, state)
    return InvocationsWSGI(_FlaskOnFirstUse(settings, state, service), service)


class _FlaskOnFirstUse:
    """The Flask app (:func:`inference.app.build_flask_app`), imported and built by the first request
    the lean path hands on; every request after that goes straight to it."""

    def __init__(self, settings: Settings, state: ModelState, service: InvocationService) -> None:
        self._arguments = (settings, state, service)
        self._app: WSGIApp | None = None

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if self._app is None:
            from inference.app import build_flask_app

            self._app = build_flask_app(*self._arguments)
        return self._app(environ, start_response)


def _read_body(stream: Any, length: int) -> bytes:
    """Exactly ``length`` bytes (a short body is the client's mistake: 400, as werkzeug answers it)."""
    body = stream.read(length) if length else b""
    if len(body) != length:
        raise MalformedBody(f"the request body ended after {len(body)} of its {length} Content-Length bytes")
    return body
