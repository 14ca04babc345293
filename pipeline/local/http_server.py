"""The threaded loopback HTTP server both local services run on, and request-body reading with a limit.

Standard library only (``http.server``): a thread per connection, HTTP/1.1 keep-alive (boto3 and
requests reuse connections), every response with a Content-Length. A body over its limit is drained
(up to :data:`DRAIN_LIMIT`) before the error is sent, so the client can read the answer instead of
failing on a reset connection half-way through its upload.
"""

from __future__ import annotations

import json
import logging
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

DRAIN_LIMIT = 64 * 1024 * 1024
"""Largest oversized body read and discarded before answering; past it the connection is closed."""
_CHUNK = 256 * 1024


class BodyTooLarge(Exception):
    """The request body exceeds the limit; ``size`` is its length when known (else None)."""

    def __init__(self, size: int | None, limit: int) -> None:
        super().__init__(f"body of {size if size is not None else 'unknown'} bytes exceeds {limit}")
        self.size = size
        self.limit = limit


class BadRequestBody(Exception):
    """The body framing is broken (bad Content-Length, bad chunk, client went away)."""


class LoopbackServer(ThreadingHTTPServer):
    """A threaded HTTP server; refuses to bind anything but a loopback address."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, host: str, port: int, handler: type[BaseHTTPRequestHandler]) -> None:
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError(f"the local cloud binds loopback only, not {host!r}")
        super().__init__((host, port), handler)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client hanging up mid-request is routine (timeouts, Ctrl-C); a traceback is not needed.
        exc = sys.exc_info()[1]
        if isinstance(exc, ConnectionError | TimeoutError):
            logging.getLogger("pipeline.local").info("client %s went away: %s", client_address, exc)
            return
        super().handle_error(request, client_address)


class JsonHandler(BaseHTTPRequestHandler):
    """Shared request plumbing: HTTP/1.1, body reading with a limit, byte and JSON responses."""

    protocol_version = "HTTP/1.1"
    # Headers and body leave in one write on a TCP_NODELAY socket: separate small writes would meet
    # the peer's delayed ACK and add ~40 ms to every loopback request.
    disable_nagle_algorithm = True
    server_name = "local"
    logger = logging.getLogger("pipeline.local")
    _started: float = 0.0

    def version_string(self) -> str:
        return self.server_name

    def content_length(self) -> int | None:
        """The declared Content-Length (None when absent or chunked); BadRequestBody if malformed."""
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return None
        raw = self.headers.get("Content-Length")
        if raw is None:
            return None
        try:
            length = int(raw)
        except ValueError:
            raise BadRequestBody(f"Content-Length {raw!r} is not a number") from None
        if length < 0:
            raise BadRequestBody(f"Content-Length {raw!r} is negative")
        return length

    def read_body(self, limit: int) -> bytes:
        """The whole body (Content-Length or chunked); BodyTooLarge past ``limit`` bytes."""
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return self._read_chunked(limit)
        length = self.content_length() or 0
        if length > limit:
            self.drain(length)
            raise BodyTooLarge(length, limit)
        body = self.rfile.read(length)
        if len(body) != length:
            self.close_connection = True
            raise BadRequestBody(f"the body ended after {len(body)} of {length} bytes")
        return body

    def drain(self, length: int | None) -> None:
        """Read and discard an unwanted body so the error response reaches the client."""
        if length is None or length > DRAIN_LIMIT:
            self.close_connection = True
            return
        remaining = length
        while remaining > 0:
            chunk = self.rfile.read(min(_CHUNK, remaining))
            if not chunk:
                self.close_connection = True
                return
            remaining -= len(chunk)

    def _read_chunked(self, limit: int) -> bytes:
        parts: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(1024)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                self.close_connection = True
                raise BadRequestBody("malformed chunked encoding") from None
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass  # trailers are ignored
                return b"".join(parts)
            total += size
            if total > limit:
                self.close_connection = True
                raise BodyTooLarge(None, limit)
            parts.append(self.rfile.read(size))
            self.rfile.readline(1024)

    def send_bytes(
        self,
        status: int,
        body: bytes,
        headers: Iterable[tuple[str, str]] | Mapping[str, str] = (),
    ) -> None:
        """Send a complete response with ``body`` and ``headers`` (Content-Length is added)."""
        items = headers.items() if isinstance(headers, Mapping) else headers
        self.send_response(status)
        for name, value in items:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self._headers_buffer.append(b"\r\n")
        payload = b"".join(self._headers_buffer) + (body if self.command != "HEAD" else b"")
        self._headers_buffer = []
        try:
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def send_json(self, status: int, payload: Any, headers: Mapping[str, str] | None = None) -> None:
        """Send ``payload`` as compact JSON with Content-Type application/json."""
        body = json.dumps(payload, separators=(",", ":")).encode("utf-8")
        self.send_bytes(status, body, {"Content-Type": "application/json", **(headers or {})})

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        # One access line per request: method, path, status, time. Never headers or bodies (keys!).
        elapsed_ms = (time.perf_counter() - self._started) * 1000 if self._started else 0.0
        self.logger.info("%s %s -> %s (%.1f ms)", self.command, self.path, code, elapsed_ms)

    def log_message(self, format: str, *args: Any) -> None:
        self.logger.warning("%s: " + format, self.address_string(), *args)

    def parse_request(self) -> bool:
        self._started = time.perf_counter()
        return super().parse_request()


def write_port_file(path: Path | None, port: int) -> None:
    """Atomically record the port a service bound (how a parent learns a port chosen by the OS)."""
    if path is None:
        return
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(f"{port}\n", encoding="utf-8")
    tmp.replace(path)


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """True if nothing listens on ``host:port`` right now (a hint only; another process may take it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def configure_logging(service: str) -> None:
    """Log lines to stderr as ``time level service message`` (the stack sends stderr to run/logs)."""
    logging.basicConfig(
        level=logging.INFO,
        format=f"%(asctime)s %(levelname)s {service} %(message)s",
    )


def serve_until_signalled(server: LoopbackServer) -> int:
    """Serve until SIGTERM or SIGINT, then stop accepting and close (in-flight requests finish)."""

    def stop(signum: int, _frame: object) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
    return 0
