"""The ``POST /invocations`` pipeline, shared by the lean path and the Flask route.

Negotiate Content-Type and Accept -> check size -> decode -> validate against the artifact's schema
-> score (chunked, under a deadline) -> encode. Nothing here imports Flask: the lean path
(:mod:`inference.invocations_wsgi`) answers nginx's requests without it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np

from inference.content_types import OUTPUT_TYPES, negotiate_accept, parse_media_type, request_format
from inference.decoding import decode
from inference.encoding import Labeller, encode
from inference.errors import ModelNotReady, PayloadTooLarge
from inference.memory import PAUSE_GC_FROM_BYTES, TRIM_FROM_BYTES, garbage_collection_paused
from inference.readiness import READY_BODY, ModelState
from inference.request_log import RequestTimer, log_event
from inference.scoring import Deadline, score
from inference.settings import Settings
from inference.validation import Validator
from pipeline.heap import release_freed_memory


class InvocationService:
    """The /invocations pipeline, built once per app with the schema-derived helpers it needs."""

    def __init__(self, settings: Settings, state: ModelState) -> None:
        self.settings = settings
        self.state = state
        self.default_accept = _default_accept(settings.default_accept)
        engine = state.engine
        if engine is not None:
            self.validator = Validator(engine.schema)
            self.labeller = Labeller(
                engine.threshold, engine.schema.positive_label, engine.schema.negative_label
            )

    def health(self) -> bytes:
        """The ``GET /ping`` body when the model is ready; ModelNotReady (503) with the reason if not."""
        self._require_ready()
        return READY_BODY

    def _require_ready(self) -> None:
        if not self.state.ready:
            raise ModelNotReady(self.state.reason or "model is not loaded")

    def invoke(
        self,
        content_type: str | None,
        accept: str | None,
        content_length: int | None,
        read_body: Callable[[], bytes],
        timer: RequestTimer,
        queued_s: float | None,
    ) -> tuple[bytes, str]:
        """Run the pipeline for one request; the response body and its media type (or a ServingError)."""
        deadline = Deadline(self.settings.request_deadline_s, queued_s or 0.0)
        self._require_ready()
        deadline.check("queueing")
        fmt = request_format(content_type)
        output = negotiate_accept(accept, self.default_accept)
        timer.note(content_type=fmt, accept=output)
        limit = self.settings.max_payload_bytes
        if content_length is not None and content_length > limit:
            raise payload_too_large(limit, content_length)
        body = read_body()
        if len(body) < PAUSE_GC_FROM_BYTES:
            return self._answer(body, fmt, output, timer, deadline), output
        try:
            with garbage_collection_paused():
                return self._answer(body, fmt, output, timer, deadline), output
        finally:  # _answer's decoded and validated batch is garbage now: hand its pages back
            if len(body) >= TRIM_FROM_BYTES:
                release_freed_memory()

    def _answer(self, body: bytes, fmt: str, output: str, timer: RequestTimer, deadline: Deadline) -> bytes:
        """Decode, validate, score and encode ``body``: the response body."""
        decoded = decode(body, fmt, self.validator.names, self.validator.header_names)
        timer.note(records=decoded.n_records)
        chunk_rows = self.settings.scoring_chunk_rows
        blocks = self.validator.validate_blocks(decoded, chunk_rows)
        if blocks is None:  # JSON, JSON Lines, CSV that needs the csv module: validated whole
            batch = self.validator.validate(decoded)
            if batch.unknown_categories:
                timer.note(unknown_categories=batch.unknown_categories)
            return encode(score(self.state.engine, batch, deadline, chunk_rows), self.labeller, output)
        parts: list[np.ndarray] = []
        unknown: Counter[str] = Counter()
        for start, batch in blocks:
            if start == 0:  # the first block, or the whole body validated again (see validate_blocks)
                parts.clear()
                unknown.clear()
            else:
                deadline.check("scoring")
            unknown.update(batch.unknown_categories)
            parts.append(score(self.state.engine, batch, deadline, chunk_rows))
        if unknown:
            timer.note(unknown_categories=dict(unknown))
        probabilities = parts[0] if len(parts) == 1 else np.concatenate(parts)
        return encode(probabilities, self.labeller, output)


def payload_too_large(limit: int, received: int | None) -> PayloadTooLarge:
    """The 413 for a body of ``received`` bytes (None: unknown) over ``limit``."""
    mib = limit / (1024 * 1024)
    details: dict[str, Any] = {"limit_bytes": limit}
    if received is not None:
        details["received_bytes"] = received
    return PayloadTooLarge(
        f"the request body exceeds the limit of {limit} bytes ({mib:g} MiB); "
        "split the records into smaller requests",
        [details],
    )


def _default_accept(configured: str) -> str:
    media = parse_media_type(configured)
    if media is not None and media.essence in OUTPUT_TYPES:
        return media.essence
    log_event("warning", "bad_default_accept", configured=configured, using=OUTPUT_TYPES[0])
    return OUTPUT_TYPES[0]
