"""SageMaker Data Capture, written locally: the same JSON Lines records in the same folder layout.

What SageMaker writes for a real-time endpoint with ``DataCaptureConfig`` (SageMaker developer guide,
"Capture data from real-time endpoint" / "Data capture"; the record layout and key names below
match the records shown there and in AWS's Model Monitor examples):

* objects under ``<DestinationS3Uri>/<endpoint>/<variant>/yyyy/mm/dd/hh/<mm-ss-mmm>-<uuid>.jsonl``
  (UTC hour folders; a file name made of the minute, second and millisecond the file was started
  and a random id);
* one JSON object per line and per sampled invocation::

    {"captureData": {"endpointInput":  {"observedContentType": "text/csv", "mode": "INPUT",
                                        "data": "...", "encoding": "CSV"},
                     "endpointOutput": {"observedContentType": "application/json", "mode": "OUTPUT",
                                        "data": "...", "encoding": "JSON"}},
     "eventMetadata": {"eventId": "<uuid>", "inferenceTime": "2024-05-01T12:00:00.123Z"},
     "eventVersion": "0"}

* ``encoding`` is ``CSV`` or ``JSON`` (``data`` is the body text as is) when the observed content
  type is one of ``CaptureContentTypeHeader.CsvContentTypes`` / ``JsonContentTypes``, otherwise
  ``BASE64`` (``data`` is the base64 of the body);
* ``eventMetadata.inferenceId`` carries the caller's ``InferenceId`` when it sent one.

Writing never slows or breaks an invocation: the request thread only decides the sample and puts
the bodies on a bounded queue (dropping, and counting, when it is full); a writer thread encodes,
appends and rotates to a new file every UTC hour. A failure to write is logged, never raised.
"""

from __future__ import annotations

import base64
import json
import logging
import queue
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

log = logging.getLogger("pipeline.monitoring.capture")

EVENT_VERSION = "0"
INPUT, OUTPUT = "INPUT", "OUTPUT"
CSV_ENCODING, JSON_ENCODING, BASE64_ENCODING = "CSV", "JSON", "BASE64"
DEFAULT_CSV_TYPES = ("text/csv",)
DEFAULT_JSON_TYPES = ("application/json", "application/jsonlines")


@dataclass(frozen=True)
class CaptureSettings:
    """Where and what to capture (the local equivalent of ``DataCaptureConfig``)."""

    root: Path
    """The local stand-in for ``DestinationS3Uri``."""
    sampling_percentage: int = 100
    csv_content_types: tuple[str, ...] = DEFAULT_CSV_TYPES
    json_content_types: tuple[str, ...] = DEFAULT_JSON_TYPES
    seed: int | None = None
    """Seeds the sampling decisions (tests); None draws from the OS."""
    max_pending: int = 10_000
    """Invocations queued for the writer before new ones are dropped (and counted)."""

    def __post_init__(self) -> None:
        if not 0 <= self.sampling_percentage <= 100:
            raise ValueError(f"sampling_percentage must be between 0 and 100, got {self.sampling_percentage}")


@dataclass(frozen=True)
class Invocation:
    """What the request thread hands to the writer: the raw bodies, untouched."""

    input_body: bytes
    input_type: str
    output_body: bytes
    output_type: str
    epoch_s: float
    event_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    inference_id: str | None = None


def media_essence(content_type: str | None) -> str:
    """``type/subtype`` in lower case, parameters dropped (``text/csv; charset=utf-8`` -> ``text/csv``)."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def encode_payload(
    body: bytes, content_type: str, mode: str, csv_types: Iterable[str], json_types: Iterable[str]
) -> dict[str, str]:
    """One ``endpointInput``/``endpointOutput`` object for ``body``."""
    essence = media_essence(content_type)
    encoding = BASE64_ENCODING
    if essence in {media_essence(t) for t in csv_types}:
        encoding = CSV_ENCODING
    elif essence in {media_essence(t) for t in json_types}:
        encoding = JSON_ENCODING
    data = None
    if encoding != BASE64_ENCODING:
        try:
            data = body.decode("utf-8")
        except UnicodeDecodeError:  # not text after all: keep it lossless
            encoding = BASE64_ENCODING
    if data is None:
        data = base64.b64encode(body).decode("ascii")
    return {"observedContentType": content_type, "mode": mode, "data": data, "encoding": encoding}


def inference_time(epoch_s: float) -> str:
    """``2024-05-01T12:00:00.123Z``: UTC with milliseconds."""
    moment = datetime.fromtimestamp(epoch_s, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def capture_record(invocation: Invocation, settings: CaptureSettings) -> dict[str, Any]:
    """The capture record (one JSON Lines line) for ``invocation``."""
    csv_types, json_types = settings.csv_content_types, settings.json_content_types
    metadata = {"eventId": invocation.event_id, "inferenceTime": inference_time(invocation.epoch_s)}
    if invocation.inference_id:
        metadata["inferenceId"] = invocation.inference_id
    return {
        "captureData": {
            "endpointInput": encode_payload(
                invocation.input_body, invocation.input_type, INPUT, csv_types, json_types
            ),
            "endpointOutput": encode_payload(
                invocation.output_body, invocation.output_type, OUTPUT, csv_types, json_types
            ),
        },
        "eventMetadata": metadata,
        "eventVersion": EVENT_VERSION,
    }


def hour_folder(root: Path, endpoint: str, variant: str, epoch_s: float) -> Path:
    """``<root>/<endpoint>/<variant>/yyyy/mm/dd/hh`` for the UTC hour of ``epoch_s``."""
    moment = datetime.fromtimestamp(epoch_s, UTC)
    return root / endpoint / variant / moment.strftime("%Y/%m/%d/%H")


def capture_file_name(epoch_s: float, file_id: str) -> str:
    """``<mm>-<ss>-<mmm>-<id>.jsonl``, as SageMaker names its capture objects."""
    moment = datetime.fromtimestamp(epoch_s, UTC)
    return f"{moment:%M-%S}-{moment.microsecond // 1000:03d}-{file_id}.jsonl"


class CaptureWriter:
    """Samples invocations of one endpoint variant and appends their records in the background."""

    def __init__(
        self,
        settings: CaptureSettings,
        endpoint: str,
        variant: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.endpoint = endpoint
        self.variant = variant
        self.clock = clock
        self.dropped = 0
        self.written = 0
        self.failed = 0
        self._random = random.Random(settings.seed)  # noqa: S311 - sampling, not security
        self._lock = threading.Lock()
        self._queue: queue.Queue[Invocation | None] = queue.Queue(maxsize=settings.max_pending)
        self._file: IO[str] | None = None
        self._file_hour: Path | None = None
        self._thread = threading.Thread(target=self._run, name=f"capture-{endpoint}", daemon=True)
        self._thread.start()

    def sampled(self) -> bool:
        """One sampling decision: True for ``sampling_percentage`` % of calls."""
        percentage = self.settings.sampling_percentage
        if percentage >= 100:
            return True
        with self._lock:
            return self._random.random() * 100 < percentage

    def offer(
        self,
        input_body: bytes,
        input_type: str | None,
        output_body: bytes,
        output_type: str | None,
        inference_id: str | None = None,
    ) -> bool:
        """Capture this invocation if sampled; never blocks, never raises. True if queued."""
        try:
            if not self.sampled():
                return False
            invocation = Invocation(
                input_body,
                input_type or "",  # no Content-Type: recorded as observed (none); the body is base64
                output_body,
                output_type or "",
                self.clock(),
                inference_id=inference_id,
            )
            self._queue.put_nowait(invocation)
            return True
        except queue.Full:
            with self._lock:
                self.dropped += 1
                dropped = self.dropped
            if dropped == 1 or dropped % 1000 == 0:
                log.warning("data capture queue full: %d invocation(s) not captured so far", dropped)
        except Exception:  # capture must never fail an invocation
            log.exception("data capture: could not queue an invocation")
        return False

    def close(self, timeout_s: float = 10.0) -> None:
        """Write what is queued, then stop the writer thread and close the file."""
        try:
            self._queue.put(None, timeout=timeout_s)
        except queue.Full:
            log.warning("data capture: queue still full at shutdown; pending records are lost")
            return
        self._thread.join(timeout_s)

    # --- the writer thread ---------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                self._close_file()
                return
            self._write(item)
            if self._queue.empty():
                self._flush()

    def _write(self, invocation: Invocation) -> None:
        try:
            line = json.dumps(capture_record(invocation, self.settings), separators=(",", ":"))
            self._file_for(invocation.epoch_s).write(line + "\n")
            self.written += 1
        except Exception as exc:  # a full disk or a removed folder: log, keep serving
            self.failed += 1
            self._close_file()
            if self.failed == 1 or self.failed % 1000 == 0:
                log.warning("data capture: could not write a record (%d failed so far): %s", self.failed, exc)

    def _file_for(self, epoch_s: float) -> IO[str]:
        folder = hour_folder(self.settings.root, self.endpoint, self.variant, epoch_s)
        if self._file is None or folder != self._file_hour:
            self._close_file()
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / capture_file_name(epoch_s, str(uuid.uuid4()))
            self._file = path.open("a", encoding="utf-8")
            self._file_hour = folder
        return self._file

    def _flush(self) -> None:
        if self._file is not None:
            try:
                self._file.flush()
            except OSError as exc:
                log.warning("data capture: could not flush the capture file: %s", exc)
                self._close_file()

    def _close_file(self) -> None:
        if self._file is not None:
            try:
                self._file.close()
            except OSError as exc:
                log.warning("data capture: could not close the capture file: %s", exc)
            self._file = None
            self._file_hour = None
