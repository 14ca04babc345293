"""Stream an input file into mini-batches on line boundaries, each no larger than ``MaxPayloadInMB``.

Batch Transform with ``SplitType=Line`` and ``BatchStrategy=MultiRecord`` packs as many whole lines
as fit into one ``/invocations`` body. The local runner does the same, counting exactly the bytes it
will send: the (re-sent) header line plus every record line with a ``\\n`` terminator. Blank lines are
not records (the container ignores them too) but keep their place in the line numbering. A line that
alone exceeds the limit is a bad record (SageMaker fails the job on it).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, NamedTuple

import numpy as np

from pipeline.batch.records import RecordProblem

MIB = 1024 * 1024


@dataclass
class MiniBatch:
    """Consecutive records of one input file, in file order.

    The records are kept as the bytes they were read in (runs of whole lines joined by line
    breaks), not as an object per line: the runner's common path works on them whole.
    """

    index: int
    raw_bytes: int = 0
    """Input bytes this batch consumed (records, blank lines and terminators), for progress."""
    problems: list[tuple[int, RecordProblem]] = field(default_factory=list)
    """Lines found bad before sending (too large), as (line number, problem)."""
    pieces: list[bytes] = field(default_factory=list)
    """Runs of record lines, each line ending in a line break."""
    piece_numbers: list[Sequence[int]] = field(default_factory=list)
    """1-based line number in the input file of each record of each piece."""

    def add(self, piece: bytes, numbers: Sequence[int]) -> None:
        """Append a run of record lines (``numbers``: their line numbers)."""
        self.pieces.append(piece)
        self.piece_numbers.append(numbers)

    @property
    def records(self) -> bytes:
        """Every record line, each ending in a line break (no copy when the batch is one piece)."""
        return b"".join(self.pieces)

    @property
    def lines(self) -> list[bytes]:
        """Record lines without their terminator."""
        return [line for piece in self.pieces for line in piece.split(b"\n")[:-1]]

    @property
    def numbers(self) -> list[int]:
        """1-based line number in the input file of each record."""
        return [number for numbers in self.piece_numbers for number in numbers]

    @property
    def first_and_last(self) -> tuple[int, int]:
        """The first and the last record's line numbers (the batch has records)."""
        return self.piece_numbers[0][0], self.piece_numbers[-1][-1]


@dataclass(frozen=True)
class FileStart:
    """What precedes the records of a file: its header line (if any) and that line's number."""

    header: bytes | None
    header_line: int | None
    consumed: int
    empty: bool


def read_start(fh: BinaryIO, detect_header: bool, is_header: object) -> tuple[FileStart, int]:
    """Skip leading blank lines and read a header if ``is_header(line)`` says the first line is one.

    Returns the start and the number of the last line consumed. The file position is left after the
    header (or at the first record).
    """
    consumed, number = 0, 0
    while True:
        position = fh.tell()
        raw = fh.readline()
        if not raw:
            return FileStart(None, None, consumed, empty=True), number
        line = _strip(raw)
        if not line.strip():
            number += 1
            consumed += len(raw)
            continue
        if detect_header and callable(is_header) and is_header(line):
            return FileStart(line, number + 1, consumed + len(raw), empty=False), number + 1
        fh.seek(position)
        return FileStart(None, None, consumed, empty=False), number


def mini_batches(fh: BinaryIO, limit_bytes: int, header_cost: int, first_number: int) -> Iterator[MiniBatch]:
    """Mini-batches of the records read from ``fh`` (positioned after any header).

    Each batch's payload, ``header_cost`` (the header line and its terminator, or 0) plus each record
    line and a terminator, is at most ``limit_bytes``. ``first_number`` is the number of the line
    read before the first record (0 at the start of a file). Lines are handled a block at a time
    with bytes/bisect operations, so a 10-million-line file costs no per-line Python loop here.
    """
    packer = _Packer(limit_bytes - header_cost, limit_bytes)
    number, carry = first_number, b""
    while True:
        chunk = fh.read(READ_BYTES)
        if not chunk:
            break
        data = carry + chunk if carry else chunk
        cut = data.rfind(b"\n")
        if cut < 0:
            carry = data
            continue
        carry = data[cut + 1 :]
        records = _records_of(data, number, cut + 1)  # not data[: cut + 1]: a 4 MiB copy
        yield from packer.add(records, cut + 1)
        number += records.n_lines
    if carry:  # a last line without a terminator (complete or truncated: the container decides)
        yield from packer.add(_records_of(carry + b"\n", number), len(carry))
    yield from packer.flush()


READ_BYTES = 4 * MIB


class _Packer:
    """Accumulates record lines into MiniBatches of at most ``budget`` payload bytes."""

    def __init__(self, budget: int, limit: int) -> None:
        self.budget, self.limit = budget, limit
        self.index = 0
        self.batch = MiniBatch(0)
        self.size = 0

    def add(self, records: _Records, raw: int) -> Iterator[MiniBatch]:
        """Pack the records of one block (``raw``: the input bytes it consumed)."""
        self.batch.raw_bytes += raw
        text, ends, numbers = records.text, records.ends, records.numbers
        start, n_lines = 0, len(ends) - 1
        while start < n_lines:
            room = self.budget - self.size
            stop = int(np.searchsorted(ends, ends[start] + room, side="right")) - 1
            if stop > start:
                self.batch.add(text[ends[start] : ends[stop]], numbers[start:stop])
                self.size += int(ends[stop] - ends[start])
                start = stop
                continue
            if self.batch.pieces:  # full: start the next batch
                yield self._next()
                continue
            # An empty batch cannot take this line: it alone is over the limit.
            cost = int(ends[start + 1] - ends[start])
            problem = RecordProblem(
                None,
                "record_too_large",
                f"the line is {cost} bytes; with the header it exceeds MaxPayloadInMB ({self.limit} bytes)",
            )
            self.batch.problems.append((numbers[start], problem))
            yield self._next()
            start += 1

    def flush(self) -> Iterator[MiniBatch]:
        if self.batch.pieces or self.batch.problems or self.batch.raw_bytes:
            yield self._next()

    def _next(self) -> MiniBatch:
        done = self.batch
        self.index += 1
        self.batch, self.size = MiniBatch(self.index), 0
        return done


class _Records(NamedTuple):
    text: bytes
    ends: np.ndarray
    numbers: Sequence[int]
    n_lines: int
    """Lines in the block, blank ones included (the next block's numbering goes on from them)."""


def _records_of(data: bytes, first: int, end: int | None = None) -> _Records:
    """The record lines of ``data[:end]`` (lines each ending in a line break; numbers ``first + 1`` on).

    ``text`` holds the records, each ending in a line break, and ``ends[i]`` is where record i
    starts in it, so records ``a..b`` are ``text[ends[a] : ends[b]]``: ``ends[b] - ends[a]`` payload
    bytes. A block with no CR and no line that is empty or starts with whitespace is read where it
    is (``text`` is ``data`` itself: no copy, no object per line); otherwise CRs before line breaks
    and blank lines are dropped line by line.
    """
    end = len(data) if end is None else end
    if data.find(b"\r", 0, end) < 0:
        buffer = np.frombuffer(data, dtype=np.uint8, count=end)
        ends = np.concatenate(([0], np.flatnonzero(buffer == _NEWLINE) + 1))
        if not _SPACE.take(buffer.take(ends[:-1])).any():
            return _Records(data, ends, range(first + 1, first + len(ends)), len(ends) - 1)
    block = data[:end]
    lines = block.split(b"\n")[:-1]
    if b"\r" in block:  # CRLF files: the terminator is not part of the record
        lines = [line[:-1] if line.endswith(b"\r") else line for line in lines]
    kept = [(first + 1 + i, line) for i, line in enumerate(lines) if line.strip()]
    lengths = np.fromiter((len(line) + 1 for _, line in kept), dtype=np.intp, count=len(kept))
    ends = np.concatenate(([0], np.cumsum(lengths)))
    text = b"".join(line + b"\n" for _, line in kept)
    return _Records(text, ends, [number for number, _ in kept], len(lines))


_NEWLINE = ord("\n")
_SPACE = np.zeros(256, dtype=np.bool_)
_SPACE[list(b" \t\n\r\x0b\x0c")] = True
"""Bytes ``bytes.strip`` removes: a line starting with one may be blank (an empty one starts with LF)."""


def limit_bytes(max_payload_mb: int) -> int:
    """SageMaker's MaxPayloadInMB in bytes (MB here means MiB, as the container's limit does)."""
    return max_payload_mb * MIB


def input_files(root: Path) -> list[Path]:
    """The input files under ``root`` (or ``root`` itself), sorted, hidden files skipped."""
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise FileNotFoundError(f"input {root} does not exist")
    return sorted(
        p
        for p in root.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)
    )


def _strip(raw: bytes) -> bytes:
    if raw.endswith(b"\n"):
        raw = raw[:-1]
    if raw.endswith(b"\r"):
        raw = raw[:-1]
    return raw
