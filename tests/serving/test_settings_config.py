"""Settings resolution and the rendered nginx configuration."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from inference.settings import SettingsError, load_settings

from .conftest import SERVE


def test_defaults_follow_the_sagemaker_contract() -> None:
    settings = load_settings({})
    assert settings.port == 8080
    assert settings.timeout_s == 60
    assert settings.model_dir == Path("/opt/ml/model")
    assert settings.max_payload_bytes == 6 * 1024 * 1024 == 6291456  # botocore's Body maximum
    assert settings.workers >= 1
    assert settings.default_accept == "application/json"


def test_timeouts_are_ordered_app_then_gunicorn_then_nginx() -> None:
    settings = load_settings({"SAGEMAKER_MODEL_SERVER_TIMEOUT": "30"})
    assert settings.request_deadline_s < settings.gunicorn_timeout_s < settings.nginx_proxy_timeout_s


def test_aliases_and_batch_payload_variable() -> None:
    settings = load_settings(
        {
            "OPT_ML": "/x",
            "MODEL_SERVER_WORKERS": "3",
            "MODEL_SERVER_TIMEOUT": "9",
            "SAGEMAKER_MAX_PAYLOAD_IN_MB": "50",
        }
    )
    assert settings.model_dir == Path("/x/model")
    assert (settings.workers, settings.timeout_s, settings.max_payload_mb) == (3, 9, 50)
    assert load_settings({"SAGEMAKER_MAX_PAYLOAD_IN_MB": "50", "MAX_PAYLOAD_MB": "7"}).max_payload_mb == 7


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"SAGEMAKER_BIND_TO_PORT": "http"}, "SAGEMAKER_BIND_TO_PORT='http' is not an integer"),
        ({"SAGEMAKER_MODEL_SERVER_WORKERS": "0"}, "outside the allowed range"),
        ({"MAX_PAYLOAD_MB": "101"}, "MAX_PAYLOAD_MB=101"),
    ],
)
def test_bad_values_name_the_variable(env: dict[str, str], needle: str) -> None:
    with pytest.raises(SettingsError, match=needle):
        load_settings(env)


def load_serve_module():
    loader = importlib.machinery.SourceFileLoader("serve_script", str(SERVE))
    spec = importlib.util.spec_from_loader("serve_script", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def test_rendered_nginx_config_is_valid_and_consistent(tmp_path: Path) -> None:
    serve = load_serve_module()
    settings = load_settings({"SERVE_RUN_DIR": str(tmp_path), "SAGEMAKER_MODEL_SERVER_TIMEOUT": "30"})
    conf = serve._render_nginx_conf(settings)
    text = conf.read_text()
    assert "{{" not in text
    assert "client_max_body_size 6291456;" in text
    assert "proxy_read_timeout 40s;" in text
    assert "server_tokens off;" in text
    assert f"unix:{tmp_path}/gunicorn.sock" in text
    result = subprocess.run(
        [serve._nginx_binary(), "-t", "-p", str(tmp_path), "-c", str(conf), "-e", "stderr"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


UNPRIVILEGED = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None, reason="needs root and setpriv")
def test_rendered_nginx_config_runs_unprivileged(monkeypatch: pytest.MonkeyPatch) -> None:
    """On a developer's machine nginx runs as an ordinary user: no user directive, no root-only paths."""
    serve = load_serve_module()
    monkeypatch.setattr(serve.os, "geteuid", lambda: 65534)
    run_dir = Path(tempfile.mkdtemp(prefix="serve-unpriv-"))
    try:
        run_dir.chmod(0o777)
        settings = load_settings({"SERVE_RUN_DIR": str(run_dir), "SERVE_LISTEN_HOST": "127.0.0.1"})
        conf = serve._render_nginx_conf(settings)
        conf.chmod(0o644)
        assert "user " not in conf.read_text().split("events", 1)[0]
        result = subprocess.run(
            [*UNPRIVILEGED, serve._nginx_binary(), "-t", "-p", str(run_dir), "-c", str(conf), "-e", "stderr"],
            # nginx opens /dev/stdout for its log: it must be a file the user may open (as a
            # developer's own terminal is), not this root-owned test pipe.
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert "syntax is ok" in result.stderr
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
