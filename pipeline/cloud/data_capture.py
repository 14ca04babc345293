"""The endpoint configuration's ``DataCaptureConfig`` (CreateEndpointConfig), from ``[monitoring]``.

SageMaker then writes every sampled invocation's request and response as JSON Lines under
``s3://<bucket>/<name prefix>/<capture_s3_prefix>/<endpoint>/<variant>/yyyy/mm/dd/hh/``, the format
:mod:`pipeline.monitoring.capture` writes locally and ``python -m pipeline monitor`` reads.
Serverless endpoints cannot capture (a Serverless Inference feature exclusion): configuration
loading refuses ``data_capture = true`` with ``mode = "serverless"``, and this returns None for them.
"""

from __future__ import annotations

from typing import Any

from pipeline.cloud.config import DeployConfig
from pipeline.cloud.names import Names


def capture_destination(config: DeployConfig, names: Names) -> str:
    """``s3://<bucket>/<name prefix>/<capture prefix>``: inside the deployment's own key prefix."""
    prefix = config.monitoring.capture_s3_prefix.strip("/")
    return f"s3://{names.bucket}/{names.s3_prefix}/{prefix}"


def data_capture_config(config: DeployConfig, names: Names) -> dict[str, Any] | None:
    """The ``DataCaptureConfig`` argument of CreateEndpointConfig, or None when capture is off."""
    monitoring = config.monitoring
    if not monitoring.data_capture or config.endpoint.serverless:
        return None
    content_types: dict[str, list[str]] = {}
    if monitoring.csv_content_types:
        content_types["CsvContentTypes"] = list(monitoring.csv_content_types)
    if monitoring.json_content_types:
        content_types["JsonContentTypes"] = list(monitoring.json_content_types)
    capture: dict[str, Any] = {
        "EnableCapture": True,
        "InitialSamplingPercentage": monitoring.capture_sampling_percentage,
        "DestinationS3Uri": capture_destination(config, names),
        "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
    }
    if content_types:
        capture["CaptureContentTypeHeader"] = content_types
    return capture
