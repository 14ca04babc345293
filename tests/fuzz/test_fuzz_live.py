"""Schemathesis against the live container and the live local gateway (a few hundred cases each in CI;
``bench/fuzz.py`` runs tens of thousands): no 5xx, every answer conforms to the committed OpenAPI
description, every error is a JSON body of the documented error schema."""

from __future__ import annotations

import json

import requests

from bench.fuzzing import fuzz
from bench.live import LocalPath, ServeRun
from docs.openapi.contract import CONTAINER_SPEC, GATEWAY_SPEC, assert_documented_error


def test_fuzz_the_container(live_container: ServeRun) -> None:
    result = fuzz(CONTAINER_SPEC, live_container.url, examples_per_operation=240, seed=8)
    summary = result.summary()
    assert result.failure_count == 0, json.dumps(summary, indent=1)
    assert summary["five_xx"] == 0
    assert result.by_operation["POST /invocations"] >= 200, summary
    assert {200, 400} <= set(result.statuses), summary  # both valid and invalid requests were made


def test_fuzz_the_gateway(live_gateway: LocalPath) -> None:
    result = fuzz(
        GATEWAY_SPEC,
        live_gateway.stage_url,
        examples_per_operation=200,
        headers={"x-api-key": live_gateway.api_key},
        seed=8,
    )
    summary = result.summary()
    assert result.failure_count == 0, json.dumps(summary, indent=1)
    assert summary["five_xx"] == 0
    assert result.by_operation["POST /predict"] >= 150, summary
    assert 200 in result.statuses, summary


def test_requests_outside_the_spec_still_get_documented_json_errors(live_container: ServeRun) -> None:
    """What schemathesis does not generate: unknown paths and methods, bad media types, odd Accept."""
    url = live_container.url
    cases = [
        ("GET", "/nope", {}, b"", 404),
        ("DELETE", "/invocations", {}, b"", 405),
        ("GET", "/invocations", {}, b"", 405),
        ("POST", "/ping", {}, b"", 405),
        ("POST", "/invocations", {"Content-Type": "application/xml"}, b"<a/>", 415),
        ("POST", "/invocations", {"Content-Type": "text/csv; charset=latin-1"}, b"1", 415),
        ("POST", "/invocations", {"Content-Type": "not a media type"}, b"{}", 415),
        ("POST", "/invocations", {"Accept": "image/png"}, b"{}", 406),
        ("POST", "/invocations", {"Content-Type": "application/json"}, b"\xff\xfe", 400),
        ("POST", "/invocations", {"Content-Type": "text/csv"}, b'"unterminated', 400),
        ("POST", "/invocations", {"Content-Type": "application/jsonlines"}, b"{}\n[", 400),
    ]
    for method, path, headers, body, status in cases:
        response = requests.request(method, url + path, headers=headers, data=body, timeout=10)
        assert response.status_code == status, (method, path, headers, response.status_code, response.text)
        assert_documented_error(response.content, response.headers.get("Content-Type"))
