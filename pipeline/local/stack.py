"""Start, inspect and stop the local stack: container, InvokeEndpoint and API Gateway on loopback.

Every service is a background process in its own process group (so stopping it also stops nginx,
gunicorn or the Lambda workers under it), logging to ``run/logs/<service>.log``, with a pid file in
``run/``; ``run/stack.json`` records the URLs. ``down`` stops exactly the processes named by those pid
files (after checking each pid still runs what we started), or the Docker container by its id.

The container runs from the image with Docker when an engine answers and the image exists or can be
built; otherwise the same ``container/serve`` runs on the host (nginx + gunicorn, as in the image).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import urllib3

from pipeline.local.deployment import LocalDeployment, load_deployment
from pipeline.local.http_server import port_is_free
from pipeline.local.settings import REPO_ROOT, LocalSettings

SERVE = REPO_ROOT / "container" / "serve"
DOCKERFILE = REPO_ROOT / "container" / "Dockerfile"
STOP_GRACE_S = 35.0  # serve drains for up to 25 s (SERVE_SHUTDOWN_GRACE) before exiting
# What each service's command line contains: a pid is only signalled if it still runs that.
MARKERS = {
    "container": str(SERVE),
    "container-logs": "docker logs",
    "runtime": "pipeline.local.runtime",
    "gateway": "pipeline.local.gateway",
}


class StackError(RuntimeError):
    """The stack could not be started (the message says which service and where its log is)."""


@dataclass
class StackInfo:
    """A running stack, as recorded in ``run/stack.json``."""

    gateway_url: str
    runtime_url: str
    container_url: str
    stage: str
    endpoint_name: str
    mode: str
    model_dir: str
    logs: dict[str, str]
    docker_container: str | None = None
    pids: dict[str, int] = field(default_factory=dict)

    @property
    def predict_url(self) -> str:
        return f"{self.gateway_url}/{self.stage}/predict"

    @property
    def health_url(self) -> str:
        return f"{self.gateway_url}/{self.stage}/health"


class Stack:
    """The local stack whose state lives in ``settings.run_dir``."""

    def __init__(self, settings: LocalSettings, say: Callable[[str], None] = print) -> None:
        self.settings = settings
        self.run_dir = settings.run_dir
        self.say = say

    # --- public --------------------------------------------------------------------------------

    def up(
        self,
        model_dir: Path,
        *,
        config_path: Path | None = None,
        overrides: Mapping[str, object] | None = None,
        lambda_env: Mapping[str, str] | None = None,
        container_env: Mapping[str, str] | None = None,
        wait_s: float = 180.0,
    ) -> StackInfo:
        """Start container, runtime and gateway; returns once the container's /ping answers 200."""
        if self.running() is not None:
            raise StackError(f"a local stack is already running (see {self.state_file}); stop it first")
        deployment = load_deployment(self.settings, config_path, overrides)
        self.settings.log_dir.mkdir(parents=True, exist_ok=True)
        try:
            info = self._start_all(deployment, model_dir, config_path, overrides, lambda_env, container_env)
            self._write_state(info)
            self._wait_ready(info, wait_s)
            for name in MARKERS:
                self._record_tree(name)
        except BaseException:
            self.down(quiet=True)
            raise
        return info

    def down(self, quiet: bool = False) -> list[str]:
        """Stop every service this run directory knows about; returns what was stopped."""
        stopped: list[str] = []
        info = self._read_state()
        for name in ("gateway", "runtime", "container", "container-logs"):
            if self._stop_process(name):
                stopped.append(name)
        if info is not None and info.docker_container:
            result = subprocess.run(
                ["docker", "stop", "-t", str(int(STOP_GRACE_S)), info.docker_container],
                capture_output=True,
                text=True,
                check=False,
            )
            if result.returncode == 0:
                stopped.append(f"docker container {info.docker_container[:12]}")
        with contextlib.suppress(FileNotFoundError):
            self.state_file.unlink()
        if not quiet:
            self.say("stopped: " + ", ".join(stopped) if stopped else "nothing was running")
        return stopped

    def running(self) -> StackInfo | None:
        """The recorded stack if any of its services still runs, else None."""
        info = self._read_state()
        if info is None:
            return None
        alive = [name for name in MARKERS if self._live_pid(name) is not None]
        return info if alive or (info.docker_container and _docker_running(info.docker_container)) else None

    def status(self) -> dict[str, object]:
        """What runs, where, and whether the container answers /ping."""
        info = self._read_state()
        services = {name: self._live_pid(name) for name in ("container", "runtime", "gateway")}
        report: dict[str, object] = {"run_dir": str(self.run_dir), "processes": services}
        if info is None:
            report["stack"] = None
            return report
        report["stack"] = asdict(info)
        report["container_ping"] = _ping(info.container_url)
        if info.docker_container:
            report["docker_running"] = _docker_running(info.docker_container)
        return report

    @property
    def state_file(self) -> Path:
        return self.run_dir / "stack.json"

    # --- starting ------------------------------------------------------------------------------

    def _start_all(
        self,
        deployment: LocalDeployment,
        model_dir: Path,
        config_path: Path | None,
        overrides: Mapping[str, object] | None,
        lambda_env: Mapping[str, str] | None,
        container_env: Mapping[str, str] | None,
    ) -> StackInfo:
        logs = {
            name: str(self.settings.log_dir / f"{name}.log") for name in ("container", "runtime", "gateway")
        }
        mode = self._container_mode()
        container_port = _choose_port(self.settings.container_port)
        container_url = f"http://127.0.0.1:{container_port}"
        docker_id = None
        if mode == "docker":
            docker_id = self._start_docker(model_dir, container_port, container_env)
        else:
            self._start_host_container(model_dir, container_port, container_env)

        runtime_port = self._start_service(
            "runtime",
            [
                "-m", "pipeline.local.runtime",
                "--endpoint", f"{deployment.endpoint_name}={container_url}",
                "--region", deployment.region,
                "--log-hint", logs["container"],
                *self._capture_args(deployment),
            ],
            self.settings.runtime_port,
        )  # fmt: skip
        runtime_url = f"http://127.0.0.1:{runtime_port}"
        gateway_args = ["-m", "pipeline.local.gateway", "--runtime-url", runtime_url]
        if config_path is not None:
            gateway_args += ["--config", str(config_path)]
        for key, value in (overrides or {}).items():
            gateway_args += ["--set", f"{key}={value}"]
        for key, value in (lambda_env or {}).items():
            gateway_args += ["--lambda-env", f"{key}={value}"]
        gateway_port = self._start_service("gateway", gateway_args, self.settings.gateway_port)
        return StackInfo(
            gateway_url=f"http://127.0.0.1:{gateway_port}",
            runtime_url=runtime_url,
            container_url=container_url,
            stage=deployment.stage,
            endpoint_name=deployment.endpoint_name,
            mode=mode,
            model_dir=str(model_dir),
            logs=logs,
            docker_container=docker_id,
            pids={name: pid for name in MARKERS if (pid := self._live_pid(name)) is not None},
        )

    def _capture_args(self, deployment: LocalDeployment) -> list[str]:
        """The runtime's data capture flags, from the ``[monitoring]`` section (none when it is off)."""
        monitoring = deployment.config.monitoring
        if not monitoring.data_capture:
            return []
        self.say(f"data capture: {monitoring.capture_sampling_percentage}% to {self.settings.capture_dir}")
        return [
            "--capture-dir", str(self.settings.capture_dir),
            "--capture-sampling", str(monitoring.capture_sampling_percentage),
            "--capture-csv-types", ",".join(monitoring.csv_content_types),
            "--capture-json-types", ",".join(monitoring.json_content_types),
        ]  # fmt: skip

    def _container_mode(self) -> str:
        wanted = self.settings.container_mode
        if wanted == "host":
            return "host"
        if not _docker_engine_up():
            if wanted == "docker":
                raise StackError("LOCAL_CONTAINER_MODE=docker but no Docker engine answers `docker info`")
            self.say("container: no Docker engine answers; running container/serve on the host")
            return "host"
        if _docker_image_exists(self.settings.image):
            return "docker"
        self.say(
            f"container: building image {self.settings.image} (log: {self.settings.log_dir}/docker-build.log)"
        )
        with open(self.settings.log_dir / "docker-build.log", "wb") as log:
            built = subprocess.run(
                ["docker", "build", "-f", str(DOCKERFILE), "-t", self.settings.image, "."],
                cwd=REPO_ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                check=False,
            )
        if built.returncode == 0:
            return "docker"
        if wanted == "docker":
            raise StackError(f"docker build failed; see {self.settings.log_dir}/docker-build.log")
        self.say("container: the image did not build (see the log); running container/serve on the host")
        return "host"

    def _start_host_container(self, model_dir: Path, port: int, extra_env: Mapping[str, str] | None) -> None:
        # Like a container, serve sees only its own configuration, not the caller's environment
        # (no AWS profile or credentials, no local-cloud settings).
        inherited = {
            k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "HOME", "TMPDIR", "TZ")
        }
        env = {
            **inherited,
            "MODEL_DIR": str(model_dir),
            "SAGEMAKER_BIND_TO_PORT": str(port),
            "SERVE_LISTEN_HOST": "127.0.0.1",
            **(extra_env or {}),
        }
        self._spawn("container", [sys.executable, str(SERVE)], env)
        self.say(f"container: container/serve on the host, http://127.0.0.1:{port}")

    def _start_docker(self, model_dir: Path, port: int, extra_env: Mapping[str, str] | None) -> str:
        args = ["docker", "run", "-d", "--rm", "--name", f"adult-income-local-{port}"]
        args += ["-p", f"127.0.0.1:{port}:8080", "-v", f"{model_dir.resolve()}:/opt/ml/model:ro"]
        for key, value in (extra_env or {}).items():
            args += ["-e", f"{key}={value}"]
        result = subprocess.run(
            [*args, self.settings.image, "serve"], capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            raise StackError(f"docker run failed: {result.stderr.strip()}")
        container_id = result.stdout.strip()
        # Follow the container's output into the same log file the host mode writes.
        self._spawn(
            "container-logs", ["docker", "logs", "-f", container_id], dict(os.environ), log_name="container"
        )
        self.say(
            f"container: Docker image {self.settings.image} ({container_id[:12]}), http://127.0.0.1:{port}"
        )
        return container_id

    def _start_service(self, name: str, args: Sequence[str], preferred_port: int) -> int:
        """Start a local service; returns the port it bound (read from its port file)."""
        port_file = self.run_dir / f"{name}.port"
        with contextlib.suppress(FileNotFoundError):
            port_file.unlink()
        port = preferred_port if preferred_port and port_is_free(preferred_port) else 0
        if preferred_port and not port:
            self.say(f"{name}: port {preferred_port} is taken; using a free port instead")
        env = {**os.environ, **self.settings.as_env()}
        proc_pid = self._spawn(
            name, [sys.executable, *args, "--port", str(port), "--port-file", str(port_file)], env
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if port_file.is_file() and (text := port_file.read_text().strip()):
                return int(text)
            if not _alive(proc_pid):
                break
            time.sleep(0.05)
        raise StackError(
            f"{name} did not start; see {self.settings.log_dir / (name + '.log')}:\n{self._tail(name)}"
        )

    def _spawn(
        self, name: str, argv: Sequence[str], env: Mapping[str, str], log_name: str | None = None
    ) -> int:
        log_path = self.settings.log_dir / f"{log_name or name}.log"
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=dict(env),
                cwd=REPO_ROOT,
                start_new_session=True,  # its own process group: stopping it stops its children
            )
        (self.run_dir / f"{name}.pid").write_text(f"{proc.pid}\n")
        return proc.pid

    def _wait_ready(self, info: StackInfo, wait_s: float) -> None:
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if _ping(info.container_url) == 200:
                return
            if info.docker_container is None and self._live_pid("container") is None:
                raise StackError(
                    f"the container exited; see {info.logs['container']}:\n{self._tail('container')}"
                )
            if info.docker_container and not _docker_running(info.docker_container):
                raise StackError(
                    f"the container exited; see {info.logs['container']}:\n{self._tail('container')}"
                )
            time.sleep(0.2)
        raise StackError(
            f"the container's /ping did not answer 200 within {wait_s:g} s; see {info.logs['container']}:\n"
            f"{self._tail('container')}"
        )

    # --- stopping ------------------------------------------------------------------------------

    def _live_pid(self, name: str) -> int | None:
        """The pid in ``run/<name>.pid`` if that process is alive and still runs our command."""
        pid_file = self.run_dir / f"{name}.pid"
        try:
            pid = int(pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        if not _alive(pid) or MARKERS[name] not in _cmdline(pid):
            return None
        return pid

    def _stop_process(self, name: str) -> bool:
        pid = self._live_pid(name)
        pid_file = self.run_dir / f"{name}.pid"
        tree_file = self.run_dir / f"{name}.tree"
        # Every process that belonged to the service: recorded when it became ready, plus what runs
        # under it now. Children in their own process groups (serve's nginx and gunicorn) or orphaned
        # by a crash are not reached by a group signal, so they are stopped one by one below.
        members = self._recorded_tree(name)
        if pid is not None:
            members.update({child: _cmdline(child) for child in _descendants(pid)})
            # SIGTERM to the leader only: it shuts its children down in its own order (serve drains
            # nginx before gunicorn); what is left afterwards gets SIGKILL.
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + STOP_GRACE_S
            while time.monotonic() < deadline and _alive(pid):
                time.sleep(0.1)
            _signal_group(pid, signal.SIGKILL)
            _reap(pid)
        for member, cmdline in members.items():
            if cmdline and _cmdline(member) == cmdline:  # still the same program, not a reused pid
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(member, signal.SIGKILL)
        for path in (pid_file, tree_file, self.run_dir / f"{name}.port"):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        return pid is not None

    def _record_tree(self, name: str) -> None:
        pid = self._live_pid(name)
        if pid is None:
            return
        tree = {str(child): _cmdline(child) for child in _descendants(pid)}
        (self.run_dir / f"{name}.tree").write_text(json.dumps(tree) + "\n")

    def _recorded_tree(self, name: str) -> dict[int, str]:
        try:
            recorded = json.loads((self.run_dir / f"{name}.tree").read_text())
        except (FileNotFoundError, ValueError):
            return {}
        return {int(pid): str(cmdline) for pid, cmdline in recorded.items()}

    # --- state ---------------------------------------------------------------------------------

    def _write_state(self, info: StackInfo) -> None:
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(info), indent=2) + "\n")
        tmp.replace(self.state_file)

    def _read_state(self) -> StackInfo | None:
        try:
            return StackInfo(**json.loads(self.state_file.read_text()))
        except (FileNotFoundError, ValueError, TypeError):
            return None

    def _tail(self, name: str, lines: int = 20) -> str:
        try:
            text = (self.settings.log_dir / f"{name}.log").read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


# --- process and Docker helpers ----------------------------------------------------------------


def _choose_port(preferred: int) -> int:
    if preferred and port_is_free(preferred):
        return preferred
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _alive(pid: int) -> bool:
    _reap(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _reap(pid: int) -> None:
    """Collect ``pid`` if it is our exited child (otherwise it stays a zombie that looks alive)."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _descendants(pid: int) -> list[int]:
    """Live descendants of ``pid`` (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8") as fh:
                parent = int(fh.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(parent, []).append(int(entry))
    found: list[int] = []
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _signal_group(pid: int, signum: int) -> None:
    # Each service was started as a session leader, so its pid is its process group id.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signum)


def _ping(url: str) -> int | None:
    try:
        response = urllib3.request("GET", f"{url}/ping", timeout=2.0, retries=False)
    except urllib3.exceptions.HTTPError:
        return None
    return response.status


def _docker_engine_up() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        result = subprocess.run(["docker", "info"], capture_output=True, timeout=10, check=False)
    except subprocess.TimeoutExpired:
        return False
    return result.returncode == 0


def _docker_image_exists(image: str) -> bool:
    result = subprocess.run(["docker", "image", "inspect", image], capture_output=True, check=False)
    return result.returncode == 0


def _docker_running(container_id: str) -> bool:
    result = subprocess.run(
        ["docker", "inspect", "-f", "{{.State.Running}}", container_id],
        capture_output=True,
        text=True,
        check=False,
    )
    return result.returncode == 0 and result.stdout.strip() == "true"
