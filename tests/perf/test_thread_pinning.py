"""Thread hygiene on the real stack: every gunicorn worker stays one OS thread, whatever it scores.

An unpinned OpenMP pool (HistGradientBoosting) or ONNX Runtime intra-op pool would add threads to
the worker on its first large batch; with one worker per core that oversubscribes the machine and
throughput collapses under concurrency. The server pins them itself, so no client setting is needed.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from serving.conftest import RECORD, ServeProcess

from pipeline.data import load_test
from pipeline.schema import SCHEMA


@pytest.fixture(scope="module")
def csv_body() -> bytes:
    frame = load_test().frame[SCHEMA.names].iloc[:5000]
    lines = [
        ",".join("" if v is None or v != v else str(v) for v in row) for row in frame.itertuples(index=False)
    ]
    return ("\n".join(lines) + "\n").encode()


@pytest.fixture(params=["sklearn", "onnx"])
def serving(request: pytest.FixtureRequest, quick_model_dir: Path, tmp_path: Path) -> Iterator[ServeProcess]:
    # No OMP_NUM_THREADS etc. from the caller: the server must pin the pools by itself.
    saved = {k: os.environ.pop(k) for k in list(os.environ) if k.endswith("_NUM_THREADS")}
    try:
        proc = ServeProcess(quick_model_dir, tmp_path, workers=2, MODEL_SERVER_ENGINE=request.param)
    finally:
        os.environ.update(saved)
    try:
        proc.wait_for_ping(200)
        yield proc
    finally:
        proc.stop()


def test_workers_stay_single_threaded_after_large_batches(serving: ServeProcess, csv_body: bytes) -> None:
    url = f"{serving.url}/invocations"
    for _ in range(4):  # enough requests that both workers score a 5,000-row batch
        response = requests.post(url, data=csv_body, headers={"Content-Type": "text/csv"}, timeout=60)
        assert response.status_code == 200, response.text
        assert len(response.json()["predictions"]) == 5000
        single = requests.post(url, json=RECORD, timeout=10)
        assert single.status_code == 200, single.text
    workers = serving.workers()
    assert len(workers) == 2
    threads = {pid: len(os.listdir(f"/proc/{pid}/task")) for pid in workers}
    assert all(n == 1 for n in threads.values()), threads
    engines = [line for line in serving.log_lines() if '"model_ready"' in line]
    assert engines and f'"engine":"{serving.engine}"' in engines[-1]
