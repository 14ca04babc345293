"""A scriptable stand-in for the serving container, for the failure modes the real one will not produce
on demand (a /ping that fails, an answer after the deadline, a 500). Real HTTP on loopback, in a thread.

The body selects the behaviour: ``status:NNN`` answers NNN with a JSON error, ``sleep:S`` answers after
S seconds, ``attr`` sets custom attributes on the response; anything else is echoed with the headers the
container received.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class StubContainer:
    """``/ping`` answers ``ping_status``; ``/invocations`` follows the body's instructions."""

    def __init__(self) -> None:
        self.ping_status = 200
        self.invocations = 0
        self._connections: list[socket.socket] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def setup(self) -> None:
                super().setup()
                stub._connections.append(self.connection)

            def do_GET(self) -> None:
                self._send(stub.ping_status, b"", "text/plain")

            def do_POST(self) -> None:
                stub.invocations += 1
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                text = body.decode(errors="replace")
                extra: dict[str, str] = {}
                if text.startswith("status:"):
                    status = int(text.split(":", 1)[1])
                    payload = {"error": {"code": "stub_error", "message": f"stub answered {status}"}}
                    self._send(status, json.dumps(payload).encode(), "application/json")
                    return
                if text.startswith("sleep:"):
                    time.sleep(float(text.split(":", 1)[1]))
                if text == "attr":
                    extra["X-Amzn-SageMaker-Custom-Attributes"] = "model-version=7"
                payload = {"echo": text[:100], "length": len(body), "headers": dict(self.headers.items())}
                self._send(200, json.dumps(payload).encode(), "application/json", extra)

            def _send(self, status: int, body: bytes, content_type: str, extra: dict[str, str] | None = None):
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                for name, value in (extra or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop like a dead process: no listener and every open connection cut."""
        self.server.shutdown()
        self.server.server_close()
        for conn in self._connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
