"""What the gunicorn master does at start-up, kept short: no Flask, no ``onnx``, no pauses.

Cold start (``serve`` -> ``/ping`` 200 with every worker up) is measured by
``bench/bench_classic.py``; these tests pin the properties it depends on, so a change that brings a
slow import or step back fails here, not only in a benchmark nobody reran.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from http import HTTPStatus
from pathlib import Path

import pytest
from inference import errors
from inference.gunicorn_master import PreloadedArbiter
from inference.invocations_wsgi import _STATUS_LINES
from werkzeug.http import HTTP_STATUS_CODES

REPO_ROOT = Path(__file__).resolve().parents[2]
CONTAINER = REPO_ROOT / "container"

_MASTER_SCRIPT = """
import io, json, sys
import wsgi

loaded = sorted(m for m in sys.modules if m.split(".")[0] in {"flask", "werkzeug", "jinja2", "onnx"}
                or m in {"numpy.random", "numpy.ma"})
status = []
body = wsgi.app({"REQUEST_METHOD": "GET", "PATH_INFO": "/nowhere", "SERVER_NAME": "x", "SERVER_PORT": "80",
                 "wsgi.input": io.BytesIO(), "wsgi.url_scheme": "http"}, lambda s, h, *a: status.append(s))
print(json.dumps({"loaded": loaded, "tables": wsgi.app.model_state.info.get("tree_tables"),
                  "status": status[0], "body": json.loads(b"".join(body)),
                  "flask_after": "flask" in sys.modules}))
"""


def test_the_master_loads_the_model_without_flask_onnx_or_numpy_extras(released_model_dir: Path) -> None:
    """The master imports what scoring needs; Flask comes with the first request that needs it."""
    env = {
        **os.environ,
        "MODEL_DIR": str(released_model_dir),
        "PYTHONPATH": os.pathsep.join([str(CONTAINER), str(REPO_ROOT)]),
    }
    done = subprocess.run(
        [sys.executable, "-c", _MASTER_SCRIPT],
        env=env,
        cwd=CONTAINER,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["loaded"] == []
    assert "read from scoring_tables.bin" in report["tables"]
    # A request the lean path does not take: Flask is imported, and answers with the JSON 404.
    assert report["status"] == "404 NOT FOUND"
    assert report["body"]["error"]["code"] == "not_found"
    assert report["flask_after"] is True


def test_the_lean_path_writes_werkzeugs_status_lines() -> None:
    """Both paths answer byte for byte alike: every status a ServingError can carry, and 200."""
    statuses = {200} | {
        cls.status
        for cls in vars(errors).values()
        if isinstance(cls, type) and issubclass(cls, errors.ServingError)
    }
    assert {404, 413, 503} <= statuses
    for status in statuses:
        assert _STATUS_LINES[status] == f"{status} {HTTP_STATUS_CODES[status].upper()}"
    assert len(_STATUS_LINES) == len(HTTPStatus)


class _Config:
    preload_app = True


def _arbiter(workers: dict[int, object], spawned: list[int]) -> PreloadedArbiter:
    arbiter = PreloadedArbiter.__new__(PreloadedArbiter)  # no sockets, no signals: the spawn loop only
    arbiter.WORKERS = workers
    arbiter._num_workers = 3
    arbiter.cfg = _Config()
    arbiter.spawn_worker = lambda: spawned.append(len(spawned))  # type: ignore[method-assign]
    return arbiter


def test_the_first_workers_are_forked_without_gunicorns_pauses(monkeypatch: pytest.MonkeyPatch) -> None:
    pauses: list[float] = []
    monkeypatch.setattr("gunicorn.arbiter.time.sleep", pauses.append)
    spawned: list[int] = []
    _arbiter({}, spawned).spawn_workers()
    assert spawned == [0, 1, 2] and pauses == []
    # Replacing a dead worker keeps gunicorn's own pacing.
    spawned.clear()
    _arbiter({101: object()}, spawned).spawn_workers()
    assert spawned == [0, 1] and len(pauses) == 2


def test_the_ready_file_hook_reads_the_served_apps_model_state(
    released_model_dir: Path, tmp_path: Path
) -> None:
    """gunicorn's post_worker_init writes the ready file from ``worker.wsgi.model_state``."""
    from inference.invocations_wsgi import create_server
    from inference.readiness import ModelState
    from inference.settings import load_settings

    state = ModelState(engine=None, ready=False, reason="no model")
    app = create_server(load_settings({}), state)
    assert app.model_state is state
    status: list[str] = []
    body = app(
        {
            "REQUEST_METHOD": "GET",
            "PATH_INFO": "/ping",
            "SERVER_NAME": "x",
            "SERVER_PORT": "80",
            "wsgi.input": io.BytesIO(),
            "wsgi.url_scheme": "http",
        },
        lambda s, h, *a: status.append(s),
    )
    assert status == ["503 SERVICE UNAVAILABLE"]
    assert json.loads(b"".join(body))["error"]["message"] == "no model"
