"""Plain CSV (no quotes, one field count) is split without the csv module: it must decode identically."""

from __future__ import annotations

import math

import inference.decoding as decoding
import numpy as np
import pytest
from inference.columnar import MEMO_LIMIT, ColumnarValidator
from inference.content_types import CSV
from inference.decoding import decode
from inference.errors import MalformedBody
from inference.validation import Validator

from pipeline.schema import SCHEMA

VALIDATOR = Validator(SCHEMA)


@pytest.fixture(autouse=True)
def _plain_path_for_every_size(monkeypatch: pytest.MonkeyPatch) -> None:
    """Small bodies normally skip the plain path (it pays off from 64 lines); these tests need it."""
    monkeypatch.setattr("inference.decoding.PLAIN_MIN_LINES", 1)


ROW = "39,State-gov,13,Never-married,Adm-clerical,Not-in-family,White,Male,2174,0,40,United-States"
HEADER = ",".join(SCHEMA.names)


def _both(body: str, monkeypatch: pytest.MonkeyPatch):
    """(rows, columns, header_given, took the plain path) via the splitter and via csv.reader."""
    outcomes = []
    for plain in (True, False):
        with monkeypatch.context() as patch:
            if not plain:
                patch.setattr(decoding, "locate_fields", lambda _body, _min_lines: None)
            try:
                decoded = decode(body.encode(), CSV, VALIDATOR.names, VALIDATOR.header_names)
            except MalformedBody as exc:
                outcomes.append(("malformed", exc.message))
                continue
            took_plain = decoded.plain
            outcomes.append(
                (decoded.rows, decoded.columns, decoded.header_given, decoded.n_records, took_plain)
            )
    return outcomes


@pytest.mark.parametrize(
    ("body", "plain"),
    [
        (f"{ROW}\n{ROW}\n", True),
        (f"{ROW}\r\n{ROW}\r\n", True),  # CRLF line ends
        (f"{ROW}\r\n{ROW}\n", True),  # mixed
        (f"{ROW}\n{ROW.replace('United-States', 'Ünïcødé')}\n", True),  # multi-byte UTF-8 in a field
        (f"{ROW.replace('State-gov', 'x' * 70)}\n{ROW}\n", True),  # longer than the 64 bytes read as words
        (f"{ROW}\n{ROW}", True),  # no final line break
        (f"{HEADER}\n{ROW}\n", True),
        (" , , , , , , , , , , , \n", True),  # every field blank: one all-missing record
        (f"{ROW}\n\n{ROW}\n", False),  # a blank line in between: the csv module drops it
        (f"{ROW}\n   \n{ROW}\n", False),
        (f"{ROW}\r{ROW}\r", False),  # old Mac line ends
        (f'{ROW}\n"39",State-gov,13,x,y,z,White,Male,0,0,40,"United-States"\n', False),
        (f"{ROW}\n{ROW},extra\n", False),  # ragged rows
        (f"{ROW},extra\n{ROW}\n", False),
        (f"{ROW}\n{ROW},x\n{ROW.rsplit(',', 1)[0]}\n", False),  # right separator count in all, not per line
        (f"{ROW}\x00\n{ROW}\n", False),  # NUL: the csv module refuses it
        (f"{ROW}\n39,State-gov\n", False),
    ],
)
def test_plain_split_decodes_like_the_csv_module(
    body: str, plain: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast, reference = _both(body, monkeypatch)
    assert fast[:4] == reference[:4]
    assert fast[4] is plain


@pytest.mark.parametrize("body", [f"{HEADER}\n", f"{HEADER}\r\n", "\n\n", f"{HEADER}\n\n"])
def test_bodies_without_data_rows_are_refused_alike(body: str, monkeypatch: pytest.MonkeyPatch) -> None:
    fast, reference = _both(body, monkeypatch)
    assert fast == reference
    assert fast[0] == "malformed"


def test_a_plain_body_is_validated_column_by_column() -> None:
    body = (f"{HEADER}\n" + f"{ROW}\n" * 3).encode()
    decoded = decode(body, CSV, VALIDATOR.names, VALIDATOR.header_names)
    batch = VALIDATOR.validate(decoded)
    assert decoded._rows is None  # never split into rows
    assert batch.n_records == 3 and list(batch.columns["age"]) == [39.0] * 3
    assert list(batch.columns["native_country"]) == ["United-States"] * 3


def _fields(lines: list[str]):
    decoded = decode(("\n".join(lines) + "\n").encode(), CSV, VALIDATOR.names, VALIDATOR.header_names)
    assert decoded.fields is not None
    return decoded.fields


def test_tables_stay_bounded_and_categories_are_canonical() -> None:
    validator = ColumnarValidator(SCHEMA)
    header = list(SCHEMA.names)
    cells = ROW.split(",")
    rows = MEMO_LIMIT + 500
    lines = []
    for i in range(rows):
        row = [f" {value} " for value in cells]
        row[header.index("age")] = f"{30 + (i % 50)}.{i}"  # many distinct texts
        row[header.index("workclass")] = f"Unknown-{i}"
        lines.append(",".join(row))
    for block in (lines[:MEMO_LIMIT], lines[MEMO_LIMIT:]):  # the second block starts the tables over
        result = validator.validate(header, _fields(block))
        assert result is not None
    assert all(len(table.keys) <= MEMO_LIMIT for table in validator._tables.values())
    first, second = MEMO_LIMIT, MEMO_LIMIT + 1  # the second block's first rows
    assert list(result.columns["age"][:2]) == [
        float(f"{30 + first % 50}.{first}"),
        float(f"{30 + second % 50}.{second}"),
    ]
    country = next(f for f in SCHEMA.features if f.name == "native_country")
    known = next(c for c in country.categories if c == "United-States")
    assert result.columns["native_country"][0] is known  # the schema's own object: identity hits later
    assert result.columns["workclass"][-1] == f"Unknown-{rows - 1}"
    assert result.unknown_categories == {"workclass": 500}


def test_long_texts_and_hash_twins_still_resolve_exactly(monkeypatch: pytest.MonkeyPatch) -> None:
    import inference.field_keys as field_keys

    validator = ColumnarValidator(SCHEMA)
    header = list(SCHEMA.names)
    cells = ROW.split(",")
    long_country = "Republic-of-" + "x" * 80  # longer than the 64 bytes compared as words
    spellings = ["White", " White", "White ", "Black", " ? ", ""]
    lines = []
    for i in range(120):
        row = list(cells)
        row[header.index("race")] = spellings[i % len(spellings)]
        row[header.index("native_country")] = long_country if i % 3 else "Cuba"
        row[header.index("hours_per_week")] = str(i % 99 + 1)
        lines.append(",".join(row))
    expected = VALIDATOR.validate(
        decode(("\n".join(lines) + "\n").encode(), CSV, VALIDATOR.names, VALIDATOR.header_names)
    )
    # Every text hashes alike: each lookup must still find its own entry by comparing the bytes.
    monkeypatch.setattr(field_keys, "_LENGTH_FACTOR", np.uint64(0))
    monkeypatch.setattr(field_keys, "_WORD_FACTORS", np.zeros(8, dtype=np.uint64))
    for _ in range(2):  # learning, then found in the tables
        result = validator.validate(header, _fields(lines))
        assert result is not None
        for name in header:
            got = [None if isinstance(v, float) and math.isnan(v) else v for v in result.columns[name]]
            assert got == list(expected.columns[name]), name
        assert result.unknown_categories == {"native_country": 80}


def _rows(n: int) -> list[str]:
    ages = [str(20 + i % 60) for i in range(n)]
    return [f"{age}," + ROW.split(",", 1)[1] for age in ages]


@pytest.fixture(scope="module")
def released_engine(released_model_dir):
    from inference.engine import load_engine

    return load_engine(released_model_dir, "onnx")


def _client(engine, chunk_rows: int):
    from inference.app import create_app
    from inference.readiness import ModelState
    from inference.settings import load_settings

    settings = load_settings(
        {"SERVE_SCORING_CHUNK_ROWS": str(chunk_rows), "SAGEMAKER_MODEL_SERVER_WORKERS": "2"}
    )
    return create_app(settings, ModelState(engine=engine, ready=True)).test_client()


@pytest.mark.parametrize("header", [False, True])
def test_blocks_answer_byte_for_byte_like_one_block(released_engine, header: bool) -> None:
    lines = ([HEADER] if header else []) + _rows(1000)
    lines[-1] = lines[-1].replace("State-gov", "Astronaut")  # an unknown category in the last block
    body = ("\n".join(lines) + "\n").encode()
    answers = []
    for chunk_rows in (7, 256, 100_000):  # many blocks (some of them below the tables' threshold), one
        response = _client(released_engine, chunk_rows).post(
            "/invocations", data=body, headers={"Content-Type": "text/csv", "Accept": "text/csv"}
        )
        assert response.status_code == 200, response.get_data(as_text=True)
        answers.append(response.data)
    assert answers[0] == answers[1] == answers[2]
    assert answers[0].count(b"\n") == 1000


def test_an_invalid_record_in_a_later_block_is_named_by_its_index_in_the_body(released_engine) -> None:
    rows = _rows(50)
    rows[37] = "300," + rows[37].split(",", 1)[1]
    body = ("\n".join(rows) + "\n").encode()
    response = _client(released_engine, 10).post(
        "/invocations", data=body, headers={"Content-Type": "text/csv"}
    )
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert [(d["record"], d["field"], d["problem"]) for d in error["details"]] == [
        (37, "age", "out_of_range")
    ]


def test_a_header_problem_is_reported_before_any_block_is_scored(released_engine) -> None:
    body = (HEADER.replace("age", "agee") + "\n" + "\n".join(_rows(30)) + "\n").encode()
    response = _client(released_engine, 4).post(
        "/invocations", data=body, headers={"Content-Type": "text/csv"}
    )
    assert response.status_code == 400
    assert response.get_json()["error"]["details"][0]["field"] == "agee"


def test_validate_blocks_counts_records_across_blocks() -> None:
    body = (f"{HEADER}\n" + "\n".join(_rows(25)) + "\n").encode()
    decoded = decode(body, CSV, VALIDATOR.names, VALIDATOR.header_names)
    blocks = list(VALIDATOR.validate_blocks(decoded, 10))
    assert [(start, batch.n_records) for start, batch in blocks] == [(0, 10), (10, 10), (20, 5)]
    assert [float(v) for _, b in blocks for v in b.columns["age"]] == [float(20 + i % 60) for i in range(25)]
    json_body = decode(b'{"age": 30}', "application/json", VALIDATOR.names, VALIDATOR.header_names)
    assert VALIDATOR.validate_blocks(json_body, 10) is None
