#!/usr/bin/env python3
"""What each hop of the local request path costs: the same request at every entry point.

The local stack is started on loopback (real ``container/serve``, the local InvokeEndpoint and the
local API Gateway running the real Lambda handler in a worker process), then one single-record JSON
request is sent, sequentially over one keep-alive connection, to:

1. ``container``: ``POST /invocations`` on the container (nginx -> gunicorn -> model);
2. ``runtime``: ``POST /endpoints/NAME/invocations`` on the local InvokeEndpoint (raw HTTP);
3. ``runtime_boto3``: the same through boto3 ``invoke_endpoint`` (what the Lambda does: botocore
   serialisation, SigV4 signing, response parsing);
4. ``gateway_health``: ``GET /STAGE/health`` (gateway + Lambda worker round trip, no model);
5. ``gateway``: ``POST /STAGE/predict`` with an API key: the whole path.

Per-hop overhead is the difference of medians between neighbouring entry points. A short concurrent
run (4 connections) then compares throughput at the container and through the gateway. The usage
plan is raised for the run (``--set api.throttle_*``) so the gateway's own throttle does not answer.

Usage: ``.venv/bin/python bench/bench_local_path.py [--model-dir DIR] [--requests 300]``. Prints a
table and writes ``bench/results/local_path.json``. A shared 2-core machine: the numbers are noisy;
compare runs, not digits.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO_ROOT), str(REPO_ROOT / "bench")]

from loadgen import run_load  # noqa: E402 - path set just above

from pipeline.local.keys import create_key  # noqa: E402
from pipeline.local.model_source import prepare_model_dir  # noqa: E402
from pipeline.local.settings import load_local_settings  # noqa: E402
from pipeline.local.stack import Stack, StackInfo  # noqa: E402
from pipeline.schema import EXAMPLE_RECORD  # noqa: E402

RESULTS = REPO_ROOT / "bench" / "results" / "local_path.json"
RECORD = dict(EXAMPLE_RECORD)
BODY = json.dumps(RECORD).encode()
# The deploy default (50 requests/s per key) would answer 429 under load; the bench measures the path.
BENCH_OVERRIDES = {"api.throttle_rate": 10000.0, "api.throttle_burst": 5000, "api.quota_limit": 2**31 - 1}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, help="artifact directory (default: the released model)")
    parser.add_argument("--requests", type=int, default=300, help="sequential requests per entry point")
    parser.add_argument("--warmup", type=int, default=30, help="unmeasured requests per entry point first")
    parser.add_argument(
        "--concurrent-requests", type=int, default=400, help="requests in the 4-connection run"
    )
    return parser.parse_args()


def sequential(send: Callable[[], int], count: int, warmup: int) -> dict[str, Any]:
    """Latency of ``count`` back-to-back calls of ``send`` (which returns the HTTP status)."""
    for _ in range(warmup):
        send()
    latencies, failures = [], 0
    for _ in range(count):
        started = time.perf_counter()
        status = send()
        elapsed = time.perf_counter() - started
        if 200 <= status < 300:
            latencies.append(elapsed * 1000)
        else:
            failures += 1
    ordered = sorted(latencies)
    return {
        "requests": count,
        "failures": failures,
        "p50_ms": round(statistics.median(ordered), 3),
        "p90_ms": round(ordered[int(0.9 * (len(ordered) - 1))], 3),
        "p99_ms": round(ordered[int(0.99 * (len(ordered) - 1))], 3),
        "mean_ms": round(statistics.fmean(ordered), 3),
    }


def http_sender(method: str, url: str, headers: dict[str, str], body: bytes | None) -> Callable[[], int]:
    """A sender reusing one keep-alive connection, as a real client would."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=60)

    def send() -> int:
        conn.request(method, parts.path, body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        return response.status

    return send


def boto3_sender(info: StackInfo) -> Callable[[], int]:
    os.environ.update(
        AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME=info.runtime_url,
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",  # noqa: S106 - a placeholder; the local runtime checks nothing
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
    )
    import boto3

    client = boto3.client("sagemaker-runtime", region_name="us-east-1")

    def send() -> int:
        response = client.invoke_endpoint(
            EndpointName=info.endpoint_name, Body=BODY, ContentType="application/json"
        )
        response["Body"].read()
        return int(response["ResponseMetadata"]["HTTPStatusCode"])

    return send


def main() -> int:
    args = parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-local-"))
    settings = load_local_settings(
        {
            **os.environ,
            "LOCAL_RUN_DIR": str(work / "run"),
            "LOCAL_SECRETS_DIR": str(work / "secrets"),
            "LOCAL_GATEWAY_PORT": "0",
            "LOCAL_RUNTIME_PORT": "0",
            "LOCAL_CONTAINER_PORT": "0",
            "LOCAL_CONTAINER_MODE": os.environ.get("LOCAL_CONTAINER_MODE", "host"),
        }
    )
    stack = Stack(settings)
    model_dir = args.model_dir or prepare_model_dir(settings.run_dir)
    info = stack.up(Path(model_dir), overrides=BENCH_OVERRIDES)
    try:
        _, key = create_key("bench", settings.keys_file)
        json_headers = {"Content-Type": "application/json", "Accept": "application/json"}
        points: dict[str, Callable[[], int]] = {
            "container": http_sender("POST", f"{info.container_url}/invocations", json_headers, BODY),
            "runtime": http_sender(
                "POST", f"{info.runtime_url}/endpoints/{info.endpoint_name}/invocations", json_headers, BODY
            ),
            "runtime_boto3": boto3_sender(info),
            "gateway_health": http_sender("GET", info.health_url, {"x-api-key": key}, None),
            "gateway": http_sender("POST", info.predict_url, {**json_headers, "x-api-key": key}, BODY),
        }
        results: dict[str, Any] = {"meta": meta(info, args, model_dir), "sequential": {}, "concurrent_4": {}}
        for name, send in points.items():
            results["sequential"][name] = sequential(send, args.requests, args.warmup)
        results["overhead_p50_ms"] = overheads(results["sequential"])
        for name, url, headers in (
            ("container", f"{info.container_url}/invocations", {}),
            ("gateway", info.predict_url, {"x-api-key": key}),
        ):
            # Warm-up: four Lambda environments must exist (cold starts) before the measured run.
            run_load(url, BODY, requests=40, connections=4, headers=headers, max_duration_s=60)
            load = run_load(url, BODY, requests=args.concurrent_requests, connections=4, headers=headers,
                            max_duration_s=120)  # fmt: skip
            summary = load.summary()
            summary.pop("error_samples", None)
            results["concurrent_4"][name] = summary
    finally:
        stack.down(quiet=True)
        shutil.rmtree(work, ignore_errors=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print_table(results)
    print(f"\nwrote {RESULTS.relative_to(REPO_ROOT)}")
    return 0


def overheads(seq: dict[str, dict[str, Any]]) -> dict[str, float]:
    """Differences of medians between neighbouring entry points: what each hop adds."""
    p50 = {name: row["p50_ms"] for name, row in seq.items()}
    return {
        "runtime_emulator (runtime - container)": round(p50["runtime"] - p50["container"], 3),
        "boto3 client (runtime_boto3 - runtime)": round(p50["runtime_boto3"] - p50["runtime"], 3),
        "gateway + Lambda + handler (gateway - runtime_boto3)": round(
            p50["gateway"] - p50["runtime_boto3"], 3
        ),
        "gateway + Lambda round trip alone (gateway_health)": round(p50["gateway_health"], 3),
        "whole path over the container (gateway - container)": round(p50["gateway"] - p50["container"], 3),
    }


def meta(info: StackInfo, args: argparse.Namespace, model_dir: Path) -> dict[str, Any]:
    manifest = json.loads((Path(model_dir) / "manifest.json").read_text())
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True,
                            text=True, check=False).stdout.strip()  # fmt: skip
    return {
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "git_commit": commit,
        "cpu_count": os.cpu_count(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "container_mode": info.mode,
        "model_dir": str(model_dir),
        "model_engine": manifest.get("engine"),
        "usage_plan_overrides": BENCH_OVERRIDES,
        "requests_per_entry_point": args.requests,
        "note": "loopback on a shared 2-core machine, client on the same cores: noisy; compare runs",
    }


def print_table(results: dict[str, Any]) -> None:
    mode = results["meta"]["container_mode"]
    print(f"\nsequential, one keep-alive connection, single JSON record ({mode} container)")
    print(f"{'entry point':<16}{'p50 ms':>10}{'p90 ms':>10}{'p99 ms':>10}{'mean ms':>10}{'fail':>6}")
    for name, row in results["sequential"].items():
        print(f"{name:<16}{row['p50_ms']:>10.2f}{row['p90_ms']:>10.2f}{row['p99_ms']:>10.2f}"
              f"{row['mean_ms']:>10.2f}{row['failures']:>6}")  # fmt: skip
    print("\nper-hop overhead (difference of medians, ms)")
    for name, value in results["overhead_p50_ms"].items():
        print(f"  {name:<58}{value:>8.2f}")
    print("\n4 concurrent connections")
    for name, row in results["concurrent_4"].items():
        lat = row["latency_ms"]
        print(f"  {name:<10} {row['throughput_rps']:>7} req/s  p50 {lat['p50']} ms  p99 {lat['p99']} ms  "
              f"non-2xx {row['non_2xx']}  errors {row['connection_errors']}")  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(main())
