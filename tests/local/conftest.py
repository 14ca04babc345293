"""Fixtures for the local cloud: real processes on loopback, each stopped by the fixture that started it.

* ``local_settings``: a private run and secrets directory and OS-chosen ports for the session;
* ``stack``: the whole local stack (real ``container/serve`` on the committed release, the runtime and the
  gateway as processes, the real Lambda handler in the gateway's workers), shared by the session;
* ``start_runtime``: a runtime process in front of any container (e.g. :class:`StubContainer`);
* ``start_gateway``: a gateway *in this process* (a real HTTP server in a thread, real Lambda worker
  processes) so a test can hand it a fake clock;
* ``api_key``: a fresh key per test, so every test has its own token bucket and quota.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from local_isolation import isolated_settings

from pipeline.local.gateway import Gateway, build_gateway, make_server
from pipeline.local.keys import create_key
from pipeline.local.settings import LocalSettings
from pipeline.local.stack import Stack, StackInfo

REPO_ROOT = Path(__file__).resolve().parents[2]
TESTS_DIR = Path(__file__).resolve().parent

sys.path.insert(0, str(TESTS_DIR))
from local_stub_container import StubContainer  # noqa: E402

FAKE_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
}


@pytest.fixture(autouse=True)
def fake_aws_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test may see real credentials, profiles or endpoint overrides from the machine."""
    for name in (
        "AWS_PROFILE",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME",
        "AWS_SESSION_TOKEN",
    ):
        monkeypatch.delenv(name, raising=False)
    for name, value in FAKE_AWS_ENV.items():
        monkeypatch.setenv(name, value)


@pytest.fixture(scope="session")
def local_settings(tmp_path_factory: pytest.TempPathFactory) -> LocalSettings:
    return isolated_settings(tmp_path_factory.mktemp("local-cloud"))


@pytest.fixture(scope="session")
def stack(released_model_dir: Path, local_settings: LocalSettings) -> Iterator[StackInfo]:
    """The full local stack on the committed release (session-wide: starting it costs a few seconds).

    The release, not a quick model, so the end-to-end answers can be held to its golden predictions."""
    local = Stack(local_settings, say=lambda _msg: None)
    try:
        yield local.up(released_model_dir, container_env={"SERVE_SHUTDOWN_GRACE": "2"}, wait_s=120)
    finally:
        local.down(quiet=True)


@pytest.fixture
def api_key(local_settings: LocalSettings) -> tuple[str, str]:
    """A fresh (key_id, key_value) in the session's key store."""
    return create_key("pytest", local_settings.keys_file)


@pytest.fixture
def stub_container() -> Iterator[StubContainer]:
    stub = StubContainer()
    try:
        yield stub
    finally:
        stub.stop()


@pytest.fixture
def start_runtime(tmp_path: Path) -> Iterator[Callable[..., str]]:
    """Factory: ``start_runtime({"name": container_url}, **env)`` -> the runtime's URL."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(endpoints: dict[str, str], **env: str) -> str:
        port_file = tmp_path / f"runtime-{len(procs)}.port"
        args = [sys.executable, "-m", "pipeline.local.runtime", "--port", "0", "--port-file", str(port_file)]
        for name, url in endpoints.items():
            args += ["--endpoint", f"{name}={url}"]
        log = open(tmp_path / f"runtime-{len(procs)}.log", "wb")  # noqa: SIM115 - owned by the process
        proc = subprocess.Popen(args, env={**os.environ, **env}, stdout=log, stderr=log, cwd=REPO_ROOT)
        procs.append(proc)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if port_file.is_file() and port_file.read_text().strip():
                return f"http://127.0.0.1:{port_file.read_text().strip()}"
            assert proc.poll() is None, (tmp_path / f"runtime-{len(procs) - 1}.log").read_text()
            time.sleep(0.05)
        raise AssertionError("the runtime did not start")

    yield start
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def start_gateway(
    local_settings: LocalSettings, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., tuple[str, Gateway]]]:
    """Factory: a gateway in a thread of this process (so tests can inject a clock) -> (URL, Gateway)."""
    started: list[tuple[object, Gateway]] = []
    for name, value in local_settings.as_env().items():
        monkeypatch.setenv(name, value)

    def start(runtime_url: str, **kwargs: object) -> tuple[str, Gateway]:
        gateway = build_gateway(runtime_url, keys_file=local_settings.keys_file, **kwargs)  # type: ignore[arg-type]
        server = make_server(gateway)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
        started.append((server, gateway))
        return f"http://127.0.0.1:{server.port}", gateway

    yield start
    for server, gateway in started:
        server.shutdown()  # type: ignore[attr-defined]
        server.server_close()  # type: ignore[attr-defined]
        gateway.pool.close()
