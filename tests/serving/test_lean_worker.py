"""The lean gunicorn worker answers nginx's POST /invocations exactly as gunicorn's sync worker does.

Each request is sent as raw bytes over a real socket pair to the real app (the released model),
once through ``LeanSyncWorker.handle`` and once through gunicorn's own ``SyncWorker.handle``:
status, headers (but the ones nginx drops: Date, Server, Connection) and body must be identical,
for the short path and for every request it leaves to gunicorn.
"""

from __future__ import annotations

import socket
import sys
import threading
from pathlib import Path
from typing import Any

import orjson
import pytest
from gunicorn.config import Config
from gunicorn.glogging import Logger
from gunicorn.workers.sync import SyncWorker
from inference import lean_worker
from inference.app import create_app
from inference.lean_worker import LeanSyncWorker
from inference.readiness import load_model_state
from inference.settings import load_settings

from .conftest import RECORD

JSON_BODY = orjson.dumps(RECORD)
JSON = "application/json"
REQUEST_ID = "0123456789abcdef0123456789abcdef"
CSV_ROW = ",".join(str(v) for v in RECORD.values()).encode()


def nginx_request(body: bytes, content_type: str, accept: str | None = None, extra: str = "") -> bytes:
    """What nginx sends upstream (HTTP/1.0, its own headers first, then the client's)."""
    head = (
        "POST /invocations HTTP/1.0\r\nHost: model_server\r\n"
        f"X-Request-Id: {REQUEST_ID}\r\nX-Request-Start: t=1764820000.000\r\n"
        f"Content-Length: {len(body)}\r\nContent-Type: {content_type}\r\n"
        + (f"Accept: {accept}\r\n" if accept else "")
        + "User-Agent: python-requests/2.32\r\n"
        + extra
        + "\r\n"
    )
    return head.encode() + body


SHORT_PATH = {
    "JSON record": nginx_request(JSON_BODY, JSON),
    "CSV row, CSV answer": nginx_request(CSV_ROW, "text/csv", "text/csv"),
    "JSON lines answer": nginx_request(orjson.dumps([RECORD] * 3), JSON, "application/jsonlines"),
    "invalid record": nginx_request(orjson.dumps({**RECORD, "age": 777}), JSON),
    "bad JSON": nginx_request(b"{not json", JSON),
    "unsupported type": nginx_request(b"x", "image/png"),
    "custom attributes": nginx_request(JSON_BODY, JSON, extra="X-Amzn-SageMaker-Custom-Attributes: a=1\r\n"),
    "HTTP/1.1": nginx_request(JSON_BODY, JSON).replace(b"HTTP/1.0", b"HTTP/1.1", 1),
}
GUNICORN_PATH = {
    "GET /ping": b"GET /ping HTTP/1.0\r\nHost: model_server\r\nX-Request-Id: "
    + REQUEST_ID.encode()
    + b"\r\n\r\n",
    "query string": nginx_request(JSON_BODY, JSON).replace(b"/invocations", b"/invocations?a=1", 1),
    "other path": nginx_request(JSON_BODY, JSON).replace(b"/invocations", b"/nowhere", 1),
    "header with underscore": nginx_request(JSON_BODY, JSON, extra="X_Request_Id: spoof\r\n"),
    "repeated header": nginx_request(JSON_BODY, JSON, extra="Accept: text/csv\r\nAccept: text/csv\r\n"),
    "chunked": (
        b"POST /invocations HTTP/1.1\r\nHost: m\r\nX-Request-Id: " + REQUEST_ID.encode() + b"\r\n"
        b"Content-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
        + f"{len(JSON_BODY):x}\r\n".encode()
        + JSON_BODY
        + b"\r\n0\r\n\r\n"
    ),
    "no Content-Length": (
        b"POST /invocations HTTP/1.0\r\nHost: m\r\nX-Request-Id: " + REQUEST_ID.encode() + b"\r\n"
        b"Content-Type: text/csv\r\n\r\n"
    ),
    "folded header": nginx_request(JSON_BODY, JSON, extra="Accept: text/csv,\r\n application/json\r\n"),
    "head over the limit": nginx_request(JSON_BODY, JSON, extra=f"X-Pad: {'p' * 20_000}\r\n"),
    "bare CR in a value": nginx_request(JSON_BODY, JSON, extra="X-Note: a\rb\r\n"),
    "bare LF in a value": nginx_request(JSON_BODY, JSON, extra="X-Note: a\nb\r\n"),
    "NUL in a value": nginx_request(JSON_BODY, JSON, extra="X-Note: a\0b\r\n"),
    "bare LF ending a line": nginx_request(JSON_BODY, JSON, extra="X-Note: a\nX-Other: b\r\n"),
}


@pytest.fixture(scope="module")
def app(released_model_dir: Path) -> Any:
    settings = load_settings({"SAGEMAKER_MODEL_SERVER_WORKERS": "1", "MAX_PAYLOAD_MB": "1"})
    return create_app(settings, load_model_state(released_model_dir))


def make_worker(cls: type[SyncWorker], app: Any, max_requests: int = sys.maxsize) -> SyncWorker:
    """A worker as gunicorn's arbiter would have set it up, minus the process around it."""
    worker = cls.__new__(cls)
    worker.cfg = Config()
    worker.log = Logger(worker.cfg)
    worker.wsgi = app
    worker.nr = 0
    worker.max_requests = max_requests
    worker.alive = True
    if isinstance(worker, LeanSyncWorker):
        worker.lean = True
    return worker


def exchange(worker: SyncWorker, request: bytes, close_after_send: bool = False) -> bytes:
    """Send ``request`` over a socket pair to ``worker.handle``; everything it answers."""
    ours, theirs = socket.socketpair()
    listener = socket.socket(socket.AF_UNIX)  # only its getsockname() is asked for
    handler = threading.Thread(target=worker.handle, args=(listener, theirs, ""))
    handler.start()
    ours.sendall(request)
    if close_after_send:
        ours.shutdown(socket.SHUT_WR)
    answer = b""
    ours.settimeout(20)
    while chunk := ours.recv(65536):
        answer += chunk
    ours.close()
    handler.join(20)
    listener.close()
    assert not handler.is_alive()
    return answer


def comparable(answer: bytes) -> tuple[str, dict[str, str], bytes]:
    """Status code and reason, the headers nginx passes on, and the body."""
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = lines[0].split(" ", 1)[1]
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.lower() not in {"date", "server", "connection"}:
            headers[name.lower()] = value.strip()
    return status, headers, body


@pytest.mark.parametrize("case", sorted(SHORT_PATH))
def test_the_short_path_answers_as_gunicorn(app: Any, case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    request = SHORT_PATH[case]
    expected = comparable(exchange(make_worker(SyncWorker, app), request))
    fallbacks: list[bytes] = []
    monkeypatch.setattr(SyncWorker, "handle", lambda self, listener, client, addr: fallbacks.append(b""))
    answer = exchange(make_worker(LeanSyncWorker, app), request)
    assert fallbacks == []  # answered by the short path itself
    assert comparable(answer) == expected
    assert answer.startswith(request.split(b"\r\n", 1)[0].split(b" ")[2])  # the request's protocol
    assert b"\r\nConnection: close\r\n" in answer


@pytest.mark.parametrize("case", sorted(GUNICORN_PATH))
def test_other_requests_are_replayed_into_gunicorn(
    app: Any, case: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    request = GUNICORN_PATH[case]
    expected = exchange(make_worker(SyncWorker, app), request, close_after_send=True)
    replayed: list[int] = []
    original = SyncWorker.handle

    def counting(self: SyncWorker, listener: Any, client: Any, addr: Any) -> None:
        replayed.append(1)
        original(self, listener, client, addr)

    monkeypatch.setattr(SyncWorker, "handle", counting)
    answer = exchange(make_worker(LeanSyncWorker, app), request, close_after_send=True)
    assert replayed == [1]
    assert comparable(answer) == comparable(expected)
    assert answer.split(b"\r\n", 1)[0] == expected.split(b"\r\n", 1)[0]


def test_the_answers_are_scored(app: Any) -> None:
    status, headers, body = comparable(exchange(make_worker(LeanSyncWorker, app), SHORT_PATH["JSON record"]))
    assert status == "200 OK" and headers["content-type"] == JSON
    assert headers["x-request-id"] == REQUEST_ID
    assert int(headers["content-length"]) == len(body)
    assert orjson.loads(body)["predictions"][0]["label"] in {">50K", "<=50K"}


def test_a_body_left_unread_is_drained_and_answered_as_gunicorn(app: Any) -> None:
    """Content-Length over the app's limit: it answers 413 without reading the body."""
    request = nginx_request(b"x" * 1000, "text/csv").replace(
        b"Content-Length: 1000", b"Content-Length: 2000000"
    )
    expected = exchange(make_worker(SyncWorker, app), request, close_after_send=True)
    answer = exchange(make_worker(LeanSyncWorker, app), request, close_after_send=True)
    assert comparable(answer) == comparable(expected)
    assert comparable(answer)[0] == "413 REQUEST ENTITY TOO LARGE"


def test_a_body_shorter_than_its_length_is_a_400(app: Any) -> None:
    request = nginx_request(JSON_BODY, JSON).replace(
        f"Content-Length: {len(JSON_BODY)}".encode(), f"Content-Length: {len(JSON_BODY) + 10}".encode()
    )
    status, _, body = comparable(exchange(make_worker(LeanSyncWorker, app), request, close_after_send=True))
    assert status == "400 BAD REQUEST"
    assert orjson.loads(body)["error"]["code"] == "malformed_body"


def test_a_large_body_arriving_in_pieces_is_read_whole(app: Any) -> None:
    rows = b"".join([CSV_ROW + b"\n"] * 5000)
    ours, theirs = socket.socketpair()
    worker = make_worker(LeanSyncWorker, app)
    handler = threading.Thread(target=worker.handle, args=(socket.socket(socket.AF_UNIX), theirs, ""))
    handler.start()
    request = nginx_request(rows, "text/csv", "text/csv")
    for start in range(0, len(request), 7_001):  # odd-sized writes: the head split too
        ours.sendall(request[start : start + 7_001])
    answer = b""
    while chunk := ours.recv(65536):
        answer += chunk
    handler.join(20)
    status, _, body = comparable(answer)
    assert status == "200 OK" and body.count(b"\n") == 5000


def test_max_requests_ends_the_worker_after_the_request(app: Any) -> None:
    worker = make_worker(LeanSyncWorker, app, max_requests=2)
    exchange(worker, SHORT_PATH["JSON record"])
    assert worker.alive
    exchange(worker, SHORT_PATH["JSON record"])
    assert worker.nr == 2 and not worker.alive


def test_request_hooks_or_an_access_log_turn_the_short_path_off() -> None:
    def hooked(cfg: Config) -> LeanSyncWorker:
        worker = LeanSyncWorker.__new__(LeanSyncWorker)
        worker.cfg = cfg
        # init_process decides, then runs the sync worker's own start-up, which is not wanted here.
        original = SyncWorker.init_process
        SyncWorker.init_process = lambda self: None  # type: ignore[method-assign]
        try:
            worker.init_process()
        finally:
            SyncWorker.init_process = original  # type: ignore[method-assign]
        return worker

    assert hooked(Config()).lean
    with_hook = Config()
    with_hook.set("pre_request", lambda worker, req: None)
    assert not hooked(with_hook).lean
    with_log = Config()
    with_log.set("accesslog", "-")
    assert not hooked(with_log).lean


def test_gunicorn_serves_with_the_lean_worker() -> None:
    conf = (Path(lean_worker.__file__).parents[1] / "gunicorn.conf.py").read_text()
    assert 'worker_class = "inference.lean_worker.LeanSyncWorker"' in conf
