"""The Lambda proxy handler, called in-process with real REST proxy events (payload format 1.0).

Its boto3 runtime client is pointed (AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME) at a loopback server that
answers like SageMaker, so every branch runs real botocore parsing and error classes.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from fake_sagemaker_runtime import CONTAINER_400
from secret_checks import assert_absent

from lambda_proxy import runtime as proxy_runtime
from lambda_proxy.errors import is_retryable
from lambda_proxy.handler import handler
from lambda_proxy.responses import LAMBDA_RESPONSE_LIMIT_BYTES, MAX_RESPONSE_BYTES, serialized_size

API_KEY_VALUE = "Zx8TnQ2vLr5KpW7mYc4BdHs9JfGa3UeRt6VoNi1X"  # a fake key: must never reach the logs
RECORD = {"age": 39, "workclass": "State-gov", "occupation": "Adm-clerical", "hours_per_week": 40}
PAYLOAD_MARKER = "Adm-clerical"


class FakeContext:
    """The attributes of the Lambda context object the handler uses."""

    aws_request_id = "lambda-req-1"

    def __init__(self, remaining_ms: int = 28_000) -> None:
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def proxy_event(
    method: str = "POST",
    resource: str = "/predict",
    body: str | None = None,
    headers: dict[str, str] | None = None,
    base64_encoded: bool = False,
) -> dict[str, Any]:
    """A REST API proxy event as API Gateway sends it (format 1.0)."""
    headers = {"Content-Type": "application/json", "x-api-key": API_KEY_VALUE} if headers is None else headers
    return {
        "resource": resource,
        "path": resource,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "a1b2c3d4e5",
            "domainName": "a1b2c3d4e5.execute-api.us-east-1.amazonaws.com",
            "httpMethod": method,
            "identity": {
                "apiKey": API_KEY_VALUE,
                "apiKeyId": "k3y1d",
                "sourceIp": "203.0.113.7",
                "userAgent": "curl/8.5.0",
            },
            "path": f"/prod{resource}",
            "protocol": "HTTP/1.1",
            "requestId": "gw-req-42",
            "requestTime": "26/Nov/2026:10:00:00 +0000",
            "requestTimeEpoch": 1795687200000,
            "resourcePath": resource,
            "stage": "prod",
        },
        "body": body,
        "isBase64Encoded": base64_encoded,
    }


@pytest.fixture
def rt(fake_runtime_server, monkeypatch: pytest.MonkeyPatch):
    """The fake runtime, emptied, with the proxy pointed at it."""
    fake_runtime_server.requests.clear()
    fake_runtime_server.scripted.clear()
    fake_runtime_server.slow_seconds = 2.0
    fake_runtime_server.sized_bytes = 1024
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", fake_runtime_server.url)
    monkeypatch.setenv("ENDPOINT_NAME", "ok")
    return fake_runtime_server


def call(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    response = handler(event, context or FakeContext())
    assert set(response) == {"statusCode", "headers", "body", "isBase64Encoded"}, response
    assert isinstance(response["body"], str)
    return response


def error_of(response: dict[str, Any]) -> dict[str, Any]:
    assert response["headers"]["Content-Type"] == "application/json"
    body = json.loads(response["body"])
    assert set(body) == {"error"}
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return body["error"]


def log_lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    out = capsys.readouterr()
    assert_absent(API_KEY_VALUE, out.out, out.err)
    assert_absent(PAYLOAD_MARKER, out.out, out.err)
    return [json.loads(line) for line in out.out.splitlines() if line.strip()]


def test_predict_forwards_body_and_headers_case_insensitively(rt, capsys) -> None:
    body = json.dumps(RECORD)
    event = proxy_event(
        body=body,
        headers={
            "content-type": "application/json; charset=utf-8",
            "ACCEPT": "text/csv, application/json;q=0.5",
            "x-amzn-sagemaker-custom-attributes": "trace=abc",
            "X-API-Key": API_KEY_VALUE,
        },
    )
    response = call(event)
    assert response["statusCode"] == 200
    assert response["isBase64Encoded"] is False
    assert response["headers"]["Content-Type"] == "application/json"
    assert response["headers"]["X-Request-Id"] == "gw-req-42"
    assert response["headers"]["X-Amzn-SageMaker-Custom-Attributes"] == "echo=trace=abc"
    result = json.loads(response["body"])
    assert result["predictions"] == [{"label": ">50K", "probability": 0.87}]
    [seen] = rt.requests
    assert seen.path == "/endpoints/ok/invocations"
    assert seen.body == body.encode()
    assert seen.headers["content-type"] == "application/json; charset=utf-8"
    assert seen.headers["accept"] == "text/csv, application/json;q=0.5"
    assert seen.headers["x-amzn-sagemaker-custom-attributes"] == "trace=abc"
    assert "x-api-key" not in seen.headers  # the key stops at the proxy

    [line] = log_lines(capsys)
    assert line["request_id"] == "gw-req-42"
    assert line["lambda_request_id"] == "lambda-req-1"
    assert line["status"] == 200
    assert line["attempts"] == 1
    assert line["bytes_in"] == len(body)
    assert line["latency_ms"] >= line["invoke_ms"] >= 0
    assert line["api_key_id"] == "k3y1d"


def test_no_accept_header_is_not_invented(rt) -> None:
    call(proxy_event(body="39,State-gov", headers={"Content-Type": "text/csv"}))
    [seen] = rt.requests
    assert seen.headers["content-type"] == "text/csv"
    assert seen.headers.get("accept") in (None, "")


def test_base64_body_is_decoded_before_forwarding(rt) -> None:
    raw = b"age,workclass\n39,State-gov\n"
    event = proxy_event(
        body=base64.b64encode(raw).decode(), headers={"Content-Type": "text/csv"}, base64_encoded=True
    )
    assert call(event)["statusCode"] == 200
    assert rt.requests[0].body == raw


def test_invalid_base64_is_400(rt) -> None:
    response = call(proxy_event(body="not base64!!", base64_encoded=True))
    assert response["statusCode"] == 400
    assert error_of(response)["code"] == "malformed_body"
    assert rt.requests == []


def test_binary_model_output_is_base64_encoded(rt, monkeypatch) -> None:
    monkeypatch.setenv("ENDPOINT_NAME", "binary")
    response = call(proxy_event(body="{}"))
    assert response["statusCode"] == 200
    assert response["isBase64Encoded"] is True
    assert base64.b64decode(response["body"]) == b"\x93NUMPY\x00\xff"


def test_wrong_method_is_405_with_allow(rt) -> None:
    response = call(proxy_event(method="GET", body=None))
    assert response["statusCode"] == 405
    assert response["headers"]["Allow"] == "POST"
    error = error_of(response)
    assert error["code"] == "method_not_allowed"
    assert error["request_id"] == "gw-req-42"
    assert rt.requests == []


def test_unknown_route_is_404(rt) -> None:
    response = call(proxy_event(resource="/admin", body="{}"))
    assert response["statusCode"] == 404
    assert error_of(response)["code"] == "not_found"


def test_health_answers_without_calling_the_model(rt) -> None:
    response = call(proxy_event(method="GET", resource="/health", body=None, headers={}))
    assert response["statusCode"] == 200
    assert json.loads(response["body"]) == {"status": "ok"}
    assert rt.requests == []


@pytest.mark.parametrize("content_type", ["application/xml", "text/plain; charset=utf-8", "x"])
def test_unsupported_content_type_is_415(rt, content_type) -> None:
    response = call(proxy_event(body="{}", headers={"Content-Type": content_type}))
    assert response["statusCode"] == 415
    error = error_of(response)
    assert error["code"] == "unsupported_media_type"
    assert "application/json" in error["message"] and "text/csv" in error["message"]
    assert rt.requests == []


def test_missing_content_type_is_sent_as_json_like_the_container_reads_it(rt) -> None:
    assert call(proxy_event(body="{}", headers={}))["statusCode"] == 200
    assert rt.requests[0].headers["content-type"] == "application/json"


def test_allowed_content_types_are_exactly_what_the_container_decodes() -> None:
    from inference.content_types import INPUT_ALIASES

    from lambda_proxy.settings import DEFAULT_CONTENT_TYPES

    assert sorted(DEFAULT_CONTENT_TYPES) == sorted(INPUT_ALIASES)


def test_empty_body_is_400(rt) -> None:
    response = call(proxy_event(body=None))
    assert response["statusCode"] == 400
    assert "empty" in error_of(response)["message"]


def test_body_at_the_6_mb_limit_passes_and_one_byte_more_is_413(rt) -> None:
    limit = 6 * 1024 * 1024
    at_limit = "[" + " " * (limit - 2) + "]"
    assert call(proxy_event(body=at_limit))["statusCode"] == 200
    assert rt.requests[0].body == at_limit.encode()
    response = call(proxy_event(body=at_limit + " "))
    assert response["statusCode"] == 413
    error = error_of(response)
    assert error["code"] == "payload_too_large"
    assert error["details"] == [{"limit_bytes": limit, "size_bytes": limit + 1}]
    assert len(rt.requests) == 1


def test_size_limit_applies_to_decoded_base64(rt, monkeypatch) -> None:
    monkeypatch.setenv("MAX_PAYLOAD_MB", str(100 / (1024 * 1024)))  # 100 bytes
    raw = b"x" * 90  # 120 base64 characters, 90 bytes: under the limit
    event = proxy_event(
        body=base64.b64encode(raw).decode(), headers={"Content-Type": "text/csv"}, base64_encoded=True
    )
    assert call(event)["statusCode"] == 200
    event["body"] = base64.b64encode(b"x" * 101).decode()
    assert call(event)["statusCode"] == 413


def test_container_4xx_passes_through_with_its_json(rt, monkeypatch) -> None:
    monkeypatch.setenv("ENDPOINT_NAME", "model400")
    response = call(proxy_event(body=json.dumps(RECORD)))
    assert response["statusCode"] == 400
    assert json.loads(response["body"]) == CONTAINER_400
    assert response["headers"]["X-Request-Id"] == "gw-req-42"
    assert len(rt.requests) == 1  # a ModelError is never retried


def test_container_4xx_plain_text_is_wrapped(rt, monkeypatch) -> None:
    monkeypatch.setenv("ENDPOINT_NAME", "model415text")
    response = call(proxy_event(body="{}"))
    assert response["statusCode"] == 415
    error = error_of(response)
    assert error["code"] == "model_client_error"
    assert error["message"] == "This predictor only supports CSV data"


@pytest.mark.parametrize(
    ("endpoint", "container_code"), [("model500", "internal_error"), ("model503", "model_not_ready")]
)
def test_container_5xx_is_502(rt, monkeypatch, capsys, endpoint, container_code) -> None:
    monkeypatch.setenv("ENDPOINT_NAME", endpoint)
    response = call(proxy_event(body="{}"))
    assert response["statusCode"] == 502
    error = error_of(response)
    assert error["code"] == "model_error"
    assert error["details"][0]["container_code"] == container_code
    assert "boom" not in response["body"]  # container internals stay in its logs
    [line] = log_lines(capsys)
    assert line["status"] == 502 and line["error_code"] == "model_error"
    assert line["upstream_error"].startswith("ModelError(5")


def test_container_timeout_is_504(rt, monkeypatch) -> None:
    monkeypatch.setenv("ENDPOINT_NAME", "modeltimeout")
    response = call(proxy_event(body="{}"))
    assert response["statusCode"] == 504
    assert error_of(response)["code"] == "model_timeout"


def test_read_timeout_is_504_and_not_retried(rt, monkeypatch) -> None:
    monkeypatch.setenv("ENDPOINT_NAME", "slow")
    monkeypatch.setenv("INVOKE_READ_TIMEOUT_S", "0.3")
    rt.slow_seconds = 1.0
    response = call(proxy_event(body="{}"))
    assert response["statusCode"] == 504
    error = error_of(response)
    assert error["code"] == "model_timeout"
    assert "0.3 s" in error["message"]
    assert len(rt.requests) == 1


def test_missing_endpoint_is_503(rt, monkeypatch) -> None:
    monkeypatch.setenv("ENDPOINT_NAME", "missing")
    response = call(proxy_event(body="{}"))
    assert response["statusCode"] == 503
    error = error_of(response)
    assert error["code"] == "endpoint_unavailable"
    assert "123456789012" not in response["body"]  # the account id is not leaked
    assert len(rt.requests) == 1


def test_sagemaker_oversize_validation_error_is_413(rt, monkeypatch) -> None:
    monkeypatch.setenv("ENDPOINT_NAME", "oversize")
    response = call(proxy_event(body="{}"))
    assert response["statusCode"] == 413


def test_persistent_throttling_is_429_after_bounded_retries(rt, monkeypatch, capsys) -> None:
    monkeypatch.setenv("ENDPOINT_NAME", "throttled")
    response = call(proxy_event(body="{}"))
    assert response["statusCode"] == 429
    assert response["headers"]["Retry-After"] == "1"
    assert error_of(response)["code"] == "too_many_requests"
    assert len(rt.requests) == 3
    assert log_lines(capsys)[0]["attempts"] == 3


def test_throttling_that_clears_succeeds_on_retry(rt, monkeypatch) -> None:
    monkeypatch.setenv("ENDPOINT_NAME", "flaky")
    rt.scripted["flaky"] = ["throttled", "ok"]
    response = call(proxy_event(body="{}"))
    assert response["statusCode"] == 200
    assert len(rt.requests) == 2


def test_no_retry_when_another_attempt_would_not_fit_in_the_time_left(rt, monkeypatch) -> None:
    monkeypatch.setenv("ENDPOINT_NAME", "throttled")
    response = call(proxy_event(body="{}"), FakeContext(remaining_ms=20_000))  # < 2 s + 24 s + margin
    assert response["statusCode"] == 429
    assert len(rt.requests) == 1


@pytest.mark.parametrize(
    ("endpoint", "status", "code"),
    [
        ("notready", 503, "model_not_ready"),
        ("unavailable", 503, "service_unavailable"),
        ("internal", 502, "upstream_error"),
    ],
)
def test_service_errors(rt, monkeypatch, endpoint, status, code) -> None:
    monkeypatch.setenv("ENDPOINT_NAME", endpoint)
    monkeypatch.setenv("INVOKE_MAX_ATTEMPTS", "2")
    response = call(proxy_event(body="{}"))
    assert response["statusCode"] == status
    assert error_of(response)["code"] == code
    assert len(rt.requests) == 2


def test_unreachable_runtime_is_502(rt, monkeypatch) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", f"http://127.0.0.1:{port}")
    response = call(proxy_event(body="{}"))
    assert response["statusCode"] == 502
    assert error_of(response)["code"] == "upstream_unreachable"


@pytest.mark.parametrize("first", ["drop", "cutbody"])
def test_connection_closed_once_is_retried(rt, monkeypatch, capsys, first) -> None:
    # drop: closed before any answer (a pooled connection dead after a freeze); cutbody: closed
    # after the headers, while the body was being read.
    monkeypatch.setenv("ENDPOINT_NAME", "flaky")
    rt.scripted["flaky"] = [first, "ok"]
    response = call(proxy_event(body=json.dumps(RECORD)))
    assert response["statusCode"] == 200
    assert json.loads(response["body"])["predictions"] == [{"label": ">50K", "probability": 0.87}]
    assert len(rt.requests) == 2
    [line] = log_lines(capsys)
    assert line["status"] == 200 and line["attempts"] == 2
    assert "error_code" not in line


@pytest.mark.parametrize(
    ("endpoint", "upstream_error"), [("drop", "ConnectionClosedError"), ("cutbody", "ResponseStreamingError")]
)
def test_connection_always_closed_is_502_json_after_bounded_retries(
    rt, monkeypatch, capsys, endpoint, upstream_error
) -> None:
    monkeypatch.setenv("ENDPOINT_NAME", endpoint)
    response = call(proxy_event(body="{}"))
    assert response["statusCode"] == 502
    error = error_of(response)
    assert error["code"] == "upstream_connection_closed"
    assert "connection to the SageMaker runtime closed" in error["message"]
    assert "3 attempts" in error["message"]
    assert error["details"] == [{"attempts": 3}]
    assert error["request_id"] == "gw-req-42"
    assert len(rt.requests) == 3
    [line] = log_lines(capsys)
    assert line["status"] == 502 and line["attempts"] == 3
    assert line["error_code"] == "upstream_connection_closed"
    assert line["upstream_error"] == upstream_error


def test_closed_connection_is_not_retried_when_another_attempt_would_not_fit(rt, monkeypatch) -> None:
    monkeypatch.setenv("ENDPOINT_NAME", "drop")
    response = call(proxy_event(body="{}"), FakeContext(remaining_ms=20_000))  # < 2 s + 24 s + margin
    assert response["statusCode"] == 502
    assert error_of(response)["details"] == [{"attempts": 1}]
    assert len(rt.requests) == 1


def test_only_fast_connection_failures_are_retryable_never_a_read_timeout() -> None:
    from botocore.exceptions import (
        ConnectionClosedError,
        EndpointConnectionError,
        HTTPClientError,
        IncompleteReadError,
        ReadTimeoutError,
        ResponseStreamingError,
    )

    url = "https://runtime.sagemaker.us-east-1.amazonaws.com"
    assert is_retryable(ConnectionClosedError(endpoint_url=url))
    assert is_retryable(EndpointConnectionError(endpoint_url=url))
    assert is_retryable(ResponseStreamingError(error="Connection broken: IncompleteRead"))
    assert is_retryable(IncompleteReadError(actual_bytes=1, expected_bytes=2))
    # A read timeout is an HTTPClientError too, but it has already used the whole budget.
    assert not is_retryable(ReadTimeoutError(endpoint_url=url))
    assert not is_retryable(HTTPClientError(error="something else"))


def _response_overhead(rt, monkeypatch) -> int:
    """Bytes the proxy response adds to a ``sized`` answer (envelope, headers, escaped quotes)."""
    monkeypatch.setenv("ENDPOINT_NAME", "sized")
    rt.sized_bytes = 1000
    response = call(proxy_event(body="{}"))
    assert response["statusCode"] == 200
    return serialized_size(response) - 1000


def test_answer_that_fits_lambdas_response_limit_is_200(rt, monkeypatch, capsys) -> None:
    overhead = _response_overhead(rt, monkeypatch)
    rt.sized_bytes = MAX_RESPONSE_BYTES - overhead  # the largest answer the proxy passes
    response = call(proxy_event(body="{}"))
    assert response["statusCode"] == 200
    assert len(response["body"]) == rt.sized_bytes
    # What the Lambda runtime would send: json.dumps defaults, the larger of its two encodings.
    sent = len(json.dumps(response).encode())
    assert sent == MAX_RESPONSE_BYTES < LAMBDA_RESPONSE_LIMIT_BYTES
    assert len(json.dumps(response, ensure_ascii=False).encode()) <= sent
    assert log_lines(capsys)[-1]["response_bytes"] == sent


@pytest.mark.parametrize(
    "size",
    [
        MAX_RESPONSE_BYTES + 1,  # one byte into the margin kept below Lambda's limit
        LAMBDA_RESPONSE_LIMIT_BYTES + 1,  # over Lambda's limit, though the answer alone is under it
    ],
)
def test_answer_over_lambdas_response_limit_is_413_json(rt, monkeypatch, capsys, size) -> None:
    overhead = _response_overhead(rt, monkeypatch)
    capsys.readouterr()
    rt.sized_bytes = size - overhead
    assert rt.sized_bytes < LAMBDA_RESPONSE_LIMIT_BYTES
    response = call(proxy_event(body="{}"))
    assert response["statusCode"] == 413
    error = error_of(response)
    assert error["code"] == "response_too_large"
    assert error["details"] == [{"limit_bytes": 6_291_456, "size_bytes": size}]
    assert f"{size} bytes" in error["message"] and "6291456 byte response limit" in error["message"]
    assert "smaller batches" in error["message"] and "Batch Transform" in error["message"]
    assert error["request_id"] == "gw-req-42"
    assert serialized_size(response) < 1024
    [line] = log_lines(capsys)
    assert line["status"] == 413 and line["error_code"] == "response_too_large"
    assert line["attempts"] == 1 and line["bytes_out"] == rt.sized_bytes


def test_binary_answer_counts_its_base64_inflation(rt, monkeypatch) -> None:
    monkeypatch.setenv("ENDPOINT_NAME", "sizedbin")
    rt.sized_bytes = 5 * 1024 * 1024  # under 6 MB raw, about 7 MB as base64
    response = call(proxy_event(body="{}"))
    assert response["statusCode"] == 413
    error = error_of(response)
    assert error["code"] == "response_too_large"
    assert error["details"][0]["size_bytes"] > 4 * rt.sized_bytes // 3 > LAMBDA_RESPONSE_LIMIT_BYTES


def test_missing_endpoint_name_is_500_json(rt, monkeypatch, capsys) -> None:
    monkeypatch.delenv("ENDPOINT_NAME")
    response = call(proxy_event(body="{}"))
    assert response["statusCode"] == 500
    assert error_of(response)["code"] == "internal_error"
    assert log_lines(capsys)[0]["config_error"] == "ENDPOINT_NAME is not set"


def test_unexpected_failure_still_answers_in_proxy_format(rt, capsys) -> None:
    event = proxy_event(body="{}")
    event["multiValueHeaders"] = ["not", "a", "mapping"]
    response = call(event)
    assert response["statusCode"] == 500
    assert error_of(response)["code"] == "internal_error"
    assert log_lines(capsys)[0]["exception"] == "AttributeError"


def test_client_is_created_once_per_execution_environment(rt) -> None:
    call(proxy_event(body="{}"))
    first = proxy_runtime._client
    call(proxy_event(body="{}"))
    assert proxy_runtime._client is first
    config = first.meta.config
    assert config.read_timeout == 24 and config.connect_timeout == 2
    assert config.read_timeout + config.connect_timeout < 28  # inside the function's timeout


def test_one_log_line_per_request_without_secrets(rt, monkeypatch, capsys) -> None:
    for endpoint in ("ok", "model400", "throttled"):
        monkeypatch.setenv("ENDPOINT_NAME", endpoint)
        monkeypatch.setenv("INVOKE_MAX_ATTEMPTS", "1")
        call(proxy_event(body=json.dumps(RECORD)))
    lines = log_lines(capsys)
    assert [line["status"] for line in lines] == [200, 400, 429]
    assert all(line["request_id"] == "gw-req-42" and "latency_ms" in line for line in lines)
