"""The lean WSGI path for POST /invocations answers exactly as the Flask route it bypasses.

Every request is sent twice through the real app: once as a server hands it over (the lean path
answers) and once straight to Flask's own WSGI callable (the route in ``app.py``). Status line,
headers, body and the request log line must be identical, for successes and for every error class
the pipeline raises.
"""

from __future__ import annotations

import io
import json
import sys
import time
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from inference.app import create_app
from inference.invocations_wsgi import InvocationsWSGI
from inference.readiness import ModelState
from inference.settings import load_settings

from .conftest import RECORD
from .test_app_inprocess import BrokenEngine, SlowEngine

CSV_ROW = ",".join(str(v) for v in RECORD.values()).encode()

CASES: list[tuple[str, bytes, dict[str, str]]] = [
    ("one JSON record", orjson.dumps(RECORD), {"CONTENT_TYPE": "application/json"}),
    ("CSV row, CSV answer", CSV_ROW, {"CONTENT_TYPE": "text/csv", "HTTP_ACCEPT": "text/csv"}),
    ("JSON lines answer", orjson.dumps([RECORD, RECORD]), {"HTTP_ACCEPT": "application/jsonlines"}),
    ("invalid record", orjson.dumps({**RECORD, "age": 777}), {"CONTENT_TYPE": "application/json"}),
    ("bad JSON", b"{not json", {"CONTENT_TYPE": "application/json"}),
    ("empty body", b"", {"CONTENT_TYPE": "application/json"}),
    ("unsupported type", b"x", {"CONTENT_TYPE": "image/png"}),
    ("not acceptable", orjson.dumps(RECORD), {"HTTP_ACCEPT": "image/png"}),
    ("too large", b"x" * (1024 * 1024 + 1), {"CONTENT_TYPE": "text/csv"}),
    ("stale in the queue", orjson.dumps(RECORD), {"HTTP_X_REQUEST_START": f"t={time.time() - 120:.3f}"}),
]
SUCCESSES = ("one JSON record", "CSV row, CSV answer", "JSON lines answer")


def environ(body: bytes, extra: dict[str, str]) -> dict[str, Any]:
    return {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/invocations",
        "SCRIPT_NAME": "",
        "QUERY_STRING": "",
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.0",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "CONTENT_LENGTH": str(len(body)),
        "HTTP_X_REQUEST_ID": "req-1",
        **extra,
    }


def call(wsgi: Callable, env: dict[str, Any], capfd: pytest.CaptureFixture[str]) -> tuple:
    answer: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: object = None) -> None:
        answer["status"], answer["headers"] = status, sorted(headers)

    body = b"".join(wsgi(env, start_response))
    lines = [json.loads(x) for x in capfd.readouterr().out.splitlines() if '"event":"request"' in x]
    assert len(lines) == 1  # one request line per request, on either path
    line = {k: v for k, v in lines[0].items() if k not in ("ts", "latency_ms", "queue_ms")}
    return answer["status"], answer["headers"], body, line


@pytest.mark.parametrize(("name", "body", "extra"), CASES, ids=[c[0] for c in CASES])
def test_lean_path_answers_like_the_flask_route(
    name: str, body: bytes, extra: dict[str, str], capfd: pytest.CaptureFixture[str]
) -> None:
    settings = load_settings({"SAGEMAKER_MAX_PAYLOAD_IN_MB": "1", "SAGEMAKER_MODEL_SERVER_TIMEOUT": "60"})
    app = create_app(settings, ModelState(engine=SlowEngine(0.0), ready=True, reason=None))
    lean = app.wsgi_app
    assert isinstance(lean, InvocationsWSGI)
    fast = call(lean, environ(body, extra), capfd)
    slow = call(lean._flask, environ(body, extra), capfd)
    assert fast == slow
    assert fast[0].startswith("200 ") == (name in SUCCESSES)
    assert ("X-Request-Id", "req-1") in fast[1] and fast[3]["request_id"] == "req-1"


@pytest.mark.parametrize("engine", [BrokenEngine(0.0), SlowEngine(0.0)], ids=["engine fault", "not ready"])
def test_lean_path_faults_answer_like_the_flask_route(engine, capfd: pytest.CaptureFixture[str]) -> None:
    ready = isinstance(engine, BrokenEngine)
    app = create_app(
        load_settings({}), ModelState(engine=engine, ready=ready, reason=None if ready else "broken")
    )
    fast = call(app.wsgi_app, environ(orjson.dumps(RECORD), {}), capfd)
    slow = call(app.wsgi_app._flask, environ(orjson.dumps(RECORD), {}), capfd)
    assert fast == slow
    assert fast[0] == ("500 INTERNAL SERVER ERROR" if ready else "503 SERVICE UNAVAILABLE")
    assert b"secret internal detail" not in fast[2]


def test_only_plain_post_invocations_takes_the_lean_path(capfd: pytest.CaptureFixture[str]) -> None:
    app = create_app(load_settings({}), ModelState(engine=SlowEngine(0.0), ready=True, reason=None))
    seen: list[str] = []
    flask_wsgi = app.wsgi_app._flask
    app.wsgi_app._flask = lambda env, sr: seen.append(env["PATH_INFO"]) or flask_wsgi(env, sr)
    call(app.wsgi_app, environ(orjson.dumps(RECORD), {}), capfd)
    assert seen == []
    chunked = environ(orjson.dumps(RECORD), {"HTTP_TRANSFER_ENCODING": "chunked"})
    call(app.wsgi_app, chunked, capfd)
    get = {**environ(b"", {}), "REQUEST_METHOD": "GET"}
    status = call(app.wsgi_app, get, capfd)[0]
    assert seen == ["/invocations", "/invocations"] and status.startswith("405")


def test_a_short_body_is_a_json_400(capfd: pytest.CaptureFixture[str]) -> None:
    app = create_app(load_settings({}), ModelState(engine=SlowEngine(0.0), ready=True, reason=None))
    env = {**environ(b'{"age": 3', {}), "CONTENT_LENGTH": "100"}
    status, _headers, body, line = call(app.wsgi_app, env, capfd)
    assert status.startswith("400") and orjson.loads(body)["error"]["code"] == "malformed_body"
    assert b"9 of its 100" in body and line["status"] == 400


@pytest.mark.parametrize("ready", [True, False], ids=["ready", "not ready"])
def test_lean_ping_answers_like_the_flask_route(ready: bool, capfd: pytest.CaptureFixture[str]) -> None:
    """Pings reach the app before the ready file exists (and when the model failed to load)."""
    state = ModelState(engine=SlowEngine(0.0), ready=ready, reason=None if ready else "model is broken")
    app = create_app(load_settings({}), state)
    ping = {**environ(b"", {}), "REQUEST_METHOD": "GET", "PATH_INFO": "/ping"}
    del ping["CONTENT_LENGTH"]
    flask_wsgi, seen = app.wsgi_app._flask, []
    app.wsgi_app._flask = lambda env, sr: seen.append(env["PATH_INFO"]) or flask_wsgi(env, sr)
    fast = call(app.wsgi_app, dict(ping), capfd)
    assert seen == []  # answered by the lean path, not handed to Flask
    slow = call(flask_wsgi, dict(ping), capfd)
    assert fast == slow
    if ready:
        assert fast[0] == "200 OK" and fast[2] == b'{"status":"ok"}'
    else:
        assert fast[0] == "503 SERVICE UNAVAILABLE"
        assert orjson.loads(fast[2])["error"]["message"] == "model is broken"
