"""``python -m pipeline batch s3://... s3://...``: the transform job against moto and transform_shim.py."""

from __future__ import annotations

import boto3
import pytest
import transform_shim

from pipeline.batch.errors import BatchError
from pipeline.batch.transform_job import data_processing, start_and_report, transform_request
from pipeline.cloud.config import load_config
from pipeline.cloud.transform_jobs import stop_running_transform_jobs

ROW = "39,State-gov,13,Never-married,Adm-clerical,Not-in-family,White,Male,2174,0,40,United-States"
OLDER = "61,Private,9,Married-civ-spouse,Sales,Husband,White,Male,0,0,45,United-States"


@pytest.fixture
def shim(aws, monkeypatch):
    return transform_shim.install(monkeypatch)


@pytest.fixture
def deployed(aws):
    """A bucket with input objects and an endpoint serving model ``m-1`` (what deploy leaves)."""
    sm = boto3.client("sagemaker", region_name="us-east-1")
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="data")
    s3.put_object(Bucket="data", Key="in/part-0.csv", Body=f"a1,{ROW}\na2,{OLDER}\n".encode())
    s3.put_object(Bucket="data", Key="in/part-1.csv", Body=f"b1,{OLDER}\n".encode())
    _serve_model(sm, "123456789012")
    return sm, s3


def _serve_model(sm, account: str) -> None:
    """Endpoint ``adult-income`` on config ``c-1`` serving model ``m-1``."""
    sm.create_model(
        ModelName="m-1", ExecutionRoleArn=f"arn:aws:iam::{account}:role/r", PrimaryContainer={"Image": "i:1"}
    )
    sm.create_endpoint_config(
        EndpointConfigName="c-1",
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": "m-1",
                "InstanceType": "ml.m5.large",
                "InitialInstanceCount": 1,
            }
        ],
    )
    sm.create_endpoint(EndpointName="adult-income", EndpointConfigName="c-1")


def _start(sm, s3, config=None, **kwargs):
    lines: list[str] = []
    options = {
        "config": config or load_config(),
        "prefix": "adult-income",
        "endpoint_name": "adult-income",
        "tags": [{"Key": "project", "Value": "adult-income"}],
        "input_uri": "s3://data/in/",
        "output_uri": "s3://data/out/",
        "fmt": "text/csv",
        "id_positions": [0],
        "wait": True,
        "say": lines.append,
        "poll_s": 0,
        **kwargs,
    }
    return start_and_report(sm, s3, **options), lines


def test_job_runs_on_the_deployed_model_and_joins_ids(deployed, shim) -> None:
    sm, s3 = deployed
    report, lines = _start(sm, s3)
    assert report["status"] == "Completed" and report["model"] == "m-1"
    request = shim.requests[0]
    assert request["transform_input"]["SplitType"] == "Line"
    assert request["batch_strategy"] == "MultiRecord"
    # Not sent: SageMaker then asks the container's /execution-parameters.
    assert request["max_payload_in_mb"] is None and request["max_concurrent_transforms"] is None
    assert request["data_processing"] == {
        "InputFilter": "$[1:]",
        "JoinSource": "Input",
        "OutputFilter": "$[0,-2,-1]",
    }
    assert request["transform_resources"] == {"InstanceType": "ml.m5.large", "InstanceCount": 1}
    assert report["outputs"] == ["s3://data/out/part-0.csv.out", "s3://data/out/part-1.csv.out"]
    out = s3.get_object(Bucket="data", Key="out/part-0.csv.out")["Body"].read().decode().splitlines()
    assert out == ["a1,<=50K,0.39", "a2,>50K,0.61"]
    assert any("InProgress" in line for line in lines) and any("Completed" in line for line in lines)
    assert any("s3://data/out/" in line for line in lines)


def test_overrides_and_instance_count_are_sent(deployed, shim) -> None:
    sm, s3 = deployed
    config = load_config(overrides={"batch.instance_count": "2", "batch.instance_type": "ml.c5.xlarge"})
    _, lines = _start(sm, s3, config=config, max_payload_mb=20, max_concurrent_transforms=4)
    request = shim.requests[0]
    assert (request["max_payload_in_mb"], request["max_concurrent_transforms"]) == (20, 4)
    assert request["transform_resources"] == {"InstanceType": "ml.c5.xlarge", "InstanceCount": 2}
    assert not any("warning" in line for line in lines)  # two objects for two instances


def test_failure_reason_is_reported(deployed, shim) -> None:
    sm, s3 = deployed
    shim.fail_with = "ClientError: See job logs for more information"
    report, lines = _start(sm, s3)
    assert report["status"] == "Failed"
    assert report["failure_reason"] == "ClientError: See job logs for more information"
    assert any("ClientError: See job logs" in line for line in lines)
    assert any("/aws/sagemaker/TransformJobs" in line for line in lines)


def test_a_header_in_an_input_object_is_refused_before_any_job(deployed, shim) -> None:
    sm, s3 = deployed
    s3.put_object(Bucket="data", Key="in/part-2.csv", Body=f"id,age,workclass\nc1,{ROW}\n".encode())
    with pytest.raises(BatchError, match=r"in/part-2\.csv"):
        _start(sm, s3)
    assert shim.requests == []


def test_no_endpoint_no_job(aws, shim) -> None:
    from pipeline.cloud.errors import NotDeployed

    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="data")
    s3.put_object(Bucket="data", Key="in/x.csv", Body=f"1,{ROW}\n".encode())
    with pytest.raises(NotDeployed, match="deploy"):
        _start(boto3.client("sagemaker", region_name="us-east-1"), s3)


def test_teardown_helper_stops_only_running_jobs_of_the_project(deployed, shim) -> None:
    sm, s3 = deployed
    shim.finish_after = 10**6  # never finishes on its own
    report, _ = _start(sm, s3, wait=False)
    sm.create_transform_job(**{**_other_job_request(), "TransformJobName": "someone-else-batch-1"})
    assert stop_running_transform_jobs(sm, "adult-income") == [report["job"]]
    assert shim.stopped == [report["job"]]
    assert sm.describe_transform_job(TransformJobName=report["job"])["TransformJobStatus"] == "Stopped"
    assert stop_running_transform_jobs(sm, "adult-income") == []


def _other_job_request():
    return transform_request(
        name="x", model_name="m-1", input_uri="s3://data/in/", output_uri="s3://data/o/", fmt="text/csv",
        id_positions=[], batch=load_config().batch, tags=[],
    )  # fmt: skip


@pytest.mark.parametrize(
    ("ids", "expected"),
    [
        ([0], ("$[1:]", "$[0,-2,-1]")),
        ([0, 1], ("$[2:]", "$[0,1,-2,-1]")),
        ([12], ("$[0:12]", "$[12,-2,-1]")),
        ([0, 13], ("$[1:13]", "$[0,13,-2,-1]")),
        ([3], ("$[0,1,2,4,5,6,7,8,9,10,11,12]", "$[3,-2,-1]")),
    ],
)
def test_filters_select_features_and_keep_ids(ids, expected) -> None:
    processing = data_processing("text/csv", ids)
    assert (processing["InputFilter"], processing["OutputFilter"]) == expected
    # Applied to a row, the filters give the 12 features, and IDs + label + probability.
    row = [f"c{i}" for i in range(12 + len(ids))]
    features = transform_shim.select(processing["InputFilter"], row)
    assert features == [c for i, c in enumerate(row) if i not in ids]
    assert transform_shim.select(processing["OutputFilter"], [*row, "L", "P"]) == [row[i] for i in ids] + [
        "L",
        "P",
    ]


def test_no_ids_no_data_processing_and_jsonlines_ids_are_refused() -> None:
    assert data_processing("text/csv", []) is None
    with pytest.raises(BatchError, match="CSV"):
        data_processing("application/jsonlines", [0])


def test_the_cli_runs_a_job_under_the_project_prefix_and_refuses_one_outside(aws, shim, capsys) -> None:
    from pipeline.cli import main

    account = boto3.client("sts", region_name="us-east-1").get_caller_identity()["Account"]
    bucket = f"adult-income-{account}-us-east-1"
    sm = boto3.client("sagemaker", region_name="us-east-1")
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="adult-income/batch/in/part-0.csv", Body=f"a1,{ROW}\n".encode())
    _serve_model(sm, account)

    # The execution role the job runs as may read and write only under s3://<bucket>/adult-income/.
    assert main(["batch", "s3://elsewhere/in/", f"s3://{bucket}/adult-income/batch/out/"]) == 1
    assert "outside s3://" in capsys.readouterr().err

    code = main(
        [
            "batch",
            f"s3://{bucket}/adult-income/batch/in/",
            f"s3://{bucket}/adult-income/batch/out/",
            "--id-columns",
            "0",
            "--poll-seconds",
            "0",
        ]
    )
    assert code == 0, capsys.readouterr().err
    [request] = shim.requests
    assert request["transform_output"]["S3OutputPath"] == f"s3://{bucket}/adult-income/batch/out/"
    out = s3.get_object(Bucket=bucket, Key="adult-income/batch/out/part-0.csv.out")["Body"].read().decode()
    assert out.startswith("a1,")
