"""Fuzz both APIs with schemathesis: at least 10,000 generated cases against the live servers.

The container (``docs/openapi/container.json``) and the local API Gateway stage with a valid key
(``docs/openapi/gateway.json``) get positive and negative cases for every operation; each answer is
checked for: no 5xx, conformance to the spec (status, content type, body), and every error being a
JSON body of the documented error schema (``bench/fuzzing.py``). Prints counts, writes
``bench/results/fuzz.json``; exits 1 if any case failed.

    .venv/bin/python bench/fuzz.py                      # 6,000 container + 4,000 gateway cases
    .venv/bin/python bench/fuzz.py --container 600 --gateway 400
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.fuzzing import FuzzResult, fuzz
from bench.live import LocalPath, ServeRun, ensure_model, machine_state
from docs.openapi.contract import CONTAINER_SPEC, GATEWAY_SPEC

RESULTS = Path(__file__).resolve().parent / "results" / "fuzz.json"
FUZZ_PLAN = {"api.throttle_rate": 10000.0, "api.throttle_burst": 5000, "api.quota_limit": 10_000_000}
MAX_ROUNDS = 20


def fuzz_until(
    target: int, spec: Path, base_url: str, headers: dict[str, str] | None, label: str
) -> FuzzResult:
    """Fuzz in rounds with fresh seeds until ``target`` cases were sent; merge the rounds."""
    total = FuzzResult()
    round_number = 0
    while total.cases < target and round_number < MAX_ROUNDS:
        # Operations without inputs (GET /ping) yield one case; the target is met by the others.
        per_operation = max(20, target - total.cases)
        result = fuzz(
            spec, base_url, examples_per_operation=per_operation, headers=headers, seed=1000 + round_number
        )
        _merge(total, result)
        round_number += 1
        print(
            f"  {label}: round {round_number}: {result.cases} cases, {result.failure_count} failures",
            flush=True,
        )
    return total


def _merge(total: FuzzResult, part: FuzzResult) -> None:
    total.cases += part.cases
    total.failure_count += part.failure_count
    total.failures.extend(part.failures[: max(0, 20 - len(total.failures))])
    total.elapsed_s += part.elapsed_s
    for name in ("by_operation", "by_mode", "statuses", "not_sent"):
        counter: Counter = getattr(total, name)
        counter.update(getattr(part, name))


def _print(name: str, result: FuzzResult) -> dict[str, object]:
    summary = result.summary()
    print(
        f"{name}: {summary['cases']} cases, {summary['failures']} failures, {summary['five_xx']} 5xx; "
        f"statuses {summary['statuses']}; {summary['cases_per_s']} cases/s",
        flush=True,
    )
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--container", type=int, default=6000, help="cases against the container")
    parser.add_argument("--gateway", type=int, default=4000, help="cases against the local gateway")
    parser.add_argument("--model-dir", type=Path, help="artifact directory (default: the released model)")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    results: dict[str, object] = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "tool": "schemathesis (hypothesis), positive and negative cases per operation",
        "checks": [
            "not_a_server_error",
            "status_code_conformance",
            "content_type_conformance",
            "response_schema_conformance",
            "every 4xx is a JSON body of the documented error schema",
            "a schema-valid JSON record with an acceptable Accept is scored (2xx)",
        ],
    }
    with tempfile.TemporaryDirectory(prefix="bench-fuzz-") as tmp_name:
        tmp = Path(tmp_name)
        model_dir, source = ensure_model(args.model_dir, tmp)
        results["model"] = source
        results["machine_before"] = machine_state()
        with ServeRun(model_dir, tmp / "logs", workers=2) as server:
            container = fuzz_until(args.container, CONTAINER_SPEC, server.url, None, "container")
        results["container"] = _print("container", container)
        with LocalPath(model_dir, tmp / "local", overrides=FUZZ_PLAN) as path:
            gateway = fuzz_until(
                args.gateway, GATEWAY_SPEC, path.stage_url, {"x-api-key": path.api_key}, "gateway"
            )
        results["gateway"] = _print("gateway", gateway)
        results["machine_after"] = machine_state()
    results["total_cases"] = container.cases + gateway.cases
    results["total_failures"] = container.failure_count + gateway.failure_count
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"total: {results['total_cases']} cases, {results['total_failures']} failures; wrote {args.output}")
    return 0 if results["total_failures"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
