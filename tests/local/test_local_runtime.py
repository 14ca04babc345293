"""The local InvokeEndpoint as boto3 sees it: a real runtime process in front of a scriptable container.

Each error must reach botocore as the modeled exception with the same fields AWS sends, so the Lambda
proxy and notebooks behave as against SageMaker.
"""

from __future__ import annotations

import boto3
import pytest
import requests
from botocore.config import Config
from local_stub_container import StubContainer

MIB = 1024 * 1024


def client(runtime_url: str, monkeypatch: pytest.MonkeyPatch):
    """A runtime client that reaches the local runtime purely through the env var, as the Lambda does."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", runtime_url)
    return boto3.client("sagemaker-runtime", config=Config(retries={"mode": "standard"}))


@pytest.fixture
def runtime(stub_container: StubContainer, start_runtime, monkeypatch: pytest.MonkeyPatch):
    url = start_runtime({"ep": stub_container.url}, LOCAL_INVOCATION_TIMEOUT_S="1")
    return client(url, monkeypatch)


def test_success_carries_content_type_variant_request_id_and_forwards_only_sagemaker_headers(runtime) -> None:
    response = runtime.invoke_endpoint(
        EndpointName="ep",
        Body=b"1,2,3",
        ContentType="text/csv",
        Accept="application/json",
        CustomAttributes="trace=abc",
        InferenceId="inf-1",
    )
    assert response["ContentType"] == "application/json"
    assert response["InvokedProductionVariant"] == "AllTraffic"
    assert len(response["ResponseMetadata"]["RequestId"]) == 36
    assert "CustomAttributes" not in response  # the container did not set any
    seen = response["Body"].read()
    import json

    headers = {k.lower(): v for k, v in json.loads(seen)["headers"].items()}
    assert headers["content-type"] == "text/csv" and headers["accept"] == "application/json"
    assert headers["x-amzn-sagemaker-custom-attributes"] == "trace=abc"
    assert headers["x-amzn-sagemaker-inference-id"] == "inf-1"
    for stripped in ("authorization", "x-amz-date", "amz-sdk-invocation-id", "amz-sdk-request"):
        assert stripped not in headers


def test_custom_attributes_are_returned_only_when_the_container_sets_them(runtime) -> None:
    response = runtime.invoke_endpoint(EndpointName="ep", Body=b"attr", ContentType="text/csv")
    assert response["CustomAttributes"] == "model-version=7"


@pytest.mark.parametrize("status", [400, 404, 500, 503])
def test_container_errors_become_model_error_with_the_original_status(runtime, status: int) -> None:
    with pytest.raises(runtime.exceptions.ModelError) as caught:
        runtime.invoke_endpoint(EndpointName="ep", Body=f"status:{status}".encode(), ContentType="text/csv")
    response = caught.value.response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert response["ResponseMetadata"]["RetryAttempts"] == 0
    assert response["Error"]["Code"] == "ModelError"
    assert response["OriginalStatusCode"] == status
    assert f"stub answered {status}" in response["OriginalMessage"]
    kind = "client" if status < 500 else "server"
    assert response["Error"]["Message"].startswith(
        f"Received {kind} error ({status}) from primary with message"
    )
    assert (
        response["LogStreamArn"]
        == "arn:aws:logs:us-east-1:123456789012:log-group:/aws/sagemaker/Endpoints/ep"
    )


def test_a_container_slower_than_the_invocation_timeout_is_model_error_status_0(runtime) -> None:
    with pytest.raises(runtime.exceptions.ModelError) as caught:
        runtime.invoke_endpoint(EndpointName="ep", Body=b"sleep:3", ContentType="text/csv")
    response = caught.value.response
    assert response["OriginalStatusCode"] == 0
    assert "timed out while waiting for a response from container primary" in response["OriginalMessage"]


def test_unknown_endpoint_is_validation_error(runtime) -> None:
    with pytest.raises(
        runtime.exceptions.ValidationError, match="Endpoint nope of account 123456789012 not found"
    ):
        runtime.invoke_endpoint(EndpointName="nope", Body=b"1", ContentType="text/csv")


def test_body_over_6_mib_is_validation_error_and_never_reaches_the_container(
    runtime,
    stub_container: StubContainer,
) -> None:
    with pytest.raises(runtime.exceptions.ValidationError, match="oversize body: 6291457 bytes"):
        runtime.invoke_endpoint(EndpointName="ep", Body=b"x" * (6 * MIB + 1), ContentType="text/csv")
    assert stub_container.invocations == 0
    ok = runtime.invoke_endpoint(EndpointName="ep", Body=b"x" * (6 * MIB), ContentType="text/csv")
    assert ok["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_over_long_header_is_validation_error(runtime) -> None:
    with pytest.raises(runtime.exceptions.ValidationError, match="length less than or equal to 1024"):
        runtime.invoke_endpoint(
            EndpointName="ep", Body=b"1", ContentType="text/csv", Accept="a/" + "b" * 1100
        )


def test_model_not_ready_while_ping_fails_then_recovers(runtime, stub_container: StubContainer) -> None:
    stub_container.ping_status = 503
    with pytest.raises(runtime.exceptions.ModelNotReadyException) as caught:
        runtime.invoke_endpoint(EndpointName="ep", Body=b"1", ContentType="text/csv")
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429
    assert stub_container.invocations == 0
    stub_container.ping_status = 200
    assert runtime.invoke_endpoint(EndpointName="ep", Body=b"1", ContentType="text/csv")["Body"].read()


def test_a_stopped_container_is_model_not_ready(
    stub_container: StubContainer,
    start_runtime,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rt = client(start_runtime({"ep": stub_container.url}), monkeypatch)
    assert rt.invoke_endpoint(EndpointName="ep", Body=b"1", ContentType="text/csv")["Body"].read()
    stub_container.stop()
    with pytest.raises(rt.exceptions.ModelNotReadyException, match="not ready"):
        rt.invoke_endpoint(EndpointName="ep", Body=b"1", ContentType="text/csv")


def test_unknown_operations_are_json_404(runtime, start_runtime, stub_container: StubContainer) -> None:
    url = start_runtime({"ep": stub_container.url})
    for method, path in (("GET", "/endpoints/ep/invocations"), ("POST", "/invocations"), ("GET", "/")):
        answer = requests.request(method, url + path, timeout=5)
        assert answer.status_code == 404
        assert answer.headers["x-amzn-ErrorType"].startswith("UnknownOperationException")
        assert "No operation matches" in answer.json()["message"]
