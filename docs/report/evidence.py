"""Facts for the report's serving-engine and reliability sections, read from the files that measured them.

Sources: ``model/manifest.json`` (the ONNX export and its parity gate), ``bench/results/engines.json``
(both engines and the no-op ceiling under the same load), ``bench/results/load.json`` and
``bench/results/fuzz.json``. Each table's caption names its file, when the run was made and the machine's
load average, because these runs shared two cores with other work.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from . import paths

RESULTS = paths.ROOT / "bench" / "results"


def _read(name: str, directory: Path = RESULTS) -> dict[str, Any] | None:
    path = directory / name
    return json.loads(path.read_text()) if path.is_file() else None


def _c8(stack: dict[str, Any]) -> dict[str, Any]:
    return next(r for r in stack["json_single"] if r["connections"] == 8)


def parity(manifest: dict[str, Any]) -> dict[str, str] | None:
    """The parity gate's result for the released artifact (None when it has no ONNX export)."""
    onnx = manifest.get("onnx") or {}
    gate = onnx.get("parity") or {}
    if not gate:
        return None
    return {
        "engine": manifest.get("engine", "sklearn"),
        "passed": "passed" if gate["passed"] else "failed",
        "rows": f"{gate['rows']:,}",
        "holdout_rows": f"{gate['holdout_rows']:,}",
        "edge_rows": f"{gate['edge_rows']:,}",
        "label_mismatches": f"{gate['label_mismatches']:,}",
        "max_abs_diff": f"{gate['max_abs_diff']:.1e}",
        "tolerance": f"{gate['tolerance']:.0e}",
        "threshold": f"{gate['threshold']:.4f}",
        "onnxruntime": (onnx.get("versions") or {}).get("onnxruntime", "?"),
    }


def engine_table(directory: Path = RESULTS) -> dict[str, Any] | None:
    """Single-record throughput and latency at 8 connections, batch rate and cold start, per stack."""
    data = _read("engines.json", directory)
    if data is None:
        return None
    names = {"sklearn": "scikit-learn engine", "onnx": "ONNX engine", "noop": "no-op ceiling (no model)"}
    rows = []
    loads = []
    for key in ("sklearn", "onnx", "noop"):
        stack = data["stacks"][key]
        c8 = _c8(stack)
        loads += [c8["load_avg_before"], c8["load_avg_after"]]
        csv = stack.get("csv_10k") or {}
        rows.append(
            {
                "label": names[key],
                "cells": [
                    f"{c8['rps']:,.0f}",
                    f"{c8['p50_ms']:.2f}",
                    f"{c8['p99_ms']:.2f}",
                    f"{csv['rows_per_s']:,}" if csv else "n/a",
                    f"{stack['cold_start']['all_workers_ready_s']:.2f}",
                ],
                "selected": key == "onnx",
            }
        )
    onnx, sk = _c8(data["stacks"]["onnx"]), _c8(data["stacks"]["sklearn"])
    return {
        "corner": "stack (2 gunicorn workers)",
        "columns": ["req/s at c=8", "p50 ms", "p99 ms", "10k-row CSV rows/s", "cold start s"],
        "rows": rows,
        "speedup": f"{onnx['rps'] / sk['rps']:.1f}",
        "p99_ratio": f"{sk['p99_ms'] / onnx['p99_ms']:.1f}",
        "caption": f"From bench/results/engines.json ({data['created_utc']}, '{data['command']}'): one JSON "
        "record per request at 8 connections, wrk on the same 2 cores, "
        f"{data['rounds']} interleaved rounds, median kept. Load average during the c=8 runs "
        f"{min(loads):.2f} to {max(loads):.2f}.",
    }


def reliability(directory: Path = RESULTS) -> dict[str, Any] | None:
    """Load and fuzz results (``load.json``, ``fuzz.json``)."""
    load, fuzz = _read("load.json", directory), _read("fuzz.json", directory)
    if load is None or fuzz is None:
        return None
    rows = []
    for key, label in (
        ("direct_to_container", "container directly"),
        ("through_local_gateway", "local API Gateway → Lambda → InvokeEndpoint → container"),
    ):
        run = load[key]
        rows.append(
            {
                "label": label,
                "cells": [
                    f"{run['requests_sent']:,}",
                    f"{run['non_2xx']:,}",
                    f"{run['connection_errors']:,}",
                    f"{run['throughput_rps']:,.0f}",
                    f"{run['latency_ms']['p99']:.0f}",
                ],
                "selected": False,
            }
        )
    load_table = {
        "corner": f"load, {load['connections']} connections, {load['request_body']}",
        "columns": ["requests", "non-2xx", "connection errors", "req/s", "p99 ms"],
        "rows": rows,
        "caption": f"From bench/results/load.json ({load['generated_at']}, make bench-load). Load average "
        f"{load['machine_before']['loadavg'][0]:.2f} before, {load['machine_after']['loadavg'][0]:.2f} "
        "after: client and servers share 2 cores, so the rates show robustness, not capacity.",
    }
    fuzz_rows = [
        {
            "label": label,
            "cells": [
                f"{fuzz[key]['cases']:,}",
                f"{fuzz[key]['failures']:,}",
                f"{fuzz[key]['five_xx']:,}",
                ", ".join(f"{status}: {n:,}" for status, n in sorted(fuzz[key]["statuses"].items())),
            ],
            "selected": False,
        }
        for key, label in (("container", "container"), ("gateway", "local API Gateway path"))
    ]
    fuzz_table = {
        "corner": "schemathesis against",
        "columns": ["cases", "failures", "5xx", "statuses"],
        "rows": fuzz_rows,
        "caption": f"From bench/results/fuzz.json ({fuzz['generated_at']}, make bench-fuzz): "
        f"{fuzz['tool']}; checks: {'; '.join(fuzz['checks'])}.",
    }
    return {"load": load_table, "fuzz": fuzz_table}


# The fault-injection tests (tests/reliability) and what each asserts; they run in every `make test`.
FAULTS: list[dict[str, str]] = [
    {
        "fault": "kill -9 of a gunicorn worker under load (3 kills)",
        "result": "at most the request on that worker fails, as nginx's JSON 502; the worker is replaced "
        "in under 1 s; nothing hangs",
        "test": "test_process_faults.py",
    },
    {
        "fault": "SIGTERM under load",
        "result": "every request accepted before the signal is answered 200 (batches in flight included), "
        "then connections are refused; exit status 0",
        "test": "test_process_faults.py",
    },
    {
        "fault": "nginx or the gunicorn master killed",
        "result": "serve stops the other and exits non-zero; no process is left behind",
        "test": "test_process_faults.py",
    },
    {
        "fault": "scoring slower than the timeout / hung past gunicorn's timeout",
        "result": "JSON 504 deadline_exceeded, the worker keeps serving / JSON 502, the worker is replaced",
        "test": "test_slow_scoring.py",
    },
    {
        "fault": "container stopped or killed behind InvokeEndpoint",
        "result": "the gateway answers a documented JSON 5xx within the Lambda's 28 s; /health stays 200",
        "test": "test_local_path_faults.py",
    },
    {
        "fault": "/opt/ml/model mounted read-only",
        "result": "no process writes there (no writable descriptor, no changed file)",
        "test": "test_model_dir_readonly.py",
    },
]
