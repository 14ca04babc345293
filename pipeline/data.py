"""Read and clean training data: the raw UCI Adult files and user CSV files in the same shape.

What the raw files really contain, and what this module does about it:

* values are separated by ``", "`` (a comma and a leading space): every value is stripped;
* ``?`` marks a missing value (only in workclass, occupation, native_country): becomes missing;
* ``adult.test`` starts with a junk line ``|1x3 Cross validator``: leading ``|`` lines are skipped;
* ``adult.test`` labels end in a full stop (``>50K.``): the stop is removed;
* both files end with blank lines: skipped.

Accepted formats (each file, gzip-compressed or not, detected from the content):

1. the raw UCI layout: no header row, the 15 columns of :data:`pipeline.schema.RAW_COLUMNS` in order;
2. CSV with a header row naming the 12 features and ``income``, in any order, optionally also the
   raw-only columns ``fnlwgt`` and ``education`` (ignored). Header names are matched ignoring case,
   and ``-``/space are read as ``_`` (so the UCI spelling ``education-num`` works).
"""

from __future__ import annotations

import gzip
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.checksums import file_sha256
from pipeline.features import to_model_frame
from pipeline.schema import (
    DROPPED_COLUMNS,
    MISSING_TOKENS,
    NEGATIVE_LABEL,
    POSITIVE_LABEL,
    RAW_COLUMNS,
    SCHEMA,
    NumericFeature,
    Schema,
)

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
"""The repository's data directory (the shipped UCI files)."""
TRAIN_FILE = DATA_DIR / "adult.data.gz"
TEST_FILE = DATA_DIR / "adult.test.gz"

_GZIP_MAGIC = b"\x1f\x8b"
# Documentation files that ship next to the data (the UCI adult.names); skipped in data channels.
DOC_SUFFIXES = (".names", ".names.gz", ".md", ".txt.md")


class DataError(ValueError):
    """Training or test data is unusable; the message names the file and the problem."""


@dataclass(frozen=True)
class Dataset:
    """A cleaned split: ``frame`` has the schema features + target label (plus any raw-only columns).

    ``X`` is the model frame (see :func:`pipeline.features.to_model_frame`), ``y`` is 1 for the
    positive label, and ``sources`` maps each file name read to the SHA-256 of its bytes.
    """

    frame: pd.DataFrame
    X: pd.DataFrame
    y: np.ndarray
    sources: dict[str, str]

    @property
    def positive_rate(self) -> float:
        return float(self.y.mean())

    def summary(self) -> dict[str, object]:
        """Row count, positive rate and file checksums, for the manifest."""
        return {"rows": len(self.y), "positive_rate": round(self.positive_rate, 6), "files": self.sources}


def load_dataset(paths: Sequence[Path] | Path, schema: Schema = SCHEMA) -> Dataset:
    """Read, clean and concatenate one or more data files into a :class:`Dataset`."""
    paths = [Path(paths)] if isinstance(paths, str | Path) else [Path(p) for p in paths]
    if not paths:
        raise DataError("no data files given")
    frames = [read_data_file(p, schema) for p in paths]
    frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    y = (frame[schema.target] == schema.positive_label).to_numpy(dtype=np.int64)
    sources = {p.name: file_sha256(p) for p in paths}
    if len(sources) != len(paths):
        # Two files with the same name in different folders: keep them apart in the manifest.
        sources = {str(p): file_sha256(p) for p in paths}
    return Dataset(frame=frame, X=to_model_frame(frame, schema), y=y, sources=sources)


def load_train(schema: Schema = SCHEMA) -> Dataset:
    """The shipped ``adult.data`` (training split)."""
    return load_dataset(TRAIN_FILE, schema)


def load_test(schema: Schema = SCHEMA) -> Dataset:
    """The shipped ``adult.test`` (held-out split, never used for fitting or choosing)."""
    return load_dataset(TEST_FILE, schema)


def data_files_in(directory: Path) -> list[Path]:
    """Data files under ``directory`` (recursively, sorted), skipping hidden and documentation files."""
    files = []
    for path in sorted(directory.rglob("*")):
        rel = path.relative_to(directory)
        if any(part.startswith(".") for part in rel.parts) or not path.is_file():
            continue
        if path.name.lower().endswith(DOC_SUFFIXES):
            continue
        files.append(path)
    return files


def read_data_file(path: Path, schema: Schema = SCHEMA) -> pd.DataFrame:
    """Read one file (raw UCI or CSV with header, gzip or plain) into a cleaned DataFrame."""
    lines = _text_lines(path)
    if not lines:
        raise DataError(f"{path.name}: no data rows")
    first = _split_fields(lines[0])
    normalised = [_normalise_name(name) for name in first]
    if _looks_like_header(normalised, schema):
        columns = _check_header(path, normalised, schema)
        body = lines[1:]
    elif len(first) == len(RAW_COLUMNS):
        columns = list(RAW_COLUMNS)
        body = lines
    else:
        raise DataError(
            f"{path.name}: unrecognised layout: the first row has {len(first)} fields and is not a header. "
            f"Expected either the raw UCI layout ({len(RAW_COLUMNS)} columns, no header) or a CSV header "
            f"naming {', '.join(schema.names)}, {schema.target}"
        )
    if not body:
        raise DataError(f"{path.name}: no data rows (only a header)")
    try:
        frame = pd.read_csv(
            io.StringIO("\n".join(body)),
            header=None,
            names=columns,
            dtype=str,
            keep_default_na=False,
            skipinitialspace=True,
            engine="c",
        )
    except (pd.errors.ParserError, ValueError) as exc:
        raise DataError(f"{path.name}: malformed CSV: {exc}") from None
    return _clean(path.name, frame, schema)


def _text_lines(path: Path) -> list[str]:
    """Non-blank lines of the file, without leading ``|`` comment lines (adult.test's first line)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path.name}: cannot read: {exc.strerror}") from None
    if raw[:2] == _GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise DataError(f"{path.name}: corrupt gzip data: {exc}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise DataError(f"{path.name}: not UTF-8 text (is it a CSV file?)") from None
    lines = [line for line in text.splitlines() if line.strip()]
    while lines and lines[0].lstrip().startswith("|"):
        lines.pop(0)
    return lines


def _split_fields(line: str) -> list[str]:
    return [field.strip().strip('"') for field in line.split(",")]


def _normalise_name(name: str) -> str:
    return name.strip().lower().replace("-", "_").replace(" ", "_")


def _looks_like_header(names: Iterable[str], schema: Schema) -> bool:
    known = set(schema.names) | {schema.target} | set(RAW_COLUMNS)
    return any(name in known for name in names)


def _check_header(path: Path, names: list[str], schema: Schema) -> list[str]:
    required = [*schema.names, schema.target]
    allowed = set(required) | set(DROPPED_COLUMNS)
    missing = [n for n in required if n not in names]
    unexpected = [n for n in names if n not in allowed]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    problems = []
    if missing:
        problems.append(f"missing column(s): {', '.join(missing)}")
    if unexpected:
        problems.append(f"unexpected column(s): {', '.join(unexpected)}")
    if duplicated:
        problems.append(f"duplicated column(s): {', '.join(duplicated)}")
    if problems:
        raise DataError(
            f"{path.name}: wrong columns: {'; '.join(problems)}. "
            f"The header must name {', '.join(required)} (optionally also {', '.join(DROPPED_COLUMNS)})"
        )
    return names


def _clean(name: str, frame: pd.DataFrame, schema: Schema) -> pd.DataFrame:
    frame = frame.apply(lambda col: col.str.strip())
    out: dict[str, object] = {}
    for feature in schema.features:
        column = frame[feature.name]
        missing = column.isna() | column.isin(MISSING_TOKENS)
        if isinstance(feature, NumericFeature):
            out[feature.name] = _numeric(name, feature, column, missing)
        else:
            out[feature.name] = column.mask(missing, np.nan)
    out[schema.target] = _labels(name, frame[schema.target], schema)
    for raw_only in DROPPED_COLUMNS:
        if raw_only in frame:
            out[raw_only] = frame[raw_only]
    return pd.DataFrame(out)


def _numeric(name: str, feature: NumericFeature, column: pd.Series, missing: pd.Series) -> pd.Series:
    values = pd.to_numeric(column.mask(missing, np.nan), errors="coerce")
    bad = values.isna() & ~missing
    if bad.any():
        row = int(bad.idxmax())
        raise DataError(
            f"{name}: column {feature.name!r} must be numeric; {int(bad.sum())} value(s) are not, "
            f"e.g. {column[row]!r} in data row {row + 1}"
        )
    out_of_range = (values < feature.minimum) | (values > feature.maximum)
    if out_of_range.any():
        row = int(out_of_range.idxmax())
        raise DataError(
            f"{name}: column {feature.name!r} must lie in [{feature.minimum:g}, {feature.maximum:g}]; "
            f"{int(out_of_range.sum())} value(s) do not, e.g. {values[row]:g} in data row {row + 1}"
        )
    return values.astype(np.float64)


def _labels(name: str, column: pd.Series, schema: Schema) -> pd.Series:
    labels = column.fillna("").str.rstrip(".").str.strip()
    valid = labels.isin([POSITIVE_LABEL, NEGATIVE_LABEL])
    if not valid.all():
        row = int((~valid).idxmax())
        raise DataError(
            f"{name}: column {schema.target!r} must be {schema.positive_label!r} or "
            f"{schema.negative_label!r}; {int((~valid).sum())} value(s) are not, "
            f"e.g. {column[row]!r} in data row {row + 1}"
        )
    return labels
