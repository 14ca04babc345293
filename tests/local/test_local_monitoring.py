"""Data capture and the drift monitor on the real local stack (gateway -> Lambda -> InvokeEndpoint ->
container on the committed release), with ``monitoring.data_capture`` on.

Two traffic mixes are replayed through the API and judged by ``python -m pipeline monitor`` in a
fresh process: adult.test as it is (a sample of the training population: the monitor must stay
quiet) and a shifted mix made from adult.test rows (older, more self-employed, more missing
occupation: it must fire and name those features).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
import requests
from local_isolation import isolated_settings

from pipeline.data import TEST_FILE, load_dataset
from pipeline.local.keys import create_key
from pipeline.local.settings import LocalSettings
from pipeline.local.stack import Stack, StackInfo
from pipeline.monitoring.capture_files import read_local
from pipeline.schema import SCHEMA

REPO_ROOT = Path(__file__).resolve().parents[2]
BATCH = 250
SHIFTED_ROWS = 4000


@pytest.fixture(scope="module")
def capture_settings(tmp_path_factory: pytest.TempPathFactory) -> LocalSettings:
    return isolated_settings(tmp_path_factory.mktemp("capture-cloud"))


@pytest.fixture(scope="module")
def capture_stack(released_model_dir: Path, capture_settings: LocalSettings) -> Iterator[StackInfo]:
    """A second local stack (own run dir and ports) whose InvokeEndpoint captures every invocation."""
    local = Stack(capture_settings, say=lambda _msg: None)
    try:
        yield local.up(
            released_model_dir,
            overrides={"monitoring.data_capture": "true", "monitoring.capture_sampling_percentage": "100"},
            container_env={"SERVE_SHUTDOWN_GRACE": "2"},
            wait_s=120,
        )
    finally:
        local.down(quiet=True)


@pytest.fixture(scope="module")
def key(capture_settings: LocalSettings) -> str:
    return create_key("monitoring", capture_settings.keys_file)[1]


def adult_test_frame() -> pd.DataFrame:
    return load_dataset(TEST_FILE).X


def csv_body(rows: pd.DataFrame) -> bytes:
    """Headerless CSV in schema order, missing values as the UCI files write them (``?``)."""
    lines = []
    for record in rows.itertuples(index=False):
        cells = []
        for value in record:
            if isinstance(value, float):
                cells.append("?" if value != value else f"{value:g}")
            else:
                cells.append(value or "?")
        lines.append(",".join(cells))
    return ("\n".join(lines) + "\n").encode()


def json_body(rows: pd.DataFrame) -> bytes:
    records = [
        {k: (None if v == "" or (isinstance(v, float) and v != v) else v) for k, v in r.items()}
        for r in rows.to_dict(orient="records")
    ]
    return json.dumps({"instances": records}).encode()


def shifted_mix(frame: pd.DataFrame) -> pd.DataFrame:
    """Deterministic drift from adult.test rows: 15 years older (capped at 90), every 2nd row
    self-employed (not incorporated), every 3rd row's occupation missing."""
    rows = frame.iloc[:SHIFTED_ROWS].copy().reset_index(drop=True)
    rows["age"] = (rows["age"] + 15).clip(upper=90)
    rows.loc[rows.index % 2 == 0, "workclass"] = "Self-emp-not-inc"
    rows.loc[rows.index % 3 == 0, "occupation"] = ""
    return rows


def replay(stack: StackInfo, key: str, frame: pd.DataFrame, content_type: str) -> int:
    encode = csv_body if content_type == "text/csv" else json_body
    sent = 0
    for start in range(0, len(frame), BATCH):
        body = encode(frame.iloc[start : start + BATCH])
        answer = requests.post(
            stack.predict_url,
            data=body,
            headers={"Content-Type": content_type, "x-api-key": key},
            timeout=60,
        )
        assert answer.status_code == 200, answer.text[:500]
        sent += 1
    return sent


def wait_for_events(folder: Path, count: int, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        events = read_local(folder)[0] if folder.is_dir() else []
        if len(events) >= count:
            assert len(events) == count
            return
        assert time.monotonic() < deadline, f"{len(events)} of {count} capture records written"
        time.sleep(0.2)


def monitor(folder: Path, out: Path, model: Path, since: datetime, until: datetime) -> tuple[int, dict, str]:
    result = subprocess.run(
        [
            sys.executable, "-m", "pipeline", "monitor", str(folder),
            "--model", str(model), "--out", str(out),
            "--since", since.isoformat(), "--until", until.isoformat(),
        ],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )  # fmt: skip
    report = json.loads((out / "report.json").read_text()) if (out / "report.json").is_file() else {}
    return result.returncode, report, result.stdout + result.stderr


@pytest.fixture(scope="module")
def replays(
    capture_stack: StackInfo,
    key: str,
    capture_settings: LocalSettings,
    released_model_dir: Path,
    tmp_path_factory,
) -> dict[str, tuple[int, dict, str, Path]]:
    """Both mixes replayed one after the other; each judged on its own time window."""
    folder = capture_settings.capture_dir
    frame = adult_test_frame()
    results = {}
    sent = 0
    for name, rows, content_type in (
        ("as-is", frame, "text/csv"),
        ("shifted", shifted_mix(frame), "application/json"),
    ):
        start = datetime.now(UTC)
        time.sleep(0.01)
        sent += replay(capture_stack, key, rows, content_type)
        wait_for_events(folder, sent)
        time.sleep(0.01)
        end = datetime.now(UTC)
        out = tmp_path_factory.mktemp(f"monitor-{name}")
        results[name] = (*monitor(folder, out, released_model_dir, start, end), out)
    return results


def test_capture_files_have_sagemakers_layout_and_fields(
    replays, capture_stack: StackInfo, capture_settings: LocalSettings
) -> None:
    folder = capture_settings.capture_dir
    files = sorted(folder.rglob("*.jsonl"))
    assert files
    for path in files:
        parts = path.relative_to(folder).parts
        assert parts[:2] == (capture_stack.endpoint_name, "AllTraffic")
        assert [len(p) for p in parts[2:6]] == [4, 2, 2, 2]  # yyyy/mm/dd/hh
    events, reports = read_local(folder)
    assert all(r.problems == [] for r in reports)
    first, last = events[0], events[-1]
    assert first.endpoint_input["observedContentType"] == "text/csv"
    assert first.endpoint_input["encoding"] == "CSV" and first.endpoint_input["mode"] == "INPUT"
    assert first.endpoint_output["observedContentType"] == "application/json"
    assert first.endpoint_output["encoding"] == "JSON" and first.endpoint_output["mode"] == "OUTPUT"
    assert last.endpoint_input["observedContentType"] == "application/json"
    line = json.loads(files[0].read_text().splitlines()[0])
    assert set(line) == {"captureData", "eventMetadata", "eventVersion"} and line["eventVersion"] == "0"
    assert set(line["eventMetadata"]) == {"eventId", "inferenceTime"}


def test_adult_test_as_is_keeps_the_monitor_quiet(replays) -> None:
    code, report, output, _ = replays["as-is"]
    assert code == 0, output
    assert report["level"] == "ok" and report["findings"] == []
    assert report["records"] == len(adult_test_frame())
    assert report["prediction"]["records"] == report["records"]
    assert max(f["psi"] for f in report["features"].values()) < 0.1
    assert report["prediction"]["psi"] < 0.1


def test_a_shifted_mix_fires_and_names_the_features(replays) -> None:
    code, report, output, out = replays["shifted"]
    assert code == 1, output
    assert report["level"] == "alert" and report["records"] == SHIFTED_ROWS
    assert {"age", "workclass", "occupation"} <= set(report["drifted_features"])
    assert report["features"]["age"]["psi"] >= 0.25
    assert report["features"]["workclass"]["psi"] >= 0.25
    occupation = report["features"]["occupation"]
    assert occupation["missing_rate"]["observed"] >= 1334 / SHIFTED_ROWS  # every 3rd row, plus its own
    assert any(f.startswith("occupation: missing rate") for f in report["findings"])
    for name in ("age", "workclass", "occupation"):
        assert f"{name}: " in output  # the terminal summary names them too
    markdown = (out / "report.md").read_text()
    assert "Verdict: **ALERT**" in markdown and "| occupation | categorical |" in markdown
    assert (out / "charts" / "psi.png").stat().st_size > 5_000
    assert (out / "charts" / "age.png").is_file()


def test_schema_order_is_what_the_replay_sends() -> None:
    assert list(adult_test_frame().columns) == list(SCHEMA.names)


@pytest.fixture
def runtime_with_capture(stub_container, tmp_path: Path):
    """Factory: an InvokeEndpoint server in this process in front of the stub, capturing to a folder."""
    import threading

    from pipeline.local.runtime import Endpoint, RuntimeConfig, make_server
    from pipeline.monitoring.capture import CaptureSettings

    servers = []

    def start(root: Path, percentage: int = 100) -> tuple[str, object]:
        config = RuntimeConfig(
            endpoints={"ep": Endpoint("ep", stub_container.url)},
            capture=CaptureSettings(root, percentage, seed=5),
        )
        server = make_server(config)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.port}", server.RequestHandlerClass.runtime

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()
        server.RequestHandlerClass.runtime.close()


def test_a_capture_write_failure_never_fails_the_invocation(runtime_with_capture, tmp_path: Path) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    url, runtime = runtime_with_capture(blocked)
    answer = requests.post(
        f"{url}/endpoints/ep/invocations", data=b"1,2,3", headers={"Content-Type": "text/csv"}, timeout=10
    )
    assert answer.status_code == 200
    writer = runtime.captures["ep"]
    deadline = time.monotonic() + 5
    while writer.failed == 0:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert writer.written == 0


def test_the_runtime_honours_the_sampling_percentage(runtime_with_capture, tmp_path: Path) -> None:
    url, runtime = runtime_with_capture(tmp_path / "capture", percentage=20)
    for _ in range(200):
        answer = requests.post(
            f"{url}/endpoints/ep/invocations", data=b"1,2,3", headers={"Content-Type": "text/csv"}, timeout=10
        )
        assert answer.status_code == 200
    runtime.close()
    events, _ = read_local(tmp_path / "capture")
    assert 20 <= len(events) <= 60  # 20 % of 200, seeded
    assert {e.endpoint_input["data"] for e in events} == {"1,2,3"}


@pytest.mark.parametrize("name", ["as-is", "shifted"])
def test_the_figures_in_docs_monitoring_are_what_the_replays_give(replays, name: str) -> None:
    """docs/monitoring.md quotes docs/monitoring/replay-*.json: a replay must reproduce them exactly."""
    _, report, _, _ = replays[name]
    documented = json.loads((REPO_ROOT / "docs" / "monitoring" / f"replay-{name}.json").read_text())
    assert report["level"] == documented["level"] and report["records"] == documented["records"]
    assert {k: v["psi"] for k, v in report["features"].items()} == {
        k: v["psi"] for k, v in documented["features"].items()
    }
    assert report["prediction"]["psi"] == documented["prediction"]["psi"]
    assert report["prediction"]["positive_rate"] == documented["prediction"]["positive_rate"]
    assert report["findings"] == documented["findings"]
