"""The measured throughput of one serving stack, read from ``bench/results/engines.json``.

``bench/bench_engines.py`` runs the image's own stack (nginx -> gunicorn sync workers -> Flask, one
worker per CPU) and loads it with wrk at 1, 8 and 32 connections, single-record JSON requests, and
records requests/s, p50/p90/p99 and errors per point, the machine's CPU count and the engine the
released model's manifest names. That file is the plan's input: it is the only result that measures
the container alone, at several concurrencies, with the released model. (``container.json`` is an
older run of the same kind; ``load.json`` uses a Python client at 64 connections that costs the
shared cores more; ``request_path.json`` is CPU time inside one worker, not throughput.)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.capacity.errors import BenchResultError, NoPointWithinP99

REPO_ROOT = Path(__file__).resolve().parents[2]
ENGINES_RESULT = REPO_ROOT / "bench" / "results" / "engines.json"


@dataclass(frozen=True)
class LoadPoint:
    """One wrk run: ``connections`` concurrent clients, requests/s served, p99 latency in ms."""

    connections: int
    rps: float
    p99_ms: float


@dataclass(frozen=True)
class Measurement:
    """What the benchmark measured for one engine, and on what."""

    source: str  # the file, relative to the repository when inside it
    created: str
    command: str
    engine: str
    cpus: int
    cpus_origin: str  # where the CPU count comes from (recorded, or inferred and how)
    platform: str | None
    note: str | None
    points: tuple[LoadPoint, ...]  # error-free points only

    def choose(self, p99_ms: float | None) -> LoadPoint:
        """The highest-throughput point whose p99 is within ``p99_ms`` (any point when None)."""
        eligible = [p for p in self.points if p99_ms is None or p.p99_ms <= p99_ms]
        if not eligible:
            measured = ", ".join(f"{p.p99_ms:g} ms at {p.connections} connections" for p in self.points)
            raise NoPointWithinP99(
                f"no point in {self.source} has a p99 within {p99_ms:g} ms (measured p99: {measured}); "
                "raise --p99-ms or measure lower concurrencies with bench/bench_engines.py"
            )
        return max(eligible, key=lambda p: p.rps)


def read_measurement(path: Path | None = None, engine: str | None = None) -> Measurement:
    """The measurement for ``engine`` (default: the engine the released model's manifest names)."""
    path = path or ENGINES_RESULT
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise BenchResultError(
            f"{path} does not exist; run `python bench/bench_engines.py` to measure the serving stack"
        ) from None
    except (OSError, ValueError) as exc:
        raise BenchResultError(f"{path} is not readable JSON: {exc}") from None
    try:
        return _parse(doc, _display(path), engine)
    except (KeyError, TypeError, ValueError) as exc:
        raise BenchResultError(
            f"{path} lacks what the plan needs ({exc!r}); is it from bench_engines.py?"
        ) from None


def _parse(doc: dict[str, Any], source: str, engine: str | None) -> Measurement:
    engine = engine or doc["model"]["manifest_engine"]
    stacks = doc["stacks"]
    if engine not in stacks or engine == "noop":
        known = ", ".join(name for name in stacks if name != "noop")
        raise BenchResultError(f"{source} has no measurement for engine {engine!r} (measured: {known})")
    stack = stacks[engine]
    points = tuple(
        LoadPoint(connections=int(run["connections"]), rps=float(run["rps"]), p99_ms=float(run["p99_ms"]))
        for run in stack["json_single"]
        if int(run["errors"]) == 0 and float(run["rps"]) > 0
    )
    if not points:
        raise BenchResultError(f"{source} has no error-free single-record load point for {engine!r}")
    machine = doc.get("machine", {})
    cpus, origin = _cpus(machine, stack, source)
    return Measurement(
        source=source,
        created=str(doc.get("created_utc", "not recorded")),
        command=str(doc.get("command", "not recorded")),
        engine=engine,
        cpus=cpus,
        cpus_origin=origin,
        platform=machine.get("platform"),
        note=machine.get("note"),
        points=points,
    )


def _cpus(machine: dict[str, Any], stack: dict[str, Any], source: str) -> tuple[int, str]:
    """The CPU count the load ran on: recorded in the file, else the stack's worker count."""
    if isinstance(machine.get("cpus"), int) and machine["cpus"] > 0:
        return machine["cpus"], f"recorded in {source} (machine.cpus)"
    # serve starts one gunicorn worker per CPU (container/inference/settings.py), so the worker count
    # is the CPU count of the machine unless the benchmark overrode it.
    if isinstance(stack.get("workers"), int) and stack["workers"] > 0:
        return stack["workers"], (
            f"not recorded in {source}; taken from the stack's worker count (serve starts one worker per CPU)"
        )
    raise BenchResultError(f"{source} records neither the machine's CPU count nor the worker count")


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(path)
