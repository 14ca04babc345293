"""Plain CSV located with numpy: where each field of each line starts and how many bytes it has.

A body with no quotes, no NUL, LF (or CRLF) line ends and the same number of fields on every line
(what batch clients and Batch Transform send) needs no CSV parser: a field is exactly the bytes
between two separators, so ``csv.reader`` would return the same cells. Finding them is a few
vectorised passes over the bytes instead of a Python object per cell; the cells' *texts* are only
ever made for the few distinct values a column holds (see :mod:`inference.field_keys`), or for
every cell when a body has to go through the per-record validator after all.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

PADDING = 80
"""Zero bytes after the body: reading 9 aligned words from any field start stays inside the buffer."""

_COMMA, _NEWLINE = ord(","), ord("\n")


class _Buffer:
    """The body's bytes, shared by every block of it."""

    def __init__(self, padded: bytes) -> None:
        self.padded = padded

    @cached_property
    def words(self) -> np.ndarray:
        """The bytes as aligned little-endian 8-byte words (a view, no copy)."""
        return np.frombuffer(self.padded, dtype="<u8", count=len(self.padded) // 8)


@dataclass(frozen=True)
class CsvFields:
    """The fields of a plain CSV body: ``starts`` and ``lengths`` are ``[width, n_rows]`` arrays."""

    buffer: _Buffer
    """The body with LF line ends, a final line break and :data:`PADDING` zero bytes."""
    starts: np.ndarray
    lengths: np.ndarray

    @property
    def width(self) -> int:
        """Fields per line."""
        return int(self.starts.shape[0])

    @property
    def n_rows(self) -> int:
        """Lines (records, or the header) held."""
        return int(self.starts.shape[1])

    def rows_between(self, first: int, stop: int) -> CsvFields:
        """Lines ``first`` up to ``stop`` (views; nothing is copied)."""
        return CsvFields(self.buffer, self.starts[:, first:stop], self.lengths[:, first:stop])

    def cell(self, column: int, row: int) -> bytes:
        """One field's bytes."""
        start = int(self.starts[column, row])
        return self.buffer.padded[start : start + int(self.lengths[column, row])]

    def row_texts(self, row: int) -> list[str]:
        """One line's fields as text."""
        return [self.cell(column, row).decode() for column in range(self.width)]

    def rows(self) -> list[list[str]]:
        """Every line's fields as text: what the per-record validator needs."""
        if not self.n_rows:
            return []
        first = int(self.starts[0, 0])
        last = int(self.starts[-1, -1] + self.lengths[-1, -1])
        return [line.split(",") for line in self.buffer.padded[first:last].decode().split("\n")]

    def words(self, n_words: int, columns: np.ndarray) -> np.ndarray:
        """``[n_words, column, row]``: the 8-byte words at each field of ``columns``, from its first byte.

        Two aligned words shifted together per word (an unaligned gather is ~20 times slower, and
        a copy of the body at every byte offset would cost 8 times its size); bytes past the
        field's end are *not* cleared here.
        """
        starts = self.starts.take(columns, axis=0).astype(np.intp)  # once: numpy indexes with intp
        aligned = self.buffer.words
        index = starts >> 3
        low_shift = ((starts & 7) * 8).astype(np.uint64)
        high_shift = np.uint64(63) - low_shift  # after a shift by 1: 64 - low_shift, 0 bits when aligned
        out = np.empty((n_words, *starts.shape), dtype=np.uint64)
        low = aligned.take(index)
        for k in range(n_words):
            high = aligned.take(index + (k + 1))
            np.right_shift(low, low_shift, out=out[k])
            out[k] |= (high << np.uint64(1)) << high_shift
            low = high
        return out


def locate_fields(body: bytes, min_lines: int = 1) -> CsvFields | None:
    """The fields of ``body`` (a UTF-8 CSV body, header included) if it is plain CSV, else None.

    Plain means: no quote, no NUL, no line break but LF or CRLF, at least two fields on the first
    line and exactly as many on every line, so no line is blank either. Bodies of fewer than
    ``min_lines`` lines give None too (a line has at least a comma, so they are cheap to rule out).
    """
    if len(body) < 2 * min_lines - 1 or b'"' in body or b"\x00" in body:
        return None
    if b"\r" in body:
        body = body.replace(b"\r\n", b"\n")
        if b"\r" in body:
            return None
    end = len(body) if body.endswith(b"\n") else len(body) + 1
    padded = body + (b"" if end == len(body) else b"\n") + bytes(PADDING)
    buffer = np.frombuffer(padded, dtype=np.uint8, count=end)
    n_lines = padded.count(b"\n", 0, end)
    width = padded.count(b",", 0, padded.index(b"\n")) + 1
    if n_lines < min_lines or width < 2:
        return None
    separators = _separators(buffer)
    if len(separators) != width * n_lines:
        return None
    separators = separators.reshape(n_lines, width)
    if not (buffer.take(separators[:, -1]) == _NEWLINE).all():  # then some line has a comma too many
        return None
    # 32-bit offsets: a body is at most a few MiB, and large ones hold millions of fields.
    starts = np.empty((width, n_lines), dtype=np.int32)
    starts[0, 0] = 0
    starts[0, 1:] = separators[:-1, -1] + 1
    starts[1:] = separators[:, :-1].T + 1
    lengths = np.empty_like(starts)
    np.subtract(separators.T, starts, out=lengths, casting="unsafe")
    return CsvFields(_Buffer(padded), starts, lengths)


SCAN_BYTES = 1 << 20
"""The body is searched for separators this many bytes at a time (bounded temporary masks)."""


def _separators(buffer: np.ndarray) -> np.ndarray:
    """Positions of every comma and line break in ``buffer``, as 32-bit offsets."""
    found = []
    for start in range(0, len(buffer), SCAN_BYTES):
        part = buffer[start : start + SCAN_BYTES]
        mask = part == _COMMA
        mask |= part == _NEWLINE
        positions = np.flatnonzero(mask).astype(np.int32)  # half the memory of numpy's int64
        positions += start
        found.append(positions)
    return np.concatenate(found) if len(found) != 1 else found[0]
