"""The local API Gateway over HTTP: routes, keys, usage plan, proxy event, Lambda failures, limits.

The gateway runs in this process (a real HTTP server in a thread) so a fake clock can drive the usage
plan; the Lambda handler always runs in the gateway's separate worker processes. Requests go through
either the real ``lambda_proxy`` handler to the session's real runtime and container, or
``local_lambda_fixtures`` handlers that misbehave on purpose.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime

import pytest
import requests
from local_clock import FakeClock
from local_isolation import fixture_handler_env

from pipeline.local.keys import create_key, revoke_key
from pipeline.local.settings import LocalSettings
from pipeline.local.stack import StackInfo
from pipeline.schema import EXAMPLE_RECORD

MIB = 1024 * 1024
RECORD = dict(EXAMPLE_RECORD)
FIXTURES = "local_lambda_fixtures.handler"


def predict(url: str, key: str | None, **kwargs: object) -> requests.Response:
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["x-api-key"] = key
    return requests.post(f"{url}/prod/predict", json=RECORD, headers=headers, timeout=40, **kwargs)  # type: ignore[arg-type]


def assert_gateway_error(
    response: requests.Response, status: int, message: str, error_type: str | None
) -> None:
    assert response.status_code == status
    assert response.json() == {"message": message}
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers.get("x-amzn-ErrorType") == error_type
    assert len(response.headers["x-amzn-RequestId"]) == 36


@pytest.fixture
def fixture_gateway(start_gateway, stub_container):
    """A gateway running ``local_lambda_fixtures`` (the runtime URL is never called by them)."""
    url, gateway = start_gateway(stub_container.url, handler=FIXTURES, lambda_env=fixture_handler_env())
    return url, gateway


# --- the usage plan through the whole real path (gateway -> real Lambda -> runtime -> container) ---


def test_burst_then_429_then_recovery_after_refill(
    start_gateway,
    stack: StackInfo,
    api_key: tuple[str, str],
    local_settings: LocalSettings,
) -> None:
    clock = FakeClock()
    url, _ = start_gateway(
        stack.runtime_url, clock=clock, overrides={"api.throttle_rate": 2.0, "api.throttle_burst": 3}
    )
    _, key = api_key
    for _ in range(3):
        assert predict(url, key).status_code == 200
    assert_gateway_error(predict(url, key), 429, "Too Many Requests", "TooManyRequestsException")
    clock.advance(0.4)  # 0.8 of a token
    assert predict(url, key).status_code == 429
    clock.advance(0.1)
    ok = predict(url, key)
    assert ok.status_code == 200 and ok.json()["predictions"][0]["label"] in (">50K", "<=50K")
    other_key = create_key("other", local_settings.keys_file)[1]
    assert predict(url, other_key).status_code == 200  # buckets are per key


def test_quota_until_the_period_rolls(start_gateway, stack: StackInfo, api_key: tuple[str, str]) -> None:
    clock = FakeClock(start=datetime(2026, 11, 18, 23, 46, 30, tzinfo=UTC).timestamp())
    url, gateway = start_gateway(
        stack.runtime_url, clock=clock, overrides={"api.quota_limit": 2, "api.quota_period": "DAY"}
    )
    _, key = api_key
    assert predict(url, key).status_code == 200
    assert predict(url, key).status_code == 200
    assert_gateway_error(predict(url, key), 429, "Limit Exceeded", "LimitExceededException")
    clock.advance(13 * 60)  # 23:59:30, same day
    assert predict(url, key).status_code == 429
    clock.advance(31)  # 00:00:01 the next day: a new period
    assert predict(url, key).status_code == 200
    assert gateway.plan.remaining_quota(gateway.keys.lookup(key).id) == 1  # type: ignore[union-attr]


# --- routes and keys ---


def test_unknown_routes_are_missing_authentication_token(fixture_gateway, api_key) -> None:
    url, _ = fixture_gateway
    _, key = api_key
    for method, path in (
        ("POST", "/prod/nope"),
        ("POST", "/dev/predict"),  # another stage
        ("GET", "/prod/predict"),  # a method the resource does not have
        ("DELETE", "/prod/health"),
        ("POST", "/predict"),  # no stage
        ("GET", "/"),
    ):
        answer = requests.request(method, url + path, headers={"x-api-key": key}, timeout=10)
        assert_gateway_error(
            answer, 403, "Missing Authentication Token", "MissingAuthenticationTokenException"
        )


def test_missing_wrong_and_revoked_keys_are_forbidden(fixture_gateway, local_settings: LocalSettings) -> None:
    url, _ = fixture_gateway
    key_id, key = create_key("soon-revoked", local_settings.keys_file)
    assert predict(url, key).status_code == 200
    assert_gateway_error(predict(url, None), 403, "Forbidden", "ForbiddenException")
    assert_gateway_error(predict(url, ""), 403, "Forbidden", "ForbiddenException")
    wrong = key[:-1] + ("y" if key.endswith("x") else "x")  # one character off, never the key itself
    assert_gateway_error(predict(url, wrong), 403, "Forbidden", "ForbiddenException")
    revoke_key(key_id, local_settings.keys_file)
    assert_gateway_error(predict(url, key), 403, "Forbidden", "ForbiddenException")


def test_the_key_header_name_is_case_insensitive(fixture_gateway, api_key) -> None:
    url, _ = fixture_gateway
    answer = requests.get(f"{url}/prod/health", headers={"X-API-Key": api_key[1]}, timeout=10)
    assert answer.status_code == 200


# --- the proxy event and the Lambda's environment ---


def test_event_and_context_as_lambda_gets_them(fixture_gateway, api_key, stub_container) -> None:
    url, gateway = fixture_gateway
    key_id, key = api_key
    answer = requests.post(
        f"{url}/prod/predict?debug=1&debug=2",
        data=b"1,2,3",
        headers={"x-api-key": key, "Content-Type": "text/csv", "X-Custom-Header": "Kept-Casing"},
        timeout=10,
    )
    assert answer.status_code == 200
    seen = answer.json()
    event, env = seen["event"], seen["env"]
    assert event["resource"] == "/predict" and event["path"] == "/predict" and event["httpMethod"] == "POST"
    assert event["body"] == "1,2,3" and event["isBase64Encoded"] is False
    assert event["headers"]["X-Custom-Header"] == "Kept-Casing"
    assert event["headers"]["X-Forwarded-Proto"] == "https"
    assert event["queryStringParameters"] == {"debug": "2"}
    assert event["multiValueQueryStringParameters"] == {"debug": ["1", "2"]}
    context = event["requestContext"]
    assert context["identity"]["apiKeyId"] == key_id
    assert context["requestId"] == answer.headers["x-amzn-RequestId"] == seen["request_id"]
    assert context["stage"] == "prod" and context["path"] == "/prod/predict"
    assert context["apiId"] == gateway.deployment.api_id
    # The handler ran in another process, with the function's environment only.
    assert seen["pid"] != os.getpid()
    assert env["ENDPOINT_NAME"] == "adult-income"
    assert env["AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"] == stub_container.url
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == "adult-income-proxy"
    assert "AWS_PROFILE" not in env and "LOCAL_SECRETS_DIR" not in env
    assert 0 < seen["remaining_ms"] <= 28_000


def test_binary_responses_are_decoded(fixture_gateway, api_key) -> None:
    url, _ = fixture_gateway
    headers = {"x-api-key": api_key[1], "X-Test-Behaviour": "binary"}
    answer = requests.post(f"{url}/prod/predict", data=b"{}", headers=headers, timeout=10)
    assert answer.status_code == 201 and answer.headers["Content-Type"] == "image/png"
    assert answer.content.startswith(b"\x89PNG")


@pytest.mark.parametrize("behaviour", ["extra-key", "string-status", "dict-body", "not-a-dict", "raise"])
def test_malformed_responses_and_handler_errors_are_502(fixture_gateway, api_key, behaviour: str) -> None:
    url, _ = fixture_gateway
    answer = requests.post(
        f"{url}/prod/predict",
        data=b"{}",
        headers={"x-api-key": api_key[1], "X-Test-Behaviour": behaviour},
        timeout=10,
    )
    assert_gateway_error(answer, 502, "Internal server error", "InternalServerErrorException")


def test_integration_timeout_is_504(start_gateway, stub_container, api_key) -> None:
    url, gateway = start_gateway(
        stub_container.url, handler=FIXTURES, lambda_env=fixture_handler_env(), integration_timeout_s=1.0
    )
    gateway.pool.prewarm(1)  # a cold start must not use up the 1 s on a busy machine
    started = time.monotonic()
    headers = {"x-api-key": api_key[1], "X-Test-Behaviour": "sleep"}
    answer = requests.post(f"{url}/prod/predict", data=b"{}", headers=headers, timeout=10)
    assert_gateway_error(answer, 504, "Endpoint request timed out", "InternalServerErrorException")
    assert time.monotonic() - started < 5
    # The stuck environment was killed; a fresh one (started up front, as above) serves the next request.
    gateway.pool.prewarm(1)
    health = requests.get(f"{url}/prod/health", headers={"x-api-key": api_key[1]}, timeout=10)
    assert health.status_code == 200


def test_a_function_timeout_before_the_gateway_gives_up_is_502(
    start_gateway, stub_container, api_key
) -> None:
    url, _ = start_gateway(
        stub_container.url,
        handler=FIXTURES,
        lambda_env=fixture_handler_env(),
        overrides={"lambda.timeout_seconds": 3},
    )
    started = time.monotonic()
    answer = requests.post(
        f"{url}/prod/predict",
        data=b"{}",
        headers={"x-api-key": api_key[1], "X-Test-Behaviour": "sleep"},
        timeout=15,
    )
    assert_gateway_error(answer, 502, "Internal server error", "InternalServerErrorException")
    assert 2.9 < time.monotonic() - started < 8


# --- payload limits ---


def test_over_10_mib_is_413_at_the_gateway(fixture_gateway, api_key) -> None:
    url, _ = fixture_gateway
    answer = requests.post(
        f"{url}/prod/predict", data=b"x" * (10 * MIB + 1), headers={"x-api-key": api_key[1]}, timeout=30
    )
    assert_gateway_error(answer, 413, "Request Too Long", None)


def test_an_event_over_lambdas_6_mb_limit_is_413_before_the_function_runs(fixture_gateway, api_key) -> None:
    url, _ = fixture_gateway
    # 6 MiB of body alone is under API Gateway's 10 MB but the event around it exceeds Lambda's 6 MB.
    answer = requests.post(
        f"{url}/prod/predict", data=b"x" * (6 * MIB), headers={"x-api-key": api_key[1]}, timeout=30
    )
    assert_gateway_error(answer, 413, "Request Too Long", None)
    # Just under the limit the (echo) function runs.
    ok = requests.post(
        f"{url}/prod/predict", data=b"x" * (5 * MIB), headers={"x-api-key": api_key[1]}, timeout=30
    )
    assert ok.status_code == 200 and len(ok.json()["event"]["body"]) == 5 * MIB
