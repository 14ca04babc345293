"""A CSV mini-batch split into the container's payload and the caller's ID cells, without a line loop.

Batch Transform's ``InputFilter`` drops the caller's ID columns before the container sees a record,
and ``JoinSource=Input`` with an ``OutputFilter`` puts them back in front of the container's answer
(see :mod:`pipeline.batch.join`). For the common layout (the ID columns lead, nothing is quoted) both
are byte-range operations: each line's ID cells are the bytes up to its k-th comma, its features
the rest. numpy finds those positions for a whole mini-batch and gathers the ranges in one pass, so
no Python object is made per line; anything else (quotes, a line with too few cells, an answer
with the wrong line count) returns None and the caller uses its per-line path, which also names
the line at fault.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_COMMA, _NEWLINE = ord(","), ord("\n")


@dataclass(frozen=True)
class ByteSplit:
    """One mini-batch's payload (features, each line ending in a line break) and its ID cells."""

    payload: bytes
    records: bytes
    """The mini-batch's lines, each ending in a line break (the source of the ID cells)."""
    n_records: int
    id_starts: np.ndarray
    id_lengths: np.ndarray
    """Each line's ID cells *with* the comma after them, as ranges of ``records`` (none without IDs)."""

    def join(self, answer: bytes) -> bytes | None:
        """Each line's ID cells, a comma, then its answer line; None if the line counts differ."""
        if answer and not answer.endswith(b"\n"):
            answer += b"\n"
        answer_ends = np.flatnonzero(np.frombuffer(answer, dtype=np.uint8) == _NEWLINE) + 1
        if len(answer_ends) != self.n_records:
            return None
        if not self.id_starts.size:
            return answer
        answer_starts = np.concatenate(([0], answer_ends[:-1]))
        source = np.frombuffer(self.records + answer, dtype=np.uint8)
        starts = np.empty(2 * self.n_records, dtype=np.intp)
        lengths = np.empty(2 * self.n_records, dtype=np.intp)
        starts[0::2], lengths[0::2] = self.id_starts, self.id_lengths
        starts[1::2], lengths[1::2] = answer_starts + len(self.records), answer_ends - answer_starts
        return _gather(source, starts, lengths)


def split_leading_ids(records: bytes, n_ids: int) -> ByteSplit | None:
    """``records`` (lines joined by line breaks, no final one) split after each line's ``n_ids``-th comma.

    None when a line is quoted or has no more than ``n_ids`` cells: the per-line path decides.
    """
    if b'"' in records:
        return None
    records += b"\n"
    buffer = np.frombuffer(records, dtype=np.uint8)
    line_ends = np.flatnonzero(buffer == _NEWLINE)  # each line's line break
    line_starts = np.concatenate(([0], line_ends[:-1] + 1))
    if not n_ids:
        return ByteSplit(records, records, len(line_ends), line_starts[:0], line_starts[:0])
    cut = _after_cells(buffer, line_starts, line_ends, n_ids)
    if cut is None:
        return None
    # Keep each line's bytes after its ID cells: runs of (ID cells and comma: drop, the rest: keep).
    runs = np.empty(2 * len(line_ends), dtype=np.intp)
    runs[0::2] = cut + 1 - line_starts
    runs[1::2] = line_ends - cut
    keep = np.repeat(np.tile(np.array([False, True]), len(line_ends)), runs)
    return ByteSplit(buffer[keep].tobytes(), records, len(line_ends), line_starts, cut + 1 - line_starts)


MAX_PROBES = 64
"""ID cells longer than this (in all) are found by scanning every comma instead of probing."""


def _after_cells(
    buffer: np.ndarray, line_starts: np.ndarray, line_ends: np.ndarray, n_cells: int
) -> np.ndarray | None:
    """Each line's ``n_cells``-th comma; None if a line has fewer.

    IDs are short, so the commas are found by probing a byte further in every line still looking
    (a few passes over one index per line) rather than by listing every comma of the body.
    """
    position = line_starts.copy()
    for cell in range(n_cells):
        if cell:
            position += 1  # past the previous cell's comma
        looking = np.arange(len(position))
        for _ in range(MAX_PROBES):
            at = position.take(looking)
            if (at >= line_ends.take(looking)).any():
                return None  # a line ended first: too few cells
            looking = looking[buffer.take(at) != _COMMA]
            if not looking.size:
                break
            position[looking] += 1
        else:
            return _after_cells_by_scan(buffer, line_starts, line_ends, n_cells)
    return position


def _after_cells_by_scan(
    buffer: np.ndarray, line_starts: np.ndarray, line_ends: np.ndarray, n_cells: int
) -> np.ndarray | None:
    commas = np.flatnonzero(buffer == _COMMA)
    last = np.searchsorted(commas, line_starts) + (n_cells - 1)
    if last.size and last[-1] >= len(commas):
        return None
    cut = commas.take(last)
    return None if (cut > line_ends).any() else cut


def _gather(source: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> bytes:
    """The ranges ``source[starts[i] : starts[i] + lengths[i]]`` concatenated, in one gather.

    The byte offsets are 32-bit (a mini-batch and its answer are a few MB): 4 bytes of index per
    byte gathered, not 8.
    """
    total = int(lengths.sum())
    if not total:
        return b""
    shift = (starts - (np.cumsum(lengths) - lengths)).astype(np.int32)
    offsets = np.repeat(shift, lengths)
    offsets += np.arange(total, dtype=np.int32)
    return source.take(offsets).tobytes()
