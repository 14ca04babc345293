#!/usr/bin/env python3
"""Benchmark the serving stack (nginx -> gunicorn -> Flask -> engine) on loopback with wrk.

Measures, per scoring engine:
* single-record JSON ``POST /invocations``: requests/s, p50 and p99 at 1, 8 and 32 connections;
* a 1,000-row and a 10,000-row CSV request: rows/s (and latency);
* ``GET /ping`` (answered by nginx from the ready file) and ``GET /execution-parameters`` (a no-op
  through nginx, gunicorn and Flask): the ceilings a scoring request is measured against;
* in-process engine time for 1, 1,000 and 10,000 rows (the model's own floor), and the whole app
  in process for one record (Flask test client, no network);
* cold start: ``serve`` launched -> first 200 ``/ping``;
* memory per process (RSS, PSS, USS from /proc/PID/smaps_rollup) after the load.

Usage::

    .venv/bin/python bench/bench_container.py                      # released model, both engines
    .venv/bin/python bench/bench_container.py --model-dir DIR --engine sklearn --duration 10
    .venv/bin/python bench/bench_container.py --url http://127.0.0.1:8080   # an already running server

With ``--url`` only the HTTP numbers are measured (no cold start, memory or in-process figures for
a process tree this script did not start). Prints a table and writes ``bench/results/container.json``.
Numbers from a shared 2-core machine with wrk on the same cores are noisy: compare runs, not digits.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO_ROOT), str(REPO_ROOT / "container")]

from inference.settings import pin_native_threads  # noqa: E402 - path set just above

from pipeline.schema import EXAMPLE_RECORD  # noqa: E402

# The in-process measurements must use the same one-thread pools as a worker.
pin_native_threads(os.environ)

SERVE = REPO_ROOT / "container" / "serve"
RELEASED_TARBALL = REPO_ROOT / "model" / "model.tar.gz"
RESULTS = REPO_ROOT / "bench" / "results" / "container.json"

RECORD = dict(EXAMPLE_RECORD)

WRK_SCRIPT = r"""
local path = os.getenv("BENCH_BODY_FILE")
if path and path ~= "" then
  local f = assert(io.open(path, "rb"))
  wrk.method = "POST"
  wrk.body = f:read("*a")
  f:close()
  wrk.headers["Content-Type"] = os.getenv("BENCH_CONTENT_TYPE")
  wrk.headers["Accept"] = "application/json"
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("BENCH_RESULT %d %d %d %d %.1f %.1f %.1f %d %d\n",
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99), latency.mean, latency.max, summary.bytes))
end
"""


def main() -> int:
    args = parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-container-"))
    (work / "bench.lua").write_text(WRK_SCRIPT, encoding="utf-8")
    bodies = write_bodies(work)
    results: dict[str, Any] = {"meta": meta(args), "engines": {}}
    if args.url:
        results["engines"]["target"] = {"http": http_suite(args, args.url.rstrip("/"), work, bodies)}
    else:
        model_dir = resolve_model_dir(args, work)
        results["meta"]["model_dir"] = str(model_dir)
        results["meta"]["model_engine_in_manifest"] = json.loads((model_dir / "manifest.json").read_text())[
            "engine"
        ]
        engines = ["sklearn", "onnx"] if args.engine == "both" else [args.engine]
        for engine in engines:
            print(f"== engine {engine}", flush=True)
            results["engines"][engine] = run_engine(args, engine, model_dir, work, bodies)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print_table(results)
    print(f"\nwrote {RESULTS.relative_to(REPO_ROOT)}")
    return 0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="benchmark an already running server instead of starting one")
    parser.add_argument("--model-dir", type=Path, help="model directory (default: the released model)")
    parser.add_argument("--engine", choices=["auto", "sklearn", "onnx", "both"], default="both")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--connections", default="1,8,32", help="single-record concurrency levels")
    parser.add_argument("--cold-starts", type=int, default=3, help="cold-start repetitions")
    return parser.parse_args()


def meta(args: argparse.Namespace) -> dict[str, Any]:
    wrk = subprocess.run(["wrk", "--version"], capture_output=True, text=True, check=False)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO_ROOT
    )
    return {
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "git_commit": commit.stdout.strip() or None,
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "wrk": (wrk.stdout or wrk.stderr).splitlines()[0] if (wrk.stdout or wrk.stderr) else None,
        "wrk_seconds_per_run": args.duration,
        "workers": args.workers,
        "note": "loopback, wrk on the same cores as the server, shared machine: noisy",
    }


def resolve_model_dir(args: argparse.Namespace, work: Path) -> Path:
    if args.model_dir:
        return args.model_dir
    if not RELEASED_TARBALL.is_file():
        sys.exit(f"{RELEASED_TARBALL} is missing: run `make train`, or pass --model-dir")
    from pipeline.artifact import safe_extract

    return safe_extract(RELEASED_TARBALL, work / "model")


def write_bodies(work: Path) -> dict[str, tuple[Path, str, int]]:
    """name -> (file, content type, records)."""
    row = ",".join(str(RECORD[k]) for k in RECORD)
    bodies = {
        "json_1": (json.dumps(RECORD).encode(), "application/json", 1),
        "csv_1000": (("\n".join([row] * 1000) + "\n").encode(), "text/csv", 1000),
        "csv_10000": (("\n".join([row] * 10_000) + "\n").encode(), "text/csv", 10_000),
    }
    out = {}
    for name, (data, content_type, records) in bodies.items():
        path = work / f"{name}.body"
        path.write_bytes(data)
        out[name] = (path, content_type, records)
    return out


def run_engine(args, engine: str, model_dir: Path, work: Path, bodies) -> dict[str, Any]:
    result: dict[str, Any] = {"cold_start_s": [], "in_process": in_process(model_dir, engine)}
    for _ in range(args.cold_starts):
        proc, url, seconds = start_serve(model_dir, engine, args.workers, work)
        result["cold_start_s"].append(round(seconds, 3))
        stop_serve(proc)
    proc, url, _ = start_serve(model_dir, engine, args.workers, work)
    try:
        result["http"] = http_suite(args, url, work, bodies)
        result["memory"] = memory(proc.pid)
    finally:
        stop_serve(proc)
    return result


def http_suite(args, url: str, work: Path, bodies) -> dict[str, Any]:
    levels = [int(c) for c in args.connections.split(",")]
    http: dict[str, Any] = {"single_json": {}}
    check_body(url, bodies["json_1"])
    for connections in levels:
        http["single_json"][str(connections)] = wrk(
            url + "/invocations", connections, args, work, bodies["json_1"]
        )
    http["ping"] = wrk(url + "/ping", 8, args, work, None)
    # /ping is answered by nginx from the ready file; the no-op through gunicorn and Flask is this GET.
    http["noop_app"] = wrk(url + "/execution-parameters", 8, args, work, None)
    for name in ("csv_1000", "csv_10000"):
        check_body(url, bodies[name])
        stats = wrk(url + "/invocations", max(1, args.workers), args, work, bodies[name])
        stats["rows_per_s"] = round(stats["requests_per_s"] * bodies[name][2], 1)
        http[name] = stats
    return http


def check_body(url: str, body) -> None:
    """One request first, so a broken setup fails loudly instead of benchmarking error pages."""
    path, content_type, records = body
    request = urllib.request.Request(
        url + "/invocations", data=path.read_bytes(), headers={"Content-Type": content_type}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        predictions = json.loads(response.read())["predictions"]
    if len(predictions) != records:
        raise SystemExit(f"expected {records} predictions, got {len(predictions)}")


def wrk(url: str, connections: int, args, work: Path, body) -> dict[str, Any]:
    env = dict(os.environ)
    env["BENCH_BODY_FILE"] = str(body[0]) if body else ""
    env["BENCH_CONTENT_TYPE"] = body[1] if body else ""
    threads = max(1, min(connections, 2))
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{args.duration}s", "--timeout", "30s"]
    command += ["-s", str(work / "bench.lua"), url]
    out = subprocess.run(command, capture_output=True, text=True, env=env, check=True).stdout
    line = next(line for line in out.splitlines() if line.startswith("BENCH_RESULT"))
    requests, duration_us, status_errors, socket_errors, p50, p99, mean, maximum, _ = (
        float(x) for x in line.split()[1:]
    )
    return {
        "connections": connections,
        "requests": int(requests),
        "requests_per_s": round(requests / (duration_us / 1e6), 1),
        "p50_ms": round(p50 / 1000, 3),
        "p99_ms": round(p99 / 1000, 3),
        "mean_ms": round(mean / 1000, 3),
        "max_ms": round(maximum / 1000, 3),
        "non_2xx": int(status_errors),
        "socket_errors": int(socket_errors),
    }


def in_process(model_dir: Path, engine_name: str) -> dict[str, Any]:
    from inference.app import create_app
    from inference.engine import load_engine
    from inference.readiness import ModelState
    from inference.settings import load_settings

    engine = load_engine(model_dir, engine_name)
    out: dict[str, Any] = {"engine": engine.name}
    for rows in (1, 1000, 10_000):
        columns = {k: [v] * rows for k, v in RECORD.items()}
        repeat = {1: 300, 1000: 30, 10_000: 5}[rows]
        out[f"predict_{rows}_ms"] = round(median_time(lambda c=columns: engine.predict_proba(c), repeat), 4)
    app = create_app(load_settings({}), ModelState(engine=engine, ready=True)).test_client()
    body = json.dumps(RECORD).encode()
    with redirect_stdout_fd():
        out["app_single_json_ms"] = round(
            median_time(lambda: app.post("/invocations", data=body, content_type="application/json"), 300), 4
        )
    return out


class redirect_stdout_fd:
    """Silence the request log lines (written straight to fd 1) during in-process timing."""

    def __enter__(self) -> None:
        sys.stdout.flush()
        self.saved = os.dup(1)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.close(devnull)

    def __exit__(self, *exc: object) -> None:
        os.dup2(self.saved, 1)
        os.close(self.saved)


def median_time(fn, repeat: int) -> float:
    fn()  # warm up
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def start_serve(model_dir: Path, engine: str, workers: int, work: Path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {
        **os.environ,
        "MODEL_DIR": str(model_dir),
        "SAGEMAKER_BIND_TO_PORT": str(port),
        "SERVE_LISTEN_HOST": "127.0.0.1",
        "SAGEMAKER_MODEL_SERVER_WORKERS": str(workers),
        "MODEL_SERVER_ENGINE": engine,
    }
    log = open(work / f"serve-{port}.log", "ab")  # noqa: SIM115 - lives as long as the server
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, str(SERVE)], env=env, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    while time.monotonic() - started < 120:
        if proc.poll() is not None:
            raise SystemExit(f"serve exited with {proc.returncode}; see {log.name}")
        try:
            with urllib.request.urlopen(url + "/ping", timeout=2) as response:
                if response.status == 200:
                    return proc, url, time.monotonic() - started
        except (urllib.error.URLError, ConnectionError):
            pass
        time.sleep(0.02)
    stop_serve(proc)
    raise SystemExit("serve did not become healthy within 120 s")


def stop_serve(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=40)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def memory(serve_pid: int) -> dict[str, Any]:
    """RSS/PSS/USS (MiB) of every process in the tree, by role."""
    out = []
    for pid in [serve_pid, *descendants(serve_pid)]:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        rollup = smaps_rollup(pid)
        if not rollup:
            continue
        parent = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        role = (
            "serve"
            if pid == serve_pid
            else "nginx"
            if "nginx" in cmd
            else "gunicorn master"
            if parent == serve_pid
            else "gunicorn worker"
        )
        out.append({"pid": pid, "role": role, **rollup})
    return {"processes": out}


def smaps_rollup(pid: int) -> dict[str, float] | None:
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return None
    kb = {}
    for line in text.splitlines()[1:]:
        name, _, rest = line.partition(":")
        kb[name.strip()] = int(rest.split()[0])
    uss = kb.get("Private_Clean", 0) + kb.get("Private_Dirty", 0)
    return {"rss_mib": mib(kb["Rss"]), "pss_mib": mib(kb["Pss"]), "uss_mib": mib(uss)}


def mib(kib: int) -> float:
    return round(kib / 1024, 1)


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            children.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(entry))
    found, stack = [], [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def print_table(results: dict[str, Any]) -> None:
    for engine, r in results["engines"].items():
        print(f"\n### engine: {engine}")
        http = r["http"]
        rows = [("measure", "req/s", "rows/s", "p50 ms", "p99 ms", "non-2xx")]
        for c, stats in http["single_json"].items():
            rows.append(_row(f"single JSON, {c} conn", stats))
        rows.append(_row("/ping (nginx), 8 conn", http["ping"]))
        rows.append(_row("no-op via app, 8 conn", http["noop_app"]))
        for name in ("csv_1000", "csv_10000"):
            stats = http[name]
            rows.append(_row(f"{name.split('_')[1]}-row CSV, {stats['connections']} conn", stats))
        width = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
        for row in rows:
            cells = [
                str(v).ljust(w) if i == 0 else str(v).rjust(w)
                for i, (v, w) in enumerate(zip(row, width, strict=True))
            ]
            print("  ".join(cells))
        if "in_process" in r:
            ip = r["in_process"]
            print(
                f"in-process {ip['engine']}: predict 1 row {ip['predict_1_ms']} ms, 1,000 rows "
                f"{ip['predict_1000_ms']} ms, 10,000 rows {ip['predict_10000_ms']} ms; "
                f"whole app, 1 JSON record {ip['app_single_json_ms']} ms"
            )
            print(f"cold start (serve -> first 200 /ping): {r['cold_start_s']} s")
            for proc in r["memory"]["processes"]:
                print(
                    f"  {proc['role']:<16} pid {proc['pid']:>7}: RSS {proc['rss_mib']:>6} MiB  "
                    f"PSS {proc['pss_mib']:>6} MiB  USS {proc['uss_mib']:>6} MiB"
                )


def _row(label: str, stats: dict[str, Any]) -> tuple[Any, ...]:
    rows_per_s = stats.get("rows_per_s", "")
    return (label, stats["requests_per_s"], rows_per_s, stats["p50_ms"], stats["p99_ms"], stats["non_2xx"])


if __name__ == "__main__":
    sys.exit(main())
