"""Exact lookup of a whole column of CSV fields in a table of the distinct texts seen so far.

A column of a real batch repeats a few hundred distinct texts (ages, hours, category names). Each
field is read as its bytes, zero-padded into 8-byte words (a body with a NUL never gets here, so
padding cannot make two different texts equal) and hashed with a few vectorised multiply-adds. The
hash picks the one candidate entry (a collision-free slot table while the table is small, binary
search after that), and the field is then *compared word for word* with it, so a hash collision can
only make a lookup miss, never return the wrong entry. Misses are resolved in Python once per
distinct text and added to the table.
"""

from __future__ import annotations

import random

import numpy as np

from inference.csv_fields import CsvFields

MAX_WORDS = 8
"""Texts up to 64 bytes are looked up vectorised; longer ones (rare, and never a category name) one by one."""

_LENGTH_FACTOR = np.uint64(0x9E3779B97F4A7C15)
_WORD_FACTORS = np.array(
    [0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0xD6E8FEB86659FD93, 0xFF51AFD7ED558CCD,
     0xC4CEB9FE1A85EC53, 0x94D049BB133111EB, 0xBF58476D1CE4E5B9, 0x27D4EB2F165667C5],
    dtype=np.uint64,
)  # fmt: skip
_MASKS = np.array([(1 << (8 * n)) - 1 for n in range(8)] + [(1 << 64) - 1], dtype=np.uint64)
"""Little-endian masks keeping a word's first n bytes."""


def field_words(fields: CsvFields, columns: np.ndarray, lengths: np.ndarray, n_words: int) -> np.ndarray:
    """``[n_words, column, row]``: each field of ``columns`` (``lengths`` bytes) in zero-padded words."""
    out = fields.words(n_words, columns)
    remaining = lengths.copy()
    for k in range(n_words):
        out[k] &= _MASKS.take(np.maximum(np.minimum(remaining, 8), 0))  # the field's bytes in word k
        remaining -= 8
    return out


def field_hashes(padded_words: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """A 64-bit hash per field, from its padded words and length (zero words add nothing)."""
    hashes = lengths.astype(np.uint64) * _LENGTH_FACTOR
    for k in range(padded_words.shape[0]):
        hashes += padded_words[k] * _WORD_FACTORS[k]
    return hashes


class _DirectSlots:
    """A collision-free slot per entry: ``slot = (hash * multiplier) >> shift`` (perfect hashing)."""

    MAX_ENTRIES = 256
    """Larger tables use binary search instead (the slot array grows as entries squared: <= 1 MiB)."""

    def __init__(self, multiplier: np.uint64, shift: np.uint64, entry_at: np.ndarray) -> None:
        self.multiplier, self.shift, self.entry_at = multiplier, shift, entry_at

    @classmethod
    def find(cls, hashes: np.ndarray, entries: np.ndarray, sentinel: int) -> _DirectSlots | None:
        """Slots for ``hashes`` (of ``entries``), empty slots holding ``sentinel``; None if too big."""
        n = len(hashes)
        if n > cls.MAX_ENTRIES or _distinct(hashes) != n:
            return None
        bits = max(6, (n * n).bit_length())  # ~n² slots: a random multiplier works ~60 % of tries
        shift = np.uint64(64 - bits)
        for multiplier in _MULTIPLIERS:
            slots = (hashes * multiplier) >> shift
            if _distinct(slots) == n:
                entry_at = np.full(1 << bits, sentinel, dtype=np.intp)
                entry_at[slots.astype(np.intp)] = entries
                return cls(multiplier, shift, entry_at)
        return None

    def candidates(self, hashes: np.ndarray) -> np.ndarray:
        """The only entry each hash can be (or the sentinel)."""
        return self.entry_at.take(((hashes * self.multiplier) >> self.shift).astype(np.intp))


def _odd_multipliers(count: int, seed: int) -> np.ndarray:
    """``count`` fixed odd 64-bit multipliers. The standard library's generator: importing
    ``numpy.random`` took ~10 ms of the server's start-up. Fixed, as numpy's seeded ones were: the
    slot tables are built from the schema's values, not from requests."""
    rng = random.Random(seed)  # noqa: S311 - reproducible, not a secret
    return np.array([2 * rng.randrange(1, 2**63) + 1 for _ in range(count)], dtype=np.uint64)


_MULTIPLIERS = _odd_multipliers(64, seed=0x5EED)
"""Tried in turn for a collision-free slot table."""


class KeyTable:
    """Distinct byte strings, each with an entry number, looked up a column at a time."""

    def __init__(self) -> None:
        self.entries: dict[bytes, int] = {}
        """Text -> entry number, in the order added."""
        self._hashes = np.empty(0, dtype=np.uint64)
        self._lengths = np.full(1, -1, dtype=np.intp)
        """Per entry, then one sentinel that matches nothing; -1 too for a text too long to look up."""
        self._words = np.zeros((0, 1), dtype=np.uint64)
        self._sorted_hashes = np.empty(0, dtype=np.uint64)
        self._entry_at = np.empty(0, dtype=np.intp)
        self._slots: _DirectSlots | None = None

    def __len__(self) -> int:
        return len(self.entries)

    def add(self, texts: list[bytes]) -> None:
        """Give each new text in ``texts`` the next entry number, and make it findable."""
        new = [text for text in dict.fromkeys(texts) if text not in self.entries]
        if not new:
            return
        for text in new:
            self.entries[text] = len(self.entries)
        n = len(self.entries)
        lengths = np.array([len(t) if len(t) <= 8 * MAX_WORDS else -1 for t in new], dtype=np.intp)
        n_words = max(self._words.shape[0], -(-int(lengths.max()) // 8))
        short = [text if len(text) <= 8 * MAX_WORDS else b"" for text in new]  # long ones: never matched
        padded = b"".join(text.ljust(8 * n_words, b"\0") for text in short)
        words = np.frombuffer(padded, dtype="<u8").astype(np.uint64).reshape(len(new), n_words).T
        grown = np.zeros((n_words, n + 1), dtype=np.uint64)  # + 1: the sentinel's column, all zero
        grown[: self._words.shape[0], : n - len(new)] = self._words[:, :-1]
        grown[:, n - len(new) : n] = words
        self._words = grown
        self._lengths = np.concatenate([self._lengths[:-1], lengths, [-1]])
        self._hashes = np.concatenate([self._hashes, field_hashes(words, lengths)])
        indexable = np.flatnonzero(self._lengths[:n] >= 0)
        order = np.argsort(self._hashes.take(indexable), kind="stable")
        self._entry_at = indexable.take(order)
        self._sorted_hashes = self._hashes.take(self._entry_at)
        self._slots = _DirectSlots.find(self._sorted_hashes, self._entry_at, sentinel=n)

    def lookup(self, padded_words: np.ndarray, lengths: np.ndarray, hashes: np.ndarray) -> np.ndarray:
        """The entry of each field, or -1 where the table does not hold its text."""
        if not self._sorted_hashes.size:
            return np.full(len(lengths), -1, dtype=np.intp)
        if self._slots is not None:
            entry = self._slots.candidates(hashes)
        else:
            position = np.searchsorted(self._sorted_hashes, hashes).clip(max=self._sorted_hashes.size - 1)
            entry = self._entry_at.take(position)
        found = self._lengths.take(entry) == lengths  # equal lengths and equal words: the same text
        for k in range(min(padded_words.shape[0], self._words.shape[0])):
            found &= self._words[k].take(entry) == padded_words[k]
        return np.where(found, entry, -1)


def _distinct(values: np.ndarray) -> int:
    """How many distinct values (``np.unique`` would import ``numpy.ma``: ~10 ms of start-up)."""
    return len(set(values.tolist()))
