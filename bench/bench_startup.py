"""Where a cold start goes: ``serve`` started again and again, its log lines timed (issue 14).

For each stack (``before``: ``container/`` and ``pipeline/`` at ``--before-ref``; ``after``: this
checkout), ``--starts`` starts, interleaved, after byte-compiling both as the image does. Each start
records, in seconds after ``serve`` was started: the gunicorn master's ``model_ready`` line (and the
``load_seconds`` it reports: checksums, ONNX session, tree tables, self-check), the first
``Booting worker`` line, and the first ``/ping`` answered 200 (polled every 5 ms). From those:

* ``before_load_s``: interpreter start-up and imports (serve's and the master's) up to the load;
* ``load_s``: the model load itself (the master's own figure);
* ``fork_to_ready_s``: ``model_ready`` to ``/ping`` 200 (fork, worker start, ready file, nginx).

Medians per stack go to ``bench/results/startup.json``; every start is in the file.

    .venv/bin/python bench/bench_startup.py --before-ref 890f7c0
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO_ROOT), str(REPO_ROOT / "bench")]

from bench_classic import byte_compile, commit_of, extract_before  # noqa: E402
from bench_engines import ensure_model  # noqa: E402
from live import free_port  # noqa: E402

RESULTS = REPO_ROOT / "bench" / "results" / "startup.json"
PHASES = ("before_load_s", "load_s", "fork_to_ready_s", "first_ping_200_s")


def one_start(serve: Path, model_dir: Path, workers: int) -> dict[str, float]:
    """Start ``serve``, time its log lines and the first ``/ping`` 200, stop it."""
    port = free_port()
    env = {
        **os.environ,
        "MODEL_DIR": str(model_dir),
        "SAGEMAKER_BIND_TO_PORT": str(port),
        "SERVE_LISTEN_HOST": "127.0.0.1",
        "SAGEMAKER_MODEL_SERVER_WORKERS": str(workers),
    }
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, str(serve)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=REPO_ROOT
    )
    marks: dict[str, float] = {}

    def read() -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            now = time.perf_counter() - started
            line = raw.decode(errors="replace")
            if '"event":"model_ready"' in line:
                marks.setdefault("model_ready_s", now)
                marks.setdefault("load_s", float(json.loads(line)["load_seconds"]))
            elif "Booting worker" in line:
                marks.setdefault("first_worker_s", now)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        while time.perf_counter() - started < 60:
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2) as answer,
            ):
                if answer.status == 200:
                    marks["first_ping_200_s"] = time.perf_counter() - started
                    break
            time.sleep(0.005)
        time.sleep(0.2)  # the log lines of the fork arrive
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        reader.join(5)
    if "first_ping_200_s" not in marks or "model_ready_s" not in marks:
        raise RuntimeError(f"{serve}: no ready server within 60 s ({marks})")
    marks["before_load_s"] = marks["model_ready_s"] - marks["load_s"]
    marks["fork_to_ready_s"] = marks["first_ping_200_s"] - marks["model_ready_s"]
    return {key: round(value, 4) for key, value in marks.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-dir", type=Path, help="artifact directory (default: the released model)")
    parser.add_argument("--starts", type=int, default=9, help="starts per stack (default 9)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--before-ref", required=True, help="git ref of the 'before' container")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as name:
        tmp = Path(name)
        model_dir = ensure_model(args.model_dir, tmp)
        stacks = {"before": extract_before(args.before_ref, tmp), "after": REPO_ROOT / "container" / "serve"}
        byte_compile({stack: (serve, {}) for stack, serve in stacks.items()})
        starts: dict[str, list[dict[str, float]]] = {stack: [] for stack in stacks}
        for index in range(args.starts):
            print(f"start {index + 1}/{args.starts}", flush=True)
            for stack, serve in stacks.items():
                starts[stack].append(one_start(serve, model_dir, args.workers))
    medians: dict[str, Any] = {
        stack: {phase: round(statistics.median(s[phase] for s in runs), 3) for phase in PHASES}
        for stack, runs in starts.items()
    }
    report = {
        "created_utc": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": "python bench/bench_startup.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "after_commit": commit_of("container", "pipeline"),
        "before_ref": args.before_ref,
        "load_avg_end": os.getloadavg(),
        "medians": medians,
        "starts": starts,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print("| stack | " + " | ".join(PHASES) + " |")
    print("|---|" + "---|" * len(PHASES))
    for stack, row in medians.items():
        print(f"| {stack} | " + " | ".join(f"{row[phase]:.3f}" for phase in PHASES) + " |")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
