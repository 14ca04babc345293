"""Where a request's time goes inside one worker: decode, validate, score, encode, per engine.

In process (no HTTP), on the same bodies as ``bench_engines.py``: one JSON record and a 10,000-row
CSV (and its first 1,000 rows). Each phase is timed separately over many repeats and the median is
reported, plus the bare ONNX Runtime ``run`` on a prebuilt feed. Times are the thread's CPU time
(``time.thread_time``), so on a busy machine they exclude time spent waiting for a core (wall time
would not).
Writes ``bench/results/request_path.json``.

    .venv/bin/python bench/bench_request_path.py [--model-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO_ROOT), str(REPO_ROOT / "container"), str(REPO_ROOT / "bench")]
os.environ.setdefault("OMP_NUM_THREADS", "1")  # as serve pins it for each worker

from bench_engines import bodies, ensure_model  # noqa: E402

RESULTS = REPO_ROOT / "bench" / "results" / "request_path.json"
PHASES = ("decode", "validate", "score", "encode")


def time_phases(engine, body: bytes, content_type: str, repeats: int) -> dict[str, float]:
    """Median microseconds per phase of the app's request path for ``body``."""
    from inference.decoding import decode
    from inference.encoding import Labeller, encode
    from inference.validation import Validator

    validator = Validator(engine.schema)
    labeller = Labeller(engine.threshold, engine.schema.positive_label, engine.schema.negative_label)
    samples: dict[str, list[float]] = {phase: [] for phase in PHASES}
    for _ in range(repeats):
        t0 = time.thread_time()
        decoded = decode(body, content_type, validator.names, validator.header_names)
        t1 = time.thread_time()
        batch = validator.validate(decoded)
        t2 = time.thread_time()
        probabilities = engine.predict_proba(batch.columns)
        t3 = time.thread_time()
        encode(probabilities, labeller, "application/json")
        t4 = time.thread_time()
        for phase, seconds in zip(PHASES, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
            samples[phase].append(seconds)
    result = {phase: round(statistics.median(values) * 1e6, 1) for phase, values in samples.items()}
    result["total"] = round(sum(result[p] for p in PHASES), 1)
    return result


def bare_onnx_run(engine, body: bytes, repeats: int) -> float:
    """Median microseconds of ``session.run`` alone on a prebuilt feed."""
    from inference.decoding import decode
    from inference.validation import Validator

    validator = Validator(engine.schema)
    batch = validator.validate(decode(body, "text/csv", validator.names, validator.header_names))
    feed = engine._feeds.build(batch.columns)
    samples = []
    for _ in range(repeats):
        start = time.thread_time()
        engine._session.run(["probabilities"], feed)
        samples.append(time.thread_time() - start)
    return round(statistics.median(samples) * 1e6, 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-dir", type=Path)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    from inference.engine import load_engine

    with tempfile.TemporaryDirectory(prefix="bench-path-") as name:
        tmp = Path(name)
        model_dir = ensure_model(args.model_dir, tmp)
        body = bodies(tmp)
        json_body, csv_body = body["json"].read_bytes(), body["csv"].read_bytes()
        report: dict[str, object] = {
            "created_utc": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "load_avg_before": round(os.getloadavg()[0], 2),
            "unit": "microseconds of thread CPU time, median",
        }
        for engine_name in ("sklearn", "onnx"):
            engine = load_engine(model_dir, engine_name)
            entry = {
                "json_1_record": time_phases(
                    engine, json_body, "application/json", 300 if engine_name == "onnx" else 50
                ),
                "csv_10000_rows": time_phases(engine, csv_body, "text/csv", 7),
                "csv_1000_rows": time_phases(engine, _first_lines(csv_body, 1000), "text/csv", 30),
            }
            if engine_name == "onnx":
                entry["tree_tables"] = getattr(engine, "tables_status", None)
                single = {k: [v[0]] for k, v in _first_record(engine, json_body).items()}
                feed = engine._feeds.build(single)
                samples = []
                for _ in range(500):
                    start = time.thread_time()
                    engine._session.run(["probabilities"], feed)
                    samples.append(time.thread_time() - start)
                entry["bare_session_run_1_row"] = round(statistics.median(samples) * 1e6, 1)
                entry["bare_session_run_10000_rows"] = bare_onnx_run(engine, csv_body, 7)
            report[engine_name] = entry
            print(engine_name, json.dumps(entry))
        report["load_avg_after"] = round(os.getloadavg()[0], 2)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


def _first_lines(body: bytes, n: int) -> bytes:
    return b"".join(body.splitlines(keepends=True)[:n])


def _first_record(engine, body: bytes) -> dict[str, list[object]]:
    from inference.decoding import decode
    from inference.validation import Validator

    validator = Validator(engine.schema)
    return validator.validate(
        decode(body, "application/json", validator.names, validator.header_names)
    ).columns


if __name__ == "__main__":
    sys.exit(main())
