"""A scoring call slower than the configured timeout: a JSON 5xx within the limit, and the server recovers.

Scoring is made slow by a test-only hook (``slow_scoring/sitecustomize.py``) put on the ``PYTHONPATH``
of the ``serve`` under test: a record whose ``native_country`` is ``test-sleep-S`` makes each engine
call of its chunk sleep S seconds. Production code is unchanged.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import requests

from bench.live import RECORD
from docs.openapi.contract import assert_documented_error

from .conftest import SLOW_HOOK_DIR

TIMEOUT_S = 2  # SAGEMAKER_MODEL_SERVER_TIMEOUT: app deadline 2 s, gunicorn 7 s, nginx 12 s


def _slow_env() -> dict[str, str]:
    return {
        "PYTHONPATH": str(SLOW_HOOK_DIR),
        "RELIABILITY_SLOW_SCORING": "1",
        "SAGEMAKER_MODEL_SERVER_TIMEOUT": str(TIMEOUT_S),
        "SERVE_SCORING_CHUNK_ROWS": "1",
    }


def _slow(seconds: float) -> dict[str, object]:
    return {**RECORD, "native_country": f"test-sleep-{seconds:g}"}


def test_slow_chunks_past_the_deadline_get_a_json_504_and_the_worker_keeps_serving(
    start_serve, quick_model_dir: Path
) -> None:
    server = start_serve(quick_model_dir, workers=2, env=_slow_env())
    workers_before = sorted(server.gunicorn_workers())
    chunk_s = 1.2
    started = time.monotonic()
    response = requests.post(f"{server.url}/invocations", json=[_slow(chunk_s)] * 3, timeout=30)
    elapsed = time.monotonic() - started
    assert response.status_code == 504, response.text
    error = assert_documented_error(response.content, response.headers.get("Content-Type"))
    assert error["code"] == "deadline_exceeded"
    assert error["details"][0]["deadline_seconds"] == TIMEOUT_S
    # Checked between chunks: the answer comes at most one chunk after the deadline, long before
    # gunicorn's worker timeout (TIMEOUT_S + 5) would kill the worker.
    assert TIMEOUT_S <= elapsed < TIMEOUT_S + chunk_s + 1.5, elapsed
    assert sorted(server.gunicorn_workers()) == workers_before, "a worker was replaced"
    ok = requests.post(f"{server.url}/invocations", json=RECORD, timeout=10)
    assert ok.status_code == 200 and len(ok.json()["predictions"]) == 1


def test_a_hung_scoring_call_is_cut_off_with_a_json_5xx_and_the_worker_is_replaced(
    start_serve, quick_model_dir: Path
) -> None:
    server = start_serve(quick_model_dir, workers=2, env=_slow_env())
    workers_before = set(server.gunicorn_workers())
    started = time.monotonic()
    response = requests.post(f"{server.url}/invocations", json=_slow(120), timeout=60)
    elapsed = time.monotonic() - started
    # gunicorn kills the silent worker after TIMEOUT_S + 5 s; nginx (waiting TIMEOUT_S + 10 s)
    # answers its JSON 502 at once.
    assert response.status_code == 502, response.text
    error = assert_documented_error(response.content, response.headers.get("Content-Type"))
    assert error["code"] == "model_server_unavailable"
    assert TIMEOUT_S + 5 - 0.5 <= elapsed < TIMEOUT_S + 10, elapsed
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and len(set(server.gunicorn_workers()) - workers_before) < 1:
        time.sleep(0.05)
    workers_after = set(server.gunicorn_workers())
    assert len(workers_after) == 2 and workers_after != workers_before
    for _ in range(4):
        ok = requests.post(f"{server.url}/invocations", json=RECORD, timeout=10)
        assert ok.status_code == 200
    events = [json.loads(line) for line in server.stdout().splitlines() if line.startswith("{")]
    assert any(e.get("event") == "worker_timeout" for e in events)
