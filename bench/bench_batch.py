"""End-to-end local batch benchmark: a large CSV through ``python -m pipeline batch`` and the real container.

Generates ``--rows`` rows from adult.test with an ``id`` column (about 92 bytes a row: 10 M rows is
~0.9 GB) under a temporary directory, starts ``container/serve`` (nginx + gunicorn, the released
model) on loopback, runs the batch command as a child process with ``--id-columns 0``, and writes
``bench/results/batch.json``: rows, bytes, seconds, rows/s, requests, retries, memory sampled every
0.25 s (the peak of all processes' RSS summed at one instant; each tree's and each process's
peak RSS; the container's peak PSS), and the load average before and after (this machine may be
shared: the figures are what this run saw, not a capacity claim).

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


def _tree_memory(pid: int) -> tuple[int, int, dict[str, int]]:
    """(RSS, PSS) bytes of ``pid`` and all its descendants now, and the RSS of each by name.

    The RSS sum counts pages the processes share (the model, libraries loaded before gunicorn
    forks) once per process; PSS splits each shared page between its sharers, so its sum is what
    the tree really occupies.
    """
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0, 0, {}
    rss = pss = 0
    each: dict[str, int] = {}
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            info = proc.memory_full_info()
            rss += info.rss
            pss += info.pss
            each[f"{proc.pid} {_role(proc)}"] = info.rss
    return rss, pss, each


def _role(proc: psutil.Process) -> str:
    """What a process of the tree is, for the per-process peaks."""
    line = " ".join(proc.cmdline())
    if "nginx" in line:
        return "nginx: " + ("master" if "master" in line or " -c " in line else "worker")
    if "gunicorn" in line or "model-server" in line:
        parent = proc.parent()
        is_worker = parent is not None and "gunicorn" in " ".join(parent.cmdline())
        return "gunicorn worker" if is_worker else "gunicorn master"
    return "serve" if "serve" in line else (proc.name() or "process")


class _PeakSampler(threading.Thread):
    """Samples process trees every ``interval`` seconds and keeps the peaks: of each tree's RSS
    and PSS, of each process's RSS, and of the trees' RSS summed at the same instant."""

    def __init__(self, pids: dict[str, int], interval: float = 0.25) -> None:
        super().__init__(daemon=True)
        self.pids, self.interval = pids, interval
        self.peak_rss = dict.fromkeys(pids, 0)
        self.peak_pss = dict.fromkeys(pids, 0)
        self.peak_total_rss = 0
        self.peak_each: dict[str, int] = {}
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            total = 0
            for tree, pid in self.pids.items():
                rss, pss, each = _tree_memory(pid)
                total += rss
                self.peak_rss[tree] = max(self.peak_rss[tree], rss)
                self.peak_pss[tree] = max(self.peak_pss[tree], pss)
                for name, value in each.items():
                    self.peak_each[name] = max(self.peak_each.get(name, 0), value)
            self.peak_total_rss = max(self.peak_total_rss, total)
            self._halt.wait(self.interval)

    def stop(self) -> None:
        self._halt.set()
        self.join()


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
        sampler = _PeakSampler({"container": server.pid, "batch": batch.pid})
        sampler.start()
        stdout, stderr = batch.communicate()
        wall = time.perf_counter() - wall
        sampler.stop()
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
            "total": round(sampler.peak_total_rss / mib, 1),
            "total_note": "the largest sum of every process's RSS sampled at one instant; shared pages "
            "(the model and libraries the gunicorn master loads before forking) count once per process",
            "batch_process_sampled": round(sampler.peak_rss["batch"] / mib, 1),
            "container_tree_sampled": round(sampler.peak_rss["container"] / mib, 1),
            "sum_of_separate_peaks": round(sum(sampler.peak_rss.values()) / mib, 1),
            "each_process": {
                name: round(value / mib, 1) for name, value in sorted(sampler.peak_each.items())
            },
        },
        "peak_pss_mib": {
            "container_tree_sampled": round(sampler.peak_pss["container"] / mib, 1),
            "total_with_batch_process_rss": round(
                (sampler.peak_rss["batch"] + sampler.peak_pss["container"]) / mib, 1
            ),
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
