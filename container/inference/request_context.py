"""Per-request bookkeeping shared by the Flask routes and the lean ``/invocations`` path.

The request id and queueing time a request starts with, the mapping of a typed error to status, body
and headers (noted on the request line), and the logging of an unexpected exception. Both request
paths use exactly these, so their answers and log lines cannot drift apart.
"""

from __future__ import annotations

import re
import time
import traceback
import uuid

from inference.errors import InternalError, ServingError, error_response_parts
from inference.request_log import RequestTimer, log_event

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def begin_request(
    supplied_id: str | None,
    method: str,
    path: str,
    content_length: int | None,
    request_start: str | None,
) -> tuple[RequestTimer, float | None]:
    """The request's timer (proxy's request id if well-formed, else a new one) and its queueing time."""
    request_id = supplied_id if supplied_id and _REQUEST_ID.match(supplied_id) else uuid.uuid4().hex
    timer = RequestTimer(request_id, method, path, content_length)
    queued_s = _queued_seconds(request_start)
    if queued_s is not None:
        timer.note(queue_ms=round(queued_s * 1000, 3))
    return timer, queued_s


def error_parts(error: ServingError, timer: RequestTimer | None) -> tuple[int, bytes, dict[str, str]]:
    """Status, body and headers for ``error``, noted on the request line (field names, never values)."""
    request_id = timer.fields["request_id"] if timer else None
    if timer is not None:
        # Field names (never values) in one string a log query can group by: which fields clients get wrong.
        fields = sorted({d["field"] for d in error.details if isinstance(d.get("field"), str)})
        timer.note(error_code=error.code, invalid_fields=",".join(fields) or None)
    return error_response_parts(error, request_id)


def internal_error(timer: RequestTimer | None, error: BaseException) -> InternalError:
    """Log an unexpected exception with its traceback; the client gets a 500 without internals."""
    log_event(
        "error",
        "unhandled_exception",
        request_id=timer.fields["request_id"] if timer else None,
        exception=type(error).__name__,
        traceback="".join(traceback.format_exception(error)),
    )
    return InternalError("internal server error; see the container log for this request id")


def _queued_seconds(header: str | None) -> float | None:
    """Seconds since nginx passed the request on (``X-Request-Start: t=<epoch seconds>``), if sane."""
    if not header or not header.startswith("t="):
        return None
    try:
        queued = time.time() - float(header[2:])
    except ValueError:
        return None
    # Clock steps or a forged header must not fail requests: ignore anything implausible.
    return queued if 0.0 <= queued <= 3600.0 else None
