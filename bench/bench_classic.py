"""Single-record serving against the frozen classic no-op stack, in one interleaved run (issue 14).

Stacks, all started on loopback and loaded back to back in ``--rounds`` interleaved rounds:

* ``classic``: the frozen reference in ``bench/classic/`` (nginx, one worker, no upstream
  keepalive -> unix socket -> gunicorn sync workers, one per core -> Flask returning a constant);
* ``before``: ``container/`` as it was at ``--before-ref`` (extracted with ``git archive``);
* ``after``: ``container/`` of this checkout;
* any ``--variant NAME=ENV=VALUE[,ENV=VALUE]``: the checkout's stack with extra environment;
* any ``--variant-serve NAME=PATH``: another program directory's ``serve`` (an experiment: a copy
  of ``container/`` with one configuration changed; the file records the path).

For each stack, body (one JSON record; one headerless CSV row with ``Accept: text/csv``) and
connection count (1, 8, 32): wrk requests/s, p50/p99, and server CPU per request from ``/proc``
(nginx workers + gunicorn workers; wrk's own CPU separately). The median round is kept; every
round's figure and the load average before/after each load are in the file. Each stack's ratio
to ``classic`` is computed from the same run.

Cold start (``serve`` -> ``/ping`` 200 with every worker up) is the median of ``--cold-starts``
starts of each stack, interleaved, after the stacks' Python code is byte-compiled as the image
does (its Dockerfile runs ``compileall``): one start on a shared machine varies by ~0.1 s.

    .venv/bin/python bench/bench_classic.py                 # -> bench/results/classic.json
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO_ROOT), str(REPO_ROOT / "bench")]

import requests  # noqa: E402
from bench_engines import WRK_SCRIPT, StackRun, cpu_per_request, ensure_model, wrk  # noqa: E402
from live import RECORD  # noqa: E402

from pipeline.schema import SCHEMA  # noqa: E402

RESULTS = REPO_ROOT / "bench" / "results" / "classic.json"
CLASSIC_SERVE = REPO_ROOT / "bench" / "classic" / "serve.py"
CONNECTIONS = (1, 8, 32)
BEFORE_REF = "9c2d00e"  # main when issue 14 was taken up
BODIES = {"json": ("application/json", "application/json"), "csv": ("text/csv", "text/csv")}


def write_bodies(tmp: Path) -> dict[str, Path]:
    """One JSON record and the same record as one headerless CSV row."""
    json_body = tmp / "single.json"
    json_body.write_bytes(json.dumps(RECORD).encode())
    csv_body = tmp / "single.csv"
    csv_body.write_text(",".join(str(RECORD.get(n, "")) for n in SCHEMA.names) + "\n", encoding="utf-8")
    return {"json": json_body, "csv": csv_body}


def extract_before(ref: str, tmp: Path) -> Path:
    """``container/`` and ``pipeline/`` at ``ref`` in a directory of their own; its serve script."""
    archive = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "archive", "--format=tar", ref, "container", "pipeline"],
        capture_output=True,
        check=True,
    ).stdout
    target = tmp / "before"
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(target, filter="data")
    return target / "container" / "serve"


def commit_of(*paths: str) -> str:
    """HEAD's short hash, marked when ``paths`` have uncommitted changes (what a result was measured on)."""
    git, out = ["git", "-C", str(REPO_ROOT)], {"capture_output": True, "text": True}
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], **out).stdout.strip()
    dirty = subprocess.run([*git, "status", "--porcelain", *paths], **out).stdout
    return head + (f"+uncommitted changes in {', '.join(paths)}" if dirty.strip() else "")


def wrk_script(tmp: Path) -> Path:
    """bench_engines' wrk script with the Accept header taken from the environment."""
    script = tmp / "wrk.lua"
    script.write_text(
        WRK_SCRIPT.replace('"application/json"\n', 'os.getenv("BENCH_ACCEPT")\n', 1), encoding="utf-8"
    )
    return script


def load(run: StackRun, body: Path, kind: str, connections: int, duration: float, script: Path) -> dict:
    """One wrk load with CPU per request; the server total is nginx + gunicorn workers."""
    content_type, accept = BODIES[kind]
    os.environ["BENCH_ACCEPT"] = accept
    result = cpu_per_request(
        run, lambda: wrk(f"{run.url}/invocations", body, content_type, connections, duration, script)
    )
    cpu = result["cpu_us_per_request"]
    cpu["server"] = round(cpu["nginx_workers"] + cpu["gunicorn_workers"], 1)
    return result


def median_run(runs: list[dict]) -> dict:
    """The run with the median throughput, plus every round's throughput, p99 and server CPU."""
    ordered = sorted(runs, key=lambda r: r["rps"])
    chosen = dict(ordered[(len(ordered) - 1) // 2])
    chosen["rps_each_round"] = [r["rps"] for r in runs]
    chosen["p99_ms_each_round"] = [r["p99_ms"] for r in runs]
    chosen["server_cpu_us_each_round"] = [r["cpu_us_per_request"]["server"] for r in runs]
    return chosen


def check(run: StackRun, body: dict[str, Path]) -> None:
    """Every stack must answer both bodies with 200 before it is measured."""
    import requests

    for kind, path in body.items():
        content_type, accept = BODIES[kind]
        answer = requests.post(
            f"{run.url}/invocations",
            data=path.read_bytes(),
            headers={"Content-Type": content_type, "Accept": accept},
            timeout=10,
        )
        if answer.status_code != 200:
            raise RuntimeError(f"{run.url}: {kind} answered {answer.status_code}: {answer.text[:300]}")


def byte_compile(stacks: dict[str, tuple[Path, dict[str, str]]]) -> None:
    """Compile every stack's Python code (and pipeline/), as the image's Dockerfile does."""
    dirs = {str(REPO_ROOT / "pipeline")}
    for serve, _ in stacks.values():
        program = serve.resolve().parent
        dirs.add(str(program.parent if (program.parent / "pipeline").is_dir() else program))
    subprocess.run([sys.executable, "-m", "compileall", "-q", *sorted(dirs)], check=True, capture_output=True)


def first_requests(run: StackRun, count: int = 4) -> list[float]:
    """Milliseconds of the first requests to a path only Flask's routing answers (a 404 on every
    stack): a worker that builds its Flask app on first use pays for it here."""
    times = []
    for _ in range(count):
        started = time.perf_counter()
        requests.get(f"{run.url}/no-such-path", timeout=10)
        times.append(round((time.perf_counter() - started) * 1000, 2))
    return times


def cold_starts(
    stacks: dict[str, tuple[Path, dict[str, str]]], model_dir: Path, tmp: Path, args
) -> dict[str, dict[str, Any]]:
    """Each stack started and stopped ``args.cold_starts`` times, interleaved; every start and the medians."""
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in stacks}
    for round_index in range(args.cold_starts):
        print(f"cold start {round_index + 1}/{args.cold_starts}", flush=True)
        for name, (serve, env) in stacks.items():
            with StackRun(serve, model_dir, tmp / f"logs-{name}", workers=args.workers, env=env) as run:
                runs[name].append({**run.cold_start, "first_routed_requests_ms": first_requests(run)})
    return {
        name: {
            key: round(statistics.median(start[key] for start in starts), 3)
            for key in ("first_ping_200_s", "all_workers_ready_s")
        }
        | {"starts": starts}
        for name, starts in runs.items()
    }


def measure(stacks: dict[str, tuple[Path, dict[str, str]]], model_dir: Path, tmp: Path, args) -> dict:
    """Cold starts (:func:`cold_starts`), then every load on every stack, round after round."""
    body = write_bodies(tmp)
    script = wrk_script(tmp)
    byte_compile(stacks)
    cold = cold_starts(stacks, model_dir, tmp, args)
    results: dict[str, dict[str, Any]] = {}
    with contextlib.ExitStack() as exit_stack:
        runs: dict[str, StackRun] = {}
        for name, (serve, env) in stacks.items():
            run = StackRun(serve, model_dir, tmp / f"logs-{name}", workers=args.workers, env=env)
            exit_stack.enter_context(run)
            check(run, body)
            runs[name] = run
            results[name] = {"cold_start": cold[name], "env": env, "serve": str(serve)}
        if args.cold_only:
            return results
        for run in runs.values():  # warm-up
            load(run, body["json"], "json", 8, 2.0, script)
        raw: dict[tuple[str, str, int], list[dict]] = {}
        for round_index in range(args.rounds):
            for kind in BODIES:
                for connections in CONNECTIONS:
                    print(f"round {round_index + 1}/{args.rounds}: {kind} c={connections}", flush=True)
                    for name, run in runs.items():
                        result = load(run, body[kind], kind, connections, args.duration, script)
                        raw.setdefault((name, kind, connections), []).append(result)
    for name in stacks:
        results[name]["loads"] = {
            kind: {str(c): median_run(raw[(name, kind, c)]) for c in CONNECTIONS} for kind in BODIES
        }
    return results


def ratios(results: dict[str, dict]) -> dict[str, dict]:
    """Each stack's req/s divided by the classic stack's, per body and connection count."""
    classic = results["classic"]["loads"]
    out: dict[str, dict] = {}
    for name, stack in results.items():
        if name == "classic":
            continue
        out[name] = {
            kind: {c: round(run["rps"] / classic[kind][c]["rps"], 3) for c, run in by_c.items()}
            for kind, by_c in stack["loads"].items()
        }
    return out


def table(results: dict[str, dict], ratio: dict[str, dict]) -> str:
    """Markdown: per stack and body, req/s (ratio to classic) at c=1/8/32, c=8 p99, c=8 server CPU."""
    lines = [
        "| stack | body | c=1 req/s (x classic) | c=8 req/s (x classic) | c=32 req/s (x classic) "
        "| c=8 p50 / p99 ms | c=8 server CPU µs/req | cold start s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, stack in results.items():
        for kind, by_c in stack["loads"].items():
            cells = []
            for c in CONNECTIONS:
                rps = by_c[str(c)]["rps"]
                share = "" if name == "classic" else f" ({ratio[name][kind][str(c)]:.2f})"
                cells.append(f"{rps:,.0f}{share}")
            c8 = by_c["8"]
            lines.append(
                f"| {name} | {kind} | {' | '.join(cells)} | {c8['p50_ms']:.2f} / {c8['p99_ms']:.2f} "
                f"| {c8['cpu_us_per_request']['server']:.0f} "
                f"| {stack['cold_start']['all_workers_ready_s']:.2f} |"
            )
    return "\n".join(lines)


def cold_table(results: dict[str, dict]) -> str:
    """Markdown: each stack's median cold start and every start."""
    lines = [
        "| stack | cold start s (median) | first /ping 200 s (median) | every start s |",
        "|---|---|---|---|",
    ]
    for name, stack in results.items():
        cold = stack["cold_start"]
        every = ", ".join(f"{start['all_workers_ready_s']:.3f}" for start in cold["starts"])
        lines.append(
            f"| {name} | {cold['all_workers_ready_s']:.3f} | {cold['first_ping_200_s']:.3f} | {every} |"
        )
    return "\n".join(lines)


def parse_variant(text: str) -> tuple[str, dict[str, str]]:
    """``NAME=ENV=VALUE[,ENV=VALUE]`` -> (NAME, {ENV: VALUE})."""
    name, _, assignments = text.partition("=")
    env = dict(item.split("=", 1) for item in assignments.split(",") if item)
    return name, env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-dir", type=Path, help="artifact directory (default: the released model)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per wrk run (default 10)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2, help="gunicorn workers")
    parser.add_argument("--before-ref", default=BEFORE_REF, help="git ref of the 'before' container")
    parser.add_argument("--no-before", action="store_true", help="skip the 'before' stack")
    parser.add_argument("--variant", action="append", default=[], help="NAME=ENV=VALUE[,ENV=VALUE]")
    parser.add_argument("--variant-serve", action="append", default=[], help="NAME=PATH to a serve script")
    parser.add_argument("--cold-starts", type=int, default=7, help="cold starts per stack (default 7)")
    parser.add_argument("--cold-only", action="store_true", help="measure cold starts only (no loads)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-classic-") as name:
        tmp = Path(name)
        model_dir = ensure_model(args.model_dir, tmp)
        stacks: dict[str, tuple[Path, dict[str, str]]] = {"classic": (CLASSIC_SERVE, {})}
        if not args.no_before:
            stacks["before"] = (extract_before(args.before_ref, tmp), {})
        stacks["after"] = (REPO_ROOT / "container" / "serve", {})
        for variant in args.variant:
            variant_name, env = parse_variant(variant)
            stacks[variant_name] = (REPO_ROOT / "container" / "serve", env)
        for variant in args.variant_serve:
            variant_name, _, path = variant.partition("=")
            stacks[variant_name] = (Path(path).resolve(), {})
        results = measure(stacks, model_dir, tmp, args)
    ratio = {} if args.cold_only else ratios(results)
    report = {
        "created_utc": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": "python bench/bench_classic.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "after_commit": commit_of("container"),
        "before_ref": None if args.no_before else args.before_ref,
        "machine": {"cpus": os.cpu_count(), "note": "shared machine: wrk on the same cores; see load_avg_*"},
        "duration_s_per_run": args.duration,
        "rounds": args.rounds,
        "workers": args.workers,
        "stacks": results,
        "ratio_to_classic": ratio,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(cold_table(results) if args.cold_only else table(results, ratio))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
