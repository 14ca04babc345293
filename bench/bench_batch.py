"""End-to-end local batch benchmark: a large CSV through ``python -m pipeline batch`` and the real container.

Generates ``--rows`` rows from adult.test with an ``id`` column (about 92 bytes a row: 10 M rows is
~0.9 GB) under a temporary directory, starts ``container/serve`` (nginx + gunicorn, the released
model) on loopback, runs the batch command as a child process with ``--id-columns 0``, and writes
``bench/results/batch.json``: rows, bytes, seconds, rows/s, requests, retries, the batch process's
peak RSS and the container tree's peak RSS and PSS (sampled every 0.25 s), and the load average
before and after (this machine may be shared: the figures are what this run saw, not a capacity
claim).

    python bench/bench_batch.py --rows 10000000
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.batch_input import write_csv
from bench.live import REPO_ROOT, ServeRun
from pipeline.artifact import safe_extract

RESULTS = REPO_ROOT / "bench" / "results" / "batch.json"


def _tree_memory(pid: int) -> tuple[int, int]:
    """(RSS, PSS) bytes of ``pid`` and all its descendants now.

    The RSS sum counts pages the processes share (the model, libraries loaded before gunicorn
    forks) once per process; PSS splits each shared page between its sharers, so its sum is what
    the tree really occupies.
    """
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0, 0
    rss = pss = 0
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            info = proc.memory_full_info()
            rss += info.rss
            pss += info.pss
    return rss, pss


class _PeakSampler(threading.Thread):
    """Samples a process tree's RSS and PSS every ``interval`` seconds and keeps the peaks."""

    def __init__(self, pid: int, interval: float = 0.25) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.peak_rss = self.peak_pss = 0
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            rss, pss = _tree_memory(self.pid)
            self.peak_rss, self.peak_pss = max(self.peak_rss, rss), max(self.peak_pss, pss)
            self._halt.wait(self.interval)

    def stop(self) -> tuple[int, int]:
        self._halt.set()
        self.join()
        return self.peak_rss, self.peak_pss


def _count_lines(path: Path) -> int:
    with open(path, "rb") as fh:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 24), b""))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (MaxConcurrentTransforms)")
    parser.add_argument("--work-dir", type=Path, help="where the input and output go (default: a temp dir)")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    work = args.work_dir or Path(tempfile.mkdtemp(prefix="bench-batch-"))
    work.mkdir(parents=True, exist_ok=True)
    source = work / "input" / "adult-ids.csv"
    source.parent.mkdir(exist_ok=True)
    started = time.perf_counter()
    size = write_csv(source, args.rows, with_id=True)
    print(
        f"generated {args.rows:,} rows, {size:,} bytes in {time.perf_counter() - started:.1f} s", flush=True
    )
    model_dir = work / "model"
    if not (model_dir / "manifest.json").is_file():
        safe_extract(REPO_ROOT / "model" / "model.tar.gz", model_dir)

    load_before = os.getloadavg()
    with ServeRun(model_dir, work / "logs", workers=args.workers) as server:
        sampler = _PeakSampler(server.pid)
        sampler.start()
        command = [
            sys.executable, "-m", "pipeline", "batch", str(source), str(work / "output"),
            "--id-columns", "0", "--container-url", server.url, "--json", "--no-progress",
        ]  # fmt: skip
        wall = time.perf_counter()
        # The batch process's memory is sampled too: getrusage's ru_maxrss would not do, since Linux
        # keeps the high-water mark across exec, so a child reports at least this (large) process's
        # RSS at the moment it was spawned.
        batch = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO_ROOT
        )
        batch_sampler = _PeakSampler(batch.pid)
        batch_sampler.start()
        stdout, stderr = batch.communicate()
        batch_peak, _ = batch_sampler.stop()
        wall = time.perf_counter() - wall
        container_peak, container_pss = sampler.stop()
    load_after = os.getloadavg()
    if batch.returncode != 0:
        print(stderr, file=sys.stderr)
        return 1
    summary = json.loads(stdout)
    out_file = work / "output" / "adult-ids.csv.out"
    out_lines = _count_lines(out_file)
    mib = 1024 * 1024
    result = {
        "command": "python bench/bench_batch.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "batch_command": "python -m pipeline batch INPUT OUTPUT --id-columns 0 --container-url URL --json",
        "rows": summary["rows"],
        "input_bytes": summary["input_bytes"],
        "output_lines": out_lines,
        "seconds": round(summary["seconds"], 2),
        "wall_seconds_including_startup": round(wall, 2),
        "rows_per_s": summary["rows_per_s"],
        "requests": summary["requests"],
        "retries": summary["retries"],
        "max_payload_mb": summary["max_payload_mb"],
        "max_concurrent_transforms": summary["max_concurrent_transforms"],
        "gunicorn_workers": args.workers,
        "peak_rss_mib": {
            "batch_process_sampled": round(batch_peak / mib, 1),
            "container_tree_sampled": round(container_peak / mib, 1),
            "total": round((batch_peak + container_peak) / mib, 1),
        },
        "peak_pss_mib": {
            "container_tree_sampled": round(container_pss / mib, 1),
            "total_with_batch_process_rss": round((batch_peak + container_pss) / mib, 1),
        },
        "cpu_count": os.cpu_count(),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in load_after],
        "note": "shared machine: other jobs ran during the measurement (see the load averages)",
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0 if out_lines == summary["rows"] == args.rows else 1


if __name__ == "__main__":
    sys.exit(main())
