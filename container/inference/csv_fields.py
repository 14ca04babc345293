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

PADDING = 72
"""Zero bytes after the body: reading a field's first 64 bytes (8 words) stays inside the words."""

_COMMA, _NEWLINE = ord(","), ord("\n")


class _Buffer:
    """The body's bytes, and their 8-byte words once somebody reads words (shared by every block)."""

    def __init__(self, padded: bytes) -> None:
        self.padded = padded
        self.n_words = (len(padded) - 7) // 8

    @cached_property
    def shifted_words(self) -> np.ndarray:
        """The bytes as 8-byte little-endian words at each of the 8 byte offsets, flattened.

        Row ``r`` holds the words starting at bytes ``r, r + 8, r + 16, ...``, so the 8 bytes at any
        position are one aligned read (see :meth:`CsvFields.word_index`). Gathering from an
        unaligned view instead is ~20 times slower.
        """
        source = np.frombuffer(self.padded, dtype=np.uint8)
        shifted = np.empty((8, self.n_words), dtype="<u8")
        as_bytes = shifted.view(np.uint8).reshape(8, 8 * self.n_words)
        for offset in range(8):
            as_bytes[offset] = source[offset : offset + 8 * self.n_words]
        return shifted.reshape(-1)


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

    @property
    def shifted_words(self) -> np.ndarray:
        """The body's 8-byte words at every byte offset (see :meth:`word_index`)."""
        return self.buffer.shifted_words

    def word_index(self, positions: np.ndarray) -> np.ndarray:
        """Where in :attr:`shifted_words` the 8 bytes starting at each of ``positions`` are."""
        return (positions & 7) * self.buffer.n_words + (positions >> 3)


def locate_fields(body: bytes) -> CsvFields | None:
    """The fields of ``body`` (a UTF-8 CSV body, header included) if it is plain CSV, else None.

    Plain means: no quote, no NUL, no line break but LF or CRLF, at least two fields on the first
    line and exactly as many on every line, so no line is blank either.
    """
    if b'"' in body or b"\x00" in body:
        return None
    if b"\r" in body:
        body = body.replace(b"\r\n", b"\n")
        if b"\r" in body:
            return None
    if not body.endswith(b"\n"):
        body += b"\n"
    first_line_end = body.index(b"\n")
    width = body.count(b",", 0, first_line_end) + 1
    n_lines = body.count(b"\n")
    if width < 2 or (body.count(b",") + n_lines) != width * n_lines:
        return None
    padded = body + bytes(PADDING)
    buffer = np.frombuffer(padded, dtype=np.uint8, count=len(body))
    separators = np.flatnonzero((buffer == _COMMA) | (buffer == _NEWLINE)).reshape(n_lines, width)
    if not (buffer[separators[:, -1]] == _NEWLINE).all():  # then some line has a comma too many
        return None
    starts = np.empty((width, n_lines), dtype=np.intp)
    starts[0, 0] = 0
    starts[0, 1:] = separators[:-1, -1] + 1
    starts[1:] = separators[:, :-1].T + 1
    lengths = separators.T - starts
    return CsvFields(_Buffer(padded), starts, np.ascontiguousarray(lengths))
