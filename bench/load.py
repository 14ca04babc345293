"""Load: single-record requests straight to the container and through the full local path.

1. 100,000 single-record JSON requests at 64 connections to ``container/serve`` (nginx + gunicorn,
   as in the image) on loopback;
2. 20,000 through gateway -> Lambda handler -> local InvokeEndpoint -> container, with an API key
   whose usage plan allows it (the default plan throttles one key at 50 req/s).

The claim is 0 non-2xx and 0 connection errors; p50/p99 and throughput are reported as measured on
this machine (the client runs on the same cores as the servers; other processes compete: the load
average before and after is recorded). Writes ``bench/results/load.json``.

    .venv/bin/python bench/load.py
    .venv/bin/python bench/load.py --direct 2000 --gateway 500      # a quick run
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.live import RECORD, LocalPath, ServeRun, ensure_model, machine_state
from bench.loadgen import LoadResult, run_load

RESULTS = Path(__file__).resolve().parent / "results" / "load.json"
LOAD_PLAN = {"api.throttle_rate": 10000.0, "api.throttle_burst": 5000, "api.quota_limit": 10_000_000}


def _report(name: str, result: LoadResult) -> dict[str, object]:
    summary = result.summary()
    lat = summary["latency_ms"]
    print(
        f"{name}: {summary['requests_sent']} sent, {summary['ok_2xx']} 2xx, {summary['non_2xx']} non-2xx, "
        f"{summary['connection_errors']} connection errors; {summary['throughput_rps']} req/s; "
        f"p50 {lat['p50']} ms, p99 {lat['p99']} ms, max {lat['max']} ms",
        flush=True,
    )
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--direct", type=int, default=100_000, help="requests straight to the container")
    parser.add_argument("--gateway", type=int, default=20_000, help="requests through the local gateway")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--workers", type=int, default=None, help="gunicorn workers (default: CPU count)")
    parser.add_argument("--model-dir", type=Path, help="artifact directory (default: the released model)")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    body = json.dumps(RECORD).encode()
    results: dict[str, object] = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "note": "one shared 2-core machine, client and servers on the same cores: timings are noisy",
        "connections": args.connections,
        "request_body": "one JSON record",
    }
    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp_name:
        tmp = Path(tmp_name)
        model_dir, source = ensure_model(args.model_dir, tmp)
        results["model"] = source
        workers = args.workers or os.cpu_count() or 1
        results["gunicorn_workers"] = workers
        results["machine_before"] = machine_state()
        with ServeRun(model_dir, tmp / "logs", workers=workers) as server:
            print(
                f"container: {server.url} ({args.direct} requests at {args.connections} connections)",
                flush=True,
            )
            direct = run_load(
                f"{server.url}/invocations", body, requests=args.direct, connections=args.connections,
                max_duration_s=1800, on_progress=lambda n: print(f"  {n} sent", flush=True),
            )  # fmt: skip
        results["direct_to_container"] = _report("container", direct)
        results["machine_between"] = machine_state()
        with LocalPath(model_dir, tmp / "local", overrides=LOAD_PLAN) as path:
            print(
                f"local path: {path.predict_url} ({args.gateway} requests at {args.connections} connections)"
            )
            through = run_load(
                path.predict_url, body, requests=args.gateway, connections=args.connections,
                headers={"x-api-key": path.api_key}, max_duration_s=1800,
                on_progress=lambda n: print(f"  {n} sent", flush=True),
            )  # fmt: skip
        results["through_local_gateway"] = _report("gateway path", through)
        results["machine_after"] = machine_state()
    failures = direct.failures + through.failures
    results["total_requests"] = direct.sent + through.sent
    results["total_failures"] = failures
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"total: {direct.sent + through.sent} requests, {failures} failures; wrote {args.output}")
    return 0 if failures == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
