"""A column held as its distinct values plus one code per row, like ``pandas.Categorical``.

The serving container's columnar CSV path produces categorical columns this way (a column of
10,000 cells usually holds a few dozen distinct texts), so that whatever maps values to something
else (the ONNX graph cut's one-hot codes) maps each *distinct* value once. Everything else sees an
ordinary sequence of values.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, overload

import numpy as np


class CodedColumn(Sequence[Any]):
    """``values[codes[i]]`` is row i's value; ``values`` is a 1-d object array, never modified."""

    __slots__ = ("codes", "values")

    def __init__(self, values: np.ndarray, codes: np.ndarray) -> None:
        self.values = values
        self.codes = codes

    def __len__(self) -> int:
        return len(self.codes)

    @overload
    def __getitem__(self, index: int) -> Any: ...
    @overload
    def __getitem__(self, index: slice) -> CodedColumn: ...
    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return CodedColumn(self.values, self.codes[index])
        return self.values[self.codes[index]]

    def __iter__(self) -> Iterator[Any]:
        return iter(self.values.take(self.codes).tolist())

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        taken = self.values.take(self.codes)
        return taken if dtype is None else taken.astype(dtype)

    def map_values(self, function: Callable[[Any], Any], dtype: Any) -> np.ndarray:
        """``function`` of every row's value, calling it once per distinct value."""
        return np.array([function(value) for value in self.values.tolist()], dtype=dtype).take(self.codes)

    def count(self, value: Any) -> int:
        """How many rows hold ``value``."""
        matches = [i for i, v in enumerate(self.values.tolist()) if v is value or v == value]
        return int(np.isin(self.codes, matches).sum()) if matches else 0

    def __repr__(self) -> str:
        return f"CodedColumn({list(self)!r})"
