"""Stream an input file into mini-batches on line boundaries, each no larger than ``MaxPayloadInMB``.

Batch Transform with ``SplitType=Line`` and ``BatchStrategy=MultiRecord`` packs as many whole lines
as fit into one ``/invocations`` body. The local runner does the same, counting exactly the bytes it
will send: the (re-sent) header line plus every record line with a ``\\n`` terminator. Blank lines are
not records (the container ignores them too) but keep their place in the line numbering. A line that
alone exceeds the limit is a bad record (SageMaker fails the job on it).
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import accumulate
from operator import add
from pathlib import Path
from typing import BinaryIO

from pipeline.batch.records import RecordProblem

MIB = 1024 * 1024


@dataclass
class MiniBatch:
    """Consecutive records of one input file, in file order."""

    index: int
    lines: list[bytes] = field(default_factory=list)
    """Record lines without their terminator."""
    numbers: list[int] = field(default_factory=list)
    """1-based line number in the input file of each record."""
    raw_bytes: int = 0
    """Input bytes this batch consumed (records, blank lines and terminators), for progress."""
    problems: list[tuple[int, RecordProblem]] = field(default_factory=list)
    """Lines found bad before sending (too large), as (line number, problem)."""


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
        block = data[:cut]
        lines = block.split(b"\n")
        yield from packer.add(block, lines, number, cut + 1)
        number += len(lines)
    if carry:  # a last line without a terminator (complete or truncated: the container decides)
        yield from packer.add(carry, [carry], number, len(carry))
    yield from packer.flush()


READ_BYTES = 4 * MIB


class _Packer:
    """Accumulates record lines into MiniBatches of at most ``budget`` payload bytes."""

    def __init__(self, budget: int, limit: int) -> None:
        self.budget, self.limit = budget, limit
        self.index = 0
        self.batch = MiniBatch(0)
        self.size = 0

    def add(self, block: bytes, lines: list[bytes], first: int, raw: int) -> Iterator[MiniBatch]:
        """Pack ``lines`` (``block`` split on "\\n"; numbers ``first + 1`` on; ``raw`` input bytes)."""
        self.batch.raw_bytes += raw
        if b"\r" in block:  # CRLF files: the terminator is not part of the record
            lines = [line[:-1] if line.endswith(b"\r") else line for line in lines]
        numbers: list[int] | range = range(first + 1, first + 1 + len(lines))
        if not all(lines) or lines[0].isspace() or _BLANK_LINE.search(block) is not None:
            kept = [(n, line) for n, line in zip(numbers, lines, strict=True) if line.strip()]
            numbers, lines = [n for n, _ in kept], [line for _, line in kept]
        # ends[i]: payload bytes of lines[:i], each with its "\n".
        ends = _ends(lines)
        start = 0
        while start < len(lines):
            room = self.budget - self.size
            stop = bisect_right(ends, ends[start] + room) - 1
            if stop > start:
                self.batch.lines.extend(lines[start:stop])
                self.batch.numbers.extend(numbers[start:stop])
                self.size += ends[stop] - ends[start]
                start = stop
                continue
            if self.batch.lines:  # full: start the next batch
                yield self._next()
                continue
            # An empty batch cannot take this line: it alone is over the limit.
            cost = ends[start + 1] - ends[start]
            problem = RecordProblem(
                None,
                "record_too_large",
                f"the line is {cost} bytes; with the header it exceeds MaxPayloadInMB ({self.limit} bytes)",
            )
            self.batch.problems.append((numbers[start], problem))
            yield self._next()
            start += 1

    def flush(self) -> Iterator[MiniBatch]:
        if self.batch.lines or self.batch.problems or self.batch.raw_bytes:
            yield self._next()

    def _next(self) -> MiniBatch:
        done = self.batch
        self.index += 1
        self.batch, self.size = MiniBatch(self.index), 0
        return done


def _ends(lines: list[bytes]) -> list[int]:
    """``ends[i]``: the payload bytes of ``lines[:i]``, each line with its "\\n" (C-level loops)."""
    lengths = list(accumulate(map(len, lines), initial=0))
    return list(map(add, lengths, range(len(lengths))))


_BLANK_LINE = re.compile(rb"\n[ \t\r\f\v]+(?=\n|\Z)")
"""A whitespace-only line after the first (a literal start: the search jumps from newline to newline)."""


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
