"""The whole local request path, all real processes: client -> gateway -> Lambda proxy -> InvokeEndpoint
-> container (nginx + gunicorn on the committed release), and the two other ways users call it: boto3 and
the SageMaker Python SDK v3 against the local InvokeEndpoint. Predictions are checked against the
release's golden file (tests/golden_checks.py), not against an engine loaded by the test.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import boto3
import golden_checks  # tests/golden_checks.py (tests/ is on sys.path: rootdir conftest)
import pytest
import requests

from pipeline.local.keys import create_key, revoke_key
from pipeline.local.settings import LocalSettings
from pipeline.local.stack import StackInfo
from pipeline.schema import EXAMPLE_RECORD, SCHEMA

MIB = 1024 * 1024
RECORD = dict(EXAMPLE_RECORD)
FEATURES = [f.name for f in SCHEMA.features]
CSV_ROWS = [
    line.split(",")
    for line in (
        "52,Self-emp-inc,14,Married-civ-spouse,Exec-managerial,Husband,White,Male,15024,0,60,United-States",
        "23,Private,9,Never-married,Handlers-cleaners,Own-child,Black,Female,0,0,30,United-States",
        "31,?,10,Divorced,?,Unmarried,White,Female,0,0,25,?",
    )
]
INVALID = {**RECORD, "age": -4, "hours_per_week": "forty"}


@pytest.fixture(scope="module")
def golden(released_model_dir: Path) -> tuple[list[dict], float, float]:
    """(golden cases, tolerance for the engine the stack's container runs (the manifest's), threshold)."""
    manifest = json.loads((released_model_dir / "manifest.json").read_text(encoding="utf-8"))
    document = golden_checks.golden()
    assert document["model_sha256"] == manifest["artifact_files"]["model.joblib"]
    return document["cases"], golden_checks.tolerance("auto", manifest), document["threshold"]


def json_predictions(answer: requests.Response | dict) -> tuple[list[float], list[str]]:
    body = answer.json() if isinstance(answer, requests.Response) else answer
    return [p["probability"] for p in body["predictions"]], [p["label"] for p in body["predictions"]]


def post(
    stack: StackInfo, key: str | None, body: bytes, content_type: str, **headers: str
) -> requests.Response:
    all_headers = {"Content-Type": content_type, **headers}
    if key is not None:
        all_headers["x-api-key"] = key
    return requests.post(stack.predict_url, data=body, headers=all_headers, timeout=40)


def runtime_client(stack: StackInfo, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", stack.runtime_url)
    return boto3.client("sagemaker-runtime")


def test_json_records_through_the_gateway_give_the_golden_predictions(
    stack: StackInfo, api_key, golden
) -> None:
    cases, tol, threshold = golden
    answer = post(stack, api_key[1], json.dumps(golden_checks.records(cases)).encode(), "application/json")
    assert answer.status_code == 200, answer.text
    assert answer.headers["Content-Type"] == "application/json"
    golden_checks.assert_matches_golden(*json_predictions(answer), cases, tol, threshold)


def test_each_record_alone_through_the_gateway_gives_its_golden_prediction(
    stack: StackInfo, api_key, golden
) -> None:
    cases, tol, threshold = golden
    for case in cases:
        answer = post(stack, api_key[1], json.dumps(case["record"]).encode(), "application/json")
        assert answer.status_code == 200, answer.text
        golden_checks.assert_matches_golden(*json_predictions(answer), [case], tol, threshold)


def test_a_csv_batch_through_the_gateway_gives_the_golden_predictions(
    stack: StackInfo, api_key, golden
) -> None:
    cases, tol, threshold = golden
    body = golden_checks.csv_body(cases, header=True)
    answer = post(stack, api_key[1], body.encode(), "text/csv", Accept="text/csv")
    assert answer.status_code == 200, answer.text
    assert answer.headers["Content-Type"].startswith("text/csv")
    rows = [line.split(",") for line in answer.text.splitlines()]
    golden_checks.assert_matches_golden(
        [float(r[1]) for r in rows], [r[0] for r in rows], cases, tol, threshold
    )


def test_an_invalid_record_is_400_with_the_containers_field_messages(stack: StackInfo, api_key) -> None:
    body = json.dumps(INVALID).encode()
    answer = post(stack, api_key[1], body, "application/json")
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["code"] == "invalid_records"
    problems = {(d["field"], d["problem"]) for d in error["details"]}
    assert problems == {("age", "out_of_range"), ("hours_per_week", "wrong_type")}
    # It is the container's own answer, passed through the runtime and the Lambda untouched.
    direct = requests.post(
        f"{stack.container_url}/invocations",
        data=body,
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    assert direct.status_code == 400
    assert direct.json()["error"]["details"] == error["details"]


def test_keys_against_the_running_gateway_process(stack: StackInfo, local_settings: LocalSettings) -> None:
    body = json.dumps(RECORD).encode()
    key_id, key = create_key("e2e", local_settings.keys_file)
    assert post(stack, key, body, "application/json").status_code == 200  # picked up without a restart
    for presented in (None, "", "not-a-key", key.swapcase()):
        answer = post(stack, presented, body, "application/json")
        assert answer.status_code == 403 and answer.json() == {"message": "Forbidden"}
        assert answer.headers["x-amzn-ErrorType"] == "ForbiddenException"
    revoke_key(key_id, local_settings.keys_file)
    assert post(stack, key, body, "application/json").status_code == 403
    unknown = requests.get(f"{stack.gateway_url}/{stack.stage}/unknown", timeout=10)
    assert unknown.status_code == 403 and unknown.json() == {"message": "Missing Authentication Token"}


def test_boto3_gets_model_error_with_the_containers_status(
    stack: StackInfo, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = runtime_client(stack, monkeypatch)
    ok = runtime.invoke_endpoint(
        EndpointName=stack.endpoint_name, Body=json.dumps(RECORD).encode(), ContentType="application/json"
    )
    assert ok["ContentType"] == "application/json" and ok["InvokedProductionVariant"] == "AllTraffic"
    assert json.loads(ok["Body"].read())["predictions"][0]["label"] in (">50K", "<=50K")
    with pytest.raises(runtime.exceptions.ModelError) as caught:
        runtime.invoke_endpoint(
            EndpointName=stack.endpoint_name,
            Body=json.dumps(INVALID).encode(),
            ContentType="application/json",
        )
    response = caught.value.response
    assert response["OriginalStatusCode"] == 400
    assert json.loads(response["OriginalMessage"])["error"]["code"] == "invalid_records"
    with pytest.raises(runtime.exceptions.ModelError) as caught:
        runtime.invoke_endpoint(EndpointName=stack.endpoint_name, Body=b"age\n1\n", ContentType="text/plain")
    assert caught.value.response["OriginalStatusCode"] == 415


def test_over_6_mib_is_rejected_at_the_right_hop(
    stack: StackInfo, api_key, monkeypatch: pytest.MonkeyPatch
) -> None:
    big = b"x" * (7 * MIB)
    # Straight to InvokeEndpoint: SageMaker's 6 MB limit, a ValidationError.
    runtime = runtime_client(stack, monkeypatch)
    with pytest.raises(runtime.exceptions.ValidationError, match="oversize body"):
        runtime.invoke_endpoint(EndpointName=stack.endpoint_name, Body=big, ContentType="text/csv")
    # Through the gateway: under its 10 MB limit, but the Lambda event cannot carry it: 413.
    answer = post(stack, api_key[1], big, "text/csv")
    assert answer.status_code == 413 and answer.json() == {"message": "Request Too Long"}
    # Over 10 MB the gateway itself refuses.
    answer = post(stack, api_key[1], b"x" * (11 * MIB), "text/csv")
    assert answer.status_code == 413 and answer.json() == {"message": "Request Too Long"}


def test_sagemaker_sdk_v3_predicts_against_the_local_runtime(
    stack: StackInfo, golden, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", stack.runtime_url)
    from sagemaker.core.deserializers import CSVDeserializer, JSONDeserializer
    from sagemaker.core.resources import Endpoint
    from sagemaker.core.serializers import CSVSerializer, JSONSerializer

    cases, tol, threshold = golden
    as_json = Endpoint(
        endpoint_name=stack.endpoint_name, serializer=JSONSerializer(), deserializer=JSONDeserializer()
    )
    out = as_json.invoke(
        body={"instances": golden_checks.records(cases)},
        content_type="application/json",
        accept="application/json",
    )
    golden_checks.assert_matches_golden(*json_predictions(out.body), cases, tol, threshold)

    as_csv = Endpoint(
        endpoint_name=stack.endpoint_name, serializer=CSVSerializer(), deserializer=CSVDeserializer()
    )
    rows = list(csv.reader(io.StringIO(golden_checks.csv_body(cases, header=False))))
    out = as_csv.invoke(body=rows, content_type="text/csv", accept="text/csv")
    golden_checks.assert_matches_golden(
        [float(r[1]) for r in out.body], [r[0] for r in out.body], cases, tol, threshold
    )
