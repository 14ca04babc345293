"""Batch inputs built from the UCI ``adult.test`` rows: CSV in schema order with an ``id`` column first.

Shared by ``bench/bench_batch.py`` (a ~1 GB file) and the batch tests (small files). Values keep the
raw spellings of the data file (``?`` for missing), only stripped of the space after each comma.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path

from pipeline.data import RAW_COLUMNS, TEST_FILE
from pipeline.schema import SCHEMA

_POSITIONS = [RAW_COLUMNS.index(name) for name in SCHEMA.names]


def adult_test_rows(path: Path = TEST_FILE) -> list[list[str]]:
    """Each data row of adult.test as its 12 feature values in schema order."""
    rows = []
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            cells = [c.strip() for c in line.split(",")]
            if len(cells) != len(RAW_COLUMNS):
                continue  # the "|1x3 Cross validator" banner and blank lines
            rows.append([cells[p] for p in _POSITIONS])
    return rows


def csv_lines(n_rows: int, with_id: bool = True, start_id: int = 0) -> Iterator[bytes]:
    """``n_rows`` CSV lines cycling through adult.test; ``id`` (0, 1, ...) first when ``with_id``."""
    rows = [",".join(r).encode() for r in adult_test_rows()]
    for i in range(n_rows):
        row = rows[i % len(rows)]
        yield (b"%d," % (start_id + i) + row if with_id else row) + b"\n"


def header_line(with_id: bool = True) -> bytes:
    """The CSV header matching :func:`csv_lines`."""
    return (",".join((["id"] if with_id else []) + SCHEMA.names) + "\n").encode()


def write_csv(
    path: Path, n_rows: int, with_id: bool = True, header: bool = False, chunk: int = 100_000
) -> int:
    """Write ``n_rows`` rows to ``path``; returns the file size in bytes."""
    with open(path, "wb") as fh:
        if header:
            fh.write(header_line(with_id))
        buffer: list[bytes] = []
        for line in csv_lines(n_rows, with_id):
            buffer.append(line)
            if len(buffer) >= chunk:
                fh.write(b"".join(buffer))
                buffer.clear()
        fh.write(b"".join(buffer))
    return path.stat().st_size
