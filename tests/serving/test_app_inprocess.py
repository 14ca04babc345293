"""The Flask app in process with stand-in engines: paths no real model can provoke on demand
(a scoring deadline, an engine fault, a model that never loaded)."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import ClassVar

import numpy as np
import orjson
import pytest
from inference.app import create_app
from inference.readiness import ModelState
from inference.settings import load_settings

from pipeline.schema import SCHEMA

from .conftest import RECORD


class SlowEngine:
    """Takes ``delay`` seconds per call; probabilities 0.25 for every row."""

    name = "slow"
    schema = SCHEMA
    threshold = 0.5
    manifest: ClassVar[dict] = {}

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.calls = 0

    def predict_proba(self, columns: Mapping[str, Sequence[object]]) -> np.ndarray:
        self.calls += 1
        time.sleep(self.delay)
        return np.full(len(columns["age"]), 0.25)


class BrokenEngine(SlowEngine):
    def predict_proba(self, columns: Mapping[str, Sequence[object]]) -> np.ndarray:
        raise RuntimeError("secret internal detail")


def client_for(engine, ready: bool = True, reason: str | None = None, **env: str):
    settings = load_settings({"SAGEMAKER_MODEL_SERVER_WORKERS": "3", **env})
    app = create_app(settings, ModelState(engine=engine, ready=ready, reason=reason))
    return app.test_client()


def test_deadline_exceeded_between_chunks_is_a_json_504() -> None:
    engine = SlowEngine(delay=0.6)
    client = client_for(engine, SAGEMAKER_MODEL_SERVER_TIMEOUT="1", SERVE_SCORING_CHUNK_ROWS="2")
    response = client.post("/invocations", data=orjson.dumps([RECORD] * 10), content_type="application/json")
    assert response.status_code == 504
    error = response.get_json()["error"]
    assert error["code"] == "deadline_exceeded"
    assert "within 1 s" in error["message"]
    assert engine.calls == 2  # stopped early instead of scoring all five chunks


def test_chunked_scoring_keeps_order_and_count() -> None:
    engine = SlowEngine(delay=0)
    client = client_for(engine, SERVE_SCORING_CHUNK_ROWS="3")
    response = client.post("/invocations", data=orjson.dumps([RECORD] * 10), content_type="application/json")
    assert response.status_code == 200
    assert len(response.get_json()["predictions"]) == 10
    assert engine.calls == 4


def test_engine_fault_is_a_500_without_internals(capfd: pytest.CaptureFixture[str]) -> None:
    client = client_for(BrokenEngine(0))
    response = client.post("/invocations", data=orjson.dumps(RECORD), content_type="application/json")
    assert response.status_code == 500
    body = response.get_json()
    assert body["error"]["code"] == "internal_error"
    assert "secret" not in response.get_data(as_text=True)
    assert body["error"]["request_id"] == response.headers["X-Request-Id"]
    logged = capfd.readouterr().out
    assert "RuntimeError" in logged and "unhandled_exception" in logged


def test_model_not_ready_is_503_on_ping_and_invocations() -> None:
    client = client_for(None, ready=False, reason="model could not be loaded: ArtifactNotFoundError: gone")
    ping = client.get("/ping")
    assert ping.status_code == 503
    assert ping.get_json()["error"] == {
        "code": "model_not_ready",
        "message": "model could not be loaded: ArtifactNotFoundError: gone",
        "details": [],
        "request_id": ping.headers["X-Request-Id"],
    }
    invoke = client.post("/invocations", data=b"{}", content_type="application/json")
    assert invoke.status_code == 503


def test_app_enforces_the_body_limit_itself() -> None:
    client = client_for(SlowEngine(0), MAX_PAYLOAD_MB="1")
    response = client.post("/invocations", data=b" " * (1024 * 1024 + 1), content_type="application/json")
    assert response.status_code == 413
    error = response.get_json()["error"]
    assert error["details"][0]["limit_bytes"] == 1024 * 1024
    assert "1048576 bytes" in error["message"]


def test_execution_parameters_reflect_settings() -> None:
    client = client_for(SlowEngine(0), MAX_PAYLOAD_MB="20")
    assert client.get("/execution-parameters").get_json() == {
        "MaxConcurrentTransforms": 3,
        "BatchStrategy": "MULTI_RECORD",
        "MaxPayloadInMB": 20,
    }


def test_request_id_from_proxy_is_kept_and_a_bad_one_replaced() -> None:
    client = client_for(SlowEngine(0))
    assert client.get("/ping", headers={"X-Request-Id": "abc-123"}).headers["X-Request-Id"] == "abc-123"
    replaced = client.get("/ping", headers={"X-Request-Id": "bad id with spaces and {braces}"}).headers[
        "X-Request-Id"
    ]
    assert len(replaced) == 32 and replaced.isalnum()


def test_time_queued_before_the_app_counts_against_the_deadline() -> None:
    engine = SlowEngine(delay=0)
    client = client_for(engine, SAGEMAKER_MODEL_SERVER_TIMEOUT="60")
    stale = {"X-Request-Start": f"t={time.time() - 61:.3f}"}
    response = client.post(
        "/invocations", data=orjson.dumps(RECORD), content_type="application/json", headers=stale
    )
    assert response.status_code == 504
    assert response.get_json()["error"]["details"][0]["phase"] == "queueing"
    assert engine.calls == 0  # stale work is shed, not done
    fresh = {"X-Request-Start": f"t={time.time() - 0.05:.3f}"}
    ok = client.post(
        "/invocations", data=orjson.dumps(RECORD), content_type="application/json", headers=fresh
    )
    assert ok.status_code == 200


@pytest.mark.parametrize("header", ["t=abc", f"t={time.time() + 7200:.3f}", "1234", ""])
def test_implausible_request_start_headers_are_ignored(header: str) -> None:
    client = client_for(SlowEngine(0), SAGEMAKER_MODEL_SERVER_TIMEOUT="1")
    response = client.post(
        "/invocations",
        data=orjson.dumps(RECORD),
        content_type="application/json",
        headers={"X-Request-Start": header},
    )
    assert response.status_code == 200
