"""A gunicorn sync worker that reads nginx's plain ``POST /invocations`` requests itself.

Behind nginx a sync worker sees one kind of request almost exclusively: nginx's own HTTP/1.0
rendering of ``POST /invocations`` with a ``Content-Length`` (it buffers every body and never
chunks upstream). For those, gunicorn's general machinery (a header parser with regular
expressions, its environ builder, a response object writing headers and body separately, and a
closing handshake that waits for nginx to hang up) costs more CPU than scoring a record does.

:class:`LeanSyncWorker` keeps everything that makes a sync worker what it is (the master, the
heartbeat and its timeout, graceful SIGTERM, ``max_requests``; only :meth:`handle` changes) and
answers those requests with a short path: the head is split on CRLF, the environ holds what WSGI
requires, the body is read from the socket only when the app asks for it, and the answer leaves in
one write. Anything else (another method, path or protocol, a header it does not expect to see
from nginx, an oversized head) is replayed, byte for byte, into gunicorn's own handling, so odd
requests keep gunicorn's behaviour.
"""

from __future__ import annotations

import io
import socket
import sys
from collections.abc import Callable, Iterable
from functools import lru_cache
from typing import Any

from gunicorn import util
from gunicorn.workers.sync import SyncWorker

MAX_HEAD_BYTES = 4094
"""A longer head goes to gunicorn: within every one of its default limits (request line 4,094
bytes, a field 8,190), so a head the short path reads is one gunicorn would read too. nginx's
heads are a few hundred bytes."""
MAX_FIELDS = 100
"""gunicorn's default limit on header fields; more go to gunicorn (which refuses them)."""
_RECV_BYTES = 64 * 1024
_PATH = b"/invocations"
_PROTOCOLS = {b"HTTP/1.0": "HTTP/1.0", b"HTTP/1.1": "HTTP/1.1"}
_SPECIAL = {b"content-length": "CONTENT_LENGTH", b"content-type": "CONTENT_TYPE"}
_GUNICORN_ONLY = {b"transfer-encoding", b"expect", b"upgrade", b"trailer"}
"""Headers whose handling is left to gunicorn (nginx never sends them upstream here)."""


class LeanSyncWorker(SyncWorker):
    """gunicorn's sync worker with a short path for nginx's ``POST /invocations`` (module docstring)."""

    def init_process(self) -> None:
        """As the sync worker, after deciding once whether the short path may be used at all."""
        # The short path runs no request hooks and writes no access log: with any of those
        # configured, every request takes gunicorn's path.
        settings = self.cfg.settings
        self.lean = (
            not self.cfg.is_ssl
            and settings["pre_request"].get() is settings["pre_request"].default
            and settings["post_request"].get() is settings["post_request"].default
            and not self.cfg.accesslog
        )
        super().init_process()

    def handle(self, listener: socket.socket, client: socket.socket, addr: Any) -> None:
        """Answer one connection: the short path when the request allows it, else gunicorn's."""
        if not getattr(self, "lean", False):
            super().handle(listener, client, addr)
            return
        try:
            head, rest = _read_head(client)
        except OSError:
            util.close_graceful(client)
            return
        environ = _environ(head, rest, client, addr, listener) if head is not None else None
        if environ is None:
            super().handle(listener, _Replayed(client, (head or b"") + rest), addr)  # type: ignore[arg-type]
            return
        try:
            self._answer(environ, client)
        except OSError:
            pass  # nginx went away: nothing to answer
        except Exception:  # the app answers its own errors; this is a bug: nginx answers a JSON 502
            self.log.exception("Error handling request")
        finally:
            if environ["wsgi.input"].raw.remaining:
                util.close_graceful(client)  # unread body: drain, so the close resets nothing
            else:
                client.close()

    def _answer(self, environ: dict[str, Any], client: socket.socket) -> None:
        self.nr += 1
        if self.nr >= self.max_requests:
            self.log.info("Autorestarting worker after current request.")
            self.alive = False
        started: list[bytes] = []
        written: list[bytes] = []

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable:
            if exc_info is not None and written:
                raise exc_info[1].with_traceback(exc_info[2])
            lines = [f"{environ['SERVER_PROTOCOL']} {status}\r\n"]
            lines += [f"{name}: {value}\r\n" for name, value in headers if name.lower() != "connection"]
            lines.append("Connection: close\r\n\r\n")
            started[:] = ["".join(lines).encode("latin-1")]
            return written.append

        result: Iterable[bytes] = self.wsgi(environ, start_response)
        try:
            body = b"".join([*written, *result])
        finally:
            if hasattr(result, "close"):
                result.close()
        if not started:
            raise RuntimeError("the application returned without calling start_response")
        if len(body) < _RECV_BYTES:
            client.sendall(started[0] + body)
        else:  # no second copy of a large answer
            client.sendall(started[0])
            client.sendall(body)


def _read_head(client: socket.socket) -> tuple[bytes | None, bytes]:
    """(the request head up to its blank line, the bytes after it); head None if there is none."""
    data = client.recv(_RECV_BYTES)
    while True:
        end = data.find(b"\r\n\r\n")
        if end >= 0:
            return (data[: end + 4], data[end + 4 :]) if end + 4 <= MAX_HEAD_BYTES else (None, data)
        if not data or len(data) > MAX_HEAD_BYTES:
            return None, data
        more = client.recv(_RECV_BYTES)
        if not more:
            return None, data
        data += more


def _environ(
    head: bytes, rest: bytes, client: socket.socket, addr: Any, listener: socket.socket
) -> dict[str, Any] | None:
    """The WSGI environ of a head the short path takes, else None."""
    fields = head[:-4]
    lines = fields.split(b"\r\n")
    # No NUL, and every CR and LF part of a line break: gunicorn knows the rules for the rest.
    breaks = len(lines) - 1
    if (
        len(lines) > MAX_FIELDS + 1
        or fields.count(b"\r") != breaks
        or fields.count(b"\n") != breaks
        or b"\0" in fields
    ):
        return None
    request_line = lines[0].split(b" ")
    if len(request_line) != 3:
        return None
    method, target, version = request_line
    protocol = _PROTOCOLS.get(version)
    if method != b"POST" or target != _PATH or protocol is None:
        return None
    environ: dict[str, Any] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        key = _environ_key(name) if colon else None
        if key is None or key in environ:
            return None  # gunicorn knows every rule for these (folding, duplicates, underscores...)
        environ[key] = value.strip(b" \t").decode("latin-1")
    length = environ.get("CONTENT_LENGTH", "")
    if not (length.isascii() and length.isdigit()) or len(rest) > int(length):
        return None
    host = environ.get("HTTP_HOST", "")
    environ.update(
        {
            "REQUEST_METHOD": "POST",
            "SCRIPT_NAME": "",
            "PATH_INFO": "/invocations",
            "QUERY_STRING": "",
            "RAW_URI": "/invocations",
            "SERVER_PROTOCOL": protocol,
            "SERVER_NAME": host.rsplit(":", 1)[0] or "localhost",
            "SERVER_PORT": "80",
            "REMOTE_ADDR": addr if isinstance(addr, str) and addr else "unix",
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BufferedReader(_Body(client, rest, int(length))),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": False,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
        }
    )
    return environ


@lru_cache(maxsize=256)  # nginx sends the same few names every time; odd ones just miss
def _environ_key(name: bytes) -> str | None:
    """``HTTP_ACCEPT`` for ``Accept``; None for a name the short path leaves to gunicorn."""
    name = name.lower()
    special = _SPECIAL.get(name)
    if special is not None:
        return special
    # Letters, digits and inner dashes only: no underscore (gunicorn drops those, so a header
    # cannot pose as another in the environ), no other token character.
    if not (name.isascii() and name.replace(b"-", b"").isalnum()) or name in _GUNICORN_ONLY:
        return None
    return "HTTP_" + name.decode().upper().replace("-", "_")


class _Body(io.RawIOBase):
    """The request body: what came with the head, then the socket, never past Content-Length."""

    def __init__(self, client: socket.socket, first: bytes, length: int) -> None:
        self._client = client
        self._first = memoryview(first)
        self.remaining = length

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        want = min(len(buffer), self.remaining)
        if not want:
            return 0
        if self._first:
            got = min(want, len(self._first))
            buffer[:got] = self._first[:got]
            self._first = self._first[got:]
        else:
            got = self._client.recv_into(buffer, want)
        self.remaining -= got
        return got


class _Replayed:
    """A client socket whose first reads return bytes already taken from it (for gunicorn's parser)."""

    def __init__(self, client: socket.socket, taken: bytes) -> None:
        self._client = client
        self._taken = taken

    def recv(self, size: int, *flags: int) -> bytes:
        if self._taken:
            data, self._taken = self._taken[:size], self._taken[size:]
            return data
        return self._client.recv(size, *flags)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)
