"""The lean path for ``POST /invocations`` and ``GET /ping``: answered at the WSGI level, before
Flask's machinery.

Flask's request context, URL routing, before/after hooks and response object cost more CPU than
scoring one record does. A plain ``POST /invocations`` whose body has a ``Content-Length`` (which is
every request behind nginx: it buffers the body and always sends one) is answered here with the same
pipeline (``InvocationService.invoke``), the same request id, the same error mapping and the same
request log line as the Flask route; so is a plain ``GET /ping`` (``InvocationService.health``).
Everything else (other paths and methods, chunked bodies, a script root) goes to Flask unchanged,
so routing errors, 405s and the rest keep their one implementation.

:func:`create_server` is what gunicorn serves. Its Flask app is built the first time a request
needs it: nginx answers ``/ping`` once the server is ready and the lean path answers every
``POST /invocations`` and early ``/ping`` it sends, so a worker may never need Flask at all, and
importing it (with werkzeug, jinja2 and click) took a third of the server's start-up. This module
imports neither.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any

from inference.errors import MalformedBody, ServingError
from inference.readiness import ModelState
from inference.request_context import begin_request, error_parts, internal_error
from inference.request_log import RequestTimer
from inference.service import InvocationService
from inference.settings import Settings

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
PATH = "/invocations"
PING_PATH = "/ping"
# The status line Flask (werkzeug) writes, so both paths answer byte-for-byte alike (a test
# compares every status a ServingError can have with werkzeug's table).
_STATUS_LINES = {status.value: f"{status.value} {status.phrase.upper()}" for status in HTTPStatus}


class InvocationsWSGI:
    """WSGI middleware: answers plain ``POST /invocations`` and ``GET /ping`` itself and hands every
    other request on."""

    def __init__(self, flask_wsgi: WSGIApp, service: InvocationService) -> None:
        self._flask = flask_wsgi
        self._service = service

    @property
    def model_state(self) -> ModelState:
        """The loaded model's state (gunicorn's post_worker_init writes the ready file from it)."""
        return self._service.state

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        method, path = environ.get("REQUEST_METHOD"), environ.get("PATH_INFO")
        if environ.get("SCRIPT_NAME") or "HTTP_TRANSFER_ENCODING" in environ:
            return self._flask(environ, start_response)
        length = environ.get("CONTENT_LENGTH") or ""
        if path == PATH and method == "POST" and length.isascii() and length.isdigit():
            return self._invocations(environ, start_response, int(length))
        if path == PING_PATH and method == "GET" and not length:
            return self._ping(environ, start_response)
        return self._flask(environ, start_response)

    def _invocations(
        self, environ: dict[str, Any], start_response: Callable[..., Any], content_length: int
    ) -> Iterable[bytes]:
        timer, queued_s = begin_request(
            environ.get("HTTP_X_REQUEST_ID"),
            "POST",
            PATH,
            content_length,
            environ.get("HTTP_X_REQUEST_START"),
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
        return _respond(start_response, timer, status, body, headers)

    def _ping(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        """``GET /ping`` as the Flask route answers it. nginx answers pings itself once a worker is up
        (the ready file); before that, and when the model failed to load, they come here."""
        timer, _ = begin_request(
            environ.get("HTTP_X_REQUEST_ID"), "GET", PING_PATH, None, environ.get("HTTP_X_REQUEST_START")
        )
        try:
            status, body, headers = 200, self._service.health(), {"Content-Type": "application/json"}
        except ServingError as error:
            status, body, headers = error_parts(error, timer)
        return _respond(start_response, timer, status, body, headers)


def _respond(
    start_response: Callable[..., Any], timer: RequestTimer, status: int, body: bytes, headers: dict[str, str]
) -> list[bytes]:
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
    return InvocationsWSGI(_FlaskOnFirstUse(settings, service), service)


class _FlaskOnFirstUse:
    """The Flask app (:func:`inference.app.build_flask_app`), imported and built by the first request
    the lean path hands on; every request after that goes straight to it."""

    def __init__(self, settings: Settings, service: InvocationService) -> None:
        self._arguments = (settings, service)
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
