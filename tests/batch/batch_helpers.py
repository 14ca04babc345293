"""Helpers shared by the batch tests: inputs from adult.test and reading ``.out`` files."""

from __future__ import annotations

import csv
from pathlib import Path

from bench.batch_input import adult_test_rows, header_line
from pipeline.batch.local_runner import JobSummary, LocalJob, run_local_job

ROWS = adult_test_rows()


def write_rows(path: Path, rows: list[list[str]], ids: list[str] | None = None, header: bool = False) -> Path:
    """A CSV input: ``ids[i]`` (if given) first, then the 12 features of ``rows[i]``."""
    with open(path, "wb") as fh:
        if header:
            fh.write(header_line(with_id=ids is not None))
        for i, row in enumerate(rows):
            cells = ([ids[i]] if ids is not None else []) + row
            fh.write((",".join(cells) + "\n").encode())
    return path


def read_out(path: Path) -> list[list[str]]:
    """The rows of a ``.out`` file."""
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh))


def run(inp: Path, out: Path, url: str, **options: object) -> JobSummary:
    """Run the local runner without a progress bar."""
    return run_local_job(LocalJob(inp, out, url, progress=False, **options), say=lambda _m: None)  # type: ignore[arg-type]


def listing(folder: Path) -> list[str]:
    """Every file name in ``folder``, hidden ones included."""
    return sorted(p.name for p in folder.iterdir())
