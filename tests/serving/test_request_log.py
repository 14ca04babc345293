"""The request log line: the fast writer gives the same line the standard library would."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime

import pytest
from inference.request_log import RequestTimer, log_event, utc_timestamp


@pytest.mark.parametrize("now", [0.0, 1.9995, 1764780000.123, 1764780059.999, 1798761599.5])
def test_timestamp_matches_isoformat_to_the_millisecond(now: float) -> None:
    expected = datetime.fromtimestamp(now, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    assert utc_timestamp(now) == expected


def test_a_request_line_is_one_json_object_with_every_field(capfd: pytest.CaptureFixture[str]) -> None:
    timer = RequestTimer("req-9", "POST", "/invocations", 321)
    timer.note(records=2, unknown_categories={"race": 1}, accept="text/csv", skipped=None)
    timer.finish(400, 77)
    (line,) = capfd.readouterr().out.splitlines()
    record = json.loads(line)
    assert record["level"] == "warning" and record["event"] == "request" and record["pid"] == os.getpid()
    assert record["status"] == 400 and record["bytes_out"] == 77 and record["bytes_in"] == 321
    assert record["unknown_categories"] == {"race": 1} and record["records"] == 2
    assert "skipped" not in record and record["latency_ms"] >= 0
    assert list(record)[:4] == ["ts", "level", "event", "pid"]


def test_values_orjson_cannot_write_still_make_a_line(capfd: pytest.CaptureFixture[str]) -> None:
    log_event("info", "odd", huge=2**70, path=object.__name__, text="naïve")
    (line,) = capfd.readouterr().out.splitlines()
    record = json.loads(line)
    assert record["huge"] == 2**70 and record["text"] == "naïve" and record["event"] == "odd"
