"""Unit tests of Content-Type parsing and Accept negotiation."""

from __future__ import annotations

import pytest
from inference.content_types import CSV, JSON, JSONLINES, negotiate_accept, parse_media_type, request_format
from inference.errors import NotAcceptable, UnsupportedMediaType


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, JSON),
        ("", JSON),
        ("application/json", JSON),
        ("Application/JSON; charset=UTF-8", JSON),
        ("text/csv", CSV),
        ("text/csv; charset=utf-8", CSV),
        ('text/csv;charset="utf-8"', CSV),
        ("text/csv; header=present", CSV),
        ("application/jsonlines", JSONLINES),
        ("application/x-jsonlines", JSONLINES),
        ("application/json-lines", JSONLINES),
        ("application/x-ndjson", JSONLINES),
    ],
)
def test_request_format_accepts_supported_types_and_parameters(header: str | None, expected: str) -> None:
    assert request_format(header) == expected


@pytest.mark.parametrize(
    "header", ["application/xml", "text/plain", "application/x-www-form-urlencoded", "csv"]
)
def test_request_format_rejects_unsupported_types_naming_them(header: str) -> None:
    with pytest.raises(UnsupportedMediaType) as info:
        request_format(header)
    assert header.split(";")[0] in info.value.message
    assert info.value.status == 415
    assert "text/csv" in info.value.details[0]["supported"]


def test_request_format_rejects_non_utf8_charset() -> None:
    with pytest.raises(UnsupportedMediaType, match="charset 'latin-1'"):
        request_format("text/csv; charset=latin-1")


def test_parse_media_type_handles_quoted_parameters() -> None:
    media = parse_media_type('text/csv; q=0.5; note="a;b, c"')
    assert media is not None
    assert media.essence == "text/csv"
    assert media.params == {"q": "0.5", "note": "a;b, c"}
    assert parse_media_type("nonsense") is None


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, JSON),
        ("", JSON),
        ("*/*", JSON),
        ("application/*", JSON),
        ("text/*", CSV),
        ("text/csv", CSV),
        ("text/csv; charset=utf-8", CSV),
        ("application/jsonlines", JSONLINES),
        ("application/json, text/csv", JSON),
        ("text/csv, application/json", CSV),  # equal quality: the client's order decides
        ("application/json;q=0.5, text/csv", CSV),
        ("text/csv;q=0.2, application/jsonlines;q=0.9, */*;q=0.1", JSONLINES),
        ("text/html, */*;q=0.8", JSON),  # only a wildcard matches: the default
        ("application/json;q=0, */*", CSV),  # default excluded explicitly
        ("text/html, text/csv;q=0.1", CSV),
        ("garbage, text/csv", CSV),
        ("TEXT/CSV", CSV),
    ],
)
def test_negotiate_accept(accept: str | None, expected: str) -> None:
    assert negotiate_accept(accept) == expected


def test_negotiate_accept_uses_configured_default_for_wildcards() -> None:
    assert negotiate_accept("*/*", default=CSV) == CSV
    assert negotiate_accept(None, default=JSONLINES) == JSONLINES
    assert negotiate_accept("application/*", default=CSV) == JSON


@pytest.mark.parametrize("accept", ["text/html", "image/png, text/plain", "application/json;q=0", "*/*;q=0"])
def test_negotiate_accept_unsatisfiable_is_406_naming_the_header(accept: str) -> None:
    with pytest.raises(NotAcceptable) as info:
        negotiate_accept(accept)
    assert info.value.status == 406
    assert accept in info.value.message
    assert info.value.details[0]["supported"] == [JSON, CSV, JSONLINES]
