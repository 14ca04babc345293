"""The Lambda proxy's own cost, measured locally: cold start, warm overhead per invocation, memory.

* **Cold start** (each in a fresh interpreter, ``--repeats`` times, median): importing boto3, importing
  the handler module (which imports boto3), and creating the ``sagemaker-runtime`` client (botocore
  loads and parses the service model here). The interpreter's own start is measured and subtracted.
* **Warm invocation**: the real handler with a REST proxy event, against a loopback HTTP server
  that answers like InvokeEndpoint with a fixed prediction (the container's time is not the Lambda's
  to pay). Reported per call: wall time and CPU time of the whole handler, and of a bare
  ``invoke_endpoint`` on the same cached client, so the difference is the handler's own work.
  The client (and its pooled connection) is created once and reused, as in Lambda.
* **Memory**: peak RSS of the process after import, client creation and the warm calls.

Lambda allocates CPU in proportion to memory (one full vCPU at 1,769 MB); the file also projects the
CPU-bound parts onto the usual memory sizes by that rule (assuming one local core ≈ one Lambda vCPU).

    .venv/bin/python bench/bench_lambda_hop.py       # -> bench/results/lambda_hop.json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO_ROOT)]

RESULTS = REPO_ROOT / "bench" / "results" / "lambda_hop.json"
FULL_VCPU_MB = 1769  # Lambda: memory at which a function gets one full vCPU
MEMORY_SIZES_MB = (128, 256, 512, 1024, 1769)
ANSWER = b'{"predictions":[{"label":"<=50K","probability":0.1234}]}'
RECORD_BODY = json.dumps(
    {"age": 39, "workclass": "State-gov", "education_num": 13, "marital_status": "Never-married"}
)

SNIPPETS = {
    "interpreter": "pass",
    "import_boto3": "import boto3",
    "import_handler": "import lambda_proxy.handler",
    "import_handler_and_create_client": (
        "import lambda_proxy.handler\n"
        "from lambda_proxy import runtime\n"
        "from lambda_proxy.settings import load_settings\n"
        "runtime.client_for(load_settings())"
    ),
}


class _FakeInvokeEndpoint(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the real service
    disable_nagle_algorithm = True  # else delayed ACKs add 40 ms to every call

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("x-amzn-Invoked-Production-Variant", "AllTraffic")
        self.send_header("Content-Length", str(len(ANSWER)))
        self.end_headers()
        self.wfile.write(ANSWER)

    def log_message(self, *_args: object) -> None:
        return


def fresh_interpreter_seconds(code: str, env: dict[str, str], repeats: int) -> dict[str, Any]:
    """Wall and CPU seconds of ``python -c code`` in fresh interpreters (median of ``repeats``)."""
    walls, cpus = [], []
    for _ in range(repeats):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], env=env, check=True, cwd=REPO_ROOT)
        walls.append(time.perf_counter() - started)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append((after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime))
    return {"wall_s": round(statistics.median(walls), 4), "cpu_s": round(statistics.median(cpus), 4)}


def proxy_event() -> dict[str, Any]:
    """A REST API (format 1.0) proxy event for ``POST /predict`` with one JSON record."""
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    return {
        "resource": "/predict",
        "path": "/predict",
        "httpMethod": "POST",
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": None,
        "requestContext": {
            "httpMethod": "POST",
            "identity": {"apiKeyId": "bench", "sourceIp": "127.0.0.1"},
            "requestId": "bench-request",
            "resourcePath": "/predict",
            "stage": "prod",
        },
        "body": RECORD_BODY,
        "isBase64Encoded": False,
    }


class _Context:
    aws_request_id = "bench"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 28_000


def per_call(fn: Any, calls: int) -> dict[str, float]:
    """Median-free per-call averages over ``calls`` calls: wall µs and this thread's CPU µs."""
    wall, cpu = time.perf_counter(), time.thread_time()
    for _ in range(calls):
        fn()
    return {
        "wall_us": round((time.perf_counter() - wall) / calls * 1e6, 1),
        "cpu_us": round((time.thread_time() - cpu) / calls * 1e6, 1),
    }


def warm(calls: int, rounds: int) -> dict[str, Any]:
    """The handler vs a bare invoke_endpoint on the same cached client, interleaved ``rounds`` times."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeInvokeEndpoint)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    os.environ.update(
        ENDPOINT_NAME="bench-endpoint",
        AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME=f"http://127.0.0.1:{server.server_address[1]}",
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",  # noqa: S106 - a dummy: requests are signed for a loopback server
        AWS_REGION="us-east-1",
    )
    from lambda_proxy import handler, runtime
    from lambda_proxy.settings import load_settings

    event, context = proxy_event(), _Context()
    devnull = os.open(os.devnull, os.O_WRONLY)
    saved_stdout = os.dup(1)
    os.dup2(devnull, 1)  # the handler's log line goes to stdout; keep it out of the measurement output
    try:
        answer = handler.handler(event, context)
        if answer["statusCode"] != 200:
            raise RuntimeError(f"the handler answered {answer}")
        client = runtime.client_for(load_settings())
        same_client = runtime.client_for(load_settings()) is client

        def bare() -> None:
            client.invoke_endpoint(
                EndpointName="bench-endpoint", Body=RECORD_BODY.encode(), ContentType="application/json"
            )["Body"].read()

        runs: dict[str, list[dict[str, float]]] = {"handler": [], "bare_invoke_endpoint": []}
        for _ in range(rounds):
            runs["handler"].append(per_call(lambda: handler.handler(event, context), calls))
            runs["bare_invoke_endpoint"].append(per_call(bare, calls))
    finally:
        os.dup2(saved_stdout, 1)
        server.shutdown()
    medians = {
        name: {k: statistics.median(r[k] for r in rs) for k in ("wall_us", "cpu_us")}
        for name, rs in runs.items()
    }
    return {
        "calls_per_round": calls,
        "rounds": rounds,
        "each_round": runs,
        "median": medians,
        "handler_own_cpu_us": round(
            medians["handler"]["cpu_us"] - medians["bare_invoke_endpoint"]["cpu_us"], 1
        ),
        "client_reused_across_invocations": same_client,
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def projections(cold: dict[str, Any], warm_result: dict[str, Any]) -> dict[str, Any]:
    """CPU-bound parts scaled by Lambda's CPU share at each memory size (share = min(1, MB / 1769))."""
    base = cold["interpreter"]["cpu_s"]
    init_cpu = cold["import_handler_and_create_client"]["cpu_s"] - base
    invoke_cpu_ms = warm_result["median"]["handler"]["cpu_us"] / 1000
    out = {}
    for mb in MEMORY_SIZES_MB:
        share = min(1.0, mb / FULL_VCPU_MB)
        out[str(mb)] = {
            "cpu_share": round(share, 3),
            "init_s": round(init_cpu / share, 3),
            "warm_invoke_cpu_ms": round(invoke_cpu_ms / share, 2),
            "gb_s_per_million_warm_ms": round(mb / 1024 * (invoke_cpu_ms / share) / 1000 * 1e6, 1),
        }
    return {"init_cpu_s_measured": round(init_cpu, 4), "by_memory_mb": out}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=7, help="fresh interpreters per cold measurement")
    parser.add_argument("--calls", type=int, default=500, help="warm calls per round")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved warm rounds")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT),
        "ENDPOINT_NAME": "bench-endpoint",
        "AWS_REGION": "us-east-1",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    load_before = os.getloadavg()[0]
    cold = {name: fresh_interpreter_seconds(code, env, args.repeats) for name, code in SNIPPETS.items()}
    warm_result = warm(args.calls, args.rounds)
    import boto3
    import botocore

    report = {
        "created_utc": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": "python bench/bench_lambda_hop.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "versions": {
            "python": sys.version.split()[0],
            "boto3": boto3.__version__,
            "botocore": botocore.__version__,
        },
        "load_avg_before": round(load_before, 2),
        "load_avg_after": round(os.getloadavg()[0], 2),
        "cold_start_fresh_interpreter": cold,
        "warm": warm_result,
        "projection_by_lambda_memory": projections(cold, warm_result),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
