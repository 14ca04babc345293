"""The process tree's life: broken artifacts, SIGTERM drain, a killed worker, a dead nginx or gunicorn."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import tempfile
import threading
import time
from pathlib import Path

import pytest
import requests

from .conftest import RECORD, ServeProcess, descendants

ROW = ",".join(str(RECORD[k]) for k in RECORD)


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def wait_until(predicate, timeout: float, message: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(message)


def break_missing(model_dir: Path) -> str:
    for path in model_dir.iterdir():
        path.unlink()
    model_dir.rmdir()
    return "does not exist"


def break_checksum(model_dir: Path) -> str:
    path = model_dir / "model.joblib"
    path.write_bytes(path.read_bytes()[:-10] + b"0123456789")
    return "SHA-256"


def break_manifest(model_dir: Path) -> str:
    (model_dir / "manifest.json").write_text("{not json", encoding="utf-8")
    return "not valid JSON"


def break_version(model_dir: Path) -> str:
    path = model_dir / "manifest.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    manifest["library_versions"]["scikit-learn"] = "0.20.2"
    path.write_text(json.dumps(manifest), encoding="utf-8")
    return "trained with scikit-learn 0.20.2"


@pytest.mark.parametrize("breaker", [break_missing, break_checksum, break_manifest, break_version])
def test_broken_artifact_starts_but_ping_says_why(start_server, model_copy: Path, breaker) -> None:
    needle = breaker(model_copy)
    # The sklearn engine checks the scikit-learn version (the ONNX engine does not need sklearn).
    server: ServeProcess = start_server(model_copy, workers=1, MODEL_SERVER_ENGINE="sklearn")
    ping = server.wait_for_ping(503)
    error = ping.json()["error"]
    assert error["code"] == "model_not_ready"
    assert needle in error["message"]
    started = time.monotonic()
    for _ in range(3):
        again = requests.get(f"{server.url}/ping", timeout=2)
        assert again.status_code == 503
    assert time.monotonic() - started < 2
    invoke = requests.post(f"{server.url}/invocations", json=RECORD, timeout=5)
    assert invoke.status_code == 503 and invoke.json()["error"]["code"] == "model_not_ready"
    assert server.proc.poll() is None  # no crash loop: the server stays up and explains
    logged = [json.loads(line) for line in server.log_lines() if '"model_not_ready"' in line]
    failures = [line for line in logged if line["event"] == "model_not_ready"]
    assert len(failures) == 1 and needle in failures[0]["reason"]


def test_sigterm_drains_in_flight_requests_and_exits_zero(start_server, quick_model_dir: Path) -> None:
    server: ServeProcess = start_server(quick_model_dir, workers=2)
    server.wait_for_ping(200)
    rows = 50_000  # ~4.7 MB: enough work that 8 of them outlast the 0.3 s before SIGTERM on a fast machine
    body = ("\n".join([ROW] * rows) + "\n").encode()
    results: list[tuple[int, int, float]] = []

    def call() -> None:
        response = requests.post(
            f"{server.url}/invocations", data=body, headers={"Content-Type": "text/csv"}, timeout=60
        )
        count = len(response.json()["predictions"]) if response.status_code == 200 else -1
        results.append((response.status_code, count, time.monotonic()))

    threads = [threading.Thread(target=call) for _ in range(8)]
    for thread in threads:
        thread.start()
    time.sleep(0.3)
    signalled = time.monotonic()
    server.proc.send_signal(signal.SIGTERM)
    for thread in threads:
        thread.join(timeout=60)
    assert server.proc.wait(timeout=30) == 0
    assert [(status, count) for status, count, _ in results] == [(200, rows)] * 8
    assert any(done > signalled for _, _, done in results), "no request was in flight at SIGTERM"
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{server.url}/ping", timeout=2)
    events = [json.loads(line)["event"] for line in server.log_lines() if '"serve_' in line]
    assert events[-2:] == ["serve_draining", "serve_stopped"]
    assert json.loads(server.log_lines()[-1])["drained"] is True


def test_killed_worker_is_replaced(start_server, quick_model_dir: Path) -> None:
    server: ServeProcess = start_server(quick_model_dir, workers=2)
    server.wait_for_ping(200)
    wait_until(lambda: len(server.workers()) == 2, timeout=20, message="two workers never booted")
    before = server.workers()
    os.kill(before[0], signal.SIGKILL)
    wait_until(
        lambda: len(server.workers()) == 2 and before[0] not in server.workers(),
        timeout=20,
        message="gunicorn did not replace the killed worker",
    )
    for _ in range(6):
        response = requests.post(f"{server.url}/invocations", json=RECORD, timeout=10)
        assert response.status_code == 200
    assert server.proc.poll() is None


@pytest.mark.parametrize("victim", ["nginx", "gunicorn"])
def test_dead_child_stops_the_other_and_exits_nonzero(
    start_server, quick_model_dir: Path, victim: str
) -> None:
    server: ServeProcess = start_server(quick_model_dir, workers=2)
    server.wait_for_ping(200)
    tree = descendants(server.proc.pid)
    pid = server.nginx_master() if victim == "nginx" else server.gunicorn_master()
    os.kill(pid, signal.SIGKILL)
    assert server.proc.wait(timeout=20) == 1
    wait_until(lambda: not any(alive(p) for p in tree), timeout=10, message="processes outlived serve")
    exited = [json.loads(line) for line in server.log_lines() if "serve_child_exited" in line]
    assert exited and exited[0]["child"] == victim


def test_stale_ready_file_in_a_reused_run_dir_is_ignored(start_server, model_copy: Path) -> None:
    break_missing(model_copy)
    run_dir = Path(tempfile.mkdtemp(prefix="serve-reused-"))
    try:
        (run_dir / "health").mkdir()
        (run_dir / "health" / "ready.json").write_text('{"status":"ok"}')
        server: ServeProcess = start_server(model_copy, workers=1, SERVE_RUN_DIR=str(run_dir))
        assert server.wait_for_ping(503).json()["error"]["code"] == "model_not_ready"
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


def test_port_in_use_exits_nonzero_with_nginx_reason(start_server, quick_model_dir: Path) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = str(blocker.getsockname()[1])
        server: ServeProcess = start_server(quick_model_dir, workers=1, SAGEMAKER_BIND_TO_PORT=port)
        assert server.proc.wait(timeout=30) == 1
    assert "Address already in use" in server.stderr()
    exited = [json.loads(line) for line in server.log_lines() if "serve_child_exited" in line]
    assert exited[0]["child"] == "nginx"


def test_bad_setting_exits_2_naming_the_variable(start_server, quick_model_dir: Path) -> None:
    server: ServeProcess = start_server(quick_model_dir, SAGEMAKER_MODEL_SERVER_TIMEOUT="soon")
    assert server.proc.wait(timeout=10) == 2
    events = [json.loads(line) for line in server.log_lines()]
    assert events[-1]["event"] == "serve_bad_settings"
    assert "SAGEMAKER_MODEL_SERVER_TIMEOUT='soon'" in events[-1]["message"]


def test_killed_serve_leaves_no_orphans(start_server, quick_model_dir: Path) -> None:
    """SIGKILL cannot be drained, but the masters get SIGTERM from the kernel and stop their workers."""
    server: ServeProcess = start_server(quick_model_dir, workers=2)
    server.wait_for_ping(200)
    wait_until(lambda: len(server.workers()) == 2, timeout=20, message="two workers never booted")
    tree = descendants(server.proc.pid)
    server.proc.kill()
    server.proc.wait(timeout=5)
    wait_until(lambda: not any(alive(p) for p in tree), timeout=15, message="orphans outlived serve")
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as nginx does; TIME_WAIT is fine
        sock.bind(("127.0.0.1", server.port))  # nobody listens on the port any more
        sock.listen()
