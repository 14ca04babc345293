"""Start the real serving stack on loopback for load, fault and fuzz runs, and always stop it.

* :class:`ServeRun` runs ``container/serve`` (nginx + gunicorn, exactly as the image does) on a free
  port, with its stdout/stderr captured to files.
* :class:`LocalPath` runs the whole local cloud (:class:`pipeline.local.stack.Stack` in host mode:
  container, local InvokeEndpoint, local API Gateway with the real Lambda handler) in a private run
  directory, and creates an API key in a private key store.

Both are context managers; leaving the ``with`` block stops every process they started, even on error.
Used by ``bench/load.py``, ``bench/fuzz.py`` and the tests under ``tests/reliability``,
``tests/fuzz`` and ``tests/security``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

import requests

from pipeline.schema import EXAMPLE_RECORD

REPO_ROOT = Path(__file__).resolve().parents[1]
SERVE = REPO_ROOT / "container" / "serve"

RECORD: dict[str, object] = dict(EXAMPLE_RECORD)
"""One valid single-record request body (the first row of the Adult training data)."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def children_of(pid: int) -> list[int]:
    """Every live descendant of ``pid`` (read from /proc)."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8") as fh:
                ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        parents.setdefault(ppid, []).append(int(entry))
    found, stack = [], [pid]
    while stack:
        for child in parents.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def cmdline(pid: int) -> str:
    """The command line of ``pid`` ('' if it is gone)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def parent_of(pid: int) -> int | None:
    """The parent pid of ``pid`` (None if it is gone)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as fh:
            return int(fh.read().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


class ServeRun:
    """One ``container/serve`` process tree on a free loopback port."""

    def __init__(
        self,
        model_dir: Path,
        log_dir: Path,
        workers: int = 2,
        env: Mapping[str, str] | None = None,
        prefix: list[str] | None = None,
    ) -> None:
        self.model_dir = Path(model_dir)
        self.prefix = list(prefix or [])  # e.g. a namespace wrapper that execs serve
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        log_dir.mkdir(parents=True, exist_ok=True)
        self.stdout_path = log_dir / f"serve-{self.port}.out"
        self.stderr_path = log_dir / f"serve-{self.port}.err"
        self.env = {
            **os.environ,
            "MODEL_DIR": str(model_dir),
            "SAGEMAKER_BIND_TO_PORT": str(self.port),
            "SERVE_LISTEN_HOST": "127.0.0.1",
            "SAGEMAKER_MODEL_SERVER_WORKERS": str(workers),
            **(env or {}),
        }
        self.workers = int(self.env["SAGEMAKER_MODEL_SERVER_WORKERS"])
        self.proc: subprocess.Popen[bytes] | None = None
        self._seen: set[int] = set()

    def __enter__(self) -> ServeRun:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self, wait_s: float = 90.0) -> None:
        """Start serve and wait until ``/ping`` answers 200."""
        with open(self.stdout_path, "ab") as out, open(self.stderr_path, "ab") as err:
            self.proc = subprocess.Popen(
                [*self.prefix, sys.executable, str(SERVE)],
                env=self.env,
                stdout=out,
                stderr=err,
                cwd=REPO_ROOT,
            )
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"serve exited with {self.proc.returncode}:\n{self.stderr()[-3000:]}")
            with contextlib.suppress(requests.RequestException, StopIteration):
                # /ping turns 200 once one worker is up; wait for all of them.
                if (
                    requests.get(f"{self.url}/ping", timeout=2).status_code == 200
                    and len(self.gunicorn_workers()) == self.workers
                ):
                    self._seen.update(children_of(self.proc.pid))
                    return
            time.sleep(0.1)
        raise RuntimeError(f"/ping did not answer 200 within {wait_s:g} s:\n{self.stderr()[-3000:]}")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def gunicorn_master(self) -> int:
        """The gunicorn master (serve's direct child running gunicorn)."""
        return next(p for p in children_of(self.pid) if "gunicorn" in cmdline(p) and parent_of(p) == self.pid)

    def gunicorn_workers(self) -> list[int]:
        """The live gunicorn worker pids."""
        master = self.gunicorn_master()
        return [p for p in children_of(master) if "gunicorn" in cmdline(p)]

    def nginx_master(self) -> int:
        return next(p for p in children_of(self.pid) if "nginx: master" in cmdline(p))

    def tree(self) -> list[int]:
        """serve and every process under it now."""
        return [self.pid, *children_of(self.pid)]

    def remember_tree(self) -> None:
        """Record the current pids so :meth:`stop` can kill anything orphaned by a fault test."""
        self._seen.update(children_of(self.pid))

    def stdout(self) -> str:
        return self.stdout_path.read_text(encoding="utf-8", errors="replace")

    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    def wait(self, timeout: float) -> int | None:
        """serve's exit code, or None if it still runs after ``timeout`` seconds."""
        assert self.proc is not None
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self) -> None:
        """SIGTERM serve (it drains), then SIGKILL anything of the tree that is left."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.remember_tree()
            self.proc.send_signal(signal.SIGTERM)
            if self.wait(40) is None:
                self.proc.kill()
                self.proc.wait(timeout=10)
        for pid in self._seen:
            if pid != self.pid and cmdline(pid) and ("gunicorn" in cmdline(pid) or "nginx" in cmdline(pid)):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


class LocalPath:
    """The full local request path: gateway -> Lambda handler -> InvokeEndpoint -> container.

    ``overrides`` are deploy-configuration overrides (e.g. a usage plan big enough for a load run);
    ``container_env`` and ``lambda_env`` reach the container and the Lambda function.
    """

    def __init__(
        self,
        model_dir: Path,
        work_dir: Path | None = None,
        *,
        overrides: Mapping[str, object] | None = None,
        container_env: Mapping[str, str] | None = None,
        lambda_env: Mapping[str, str] | None = None,
        settings_env: Mapping[str, str] | None = None,
    ) -> None:
        self.model_dir = Path(model_dir)
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if work_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="local-path-")
            work_dir = Path(self._tmp.name)
        self.work_dir = Path(work_dir)
        self.overrides = dict(overrides or {})
        self.container_env = {"SAGEMAKER_MODEL_SERVER_WORKERS": "2", **(container_env or {})}
        self.lambda_env = dict(lambda_env or {})
        self.settings_env = {
            "LOCAL_RUN_DIR": str(self.work_dir / "run"),
            "LOCAL_SECRETS_DIR": str(self.work_dir / "secrets"),
            "LOCAL_GATEWAY_PORT": "0",
            "LOCAL_RUNTIME_PORT": "0",
            "LOCAL_CONTAINER_PORT": "0",
            "LOCAL_CONTAINER_MODE": "host",
            **(settings_env or {}),
        }
        self.stack = None
        self.info = None
        self.api_key = ""
        self.api_key_id = ""

    def __enter__(self) -> LocalPath:
        from pipeline.local.keys import create_key
        from pipeline.local.settings import load_local_settings
        from pipeline.local.stack import Stack

        settings = load_local_settings({**os.environ, **self.settings_env})
        settings.run_dir.mkdir(parents=True, exist_ok=True)
        settings.secrets_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.key_store = settings.keys_file
        self.api_key_id, self.api_key = create_key("reliability", store=self.key_store)
        self.stack = Stack(settings, say=lambda _text: None)
        try:
            self.info = self.stack.up(
                self.model_dir,
                overrides=self.overrides,
                container_env=self.container_env,
                lambda_env=self.lambda_env,
            )
        except BaseException:
            self._cleanup()
            raise
        self._wait_for_gateway()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop every service of the stack (idempotent)."""
        if self.stack is not None:
            self.stack.down(quiet=True)
            self.stack = None
        self._cleanup()

    def _cleanup(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    @property
    def predict_url(self) -> str:
        assert self.info is not None
        return str(self.info.predict_url)

    @property
    def health_url(self) -> str:
        assert self.info is not None
        return str(self.info.health_url)

    @property
    def gateway_url(self) -> str:
        assert self.info is not None
        return str(self.info.gateway_url)

    @property
    def stage_url(self) -> str:
        """The API's base URL: the gateway plus the deployed stage (``.../prod``)."""
        assert self.info is not None
        return f"{self.info.gateway_url}/{self.info.stage}"

    @property
    def runtime_url(self) -> str:
        assert self.info is not None
        return str(self.info.runtime_url)

    @property
    def container_url(self) -> str:
        assert self.info is not None
        return str(self.info.container_url)

    @property
    def endpoint_name(self) -> str:
        assert self.info is not None
        return str(self.info.endpoint_name)

    def log_paths(self) -> dict[str, Path]:
        """Every log file the stack wrote (container, runtime, gateway, ...)."""
        assert self.info is not None
        log_dir = Path(self.info.logs["gateway"]).parent
        return {path.stem: path for path in sorted(log_dir.glob("*.log"))}

    def container_pid(self) -> int | None:
        """The pid of the container's ``serve`` process (host mode)."""
        assert self.stack is not None
        return self.stack._live_pid("container")

    def _wait_for_gateway(self, wait_s: float = 60.0) -> None:
        """Until a keyed GET /health answers 200 (the first Lambda environment is warm)."""
        deadline = time.monotonic() + wait_s
        last: object = None
        while time.monotonic() < deadline:
            try:
                response = requests.get(self.health_url, headers={"x-api-key": self.api_key}, timeout=30)
                if response.status_code == 200:
                    return
                last = response.status_code
            except requests.RequestException as exc:
                last = type(exc).__name__
            time.sleep(0.2)
        raise RuntimeError(
            f"the local gateway's /health did not answer 200 within {wait_s:g} s (last: {last})"
        )


def ensure_model(model_dir: Path | None, tmp: Path) -> tuple[Path, str]:
    """The given artifact, else the released ``model/model.tar.gz``, else a quick-trained one; and which."""
    if model_dir is not None:
        return model_dir, str(model_dir)
    released = REPO_ROOT / "model" / "model.tar.gz"
    if released.is_file():
        from pipeline.artifact import safe_extract

        return safe_extract(released, tmp / "released-model"), "model/model.tar.gz"
    from pipeline.data import TEST_FILE, TRAIN_FILE
    from pipeline.training import TrainingConfig, train_to_directory

    target = tmp / "quick-model"
    train_to_directory([TRAIN_FILE], [TEST_FILE], TrainingConfig(quick=True), target)
    return target, "quick model (train --quick): model/model.tar.gz was not there"


def machine_state() -> dict[str, object]:
    """CPU count and load average now (the numbers of a run are only as quiet as the machine)."""
    return {"cpus": os.cpu_count(), "loadavg": [round(x, 2) for x in os.getloadavg()]}
