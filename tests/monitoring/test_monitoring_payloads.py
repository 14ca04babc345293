"""The monitor reads captured bodies as the serving container does (container/inference is on the
test path): same records, same values, for every request shape the endpoint accepts."""

from __future__ import annotations

import base64
import json

import pandas as pd
import pytest
from inference.content_types import request_format
from inference.decoding import decode
from inference.validation import Validator

from pipeline.features import to_model_frame
from pipeline.monitoring.payloads import PayloadError, decode_probabilities, decode_records, payload_bytes
from pipeline.schema import EXAMPLE_RECORD, SCHEMA

RECORD = dict(EXAMPLE_RECORD)
MISSING = {**RECORD, "occupation": None, "workclass": "?"}
CSV_ROW = "52,Self-emp-inc,14,Married-civ-spouse,Exec-managerial,Husband,White,Male,15024,0,60,United-States"
BODIES = [
    ("application/json", json.dumps(RECORD)),
    ("application/json", json.dumps([RECORD, MISSING])),
    ("application/json", json.dumps({"instances": [RECORD, [RECORD[n] for n in SCHEMA.names]]})),
    ("application/jsonlines", json.dumps(RECORD) + "\n" + json.dumps(MISSING) + "\n"),
    ("text/csv", CSV_ROW + "\n31,?,10,Divorced,?,Unmarried,White,Female,0,0,25,?\n"),
    ("text/csv; charset=utf-8", ",".join(SCHEMA.names) + "\n" + CSV_ROW + "\n"),
]


def container_frame(body: bytes, content_type: str) -> pd.DataFrame:
    validator = Validator(SCHEMA)
    decoded = decode(body, request_format(content_type), SCHEMA.names, validator.header_names)
    return to_model_frame(validator.validate(decoded).columns, SCHEMA)


@pytest.mark.parametrize(("content_type", "text"), BODIES)
def test_the_monitor_and_the_container_read_the_same_records(content_type: str, text: str) -> None:
    body = text.encode()
    pd.testing.assert_frame_equal(
        decode_records(body, content_type, SCHEMA), container_frame(body, content_type)
    )


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/json", b'{"predictions": [{"label": ">50K", "probability": 0.8}, {"label": "<=50K", '
         b'"probability": 0.1}]}'),
        ("application/jsonlines", b'{"label": ">50K", "probability": 0.8}\n'
         b'{"label": "<=50K", "probability": 0.1}\n'),
        ("text/csv", b">50K,0.8\n<=50K,0.1\n"),
    ],
)  # fmt: skip
def test_predictions_in_every_response_type(content_type: str, body: bytes) -> None:
    assert decode_probabilities(body, content_type) == [0.8, 0.1]


def test_base64_payloads_are_decoded() -> None:
    payload = {"data": base64.b64encode(b"1,2").decode(), "encoding": "BASE64"}
    assert payload_bytes(payload) == b"1,2"
    with pytest.raises(PayloadError, match="not valid base64"):
        payload_bytes({"data": "***", "encoding": "BASE64"})


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        (b"{", "application/json", "not valid JSON"),
        (b"x", "application/x-npy", "not one the endpoint reads"),
        (b'{"age": "old"}', "application/json", "feature 'age' is numeric"),
    ],
)
def test_unreadable_bodies_raise_payload_error(body: bytes, content_type: str, message: str) -> None:
    with pytest.raises(PayloadError, match=message):
        decode_records(body, content_type, SCHEMA)
