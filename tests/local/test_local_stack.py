"""Starting and stopping the local stack: the container going down, ``down`` leaving nothing behind,
pid files that point at someone else's process, the demo command end to end, and Docker mode.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
import requests
from local_isolation import isolated_settings

from pipeline.local.keys import create_key
from pipeline.local.settings import LocalSettings
from pipeline.local.stack import Stack, StackInfo
from pipeline.schema import EXAMPLE_RECORD

REPO_ROOT = Path(__file__).resolve().parents[2]
RECORD = dict(EXAMPLE_RECORD)


def process_tree(pid: int) -> set[int]:
    """``pid`` and all its live descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", encoding="utf-8") as fh:
                    ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    found, todo = {pid}, [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.fixture
def own_stack(tmp_path: Path, quick_model_dir: Path) -> Iterator[tuple[Stack, StackInfo, LocalSettings]]:
    """A private stack this test may break; always stopped."""
    settings = isolated_settings(tmp_path)
    local = Stack(settings, say=lambda _msg: None)
    try:
        info = local.up(quick_model_dir, container_env={"SERVE_SHUTDOWN_GRACE": "2"}, wait_s=120)
        yield local, info, settings
    finally:
        local.down(quiet=True)


def test_container_down_gives_the_documented_5xx_and_down_leaves_nothing(
    own_stack: tuple[Stack, StackInfo, LocalSettings], monkeypatch: pytest.MonkeyPatch
) -> None:
    local, info, settings = own_stack
    _, key = create_key("down-test", settings.keys_file)
    headers = {"x-api-key": key, "Content-Type": "application/json"}
    assert requests.post(info.predict_url, json=RECORD, headers=headers, timeout=30).status_code == 200
    everything = set().union(*(process_tree(pid) for pid in info.pids.values()))
    assert len(everything) >= 6  # serve, nginx, gunicorn + workers, runtime, gateway + a Lambda worker

    for pid in process_tree(info.pids["container"]):  # the container dies, all of it at once
        with contextlib.suppress(ProcessLookupError):  # a short-lived child may be gone already
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while _answers(info):
        assert time.monotonic() < deadline, "the container still answers after SIGKILL"
        time.sleep(0.1)

    # Through the gateway: the Lambda maps InvokeEndpoint's ModelNotReadyException to 503.
    answer = requests.post(info.predict_url, json=RECORD, headers=headers, timeout=30)
    assert answer.status_code == 503
    assert answer.json()["error"]["code"] == "model_not_ready"
    assert answer.headers["Retry-After"]
    # Straight to InvokeEndpoint: the modeled exception.
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", info.runtime_url)
    runtime = boto3.client("sagemaker-runtime")
    with pytest.raises(runtime.exceptions.ModelNotReadyException):
        runtime.invoke_endpoint(EndpointName=info.endpoint_name, Body=b"{}", ContentType="application/json")

    stopped = local.down(quiet=True)
    assert {"gateway", "runtime"} <= set(stopped)
    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in everything) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [pid for pid in everything if alive(pid)] == []
    assert not (settings.run_dir / "stack.json").exists()
    assert local.running() is None


def test_down_also_stops_what_a_crashed_container_left_behind(
    own_stack: tuple[Stack, StackInfo, LocalSettings],
) -> None:
    """serve killed alone orphans its nginx workers (own process groups): down still finds them."""
    local, info, _ = own_stack
    tree = process_tree(info.pids["container"])
    assert len(tree) >= 4
    os.kill(info.pids["container"], signal.SIGKILL)
    local.down(quiet=True)
    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in tree) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [pid for pid in tree if alive(pid)] == []


def _answers(info: StackInfo) -> bool:
    try:
        requests.get(f"{info.container_url}/ping", timeout=2)
    except requests.ConnectionError:
        return False
    return True


def test_down_never_signals_a_process_it_did_not_start(tmp_path: Path) -> None:
    settings = isolated_settings(tmp_path)
    settings.run_dir.mkdir(parents=True)
    stranger = subprocess.Popen(["sleep", "30"])
    try:
        for name in ("gateway", "runtime", "container"):
            (settings.run_dir / f"{name}.pid").write_text(f"{stranger.pid}\n")
        assert Stack(settings, say=lambda _m: None).down(quiet=True) == []
        assert stranger.poll() is None
        assert not (settings.run_dir / "gateway.pid").exists()  # stale pid files are cleaned up
    finally:
        stranger.kill()
        stranger.wait()


def test_a_second_up_is_refused_while_one_runs(own_stack: tuple[Stack, StackInfo, LocalSettings]) -> None:
    local, info, _ = own_stack
    from pipeline.local.stack import StackError

    with pytest.raises(StackError, match="already running"):
        local.up(Path(info.model_dir))
    status = local.status()
    assert status["container_ping"] == 200
    assert all(status["processes"].values())  # type: ignore[union-attr]


def test_the_demo_command_end_to_end(tmp_path: Path, quick_model_dir: Path) -> None:
    """``python -m pipeline local demo`` (what ``make demo`` runs), then ``status`` and ``down``."""
    settings = isolated_settings(tmp_path)
    env = {**os.environ, **settings.as_env()}
    env.pop("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", None)

    def cli(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "pipeline", "local", *args],
            env=env,
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    try:
        demo = cli("demo", "--model-dir", str(quick_model_dir))
        assert demo.returncode == 0, demo.stdout + demo.stderr
        out = demo.stdout
        for line in (
            "[1/4] One record (JSON)",
            "[2/4] A batch",
            "[3/4] An invalid record",
            "[4/4] No API key",
        ):
            assert line in out
        statuses = [line.split()[1] for line in out.splitlines() if line.startswith("  < ") and "ms)" in line]
        assert statuses == ["200", "200", "400", "403"]
        assert '"field": "age"' in out and '"message": "Forbidden"' in out
        key_file = settings.demo_key_file
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        key = key_file.read_text().strip()
        assert key and key not in out and key not in demo.stderr
        assert f"$(cat {key_file})" in out and "make down" in out

        status = cli("status", "--json")
        report = json.loads(status.stdout)
        assert report["container_ping"] == 200 and all(report["processes"].values())

        again = cli("demo", "--model-dir", str(quick_model_dir))  # reuses the stack and the key
        assert again.returncode == 0 and "already running" in again.stdout and "reused" in again.stdout
        assert key_file.read_text().strip() == key
    finally:
        down = cli("down", timeout=120)
    assert down.returncode == 0 and "stopped:" in down.stdout
    report = json.loads(cli("status", "--json").stdout)
    assert report["stack"] is None and not any(report["processes"].values())


@pytest.mark.docker
def test_docker_mode_serves_the_image(tmp_path: Path, quick_model_dir: Path) -> None:
    """The same stack with the container from the image (``docker run IMAGE serve``)."""
    image = os.environ.get("BYOC_TEST_IMAGE", "adult-income-byoc:test")
    if subprocess.run(["docker", "info"], capture_output=True, check=False).returncode != 0:
        message = "no Docker engine; start one with `bash scripts/docker-up.sh` (as root)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true: Docker tests must run. {message}")
        pytest.skip(message)
    built = subprocess.run(
        ["docker", "build", "-f", "container/Dockerfile", "-t", image, "."],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=1200, check=False,
    )  # fmt: skip
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    settings = isolated_settings(tmp_path, LOCAL_CONTAINER_MODE="docker", LOCAL_IMAGE=image)
    local = Stack(settings, say=lambda _m: None)
    try:
        info = local.up(quick_model_dir, container_env={"SERVE_SHUTDOWN_GRACE": "2"}, wait_s=120)
        assert info.mode == "docker" and info.docker_container
        _, key = create_key("docker", settings.keys_file)
        answer = requests.post(info.predict_url, json=RECORD, headers={"x-api-key": key}, timeout=30)
        assert answer.status_code == 200, answer.text
        assert answer.json()["predictions"][0]["label"] in (">50K", "<=50K")
        assert "serve_starting" in Path(info.logs["container"]).read_text()  # docker logs are followed
    finally:
        local.down(quiet=True)
    deadline = time.monotonic() + 20
    while (
        subprocess.run(
            ["docker", "inspect", info.docker_container], capture_output=True, check=False
        ).returncode
        == 0
    ):
        assert time.monotonic() < deadline, "the container was not stopped and removed (--rm)"
        time.sleep(0.2)
