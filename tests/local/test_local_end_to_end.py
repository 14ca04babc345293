"""The whole local request path, all real processes: client -> gateway -> Lambda proxy -> InvokeEndpoint
-> container (nginx + gunicorn on the quick model), and the two other ways users call it: boto3 and the
SageMaker Python SDK v3 against the local InvokeEndpoint.
"""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
import requests

from pipeline.local.keys import create_key, revoke_key
from pipeline.local.settings import LocalSettings
from pipeline.local.stack import StackInfo
from pipeline.schema import EXAMPLE_RECORD, SCHEMA, NumericFeature, is_missing

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


def in_process(model_dir: Path, records: list[dict[str, object]]) -> list[float]:
    """P(>50K) from the artifact loaded in this process, with the engine the container would choose."""
    from inference.engine import load_engine

    engine = load_engine(model_dir)
    columns: dict[str, list[object]] = {}
    for feature in SCHEMA.features:
        values = []
        for record in records:
            value = record.get(feature.name)
            if is_missing(value):
                values.append(None)
            elif isinstance(feature, NumericFeature):
                values.append(float(value))  # type: ignore[arg-type]
            else:
                values.append(str(value))
        columns[feature.name] = values
    return [float(p) for p in engine.predict_proba(columns)]


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


def test_one_json_record_scores_as_in_process(stack: StackInfo, api_key, quick_model_dir: Path) -> None:
    answer = post(stack, api_key[1], json.dumps(RECORD).encode(), "application/json")
    assert answer.status_code == 200, answer.text
    assert answer.headers["Content-Type"] == "application/json"
    [prediction] = answer.json()["predictions"]
    expected = in_process(quick_model_dir, [RECORD])[0]
    assert prediction["probability"] == pytest.approx(expected, abs=1e-12)
    assert prediction["label"] == (">50K" if expected >= 0.5 else "<=50K")


def test_a_csv_batch_scores_as_in_process(stack: StackInfo, api_key, quick_model_dir: Path) -> None:
    body = ",".join(FEATURES) + "\n" + "".join(",".join(row) + "\n" for row in CSV_ROWS)
    answer = post(stack, api_key[1], body.encode(), "text/csv", Accept="text/csv")
    assert answer.status_code == 200, answer.text
    assert answer.headers["Content-Type"].startswith("text/csv")
    got = [float(line.split(",")[1]) for line in answer.text.splitlines()]
    records = [dict(zip(FEATURES, row, strict=True)) for row in CSV_ROWS]
    assert got == pytest.approx(in_process(quick_model_dir, records), abs=1e-12)


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
    stack: StackInfo, quick_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", stack.runtime_url)
    from sagemaker.core.deserializers import CSVDeserializer, JSONDeserializer
    from sagemaker.core.resources import Endpoint
    from sagemaker.core.serializers import CSVSerializer, JSONSerializer

    expected = in_process(quick_model_dir, [RECORD, *(dict(zip(FEATURES, r, strict=True)) for r in CSV_ROWS)])

    as_json = Endpoint(
        endpoint_name=stack.endpoint_name, serializer=JSONSerializer(), deserializer=JSONDeserializer()
    )
    out = as_json.invoke(
        body={"instances": [RECORD]}, content_type="application/json", accept="application/json"
    )
    assert out.body["predictions"][0]["probability"] == pytest.approx(expected[0], abs=1e-12)

    as_csv = Endpoint(
        endpoint_name=stack.endpoint_name, serializer=CSVSerializer(), deserializer=CSVDeserializer()
    )
    out = as_csv.invoke(body=CSV_ROWS, content_type="text/csv", accept="text/csv")
    assert [float(row[1]) for row in out.body] == pytest.approx(expected[1:], abs=1e-12)
    assert [row[0] for row in out.body] == [">50K" if p >= 0.5 else "<=50K" for p in expected[1:]]
