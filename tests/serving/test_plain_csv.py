"""Plain CSV (no quotes, one field count) is split without the csv module: it must decode identically."""

from __future__ import annotations

import inference.decoding as decoding
import pytest
from inference.columnar import MEMO_LIMIT, ColumnarValidator
from inference.content_types import CSV
from inference.decoding import decode
from inference.errors import MalformedBody
from inference.validation import Validator

from pipeline.schema import SCHEMA

VALIDATOR = Validator(SCHEMA)
ROW = "39,State-gov,13,Never-married,Adm-clerical,Not-in-family,White,Male,2174,0,40,United-States"
HEADER = ",".join(SCHEMA.names)


def _both(body: str, monkeypatch: pytest.MonkeyPatch):
    """(rows, columns, header_given, took the plain path) via the splitter and via csv.reader."""
    outcomes = []
    for plain in (True, False):
        with monkeypatch.context() as patch:
            if not plain:
                patch.setattr(decoding, "_plain_csv_lines", lambda _text: None)
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
        (f"{ROW}\n{ROW}", True),  # no final line break
        (f"{HEADER}\n{ROW}\n", True),
        (" , , , , , , , , , , , \n", True),  # every field blank: one all-missing record
        (f"{ROW}\n\n{ROW}\n", False),  # a blank line in between: the csv module drops it
        (f"{ROW}\n   \n{ROW}\n", False),
        (f"{ROW}\r{ROW}\r", False),  # old Mac line ends
        (f'{ROW}\n"39",State-gov,13,x,y,z,White,Male,0,0,40,"United-States"\n', False),
        (f"{ROW}\n{ROW},extra\n", False),  # ragged rows
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
    assert batch.n_records == 3 and batch.columns["age"] == [39.0] * 3
    assert batch.columns["native_country"] == ["United-States"] * 3


def test_memos_stay_bounded_and_categories_are_canonical() -> None:
    validator = ColumnarValidator(SCHEMA)
    header = list(SCHEMA.names)
    rows = MEMO_LIMIT + 500
    columns = {name: [] for name in header}
    for i in range(rows):
        for name, value in zip(header, ROW.split(","), strict=True):
            columns[name].append(f" {value} " if name != "workclass" else f"Unknown-{i}")
    ages = columns["age"]
    columns["age"] = [f"{30 + (i % 50)}.{i}" for i in range(rows)]  # many distinct texts
    validated = validator.validate(header, [columns[n] for n in header])
    assert validated is not None
    assert all(len(memo) <= MEMO_LIMIT for memo in validator._memos.values())
    assert validated["age"][:2] == [30.0, 31.1] and ages[0] == " 39 "
    country = next(f for f in SCHEMA.features if f.name == "native_country")
    known = next(c for c in country.categories if c == "United-States")
    assert validated["native_country"][0] is known  # the schema's own object: later lookups are identity hits
    assert validated["workclass"][-1] == f"Unknown-{rows - 1}"


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
    assert [v for _, b in blocks for v in b.columns["age"]] == [float(20 + i % 60) for i in range(25)]
    json_body = decode(b'{"age": 30}', "application/json", VALIDATOR.names, VALIDATOR.header_names)
    assert VALIDATOR.validate_blocks(json_body, 10) is None
