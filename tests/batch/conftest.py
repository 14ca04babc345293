"""Fixtures for the batch tests: the real container (`container/serve`) and a recording proxy before it.

The proxy is real HTTP on loopback: it forwards every request to the container and records what the
runner did (bodies, sizes, requests in flight); it can also answer a chosen request itself with a
5xx or a dropped connection, or run a hook (kill a worker) while a request is being scored.
"""

from __future__ import annotations

import http.client
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from bench.live import ServeRun

CONTAINER_PAYLOAD_MB = 1
"""The session container's MaxPayloadInMB: small, so modest inputs span many mini-batches."""


@pytest.fixture(scope="session")
def container(released_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeRun]:
    """The released model behind the real nginx + gunicorn stack, 2 workers, MAX_PAYLOAD_MB=1."""
    server = ServeRun(
        released_model_dir,
        tmp_path_factory.mktemp("batch-serve-logs"),
        workers=2,
        env={"MAX_PAYLOAD_MB": str(CONTAINER_PAYLOAD_MB)},
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


@dataclass
class Recorder:
    """What the proxy saw, and the faults it should inject."""

    target: str
    bodies: list[bytes] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    faults: list[str] = field(default_factory=list)
    """Answers for the next /invocations requests instead of forwarding: "503" or "reset"."""
    during: dict[int, Callable[[], None]] = field(default_factory=dict)
    """Hooks run (in a thread) while the n-th (1-based) /invocations request is being forwarded."""
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return self._url

    def invocations(self) -> int:
        return len(self.bodies)


def _handler(recorder: Recorder) -> type[BaseHTTPRequestHandler]:
    target = urlsplit(recorder.target)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            self._forward(b"")

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with recorder.lock:
                recorder.bodies.append(body)
                number = len(recorder.bodies)
                fault = recorder.faults.pop(0) if recorder.faults else None
                recorder.in_flight += 1
                recorder.max_in_flight = max(recorder.max_in_flight, recorder.in_flight)
            try:
                if fault == "reset":
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                if fault is not None:
                    self._answer(int(fault), b'{"error": {"code": "injected", "message": "injected fault"}}')
                    return
                hook = recorder.during.pop(number, None)
                if hook is not None:
                    threading.Thread(target=hook, daemon=True).start()
                self._forward(body)
            finally:
                with recorder.lock:
                    recorder.in_flight -= 1

        def _forward(self, body: bytes) -> None:
            conn = http.client.HTTPConnection(target.hostname, target.port, timeout=120)
            headers = {k: v for k, v in self.headers.items() if k.lower() in ("content-type", "accept")}
            conn.request(self.command, self.path, body=body or None, headers=headers)
            response = conn.getresponse()
            data = response.read()
            conn.close()
            if self.command == "POST":
                with recorder.lock:
                    recorder.statuses.append(response.status)
            self._answer(response.status, data, response.getheader("Content-Type") or "application/json")

        def _answer(self, status: int, data: bytes, content_type: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler


@pytest.fixture
def proxy(container: ServeRun) -> Iterator[Recorder]:
    """A recording proxy in front of the session container."""
    yield from _proxy_for(container.url)


@pytest.fixture
def proxy_factory() -> Iterator[Callable[[str], Recorder]]:
    """Proxies in front of any container URL (stopped at teardown)."""
    generators = []

    def make(url: str) -> Recorder:
        gen = _proxy_for(url)
        generators.append(gen)
        return next(gen)

    yield make
    for gen in generators:
        for _ in gen:
            pass


def _proxy_for(url: str) -> Iterator[Recorder]:
    recorder = Recorder(url)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(recorder))
    server.daemon_threads = True
    recorder._url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield recorder
    finally:
        server.shutdown()
        server.server_close()
