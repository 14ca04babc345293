"""Read capture files from a local folder or an S3 prefix, reporting every bad file instead of failing.

A capture folder can hold files that are not SageMaker capture files (a README, a stray CSV, a
gzip), files cut short by a crash or an interrupted copy, and records whose body the model could
not have read. Each is reported with its file (and line) and skipped; the rest is still read.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

CAPTURE_SUFFIX = ".jsonl"
_HOUR_PATH = re.compile(r"(?:^|/)(\d{4})/(\d{2})/(\d{2})/(\d{2})/[^/]+$")
_MAX_PROBLEMS_PER_FILE = 5


@dataclass(frozen=True)
class CapturedEvent:
    """One captured invocation, its bodies still encoded as captured."""

    source: str
    line: int
    event_id: str
    inference_time: datetime
    endpoint_input: dict[str, Any]
    endpoint_output: dict[str, Any] | None


@dataclass
class FileReport:
    """What reading one file gave: events, and problems (``line`` None: the whole file)."""

    source: str
    events: int = 0
    skipped_lines: int = 0
    problems: list[dict[str, Any]] = field(default_factory=list)

    def problem(self, message: str, line: int | None = None) -> None:
        if line is not None:
            self.skipped_lines += 1
        if len(self.problems) < _MAX_PROBLEMS_PER_FILE:
            self.problems.append({"line": line, "problem": message})
        elif len(self.problems) == _MAX_PROBLEMS_PER_FILE:
            self.problems.append({"line": None, "problem": "further problems in this file not listed"})


class SourceError(RuntimeError):
    """The capture source itself cannot be read (missing folder, bad S3 URI, access denied)."""


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """``--since``/``--until``: an ISO date/time (UTC if no offset) or a span back from now (``24h``)."""
    now = now or datetime.now(UTC)
    span = re.fullmatch(r"\s*(\d+)\s*([mhd])\s*", text)
    if span:
        amount, unit = int(span[1]), span[2]
        return now - timedelta(**{{"m": "minutes", "h": "hours", "d": "days"}[unit]: amount})
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"{text!r} is neither an ISO date/time (2024-05-01T12:00Z) nor a span (90m, 24h, 7d)"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def hour_of(path: str) -> datetime | None:
    """The UTC hour a capture path's ``yyyy/mm/dd/hh`` folders name, or None if it has none."""
    match = _HOUR_PATH.search(path)
    if not match:
        return None
    try:
        return datetime(*(int(g) for g in match.groups()), tzinfo=UTC)
    except ValueError:
        return None


def parse_capture_text(source: str, text: str, report: FileReport) -> Iterator[CapturedEvent]:
    """The events in one capture file's text; bad lines go to ``report``."""
    lines = text.split("\n")
    truncated = bool(lines) and lines[-1].strip() != ""  # every record SageMaker writes ends in \n
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            document = json.loads(line)
        except json.JSONDecodeError as exc:
            last = number == len(lines) and truncated
            report.problem(
                "truncated record (the file ends inside it)" if last else f"not valid JSON ({exc.msg})",
                number,
            )
            continue
        event = _event(source, number, document, report)
        if event is not None:
            report.events += 1
            yield event


def _event(source: str, number: int, document: Any, report: FileReport) -> CapturedEvent | None:
    if not isinstance(document, dict) or not isinstance(document.get("captureData"), dict):
        report.problem("not a SageMaker capture record (no 'captureData' object)", number)
        return None
    capture = document["captureData"]
    endpoint_input = capture.get("endpointInput")
    if not isinstance(endpoint_input, dict):
        report.problem("the record has no 'endpointInput' (captured without input?)", number)
        return None
    metadata = document.get("eventMetadata")
    if not isinstance(metadata, dict):
        report.problem("the record has no 'eventMetadata' object", number)
        return None
    try:
        moment = datetime.fromisoformat(str(metadata.get("inferenceTime", "")).replace("Z", "+00:00"))
    except ValueError:
        report.problem(f"eventMetadata.inferenceTime {metadata.get('inferenceTime')!r} is not a time", number)
        return None
    output = capture.get("endpointOutput")
    return CapturedEvent(
        source=source,
        line=number,
        event_id=str(metadata.get("eventId", "")),
        inference_time=moment if moment.tzinfo else moment.replace(tzinfo=UTC),
        endpoint_input=endpoint_input,
        endpoint_output=output if isinstance(output, dict) else None,
    )


def _decode_file(source: str, raw: bytes, report: FileReport) -> str | None:
    if raw[:2] == b"\x1f\x8b":
        report.problem("a gzip file, not a capture file (SageMaker writes plain .jsonl)")
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        report.problem(f"not UTF-8 text (byte {exc.start}): not a capture file")
        return None


def read_capture_bytes(
    source: str, raw: bytes, since: datetime | None, reports: list[FileReport]
) -> list[CapturedEvent]:
    """Parse one file's bytes (appending its report); events before ``since`` are left out."""
    report = FileReport(source)
    reports.append(report)
    if not source.endswith(CAPTURE_SUFFIX):
        report.problem(f"skipped: not a {CAPTURE_SUFFIX} capture file")
        return []
    text = _decode_file(source, raw, report)
    if text is None:
        return []
    events = list(parse_capture_text(source, text, report))
    if report.events == 0 and not report.problems:
        report.problem("empty file")
    return [e for e in events if since is None or e.inference_time >= since]


def read_local(root: Path, since: datetime | None = None) -> tuple[list[CapturedEvent], list[FileReport]]:
    """Every capture file under ``root`` (recursively, in path order)."""
    if not root.is_dir():
        raise SourceError(f"capture folder {root} does not exist or is not a folder")
    events: list[CapturedEvent] = []
    reports: list[FileReport] = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        name = path.relative_to(root).as_posix()
        if _before(name, since):
            continue
        try:
            raw = path.read_bytes()
        except OSError as exc:
            report = FileReport(str(path))
            report.problem(f"cannot be read: {exc.strerror or exc}")
            reports.append(report)
            continue
        events += read_capture_bytes(str(path), raw, since, reports)
    return events, reports


def read_s3(
    uri: str, since: datetime | None = None, client: Any = None
) -> tuple[list[CapturedEvent], list[FileReport]]:
    """Every capture object under the ``s3://bucket/prefix`` URI."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, prefix = split_s3_uri(uri)
    client = client or boto3.client("s3")
    events: list[CapturedEvent] = []
    reports: list[FileReport] = []
    try:
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        keys = sorted(obj["Key"] for page in pages for obj in page.get("Contents", []))
    except (BotoCoreError, ClientError) as exc:
        raise SourceError(f"cannot list {uri}: {exc}") from None
    for key in keys:
        if _before(key, since):
            continue
        source = f"s3://{bucket}/{key}"
        try:
            raw = client.get_object(Bucket=bucket, Key=key)["Body"].read()
        except (BotoCoreError, ClientError) as exc:
            report = FileReport(source)
            report.problem(f"cannot be read: {exc}")
            reports.append(report)
            continue
        events += read_capture_bytes(source, raw, since, reports)
    return events, reports


def split_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/prefix`` -> (bucket, prefix); SourceError for anything else."""
    match = re.fullmatch(r"s3://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:/(.*))?", uri)
    if not match:
        raise SourceError(f"{uri!r} is not an s3://bucket/prefix URI")
    return match[1], match[2] or ""


def _before(path: str, since: datetime | None) -> bool:
    """True if the file's hour folder ends before ``since`` (so none of its records can count)."""
    if since is None:
        return False
    hour = hour_of(path)
    if hour is None:
        return False
    return hour + timedelta(hours=1) <= since
