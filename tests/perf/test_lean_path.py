"""The lean request path: the column-at-a-time CSV validation must agree exactly with the per-record
validator (same columns for valid bodies, same error for invalid ones), and encoding must not change."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
from inference.content_types import CSV, JSON, JSONLINES
from inference.decoding import decode
from inference.encoding import Labeller, encode
from inference.errors import InvalidRecords
from inference.validation import Validator

from pipeline.schema import SCHEMA, CategoricalFeature

VALIDATOR = Validator(SCHEMA)


@pytest.fixture(autouse=True)
def _plain_path_for_every_size(monkeypatch: pytest.MonkeyPatch) -> None:
    """Small bodies normally skip the plain path (it pays off from 64 lines); these tests need it."""
    monkeypatch.setattr("inference.decoding.PLAIN_MIN_LINES", 1)


def _columnar(decoded):
    """The columnar validator's verdict on a decoded body (None: it leaves the body to the slow path)."""
    if not decoded.plain:
        return None
    return VALIDATOR._columnar.validate(decoded.columns, decoded.fields)


def _rng(seed: int) -> random.Random:
    return random.Random(seed)  # noqa: S311 - reproducible test data, not security


def _decode(body: str):
    return decode(body.encode(), CSV, VALIDATOR.names, VALIDATOR.header_names)


def _outcome(body: str, *, fast: bool, monkeypatch: pytest.MonkeyPatch):
    """(columns, unknown counts) or the InvalidRecords message and details, via one path."""
    with monkeypatch.context() as patch:
        if not fast:
            patch.setattr(VALIDATOR._columnar, "validate", lambda _h, _c: None)
        try:
            batch = VALIDATOR.validate(_decode(body))
        except InvalidRecords as exc:
            return ("invalid", exc.message, exc.details)
    # Both paths' values, compared as plain lists (the fast path gives NaN for a missing number).
    columns = {
        name: [None if isinstance(v, float) and math.isnan(v) else v for v in values]
        for name, values in batch.columns.items()
    }
    return ("ok", columns, batch.unknown_categories, batch.n_records)


def _random_value(rng: random.Random, feature, valid: bool) -> str:
    roll = rng.random()
    if roll < 0.1:
        return rng.choice(["", "?", " ? ", "  ", "nan"] if feature.kind == "numeric" else ["", "?", " ? "])
    if feature.kind == "numeric":
        if not valid and roll < 0.2:
            return rng.choice(["forty", "1e400", str(feature.maximum + 1), "-5", "inf", "0x10"])
        value = rng.uniform(feature.minimum, feature.maximum)
        return rng.choice([f"{value:.0f}", f" {value:.2f} ", f"{value:e}", f"{int(value)}"])
    assert isinstance(feature, CategoricalFeature)
    if roll < 0.15:
        return rng.choice(["Astronaut", " Private ", "private", "Ünïcødé"])
    return rng.choice(feature.categories)


def _body(rng: random.Random, rows: int, valid: bool, header: bool) -> str:
    names = list(SCHEMA.names)
    if header:
        names = [n for n in names if not (SCHEMA.feature(n).optional and rng.random() < 0.3)]
        rng.shuffle(names)
    lines = [",".join(names)] if header else []
    for _ in range(rows):
        cells = [_random_value(rng, SCHEMA.feature(n), valid) for n in names]
        if not valid and rng.random() < 0.05:
            cells = cells[:-1]
        lines.append(",".join(f'"{c}"' if "," in c else c for c in cells))
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("seed", range(40))
def test_fast_and_per_record_validation_agree(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = _rng(seed)
    body = _body(rng, rows=rng.choice([1, 2, 30]), valid=seed % 2 == 0, header=seed % 4 < 2)
    fast = _outcome(body, fast=True, monkeypatch=monkeypatch)
    assert fast == _outcome(body, fast=False, monkeypatch=monkeypatch)


def test_valid_bodies_take_the_fast_path() -> None:
    body = _body(_rng(1), rows=200, valid=True, header=False)
    assert _columnar(_decode(body)) is not None
    with_header = _body(_rng(2), rows=50, valid=True, header=True)
    assert _columnar(_decode(with_header)) is not None


@pytest.mark.parametrize(
    "body",
    [
        "39,State-gov,13,Never-married,Adm-clerical,Not-in-family,White,Male,2174,0,40\n",  # a value short
        "forty,State-gov,13,Never-married,Adm-clerical,Not-in-family,White,Male,2174,0,40,United-States\n",
        "39,State-gov,13,Never-married,Adm-clerical,Not-in-family,White,Male,2174,0,400,United-States\n",
        "age,fnlwgt\n39,1\n",
        "age,workclass\n39,Private\n",  # required columns missing
    ],
)
def test_anything_doubtful_goes_to_the_per_record_validator(body: str) -> None:
    decoded = _decode(body)
    assert _columnar(decoded) is None
    with pytest.raises(InvalidRecords):
        VALIDATOR.validate(decoded)


def test_encoding_is_unchanged_by_the_fast_conversion() -> None:
    labeller = Labeller(0.5, ">50K", "<=50K")
    probabilities = np.array([0.5, 0.4999999999, 0.123456789012345678, 1.0, 0.0])
    body = encode(probabilities, labeller, JSON)
    assert body == (
        b'{"predictions":[{"label":">50K","probability":0.5},{"label":"<=50K","probability":0.4999999999},'
        b'{"label":"<=50K","probability":0.12345678901234568},{"label":">50K","probability":1.0},'
        b'{"label":"<=50K","probability":0.0}]}'
    )
    assert encode(probabilities[:2], labeller, CSV) == b">50K,0.5\n<=50K,0.4999999999\n"


@pytest.mark.parametrize("n_rows", [0, 1, 3, 4])
def test_encoding_in_pieces_matches_one_piece(monkeypatch: pytest.MonkeyPatch, n_rows: int) -> None:
    """Large answers are encoded a chunk of rows at a time; the bytes must be those of one piece."""
    import orjson

    labeller = Labeller(0.5, ">50K", "<=50K")
    probabilities = np.array([0.25, 0.75, 1e-7, 0.5][:n_rows])
    monkeypatch.setattr("inference.encoding.ENCODE_CHUNK_ROWS", 2)  # pieces of 2 rows, a last one of 1
    predictions = [
        {"label": ">50K" if p >= 0.5 else "<=50K", "probability": p} for p in probabilities.tolist()
    ]
    assert encode(probabilities, labeller, JSON) == orjson.dumps({"predictions": predictions})
    assert encode(probabilities, labeller, JSONLINES) == (
        b"".join(orjson.dumps(p) + b"\n" for p in predictions) or b"\n"
    )
    assert encode(probabilities, labeller, CSV) == b"".join(
        f"{p['label']},".encode() + orjson.dumps(p["probability"]) + b"\n" for p in predictions
    )
    if n_rows == 3:
        assert encode(probabilities, labeller, CSV) == b"<=50K,0.25\n>50K,0.75\n<=50K,1e-7\n"
