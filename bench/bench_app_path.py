"""What each issue-14 change buys inside one worker, in process (no HTTP, no nginx, no gunicorn).

For one JSON record and one CSV row, through the real app built on the released model:

* ``wsgi_lean``: the app as gunicorn calls it (``POST /invocations`` takes the lean WSGI path);
* ``wsgi_flask_route``: the same request through Flask's own WSGI callable (the route it bypasses);
* ``log_line_stdlib`` / ``log_line_now``: one request line written the old way (``json.dumps`` +
  ``datetime.isoformat``) and the current way (to ``/dev/null``);
* ``predict_proba``: the engine's call for one record (the tree tables' one-row path when they
  are on); ``predict_proba_graph``: the same record through the full graph (feed building +
  ``session.run`` + conversion), how single records were scored before; ``feed_build`` and the
  bare ``session.run`` on a prebuilt feed;
* ``worker_environ``: the lean gunicorn worker's environ for nginx's request head.

Thread CPU time per call (``time.thread_time``), ``--rounds`` interleaved rounds of ``--calls``
calls, median round. Writes ``bench/results/app_path.json``.

    .venv/bin/python bench/bench_app_path.py
"""

from __future__ import annotations

import argparse
import io
import json
import os
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO_ROOT), str(REPO_ROOT / "container"), str(REPO_ROOT / "bench")]
os.environ.setdefault("OMP_NUM_THREADS", "1")

from bench_engines import ensure_model  # noqa: E402
from live import RECORD  # noqa: E402

from pipeline.schema import SCHEMA  # noqa: E402

RESULTS = REPO_ROOT / "bench" / "results" / "app_path.json"
LOG_FIELDS = {
    "status": 200,
    "latency_ms": 0.412,
    "bytes_out": 58,
    "request_id": "0123456789abcdef0123456789abcdef",
    "method": "POST",
    "path": "/invocations",
    "bytes_in": 301,
    "queue_ms": 0.081,
    "content_type": "application/json",
    "accept": "application/json",
    "records": 1,
}


NGINX_HEAD = (
    b"POST /invocations HTTP/1.0\r\nX-Request-Id: 0123456789abcdef0123456789abcdef\r\n"
    b"X-Request-Start: t=1764820000.000\r\nHost: 127.0.0.1:8080\r\nContent-Length: 301\r\n"
    b"Content-Type: application/json\r\nAccept: application/json\r\nUser-Agent: wrk\r\n\r\n"
)
"""What nginx sends upstream for wrk's request (bench_classic's load)."""


def environ(body: bytes, content_type: str) -> dict[str, Any]:
    """A WSGI environ as gunicorn builds it for a request nginx passed on."""
    return {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/invocations",
        "SCRIPT_NAME": "",
        "QUERY_STRING": "",
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "8080",
        "SERVER_PROTOCOL": "HTTP/1.0",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "CONTENT_LENGTH": str(len(body)),
        "CONTENT_TYPE": content_type,
        "HTTP_ACCEPT": content_type,
        "HTTP_X_REQUEST_ID": "0123456789abcdef",
        "HTTP_X_REQUEST_START": f"t={time.time():.3f}",
    }


def stdlib_log_line(fields: dict[str, Any]) -> None:
    """The request line as it was written before issue 14."""
    record = {
        "ts": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "level": "info",
        "event": "request",
        "pid": os.getpid(),
        **fields,
    }
    line = json.dumps(record, default=str, separators=(",", ":"), ensure_ascii=False) + "\n"
    os.write(1, line.encode("utf-8"))


def cpu_us(fn: Callable[[], object], calls: int) -> float:
    started = time.thread_time()
    for _ in range(calls):
        fn()
    return (time.thread_time() - started) / calls * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-dir", type=Path)
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-app-") as tmp:
        model_dir = ensure_model(args.model_dir, Path(tmp))
        os.environ.update(MODEL_DIR=str(model_dir), SERVE_RUN_DIR=tmp)
        from inference.app import create_app
        from inference.lean_worker import _environ
        from inference.readiness import load_model_state
        from inference.request_log import log_event
        from inference.settings import load_settings

        from pipeline.onnx_scoring import PROBABILITY_OUTPUT, predict_positive

        state = load_model_state(model_dir)
        app = create_app(load_settings(), state)
        lean, flask_route = app.wsgi_app, app.wsgi_app._flask
        engine = state.engine
        columns = {name: [RECORD.get(name)] for name in SCHEMA.names}
        feed = engine._feeds.build(columns)
        json_body = json.dumps(RECORD).encode()
        csv_body = (",".join(str(RECORD.get(n, "")) for n in SCHEMA.names) + "\n").encode()

        def call(wsgi: Any, body: bytes, content_type: str) -> Callable[[], object]:
            return lambda: b"".join(wsgi(environ(body, content_type), lambda *a: None))

        cases: dict[str, Callable[[], object]] = {
            "wsgi_lean_json": call(lean, json_body, "application/json"),
            "wsgi_flask_route_json": call(flask_route, json_body, "application/json"),
            "wsgi_lean_csv": call(lean, csv_body, "text/csv"),
            "wsgi_flask_route_csv": call(flask_route, csv_body, "text/csv"),
            "log_line_stdlib": lambda: stdlib_log_line(LOG_FIELDS),
            "log_line_now": lambda: log_event("info", "request", **LOG_FIELDS),
            "predict_proba": lambda: engine.predict_proba(columns),
            "predict_proba_graph": lambda: predict_positive(engine._session, engine._feeds.build(columns)),
            "worker_environ": lambda: _environ(NGINX_HEAD, b"", listener, "", listener),
            "feed_build": lambda: engine._feeds.build(columns),
            "bare_session_run": lambda: engine._session.run([PROBABILITY_OUTPUT], feed),
        }
        listener = socket.socket(socket.AF_UNIX)  # the environ only asks for its name
        saved = os.dup(1)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)  # request lines go to stdout: measure writing them, not the terminal
        load_before = os.getloadavg()[0]
        try:
            for fn in cases.values():
                cpu_us(fn, 200)  # warm-up
            rounds: dict[str, list[float]] = {name: [] for name in cases}
            for _ in range(args.rounds):
                for name, fn in cases.items():
                    rounds[name].append(round(cpu_us(fn, args.calls), 2))
        finally:
            os.dup2(saved, 1)
    medians = {name: round(statistics.median(values), 1) for name, values in rounds.items()}
    report = {
        "created_utc": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": "python bench/bench_app_path.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "unit": "thread CPU microseconds per call, median of rounds",
        "load_avg_before": round(load_before, 2),
        "load_avg_after": round(os.getloadavg()[0], 2),
        "calls_per_round": args.calls,
        "median_cpu_us": medians,
        "each_round_cpu_us": rounds,
        "engine": engine.name,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(medians, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
