"""Large CSV requests through the real stack, against the AWS sample's stack on the same model (issue 12).

Stacks, started on loopback and loaded back to back in ``--rounds`` interleaved rounds:

* ``sample``: the frozen AWS ``scikit_bring_your_own`` predictor on our model (``bench/sample/``:
  the classic nginx/gunicorn launcher, ``pandas.read_csv`` -> ``predict`` -> ``to_csv``) with
  ``OMP_NUM_THREADS=1``, the OpenMP fix the sample lacks;
* ``before``: ``container/`` and ``pipeline/`` as they were at ``--before-ref``;
* ``after``: this checkout;
* ``after_no_tables``: this checkout with ``SERVE_TABLE_SCORING_MIN_ROWS=0`` (every call scored by
  the ONNX graph): what the compiled tree tables alone buy, and what they cost at start-up.

Loads: a 1,000-row and a 10,000-row headerless CSV request (``adult.test`` rows, ``Accept:
text/csv``) at ``--connections`` (default 2, one per core): rows/s, latency, and the 10,000-row
request's cost per row relative to the 1,000-row one. Then, for ``before`` and ``after``, worker
memory (USS from ``/proc/PID/smaps_rollup``): idle after one small request per worker, and again
after each worker has answered ~6 MB CSV requests (the largest body SageMaker accepts).

    .venv/bin/python bench/bench_batch_requests.py        # -> bench/results/batch_requests.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO_ROOT), str(REPO_ROOT / "bench")]

from bench_classic import commit_of, extract_before, median_run, wrk_script  # noqa: E402
from bench_container import smaps_rollup  # noqa: E402
from bench_engines import StackRun, bodies, cpu_per_request, ensure_model, wrk  # noqa: E402

RESULTS = REPO_ROOT / "bench" / "results" / "batch_requests.json"
SAMPLE_SERVE = REPO_ROOT / "bench" / "sample" / "serve.py"
BEFORE_REF = "57bbd84"  # main when the batch fast path was taken up
LARGE_BODY_BYTES = 6_200_000  # under SageMaker's 6 MiB (6,291,456 bytes) with room for headers


def write_bodies(tmp: Path) -> dict[str, tuple[Path, int]]:
    """1,000- and 10,000-row CSV bodies, and a ~6 MB one (rows repeated); name -> (path, rows)."""
    ten_k = bodies(tmp)["csv"]
    lines = ten_k.read_bytes().splitlines(keepends=True)
    one_k = tmp / "rows1k.csv"
    one_k.write_bytes(b"".join(lines[:1000]))
    large_lines: list[bytes] = []
    size = 0
    while size + len(lines[len(large_lines) % len(lines)]) <= LARGE_BODY_BYTES:
        line = lines[len(large_lines) % len(lines)]
        large_lines.append(line)
        size += len(line)
    large = tmp / "rows-6mb.csv"
    large.write_bytes(b"".join(large_lines))
    return {"csv_1000": (one_k, 1000), "csv_10000": (ten_k, len(lines)), "csv_6mb": (large, len(large_lines))}


def check(run: StackRun, body: Path, rows: int) -> None:
    """The stack must answer the body with one CSV line per row before it is measured."""
    answer = requests.post(
        f"{run.url}/invocations",
        data=body.read_bytes(),
        headers={"Content-Type": "text/csv", "Accept": "text/csv"},
        timeout=120,
    )
    lines = answer.content.count(b"\n")
    if answer.status_code != 200 or lines != rows:
        raise RuntimeError(
            f"{run.url}: {answer.status_code}, {lines} lines for {rows} rows: {answer.text[:300]}"
        )


def worker_memory(run: StackRun, large: Path) -> dict[str, Any]:
    """Worker USS idle, then after ~6 MB requests (two per worker, so each worker takes one or more)."""
    for _ in range(run.workers * 2):  # warm every worker with one small request
        requests.post(
            f"{run.url}/invocations",
            data=large.read_bytes()[:200].rsplit(b"\n", 1)[0] + b"\n",
            headers={"Content-Type": "text/csv"},
            timeout=30,
        )
    idle = {pid: smaps_rollup(pid)["uss_mib"] for pid in run.gunicorn_workers()}
    for _ in range(run.workers * 2):
        requests.post(
            f"{run.url}/invocations",
            data=large.read_bytes(),
            headers={"Content-Type": "text/csv", "Accept": "text/csv"},
            timeout=120,
        )
    time.sleep(0.5)
    after = {pid: smaps_rollup(pid)["uss_mib"] for pid in run.gunicorn_workers()}
    grown = {str(pid): round(after[pid] - idle[pid], 1) for pid in idle if pid in after}
    return {
        "idle_uss_mib": {str(k): v for k, v in idle.items()},
        "after_6mb_uss_mib": {str(k): v for k, v in after.items()},
        "growth_mib": grown,
        "max_growth_mib": max(grown.values()) if grown else None,
    }


def measure(stacks: dict[str, tuple[Path, dict[str, str]]], model_dir: Path, tmp: Path, args) -> dict:
    body = write_bodies(tmp)
    script = wrk_script(tmp)
    os.environ["BENCH_ACCEPT"] = "text/csv"
    results: dict[str, dict[str, Any]] = {}
    raw: dict[tuple[str, str], list[dict]] = {}
    with contextlib.ExitStack() as exit_stack:
        runs: dict[str, StackRun] = {}
        for name, (serve, env) in stacks.items():
            run = StackRun(serve, model_dir, tmp / f"logs-{name}", workers=args.workers, env=env)
            exit_stack.enter_context(run)
            for kind in ("csv_1000", "csv_10000"):
                check(run, *body[kind])
            runs[name] = run
            results[name] = {"env": env, "serve": str(serve), "cold_start": run.cold_start}
        for run in runs.values():  # warm-up
            wrk(f"{run.url}/invocations", body["csv_1000"][0], "text/csv", args.connections, 2.0, script)
        for round_index in range(args.rounds):
            for kind in ("csv_1000", "csv_10000"):
                print(f"round {round_index + 1}/{args.rounds}: {kind} c={args.connections}", flush=True)
                for name, run in runs.items():
                    path, rows = body[kind]
                    result = cpu_per_request(
                        run,
                        lambda run=run, path=path: wrk(
                            f"{run.url}/invocations",
                            path,
                            "text/csv",
                            args.connections,
                            args.duration,
                            script,
                        ),
                    )
                    cpu = result["cpu_us_per_request"]
                    cpu["server"] = round(cpu["nginx_workers"] + cpu["gunicorn_workers"], 1)
                    result["rows_per_request"] = rows
                    raw.setdefault((name, kind), []).append(result)
        for name, run in runs.items():
            if name != "sample":
                results[name]["memory"] = worker_memory(run, body["csv_6mb"][0])
    for name in stacks:
        loads = {}
        for kind in ("csv_1000", "csv_10000"):
            chosen = median_run(raw[(name, kind)])
            rows = chosen["rows_per_request"]
            chosen["rows_per_s"] = round(chosen["rps"] * rows)
            chosen["rows_per_s_each_round"] = [round(r["rps"] * rows) for r in raw[(name, kind)]]
            server = (
                chosen["cpu_us_per_request"]["nginx_workers"]
                + chosen["cpu_us_per_request"]["gunicorn_workers"]
            )
            chosen["server_cpu_us_per_row"] = round(server / rows, 3)
            loads[kind] = chosen
        loads["per_row_10000_vs_1000"] = round(
            loads["csv_1000"]["rows_per_s"] / loads["csv_10000"]["rows_per_s"], 3
        )  # > 1: the 10,000-row request is slower per row
        results[name]["loads"] = loads
    return results


def table(results: dict[str, dict]) -> str:
    sample = results.get("sample", {}).get("loads")
    lines = [
        "| stack | 1k-row rows/s (x sample) | 10k-row rows/s (x sample) | 10k p50 / p99 ms "
        "| server CPU µs/row (10k) | 10k vs 1k time per row | worker USS growth after 6 MB, MiB "
        "| cold start s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, stack in results.items():
        loads = stack["loads"]
        cells = []
        for kind in ("csv_1000", "csv_10000"):
            share = f" ({loads[kind]['rows_per_s'] / sample[kind]['rows_per_s']:.1f})" if sample else ""
            cells.append(f"{loads[kind]['rows_per_s']:,}{share}")
        ten = loads["csv_10000"]
        memory = stack.get("memory", {}).get("max_growth_mib", "")
        cold = stack["cold_start"].get("all_workers_ready_s", "")
        lines.append(
            f"| {name} | {' | '.join(cells)} | {ten['p50_ms']:.1f} / {ten['p99_ms']:.1f} "
            f"| {ten['server_cpu_us_per_row']:.2f} | {loads['per_row_10000_vs_1000']:.2f} | {memory} "
            f"| {cold} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-dir", type=Path, help="artifact directory (default: the released model)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per wrk run (default 10)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--connections", type=int, default=2, help="wrk connections (default 2)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2, help="gunicorn workers")
    parser.add_argument("--before-ref", default=BEFORE_REF, help="git ref of the 'before' stack")
    parser.add_argument("--no-before", action="store_true", help="skip the 'before' stack")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-batch-requests-") as name:
        tmp = Path(name)
        model_dir = ensure_model(args.model_dir, tmp)
        sample_env = {"OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO_ROOT)}
        stacks: dict[str, tuple[Path, dict[str, str]]] = {"sample": (SAMPLE_SERVE, sample_env)}
        if not args.no_before:
            stacks["before"] = (extract_before(args.before_ref, tmp), {})
        stacks["after"] = (REPO_ROOT / "container" / "serve", {})
        stacks["after_no_tables"] = (REPO_ROOT / "container" / "serve", {"SERVE_TABLE_SCORING_MIN_ROWS": "0"})
        results = measure(stacks, model_dir, tmp, args)
    report = {
        "created_utc": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": "python bench/bench_batch_requests.py "
        + " ".join(argv if argv is not None else sys.argv[1:]),
        "after_commit": commit_of("container", "pipeline"),
        "before_ref": None if args.no_before else args.before_ref,
        "machine": {"cpus": os.cpu_count(), "note": "shared machine: wrk on the same cores; see load_avg_*"},
        "duration_s_per_run": args.duration,
        "rounds": args.rounds,
        "connections": args.connections,
        "workers": args.workers,
        "stacks": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(table(results))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
