"""The load-time self-check: a model that loads but cannot score right never reports healthy.

Real engines are broken on purpose (``engine_faults``): scoring raises, returns the wrong shape,
NaN or values outside [0, 1], or scores a row differently alone than in a batch. Each must leave
``/ping`` at 503 with the reason and ``/invocations`` at 503: in process through the real
``load_model_state`` and Flask app, and through the real nginx + gunicorn stack.
"""

from __future__ import annotations

import os
from pathlib import Path

import inference.engine
import orjson
import pytest
import requests
from inference.app import create_app
from inference.readiness import load_model_state
from inference.settings import load_settings

from .conftest import RECORD, ServeProcess
from .engine_faults.engine_faults import FAULT_ENV, FAULTS, wrap_loader

HOOK_DIR = Path(__file__).resolve().parent / "engine_faults"


def state_with_fault(model_dir: Path, fault: str, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(inference.engine, "load_engine", wrap_loader(inference.engine.load_engine, fault))
    return load_model_state(model_dir)


def client_for(state):
    return create_app(load_settings({"SAGEMAKER_MODEL_SERVER_WORKERS": "1"}), state).test_client()


@pytest.mark.parametrize("engine", ["sklearn", "onnx"])
def test_an_unbroken_engine_passes_and_serves(
    quick_model_dir: Path, monkeypatch: pytest.MonkeyPatch, engine: str
) -> None:
    """The control: the same wrapper without a fault is healthy, so the 503s below are the faults'."""
    monkeypatch.setenv("MODEL_SERVER_ENGINE", engine)
    state = state_with_fault(quick_model_dir, "none", monkeypatch)
    assert state.ready, state.reason
    client = client_for(state)
    assert client.get("/ping").status_code == 200
    response = client.post("/invocations", data=orjson.dumps(RECORD), content_type="application/json")
    assert response.status_code == 200


@pytest.mark.parametrize("engine", ["sklearn", "onnx"])
@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_a_broken_engine_keeps_ping_503_naming_the_reason(
    quick_model_dir: Path, monkeypatch: pytest.MonkeyPatch, fault: str, engine: str
) -> None:
    monkeypatch.setenv("MODEL_SERVER_ENGINE", engine)
    state = state_with_fault(quick_model_dir, fault, monkeypatch)
    assert not state.ready
    assert state.engine is not None and state.engine.name == engine  # it loaded; scoring is what broke
    client = client_for(state)
    ping = client.get("/ping")
    assert ping.status_code == 503
    error = ping.get_json()["error"]
    assert error["code"] == "model_not_ready"
    assert error["message"].startswith("model self-check failed: EngineError: ")
    assert FAULTS[fault] in error["message"]
    invoke = client.post("/invocations", data=orjson.dumps(RECORD), content_type="application/json")
    assert invoke.status_code == 503
    assert invoke.get_json()["error"]["code"] == "model_not_ready"
    assert invoke.get_json()["error"]["message"] == error["message"]


@pytest.mark.parametrize("fault", ["batch_differs", "nan"])
def test_a_broken_engine_keeps_the_real_server_at_503(
    start_server, quick_model_dir: Path, fault: str
) -> None:
    """nginx answers /ping from a ready file only a passed self-check writes; without it, the app's 503."""
    pythonpath = os.pathsep.join(p for p in (str(HOOK_DIR), os.environ.get("PYTHONPATH", "")) if p)
    server: ServeProcess = start_server(
        quick_model_dir, workers=1, PYTHONPATH=pythonpath, **{FAULT_ENV: fault}
    )
    ping = server.wait_for_ping(503)
    error = ping.json()["error"]
    assert error["code"] == "model_not_ready" and FAULTS[fault] in error["message"]
    invoke = requests.post(f"{server.url}/invocations", json=RECORD, timeout=10)
    assert invoke.status_code == 503 and invoke.json()["error"]["code"] == "model_not_ready"
    assert server.proc.poll() is None  # up and explaining, not crash-looping
