"""Fixtures that run the real ``container/serve`` (nginx + gunicorn) on a free loopback port."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from pipeline.schema import EXAMPLE_RECORD

REPO_ROOT = Path(__file__).resolve().parents[2]
SERVE = REPO_ROOT / "container" / "serve"

RECORD = dict(EXAMPLE_RECORD)


# The real-stack tests run once per scoring engine (MODEL_SERVER_ENGINE set in the environment
# narrows the run to that engine; see container/inference/onnx_engine.py).
ENGINES = tuple(
    e for e in ("sklearn", "onnx") if os.environ.get("MODEL_SERVER_ENGINE") in (None, "", "auto", e)
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def descendants(pid: int) -> list[int]:
    """All live descendant pids of ``pid`` (from /proc), deepest last."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    found, stack = [], [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def process_name(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


class ServeProcess:
    """One ``serve`` process tree; always stopped by the fixture that made it, even on failure."""

    def __init__(self, model_dir: Path, log_dir: Path, workers: int = 2, **extra_env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.stdout_path = log_dir / f"serve-{self.port}.out"
        self.stderr_path = log_dir / f"serve-{self.port}.err"
        env = {
            **os.environ,
            "MODEL_DIR": str(model_dir),
            "SAGEMAKER_BIND_TO_PORT": str(self.port),
            "SERVE_LISTEN_HOST": "127.0.0.1",
            "SAGEMAKER_MODEL_SERVER_WORKERS": str(workers),
            **extra_env,
        }
        # Append mode: serve, gunicorn and nginx all write here, as they share a pipe in a container.
        self._stdout = open(self.stdout_path, "ab")  # noqa: SIM115 - closed in stop()
        self._stderr = open(self.stderr_path, "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, str(SERVE)], env=env, stdout=self._stdout, stderr=self._stderr, cwd=REPO_ROOT
        )
        self._tree: set[int] = set()
        self.engine = extra_env.get("MODEL_SERVER_ENGINE", "auto")

    def wait_for_ping(self, status: int = 200, timeout: float = 60.0) -> requests.Response:
        """Poll /ping until it answers ``status`` (nginx's 502 while gunicorn boots is skipped)."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"serve exited with {self.proc.returncode}:\n{self.stderr()[-3000:]}")
            try:
                last = requests.get(f"{self.url}/ping", timeout=2)
                if last.status_code == status:
                    self.remember_tree()
                    return last
            except requests.ConnectionError:
                pass
            time.sleep(0.1)
        raise AssertionError(
            f"/ping never answered {status} (last: {last and last.status_code}):\n{self.stderr()}"
        )

    def remember_tree(self) -> None:
        self._tree.update(descendants(self.proc.pid))

    def gunicorn_master(self) -> int:
        return next(
            p for p in descendants(self.proc.pid) if "gunicorn" in process_name(p) and self._is_child(p)
        )

    def nginx_master(self) -> int:
        return next(p for p in descendants(self.proc.pid) if "nginx: master" in process_name(p))

    def workers(self) -> list[int]:
        master = self.gunicorn_master()
        return [p for p in descendants(master) if "gunicorn" in process_name(p)]

    def _is_child(self, pid: int) -> bool:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1]) == self.proc.pid

    def log_lines(self) -> list[str]:
        self._stdout.flush()
        return self.stdout_path.read_text(encoding="utf-8", errors="replace").splitlines()

    def stderr(self) -> str:
        self._stderr.flush()
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> None:
        """SIGTERM, then SIGKILL to everything that was ever part of the tree."""
        if self.proc.poll() is None:
            self.remember_tree()
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        for pid in self._tree:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self._stdout.close()
        self._stderr.close()


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator:
    """Factory: ``start_server(model_dir, **env)`` -> a started ServeProcess, stopped at teardown."""
    started: list[ServeProcess] = []

    def start(model_dir: Path, workers: int = 2, **env: str) -> ServeProcess:
        server = ServeProcess(model_dir, tmp_path, workers=workers, **env)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="module", params=ENGINES)
def server(
    request: pytest.FixtureRequest, quick_model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServeProcess]:
    """A healthy server on the quick model, shared by a test module; once per engine."""
    logs = tmp_path_factory.mktemp("serve-logs")
    proc = ServeProcess(quick_model_dir, logs, workers=2, MODEL_SERVER_ENGINE=request.param)
    try:
        proc.wait_for_ping(200)
        yield proc
    finally:
        proc.stop()


@pytest.fixture
def model_copy(quick_model_dir: Path, tmp_path: Path) -> Path:
    """A private, writable copy of the quick model (for breaking it on purpose)."""
    return Path(shutil.copytree(quick_model_dir, tmp_path / "model"))
