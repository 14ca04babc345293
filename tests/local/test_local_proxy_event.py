"""The REST proxy event (format 1.0) the gateway builds, and the response shapes it accepts."""

from __future__ import annotations

import base64

import pytest

from pipeline.local.proxy_event import (
    ApiContext,
    Caller,
    MalformedProxyResponse,
    build_event,
    parse_response,
)

API = ApiContext(
    api_id="abc123defg", account_id="123456789012", stage="prod", domain_name="abc123defg.example"
)
CALLER = Caller(source_ip="127.0.0.1", user_agent="curl/8", api_key="secretvalue", api_key_id="k1")


def event(**overrides: object) -> dict:
    args: dict = {
        "method": "POST",
        "resource": "/predict",
        "path": "/predict",
        "query": "",
        "headers": [("Content-Type", "text/csv"), ("X-Dup", "a"), ("X-Dup", "b")],
        "body": b"1,2,3",
        "binary": False,
        "caller": CALLER,
        "api": API,
        "request_id": "req-1",
        "now": 1_795_000_000.0,
    }
    args.update(overrides)
    return build_event(**args)


def test_event_shape_matches_format_1_0() -> None:
    e = event()
    assert e["resource"] == "/predict" and e["path"] == "/predict" and e["httpMethod"] == "POST"
    assert e["headers"] == {"Content-Type": "text/csv", "X-Dup": "b"}  # last value wins, casing kept
    assert e["multiValueHeaders"] == {"Content-Type": ["text/csv"], "X-Dup": ["a", "b"]}
    assert e["queryStringParameters"] is None and e["multiValueQueryStringParameters"] is None
    assert e["pathParameters"] is None and e["stageVariables"] is None
    assert e["body"] == "1,2,3" and e["isBase64Encoded"] is False
    ctx = e["requestContext"]
    assert ctx["requestId"] == "req-1" and ctx["stage"] == "prod" and ctx["path"] == "/prod/predict"
    assert ctx["identity"]["apiKeyId"] == "k1" and ctx["identity"]["sourceIp"] == "127.0.0.1"
    assert ctx["requestTimeEpoch"] == 1_795_000_000_000
    assert ctx["requestTime"] == "18/Nov/2026:11:06:40 +0000"


def test_query_strings_and_empty_and_binary_bodies() -> None:
    e = event(query="a=1&a=2&b=", body=b"")
    assert e["queryStringParameters"] == {"a": "2", "b": ""}
    assert e["multiValueQueryStringParameters"] == {"a": ["1", "2"], "b": [""]}
    assert e["body"] is None and e["isBase64Encoded"] is False
    e = event(body=b"\x00\xff", binary=True)
    assert e["isBase64Encoded"] is True and base64.b64decode(e["body"]) == b"\x00\xff"


def test_valid_responses() -> None:
    r = parse_response({"statusCode": 201, "headers": {"X-A": "1", "X-N": 5}, "body": "hi"})
    assert (r.status, r.body) == (201, b"hi")
    assert ("X-A", "1") in r.headers and ("X-N", "5") in r.headers
    r = parse_response({"statusCode": 200, "multiValueHeaders": {"Set-Cookie": ["a=1", "b=2"]}})
    assert [v for n, v in r.headers if n == "Set-Cookie"] == ["a=1", "b=2"] and r.body == b""
    r = parse_response(
        {"statusCode": 200, "body": base64.b64encode(b"\x01").decode(), "isBase64Encoded": True}
    )
    assert r.body == b"\x01"
    r = parse_response({"statusCode": 200, "headers": {"Content-Length": "3"}, "body": "abc"})
    assert ("x-amzn-Remapped-Content-Length", "3") in r.headers


@pytest.mark.parametrize(
    ("result", "problem"),
    [
        ({"statusCode": 500, "message": "boom"}, "unexpected keys"),
        ({"body": "no status"}, "statusCode"),
        ({"statusCode": "200", "body": "x"}, "statusCode"),
        ({"statusCode": True}, "statusCode"),
        ({"statusCode": 200, "body": {"a": 1}}, "body must be a string"),
        ({"statusCode": 200, "headers": ["x"]}, "headers must be an object"),
        ({"statusCode": 200, "headers": {"X": {"nested": 1}}}, "string value"),
        ({"statusCode": 200, "multiValueHeaders": {"X": "a"}}, "must be a list"),
        ({"statusCode": 200, "body": "###", "isBase64Encoded": True}, "not base64"),
        ({"statusCode": 200, "isBase64Encoded": "yes"}, "boolean"),
        (["statusCode", 200], "not a JSON object"),
        (None, "not a JSON object"),
    ],
)
def test_malformed_responses(result: object, problem: str) -> None:
    with pytest.raises(MalformedProxyResponse, match=problem):
        parse_response(result)
