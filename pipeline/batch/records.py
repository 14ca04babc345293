"""Input records: format, header and the split of each line into caller ID columns and model features.

This is the local equivalent of Batch Transform's ``InputFilter`` (what the model sees) plus the
bookkeeping ``JoinSource=Input`` needs (what is put back next to each prediction).

* CSV: ID columns are positions (``0``) or, when the file has a header, names (``customer_id``). The
  header is recognised by the container's own rule: a first line with any cell naming a schema column.
* JSON Lines: ID columns are keys of each object; they are removed before the record is sent.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from operator import itemgetter, methodcaller
from pathlib import PurePath

import orjson

from pipeline.schema import DROPPED_COLUMNS, SCHEMA

CSV = "text/csv"
JSONLINES = "application/jsonlines"
FORMATS = (CSV, JSONLINES)
_EXTENSIONS = {".csv": CSV, ".jsonl": JSONLINES, ".jsonlines": JSONLINES, ".ndjson": JSONLINES}

HEADER_NAMES = frozenset(SCHEMA.names) | frozenset(DROPPED_COLUMNS) | {SCHEMA.target}
"""Cells that make a first CSV line a header (the same set the container uses)."""


class RecordProblem(Exception):
    """One line cannot be turned into a request record; ``problem`` is a snake_case code."""

    def __init__(self, field: str | None, problem: str, message: str) -> None:
        super().__init__(message)
        self.field, self.problem, self.message = field, problem, message


def format_of(path: PurePath, content_type: str | None) -> str:
    """The input format: ``content_type`` if given, else from the file extension (default CSV)."""
    if content_type:
        if content_type not in FORMATS:
            raise ValueError(f"content type {content_type!r} is not one of {', '.join(FORMATS)}")
        return content_type
    suffixes = [s.lower() for s in path.suffixes if s.lower() != ".gz"]
    return _EXTENSIONS.get(suffixes[-1] if suffixes else "", CSV)


def csv_cells(line: bytes) -> list[str]:
    """The cells of one CSV line (quotes honoured)."""
    return next(csv.reader([line.decode("utf-8", errors="replace")]), [])


def is_header(first_line: bytes, fmt: str) -> bool:
    """True when ``first_line`` of a CSV input is a header (any cell names a schema column)."""
    if fmt != CSV or len(first_line) > MAX_HEADER_BYTES:
        return False
    try:
        return any(cell.strip() in HEADER_NAMES for cell in csv_cells(first_line))
    except csv.Error:
        return False


MAX_HEADER_BYTES = 64 * 1024
"""A longer first line is a record, not a header (and the csv module limits a cell to 128 KiB)."""


@dataclass(frozen=True)
class IdColumns:
    """Which columns (CSV positions) or keys (JSON Lines) are the caller's IDs, and their names."""

    positions: tuple[int, ...] = ()
    keys: tuple[str, ...] = ()
    names: tuple[str, ...] = ()

    @property
    def any(self) -> bool:
        return bool(self.positions or self.keys)


def resolve_id_columns(spec: Sequence[str], fmt: str, header: list[str] | None) -> IdColumns:
    """Turn ``--id-columns`` tokens into positions (CSV) or keys (JSON Lines); ValueError if impossible."""
    if not spec:
        return IdColumns()
    if fmt == JSONLINES:
        return IdColumns(keys=tuple(spec), names=tuple(spec))
    positions: list[int] = []
    for token in spec:
        if token.isdigit():
            positions.append(int(token))
        elif header is not None and token in header:
            positions.append(header.index(token))
        elif header is None:
            raise ValueError(
                f"ID column {token!r}: the input has no header; give ID columns as positions (0, 1...)"
            )
        else:
            raise ValueError(f"ID column {token!r} is not in the header ({', '.join(header)})")
    if len(set(positions)) != len(positions):
        raise ValueError(f"ID columns {list(spec)} name the same column twice")
    names = tuple(header[p] if header is not None and p < len(header) else f"id{p}" for p in positions)
    return IdColumns(positions=tuple(sorted(positions)), names=names)


class CsvSplitter:
    """Splits CSV lines into (ID cells, feature cells) by position, both as CSV bytes."""

    def __init__(self, ids: IdColumns) -> None:
        self.ids = ids.positions
        self._wanted = max(self.ids) + 1 if self.ids else 0
        # The common layout, ID columns first: one bytes.split per line, no list rebuild.
        self.leading = self.ids == tuple(range(len(self.ids)))

    def split(self, line: bytes) -> tuple[bytes, bytes]:
        if not self.ids:
            return b"", line
        if b'"' in line:
            return self._split_quoted(line)
        if self.leading:
            parts = line.split(b",", len(self.ids))
            if len(parts) <= len(self.ids):
                raise self._too_short(len(parts))
            return b",".join(parts[:-1]), parts[-1]
        cells = line.split(b",")
        if len(cells) < self._wanted:
            raise self._too_short(len(cells))
        ids = b",".join(cells[p] for p in self.ids)
        chosen = set(self.ids)
        return ids, b",".join(c for i, c in enumerate(cells) if i not in chosen)

    def split_many(self, lines: list[bytes]) -> tuple[list[bytes], list[bytes]] | None:
        """Every line split at once (C-level loops) when the IDs lead and nothing is quoted; else None.

        None sends the caller to :meth:`split`, line by line, which also names a line that is short.
        """
        if not self.ids:
            return [b""] * len(lines), lines
        if not self.leading:
            return None
        if any(map(methodcaller("__contains__", b'"'), lines)):  # C-level loops, no generator frames
            return None
        parts = list(map(methodcaller("split", b",", len(self.ids)), lines))
        if min(map(len, parts), default=len(self.ids) + 1) <= len(self.ids):
            return None
        if len(self.ids) == 1:
            return list(map(itemgetter(0), parts)), list(map(itemgetter(1), parts))
        return [b",".join(p[:-1]) for p in parts], list(map(itemgetter(-1), parts))

    def _split_quoted(self, line: bytes) -> tuple[bytes, bytes]:
        try:
            cells = csv_cells(line)
        except csv.Error as exc:
            raise RecordProblem(None, "malformed_csv", f"the line is not valid CSV: {exc}") from None
        if len(cells) <= max(self.ids):
            raise self._too_short(len(cells))
        chosen = set(self.ids)
        return _csv_line([cells[p] for p in self.ids]), _csv_line(
            [c for i, c in enumerate(cells) if i not in chosen]
        )

    def _too_short(self, got: int) -> RecordProblem:
        return RecordProblem(
            None, "wrong_length", f"the line has {got} values; ID column {max(self.ids)} does not exist"
        )

    def header(self, header_line: bytes) -> tuple[bytes, bytes]:
        """The header split like a record (the ID names, the feature names sent to the container)."""
        return self.split(header_line)


class JsonLinesSplitter:
    """Splits JSON Lines objects into (ID members as JSON object body, the object without them)."""

    def __init__(self, ids: IdColumns) -> None:
        self.keys = ids.keys

    def split(self, line: bytes) -> tuple[bytes, bytes]:
        if not self.keys:
            return b"", line
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise RecordProblem(None, "invalid_json", f"the line is not valid JSON: {exc}") from None
        if not isinstance(record, dict):
            raise RecordProblem(None, "invalid_record", "a JSON Lines record must be an object")
        missing = [k for k in self.keys if k not in record]
        if missing:
            raise RecordProblem(missing[0], "missing_id", f"ID field {missing[0]!r} is missing")
        ids = {k: record.pop(k) for k in self.keys}
        return orjson.dumps(ids)[1:-1], orjson.dumps(record)

    def header(self, header_line: bytes) -> tuple[bytes, bytes]:
        raise ValueError("JSON Lines has no header")

    def split_many(self, lines: list[bytes]) -> tuple[list[bytes], list[bytes]] | None:
        """Without ID keys the lines go as they are; with them, line by line (None)."""
        return ([b""] * len(lines), lines) if not self.keys else None


def splitter_for(fmt: str, ids: IdColumns) -> CsvSplitter | JsonLinesSplitter:
    """The record splitter for ``fmt``."""
    return JsonLinesSplitter(ids) if fmt == JSONLINES else CsvSplitter(ids)


def _csv_line(cells: list[str]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow(cells)
    return out.getvalue().encode()
