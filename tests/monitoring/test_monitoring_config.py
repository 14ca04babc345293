"""The [monitoring] keys: validated at config load, and the DataCaptureConfig deploy gets from them."""

from __future__ import annotations

import tomllib

import pytest

from pipeline.cloud.config import DEFAULT_CONFIG_PATH, ConfigError, load_config
from pipeline.cloud.data_capture import data_capture_config
from pipeline.cloud.names import names_for

NO_ENV: dict[str, str] = {}


def problems(**overrides: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(overrides=overrides, environ=NO_ENV)
    return caught.value.problems


def test_the_checked_in_section_mirrors_the_toml() -> None:
    config = load_config(environ=NO_ENV)
    for key, value in tomllib.loads(DEFAULT_CONFIG_PATH.read_text())["monitoring"].items():
        assert getattr(config.monitoring, key) == value, key
    assert config.monitoring.csv_content_types == ("text/csv",)
    assert config.monitoring.json_content_types == ("application/json", "application/jsonlines")


@pytest.mark.parametrize("value", ["-1", "101", "150"])
def test_a_sampling_percentage_outside_0_100_is_refused(value: str) -> None:
    assert problems(**{"monitoring.capture_sampling_percentage": value}) == [
        f"monitoring.capture_sampling_percentage ({value}) must be between 0 and 100 (monitoring."
        "capture_sampling_percentage from --set)"
    ]


def test_serverless_with_capture_is_refused_naming_the_feature_exclusion() -> None:
    found = problems(**{"endpoint.mode": "serverless", "monitoring.data_capture": "true"})
    assert len(found) == 1
    assert "data capture is one of the Serverless Inference feature exclusions" in found[0]
    # Capture off: serverless is fine.
    assert load_config(overrides={"endpoint.mode": "serverless"}, environ=NO_ENV).endpoint.serverless


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"monitoring.psi_warn": "0.3", "monitoring.psi_alert": "0.2"}, "need 0 < warn <= alert"),
        ({"monitoring.psi_alert": "-1"}, "need 0 < warn <= alert"),
        ({"monitoring.missing_rate_alert": "2"}, "missing_rate_alert (2.0) must be a share in (0, 1]"),
        ({"monitoring.min_records": "0"}, "min_records (0) must be between 1"),
        ({"monitoring.capture_csv_content_types": "csv"}, "'csv' not a media type"),
        ({"monitoring.data_capture": "maybe"}, "monitoring.data_capture must be true or false"),
        ({"monitoring.capture_s3_prefix": "a b"}, "capture_s3_prefix 'a b' must be"),
    ],
)
def test_bad_monitoring_values_are_refused_by_name(overrides: dict[str, str], fragment: str) -> None:
    found = problems(**overrides)
    assert any(fragment in p for p in found), found


def test_the_environment_can_turn_capture_on() -> None:
    config = load_config(environ={"ADULT_MONITORING_DATA_CAPTURE": "true"})
    assert config.monitoring.data_capture is True


def test_data_capture_config_for_a_realtime_endpoint() -> None:
    config = load_config(
        overrides={"monitoring.data_capture": "true", "monitoring.capture_sampling_percentage": "20"},
        environ=NO_ENV,
    )
    names = names_for(config, "123456789012")
    assert data_capture_config(config, names) == {
        "EnableCapture": True,
        "InitialSamplingPercentage": 20,
        "DestinationS3Uri": f"s3://{names.bucket}/adult-income/data-capture",
        "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
        "CaptureContentTypeHeader": {
            "CsvContentTypes": ["text/csv"],
            "JsonContentTypes": ["application/json", "application/jsonlines"],
        },
    }


def test_no_data_capture_config_when_off() -> None:
    config = load_config(environ=NO_ENV)
    assert data_capture_config(config, names_for(config, "123456789012")) is None


def test_the_capture_config_is_accepted_by_create_endpoint_config() -> None:
    """botocore's own model of CreateEndpointConfig validates the structure (names, types, ranges)."""
    import boto3
    from botocore.stub import Stubber

    config = load_config(overrides={"monitoring.data_capture": "true"}, environ=NO_ENV)
    client = boto3.client(
        "sagemaker", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    capture = data_capture_config(config, names_for(config, "123456789012"))
    params = {
        "EndpointConfigName": "c",
        "ProductionVariants": [
            {"VariantName": "AllTraffic", "ModelName": "m", "InstanceType": "ml.m5.large"}
        ],
        "DataCaptureConfig": capture,
    }
    with Stubber(client) as stub:
        stub.add_response(
            "create_endpoint_config",
            {"EndpointConfigArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint-config/c"},
            params,
        )
        client.create_endpoint_config(**params)
