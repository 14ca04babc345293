"""``python -m pipeline monitor`` on capture folders with bad files, on S3 (moto), and its exit codes."""

from __future__ import annotations

import gzip
import json
from datetime import datetime
from pathlib import Path

import boto3
import pandas as pd
import pytest
from moto import mock_aws

from pipeline.cli import main
from pipeline.data import TEST_FILE, load_dataset
from pipeline.monitoring.capture import CaptureSettings, Invocation, capture_record
from pipeline.monitoring.capture_files import FileReport, read_local, read_s3

REPO_ROOT = Path(__file__).resolve().parents[2]
MODEL = REPO_ROOT / "model"
HOUR = "adult-income/AllTraffic/2024/05/01/12"
T0 = 1714564800.0  # 2024-05-01T12:00:00Z


def csv_lines(n: int, start: int = 0) -> bytes:
    frame = load_dataset(TEST_FILE).frame.iloc[start : start + n]
    names = [c for c in frame.columns if c not in ("fnlwgt", "education", "income")]
    lines = [
        ",".join("?" if pd.isna(v) or v == "" else str(v) for v in row)
        for row in frame[names].itertuples(index=False)
    ]
    return ("\n".join(lines) + "\n").encode()


def record_line(body: bytes, n: int, offset: float = 0.0) -> str:
    out = json.dumps({"predictions": [{"label": "<=50K", "probability": 0.1}] * n}).encode()
    invocation = Invocation(body, "text/csv", out, "application/json", T0 + offset)
    return json.dumps(capture_record(invocation, CaptureSettings(Path("unused"))))


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """One good capture file (600 adult.test records) and one of each kind of bad file."""
    hour = tmp_path / HOUR
    hour.mkdir(parents=True)
    good = [record_line(csv_lines(100, 100 * i), 100, i) for i in range(6)]
    (hour / "00-00-000-good.jsonl").write_text("\n".join(good) + "\n")
    (hour / "00-10-000-truncated.jsonl").write_text(good[0] + "\n" + good[1][:120])
    (hour / "README.md").write_text("# notes\n")
    (hour / "00-20-000-gzip.jsonl").write_bytes(gzip.compress(b"{}"))
    (hour / "00-30-000-binary.jsonl").write_bytes(b"\xff\xfe\x00binary")
    (hour / "00-40-000-foreign.jsonl").write_text('{"some": "other json"}\n[1, 2]\n')
    (hour / "00-50-000-empty.jsonl").write_text("")
    return tmp_path


def test_every_bad_file_is_reported_with_its_problem(folder: Path) -> None:
    events, reports = read_local(folder)
    assert len(events) == 7  # six good ones + the complete first line of the truncated file
    problems = {Path(r.source).name: r.problems[0]["problem"] for r in reports if r.problems}
    assert problems == {
        "00-10-000-truncated.jsonl": "truncated record (the file ends inside it)",
        "README.md": "skipped: not a .jsonl capture file",
        "00-20-000-gzip.jsonl": "a gzip file, not a capture file (SageMaker writes plain .jsonl)",
        "00-30-000-binary.jsonl": "not UTF-8 text (byte 0): not a capture file",
        "00-40-000-foreign.jsonl": "not a SageMaker capture record (no 'captureData' object)",
        "00-50-000-empty.jsonl": "empty file",
    }
    foreign = next(r for r in reports if r.source.endswith("foreign.jsonl"))
    assert foreign.skipped_lines == 2 and foreign.events == 0


def test_the_monitor_reads_past_bad_files_and_names_them(folder: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "report"
    code = main(["monitor", str(folder), "--model", str(MODEL), "--out", str(out)])
    printed = capsys.readouterr().out
    report = json.loads((out / "report.json").read_text())
    assert report["records"] == 700 and report["events"] == 7
    assert len(report["files"]["with_problems"]) == 6
    assert "truncated.jsonl line 2: truncated record" in printed
    assert "README.md" in (out / "report.md").read_text()
    # Every prediction is 0.1: below the threshold, so the positive rate collapses -> alert.
    assert report["prediction"]["positive_rate"]["observed"] == 0.0
    assert code == 1 and report["level"] == "alert"


def test_too_few_records_exit_3_and_no_records_exit_2(folder: Path, tmp_path: Path) -> None:
    args = ["monitor", str(folder), "--model", str(MODEL), "--out", str(tmp_path / "r")]
    assert main([*args, "--set", "monitoring.min_records=5000"]) == 3
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["monitor", str(empty), "--model", str(MODEL), "--out", str(tmp_path / "r2")]) == 2
    assert (
        main(["monitor", str(tmp_path / "absent"), "--model", str(MODEL), "--out", str(tmp_path / "r3")]) == 2
    )


def test_since_leaves_out_older_hours(folder: Path) -> None:
    events, _ = read_local(folder, since=datetime.fromisoformat("2024-05-01T13:00+00:00"))
    assert events == []


def test_a_model_without_a_baseline_is_refused(folder: Path, tmp_path: Path, capsys) -> None:
    manifest = json.loads((MODEL / "manifest.json").read_text())
    del manifest["baseline"]
    (tmp_path / "old.json").write_text(json.dumps(manifest))
    assert (
        main(["monitor", str(folder), "--model", str(tmp_path / "old.json"), "--out", str(tmp_path / "r")])
        == 2
    )
    assert "no 'baseline' section" in capsys.readouterr().err


@mock_aws
def test_an_s3_prefix_reads_like_a_folder(folder: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="capture-bucket")
    for path in folder.rglob("*"):
        if path.is_file():
            key = f"adult-income/data-capture/{path.relative_to(folder).as_posix()}"
            s3.put_object(Bucket="capture-bucket", Key=key, Body=path.read_bytes())
    events, reports = read_s3("s3://capture-bucket/adult-income/data-capture", client=s3)
    local_events, _ = read_local(folder)
    assert [e.event_id for e in events] == [e.event_id for e in local_events]
    assert sum(1 for r in reports if r.problems) == 6
    assert all(r.source.startswith("s3://capture-bucket/adult-income/data-capture/") for r in reports)
    out = tmp_path / "s3-report"
    code = main(
        ["monitor", "s3://capture-bucket/adult-income/data-capture", "--model", str(MODEL), "--out", str(out)]
    )
    assert code == 1 and json.loads((out / "report.json").read_text())["records"] == 700


def test_a_missing_bucket_is_a_clean_error(tmp_path: Path, capsys) -> None:
    with mock_aws():
        code = main(["monitor", "s3://no-such-bucket/x", "--model", str(MODEL), "--out", str(tmp_path / "r")])
    assert code == 2 and "cannot list s3://no-such-bucket/x" in capsys.readouterr().err


def test_file_report_caps_the_problems_it_lists() -> None:
    report = FileReport("f")
    for line in range(20):
        report.problem("bad", line)
    assert report.skipped_lines == 20 and len(report.problems) == 6
