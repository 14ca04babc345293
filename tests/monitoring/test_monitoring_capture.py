"""The local capture writer: SageMaker's record format and folder layout, sampling, and failure handling."""

from __future__ import annotations

import base64
import json
import logging
import re
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pipeline.monitoring.capture import CaptureSettings, CaptureWriter, Invocation, capture_record
from pipeline.monitoring.capture_files import FileReport, parse_capture_text, read_local

T0 = datetime(2024, 5, 1, 12, 59, 58, 123000, tzinfo=UTC).timestamp()
FILE_NAME = re.compile(r"^\d{2}-\d{2}-\d{3}-[0-9a-f-]{36}\.jsonl$")


def wait_for(predicate, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "the capture writer did not finish in time"
        time.sleep(0.01)


def test_a_record_has_exactly_sagemakers_fields() -> None:
    settings = CaptureSettings(Path("unused"))
    record = capture_record(
        Invocation(b"39,Private\n", "text/csv", b'{"predictions":[]}', "application/json", T0, "e-1", "i-7"),
        settings,
    )
    assert record == {
        "captureData": {
            "endpointInput": {
                "observedContentType": "text/csv",
                "mode": "INPUT",
                "data": "39,Private\n",
                "encoding": "CSV",
            },
            "endpointOutput": {
                "observedContentType": "application/json",
                "mode": "OUTPUT",
                "data": '{"predictions":[]}',
                "encoding": "JSON",
            },
        },
        "eventMetadata": {
            "eventId": "e-1",
            "inferenceTime": "2024-05-01T12:59:58.123Z",
            "inferenceId": "i-7",
        },
        "eventVersion": "0",
    }


@pytest.mark.parametrize(
    ("content_type", "body", "encoding"),
    [
        ("text/csv; charset=utf-8", b"1,2", "CSV"),  # parameters do not change the media type
        ("application/jsonlines", b'{"a":1}\n', "JSON"),
        ("application/x-npy", b"\x93NUMPY", "BASE64"),  # not configured as CSV or JSON
        ("text/csv", b"\xff\xfe", "BASE64"),  # configured as CSV but not text: kept lossless
    ],
)
def test_encoding_follows_the_configured_content_types(content_type: str, body: bytes, encoding: str) -> None:
    record = capture_record(Invocation(body, content_type, b"", "text/csv", T0), CaptureSettings(Path("x")))
    captured = record["captureData"]["endpointInput"]
    assert captured["encoding"] == encoding and captured["observedContentType"] == content_type
    data = base64.b64decode(captured["data"]) if encoding == "BASE64" else captured["data"].encode()
    assert data == body


def test_files_go_to_hourly_folders_and_parse_back(tmp_path: Path) -> None:
    clock = iter([T0, T0 + 1.0, T0 + 3.0])  # 12:59:58, 12:59:59, 13:00:01
    writer = CaptureWriter(CaptureSettings(tmp_path), "adult-income", "AllTraffic", clock=lambda: next(clock))
    for i in range(3):
        assert writer.offer(f"{i},x".encode(), "text/csv", b"ok", "text/csv", inference_id=None)
    writer.close()
    files = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.jsonl"))
    assert [f.rsplit("/", 1)[0] for f in files] == [
        "adult-income/AllTraffic/2024/05/01/12",
        "adult-income/AllTraffic/2024/05/01/13",
    ]
    assert all(FILE_NAME.match(f.rsplit("/", 1)[1]) for f in files)
    assert files[0].rsplit("/", 1)[1].startswith("59-58-123-")  # minute, second, millisecond
    events, reports = read_local(tmp_path)
    assert [e.endpoint_input["data"] for e in events] == ["0,x", "1,x", "2,x"]
    assert [e.inference_time.isoformat() for e in events][-1] == "2024-05-01T13:00:01.123000+00:00"
    assert all(r.problems == [] for r in reports) and writer.written == 3
    for line in (tmp_path / files[0]).read_text().splitlines():  # one compact JSON object per line
        assert set(json.loads(line)) == {"captureData", "eventMetadata", "eventVersion"}


def test_sampling_honours_the_percentage_and_the_seed(tmp_path: Path) -> None:
    def decisions(seed: int, percentage: int) -> list[bool]:
        writer = CaptureWriter(CaptureSettings(tmp_path, percentage, seed=seed), "ep", "AllTraffic")
        try:
            return [writer.sampled() for _ in range(4000)]
        finally:
            writer.close()

    first = decisions(7, 25)
    assert first == decisions(7, 25)  # deterministic with a seed
    assert first != decisions(8, 25)
    assert 0.23 <= sum(first) / len(first) <= 0.27
    assert sum(decisions(7, 0)) == 0 and sum(decisions(7, 100)) == 4000


def test_only_sampled_invocations_are_written(tmp_path: Path) -> None:
    writer = CaptureWriter(CaptureSettings(tmp_path, 30, seed=3), "ep", "AllTraffic")
    queued = sum(writer.offer(b"1", "text/csv", b"2", "text/csv") for _ in range(500))
    writer.close()
    events, _ = read_local(tmp_path)
    assert len(events) == queued == writer.written
    assert 120 <= queued <= 180


def test_a_sampling_percentage_outside_0_100_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="between 0 and 100"):
        CaptureSettings(tmp_path, 101)


def test_a_write_failure_is_logged_and_never_raised(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the capture folder should be")
    writer = CaptureWriter(CaptureSettings(blocked), "ep", "AllTraffic")
    with caplog.at_level(logging.WARNING, logger="pipeline.monitoring.capture"):
        assert writer.offer(b"1", "text/csv", b"2", "text/csv") is True
        wait_for(lambda: writer.failed == 1)
        writer.close()
    assert writer.written == 0
    assert "could not write a record" in caplog.text


def test_a_full_queue_drops_and_counts_instead_of_blocking(tmp_path: Path) -> None:
    writer = CaptureWriter(CaptureSettings(tmp_path, max_pending=1), "ep", "AllTraffic")
    writer._queue.put(None)  # stop the writer thread so the queue stays full
    wait_for(lambda: not writer._thread.is_alive())
    writer._queue.put(Invocation(b"", "text/csv", b"", "text/csv", T0))
    started = time.monotonic()
    assert writer.offer(b"1", "text/csv", b"2", "text/csv") is False
    assert time.monotonic() - started < 0.5 and writer.dropped == 1


def test_a_truncated_last_line_is_named_as_such() -> None:
    invocation = Invocation(b"1", "text/csv", b"2", "text/csv", T0)
    good = json.dumps(capture_record(invocation, CaptureSettings(Path("x"))))
    report = FileReport("f.jsonl")
    events = list(parse_capture_text("f.jsonl", good + "\n" + good[:40], report))
    assert len(events) == 1
    assert report.problems == [{"line": 2, "problem": "truncated record (the file ends inside it)"}]
