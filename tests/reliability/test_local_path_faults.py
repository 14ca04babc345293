"""The container stops behind the local InvokeEndpoint: the Lambda (via the gateway) answers the
documented 5xx within its timeout, and keeps answering its own health route."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest
import requests

from bench.live import RECORD, LocalPath
from docs.openapi.contract import GATEWAY_SPEC, assert_documented_error

LAMBDA_TIMEOUT_S = 28  # config/deploy.toml [lambda] timeout_seconds
DOCUMENTED_5XX = {
    502: {"model_error", "upstream_connection_closed", "upstream_error", "upstream_unreachable"},
    503: {"model_not_ready", "endpoint_unavailable", "service_unavailable"},
    504: {"model_timeout"},
}


def _predict(path: LocalPath) -> tuple[requests.Response, float]:
    started = time.monotonic()
    response = requests.post(
        path.predict_url, json=RECORD, headers={"x-api-key": path.api_key}, timeout=LAMBDA_TIMEOUT_S + 10
    )
    return response, time.monotonic() - started


def _assert_documented_5xx(response: requests.Response, elapsed: float) -> str:
    assert response.status_code in DOCUMENTED_5XX, (response.status_code, response.text)
    error = assert_documented_error(response.content, response.headers.get("Content-Type"), GATEWAY_SPEC)
    assert error.get("code") in DOCUMENTED_5XX[response.status_code], error
    assert elapsed < LAMBDA_TIMEOUT_S, elapsed
    return str(error["code"])


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL], ids=["stopped", "killed"])
def test_container_gone_behind_invoke_endpoint_is_a_documented_5xx_within_the_lambda_timeout(
    start_local_path, quick_model_dir: Path, how: signal.Signals
) -> None:
    path: LocalPath = start_local_path(quick_model_dir)
    ok, _ = _predict(path)
    assert ok.status_code == 200
    # Requests in flight while the container goes away must also end in a documented answer.
    in_flight: list[tuple[requests.Response, float]] = []
    threads = [threading.Thread(target=lambda: in_flight.append(_predict(path))) for _ in range(4)]
    for thread in threads:
        thread.start()
    pid = path.container_pid()
    assert pid is not None
    os.killpg(pid, how)
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline and path.container_pid() is not None:
        time.sleep(0.1)
    assert path.container_pid() is None, "the container did not stop"
    for thread in threads:
        thread.join(LAMBDA_TIMEOUT_S + 15)
    for response, elapsed in in_flight:
        if response.status_code != 200:  # finished before the container went away
            _assert_documented_5xx(response, elapsed)
    for _ in range(3):
        response, elapsed = _predict(path)
        _assert_documented_5xx(response, elapsed)
    health = requests.get(path.health_url, headers={"x-api-key": path.api_key}, timeout=30)
    assert health.status_code == 200 and health.json() == {"status": "ok"}
