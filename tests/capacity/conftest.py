"""Fixtures for the capacity plan: a benchmark result and a price table with hand-checkable numbers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

# A bench_engines.py result in miniature: 2 CPUs; ONNX serves 1,000/s at p99 2 ms (1 connection),
# 2,000/s at p99 5 ms (8) and 1,900/s at p99 20 ms (32); a 64-connection run had errors and must be ignored.
BENCH: dict[str, Any] = {
    "created_utc": "2026-01-02T03:04:05Z",
    "command": "python bench/bench_engines.py --duration 10",
    "machine": {"cpus": 2, "platform": "Linux-test-x86_64", "note": "fixture"},
    "model": {"manifest_engine": "onnx"},
    "stacks": {
        "noop": {
            "workers": 2,
            "json_single": [{"connections": 8, "rps": 9999.0, "p99_ms": 1.0, "errors": 0}],
        },
        "sklearn": {
            "workers": 2,
            "json_single": [{"connections": 8, "rps": 200.0, "p99_ms": 40.0, "errors": 0}],
        },
        "onnx": {
            "workers": 2,
            "json_single": [
                {"connections": 1, "rps": 1000.0, "p99_ms": 2.0, "errors": 0},
                {"connections": 8, "rps": 2000.0, "p99_ms": 5.0, "errors": 0},
                {"connections": 32, "rps": 1900.0, "p99_ms": 20.0, "errors": 0},
                {"connections": 64, "rps": 5000.0, "p99_ms": 3.0, "errors": 12},
            ],
        },
    },
}

# Round prices: ml.m5.large $0.10/h, ml.m5.xlarge $0.20/h; serverless $0.00002 per GB-second; Lambda
# $0.20 per million requests + $0.00001 per GB-second (both architectures); REST API $3.00 per million.
PRICES = """
[meta]
region = "us-east-1"
currency = "USD"
taken = "2026-01-01"
hours_per_month = 730

[sagemaker]
source = "https://example.invalid/sagemaker"
confirmed = true

[sagemaker.hosting]
"ml.m5.large" = 0.10
"ml.m5.xlarge" = 0.20

[sagemaker.training]
"ml.m5.large" = 0.10

[sagemaker.serverless]
per_gb_second = 0.00002

[lambda]
source = "https://example.invalid/lambda"
confirmed = true
per_million_requests = 0.20

[lambda.duration.x86_64]
source = "https://example.invalid/lambda"
confirmed = true
per_gb_second = 0.00001

[lambda.duration.arm64]
source = "https://example.invalid/lambda"
confirmed = true
per_gb_second = 0.00001

[apigateway]
source = "https://example.invalid/apigateway"
confirmed = true
rest_per_million_requests = 3.00
"""


@pytest.fixture
def bench_file(tmp_path: Path) -> Path:
    path = tmp_path / "engines.json"
    path.write_text(json.dumps(BENCH))
    return path


@pytest.fixture
def prices_file(tmp_path: Path) -> Path:
    path = tmp_path / "aws-prices.toml"
    path.write_text(PRICES)
    return path


@pytest.fixture(autouse=True)
def no_deploy_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    """The plan reads the deploy configuration: no ADULT_* variable of the machine may change it."""
    import os

    for name in list(os.environ):
        if name.startswith("ADULT_"):
            monkeypatch.delenv(name)
