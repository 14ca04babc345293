"""Unit tests of body decoding and schema validation (no server, no model)."""

from __future__ import annotations

import pytest
from inference.content_types import CSV, JSON, JSONLINES
from inference.decoding import decode
from inference.errors import InvalidRecords, MalformedBody
from inference.validation import MAX_REPORTED_PROBLEMS, Validator

from pipeline.schema import SCHEMA

from .conftest import RECORD

VALIDATOR = Validator(SCHEMA)
CSV_ROW = "39,State-gov,13,Never-married,Adm-clerical,Not-in-family,White,Male,2174,0,40,United-States"


def run(body: bytes | str, fmt: str):
    data = body.encode() if isinstance(body, str) else body
    return VALIDATOR.validate(decode(data, fmt, VALIDATOR.names, VALIDATOR.header_names))


def expected_columns(n: int = 1) -> dict[str, list]:
    numeric = set(SCHEMA.numeric)
    return {k: [float(v) if k in numeric else v] * n for k, v in RECORD.items()}


@pytest.mark.parametrize(
    "body",
    [
        '{"age": 39, "workclass": "State-gov", "education_num": 13, "marital_status": "Never-married", '
        '"occupation": "Adm-clerical", "relationship": "Not-in-family", "race": "White", "sex": "Male", '
        '"capital_gain": 2174, "capital_loss": 0, "hours_per_week": 40, "native_country": "United-States"}',
    ],
)
def test_json_object_list_and_instances_give_the_same_columns(body: str) -> None:
    single = run(body, JSON)
    assert single.columns == expected_columns()
    assert run(f"[{body}, {body}]", JSON).columns == expected_columns(2)
    assert run(f'{{"instances": [{body}]}}', JSON).columns == expected_columns()
    assert run(f"{body}\n\n{body}\n", JSONLINES).columns == expected_columns(2)


def test_json_positional_rows_follow_schema_order() -> None:
    row = [RECORD[name] for name in SCHEMA.names]
    import orjson

    assert run(orjson.dumps([row]), JSON).columns == expected_columns()


def test_csv_without_header_single_row_with_bom_and_crlf() -> None:
    batch = run(b"\xef\xbb\xbf" + CSV_ROW.encode() + b"\r\n", CSV)
    assert batch.n_records == 1
    assert batch.columns == expected_columns()


def test_csv_with_header_in_any_order_and_optional_columns_omitted() -> None:
    names = [n for n in reversed(SCHEMA.names) if n != "occupation"]
    header = ",".join(names)
    row = ",".join(str(RECORD[n]) for n in names)
    batch = run(f"{header}\n{row}\n{row}\n", CSV)
    assert batch.n_records == 2
    assert batch.columns["occupation"] == [None, None]
    assert batch.columns["age"] == [39.0, 39.0]


def test_missing_tokens_become_none_and_unknown_categories_are_counted() -> None:
    record = {**RECORD, "workclass": "?", "age": None, "occupation": " ", "native_country": "Atlantis"}
    import orjson

    batch = run(orjson.dumps([record, {**record, "race": "Martian"}]), JSON)
    assert batch.columns["workclass"] == [None, None]
    assert batch.columns["age"] == [None, None]
    assert batch.columns["occupation"] == [None, None]
    assert batch.unknown_categories == {"native_country": 2, "race": 1}


def problems_of(body: bytes | str, fmt: str) -> list[dict]:
    with pytest.raises(InvalidRecords) as info:
        run(body, fmt)
    assert info.value.status == 400
    return [{k: p[k] for k in ("record", "field", "problem")} for p in info.value.details]


def test_each_problem_names_record_field_and_kind() -> None:
    import orjson

    good = dict(RECORD)
    missing = {k: v for k, v in RECORD.items() if k != "sex"}
    wrong_type = {**RECORD, "age": "thirty", "race": 5}
    out_of_range = {**RECORD, "hours_per_week": 200, "age": -1}
    unknown = {**RECORD, "salary": 1, "fnlwgt": 3}
    body = orjson.dumps([good, missing, wrong_type, out_of_range, unknown])
    assert problems_of(body, JSON) == [
        {"record": 1, "field": "sex", "problem": "missing_field"},
        {"record": 2, "field": "age", "problem": "wrong_type"},
        {"record": 2, "field": "race", "problem": "wrong_type"},
        {"record": 3, "field": "age", "problem": "out_of_range"},
        {"record": 3, "field": "hours_per_week", "problem": "out_of_range"},
        {"record": 4, "field": "salary", "problem": "unknown_field"},
        {"record": 4, "field": "fnlwgt", "problem": "unknown_field"},
    ]


def test_messages_explain_the_problem() -> None:
    import orjson

    with pytest.raises(InvalidRecords) as info:
        run(orjson.dumps({**RECORD, "age": 300, "fnlwgt": 1, "age_years": 3}), JSON)
    messages = {p["field"]: p["message"] for p in info.value.details}
    assert messages["age"] == "300 is outside the allowed range 0..120"
    assert "survey sampling weight" in messages["fnlwgt"]
    assert "expected fields: age, workclass" in messages["age_years"]
    assert info.value.message.startswith("3 problems in 1 of 1 record; first: record 0, field 'age'")


def test_json_strings_and_booleans_are_wrong_types_for_numbers() -> None:
    import orjson

    body = orjson.dumps([{**RECORD, "age": "39"}, {**RECORD, "age": True}, {**RECORD, "age": ""}])
    assert problems_of(body, JSON) == [
        {"record": 0, "field": "age", "problem": "wrong_type"},
        {"record": 1, "field": "age", "problem": "wrong_type"},
    ]


def test_csv_problems_wrong_length_text_in_number_and_bad_header() -> None:
    rows = f"{CSV_ROW}\n39,State-gov\nforty,State-gov,13,Never-married,,Husband,White,Male,0,0,40,\n"
    assert problems_of(rows, CSV) == [
        {"record": 1, "field": None, "problem": "wrong_length"},
        {"record": 2, "field": "age", "problem": "wrong_type"},
    ]
    header = "age,sex,income,colour\n39,Male,>50K,red\n"
    problems = problems_of(header, CSV)
    assert {"record": None, "field": "income", "problem": "unknown_field"} in problems
    assert {"record": None, "field": "colour", "problem": "unknown_field"} in problems
    assert {"record": None, "field": "race", "problem": "missing_field"} in problems


def test_problem_list_is_capped() -> None:
    body = "\n".join(["x,y"] * (MAX_REPORTED_PROBLEMS * 3))
    with pytest.raises(InvalidRecords) as info:
        run(body, CSV)
    assert len(info.value.details) == MAX_REPORTED_PROBLEMS
    assert "validation stopped" in info.value.message


@pytest.mark.parametrize(
    ("body", "fmt", "needle"),
    [
        (b"", JSON, "empty"),
        (b"  \n", CSV, "empty"),
        (b"{not json", JSON, "not valid JSON"),
        (b"[]", JSON, "no records"),
        (b'{"instances": {}}', JSON, "must be a list"),
        (b'{"instances": [], "extra": 1}', JSON, "unexpected top-level keys"),
        (b"42", JSON, "expected a JSON object"),
        (b'{"age": 1}\n{oops\n', JSONLINES, "line 2 is not valid JSON"),
        (b"\xff\xfe,1", CSV, "not valid UTF-8"),
        (b'age,sex\n"unterminated', CSV, "not valid CSV"),
        (b",".join(n.encode() for n in SCHEMA.names) + b"\n", CSV, "no data rows"),
    ],
)
def test_malformed_bodies_are_400_with_a_reason(body: bytes, fmt: str, needle: str) -> None:
    with pytest.raises(MalformedBody) as info:
        run(body, fmt)
    assert info.value.status == 400
    assert needle in info.value.message


def test_records_that_are_not_objects_or_lists() -> None:
    assert problems_of(b'[1, "x"]', JSON) == [
        {"record": 0, "field": None, "problem": "invalid_record"},
        {"record": 1, "field": None, "problem": "invalid_record"},
    ]
