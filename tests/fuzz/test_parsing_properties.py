"""Hypothesis properties of the container's parsers: media types and Accept negotiation, and the JSON,
CSV and JSON Lines decoders. Round trips hold, and no input raises anything but the typed client errors."""

from __future__ import annotations

import csv
import io
import json

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from inference.content_types import (
    INPUT_ALIASES,
    OUTPUT_TYPES,
    MediaType,
    negotiate_accept,
    parse_media_type,
    request_format,
)
from inference.decoding import DecodedRecords, decode
from inference.errors import MalformedBody, NotAcceptable, ServingError, UnsupportedMediaType
from inference.validation import Validator

from docs.openapi.contract import assert_documented_error
from pipeline.schema import SCHEMA

PROPERTIES = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TOKEN_CHARS = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
tokens = st.text(alphabet=TOKEN_CHARS, min_size=1, max_size=12)
header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=80)
NAMES = list(SCHEMA.names)
HEADER_NAMES = Validator(SCHEMA).header_names


def _case_variants(text: str) -> st.SearchStrategy[str]:
    return st.lists(st.booleans(), min_size=len(text), max_size=len(text)).map(
        lambda flips: "".join(c.upper() if f else c for c, f in zip(text, flips, strict=True))
    )


# --- media types -----------------------------------------------------------------------------


@PROPERTIES
@given(tokens, tokens, st.dictionaries(tokens.filter(lambda t: t.lower() != "q"), tokens, max_size=3))
def test_media_type_round_trips(type_: str, subtype: str, params: dict[str, str]) -> None:
    text = f"{type_}/{subtype}" + "".join(f"; {k}={v}" for k, v in params.items())
    parsed = parse_media_type(text)
    assert isinstance(parsed, MediaType)
    assert parsed.essence == f"{type_}/{subtype}".lower()
    assert parsed.params == {k.lower(): v for k, v in params.items()}


@PROPERTIES
@given(tokens, tokens, st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=20))
def test_quoted_parameter_values_round_trip(type_: str, subtype: str, value: str) -> None:
    quoted = '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    parsed = parse_media_type(f"{type_}/{subtype}; name={quoted}")
    assert parsed is not None and parsed.params == {"name": value}


@PROPERTIES
@given(st.text(max_size=100))
def test_parse_media_type_never_raises(text: str) -> None:
    parsed = parse_media_type(text)
    assert parsed is None or isinstance(parsed, MediaType)


@PROPERTIES
@given(st.one_of(st.none(), st.text(max_size=100), header_text))
def test_request_format_is_a_canonical_format_or_a_415(header: str | None) -> None:
    try:
        fmt = request_format(header)
    except UnsupportedMediaType as error:
        assert error.status == 415 and error.details
    else:
        assert fmt in set(INPUT_ALIASES.values())


@PROPERTIES
@given(
    st.sampled_from(sorted(INPUT_ALIASES)).flatmap(_case_variants),
    st.sampled_from(["", " ", "  "]),
    st.data(),
)
def test_every_alias_in_any_case_with_utf8_charset_is_its_canonical_format(
    alias: str, space: str, data: st.DataObject
) -> None:
    charset = data.draw(st.sampled_from(["", "; charset=utf-8", ';charset="UTF-8"', "; Charset=us-ascii"]))
    assert request_format(f"{space}{alias}{space}{charset}") == INPUT_ALIASES[alias.lower()]


@PROPERTIES
@given(st.one_of(st.none(), st.text(max_size=120), header_text))
def test_negotiate_accept_yields_an_offered_type_or_a_406(accept: str | None) -> None:
    try:
        chosen = negotiate_accept(accept)
    except NotAcceptable as error:
        assert error.status == 406
    else:
        assert chosen in OUTPUT_TYPES


@PROPERTIES
@given(st.permutations(OUTPUT_TYPES), st.lists(st.integers(1, 1000), min_size=3, max_size=3, unique=True))
def test_accept_picks_the_highest_quality(order: list[str], weights: list[int]) -> None:
    qualities = [w / 1000 for w in weights]
    accept = ", ".join(f"{media};q={q:.3f}" for media, q in zip(order, qualities, strict=True))
    best = order[qualities.index(max(qualities))]
    assert negotiate_accept(accept) == best


@PROPERTIES
@given(st.sampled_from(OUTPUT_TYPES).flatmap(_case_variants))
def test_a_single_offered_type_in_any_case_is_chosen(media: str) -> None:
    assert negotiate_accept(media) == media.lower()


# --- decoders --------------------------------------------------------------------------------

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**53), 2**53),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
keyed_records = st.dictionaries(st.sampled_from(NAMES), json_scalars, min_size=1)
positional_records = st.lists(json_scalars, min_size=len(NAMES), max_size=len(NAMES))
records = st.lists(st.one_of(keyed_records, positional_records), min_size=1, max_size=8)


def _decode(body: bytes, fmt: str) -> DecodedRecords:
    return decode(body, fmt, NAMES, HEADER_NAMES)


@PROPERTIES
@given(records, st.sampled_from(["list", "instances"]))
def test_json_round_trip(rows: list[object], wrapping: str) -> None:
    document = rows if wrapping == "list" else {"instances": rows}
    decoded = _decode(json.dumps(document).encode(), "application/json")
    assert decoded.rows == rows
    assert decoded.columns == NAMES and not decoded.text_values


@PROPERTIES
@given(keyed_records.filter(lambda r: "instances" not in r))
def test_json_single_object_is_one_record(record: dict[str, object]) -> None:
    assert _decode(orjson.dumps(record), "application/json").rows == [record]


@PROPERTIES
@given(records, st.sampled_from([b"\n", b"\r\n"]), st.booleans())
def test_jsonlines_round_trip(rows: list[object], newline: bytes, trailing: bool) -> None:
    body = newline.join(orjson.dumps(row) for row in rows) + (newline if trailing else b"")
    assert _decode(body, "application/jsonlines").rows == rows


csv_cells = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\ufeff"), max_size=15
).filter(lambda cell: cell.strip() not in HEADER_NAMES)
csv_rows = st.lists(csv_cells, min_size=1, max_size=6).filter(
    lambda row: len(row) > 1 or row[0].strip() != ""
)


@PROPERTIES
@given(st.lists(csv_rows, min_size=1, max_size=8), st.sampled_from(["\n", "\r\n"]))
def test_csv_round_trip(rows: list[list[str]], newline: str) -> None:
    out = io.StringIO()
    # A cell holding a bare CR must be quoted; the minimal style only knows to when CR ends lines.
    quoting = csv.QUOTE_MINIMAL if newline == "\r\n" else csv.QUOTE_ALL
    csv.writer(out, lineterminator=newline, quoting=quoting).writerows(rows)
    decoded = _decode(out.getvalue().encode("utf-8"), "text/csv")
    assert decoded.rows == rows
    assert decoded.text_values and not decoded.header_given


@PROPERTIES
@given(st.lists(csv_rows, min_size=1, max_size=5), st.permutations(NAMES))
def test_csv_header_names_the_columns(rows: list[list[str]], header: list[str]) -> None:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows([header, *rows])
    decoded = _decode(out.getvalue().encode(), "text/csv")
    assert decoded.header_given and decoded.columns == header and decoded.rows == rows


@PROPERTIES
@given(st.binary(max_size=300), st.sampled_from(sorted(set(INPUT_ALIASES.values()))))
def test_any_bytes_decode_or_raise_malformed_body(body: bytes, fmt: str) -> None:
    try:
        decoded = _decode(body, fmt)
    except MalformedBody as error:
        assert error.status == 400 and error.message
    else:
        assert decoded.rows


json_documents = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@PROPERTIES
@given(
    st.one_of(
        json_documents, st.lists(st.one_of(keyed_records, positional_records, json_documents), max_size=5)
    )
)
def test_decode_then_validate_raises_only_typed_client_errors(document: object) -> None:
    """The whole request path up to scoring: any JSON document is records or a typed 4xx."""
    validator = Validator(SCHEMA)
    try:
        batch = validator.validate(_decode(orjson.dumps(document), "application/json"))
    except ServingError as error:
        assert 400 <= error.status < 500, error
        assert error.message
    else:
        assert batch.n_records >= 1
        assert set(batch.columns) == set(NAMES)
        assert all(len(values) == batch.n_records for values in batch.columns.values())


# --- the whole app, in process ---------------------------------------------------------------


@pytest.fixture(scope="module")
def client(quick_model_dir):
    from inference.app import create_app
    from inference.readiness import load_model_state
    from inference.settings import load_settings

    return create_app(load_settings({}), load_model_state(quick_model_dir)).test_client()


csv_like = st.lists(
    st.lists(
        st.one_of(csv_cells, st.sampled_from(["?", "", "39", "1e309", "nan", "-1"])), min_size=1, max_size=14
    ),
    min_size=1,
    max_size=4,
).map(lambda rows: "\n".join(",".join(row) for row in rows))
bodies = st.one_of(
    st.binary(max_size=200),
    csv_like.map(str.encode),
    st.lists(st.one_of(keyed_records, positional_records), max_size=4).map(orjson.dumps),
    st.lists(st.one_of(keyed_records, positional_records), min_size=1, max_size=4).map(
        lambda rows: b"\n".join(orjson.dumps(r) for r in rows)
    ),
)
content_types = st.one_of(
    st.sampled_from([*sorted(INPUT_ALIASES), "text/csv; charset=utf-8", "application/xml", ""]), header_text
)
accepts = st.one_of(st.none(), st.sampled_from([*OUTPUT_TYPES, "*/*", "image/png"]), header_text)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=bodies, content_type=content_types, accept=accepts)
def test_the_app_answers_any_body_with_a_prediction_or_a_typed_json_4xx(
    client, body, content_type, accept
) -> None:
    headers = {"Content-Type": content_type}
    if accept is not None:
        headers["Accept"] = accept
    response = client.post("/invocations", data=body, headers=headers)
    assert response.status_code < 500, (response.status_code, response.data[:300])
    if response.status_code >= 400:
        assert response.content_type.startswith("application/json")
        assert_documented_error(response.data, response.content_type)
