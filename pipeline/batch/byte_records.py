"""A CSV mini-batch split into the container's payload and the caller's ID cells, without a line loop.

Batch Transform's ``InputFilter`` drops the caller's ID columns before the container sees a record,
and ``JoinSource=Input`` with an ``OutputFilter`` puts them back in front of the container's answer
(see :mod:`pipeline.batch.join`). For the common layout (the ID columns lead, nothing is quoted) both
are byte-range operations: each line's ID cells are the bytes up to its k-th comma, its features
the rest. numpy finds those positions for a whole mini-batch and moves the bytes with run-length
masks, so no Python object is made per line; anything else (quotes, a line with too few cells, an answer
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
    n_records: int
    id_cells: bytes
    """Every line's ID cells with the comma after them, concatenated (empty without IDs)."""
    id_lengths: np.ndarray
    """How many bytes of ``id_cells`` each line has."""

    def join(self, answer: bytes) -> bytes | None:
        """Each line's ID cells, a comma, then its answer line; None if the line counts differ."""
        if answer and not answer.endswith(b"\n"):
            answer += b"\n"
        answer_ends = np.flatnonzero(np.frombuffer(answer, dtype=np.uint8) == _NEWLINE) + 1
        if len(answer_ends) != self.n_records:
            return None
        if not self.id_cells:
            return answer
        runs = np.empty(2 * self.n_records, dtype=np.intp)
        runs[0::2] = self.id_lengths
        runs[1::2] = np.diff(answer_ends, prepend=0)
        is_id = np.repeat(np.tile(np.array([True, False]), self.n_records), runs)
        joined = np.empty(len(is_id), dtype=np.uint8)
        joined[is_id] = np.frombuffer(self.id_cells, dtype=np.uint8)
        joined[~is_id] = np.frombuffer(answer, dtype=np.uint8)
        return joined.tobytes()


def split_leading_ids(records: bytes, n_ids: int, head: bytes = b"") -> ByteSplit | None:
    """``records`` (lines each ending in a line break) split after each line's ``n_ids``-th comma.

    The payload starts with ``head`` (the header line to send, if any). None when a line is quoted
    or has no more than ``n_ids`` cells: the per-line path decides.
    """
    if b'"' in records:
        return None
    buffer = np.frombuffer(records, dtype=np.uint8)
    line_ends = np.flatnonzero(buffer == _NEWLINE)  # each line's line break
    line_starts = np.concatenate(([0], line_ends[:-1] + 1))
    if not n_ids:
        return ByteSplit(head + records, len(line_ends), b"", line_starts[:0])
    cut = _after_cells(buffer, line_starts, line_ends, n_ids)
    if cut is None:
        return None
    # Keep each line's bytes after its ID cells: runs of (ID cells and comma: drop, the rest: keep).
    runs = np.empty(2 * len(line_ends), dtype=np.intp)
    runs[0::2] = cut + 1 - line_starts
    runs[1::2] = line_ends - cut
    keep = np.repeat(np.tile(np.array([False, True]), len(line_ends)), runs)
    payload = b"".join((head, buffer[keep]))  # one copy of the kept bytes, the header in front
    id_cells = buffer[np.logical_not(keep, out=keep)].tobytes()
    return ByteSplit(payload, len(line_ends), id_cells, runs[0::2])


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
