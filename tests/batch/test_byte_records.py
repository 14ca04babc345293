"""The batch runner's line-free paths must give exactly what its per-line paths give."""

from __future__ import annotations

import io
import random

import numpy as np
import pytest

import pipeline.batch.splitting as splitting
from pipeline.batch.byte_records import split_leading_ids
from pipeline.batch.join import join_output


def _rng(seed: int) -> random.Random:
    return random.Random(seed)  # noqa: S311 - reproducible test data, not security


def _line(rng: random.Random) -> bytes:
    cells = [bytes(rng.choice(b"ab1 .-") for _ in range(rng.randint(0, 4))) for _ in range(rng.randint(1, 5))]
    return b",".join(cells)


@pytest.mark.parametrize("seed", range(200))
def test_split_and_join_match_the_per_line_split(seed: int) -> None:
    rng = _rng(seed)
    lines = [_line(rng) for _ in range(rng.randint(1, 8))]
    n_ids = rng.randint(0, 3)
    head = b"a,b\n" if seed % 2 else b""
    split = split_leading_ids(b"".join(line + b"\n" for line in lines), n_ids, head)
    parts = [line.split(b",", n_ids) for line in lines]
    if n_ids and any(len(p) <= n_ids for p in parts):
        assert split is None  # a line too short: the per-line path names it
        return
    assert split is not None
    features = [p[-1] for p in parts] if n_ids else lines
    assert split.payload == head + b"".join(f + b"\n" for f in features)
    answer = b"\n".join(_line(rng) or b"x" for _ in lines) + b"\n"
    ids = [b",".join(p[:-1]) for p in parts]
    assert split.join(answer) == join_output(answer, ids, "text/csv", bool(n_ids), "here")
    assert split.join(answer + b"one too many\n") is None


def test_quoted_lines_take_the_per_line_path() -> None:
    assert split_leading_ids(b'1,"a,b",c\n2,d,e\n', 1) is None


def _batches(data: bytes, limit: int) -> list[tuple[bytes, list[int], int, list[int]]]:
    return [
        (b.records, b.numbers, b.raw_bytes, [n for n, _ in b.problems])
        for b in splitting.mini_batches(io.BytesIO(data), limit, 7, 0)
    ]


@pytest.mark.parametrize("seed", range(60))
def test_plain_blocks_pack_like_the_per_line_path(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = _rng(seed)
    lines = [_line(rng) for _ in range(rng.randint(1, 400))]
    if rng.random() < 0.3:
        lines[rng.randrange(len(lines))] = b"x" * 300  # a record over the limit
    data = b"\n".join(lines) + (b"\n" if rng.random() < 0.5 else b"")
    limit = rng.randint(40, 400)
    monkeypatch.setattr(splitting, "READ_BYTES", rng.randint(16, 4096))  # blocks end mid-file
    plain = _batches(data, limit)
    monkeypatch.setattr(splitting, "_SPACE", np.ones(256, dtype=np.bool_))  # every block line by line
    assert plain == _batches(data, limit)
    records = [line for line in lines if line.strip()]  # blank lines are not records
    assert sum(len(numbers) for _, numbers, _, _ in plain) + sum(len(p) for *_, p in plain) == len(records)
    assert sum(raw for _, _, raw, _ in plain) == len(data)


@pytest.mark.parametrize("n_ids", [1, 2])
def test_long_id_cells_are_found_by_scanning(n_ids: int) -> None:
    lines = [b"x" * 100 + b",id2,a,b", b"1,2,c,d", b"y" * 70 + b",z" * 2]
    split = split_leading_ids(b"".join(line + b"\n" for line in lines), n_ids)
    assert split is not None
    assert split.payload == b"".join(line.split(b",", n_ids)[-1] + b"\n" for line in lines)
    assert split_leading_ids(b"".join(line + b"\n" for line in [*lines, b"q" * 80]), n_ids) is None
